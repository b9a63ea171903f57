/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	rcpt_callout - ask the mailbox server whether an address exists
 * DESCRIPTION
 *	For mailbox servers whose directory the gateway cannot read: each
 *	worker keeps one SMTP (or LMTP) connection to the downstream (or
 *	recipients.callout.target), opens a transaction (MAIL FROM with
 *	recipients.callout.sender, <> by default) and asks RCPT TO for each
 *	address, pipelined when the server offers PIPELINING.  No message is
 *	ever sent: the transaction is reset after RCPT_CALLOUT_PER_TXN probes,
 *	and the connection is closed after RCPT_CALLOUT_REJECTS refusals
 *	(servers slow down clients that collect errors) or when idle.
 *	Answers: 2xx FOUND; 550, 551, 553 NOTFOUND; anything else (4xx, other
 *	5xx such as a relay refusal, no answer) TEMPFAIL: a misconfigured
 *	callout must not turn into "user unknown".  Only the whole address is
 *	asked; the mailbox server applies its own extension and catch-all
 *	rules.  Answers are cached like every directory's.
 *	A probe whose connection broke is asked again once on a new one.
 *	Targets are tried in priority order; when none answers, probes get
 *	TEMPFAIL at once for a back-off.
 * LIMITS
 *	Reply lines of 2048 octets; RCPT_CALLOUT_OPS_MAX probes per worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "clock.h"
#include "log.h"
#include "rcpt_int.h"
#include "stats.h"
#include "str.h"
#include "upstream.h"
#include "xalloc.h"

#define RCPT_CALLOUT_OPS_MAX 10000
#define RCPT_CALLOUT_PER_TXN 50
#define RCPT_CALLOUT_REJECTS 8
#define RCPT_CALLOUT_LINE_MAX 2048
#define RCPT_CALLOUT_IDLE_MS 30000
#define RCPT_CALLOUT_TARGETS_MAX 16

struct rcpt_callout {
	_Atomic int refs;
	struct upstream_set *ups;
	char *sender;
	char *helo;
	long long timeout_ms;
	char ident[RCPT_IDENT_LEN];
};

enum rcpt_callout_cmd { CALLOUT_GREETING, CALLOUT_EHLO, CALLOUT_MAIL, CALLOUT_RCPT, CALLOUT_RSET,
	                CALLOUT_QUIT };

struct rcpt_callout_chan;

/* A probe, or a command the connection waits for a reply to. */
struct rcpt_callout_op {
	struct rcpt_callout_op *next;
	enum rcpt_callout_cmd cmd;
	struct rcpt_callout_chan *ch;
	bool sent, dead;
	int tries;
	struct event *timer; /* probes */
	rcpt_done_cb cb;
	void *arg;
	char key[];
};

enum rcpt_callout_state { CALLOUT_DOWN, CALLOUT_CONNECTING, CALLOUT_SETUP, CALLOUT_READY };

struct rcpt_callout_chan {
	struct rcpt_chan hdr;
	struct rcpt_callout *co;
	struct event_base *base;
	enum rcpt_callout_state state;
	struct bufferevent *bev;
	const struct upstream_target *target;
	size_t order[RCPT_CALLOUT_TARGETS_MAX], n_order, try;
	bool pipelining;
	bool seen_pipelining; /* in the EHLO reply being read */
	bool need_mail;       /* after RSET */
	/* replies awaited, in order: setup commands and probes */
	struct rcpt_callout_op *sent_head, *sent_tail;
	/* probes not sent yet */
	struct rcpt_callout_op *wait_head, *wait_tail;
	unsigned n_probes, in_txn, rejects;
	unsigned inflight; /* probes sent, not answered yet */
	char reply[RCPT_CALLOUT_LINE_MAX];
	struct event *idle, *start;
};

static void rcpt_callout_connect(struct rcpt_callout_chan *ch);
static void rcpt_callout_pump(struct rcpt_callout_chan *ch);

/* ---- the backend ------------------------------------------------------------ */

static void
rcpt_callout_unref(struct rcpt_callout *co)
{
	if (co == NULL || atomic_fetch_sub(&co->refs, 1) != 1)
		return;
	upstream_set_free(co->ups);
	free(co->sender);
	free(co->helo);
	free(co);
}

