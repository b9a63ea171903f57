/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the gateway as a client meets it.  The input is what
 * a client sends, pipelined over a socket pair, to a session wired as the
 * daemon wires it (daemon/wiring.c): hosted domain example.test, a
 * recipients file, the content filter with etc/rules.example (GTUBE is
 * rejected), delivery to files.  Checked besides "no crash, no leak":
 *  - every message on disk was acknowledged with "250 2.0.0 Ok: ...", and
 *    every such reply has its message on disk;
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
#include <dirent.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "blob.h"
#include "connlimit.h"
#include "delivery.h"
#include "fuzz_client.h"
#include "fuzz_files.h"
#include "log.h"
#include "rcpt.h"
#include "runtime.h"
#include "smtpd.h"
#include "wiring.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct runtime *rt;
static char maildir[128];

static void
init(void)
{
	log_set_sink(fuzz_log_sink, NULL);
	char rcpts[128], conf[2048], path[128];
	snprintf(rcpts, sizeof(rcpts), "%s/recipients", fuzz_dir());
	fuzz_write(rcpts, "bob@example.test\npat@example.test\n", 34);
	snprintf(maildir, sizeof(maildir), "%s/mail", fuzz_dir());
	int n = snprintf(conf, sizeof(conf),
	                 "listen = [\"127.0.0.1:2525\"]; domains = [\"example.test\"];\n"
	                 "hostname = \"mx.example.test\";\n"
	                 "recipients = { file = \"%s\"; };\ndownstream = \"file:%s\";\n"
	                 "tmp_dir = \"%s\";\n"
	                 "limits = { message_size = 8192; line_length = 1000; recipients = 5;\n"
	                 "           errors = 4; unknown_recipients = 3; };\n"
	                 "content = { rules = \"%s/etc/rules.example\"; };\n",
	                 rcpts, maildir, fuzz_dir(), MX_SOURCE_DIR);
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
}

static bool closed;

/* "250 2.0.0 Ok: ID delivered" (to files), "Ok: queued as ID" */
static void
count_queued(const char *l, size_t len, void *arg)
{
	*(size_t *)arg += len > 14 && memcmp(l, "250 2.0.0 Ok: ", 14) == 0 &&
	                  (memmem(l, len, " delivered", 10) || memmem(l, len, "queued as", 9));
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
	if (rc == SMTPD_HOOK_DONE && v->code / 100 == 2 && hl == total &&
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
	bool skip = false;
	while (i < block) {
		const char *nl = memchr(p + i, '\n', block - i);
		size_t end = nl ? (size_t)(nl - p) + 1 : block, ll = end - i;
		bool blank = ll <= 2 && (p[i] == '\n' || p[i] == '\r');
		if (blank)
			break;
		if (p[i] != ' ' && p[i] != '\t')
			skip = ll >= 7 && strncasecmp(p + i, "X-Spam-", 7) == 0;
		if (!skip) {
			memcpy(out + o, p + i, ll);
			o += ll;
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
	char *end = strstr(buf, "\r\n\r\n"); /* the header block */
	if (end == NULL)
		end = buf + n;
	size_t status = 0, to = 0;
	bool envelope = true; /* ours come first, before our Received: */
	for (char *l = buf; l < end; l = strchr(l, '\n') + 1) {
		if (strncasecmp(l, "X-Mxguard-Envelope-", 19) != 0)
			envelope = false;
		if (envelope && strncasecmp(l, "X-Mxguard-Envelope-To: <", 24) == 0) {
			to++;
			if (!known(l + 24))
				abort();
		}
		if (strncasecmp(l, "X-Spam-Status:", 14) == 0)
			status++;
		if (strchr(l, '\n') == NULL)
			break;
	}
	if (to == 0 || status > 1) {
		if (getenv("FUZZ_DEBUG"))
			fwrite(buf, 1, n, stderr);
		abort();
	}
	/* past our lines (envelope, Received, verdict), the sender's message,
	 * every byte but its X-Spam-* headers */
	const char *base = strrchr(path, '/') + 1;
	struct sent *m = NULL;
	for (size_t i = 0; i < n_sent && m == NULL; i++)
		if (strncmp(base, sent_msgs[i].id, strlen(sent_msgs[i].id)) == 0 &&
		    strcmp(base + strlen(sent_msgs[i].id), ".eml") == 0)
			m = &sent_msgs[i];
	if (m == NULL)
		abort();
	/* in order: envelope lines, our Received: (and its continuation
	 * lines), our three verdict lines; the message starts after them */
	size_t off = 0;
	int phase = 0; /* 0 envelope, 1 Received, 2 verdict */
	static const char *const verdict[] = {"X-Spam-Score: ", "X-Spam-Status: ", "X-Spam-Symbols: "};
	size_t vi = 0;
	while (off < n) {
		const char *l = buf + off;
		const char *nl = memchr(l, '\n', n - off);
		if (nl == NULL)
			break;
		if (phase == 0 && strncmp(l, "X-Mxguard-Envelope-", 19) == 0) {
			/* ours */
		} else if (phase <= 1 && strncmp(l, "Received: ", 10) == 0 && phase == 0) {
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
	unlink(path);
}

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

	size_t queued = 0;
	if (!fuzz_converse(base, sv[1], data, size, &closed, count_queued, &queued))
		abort(); /* the client is gone: the session must be too */
	if (check_maildir() != queued)
		abort();
	for (size_t i = 0; i < n_sent; i++)
		free(sent_msgs[i].data);
	n_sent = 0;
	smtpd_ctx_free(ctx);
	rcpt_worker_end(base);
	delivery_free(ww.delivery);
	connlimit_free(ww.connlimit);
	event_base_free(base);
	close(sv[1]);
	return 0;
}
