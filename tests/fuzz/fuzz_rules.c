/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a rules file through rules_load() (the line grammar,
 * PCRE2 patterns, metas, lists), then the rules run on a fixed message.
 * A file is either a rules set or file:line errors, never both or neither.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_files.h"
#include "mime.h"
#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char sample[] =
    "From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: Cheap meds\r\n"
    "Content-Type: text/html\r\n\r\n<a href=\"http://192.0.2.1/x\">click</a> here\r\n";

static void
hit(const char *name, double score, void *arg)
{
	if (name == NULL || name[0] == '\0' || score != score)
		abort();
	(*(size_t *)arg)++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/rules", fuzz_dir());
	fuzz_write(path, data, size);
	struct config_errors errs = { 0 };
	struct rules *r = rules_load(path, &errs);
	if ((r != NULL) == (errs.n > 0))
		abort();
	for (size_t i = 0; i < errs.n; i++)
		if (strstr(errs.msg[i], path) == NULL)
			abort();
	config_errors_clear(&errs);
	if (r == NULL)
		return 0;
	struct mime_limits lim;
	mime_limits_default(&lim);
	struct mime_msg m;
	mime_analyse(sample, sizeof(sample) - 1, &lim, &m);
	struct rules_input in = { .msg = &m, .mail_from = "alice@example.test", .client = NULL };
	size_t hits = 0;
	rules_run(r, &in, hit, &hits);
	mime_msg_clear(&m);
	rules_free(r);
	return 0;
}
