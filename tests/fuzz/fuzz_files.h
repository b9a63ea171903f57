/* SPDX-License-Identifier: MIT */
/* What the file-reading fuzz targets share: a private folder and a file
 * written in it. */
#ifndef MX_FUZZ_FILES_H
#define MX_FUZZ_FILES_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* A folder for this process, made once. */
static inline const char *
fuzz_dir(void)
{
	static char dir[64];
	if (dir[0] == '\0') {
		snprintf(dir, sizeof(dir), "/tmp/mx-fuzz-XXXXXX");
		if (mkdtemp(dir) == NULL)
			abort();
	}
	return dir;
}

static inline void
fuzz_write(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || (n > 0 && write(fd, p, n) != (ssize_t)n) || close(fd) != 0)
		abort();
}

#endif
