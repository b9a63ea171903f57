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
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "blob.h"
#include "config.h"
#include "fuzz_client.h"
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

static void
init(void)
{
	log_set_sink(fuzz_log_sink, NULL); /* the log lines are formatted, not shown */
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

/* A reply line: "DDD " or "DDD-", under 512 bytes, CRLF-ended. */
static void
check_reply(const char *l, size_t len, void *arg)
{
	(void)arg;
	if (len < 6 || len > 512 || l[len - 2] != '\r' || l[0] < '2' || l[0] > '5' || l[1] < '0' ||
	    l[1] > '9' || l[2] < '0' || l[2] > '9' || (l[3] != ' ' && l[3] != '-'))
		abort();
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

	fuzz_converse(base, sv[1], data, size, &closed, check_reply, NULL);
	if (!closed) /* the client is gone: the session must be too */
		abort();
	smtpd_ctx_free(ctx);
	event_base_free(base);
	close(sv[1]);
	return 0;
}
