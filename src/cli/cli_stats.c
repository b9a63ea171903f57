/* SPDX-License-Identifier: MIT */
/* mxguard stats [-c FILE]: what the store holds (classifier). */
#include <getopt.h>
#include <stdio.h>
#include <time.h>

#include "cli.h"
#include "cli_common.h"

int
cli_stats(int argc, char **argv)
{
	const char *config = NULL;
	int c;
	optind = 1;
	while ((c = getopt(argc, argv, "c:h")) != -1) {
		if (c == 'c')
			config = optarg;
		else {
			fprintf(c == 'h' ? stdout : stderr, "usage: mxguard stats [-c FILE]\n");
			return c == 'h' ? 0 : 2;
		}
	}
	struct cli_env env;
	if (cli_env_open(&env, config, false, true) < 0)
		return 1;
	printf("store: %s\n", env.store ? store_describe(env.store) : "(none)");
	struct classifier_stats st = {0};
	if (env.cls != NULL && classifier_stats(env.cls, &st) == 0) {
		char when[64] = "never";
		if (st.trained_at) {
			time_t t = (time_t)st.trained_at;
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
		}
		printf("classifier: %llu spam, %llu ham learned; model version %llu, trained %s\n",
		       (unsigned long long)st.spam, (unsigned long long)st.ham,
		       (unsigned long long)st.model_version, when);
	} else {
		printf("classifier: nothing learned\n");
	}
	cli_env_close(&env);
	return 0;
}
