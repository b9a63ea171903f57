/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	mxguard - spam- and virus-filtering SMTP gateway
 * DESCRIPTION
 *	argv[1] picks the subcommand; each lives in cli/.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
	{"serve", cli_serve, "serve -c FILE [--syslog]   run the gateway in the foreground"},
	{"check-config", cli_check_config, "check-config FILE          validate a configuration"},
	{"scan", cli_scan, "scan [--json] [-c FILE] PATH...   score messages (files, folders, mbox, -)"},
	{"learn", cli_learn, "learn --spam|--ham|--forget [-c FILE] PATH...   train the classifier"},
	{"stats", cli_stats, "stats [-c FILE]            what the store and the queue hold"},
	{"queue", cli_queue, "queue [-c FILE] list|show ID|flush|delete ID|hold ID|release ID"},
	{"blocks", cli_blocks, "blocks [-c FILE] list|remove IP   clients blocked by the harvest defence"},
	{"version", cli_version, "version                    print the version"},
};

static int
usage(FILE *f)
{
	fprintf(f, "usage: mxguard COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  mxguard %s\n", commands[i].help);
	return f == stdout ? 0 : 2;
}

int
main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr);
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return usage(stdout);
	if (strcmp(argv[1], "--version") == 0)
		return cli_version(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "mxguard: unknown command '%s'\n", argv[1]);
	return usage(stderr);
}
