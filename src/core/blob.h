/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	blob - an append-only message body: a memory head, a file tail
 * DESCRIPTION
 *	The first head_max bytes live in memory (grown as needed, never
 *	preallocated), so filters read the prefix of any message without a
 *	copy.  Bytes past head_max go to an unlinked temporary file in tmpdir,
 *	so a 50 MB message costs head_max of heap, not 50 MB.
 * LIMITS
 *	The caller enforces the message size limit; blob only stores.
 */
#ifndef MX_BLOB_H
#define MX_BLOB_H

#include <stddef.h>
#include <sys/types.h>

struct blob;

/* tmpdir is borrowed for the blob's lifetime. */
struct blob *blob_new(size_t head_max, const char *tmpdir);
void blob_free(struct blob *b);
/* A read-only blob over fd[off, off+len) (takes fd).  Appends fail. */
struct blob *blob_from_fd(int fd, size_t off, size_t len);
/* Appends n bytes. Returns 0, or -1 with errno set (disk full, I/O). */
int blob_append(struct blob *b, const void *p, size_t n);
/* Flushes buffered tail bytes to the file. 0 or -1 with errno. */
int blob_flush(struct blob *b);
size_t blob_len(const struct blob *b);
/* The in-memory prefix (up to head_max bytes); valid until the next append. */
const char *blob_head(const struct blob *b, size_t *len);
/* Copies up to n bytes from offset off into buf; returns the count (0 at
 * the end) or -1 with errno (EIO when the file ends before blob_len:
 * a short body is an error, never a shorter message).  Flushes pending
 * tail bytes first. */
ssize_t blob_read(struct blob *b, size_t off, void *buf, size_t n);

#endif
