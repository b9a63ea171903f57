/* SPDX-License-Identifier: MIT */
/*
 * mxguard check-config FILE: would the gateway start with this file?
 * Builds everything serve builds (recipients, downstreams, TLS) without
 * opening ports.  Exit 0 with a summary, or 1 with "file:line: problem"
 * lines on stderr.  --keys lists every configuration key.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "log.h"
#include "runtime.h"

int
cli_check_config(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--keys") == 0) {
		for (const char *const *k = config_key_names(); *k; k++)
			printf("%s\n", *k);
		return 0;
	}
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: mxguard check-config FILE\n       mxguard check-config --keys\n");
		return 2;
	}
	log_init("mxguard", false);
	log_set_level(LOG_LVL_WARN);
	struct config_errors errs = {0};
	struct runtime *rt = runtime_build(argv[1], &errs, NULL, NULL);
	if (rt == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		if (errs.dropped)
			fprintf(stderr, "(%zu more errors)\n", errs.dropped);
		fprintf(stderr, "%s: %zu error%s\n", argv[1], errs.n + errs.dropped,
		        errs.n + errs.dropped == 1 ? "" : "s");
		config_errors_clear(&errs);
		return 1;
	}
	char desc[1024];
	runtime_describe(rt, desc, sizeof(desc));
	printf("%s: ok: %s\n", argv[1], desc);
	runtime_unref(rt);
	return 0;
}
