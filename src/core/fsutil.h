/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	fsutil - small file-system helpers shared by the spool, the store and
 *	file: delivery
 */
#ifndef MX_FSUTIL_H
#define MX_FSUTIL_H

#include <stddef.h>
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

#endif
