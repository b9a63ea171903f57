/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the gateway as a client meets it.  The input is what
 * a client sends, pipelined over a socket pair, to a session wired as the
 * daemon wires it (daemon/wiring.c): hosted domain example.test, a
 * recipients file, the content filter with etc/rules.example (GTUBE is
 * rejected), delivery to files; built as fuzz_proxy (-DFUZZ_PROXY), the
 * delivery is to a mailbox server on the same loop, over SMTP, before the
 * client hears 250, and built as fuzz_callout (-DFUZZ_CALLOUT, with
 * FUZZ_PROXY) the recipients are asked of that server too, by callout, so
 * that every RCPT waits for an answer from the network; built as
 * fuzz_queue (-DFUZZ_QUEUE), the message is
 * written to the spool before 250 and the queue manager's thread delivers
 * it to files afterwards (each run waits for it).  Checked besides "no
 * crash, no leak":
 *  - every message on disk (or at the mailbox server) was acknowledged
 *    with "250 2.0.0 Ok: ...", and every such reply has its message there;
 *  - a message on disk goes only to recipients in the recipients file
 *    (user+tag as user), or to postmaster (never an open relay, never an
 *    unknown mailbox);
 *  - its header block has at most one X-Spam-Status (ours: a client's is
 *    dropped), and no message with GTUBE in it was accepted;
 *  - below our lines (envelope, Received, verdict) it is the message the
 *    client sent, byte for byte, but for the X-Spam-* headers of its
 *    header block;
 *  - every log line is one line, without control characters.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "blob.h"
#include "connlimit.h"
#include "delivery.h"
#include "fuzz_client.h"
#include "fuzz_files.h"
#include "fuzz_server.h"
#include "log.h"
#include "queue.h"
#include "rcpt.h"
#include "runtime.h"
#include "smtpd.h"
#include "wiring.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct runtime *rt;
static char maildir[128];

static bool known(const char *a);
static void check_delivered(const char *buf, size_t n, const char *id, bool file);

#ifdef FUZZ_PROXY
/*
 * The mailbox server, on the same event loop: a plain SMTP server that
 * takes every message (recipients must be known: the gateway checked
 * them), undoes the dot-stuffing and keeps what it got.
 */
static int fake_lfd = -1;
static struct sockaddr_in fake_addr;
static struct event *fake_lev;

struct fake_conn {
	int fd;
	struct event *ev;
	bool data, done;
	bool txn_unknown; /* this transaction asked for an unknown mailbox */
	size_t n;
	char in[1 << 16];
};
static struct fake_conn *fake_conns[64];
static size_t n_fake;
static char *down_msgs[64];
static size_t down_len[64], n_down;

static void
fake_listen(void)
{
	fake_lfd = fuzz_listen(&fake_addr);
}

static void
fake_say(struct fake_conn *c, const char *s)
{
	if (send(c->fd, s, strlen(s), MSG_NOSIGNAL) < 0 && errno != EPIPE && errno != ECONNRESET)
		abort(); /* a few bytes into an empty socket buffer */
}

/* The message between DATA and its dot, unstuffed. */
static void
fake_message(const char *p, size_t n)
{
	if (n_down >= sizeof(down_msgs) / sizeof(down_msgs[0]))
		abort();
	char *m = xmalloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		const char *nl = memchr(p + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - p) + 1 : n;
		size_t from = p[i] == '.' ? i + 1 : i;
		memcpy(m + o, p + from, end - from);
		o += end - from;
		i = end;
	}
	m[o] = '\0';
	down_msgs[n_down] = m;
	down_len[n_down++] = o;
}