void *
rcpt_callout_open(const struct mx_config *cfg, struct config_errors *errs, char *describe, size_t dlen)
{
	struct mx_config tmp = *cfg;
	struct config_downstream d = {cfg->callout_target, 0, 0};
	if (cfg->callout_target != NULL) {
		tmp.down = &d;
		tmp.n_down = 1;
	}
	struct upstream_set *ups = upstream_set_build(&tmp, errs);
	if (ups == NULL)
		return NULL;
	for (size_t i = 0; i < ups->n; i++) {
		if (ups->t[i].proto != UPSTREAM_SMTP && ups->t[i].proto != UPSTREAM_LMTP) {
			config_error(errs, "%s: recipients.callout: target \"%s\" must be smtp:HOST:PORT or "
			             "lmtp:HOST:PORT (set recipients.callout.target)", cfg->path,
			             ups->t[i].name);
			upstream_set_free(ups);
			return NULL;
		}
	}
	if (strpbrk(cfg->callout_sender, "<> \t\r\n") != NULL) {
		config_error(errs, "%s: recipients.callout.sender must be a bare address (or \"\")",
		             cfg->path);
		upstream_set_free(ups);
		return NULL;
	}
	struct rcpt_callout *co = xcalloc(1, sizeof(*co));
	atomic_init(&co->refs, 1);
	co->ups = ups;
	co->sender = xstrdup(cfg->callout_sender);
	co->helo = xstrdup(cfg->down_helo ? cfg->down_helo : cfg->hostname ? cfg->hostname
	                                                                    : "localhost");
	co->timeout_ms = cfg->rcpt_timeout;
	char names[400] = "", tmo[32];
	size_t o = 0;
	for (size_t i = 0; i < ups->n && o < sizeof(names); i++)
		o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s", i ? "," : "", ups->t[i].name);
	snprintf(tmo, sizeof(tmo), "%lld", co->timeout_ms);
	const char *parts[] = {names, co->sender, co->helo, tmo};
	rcpt_ident(co->ident, "callout", parts, MX_ARRAY_LEN(parts));
	snprintf(describe, dlen, "callout %s sender=<%s>", names, co->sender);
	return co;
}

static void
rcpt_callout_free(void *be)
{
	rcpt_callout_unref(be);
}

/* ---- the channel ------------------------------------------------------------ */

/* The log names the target in use (the first before any connect). */
static void
rcpt_callout_warn(struct rcpt_callout_chan *ch, const char *what, const char *detail)
{
	ch->hdr.where = ch->target ? ch->target->name : ch->co->ups->t[0].name;
	rcpt_chan_warn(&ch->hdr, what, detail);
}

/* Answers a probe (removed from its list already) and frees it. */
static void
rcpt_callout_answer(struct rcpt_callout_op *op, enum mx_lookup r)
{
	rcpt_done_cb cb = op->dead ? NULL : op->cb;
	void *arg = op->arg;
	if (op->cmd == CALLOUT_RCPT)
		op->ch->n_probes--;
	if (op->timer)
		event_free(op->timer);
	free(op);
	if (cb != NULL) {
		if (r == MX_TEMPFAIL)
			stats_inc(STAT_RCPT_DIRECTORY_FAIL);
		cb(r, arg);
	}
}

static void
rcpt_callout_wait_push(struct rcpt_callout_chan *ch, struct rcpt_callout_op *op, bool front)
{
	if (front) {
		op->next = ch->wait_head;
		ch->wait_head = op;
		if (ch->wait_tail == NULL)
			ch->wait_tail = op;
		return;
	}
	op->next = NULL;
	if (ch->wait_tail)
		ch->wait_tail->next = op;
	else
		ch->wait_head = op;
	ch->wait_tail = op;
}

static struct rcpt_callout_op *
rcpt_callout_sent_pop(struct rcpt_callout_chan *ch)
{
	struct rcpt_callout_op *op = ch->sent_head;
	if (op != NULL) {
		ch->sent_head = op->next;
		if (ch->sent_head == NULL)
			ch->sent_tail = NULL;
		op->next = NULL;
	}
	return op;
}

