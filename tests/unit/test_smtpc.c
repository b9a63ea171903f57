/* SPDX-License-Identifier: MIT */
/*
 * Unit tests: smtpc against an in-process fake SMTP/LMTP peer on loopback
 * (the Test::Nginx::SMTP idea): pipelining, dot-stuffing on the wire,
 * pooling, refusals, deferrals, LMTP per-recipient replies, hang-ups.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "blob.h"
#include "smtpc.h"

/* ---- the fake peer ------------------------------------------------------ */

struct fake {
	struct event_base *base;
	struct evconnlistener *l;
	int port;
	const char *greeting;    /* default "220 fake ESMTP" */
	bool pipelining, lmtp;
	bool verbose_ehlo; /* 600 bytes of other capabilities before PIPELINING */
	const char *rcpt_reply[4]; /* per RCPT index; NULL = 250 */
	const char *dot_reply[4];  /* per reply after "."; NULL = 250 */
	bool hangup_after_body;    /* close instead of answering "." */
	bool silent_after_body;    /* never answer "." */
	int connections, messages;
	char transcript[4096];
	char data[8192];
	size_t data_len;
	struct bufferevent *last;
};

struct fake_conn {
	struct fake *f;
	bool in_data;
	int rcpt_idx, rcpt_ok;
};

static void
fake_out(struct bufferevent *b, const char *s)
{
	evbuffer_add(bufferevent_get_output(b), s, strlen(s));
	evbuffer_add(bufferevent_get_output(b), "\r\n", 2);
}

static void
fake_read(struct bufferevent *b, void *arg)
{
	struct fake_conn *fc = arg;
	struct fake *f = fc->f;
	struct evbuffer *in = bufferevent_get_input(b);
	for (;;) {
		if (fc->in_data) {
			struct evbuffer_ptr p = evbuffer_search(in, "\r\n.\r\n", 5, NULL);
			if (p.pos < 0)
				return;
			size_t n = (size_t)p.pos + 5;
			f->data_len = n < sizeof(f->data) ? n : sizeof(f->data);
			evbuffer_remove(in, f->data, f->data_len);
			if (n > f->data_len)
				evbuffer_drain(in, n - f->data_len);
			fc->in_data = false;
			f->messages++;
			if (f->silent_after_body)
				return;
			if (f->hangup_after_body) {
				bufferevent_free(b);
				free(fc);
				return;
			}
			int replies = f->lmtp ? fc->rcpt_ok : 1;
			for (int i = 0; i < replies; i++)
				fake_out(b, f->dot_reply[i] ? f->dot_reply[i] : "250 2.0.0 Ok: queued as FAKE");
			continue;
		}
		size_t len;
		char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF_STRICT);
		if (line == NULL)
			return;
		strncat(f->transcript, line, sizeof(f->transcript) - strlen(f->transcript) - 2);
		strcat(f->transcript, "|");
		if (!strncmp(line, "EHLO", 4) || !strncmp(line, "LHLO", 4)) {
			fake_out(b, "250-fake");
			for (int i = 0; f->verbose_ehlo && i < 10; i++)
				fake_out(b, "250-XFILLER-CAPABILITY-WITH-A-LONG-NAME AND SOME PARAMETERS TO MAKE IT LONG");
			if (f->pipelining)
				fake_out(b, "250-PIPELINING");
			fake_out(b, "250-SIZE 100000\r\n250 8BITMIME");
		} else if (!strncmp(line, "HELO", 4)) {
			fake_out(b, "250 fake");
		} else if (!strncmp(line, "MAIL", 4)) {
			fc->rcpt_idx = fc->rcpt_ok = 0;
			fake_out(b, "250 2.1.0 Ok");
		} else if (!strncmp(line, "RCPT", 4)) {
			const char *r = fc->rcpt_idx < 4 ? f->rcpt_reply[fc->rcpt_idx] : NULL;
			fc->rcpt_idx++;
			if (r == NULL)
				fc->rcpt_ok++;
			fake_out(b, r ? r : "250 2.1.5 Ok");
		} else if (!strncmp(line, "DATA", 4)) {
			if (fc->rcpt_ok == 0) {
				fake_out(b, "554 5.5.1 Error: no valid recipients");
			} else {
				fake_out(b, "354 End data with <CR><LF>.<CR><LF>");
				fc->in_data = true;
			}
		} else if (!strncmp(line, "RSET", 4)) {
			fake_out(b, "250 2.0.0 Ok");
		} else if (!strncmp(line, "QUIT", 4)) {
			fake_out(b, "221 2.0.0 Bye");
		} else {
			fake_out(b, "502 5.5.2 Error: command not recognized");
		}
		free(line);
	}
}