static void
fake_read(evutil_socket_t fd, short what, void *arg)
{
	struct fake_conn *c = arg;
	ssize_t r = recv(fd, c->in + c->n, sizeof(c->in) - c->n, 0);
	if (r <= 0) {
		c->done = true;
		event_del(c->ev);
		return;
	}
	c->n += (size_t)r;
	size_t off = 0;
	for (;;) {
		const char *p = c->in + off;
		size_t left = c->n - off;
		if (c->data) {
			size_t mlen;
			if (left >= 3 && memcmp(p, ".\r\n", 3) == 0) {
				mlen = 0;
			} else {
				const char *e = memmem(p, left, "\r\n.\r\n", 5);
				if (e == NULL)
					break;
				mlen = (size_t)(e - p) + 2;
			}
			fake_message(p, mlen);
			off += mlen + 3;
			c->data = false;
			fake_say(c, "250 2.0.0 taken\r\n");
			continue;
		}
		const char *nl = memmem(p, left, "\r\n", 2);
		if (nl == NULL)
			break;
		size_t ll = (size_t)(nl - p);
		if (ll >= 4 && strncasecmp(p, "EHLO", 4) == 0) {
			fake_say(c, "250-fake.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n");
		} else if (ll >= 8 && strncasecmp(p, "RCPT TO:", 8) == 0) {
			char a[600];
			size_t al = ll - 8 < sizeof(a) - 1 ? ll - 8 : sizeof(a) - 1;
			memcpy(a, p + 8, al);
			a[al] = '\0';
#ifdef FUZZ_CALLOUT
			/* the callout asks for any address; a message is sent only to
			 * the ones said to exist (checked at DATA) */
			if (a[0] != '<' || !known(a + 1)) {
				c->txn_unknown = true;
				fake_say(c, "550 5.1.1 no such user\r\n");
			} else {
				fake_say(c, "250 2.1.5 ok\r\n");
			}
#else
			if (a[0] != '<' || !known(a + 1)) /* the gateway refused it */
				abort();
			fake_say(c, "250 2.1.5 ok\r\n");
#endif
		} else if (ll == 4 && strncasecmp(p, "DATA", 4) == 0) {
			if (c->txn_unknown) /* a message for a mailbox said not to exist */
				abort();
			c->data = true;
			fake_say(c, "354 go\r\n");
		} else if (ll == 4 && strncasecmp(p, "QUIT", 4) == 0) {
			fake_say(c, "221 bye\r\n");
		} else {
			if (ll >= 4 && (strncasecmp(p, "MAIL", 4) == 0 || strncasecmp(p, "RSET", 4) == 0))
				c->txn_unknown = false;
			fake_say(c, "250 2.0.0 ok\r\n"); /* MAIL, RSET, NOOP */
		}
		off += ll + 2;
	}
	memmove(c->in, c->in + off, c->n - off);
	c->n -= off;
	if (c->n == sizeof(c->in))
		abort(); /* the gateway sent 64 KB without a line end */
}

static void
fake_accept(evutil_socket_t fd, short what, void *arg)
{
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK);
	if (cfd < 0)
		return;
	if (n_fake >= sizeof(fake_conns) / sizeof(fake_conns[0]))
		abort(); /* one session does not need this many connections */
	int one = 1; /* each reply on its own, at once, as a server does */
	setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct fake_conn *c = xcalloc(1, sizeof(*c));
	c->fd = cfd;
	c->ev = event_new(arg, cfd, EV_READ | EV_PERSIST, fake_read, c);
	event_add(c->ev, NULL);
	fake_conns[n_fake++] = c;
	fake_say(c, "220 fake.test ESMTP\r\n");
}

/* After a run: every message the server took was acknowledged to the
 * client (count), and is what the client sent. */
static void
fake_check(size_t relayed)
{
	if (n_down != relayed) {
		if (getenv("FUZZ_DEBUG"))
			fprintf(stderr, "mailbox server took %zu, client told %zu\n", n_down, relayed);
		abort();
	}
	for (size_t i = 0; i < n_down; i++) {
		/* the id is in our Received: "... with ESMTP id ID" */
		const char *k = strstr(down_msgs[i], " id ");
		char id[40] = "";
		if (k != NULL)
			sscanf(k + 4, "%39[0-9a-f]", id);
		check_delivered(down_msgs[i], down_len[i], id, false);
		free(down_msgs[i]);
	}
	n_down = 0;
}