static void
rcpt_callout_send(struct rcpt_callout_chan *ch, enum rcpt_callout_cmd cmd, struct rcpt_callout_op *op)
{
	struct evbuffer *out = bufferevent_get_output(ch->bev);
	if (op == NULL) {
		op = xcalloc(1, sizeof(*op));
		op->cmd = cmd;
		op->ch = ch;
	}
	switch (cmd) {
	case CALLOUT_EHLO:
		evbuffer_add_printf(out, "%s %s\r\n", ch->target->proto == UPSTREAM_LMTP ? "LHLO" : "EHLO",
		                    ch->co->helo);
		break;
	case CALLOUT_MAIL:
		evbuffer_add_printf(out, "MAIL FROM:<%s>\r\n", ch->co->sender);
		ch->in_txn = 0;
		break;
	case CALLOUT_RCPT:
		evbuffer_add_printf(out, "RCPT TO:<%s>\r\n", op->key);
		ch->in_txn++;
		ch->inflight++;
		stats_inc(STAT_RCPT_DIRECTORY_QUERY);
		break;
	case CALLOUT_RSET:
		evbuffer_add_printf(out, "RSET\r\n");
		break;
	case CALLOUT_QUIT:
		evbuffer_add_printf(out, "QUIT\r\n");
		break;
	case CALLOUT_GREETING:
		break;
	}
	op->sent = true;
	if (ch->sent_tail)
		ch->sent_tail->next = op;
	else
		ch->sent_head = op;
	ch->sent_tail = op;
}

/* Closes the connection.  Probes sent on it are asked again once (on a
 * new connection), or answered TEMPFAIL. */
static void
rcpt_callout_close(struct rcpt_callout_chan *ch, bool retry)
{
	if (ch->bev != NULL) {
		bufferevent_free(ch->bev);
		ch->bev = NULL;
	}
	evtimer_del(ch->idle);
	ch->state = CALLOUT_DOWN;
	ch->inflight = 0;
	struct rcpt_callout_op *again = NULL, **tail = &again, *op;
	while ((op = rcpt_callout_sent_pop(ch)) != NULL) {
		if (op->cmd != CALLOUT_RCPT || op->dead) {
			rcpt_callout_answer(op, MX_TEMPFAIL);
		} else if (retry && ++op->tries < 2) {
			op->sent = false;
			*tail = op;
			tail = &op->next;
		} else {
			rcpt_callout_answer(op, MX_TEMPFAIL);
		}
	}
	/* back to the front of the queue, in order */
	if (again != NULL) {
		*tail = ch->wait_head;
		ch->wait_head = again;
		if (ch->wait_tail == NULL)
			for (ch->wait_tail = again; ch->wait_tail->next; ch->wait_tail = ch->wait_tail->next)
				;
	}
}

/* No target reachable: back off; waiting probes get TEMPFAIL. */
static void
rcpt_callout_failed(struct rcpt_callout_chan *ch, const char *why)
{
	rcpt_callout_warn(ch, "cannot reach the mailbox server (recipients get 451): ", why);
	rcpt_callout_close(ch, false);
	rcpt_chan_backoff(&ch->hdr);
	struct rcpt_callout_op *op;
	while ((op = ch->wait_head) != NULL) {
		ch->wait_head = op->next;
		if (ch->wait_head == NULL)
			ch->wait_tail = NULL;
		rcpt_callout_answer(op, MX_TEMPFAIL);
	}
}

/* Connection-level trouble: next target while connecting, else retry. */
static void
rcpt_callout_trouble(struct rcpt_callout_chan *ch, const char *why)
{
	if (ch->state != CALLOUT_READY) {
		upstream_mark_dead(&ch->co->ups->t[ch->order[ch->try]], mx_clock_mono_ms() + 30000);
		if (++ch->try < ch->n_order) {
			rcpt_callout_close(ch, true);
			rcpt_callout_connect(ch);
			return;
		}
		rcpt_callout_failed(ch, why);
		return;
	}
	rcpt_callout_warn(ch, "connection lost: ", why);
	rcpt_callout_close(ch, true);
	if (ch->wait_head != NULL)
		event_active(ch->start, EV_READ, 0);
}

