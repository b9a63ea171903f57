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
 * Loads FILE (or the default config when it exists, else the built-in
 * defaults), opens the store and, when want_scanner, the rules.  Prints
 * errors and returns -1.
 */
int cli_env_open(struct cli_env *e, const char *config_path, bool want_scanner, bool read_only);
void cli_env_close(struct cli_env *e);

#endif
