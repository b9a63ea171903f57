/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	cli_input - messages from paths: files, folders, mbox files, stdin
 * DESCRIPTION
 *	A path is a single message file, a folder (every regular file in it
 *	and its subfolders, in name order, hidden files skipped; each folder
 *	walked once, however many links lead to it), an mbox
 *	file (split at "From SENDER DATE" lines), or "-" for standard input (a message
 *	or an mbox).  Files that do not look like a message (no header line
 *	at the top) are skipped with a warning.  Files up to 4 MB are read,
 *	larger ones memory-mapped.
 */
#ifndef MX_CLI_INPUT_H
#define MX_CLI_INPUT_H

#include <stddef.h>

/* Called for each message; name is "PATH" or "PATH:N" for mbox members.
 * Return non-zero to stop. */
typedef int (*cli_msg_cb)(const char *name, const char *data, size_t len, void *arg);

/* Reads one path a line from file ("-": stdin) and appends them to the
 * array *paths (*n entries, grown with xgrow; entries are new strings).
 * Returns 0, or -1 when file cannot be read. */
int cli_input_files_from(const char *file, char ***paths, size_t *n, size_t *cap);

/* Counts the files the paths name (for progress). */
size_t cli_input_count(char **paths, int n);

/* Called from a walk's callback with its data and len: when they are the
 * whole of a buffer the walk read (a file holding one message, not
 * mapped), hands that buffer over, to be freed by the caller, and
 * returns it; else NULL (copy data to keep it). */
char *cli_input_take(const char *data, size_t len);
/* Walks every message; returns 0, or -1 if a path could not be read
 * (reported on stderr; the walk goes on). skipped counts non-messages. */
int cli_input_walk(char **paths, int n, cli_msg_cb cb, void *arg, size_t *files_done,
                   size_t *skipped);

#endif