static enum mx_lookup
rcpt_callout_verdict(struct rcpt_callout_chan *ch, int code)
{
	if (code >= 200 && code < 300)
		return MX_FOUND;
	if (code == 550 || code == 551 || code == 553) {
		ch->rejects++;
		return MX_NOTFOUND;
	}
	if (code >= 500)
		ch->rejects++;
	rcpt_callout_warn(ch, "RCPT TO got ", ch->reply);
	return MX_TEMPFAIL;
}

/* One complete reply (code, last line in ch->reply). */
static void
rcpt_callout_reply(struct rcpt_callout_chan *ch, int code, bool pipelining)
{
	struct rcpt_callout_op *op = rcpt_callout_sent_pop(ch);
	if (op == NULL) {
		rcpt_callout_trouble(ch, "unexpected reply");
		return;
	}
	switch (op->cmd) {
	case CALLOUT_GREETING:
	case CALLOUT_EHLO:
	case CALLOUT_MAIL: {
		enum rcpt_callout_cmd cmd = op->cmd;
		free(op);
		if ((cmd == CALLOUT_GREETING && code != 220) || (cmd != CALLOUT_GREETING && code != 250)) {
			rcpt_callout_trouble(ch, ch->reply);
			return;
		}
		if (cmd == CALLOUT_GREETING) {
			rcpt_callout_send(ch, CALLOUT_EHLO, NULL);
		} else if (cmd == CALLOUT_EHLO) {
			ch->pipelining = pipelining;
			rcpt_callout_send(ch, CALLOUT_MAIL, NULL);
		} else if (ch->state == CALLOUT_SETUP) {
			ch->state = CALLOUT_READY;
			rcpt_chan_up(&ch->hdr);
			upstream_mark_alive(&ch->co->ups->t[ch->order[ch->try]]);
			log_info("callout: connected to %s", ch->target->name);
		}
		break;
	}
	case CALLOUT_RSET:
		free(op);
		if (code != 250) {
			rcpt_callout_trouble(ch, ch->reply);
			return;
		}
		break;
	case CALLOUT_QUIT:
		free(op);
		break;
	case CALLOUT_RCPT:
		ch->inflight--;
		if (code == 421) {
			/* the server is closing: ask again once, on a new
			 * connection (a server that always says 421 must not
			 * have us reconnect until the lookup times out) */
			if (++op->tries < 2) {
				rcpt_callout_wait_push(ch, op, true);
				op->sent = false;
			} else {
				rcpt_callout_answer(op, MX_TEMPFAIL);
			}
			rcpt_callout_trouble(ch, ch->reply);
			return;
		}
		rcpt_callout_answer(op, rcpt_callout_verdict(ch, code));
		break;
	}
	rcpt_callout_pump(ch);
}

static void
rcpt_callout_read(struct bufferevent *bev, void *arg)
{
	struct rcpt_callout_chan *ch = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	while (ch->bev == bev) {
		size_t len;
		char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
		if (line == NULL) {
			if (evbuffer_get_length(in) > RCPT_CALLOUT_LINE_MAX)
				rcpt_callout_trouble(ch, "reply line too long");
			return;
		}
		/* three digits, the first 2 to 5: "2/:" must not read as 200 nor
		 * "54:" as 550 (a malformed reply is trouble, never an answer) */
		if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
		    line[2] < '0' || line[2] > '9' || (len > 3 && line[3] != ' ' && line[3] != '-')) {
			free(line);
			rcpt_callout_trouble(ch, "malformed reply");
			return;
		}
		if (len > 4 && mx_str_caseprefix(line + 4, len - 4, "PIPELINING"))
			ch->seen_pipelining = true;
		bool last = len == 3 || line[3] == ' ';
		int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		mx_strlcpy(ch->reply, line, sizeof(ch->reply));
		free(line);
		if (last) {
			bool p = ch->seen_pipelining;
			ch->seen_pipelining = false;
			rcpt_callout_reply(ch, code, p);
		}
	}
}

static void
rcpt_callout_event(struct bufferevent *bev, short what, void *arg)
{
	struct rcpt_callout_chan *ch = arg;
	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		ch->state = CALLOUT_SETUP;
		return;
	}
	if (ch->sent_head == NULL && ch->state == CALLOUT_READY) {
		rcpt_callout_close(ch, false); /* closed while idle: fine */
		if (ch->wait_head != NULL)
			event_active(ch->start, EV_READ, 0);
		return;
	}
	rcpt_callout_trouble(ch, (what & BEV_EVENT_TIMEOUT) ? "timeout"
	                         : (what & BEV_EVENT_EOF) ? "connection closed"
	                                                  : evutil_socket_error_to_string(
	                                                        EVUTIL_SOCKET_ERROR()));
}

