/* SPDX-License-Identifier: MIT */
/* mxguard stats [-c FILE]: what the store holds (classifier). */
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_common.h"
#include "queue.h"

int
cli_stats(int argc, char **argv)
{
	const char *config;
	int rc0 = cli_opt_config(argc, argv, "usage: mxguard stats [-c FILE]\n", &config);
	if (rc0 >= 0)
		return rc0;
	if (optind < argc) {
		fprintf(stderr, "usage: mxguard stats [-c FILE]\n");
		return 2;
	}
	struct cli_env env;
	if (cli_env_open(&env, config, false, true) < 0)
		return 1;
	printf("store: %s\n", env.store ? store_describe(env.store) : "(none)");
	uint64_t used, limit;
	if (env.store != NULL && store_usage(env.store, &used, &limit) == 0)
		printf("store: %.1f MiB used of %.0f MiB (store.size), %.1f %%\n", (double)used / 1048576.0,
		       (double)limit / 1048576.0, limit ? 100.0 * (double)used / (double)limit : 0.0);
	struct classifier_stats st = {0};
	if (env.cls != NULL && classifier_stats(env.cls, &st) == 0 && st.trained) {
		char when[64] = "never";
		if (st.trained_at) {
			time_t t = (time_t)st.trained_at;
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
		}
		printf("classifier: %llu spam, %llu ham learned; model version %llu, trained %s\n",
		       (unsigned long long)st.spam, (unsigned long long)st.ham,
		       (unsigned long long)st.model_version, when);
		if (st.stale && st.training)
			printf("classifier: a learn is training a model on the examples stored since\n");
		else if (st.stale)
			printf("classifier: examples were stored after this model by a learn that did not "
			       "finish; the next learn retrains\n");
	} else if (st.outdated) {
		printf("classifier: the stored model is an older version's and is not used; "
		       "learn again (docs/classifier.md)\n");
	} else if (st.stored_spam + st.stored_ham > 0) {
		printf("classifier: no model yet: %llu spam and %llu ham learned, %u of each needed\n",
		       (unsigned long long)st.stored_spam, (unsigned long long)st.stored_ham,
		       classifier_min_each);
	} else {
		printf("classifier: nothing learned\n");
	}
	/* queue figures, from the running gateway when there is one */
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	int rc = queue_client_ctl(env.cfg->queue_path, "stats", NULL, m);
	if (rc < 0)
		rc = queue_offline_ctl(env.cfg->queue_path, "stats", NULL, m);
	fclose(m);
	if (rc == 0) {
		printf("queue: %s\n", env.cfg->queue_path);
		for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
			printf("  %s\n", line);
	}
	free(buf);
	cli_env_close(&env);
	return 0;
}