static void
fake_end(void)
{
	for (size_t i = 0; i < n_fake; i++) {
		event_free(fake_conns[i]->ev);
		close(fake_conns[i]->fd);
		free(fake_conns[i]);
	}
	n_fake = 0;
	event_free(fake_lev);
}
#endif

#ifdef FUZZ_QUEUE
static struct queue *fuzz_queue;

static int
queue_acquire(void *arg, struct queue_routes *out)
{
	(void)arg;
	out->cfg = rt->cfg;
	out->downstream = rt->ups;
	out->bounce = rt->bounce;
	out->token = NULL;
	return 0;
}

static void
queue_release(void *arg, void *token)
{
	(void)arg;
	(void)token;
}

static void
queue_end(void)
{
	queue_stop(fuzz_queue);
}

static size_t count_maildir(void);
#endif

static void
init(void)
{
#ifdef FUZZ_QUEUE
	/* the spool writer wakes the loops of the session and the manager
	 * from its thread, as in the daemon */
	if (evthread_use_pthreads() < 0)
		abort();
#endif
	log_set_sink(fuzz_log_sink, NULL);
	char rcpts[128], conf[2048], path[128];
	snprintf(rcpts, sizeof(rcpts), "%s/recipients", fuzz_dir());
	fuzz_write(rcpts, "bob@example.test\npat@example.test\n", 34);
	snprintf(maildir, sizeof(maildir), "%s/mail", fuzz_dir());
	char downstream[256];
#ifdef FUZZ_PROXY
	fake_listen();
	snprintf(downstream, sizeof(downstream), "smtp:127.0.0.1:%d", ntohs(fake_addr.sin_port));
#else
	snprintf(downstream, sizeof(downstream), "file:%s", maildir);
#endif
	int n = snprintf(conf, sizeof(conf),
	                 "listen = [\"127.0.0.1:2525\"]; domains = [\"example.test\"];\n"
	                 "hostname = \"mx.example.test\";\n"
#ifdef FUZZ_CALLOUT
	                 "recipients = { callout = { target = \"%s\"; };\n"
	                 "               cache = { positive_ttl = 0; negative_ttl = 0; }; };\n"
	                 "downstream = \"%s\";\n"
#else
	                 "recipients = { file = \"%s\"; };\ndownstream = \"%s\";\n"
#endif
	                 "tmp_dir = \"%s\";\n"
	                 "timeouts = { downstream_retry = \"0s\"; };\n"
	                 "limits = { message_size = 8192; line_length = 1000; recipients = 5;\n"
	                 "           errors = 4; unknown_recipients = 3; };\n"
	                 "content = { rules = \"%s/etc/rules.example\"; };\n"
#ifdef FUZZ_QUEUE
	                 "delivery = \"queue\";\n"
	                 "queue = { path = \"%s/queue\"; min_free = 0; writers = 1; };\n"
#endif
	                 ,
#ifdef FUZZ_CALLOUT
	                 downstream,
#else
	                 rcpts,
#endif
	                 downstream, fuzz_dir(), MX_SOURCE_DIR
#ifdef FUZZ_QUEUE
	                 ,
	                 fuzz_dir()
#endif
	);
	snprintf(path, sizeof(path), "%s/mxguard.conf", fuzz_dir());
	fuzz_write(path, conf, (size_t)n);
	struct config_errors errs = {0};
	rt = runtime_build(path, &errs, NULL, NULL);
	if (rt == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		abort();
	}
	char err[256];
	if (deliver_file_prepare(maildir, err, sizeof(err)) != 0)
		abort();
#ifdef FUZZ_QUEUE
	struct queue_opts qo = {.dir = rt->cfg->queue_path, .writers = 1,
	                        .hostname = rt->cfg->hostname, .acquire = queue_acquire,
	                        .release = queue_release};
	fuzz_queue = queue_start(&qo, err, sizeof(err));
	if (fuzz_queue == NULL) {
		fprintf(stderr, "queue: %s\n", err);
		abort();
	}
	atexit(queue_end);
#endif
}