static void
fake_event(struct bufferevent *b, short what, void *arg)
{
	(void)what;
	struct fake_conn *fc = arg;
	if (fc->f->last == b)
		fc->f->last = NULL;
	bufferevent_free(b);
	free(fc);
}

static void
fake_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
	(void)l;
	(void)sa;
	(void)len;
	struct fake *f = arg;
	f->connections++;
	struct bufferevent *b = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
	struct fake_conn *fc = calloc(1, sizeof(*fc));
	fc->f = f;
	f->last = b;
	bufferevent_setcb(b, fake_read, NULL, fake_event, fc);
	bufferevent_enable(b, EV_READ | EV_WRITE);
	fake_out(b, f->greeting ? f->greeting : "220 fake ESMTP");
}

static void
fake_start(struct fake *f, struct event_base *base)
{
	memset(f, 0, sizeof(*f));
	f->base = base;
	f->pipelining = true;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	f->l = evconnlistener_new_bind(base, fake_accept, f, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
	                               16, (struct sockaddr *)&sin, sizeof(sin));
	assert_non_null(f->l);
	struct sockaddr_in bound;
	socklen_t bl = sizeof(bound);
	getsockname(evconnlistener_get_fd(f->l), (struct sockaddr *)&bound, &bl);
	f->port = ntohs(bound.sin_port);
}

/* ---- the client side ---------------------------------------------------- */

struct ctx {
	struct event_base *base;
	struct fake f;
	struct smtpc_pool *pool;
	struct envelope env;
	struct smtpc_result res;
	int done;
};

static void
on_done(const struct smtpc_result *r, void *arg)
{
	struct ctx *c = arg;
	c->res = *r;
	c->done++;
	event_base_loopbreak(c->base);
}

static void
make_env(struct envelope *e, const char *body, int nrcpt)
{
	envelope_init(e);
	strcpy(e->id, "TESTID");
	strcpy(e->mail_from, "sender@remote.test");
	envelope_add_rcpt(e, "alice@example.test");
	if (nrcpt > 1)
		envelope_add_rcpt(e, "bob@example.test");
	if (nrcpt > 2)
		envelope_add_rcpt(e, "carol@example.test");
	e->received = strdup("Received: from test\r\n");
	e->body = blob_new(16, "/tmp"); /* tiny head: exercise the file tail too */
	blob_append(e->body, body, strlen(body));
	blob_flush(e->body);
}

static void
send_only(struct ctx *c, bool lmtp, bool partial)
{
	struct smtpc_target t = {.lmtp = lmtp, .name = "fake"};
	struct sockaddr_in *sin = (struct sockaddr_in *)&t.addr;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(0x7f000001);
	sin->sin_port = htons((uint16_t)c->f.port);
	t.addrlen = sizeof(*sin);
	struct smtpc_opts o = {.helo = "mx.test", .t_connect = 2000, .t_reply = 2000,
	                       .t_data = 2000, .t_idle = 5000, .partial = partial};
	int before = c->done;
	smtpc_send(c->pool, &t, &o, &c->env, on_done, c);
	assert_int_equal(c->done, before); /* never calls back from inside smtpc_send */
}

static void
send_mode_and_wait(struct ctx *c, bool lmtp, bool partial)
{
	int before = c->done;
	send_only(c, lmtp, partial);
	while (c->done == before)
		event_base_dispatch(c->base);
}

static void
send_and_wait(struct ctx *c, bool lmtp)
{
	send_mode_and_wait(c, lmtp, false);
}

static int
setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	c->base = event_base_new();
	fake_start(&c->f, c->base);
	c->pool = smtpc_pool_new(c->base);
	*state = c;
	return 0;
}

