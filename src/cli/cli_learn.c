/* SPDX-License-Identifier: MIT */
/*
 * mxguard learn --spam|--ham|--forget [-c FILE] PATH...
 * Adds the messages to the classifier's examples (a message learned twice
 * counts once; learning it with the other label corrects it; --forget
 * removes it), then retrains the model, all in one store transaction.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "cli_input.h"
#include "cli_progress.h"
#include "clock.h"
#include "mime.h"
#include "xalloc.h"

struct learn_run {
	struct classifier_batch *b;
	enum classifier_label label;
	struct mime_limits lim;
	size_t counts[CLS_ERROR + 1];
	size_t messages;
	struct cli_progress prog;
	size_t *files_done;
};

static int
learn_one(const char *name, const char *data, size_t len, void *arg)
{
	struct learn_run *r = arg;
	struct mime_msg m;
	mime_analyse(data, len, &r->lim, &m);
	enum classifier_learn_rc rc = classifier_batch_add(r->b, &m, r->label);
	mime_msg_clear(&m);
	r->counts[rc]++;
	if (rc == CLS_ERROR)
		fprintf(stderr, "mxguard: %s: could not be learned\n", name);
	r->messages++;
	cli_progress_update(&r->prog, *r->files_done, r->messages);
	return 0;
}

int
cli_learn(int argc, char **argv)
{
	static const struct option opts[] = {
		{"spam", no_argument, NULL, 's'},  {"ham", no_argument, NULL, 'H'},
		{"forget", no_argument, NULL, 'f'}, {"config", required_argument, NULL, 'c'},
		{"files-from", required_argument, NULL, 'T'},
		{"files-from", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},  {NULL, 0, NULL, 0},
	};
	const char *config = NULL;
	int label = -1, c;
	char **paths = NULL;
	size_t npaths = 0, cap = 0;
	const char *usage = "usage: mxguard learn --spam|--ham|--forget [-c FILE] [-T LIST] PATH...\n";
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:T:h", opts, NULL)) != -1) {
		switch (c) {
		case 'T':
			if (cli_input_files_from(optarg, &paths, &npaths, &cap) < 0)
				return 1;
			break;
		case 's': label = label < 0 ? CLS_SPAM : 99; break;
		case 'H': label = label < 0 ? CLS_HAM : 99; break;
		case 'f': label = label < 0 ? CLS_FORGET : 99; break;
		case 'c': config = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	for (int i = optind; i < argc; i++) {
		paths = xgrow(paths, &cap, npaths + 1, sizeof(char *));
		paths[npaths++] = xstrdup(argv[i]);
	}
	if (label < 0 || label == 99 || npaths == 0) {
		fputs(label == 99 ? "mxguard learn: give one of --spam, --ham, --forget\n" : usage, stderr);
		return 2;
	}
	struct cli_env env;
	if (cli_env_open(&env, config, false, false) < 0)
		return 1;
	struct learn_run r = {.label = (enum classifier_label)label};
	mime_limits_default(&r.lim);
	r.lim.max_bytes = (size_t)env.cfg->scan_limit;
	size_t done = 0, skipped = 0;
	r.files_done = &done;
	uint64_t t0 = mx_clock_mono_ms();
	r.b = classifier_batch_begin(env.cls);
	if (r.b == NULL) {
		fprintf(stderr, "mxguard learn: the store is not writable\n");
		cli_env_close(&env);
		return 1;
	}
	cli_progress_start(&r.prog, "learn", cli_input_count(paths, (int)npaths));
	int rc = cli_input_walk(paths, (int)npaths, learn_one, &r, &done, &skipped);
	for (size_t i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	cli_progress_end(&r.prog);
	if (classifier_batch_commit(r.b) < 0) {
		fprintf(stderr, "mxguard learn: could not write the store\n");
		cli_env_close(&env);
		return 1;
	}
	struct classifier_stats st;
	classifier_stats(env.cls, &st);
	double secs = (double)(mx_clock_mono_ms() - t0) / 1000.0;
	printf("learned %zu, already known %zu, corrected %zu, forgotten %zu, not known %zu, "
	       "failed %zu, skipped %zu; model: %llu spam, %llu ham, trained in %.2f s "
	       "(%.2f s, %.0f msg/s in all)\n",
	       r.counts[CLS_LEARNED], r.counts[CLS_DUPLICATE], r.counts[CLS_RELABELED],
	       r.counts[CLS_FORGOTTEN], r.counts[CLS_UNKNOWN], r.counts[CLS_ERROR], skipped,
	       (unsigned long long)st.spam, (unsigned long long)st.ham, st.train_seconds, secs,
	       secs > 0 ? (double)r.messages / secs : 0.0);
	cli_env_close(&env);
	return rc < 0 || r.counts[CLS_ERROR] ? 1 : 0;
}