static bool closed;

/* "250 2.0.0 Ok: ID delivered" (to files), "Ok: ID relayed (...)" (to a
 * mailbox server), "Ok: queued as ID" */
static void
count_queued(const char *l, size_t len, void *arg)
{
	if (getenv("FUZZ_DEBUG"))
		fprintf(stderr, "< %.*s", (int)len, l);
	*(size_t *)arg += len > 14 && memcmp(l, "250 2.0.0 Ok: ", 14) == 0 &&
	                  (memmem(l, len, " delivered", 10) || memmem(l, len, "queued as", 9) ||
	                   memmem(l, len, " relayed (", 10));
}

/* the messages acknowledged in this run, as the client sent them */
struct sent {
	char id[40];
	char *data;
	size_t n;
};
static struct sent sent_msgs[64];
static size_t n_sent;

/* The message as the filter gets it: with GTUBE in it, it must not be
 * accepted (file delivery answers at once, so the verdict is here). */
static enum smtpd_hook_rc
on_message(struct smtpd_session *s, struct envelope *env, struct smtpd_verdict *v)
{
	static const char gtube[] = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";
	size_t hl = 0;
	const char *head = env->body ? blob_head(env->body, &hl) : NULL;
	bool has = head != NULL && hl == blob_len(env->body) && memmem(head, hl, gtube, sizeof(gtube) - 1);
	enum smtpd_hook_rc rc = wiring_hooks.message(s, env, v);
	if (has && (rc != SMTPD_HOOK_DONE || v->code / 100 == 2))
		abort();
	size_t total = env->body ? blob_len(env->body) : 0;
	if (total == 0)
		hl = 0; /* an empty message: nothing in memory either */
	/* kept when accepted, or while the mailbox server is asked */
	if ((rc == SMTPD_HOOK_PENDING || v->code / 100 == 2) && hl == total &&
	    n_sent < sizeof(sent_msgs) / sizeof(sent_msgs[0])) {
		struct sent *m = &sent_msgs[n_sent++];
		snprintf(m->id, sizeof(m->id), "%s", env->id);
		m->data = xmalloc(hl + 1);
		if (hl)
			memcpy(m->data, head, hl);
		m->n = hl;
	}
	return rc;
}

/* What the message should look like downstream: the sender's message
 * with the X-Spam-* headers of its header block (and their continuation
 * lines) left out, every other byte as it came. */
static size_t
expected(const char *p, size_t n, char *out)
{
	size_t block = n >= 2 && p[0] == '\r' && p[1] == '\n' ? 2 : n;
	const char *e = block == n ? memmem(p, n, "\r\n\r\n", 4) : NULL;
	if (e != NULL)
		block = (size_t)(e - p) + 4;
	size_t o = 0, i = 0;
	bool skip = false, first = true;
	while (i < block) {
		const char *nl = memchr(p + i, '\n', block - i);
		size_t end = nl ? (size_t)(nl - p) + 1 : block, ll = end - i;
		bool blank = ll <= 2 && (p[i] == '\n' || p[i] == '\r');
		if (blank)
			break;
		bool cont = p[i] == ' ' || p[i] == '\t';
		if (!cont)
			skip = ll >= 7 && strncasecmp(p + i, "X-Spam-", 7) == 0;
		/* a continuation line first continues no header: dropped */
		if (!skip && !(cont && first)) {
			memcpy(out + o, p + i, ll);
			o += ll;
			first = false;
		}
		i = end;
	}
	memcpy(out + o, p + i, n - i);
	return o + n - i;
}