static void
rcpt_callout_connect(struct rcpt_callout_chan *ch)
{
	if (ch->try == 0 || ch->n_order == 0)
		ch->n_order = upstream_order(ch->co->ups, ch->order, RCPT_CALLOUT_TARGETS_MAX,
		                             mx_clock_mono_ms());
	ch->target = &ch->co->ups->t[ch->order[ch->try]];
	ch->bev = bufferevent_socket_new(ch->base, -1, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(ch->bev, rcpt_callout_read, NULL, rcpt_callout_event, ch);
	struct timeval tv = rcpt_tv(ch->co->timeout_ms);
	bufferevent_set_timeouts(ch->bev, &tv, &tv);
	bufferevent_enable(ch->bev, EV_READ | EV_WRITE);
	ch->state = CALLOUT_CONNECTING;
	ch->pipelining = false;
	ch->seen_pipelining = false;
	ch->need_mail = false;
	ch->rejects = 0;
	ch->in_txn = 0;
	struct rcpt_callout_op *g = xcalloc(1, sizeof(*g));
	g->cmd = CALLOUT_GREETING;
	g->ch = ch;
	g->sent = true;
	ch->sent_head = ch->sent_tail = g;
	if (bufferevent_socket_connect(ch->bev, (struct sockaddr *)&ch->target->addr,
	                               (int)ch->target->addrlen) < 0)
		event_active(ch->start, EV_WRITE, 0); /* reported from the loop */
}

/* Sends what can be sent now: probes, transaction resets, the close. */
static void
rcpt_callout_pump(struct rcpt_callout_chan *ch)
{
	if (ch->state != CALLOUT_READY)
		return;
	if (ch->rejects >= RCPT_CALLOUT_REJECTS && ch->sent_head == NULL) {
		/* before the server starts slowing us down: a fresh connection */
		rcpt_callout_send(ch, CALLOUT_QUIT, NULL);
		rcpt_callout_close(ch, false);
		if (ch->wait_head != NULL)
			event_active(ch->start, EV_READ, 0);
		return;
	}
	/* every probe in flight may come back a refusal: never more than
	 * RCPT_CALLOUT_REJECTS of them on one connection */
	while (ch->wait_head != NULL && ch->rejects + ch->inflight < RCPT_CALLOUT_REJECTS &&
	       (ch->pipelining || ch->sent_head == NULL)) {
		if (ch->need_mail) {
			rcpt_callout_send(ch, CALLOUT_MAIL, NULL);
			ch->need_mail = false;
			continue;
		}
		if (ch->in_txn >= RCPT_CALLOUT_PER_TXN) {
			rcpt_callout_send(ch, CALLOUT_RSET, NULL);
			ch->need_mail = true;
			continue;
		}
		struct rcpt_callout_op *op = ch->wait_head;
		ch->wait_head = op->next;
		if (ch->wait_head == NULL)
			ch->wait_tail = NULL;
		op->next = NULL;
		if (op->dead) {
			rcpt_callout_answer(op, MX_TEMPFAIL);
			continue;
		}
		rcpt_callout_send(ch, CALLOUT_RCPT, op);
	}
	if (ch->sent_head == NULL && ch->wait_head == NULL) {
		struct timeval tv = {RCPT_CALLOUT_IDLE_MS / 1000, 0};
		evtimer_add(ch->idle, &tv);
	} else {
		evtimer_del(ch->idle);
	}
}

static void
rcpt_callout_idle(evutil_socket_t fd, short what, void *arg)
{
	struct rcpt_callout_chan *ch = arg;
	(void)fd;
	(void)what;
	if (ch->state == CALLOUT_READY && ch->sent_head == NULL && ch->wait_head == NULL) {
		rcpt_callout_send(ch, CALLOUT_QUIT, NULL);
		rcpt_callout_close(ch, false);
	}
}

static void
rcpt_callout_start(evutil_socket_t fd, short what, void *arg)
{
	struct rcpt_callout_chan *ch = arg;
	(void)fd;
	if ((what & EV_WRITE) && ch->state == CALLOUT_CONNECTING) {
		rcpt_callout_trouble(ch, "cannot connect");
		return;
	}
	if (ch->state == CALLOUT_DOWN && ch->wait_head != NULL) {
		ch->try = 0;
		rcpt_callout_connect(ch);
	}
	rcpt_callout_pump(ch);
}

static void
rcpt_callout_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct rcpt_callout_op *op = arg;
	(void)fd;
	(void)what;
	/* answer now; the op stays where it is (its reply keeps its place) */
	rcpt_done_cb cb = op->cb;
	op->dead = true;
	event_free(op->timer);
	op->timer = NULL;
	rcpt_callout_warn(op->ch, "no answer in time", NULL);
	stats_inc(STAT_RCPT_DIRECTORY_FAIL);
	cb(MX_TEMPFAIL, op->arg);
}

