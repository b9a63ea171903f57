/* SPDX-License-Identifier: MIT */
/*
 * rcptload - RCPT TO load generator for bench/rcpt.py
 *
 *   rcptload -p PORT -c CONNECTIONS -n RCPTS -f ADDRESSES [-w WINDOW] [-b BATCH] [-o OFFSET]
 *
 * Opens CONNECTIONS sessions to 127.0.0.1:PORT (EHLO, MAIL FROM) and sends
 * RCPTS recipients in all, taken in turn from the ADDRESSES file (one a
 * line), pipelined: each session keeps WINDOW commands in flight.  Every
 * BATCH recipients a session sends RSET and MAIL FROM again (servers cap
 * recipients per message).  Prints one line:
 *   rcpts=N seconds=S rate=R 250=a 550=b 451=c other=d
 * The time runs from the first RCPT sent to the last reply read.  One
 * thread, poll(2), no allocation in the loop: the driver must outrun the
 * servers it measures.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXCONN 1024
#define BUFSZ 65536
#define QMAX 4096

enum kind { K_GREET, K_EHLO, K_MAIL, K_RCPT, K_RSET };

struct conn {
	int fd;
	char in[BUFSZ];
	size_t inlen;
	char out[BUFSZ];
	size_t outlen, outoff;
	unsigned char q[QMAX]; /* kinds of the replies awaited, a ring */
	unsigned qh, qn;
	long sent_rcpt;      /* recipients sent on this connection */
	long in_batch;
	int ready;           /* past EHLO and the first MAIL */
};

static char **addrs;
static long naddrs, next_addr, total, sent, answered, codes[4];
static int window = 50, batch = 500;

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
queue_cmd(struct conn *c, enum kind k, const char *fmt, const char *arg)
{
	int n = snprintf(c->out + c->outlen, BUFSZ - c->outlen, fmt, arg);
	if (n < 0 || (size_t)n >= BUFSZ - c->outlen) {
		fprintf(stderr, "rcptload: output buffer full\n");
		exit(1);
	}
	c->outlen += (size_t)n;
	c->q[(c->qh + c->qn) % QMAX] = (unsigned char)k;
	c->qn++;
}

/* Fills the window with recipients (and a new transaction when due). */
static void
refill(struct conn *c)
{
	while (c->ready && c->qn < (unsigned)window && sent < total && c->outlen < BUFSZ - 600) {
		if (c->in_batch >= batch) {
			queue_cmd(c, K_RSET, "RSET\r\n", NULL);
			queue_cmd(c, K_MAIL, "MAIL FROM:<%s>\r\n", "bench@load.test");
			c->in_batch = 0;
			continue;
		}
		queue_cmd(c, K_RCPT, "RCPT TO:<%s>\r\n", addrs[next_addr]);
		next_addr = (next_addr + 1) % naddrs;
		c->in_batch++;
		c->sent_rcpt++;
		sent++;
	}
}

static void
reply(struct conn *c, int code)
{
	if (c->qn == 0) {
		fprintf(stderr, "rcptload: unexpected reply %d\n", code);
		exit(1);
	}
	enum kind k = (enum kind)c->q[c->qh];
	c->qh = (c->qh + 1) % QMAX;
	c->qn--;
	switch (k) {
	case K_GREET:
		if (code != 220) {
			fprintf(stderr, "rcptload: greeting %d\n", code);
			exit(1);
		}
		queue_cmd(c, K_EHLO, "EHLO %s\r\n", "load.test");
		break;
	case K_EHLO:
		if (code != 250) {
			fprintf(stderr, "rcptload: EHLO got %d\n", code);
			exit(1);
		}
		queue_cmd(c, K_MAIL, "MAIL FROM:<%s>\r\n", "bench@load.test");
		break;
	case K_MAIL:
		if (code != 250) {
			fprintf(stderr, "rcptload: MAIL got %d\n", code);
			exit(1);
		}
		c->ready = 1;
		break;
	case K_RSET:
		break;
	case K_RCPT:
		answered++;
		codes[code == 250 ? 0 : code == 550 ? 1 : code == 451 ? 2 : 3]++;
		break;
	}
}

