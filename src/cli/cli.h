/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	cli - the mxguard subcommands, one file each
 */
#ifndef MX_CLI_H
#define MX_CLI_H

int cli_serve(int argc, char **argv);
int cli_check_config(int argc, char **argv);
int cli_version(int argc, char **argv);
int cli_scan(int argc, char **argv);
int cli_learn(int argc, char **argv);
int cli_stats(int argc, char **argv);
int cli_queue(int argc, char **argv);
int cli_blocks(int argc, char **argv);

#endif
