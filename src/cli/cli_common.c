/* SPDX-License-Identifier: MIT */
#include "cli_common.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

int
cli_opt_config(int argc, char **argv, const char *usage, const char **config)
{
	int c;
	*config = NULL;
	optind = 1;
	while ((c = getopt(argc, argv, "+c:h")) != -1) {
		if (c == 'c') {
			*config = optarg;
		} else {
			fputs(usage, c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	return -1;
}

struct mx_config *
cli_config_load(const char *path)
{
	struct config_errors errs = {0};
	if (path == NULL && access(CLI_DEFAULT_CONFIG, R_OK) == 0)
		path = CLI_DEFAULT_CONFIG;
	struct mx_config *cfg = path ? config_load(path, &errs) : config_defaults();
	if (cfg == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		config_errors_clear(&errs);
	}
	return cfg;
}

int
cli_env_open(struct cli_env *e, const char *path, bool want_scanner, bool read_only)
{
	memset(e, 0, sizeof(*e));
	log_init("mxguard", false);
	log_set_level(LOG_LVL_WARN);
	struct config_errors errs = {0};
	e->cfg = cli_config_load(path);
	if (e->cfg == NULL)
		return -1;
	char err[512];
	struct store_opts so = {e->cfg->store_path, (size_t)e->cfg->store_size, read_only};
	e->store = store_open(&so, err, sizeof(err));
	if (e->store == NULL && read_only) {
		/* nothing learned yet: scan without a classifier */
		fprintf(stderr, "mxguard: %s (classifier off)\n", err);
	} else if (e->store == NULL) {
		fprintf(stderr, "mxguard: %s\n", err);
		cli_env_close(e);
		return -1;
	}
	if (e->store != NULL)
		e->cls = classifier_open(e->store);
	if (want_scanner) {
		struct rules *r = rules_load(e->cfg->rules_path, &errs);
		if (r == NULL) {
			for (size_t i = 0; i < errs.n; i++)
				fprintf(stderr, "%s\n", errs.msg[i]);
			config_errors_clear(&errs);
			cli_env_close(e);
			return -1;
		}
		e->scanner = scanner_new(e->cfg, r, e->cls);
	}
	return 0;
}

void
cli_env_close(struct cli_env *e)
{
	scanner_free(e->scanner);
	classifier_close(e->cls);
	store_close(e->store);
	config_unref(e->cfg);
	memset(e, 0, sizeof(*e));
}