static bool
rcpt_callout_busy(struct rcpt_chan *c)
{
	struct rcpt_callout_chan *ch = (struct rcpt_callout_chan *)c;
	return ch->n_probes > 0 || ch->state == CALLOUT_CONNECTING || ch->state == CALLOUT_SETUP;
}

static void
rcpt_callout_chan_free(struct rcpt_chan *c)
{
	struct rcpt_callout_chan *ch = (struct rcpt_callout_chan *)c;
	struct rcpt_callout_op *op;
	if (ch->bev != NULL)
		bufferevent_free(ch->bev);
	while ((op = rcpt_callout_sent_pop(ch)) != NULL) {
		if (op->timer)
			event_free(op->timer);
		free(op);
	}
	while ((op = ch->wait_head) != NULL) {
		ch->wait_head = op->next;
		if (op->timer)
			event_free(op->timer);
		free(op);
	}
	event_free(ch->idle);
	event_free(ch->start);
	rcpt_callout_unref(ch->co);
	free(ch);
}

static const struct rcpt_chan_type rcpt_callout_chan_type = {
	"callout", sizeof(struct rcpt_callout_chan), rcpt_callout_busy, rcpt_callout_chan_free};

static struct rcpt_callout_chan *
rcpt_callout_chan_get(struct rcpt_callout *co, struct event_base *base)
{
	bool fresh;
	struct rcpt_callout_chan *ch = (struct rcpt_callout_chan *)rcpt_chan_get(
	    base, &rcpt_callout_chan_type, co->ident, co->ups->t[0].name, &fresh);
	if (!fresh)
		return ch;
	atomic_fetch_add(&co->refs, 1);
	ch->co = co;
	ch->base = base;
	ch->idle = evtimer_new(base, rcpt_callout_idle, ch);
	ch->start = event_new(base, -1, 0, rcpt_callout_start, ch);
	return ch;
}

static enum mx_lookup
rcpt_callout_lookup(void *be, struct event_base *base, const char *key, rcpt_done_cb cb, void *arg)
{
	struct rcpt_callout *co = be;
	struct rcpt_callout_chan *ch = rcpt_callout_chan_get(co, base);
	if (key[0] == '@')
		return MX_NOTFOUND; /* never asked: the server has its own catch-all rules */
	if (rcpt_chan_refuse(&ch->hdr, ch->state == CALLOUT_DOWN, ch->n_probes, RCPT_CALLOUT_OPS_MAX))
		return MX_TEMPFAIL;
	size_t klen = strlen(key) + 1;
	struct rcpt_callout_op *op = xcalloc(1, sizeof(*op) + klen);
	memcpy(op->key, key, klen);
	op->cmd = CALLOUT_RCPT;
	op->ch = ch;
	op->cb = cb;
	op->arg = arg;
	op->timer = rcpt_timer_start(base, co->timeout_ms, rcpt_callout_timeout, op);
	rcpt_callout_wait_push(ch, op, false);
	ch->n_probes++;
	event_active(ch->start, EV_READ, 0);
	return MX_PENDING;
}

const struct rcpt_backend_ops rcpt_callout_ops = {
	.name = "callout",
	.async = true,
	.whole_address = true,
	.lookup = rcpt_callout_lookup,
	.free = rcpt_callout_free,
};
