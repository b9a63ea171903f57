/* SPDX-License-Identifier: MIT */
/* What the targets that play a peer server share: a listening socket on
 * loopback, and a server that says the input's bytes. */
#ifndef MX_FUZZ_SERVER_H
#define MX_FUZZ_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* A non-blocking listening socket on 127.0.0.1, its port in *addr. */
static inline int
fuzz_listen(struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(0x7f000001);
	addr->sin_port = 0;
	socklen_t l = sizeof(*addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)addr, sizeof(*addr)) != 0 || listen(fd, 16) != 0 ||
	    getsockname(fd, (struct sockaddr *)addr, &l) != 0)
		abort();
	return fd;
}

/*
 * A server that takes the first connection on lfd and sends it srv[0..n)
 * in writes of cut bytes (0: all at once), reading and dropping what the
 * client says, then shuts its sending side; a later connection (a client
 * trying again) is closed at once.  Call fuzz_server_step() between turns
 * of the client's event loop, fuzz_server_end() after.
 */
struct fuzz_server {
	int lfd, cfd;
	const char *srv;
	size_t n, sent;
	unsigned cut;
};

static inline void
fuzz_server_step(struct fuzz_server *fs)
{
	char sink[4096];
	if (fs->cfd < 0) {
		fs->cfd = accept4(fs->lfd, NULL, NULL, SOCK_NONBLOCK);
		return;
	}
	while (recv(fs->cfd, sink, sizeof(sink), 0) > 0)
		; /* what the client says is not checked here */
	if (fs->sent < fs->n) {
		size_t left = fs->n - fs->sent;
		size_t k = fs->cut && fs->cut < left ? fs->cut : left;
		ssize_t w = send(fs->cfd, fs->srv + fs->sent, k, MSG_NOSIGNAL);
		if (w > 0)
			fs->sent += (size_t)w;
		else if (w < 0 && errno != EAGAIN)
			fs->sent = fs->n;
	} else if (fs->sent == fs->n) {
		shutdown(fs->cfd, SHUT_WR); /* the server has said all it will */
		fs->sent++;
	} else {
		int extra;
		while ((extra = accept4(fs->lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0)
			close(extra);
	}
}

static inline void
fuzz_server_end(struct fuzz_server *fs)
{
	if (fs->cfd >= 0)
		close(fs->cfd);
	fs->cfd = -1;
	int extra; /* connections left in the backlog */
	while ((extra = accept4(fs->lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0)
		close(extra);
}

#endif