static int
teardown(void **state)
{
	struct ctx *c = *state;
	smtpc_pool_free(c->pool);
	if (c->f.l)
		evconnlistener_free(c->f.l);
	/* let closes happen */
	struct timeval tv = {0, 20000};
	event_base_loopexit(c->base, &tv);
	event_base_dispatch(c->base);
	envelope_clear(&c->env);
	event_base_free(c->base);
	free(c);
	return 0;
}

static void
test_ok_stuffing_and_reuse(void **state)
{
	struct ctx *c = *state;
	make_env(&c->env, "Subject: x\r\n\r\n.dot line\r\n..two\r\nend\r\n", 2);
	send_and_wait(c, false);
	assert_int_equal(c->res.status, SMTPC_OK);
	assert_int_equal(c->res.code, 250);
	assert_string_equal(c->res.enh, "2.0.0");
	assert_string_equal(c->res.text, "Ok: queued as FAKE");
	assert_false(c->res.reused);
	const char *want = "Received: from test\r\nSubject: x\r\n\r\n..dot line\r\n...two\r\nend\r\n.\r\n";
	assert_int_equal(c->f.data_len, strlen(want));
	assert_memory_equal(c->f.data, want, strlen(want));
	assert_non_null(strstr(c->f.transcript, "MAIL FROM:<sender@remote.test> SIZE="));
	assert_non_null(strstr(c->f.transcript, "RCPT TO:<alice@example.test>|RCPT TO:<bob@example.test>|DATA|"));
	/* the second message reuses the connection */
	send_and_wait(c, false);
	assert_int_equal(c->res.status, SMTPC_OK);
	assert_true(c->res.reused);
	assert_int_equal(c->f.connections, 1);
	assert_int_equal(c->f.messages, 2);
	assert_int_equal(smtpc_pool_idle(c->pool), 1);
}

static void
test_rcpt_refused(void **state)
{
	struct ctx *c = *state;
	c->f.rcpt_reply[1] = "550 5.1.1 <bob@example.test>: Recipient address rejected";
	make_env(&c->env, "hello\r\n", 2);
	send_and_wait(c, false);
	/* all or nothing: nothing is delivered, the refusal is passed on */
	assert_int_equal(c->res.status, SMTPC_PERM);
	assert_int_equal(c->res.code, 550);
	assert_string_equal(c->res.enh, "5.1.1");
	assert_string_equal(c->res.stage, "rcpt");
	assert_non_null(strstr(c->res.text, "<bob@example.test>"));
	assert_int_equal(c->f.messages, 0);
	assert_int_equal(c->env.rcpt[0].code, 250);
	assert_int_equal(c->env.rcpt[1].code, 550);
}

static void
test_rcpt_deferred_outranks(void **state)
{
	struct ctx *c = *state;
	c->f.rcpt_reply[0] = "550 5.1.1 unknown";
	c->f.rcpt_reply[1] = "450 4.2.0 try later";
	make_env(&c->env, "hello\r\n", 2);
	send_and_wait(c, false);
	assert_int_equal(c->res.status, SMTPC_TEMP);
	assert_int_equal(c->res.code, 450);
	assert_int_equal(c->f.messages, 0);
	/* the connection was left with RSET and stays usable */
	c->f.rcpt_reply[0] = c->f.rcpt_reply[1] = NULL;
	send_and_wait(c, false);
	assert_int_equal(c->res.status, SMTPC_OK);
	assert_int_equal(c->f.connections, 1);
	assert_non_null(strstr(c->f.transcript, "RSET|"));
}

static void
test_greeting_421(void **state)
{
	struct ctx *c = *state;
	c->f.greeting = "421 4.3.2 go away";
	make_env(&c->env, "hello\r\n", 1);
	send_and_wait(c, false);
	assert_int_equal(c->res.status, SMTPC_CONNFAIL);
	assert_string_equal(c->res.stage, "greeting");
}

static void
test_refused(void **state)
{
	struct ctx *c = *state;
	evconnlistener_free(c->f.l); /* nothing listens on the port now */
	c->f.l = NULL;
	make_env(&c->env, "hello\r\n", 1);
	send_and_wait(c, false);
	assert_int_equal(c->res.status, SMTPC_CONNFAIL);
	assert_string_equal(c->res.stage, "connect");
}

