/* SPDX-License-Identifier: MIT */
/* mxguard serve -c FILE [--syslog]: run the gateway in the foreground. */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "cli.h"
#include "daemon.h"

int
cli_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"syslog", no_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *path = "/etc/mxguard/mxguard.conf";
	bool use_syslog = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 's':
			use_syslog = true;
			break;
		case 'h':
			printf("usage: mxguard serve [-c FILE] [--syslog]\n"
			       "  Runs the gateway in the foreground; logs to stderr, or to syslog\n"
			       "  (facility mail) with --syslog.  Default FILE: %s\n", path);
			return 0;
		default:
			fprintf(stderr, "usage: mxguard serve [-c FILE] [--syslog]\n");
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "mxguard serve: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	return daemon_serve(path, use_syslog);
}