/* Parses complete reply lines; returns -1 on a protocol error. */
static int
parse(struct conn *c)
{
	size_t off = 0;
	for (;;) {
		char *nl = memchr(c->in + off, '\n', c->inlen - off);
		if (nl == NULL)
			break;
		char *line = c->in + off;
		size_t len = (size_t)(nl - line) + 1;
		if (len < 4)
			return -1;
		if (line[3] == ' ' || line[3] == '\r')
			reply(c, (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0'));
		off += len;
	}
	memmove(c->in, c->in + off, c->inlen - off);
	c->inlen -= off;
	return 0;
}

static int
load_addrs(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	char line[512];
	long cap = 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (*line == '\0')
			continue;
		if (naddrs == cap) {
			cap = cap ? cap * 2 : 1024;
			addrs = realloc(addrs, (size_t)cap * sizeof(*addrs));
		}
		addrs[naddrs++] = strdup(line);
	}
	fclose(f);
	return naddrs > 0 ? 0 : -1;
}

int
main(int argc, char **argv)
{
	int port = 0, nconn = 10, opt;
	const char *file = NULL;
	while ((opt = getopt(argc, argv, "p:c:n:f:w:b:o:")) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 'c': nconn = atoi(optarg); break;
		case 'n': total = atol(optarg); break;
		case 'f': file = optarg; break;
		case 'w': window = atoi(optarg); break;
		case 'b': batch = atoi(optarg); break;
		case 'o': next_addr = atol(optarg); break;
		default:
			fprintf(stderr, "usage: rcptload -p PORT -c CONNS -n RCPTS -f FILE [-w W] [-b B]\n");
			return 2;
		}
	}
	if (port <= 0 || file == NULL || total <= 0 || nconn < 1 || nconn > MAXCONN || window < 1 ||
	    window > QMAX / 2 || load_addrs(file) < 0) {
		fprintf(stderr, "rcptload: bad arguments or empty address file\n");
		return 2;
	}
	next_addr %= naddrs;
	static struct conn conns[MAXCONN];
	struct pollfd pfd[MAXCONN];
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	for (int i = 0; i < nconn; i++) {
		struct conn *c = &conns[i];
		c->fd = socket(AF_INET, SOCK_STREAM, 0);
		if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			perror("rcptload: connect");
			return 1;
		}
		int one = 1;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		fcntl(c->fd, F_SETFL, O_NONBLOCK);
		c->q[0] = K_GREET;
		c->qn = 1;
	}
	double t0 = 0, t1 = 0;
	int started = 0;
	while (answered < total) {
		for (int i = 0; i < nconn; i++) {
			struct conn *c = &conns[i];
			refill(c);
			if (!started && sent > 0) {
				started = 1;
				t0 = now();
			}
			pfd[i].fd = c->fd;
			pfd[i].events = POLLIN | (c->outoff < c->outlen ? POLLOUT : 0);
		}
		if (poll(pfd, (nfds_t)nconn, 30000) <= 0) {
			fprintf(stderr, "rcptload: no progress for 30 s (%ld of %ld answered)\n", answered,
			        total);
			return 1;
		}
		for (int i = 0; i < nconn; i++) {
			struct conn *c = &conns[i];
			if (pfd[i].revents & POLLOUT) {
				ssize_t w = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);
				if (w > 0)
					c->outoff += (size_t)w;
				if (c->outoff == c->outlen)
					c->outoff = c->outlen = 0;
			}
			if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t r = read(c->fd, c->in + c->inlen, BUFSZ - c->inlen);
				if (r <= 0 && !(r < 0 && errno == EAGAIN)) {
					fprintf(stderr, "rcptload: connection %d closed (%ld answered)\n", i,
					        answered);
					return 1;
				}
				if (r > 0) {
					c->inlen += (size_t)r;
					if (parse(c) < 0) {
						fprintf(stderr, "rcptload: bad reply\n");
						return 1;
					}
				}
			}
		}
	}
	t1 = now();
	double secs = t1 - t0;
	printf("rcpts=%ld seconds=%.3f rate=%.0f 250=%ld 550=%ld 451=%ld other=%ld\n", answered, secs,
	       (double)answered / secs, codes[0], codes[1], codes[2], codes[3]);
	for (int i = 0; i < nconn; i++)
		close(conns[i].fd);
	return codes[3] || codes[2] ? 3 : 0;
}