static void
test_dot_deferred(void **state)
{
	struct ctx *c = *state;
	c->f.dot_reply[0] = "451 4.3.0 queue file write error";
	make_env(&c->env, "hello\r\n", 1);
	send_and_wait(c, false);
	assert_int_equal(c->res.status, SMTPC_TEMP);
	assert_int_equal(c->res.code, 451);
	assert_string_equal(c->res.stage, "dot");
}

static void
test_hangup_after_body(void **state)
{
	struct ctx *c = *state;
	c->f.hangup_after_body = true;
	make_env(&c->env, "hello\r\n", 1);
	send_and_wait(c, false);
	/* the message may have arrived: defer, never fail over */
	assert_int_equal(c->res.status, SMTPC_TEMP);
	assert_int_equal(c->res.code, 0);
}

static void
test_no_pipelining(void **state)
{
	struct ctx *c = *state;
	c->f.pipelining = false;
	c->f.rcpt_reply[0] = "550 5.1.1 unknown";
	make_env(&c->env, "hello\r\n", 2);
	send_and_wait(c, false);
	assert_int_equal(c->res.status, SMTPC_PERM);
	/* without pipelining, no DATA after a refused recipient */
	assert_null(strstr(c->f.transcript, "DATA"));
	c->f.rcpt_reply[0] = NULL;
	send_and_wait(c, false);
	assert_int_equal(c->res.status, SMTPC_OK);
	assert_int_equal(c->f.messages, 1);
}

/* Capabilities are read from every line of the EHLO reply: they came from
 * its text cut at 400 bytes, and a verbose reply hid PIPELINING (or
 * SMTPUTF8, STARTTLS) listed late (found in review, 2026-11-29). With
 * pipelining, DATA goes out even behind a refused recipient. */
static void
test_long_ehlo_reply(void **state)
{
	struct ctx *c = *state;
	c->f.verbose_ehlo = true;
	c->f.rcpt_reply[0] = "550 5.1.1 unknown";
	make_env(&c->env, "hello\r\n", 2);
	send_and_wait(c, false);
	assert_int_equal(c->res.status, SMTPC_PERM);
	assert_non_null(strstr(c->f.transcript, "DATA"));
}

static void
test_lmtp_mixed(void **state)
{
	struct ctx *c = *state;
	c->f.lmtp = true;
	c->f.dot_reply[1] = "552 5.2.2 <bob@example.test> Mailbox full";
	make_env(&c->env, "hello\r\n", 2);
	send_and_wait(c, true);
	assert_int_equal(c->res.status, SMTPC_PERM);
	assert_int_equal(c->res.code, 552);
	assert_non_null(strstr(c->res.text, "delivered to 1 of 2 recipients"));
	assert_non_null(strstr(c->f.transcript, "LHLO mx.test"));
}

static void
test_stale_pooled_connection(void **state)
{
	struct ctx *c = *state;
	make_env(&c->env, "hello\r\n", 1);
	send_and_wait(c, false);
	assert_int_equal(smtpc_pool_idle(c->pool), 1);
	/* the peer drops the idle connection */
	struct fake_conn *fc = NULL;
	bufferevent_getcb(c->f.last, NULL, NULL, NULL, (void **)&fc);
	bufferevent_free(c->f.last);
	free(fc);
	c->f.last = NULL;
	struct timeval tv = {0, 50000};
	event_base_loopexit(c->base, &tv);
	event_base_dispatch(c->base);
	assert_int_equal(smtpc_pool_idle(c->pool), 0); /* noticed while idle */
	send_and_wait(c, false);
	assert_int_equal(c->res.status, SMTPC_OK);
	assert_int_equal(c->f.connections, 2);
}

/* ---- per-recipient replies (opts.partial, the queue's mode) ------------- */

