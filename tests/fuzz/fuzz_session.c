/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a whole SMTP session.  The input is what a client
 * sends, all at once (pipelined) over a socket pair, to a real smtpd
 * session on a libevent loop; the hooks stand for the gateway's policy:
 * recipients at example.test are ours (those whose local part starts with
 * "p" answered later, from a timer, as a directory lookup is), every
 * other domain is relaying and refused.  Checked besides "no crash, no
 * leak":
 *  - every reply line is "DDD " or "DDD-", under 512 bytes, CRLF-ended;
 *  - a message is handed on only with recipients that were accepted, all
 *    at example.test (never an open relay), and within the size limit;
 *  - the session ends when the client has gone;
 *  - every log line is one line, without control characters.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "blob.h"
#include "config.h"
#include "fuzz_files.h"
#include "log.h"
#include "smtpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MSG_MAX 4096

static struct mx_config *cfg;
static bool closed;
static unsigned messages;

static bool
ours(const char *addr)
{
	const char *at = strrchr(addr, '@');
	return at != NULL && strcasecmp(at + 1, "example.test") == 0;
}

struct later {
	struct smtpd_session *s;
	struct smtpd_verdict v;
};

static void
later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct later *l = arg;
	smtpd_resume(l->s, &l->v);
	free(l);
}

static enum smtpd_hook_rc
hook_rcpt(struct smtpd_session *s, const struct smtp_addr *a, struct smtpd_verdict *v)
{
	if (!ours(a->addr) && !a->postmaster) {
		smtpd_verdict_init(v, REPLY_RELAY_DENIED);
		return SMTPD_HOOK_DONE;
	}
	smtpd_verdict_init(v, REPLY_RCPT_OK);
	if (a->local[0] != 'p')
		return SMTPD_HOOK_DONE;
	struct later *l = calloc(1, sizeof(*l));
	l->s = s;
	l->v = *v;
	struct timeval tv = {0, 0};
	event_base_once(smtpd_session_base(s), -1, EV_TIMEOUT, later_cb, l, &tv);
	return SMTPD_HOOK_PENDING;
}

static enum smtpd_hook_rc
hook_message(struct smtpd_session *s, struct envelope *env, struct smtpd_verdict *v)
{
	if (env->n_rcpt == 0)
		abort();
	for (size_t i = 0; i < env->n_rcpt; i++)
		if (!ours(env->rcpt[i].addr))
			abort();
	if (env->body == NULL || blob_len(env->body) > MSG_MAX)
		abort();
	messages++;
	smtpd_verdict_custom(v, 250, "2.0.0", "queued as fuzz");
	return SMTPD_HOOK_DONE;
}

static void
hook_close(struct smtpd_session *s)
{
	closed = true;
}

static const struct smtpd_hooks hooks = {
	.rcpt = hook_rcpt,
	.message = hook_message,
	.close = hook_close,
};

/* Every log line is one line: what a client sends (HELO names, paths,
 * bad commands) is escaped, never a line break or a control character
 * that could forge a second entry in the mail log. */
static void
log_sink(enum log_level level, const char *line, void *arg)
{
	size_t n = strlen(line);
	if (n > 8192)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			abort();
}

static void
init(void)
{
	log_set_sink(log_sink, NULL); /* the log lines are formatted, not shown */
	char path[128];
	snprintf(path, sizeof(path), "%s/r", fuzz_dir());
	fuzz_write(path, "", 0);
	char conf[1024];
	int n = snprintf(conf, sizeof(conf),
	                 "listen = [\"127.0.0.1:2525\"]; domains = [\"example.test\"];\n"
	                 "hostname = \"mx.example.test\";\n"
	                 "recipients = { file = \"%s\"; };\ndownstream = \"smtp:127.0.0.1:2\";\n"
	                 "tmp_dir = \"%s\";\n"
	                 "limits = { message_size = %d; line_length = 1000; recipients = 5;\n"
	                 "           errors = 4; unknown_recipients = 3; };\n",
	                 path, fuzz_dir(), MSG_MAX);
	snprintf(path, sizeof(path), "%s/mxguard.conf", fuzz_dir());
	fuzz_write(path, conf, (size_t)n);
	struct config_errors errs = {0};
	cfg = config_load(path, &errs);
	if (cfg == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msg[i]);
		abort();
	}
}

/* Checks the reply lines in out[0..n); returns the bytes checked. */
static size_t
check_replies(const char *out, size_t n)
{
	size_t off = 0;
	while (off < n) {
		const char *nl = memchr(out + off, '\n', n - off);
		if (nl == NULL)
			break; /* a line still coming */
		size_t len = (size_t)(nl - out - off) + 1;
		const char *l = out + off;
		if (len < 6 || len > 512 || l[len - 2] != '\r' || l[0] < '2' || l[0] > '5' ||
		    l[1] < '0' || l[1] > '9' || l[2] < '0' || l[2] > '9' || (l[3] != ' ' && l[3] != '-'))
			abort();
		off += len;
	}
	return off;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (cfg == NULL)
		init();
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	struct event_base *base = event_base_new();
	struct smtpd_ctx *ctx = smtpd_ctx_new(base, &hooks);
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	closed = false;
	evutil_make_socket_nonblocking(sv[0]);
	smtpd_session_start(ctx, sv[0], (struct sockaddr *)&peer, sizeof(peer), cfg, NULL, NULL);

	static char out[1 << 20];
	size_t out_n = 0, sent = 0, checked = 0;
	bool shut = false;
	/* the session's own timers (a close waits for its output in 5 ms
	 * steps) end any wait: 8 s is a hang */
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!closed) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > 8)
			break;
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (sent < size) {
			ssize_t w = send(sv[1], data + sent, size - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (w > 0) {
				sent += (size_t)w;
			} else if (w < 0 && errno != EAGAIN) {
				sent = size; /* the session closed its end */
			}
		} else if (!shut) {
			shutdown(sv[1], SHUT_WR);
			shut = true;
		}
		ssize_t r = recv(sv[1], out + out_n, sizeof(out) - out_n, MSG_DONTWAIT);
		if (r > 0) {
			out_n += (size_t)r;
			checked += check_replies(out + checked, out_n - checked);
			if (out_n > sizeof(out) / 2) { /* keep the tail */
				memmove(out, out + checked, out_n - checked);
				out_n -= checked, checked = 0;
			}
		}
	}
	if (!closed) /* the client is gone: the session must be too */
		abort();
	smtpd_ctx_free(ctx);
	event_base_free(base);
	close(sv[1]);
	return 0;
}