static void
on_close(struct smtpd_session *s)
{
	closed = true;
	wiring_hooks.close(s);
}

/* "ADDR>...": a mailbox of the recipients file, or postmaster; user+tag
 * is user's (rcpt/rcpt_file.c) */
static bool
known(const char *a)
{
	static const char *const users[] = {"bob", "pat", "postmaster"};
	const char *at = strchr(a, '@'), *gt = strchr(a, '>');
	if (at == NULL || gt == NULL || at > gt || strncasecmp(at, "@example.test>", 14) != 0)
		return false;
	const char *plus = memchr(a, '+', (size_t)(at - a));
	size_t ul = (size_t)((plus ? plus : at) - a);
	for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++)
		if (ul == strlen(users[i]) && strncasecmp(a, users[i], ul) == 0)
			return true;
	return false;
}

/* Checks a delivered message (buf[n], NUL-terminated) against the one
 * the client sent with that id. */
static void
check_delivered(const char *buf, size_t n, const char *id, bool file)
{
	const char *end = memmem(buf, n, "\r\n\r\n", 4); /* the header block */
	size_t hn = end ? (size_t)(end - buf) : n;
	size_t status = 0, to = 0;
	bool envelope = file; /* ours come first, before our Received: */
	for (size_t off = 0; off < hn;) {
		const char *l = buf + off;
		const char *nl = memchr(l, '\n', hn - off);
		if (strncasecmp(l, "X-Mxguard-Envelope-", 19) != 0)
			envelope = false;
		if (envelope && strncasecmp(l, "X-Mxguard-Envelope-To: <", 24) == 0) {
			to++;
			if (!known(l + 24))
				abort();
		}
		if (strncasecmp(l, "X-Spam-Status:", 14) == 0)
			status++;
		if (nl == NULL)
			break;
		off = (size_t)(nl - buf) + 1;
	}
	if ((file && to == 0) || status > 1) {
		if (getenv("FUZZ_DEBUG"))
			fwrite(buf, 1, n, stderr);
		abort();
	}
	/* past our lines (envelope, Received, verdict), the sender's message,
	 * every byte but its X-Spam-* headers */
	struct sent *m = NULL;
	for (size_t i = 0; i < n_sent && m == NULL; i++)
		if (strcmp(id, sent_msgs[i].id) == 0)
			m = &sent_msgs[i];
	if (m == NULL) {
		fprintf(stderr, "delivered message %s was not sent in this run\n", id);
		abort();
	}
	/* in order: envelope lines, our Received: (and its continuation
	 * lines), our three verdict lines; the message starts after them */
	size_t off = 0;
	int phase = 0; /* 0 envelope (files only), 1 Received, 2 verdict */
	static const char *const verdict[] = {"X-Spam-Score: ", "X-Spam-Status: ", "X-Spam-Symbols: "};
	size_t vi = 0;
	while (off < n) {
		const char *l = buf + off;
		const char *nl = memchr(l, '\n', n - off);
		if (nl == NULL)
			break;
		if (file && phase == 0 && strncmp(l, "X-Mxguard-Envelope-", 19) == 0) {
			/* ours */
		} else if (phase == 0 && strncmp(l, "Received: ", 10) == 0) {
			phase = 1;
		} else if (phase == 1 && l[0] == '\t') {
			/* its continuation */
		} else if (phase >= 1 && vi < 3 && strncmp(l, verdict[vi], strlen(verdict[vi])) == 0) {
			phase = 2;
			vi++;
		} else {
			break;
		}
		off = (size_t)(nl - buf) + 1;
	}
	static char want[1 << 16];
	size_t wn = expected(m->data, m->n, want);
	if (wn != n - off || memcmp(want, buf + off, wn) != 0) {
		if (getenv("FUZZ_DEBUG")) {
			fprintf(stderr, "--- delivered\n");
			fwrite(buf + off, 1, n - off, stderr);
			fprintf(stderr, "--- expected\n");
			fwrite(want, 1, wn, stderr);
		}
		abort();
	}
}

