/* SPDX-License-Identifier: MIT */
/*
 * mxguard queue [-c FILE] list|show ID|flush|delete ID|hold ID|release ID
 * Talks to the running gateway through QUEUE/control; when none runs,
 * works on the spool files directly (flush then needs the gateway).
 * FILE defaults to /etc/mxguard/mxguard.conf (built-in defaults when it
 * does not exist), as for every other command.
 * list prints one line a message:
 *   ID SIZE AGE_SECONDS STATE ATTEMPTS NEXT_IN_SECONDS <sender> <pending rcpt>...
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "config.h"
#include "queue.h"

static const char *const usage =
    "usage: mxguard queue [-c FILE] list|show ID|flush|delete ID|hold ID|release ID\n";

int
cli_queue(int argc, char **argv)
{
	const char *config;
	int rc = cli_opt_config(argc, argv, usage, &config);
	if (rc >= 0)
		return rc;
	if (optind >= argc) {
		fputs(usage, stderr);
		return 2;
	}
	const char *cmd = argv[optind];
	const char *arg = optind + 1 < argc ? argv[optind + 1] : NULL;
	bool needs_id = strcmp(cmd, "show") == 0 || strcmp(cmd, "delete") == 0 ||
	                strcmp(cmd, "hold") == 0 || strcmp(cmd, "release") == 0;
	bool known = needs_id || strcmp(cmd, "list") == 0 || strcmp(cmd, "flush") == 0;
	if (!known || (needs_id && arg == NULL) || (!needs_id && arg != NULL) ||
	    optind + 2 + (needs_id ? 0 : -1) < argc) {
		fputs(usage, stderr);
		return 2;
	}
	/* the same file as every other command: -c FILE, else the default */
	struct mx_config *cfg = cli_config_load(config);
	if (cfg == NULL)
		return 1;
	rc = queue_client_ctl(cfg->queue_path, cmd, arg, stdout);
	if (rc < 0)
		rc = queue_offline_ctl(cfg->queue_path, cmd, arg, stdout);
	config_unref(cfg);
	return rc;
}
