/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the downstream SMTP/LMTP client against a server that
 * answers with the input's bytes.  The first byte picks LMTP or SMTP,
 * all-or-nothing or partial delivery, and how the replies are cut into
 * writes; the rest is everything the server says, sent as the client
 * asks (a well-behaved server's replies, a broken one's, or garbage),
 * then the server hangs up.  Checked besides "no crash, no leak": the
 * client answers exactly once; the deciding code is 0 or 200-599, and so
 * is each recipient's; an OK result means every recipient was taken
 * (2xx), or with partial delivery at least one.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "blob.h"
#include "envelope.h"
#include "fuzz_files.h"
#include "fuzz_server.h"
#include "log.h"
#include "smtpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int lfd = -1;
static struct sockaddr_in laddr;
static int done;
static struct smtpc_result res;

static void
log_sink(enum log_level level, const char *line, void *arg)
{
}

static void
init(void)
{
	log_set_sink(log_sink, NULL);
	lfd = fuzz_listen(&laddr);
}

static void
on_done(const struct smtpc_result *r, void *arg)
{
	res = *r;
	done++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (lfd < 0)
		init();
	if (size < 1)
		return 0;
	unsigned sel = data[0];
	const char *srv = (const char *)data + 1;
	size_t srv_n = size - 1;

	struct event_base *base = event_base_new();
	struct smtpc_pool *pool = smtpc_pool_new(base);
	struct envelope env;
	envelope_init(&env);
	strcpy(env.id, "FUZZ");
	strcpy(env.mail_from, "sender@remote.test");
	envelope_add_rcpt(&env, "alice@example.test");
	envelope_add_rcpt(&env, "bob@example.test");
	envelope_add_rcpt(&env, "carol@example.test");
	env.body = blob_new(64, fuzz_dir());
	static const char body[] = "Subject: hi\r\n\r\nhello\r\n.dot\r\n";
	blob_append(env.body, body, sizeof(body) - 1);

	struct smtpc_target t = {.lmtp = sel & 1, .name = "fuzz"};
	memcpy(&t.addr, &laddr, sizeof(laddr));
	t.addrlen = sizeof(laddr);
	struct smtpc_opts o = {.helo = "mx.test", .t_connect = 1000, .t_reply = 1000, .t_data = 1000,
	                       .t_idle = 1000, .partial = sel & 2, .tls = SMTPC_TLS_NONE};
	done = 0;
	smtpc_send(pool, &t, &o, &env, on_done, NULL);

	struct fuzz_server fs = {.lfd = lfd, .cfd = -1, .srv = srv, .n = srv_n, .cut = sel >> 2};
	/* the client's own timeouts (1 s) end any wait: 8 s is a hang */
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (; done == 0;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > 8)
			break;
		event_base_loop(base, EVLOOP_NONBLOCK);
		fuzz_server_step(&fs);
	}
	if (done != 1)
		abort();
	if (getenv("FUZZ_DEBUG"))
		fprintf(stderr, "status %d code %d stage %s text %s; rcpt %d %d %d\n", res.status, res.code,
		        res.stage, res.text, env.rcpt[0].code, env.rcpt[1].code, env.rcpt[2].code);
	if (res.code != 0 && (res.code < 200 || res.code > 599))
		abort();
	if (strnlen(res.text, sizeof(res.text)) >= sizeof(res.text) || res.stage == NULL)
		abort();
	for (size_t i = 0; i < env.n_rcpt; i++) {
		int c = env.rcpt[i].code;
		if (c != 0 && (c < 200 || c > 599))
			abort();
		if (strnlen(env.rcpt[i].reply, sizeof(env.rcpt[i].reply)) >= sizeof(env.rcpt[i].reply))
			abort();
	}
	/* all or nothing: OK only when every recipient was taken */
	if (res.status == SMTPC_OK && !o.partial)
		for (size_t i = 0; i < env.n_rcpt; i++)
			if (env.rcpt[i].code / 100 != 2)
				abort();
	/* partial: OK when at least one was */
	if (res.status == SMTPC_OK && o.partial) {
		bool any = false;
		for (size_t i = 0; i < env.n_rcpt; i++)
			any = any || env.rcpt[i].code / 100 == 2;
		if (!any)
			abort();
	}
	fuzz_server_end(&fs);
	smtpc_pool_free(pool);
	event_base_free(base);
	envelope_clear(&env);
	return 0;
}
