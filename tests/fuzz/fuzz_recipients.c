/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a recipients file (recipients.file) through
 * rcpt_map_build().  The file is either refused with "file:line: what"
 * errors, or every entry of the map is one whole line of the file (its
 * comment and surrounding blanks dropped, lower-cased, an address in the
 * canonical form RCPT TO gives it), every such line is an entry, and each
 * address entry is found by a lookup, however the file quoted it.  No part of a line
 * is ever taken for a line of its own (a NUL byte once made that happen).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "fuzz_files.h"
#include "rcpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mx_config *cfg;
static char rcpt_path[128];

static void
init(void)
{
	char conf[512], path[128];
	snprintf(rcpt_path, sizeof(rcpt_path), "%s/recipients", fuzz_dir());
	snprintf(path, sizeof(path), "%s/mxguard.conf", fuzz_dir());
	int n = snprintf(conf, sizeof(conf),
	                 "listen = [\"127.0.0.1:2525\"]; domains = [\"example.test\", \"b.test\"];\n"
	                 "recipients = { file = \"%s\"; };\ndownstream = \"smtp:127.0.0.1:1\";\n",
	                 rcpt_path);
	fuzz_write(path, conf, (size_t)n);
	struct config_errors errs = {0};
	cfg = config_load(path, &errs);
	if (cfg == NULL)
		abort();
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (cfg == NULL)
		init();
	fuzz_write(rcpt_path, data, size);
	struct config_errors errs = {0};
	struct rcpt_map *m = rcpt_map_build(cfg, NULL, &errs);
	if ((m != NULL) == (errs.n > 0))
		abort();
	for (size_t i = 0; i < errs.n; i++)
		if (strncmp(errs.msg[i], rcpt_path, strlen(rcpt_path)) != 0)
			abort();
	config_errors_clear(&errs);
	if (m == NULL)
		return 0;
	/* the lines, as the file's rules make entries of them */
	char **ent = malloc((size + 1) * sizeof(*ent));
	size_t ne = 0;
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		if (memchr(p, '\0', (size_t)(le - p)) != NULL || le - p > 1024)
			abort(); /* the file should have been refused */
		const char *hash = memchr(p, '#', (size_t)(le - p));
		const char *b = p, *e = hash ? hash : le;
		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		while (e > b && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > b) {
			char *s = malloc((size_t)(e - b) + 1);
			for (size_t i = 0; i < (size_t)(e - b); i++)
				s[i] = (b[i] >= 'A' && b[i] <= 'Z') ? (char)(b[i] + 32) : b[i];
			s[e - b] = '\0';
			/* an address is kept in the form RCPT TO gives it:
			 * "john"@x and john@x are one entry */
			char path[1100];
			struct smtp_addr a;
			const char *rest;
			size_t rl;
			snprintf(path, sizeof(path), "<%s>", s);
			if (s[0] != '@' &&
			    smtp_parse_path(path, strlen(path), SMTP_PATH_UTF8_OK, &a, &rest, &rl) == SMTP_ADDR_OK &&
			    rl == 0) {
				free(s);
				s = strdup(a.addr);
				for (char *q = s; *q; q++)
					*q = (*q >= 'A' && *q <= 'Z') ? (char)(*q + 32) : *q;
			}
			ent[ne++] = s;
		}
		p = nl ? nl + 1 : end;
	}
	qsort(ent, ne, sizeof(*ent), cmp_str);
	size_t distinct = 0;
	for (size_t i = 0; i < ne; i++) {
		if (i > 0 && strcmp(ent[i], ent[i - 1]) == 0)
			continue;
		distinct++;
		/* an address entry (not a catch-all) is found as it is */
		char path[1100];
		struct smtp_addr a;
		const char *rest;
		size_t rl;
		snprintf(path, sizeof(path), "<%s>", ent[i]);
		if (ent[i][0] != '@' &&
		    smtp_parse_path(path, strlen(path), SMTP_PATH_UTF8_OK, &a, &rest, &rl) == SMTP_ADDR_OK &&
		    rl == 0 && rcpt_lookup(m, NULL, &a, NULL, NULL) != MX_FOUND)
			abort();
	}
	char want[64];
	snprintf(want, sizeof(want), "(%zu entries)", distinct);
	if (strstr(rcpt_map_describe(m), want) == NULL)
		abort();
	for (size_t i = 0; i < ne; i++)
		free(ent[i]);
	free(ent);
	rcpt_map_free(m);
	return 0;
}
