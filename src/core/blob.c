/* SPDX-License-Identifier: MIT */
#include "blob.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xalloc.h"

#define BLOB_WBUF 65536

struct blob {
	char *head;
	size_t head_len, head_cap, head_max;
	const char *tmpdir;
	int fd;
	size_t file_len; /* bytes written to fd */
	char *wbuf;      /* pending tail bytes */
	size_t wlen;
	size_t file_base; /* blob_from_fd: where the content starts in fd */
	bool read_only;
};

struct blob *
blob_new(size_t head_max, const char *tmpdir)
{
	struct blob *b = xcalloc(1, sizeof(*b));
	b->head_max = head_max;
	b->tmpdir = tmpdir != NULL ? tmpdir : "/tmp";
	b->fd = -1;
	return b;
}

struct blob *
blob_from_fd(int fd, size_t off, size_t len)
{
	struct blob *b = xcalloc(1, sizeof(*b));
	b->fd = fd;
	b->file_base = off;
	b->file_len = len;
	b->read_only = true;
	return b;
}

void
blob_free(struct blob *b)
{
	if (b == NULL)
		return;
	if (b->fd >= 0)
		close(b->fd);
	free(b->head);
	free(b->wbuf);
	free(b);
}

static int
blob_open_tail(struct blob *b)
{
	b->fd = open(b->tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (b->fd < 0) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/mxguard-body.XXXXXX", b->tmpdir);
		b->fd = mkostemp(path, O_CLOEXEC);
		if (b->fd < 0)
			return -1;
		unlink(path);
	}
	b->wbuf = xmalloc(BLOB_WBUF);
	return 0;
}

int
blob_flush(struct blob *b)
{
	size_t off = 0;
	int rc = 0;
	while (off < b->wlen) {
		ssize_t w = write(b->fd, b->wbuf + off, b->wlen - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (w == 0)
				errno = EIO;
			rc = -1;
			break;
		}
		off += (size_t)w;
	}
	/* what was written counts even when the rest failed: a second call
	 * writes only the rest, never the same bytes twice */
	int e = errno;
	b->file_len += off;
	if (off > 0 && off < b->wlen)
		memmove(b->wbuf, b->wbuf + off, b->wlen - off);
	b->wlen -= off;
	errno = e;
	return rc;
}

int
blob_append(struct blob *b, const void *p, size_t n)
{
	const char *s = p;
	if (b->read_only) {
		errno = EBADF;
		return -1;
	}
	if (b->head_len < b->head_max) {
		size_t take = b->head_max - b->head_len;
		if (take > n)
			take = n;
		if (b->head_len + take > b->head_cap) {
			size_t cap = b->head_cap ? b->head_cap : 4096;
			while (cap < b->head_len + take)
				cap *= 2;
			if (cap > b->head_max)
				cap = b->head_max;
			b->head = xrealloc(b->head, cap);
			b->head_cap = cap;
		}
		memcpy(b->head + b->head_len, s, take);
		b->head_len += take;
		s += take;
		n -= take;
	}
	if (n == 0)
		return 0;
	if (b->fd < 0 && blob_open_tail(b) < 0)
		return -1;
	while (n > 0) {
		size_t take = BLOB_WBUF - b->wlen;
		if (take > n)
			take = n;
		memcpy(b->wbuf + b->wlen, s, take);
		b->wlen += take;
		s += take;
		n -= take;
		if (b->wlen == BLOB_WBUF && blob_flush(b) < 0)
			return -1;
	}
	return 0;
}

size_t
blob_len(const struct blob *b)
{
	return b->head_len + b->file_len + b->wlen;
}

const char *
blob_head(const struct blob *b, size_t *len)
{
	*len = b->head_len;
	return b->head;
}

ssize_t
blob_read(struct blob *b, size_t off, void *buf, size_t n)
{
	size_t total = blob_len(b);
	if (off >= total || n == 0)
		return 0;
	if (n > total - off)
		n = total - off;
	if (off < b->head_len) {
		size_t take = b->head_len - off;
		if (take > n)
			take = n;
		memcpy(buf, b->head + off, take);
		return (ssize_t)take;
	}
	if (b->wlen > 0 && blob_flush(b) < 0)
		return -1;
	ssize_t r;
	do {
		r = pread(b->fd, buf, n, (off_t)(b->file_base + off - b->head_len));
	} while (r < 0 && errno == EINTR);
	if (r == 0) { /* the file ends before the bytes written to it */
		errno = EIO;
		return -1;
	}
	return r;
}
