/* SPDX-License-Identifier: MIT */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* mkdir, where an existing directory (and only a directory) is success */
static int
fsutil_mkdir_one(const char *path, mode_t mode)
{
	if (mkdir(path, mode) == 0)
		return 0;
	if (errno != EEXIST)
		return -1;
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

static int
fsutil_fail(const char *what, char *err, size_t errlen)
{
	int e = errno;
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "cannot create %s: %s", what, strerror(e));
	errno = e;
	return -1;
}

int
fsutil_mkdirs(const char *path, mode_t mode, char *err, size_t errlen)
{
	char tmp[4096];
	size_t n = strlen(path);
	if (n == 0) {
		errno = ENOENT;
		return fsutil_fail("\"\"", err, errlen);
	}
	if (n >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return fsutil_fail(path, err, errlen);
	}
	memcpy(tmp, path, n + 1);
	while (n > 1 && tmp[n - 1] == '/')
		tmp[--n] = '\0'; /* "a/b/" is "a/b" */
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/' || p[-1] == '/')
			continue;
		*p = '\0'; /* tmp is the parent up to here */
		if (fsutil_mkdir_one(tmp, mode) < 0)
			return fsutil_fail(tmp, err, errlen);
		*p = '/';
	}
	if (fsutil_mkdir_one(tmp, mode) < 0)
		return fsutil_fail(tmp, err, errlen);
	return 0;
}

int
fsutil_fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

bool
fsutil_read_line(FILE *f, char *buf, size_t max, bool *too_long, bool *nul)
{
	size_t n = 0;
	int c = EOF;
	*too_long = *nul = false;
	while ((c = getc(f)) != EOF && c != '\n') {
		if (c == '\0')
			*nul = true;
		if (n < max)
			buf[n++] = (char)c;
		else
			*too_long = true;
	}
	buf[n] = '\0';
	return c != EOF || n > 0 || *nul || *too_long;
}