#ifndef FUZZ_PROXY
/* Checks one delivered file and removes it. */
static void
check_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		abort();
	static char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char id[40];
	const char *base = strrchr(path, '/') + 1, *dot = strrchr(base, '.');
	if (dot == NULL || strcmp(dot, ".eml") != 0 || (size_t)(dot - base) >= sizeof(id))
		abort();
	memcpy(id, base, (size_t)(dot - base));
	id[dot - base] = '\0';
	check_delivered(buf, n, id, true);
	unlink(path);
}

#ifdef FUZZ_QUEUE
/* The messages delivered so far (not the files being written). */
static size_t
count_maildir(void)
{
	DIR *d = opendir(maildir);
	if (d == NULL)
		abort();
	size_t files = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		files += de->d_name[0] != '.';
	closedir(d);
	return files;
}
#endif

static size_t
check_maildir(void)
{
	DIR *d = opendir(maildir);
	if (d == NULL)
		abort();
	size_t files = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		char p[512];
		snprintf(p, sizeof(p), "%s/%s", maildir, de->d_name);
		check_file(p);
		files++;
	}
	closedir(d);
	return files;
}
#endif

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (rt == NULL)
		init();
	static struct smtpd_hooks hooks;
	hooks = wiring_hooks;
	hooks.close = on_close;
	hooks.message = on_message;

	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	struct event_base *base = event_base_new();
	struct wiring_worker ww = {.base = base, .delivery = delivery_new(base),
	                           .connlimit = connlimit_new()};
#ifdef FUZZ_QUEUE
	ww.queue = fuzz_queue;
#endif
	struct smtpd_ctx *ctx = smtpd_ctx_new(base, &hooks);
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	if (connlimit_acquire(ww.connlimit, (struct sockaddr *)&peer, 100, 100) != CONNLIMIT_OK)
		abort();
	struct wiring_session *ws = xcalloc(1, sizeof(*ws));
	ws->rt = runtime_ref(rt);
	ws->w = &ww;
	memcpy(&ws->peer, &peer, sizeof(peer));
	closed = false;
	evutil_make_socket_nonblocking(sv[0]);
	smtpd_session_start(ctx, sv[0], (struct sockaddr *)&peer, sizeof(peer), rt->cfg, NULL, ws);
#ifdef FUZZ_PROXY
	fake_lev = event_new(base, fake_lfd, EV_READ | EV_PERSIST, fake_accept, base);
	event_add(fake_lev, NULL);
#endif

	size_t queued = 0;
	if (!fuzz_converse(base, sv[1], data, size, &closed, count_queued, &queued))
		abort(); /* the client is gone: the session must be too */
#ifdef FUZZ_PROXY
	fake_check(queued);
#else
#ifdef FUZZ_QUEUE
	/* the queue manager delivers on its own thread, at once (there is
	 * no retry before a first attempt): wait for it, 10 s at most */
	for (int i = 0; i < 10000 && count_maildir() < queued; i++)
		usleep(1000);
#endif
	size_t files = check_maildir();
	if (files != queued) {
		fprintf(stderr, "%zu messages delivered, %zu acknowledged\n", files, queued);
		abort();
	}
#endif
	for (size_t i = 0; i < n_sent; i++)
		free(sent_msgs[i].data);
	n_sent = 0;
	smtpd_ctx_free(ctx);
#ifdef FUZZ_QUEUE
	queue_worker_end(fuzz_queue, base); /* as a worker does when its loop ends */
#endif
	rcpt_worker_end(base);
	delivery_free(ww.delivery);
	connlimit_free(ww.connlimit);
#ifdef FUZZ_PROXY
	fake_end();
#endif
	event_base_free(base);
	close(sv[1]);
	return 0;
}
