/* SPDX-License-Identifier: MIT */
/*
 * mxguard scan [--json] [-c FILE] PATH...
 * One line a message: "PATH SCORE ACTION SYMBOL,SYMBOL,..." or, with
 * --json, {"path", "score", "action", "symbols": [{"name","score"}],
 * "spam_probability"}.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "cli_input.h"
#include "cli_progress.h"
#include "str.h"
#include "xalloc.h"

struct scan_run {
	struct cli_env *env;
	bool json;
	size_t messages, files;
	struct cli_progress prog;
	size_t *files_done;
};

/* A JSON string; bytes that are not UTF-8 (a file name can hold any) are
 * written as U+FFFD, so that every line is valid JSON. */
static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (size_t len = strlen(s); *s; ) {
		unsigned char c = (unsigned char)*s;
		size_t k = mx_utf8_seq(s, len);
		if (k == 0) {
			fputs("\\ufffd", f);
			k = 1;
		} else if (c == '"' || c == '\\') {
			fprintf(f, "\\%c", c);
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(f, "\\u%04x", c);
		} else {
			fwrite(s, 1, k, f);
		}
		s += k;
		len -= k;
	}
	fputc('"', f);
}

/* A path in the plain output: one field on one line, whatever the name
 * holds (space, backslash, control bytes, DEL and bytes that are not
 * UTF-8 as \xNN; other characters as they are). */
static void
plain_path(FILE *f, const char *s)
{
	for (size_t len = strlen(s); *s; ) {
		unsigned char c = (unsigned char)*s;
		size_t k = mx_utf8_seq(s, len);
		if (k == 0 || c <= 0x20 || c == 0x7f || c == '\\') {
			fprintf(f, "\\x%02x", c);
			k = 1;
		} else {
			fwrite(s, 1, k, f);
		}
		s += k;
		len -= k;
	}
}

static int
scan_one(const char *name, const char *data, size_t len, void *arg)
{
	struct scan_run *r = arg;
	struct scan_result res;
	scanner_scan(r->env->scanner, data, len, NULL, NULL, &res, NULL);
	if (r->json) {
		fputs("{\"path\":", stdout);
		json_str(stdout, name);
		printf(",\"score\":%.4f,\"action\":\"%s\",\"symbols\":[", res.score,
		       scan_action_name(res.action));
		for (size_t i = 0; i < res.n_sym; i++) {
			printf("%s{\"name\":", i ? "," : "");
			json_str(stdout, res.sym[i].name);
			printf(",\"score\":%.4f}", res.sym[i].score);
		}
		printf("],\"spam_probability\":%.10g}\n", res.spam_probability);
	} else {
		plain_path(stdout, name);
		printf(" %.2f %s ", res.score, scan_action_name(res.action));
		for (size_t i = 0; i < res.n_sym; i++)
			printf("%s%s", i ? "," : "", res.sym[i].name);
		putchar('\n');
	}
	r->messages++;
	cli_progress_update(&r->prog, *r->files_done, r->messages);
	return 0;
}

int
cli_scan(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"config", required_argument, NULL, 'c'},
		{"files-from", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *config = NULL;
	bool json = false;
	char **paths = NULL;
	size_t npaths = 0, cap = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "jc:T:h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'c': config = optarg; break;
		case 'T':
			if (cli_input_files_from(optarg, &paths, &npaths, &cap) < 0)
				return 1;
			break;
		case 'h':
			printf("usage: mxguard scan [--json] [-c FILE] [-T LIST] PATH...\n"
			       "  PATH: a message file, a folder, an mbox file, or - for stdin\n"
			       "  -T, --files-from LIST: more paths, one a line (- for stdin)\n");
			return 0;
		default:
			fprintf(stderr, "usage: mxguard scan [--json] [-c FILE] PATH...\n");
			return 2;
		}
	}
	for (int i = optind; i < argc; i++) {
		paths = xgrow(paths, &cap, npaths + 1, sizeof(char *));
		paths[npaths++] = xstrdup(argv[i]);
	}
	if (npaths == 0) {
		fprintf(stderr, "usage: mxguard scan [--json] [-c FILE] [-T LIST] PATH...\n");
		return 2;
	}
	struct cli_env env;
	if (cli_env_open(&env, config, true, true) < 0)
		return 1;
	static char buf[1 << 16];
	setvbuf(stdout, buf, _IOFBF, sizeof(buf));
	size_t done = 0, skipped = 0;
	struct scan_run r = {.env = &env, .json = json, .files_done = &done};
	cli_progress_start(&r.prog, "scan", cli_progress_wanted() ? cli_input_count(paths, (int)npaths) : 0);
	int rc = cli_input_walk(paths, (int)npaths, scan_one, &r, &done, &skipped);
	cli_progress_end(&r.prog);
	/* output that could not be written (a full disk, a closed pipe) is
	 * a failure a script must see */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "mxguard scan: cannot write the output: %s\n", strerror(errno));
		rc = -1;
	}
	cli_env_close(&env);
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	return rc < 0 ? 1 : 0;
}
