/* SPDX-License-Identifier: MIT */
/*
 * mxguard blocks [-c FILE] list | remove IP
 * The clients the harvest defence blocked (harvest.block_after unknown
 * recipients within harvest.window), read from the store the gateway
 * uses; works while the gateway runs (LMDB is shared).  list prints one
 * line a block:
 *   KEY SINCE UNTIL COUNT
 * (times in UTC, ISO 8601; KEY is the IPv4 address or the IPv6 /64).
 * remove lifts a block at once and forgets the client's count.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_common.h"
#include "harvest.h"

static const char *const usage = "usage: mxguard blocks [-c FILE] list | remove IP\n";

static void
cli_blocks_time(time_t t, char *buf, size_t len)
{
	struct tm tm;
	if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
}

static void
cli_blocks_print(const struct harvest_block *b, void *arg)
{
	unsigned *n = arg;
	char since[32], until[32];
	cli_blocks_time(b->since, since, sizeof(since));
	cli_blocks_time(b->until, until, sizeof(until));
	printf("%s %s %s %u\n", b->key, since, until, b->count);
	(*n)++;
}

int
cli_blocks(int argc, char **argv)
{
	const char *config;
	int orc = cli_opt_config(argc, argv, usage, &config);
	if (orc >= 0)
		return orc;
	int left = argc - optind;
	const char *cmd = left > 0 ? argv[optind] : "";
	bool list = strcmp(cmd, "list") == 0 && left == 1;
	bool remove = strcmp(cmd, "remove") == 0 && left == 2;
	if (!list && !remove) {
		fputs(usage, stderr);
		return 2;
	}
	struct cli_env env;
	if (cli_env_open(&env, config, false, false) < 0)
		return 1;
	int rc = 0;
	if (list) {
		unsigned n = 0;
		if (harvest_block_list(env.store, cli_blocks_print, &n) < 0) {
			fprintf(stderr, "mxguard: cannot read %s\n", store_describe(env.store));
			rc = 1;
		}
	} else {
		char key[NETADDR_STRLEN], err[256];
		int r = harvest_block_remove(env.store, argv[optind + 1], key, sizeof(key), err,
		                             sizeof(err));
		if (r < 0) {
			fprintf(stderr, "mxguard: %s\n", err);
			rc = 1;
		} else if (r == 0) {
			printf("%s: not blocked (its count is reset)\n", key);
			rc = 1;
		} else {
			printf("%s: block removed\n", key);
		}
	}
	cli_env_close(&env);
	return rc;
}
