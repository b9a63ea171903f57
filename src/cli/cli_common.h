/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	cli_common - what the offline tools share: config, store, scanner
 */
#ifndef MX_CLI_COMMON_H
#define MX_CLI_COMMON_H

#include <stdbool.h>

#include "classifier.h"
#include "config.h"
#include "scan.h"
#include "store.h"

#define CLI_DEFAULT_CONFIG "/etc/mxguard/mxguard.conf"

struct cli_env {
	struct mx_config *cfg;
	struct store *store;
	struct classifier *cls;
	struct scanner *scanner;
};

/*
 * Parses the options of a command that takes only -c FILE and -h, before
 * its operands ("+c:h": options end at the first operand).  Sets *config
 * (NULL when -c is not given) and leaves optind at the first operand.
 * Returns -1 to go on, or the exit status: 0 after -h (usage on stdout),
 * 2 for an unknown option (usage on stderr).
 */
int cli_opt_config(int argc, char **argv, const char *usage, const char **config);

/*
 * Loads FILE; with FILE NULL, CLI_DEFAULT_CONFIG when it is readable, else
 * the built-in defaults.  Prints the errors and returns NULL.
 */
struct mx_config *cli_config_load(const char *path);

/*
 * Loads FILE (or the default config when it exists, else the built-in
 * defaults), opens the store and, when want_scanner, the rules.  Prints
 * errors and returns -1.
 */
int cli_env_open(struct cli_env *e, const char *config_path, bool want_scanner, bool read_only);
void cli_env_close(struct cli_env *e);

#endif