static void
test_partial_mixed_rcpt(void **state)
{
	struct ctx *c = *state;
	c->f.rcpt_reply[1] = "450 4.2.0 <bob@example.test>: mailbox busy";
	c->f.rcpt_reply[2] = "550 5.1.1 <carol@example.test>: user unknown";
	make_env(&c->env, "hello\r\n", 3);
	send_mode_and_wait(c, false, true);
	/* the message goes to the one recipient accepted */
	assert_int_equal(c->res.status, SMTPC_OK);
	assert_int_equal(c->res.code, 250);
	assert_string_equal(c->res.stage, "dot");
	assert_int_equal(c->f.messages, 1);
	assert_non_null(strstr(c->f.transcript, "RCPT TO:<alice@example.test>|RCPT "
	                                        "TO:<bob@example.test>|RCPT TO:<carol@example.test>|DATA|"));
	/* each recipient carries its own reply: the accepted one the reply to
	 * the dot, the refused ones their RCPT reply */
	assert_int_equal(c->env.rcpt[0].code, 250);
	assert_string_equal(c->env.rcpt[0].reply, "250 2.0.0 Ok: queued as FAKE");
	assert_int_equal(c->env.rcpt[1].code, 450);
	assert_string_equal(c->env.rcpt[1].reply, "450 4.2.0 <bob@example.test>: mailbox busy");
	assert_int_equal(c->env.rcpt[2].code, 550);
	assert_string_equal(c->env.rcpt[2].reply, "550 5.1.1 <carol@example.test>: user unknown");
}

static void
test_partial_mixed_rcpt_no_pipelining(void **state)
{
	struct ctx *c = *state;
	c->f.pipelining = false;
	c->f.rcpt_reply[0] = "550 5.1.1 <alice@example.test>: user unknown";
	c->f.rcpt_reply[2] = "451 4.3.0 <carol@example.test>: try again";
	make_env(&c->env, "hello\r\n", 3);
	send_mode_and_wait(c, false, true);
	assert_int_equal(c->res.status, SMTPC_OK);
	assert_int_equal(c->f.messages, 1);
	assert_int_equal(c->env.rcpt[0].code, 550);
	assert_string_equal(c->env.rcpt[0].reply, "550 5.1.1 <alice@example.test>: user unknown");
	assert_int_equal(c->env.rcpt[1].code, 250);
	assert_string_equal(c->env.rcpt[1].reply, "250 2.0.0 Ok: queued as FAKE");
	assert_int_equal(c->env.rcpt[2].code, 451);
	assert_string_equal(c->env.rcpt[2].reply, "451 4.3.0 <carol@example.test>: try again");
}

static void
test_partial_all_refused(void **state)
{
	struct ctx *c = *state;
	c->f.rcpt_reply[0] = "550 5.1.1 <alice@example.test>: user unknown";
	c->f.rcpt_reply[1] = "452 4.2.2 <bob@example.test>: over quota";
	make_env(&c->env, "hello\r\n", 2);
	send_mode_and_wait(c, false, true);
	/* nothing delivered; a deferral outranks a refusal for the message */
	assert_int_equal(c->res.status, SMTPC_TEMP);
	assert_int_equal(c->res.code, 452);
	assert_string_equal(c->res.enh, "4.2.2");
	assert_string_equal(c->res.stage, "rcpt");
	assert_int_equal(c->f.messages, 0);
	assert_int_equal(c->env.rcpt[0].code, 550);
	assert_int_equal(c->env.rcpt[1].code, 452);
	assert_string_equal(c->env.rcpt[1].reply, "452 4.2.2 <bob@example.test>: over quota");
	/* the connection stays usable and forgets the old replies */
	c->f.rcpt_reply[0] = c->f.rcpt_reply[1] = NULL;
	send_mode_and_wait(c, false, true);
	assert_int_equal(c->res.status, SMTPC_OK);
	assert_int_equal(c->env.rcpt[0].code, 250);
	assert_int_equal(c->env.rcpt[1].code, 250);
	assert_int_equal(c->f.connections, 1);
}

static void
test_partial_lmtp_per_rcpt(void **state)
{
	struct ctx *c = *state;
	c->f.lmtp = true;
	/* bob is refused at RCPT; after the dot one reply per accepted
	 * recipient, in order: alice 250, carol 452 */
	c->f.rcpt_reply[1] = "550 5.1.1 <bob@example.test>: user unknown";
	c->f.dot_reply[0] = "250 2.1.5 <alice@example.test> delivered";
	c->f.dot_reply[1] = "452 4.2.2 <carol@example.test> mailbox full";
	make_env(&c->env, "hello\r\n", 3);
	send_mode_and_wait(c, true, true);
	assert_int_equal(c->res.status, SMTPC_OK);
	assert_string_equal(c->res.text, "delivered to some recipients");
	assert_int_equal(c->f.messages, 1);
	assert_int_equal(c->env.rcpt[0].code, 250);
	assert_string_equal(c->env.rcpt[0].reply, "250 2.1.5 <alice@example.test> delivered");
	assert_int_equal(c->env.rcpt[1].code, 550);
	assert_string_equal(c->env.rcpt[1].reply, "550 5.1.1 <bob@example.test>: user unknown");
	assert_int_equal(c->env.rcpt[2].code, 452);
	assert_string_equal(c->env.rcpt[2].reply, "452 4.2.2 <carol@example.test> mailbox full");
}

