/* SPDX-License-Identifier: MIT */
/* What the SMTP session fuzz targets share: the client side of a socket
 * pair, and the check that a log line is one line. */
#ifndef MX_FUZZ_CLIENT_H
#define MX_FUZZ_CLIENT_H

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"

/* Every log line is one line: what a client sends (HELO names, paths,
 * bad commands, message text) is escaped, never a line break or a
 * control character that could forge a second entry in the mail log. */
static inline void
fuzz_log_sink(enum log_level level, const char *line, void *arg)
{
	(void)level, (void)arg;
	size_t n = strlen(line);
	if (getenv("FUZZ_DEBUG"))
		fprintf(stderr, "log: %s\n", line);
	if (n > 8192)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			abort();
}

/*
 * Plays the client on fd: sends data (all of it, pipelined), then shuts
 * its side, while running the loop of base and reading the replies; each
 * whole reply line goes to line_cb.  Returns when *closed is set (the
 * session is gone), or false after 8 s: the session's own timers (a close
 * waits for its output in 5 ms steps) end any wait, so that is a hang.
 */
static inline bool
fuzz_converse(struct event_base *base, int fd, const uint8_t *data, size_t size,
              const bool *closed, void (*line_cb)(const char *line, size_t len, void *arg),
              void *arg)
{
	static char out[1 << 16];
	size_t out_n = 0, sent = 0;
	bool shut = false;
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!*closed) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > 8)
			return false;
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (sent < size) {
			ssize_t w = send(fd, data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w > 0)
				sent += (size_t)w;
			else if (w < 0 && errno != EAGAIN)
				sent = size; /* the session closed its end */
		} else if (!shut) {
			shutdown(fd, SHUT_WR);
			shut = true;
		}
		ssize_t r = recv(fd, out + out_n, sizeof(out) - out_n, MSG_DONTWAIT);
		if (r > 0)
			out_n += (size_t)r;
		size_t off = 0;
		const char *nl;
		while ((nl = memchr(out + off, '\n', out_n - off)) != NULL) {
			size_t len = (size_t)(nl - out) + 1 - off;
			line_cb(out + off, len, arg);
			off += len;
		}
		if (off == 0 && out_n == sizeof(out))
			abort(); /* a reply line of 64 KB */
		memmove(out, out + off, out_n - off);
		out_n -= off;
	}
	return true;
}

#endif
