/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	deliver_file - file:DIR, one .eml per message, written atomically
 * DESCRIPTION
 *	The message goes to DIR/.ID.tmp, is fsync'ed, renamed to DIR/ID.eml
 *	and the directory is fsync'ed: a reader never sees half a message,
 *	and a message reported delivered survives a crash.  The envelope comes
 *	first as a header block:
 *	    X-Mxguard-Envelope-From: <sender>
 *	    X-Mxguard-Envelope-To: <recipient>      (one per recipient)
 *	followed by the Received: header and the message as received (dot-
 *	stuffing undone, CRLF line ends).
 *	Every failure (a short or failed write, a body whose temporary file
 *	ends early, fsync, rename, the directory's fsync) returns -1 and
 *	leaves no .eml behind: the client gets 451 (452 when the disk is full)
 *	and tries again; nothing is reported delivered that is not on disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blob.h"
#include "delivery.h"
#include "fsutil.h"
#include "str.h"

static int
deliver_file_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) { /* no progress and no error: do not spin */
			errno = EIO;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
deliver_file_body(int fd, const struct envelope *env)
{
	char hdr[SMTP_PATH_MAX + 64];
	int n = snprintf(hdr, sizeof(hdr), "X-Mxguard-Envelope-From: <%s>\r\n", env->mail_from);
	if (deliver_file_all(fd, hdr, (size_t)n) < 0)
		return -1;
	for (size_t i = 0; i < env->n_rcpt; i++) {
		n = snprintf(hdr, sizeof(hdr), "X-Mxguard-Envelope-To: <%s>\r\n", env->rcpt[i].addr);
		if (deliver_file_all(fd, hdr, (size_t)n) < 0)
			return -1;
	}
	if (env->received && deliver_file_all(fd, env->received, strlen(env->received)) < 0)
		return -1;
	if (env->headers && deliver_file_all(fd, env->headers, env->headers_len) < 0)
		return -1;
	if (env->body == NULL)
		return 0;
	char buf[65536];
	size_t off = env->body_skip, end = blob_len(env->body);
	while (off < end) {
		ssize_t r = blob_read(env->body, off, buf, sizeof(buf));
		if (r < 0)
			return -1;
		if (r == 0) { /* the body's temporary file is shorter than written */
			errno = EIO;
			return -1;
		}
		if (deliver_file_all(fd, buf, (size_t)r) < 0)
			return -1;
		off += (size_t)r;
	}
	return 0;
}

int
deliver_file_write(const char *dir, const struct envelope *env, char *path_out, size_t len)
{
	char tmp[4200], final[4200];
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, env->id);
	snprintf(final, sizeof(final), "%s/%s.eml", dir, env->id);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0 && errno == EEXIST) {
		/* the debris of an attempt a crash cut short (ids are unique:
		 * no other writer has it); it kept the queue retrying until the
		 * message expired */
		unlink(tmp);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	}
	if (fd < 0)
		return -1;
	if (deliver_file_body(fd, env) < 0 || fsync(fd) < 0) {
		int e = errno;
		close(fd);
		unlink(tmp);
		errno = e;
		return -1;
	}
	if (close(fd) < 0 || rename(tmp, final) < 0) {
		int e = errno;
		unlink(tmp);
		errno = e;
		return -1;
	}
	if (fsutil_fsync_dir(dir) < 0) {
		/* the rename may not survive a crash: take the message back,
		 * the sender (or the queue) tries again */
		int e = errno;
		unlink(final);
		errno = e;
		return -1;
	}
	mx_strlcpy(path_out, final, len);
	return 0;
}

int
deliver_file_prepare(const char *dir, char *err, size_t errlen)
{
	if (fsutil_mkdirs(dir, 0750, err, errlen) < 0)
		return -1;
	if (access(dir, W_OK | X_OK) < 0) {
		snprintf(err, errlen, "%s is not writable: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}
