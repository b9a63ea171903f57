/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	fsutil - small file-system helpers shared by the spool, the store,
 *	file: delivery and the readers of admin-written files
 */
#ifndef MX_FSUTIL_H
#define MX_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/*
 * mkdir -p: creates path and every missing parent with mode (subject to
 * the umask).  An existing directory is fine; an existing non-directory
 * is ENOTDIR.  Returns 0, or -1 with errno and, when err is not NULL,
 * "cannot create DIR: reason" naming the component that failed.
 */
int fsutil_mkdirs(const char *path, mode_t mode, char *err, size_t errlen);
/* Flushes a directory (after a rename or create in it). 0 or -1 with errno. */
int fsutil_fsync_dir(const char *path);

/*
 * One line of f into buf (without its newline; NUL-terminated), at most
 * max bytes (buf holds max + 1): the rest of a longer line is read and
 * dropped, and *too_long set.  *nul is set when the line holds a NUL byte,
 * which the C string in buf would hide.  A reader of lines with fgets()
 * misses both, and takes the tail of a long line for a line of its own.
 * Returns false at the end of the file (nothing read).
 */
bool fsutil_read_line(FILE *f, char *buf, size_t max, bool *too_long, bool *nul);

#endif