static void
test_partial_lmtp_none_delivered(void **state)
{
	struct ctx *c = *state;
	c->f.lmtp = true;
	c->f.dot_reply[0] = "452 4.2.2 <alice@example.test> mailbox full";
	c->f.dot_reply[1] = "552 5.2.2 <bob@example.test> too big";
	make_env(&c->env, "hello\r\n", 2);
	send_mode_and_wait(c, true, true);
	/* nobody got it: the worst reply for the message, a deferral */
	assert_int_equal(c->res.status, SMTPC_TEMP);
	assert_int_equal(c->res.code, 452);
	assert_int_equal(c->env.rcpt[0].code, 452);
	assert_string_equal(c->env.rcpt[0].reply, "452 4.2.2 <alice@example.test> mailbox full");
	assert_int_equal(c->env.rcpt[1].code, 552);
	assert_string_equal(c->env.rcpt[1].reply, "552 5.2.2 <bob@example.test> too big");
}

/* ---- shutdown with transactions in flight --------------------------------- */

/* Runs the loop until the fake has the whole message (and will not answer). */
static void
wait_body_sent(struct ctx *c)
{
	for (int i = 0; i < 200 && c->f.messages == 0; i++) {
		struct timeval tv = {0, 10000};
		event_base_loopexit(c->base, &tv);
		event_base_dispatch(c->base);
	}
	assert_int_equal(c->f.messages, 1);
}

static void
test_cancel_in_flight(void **state)
{
	struct ctx *c = *state;
	c->f.silent_after_body = true;
	make_env(&c->env, "hello\r\n", 1);
	send_only(c, false, false);
	wait_body_sent(c);
	assert_int_equal(c->done, 0);
	smtpc_pool_cancel(c->pool);
	/* answered now, through the callback, as a deferral: the message may
	 * have arrived, so it must be retried, never bounced */
	assert_int_equal(c->done, 1);
	assert_int_equal(c->res.status, SMTPC_TEMP);
	assert_int_equal(c->res.code, 0);
	assert_string_equal(c->res.stage, "shutdown");
	assert_non_null(strstr(c->res.text, "fake: shutting down"));
	assert_int_equal(smtpc_pool_idle(c->pool), 0);
	/* the connection was closed: the peer sees the hang-up */
	for (int i = 0; i < 50 && c->f.last != NULL; i++) {
		struct timeval tv = {0, 10000};
		event_base_loopexit(c->base, &tv);
		event_base_dispatch(c->base);
	}
	assert_null(c->f.last);
	smtpc_pool_cancel(c->pool); /* nothing left: no second callback */
	assert_int_equal(c->done, 1);
}

static void
test_free_in_flight(void **state)
{
	struct ctx *c = *state;
	c->f.silent_after_body = true;
	make_env(&c->env, "hello\r\n", 1);
	send_only(c, false, false);
	wait_body_sent(c);
	/* a second transaction still connecting */
	send_only(c, false, false);
	/* freed with both in flight: no callback, nothing leaks (ASan build) */
	smtpc_pool_free(c->pool);
	c->pool = NULL;
	assert_int_equal(c->done, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ok_stuffing_and_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rcpt_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_ehlo_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rcpt_deferred_outranks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_greeting_421, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dot_deferred, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hangup_after_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_pipelining, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lmtp_mixed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_pooled_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_mixed_rcpt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_mixed_rcpt_no_pipelining, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_all_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_lmtp_per_rcpt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_lmtp_none_delivered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_in_flight, setup, teardown),
	};
	return cmocka_run_group_tests_name("smtpc", tests, NULL, NULL);
}
