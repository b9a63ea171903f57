/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	smtpc - outbound SMTP/LMTP client with a per-worker connection pool
 * DESCRIPTION
 *	A connection (struct smtpc_conn) greets, says EHLO/LHLO, then serves
 *	transactions (struct smtpc_req) one at a time and goes back to the
 *	pool.  While idle it keeps reading, so a peer that hangs up is noticed
 *	and dropped before it is reused.  A transaction that fails on a reused
 *	connection before any reply came is retried once on a new one: the
 *	peer may have closed an idle connection just as we reused it.
 *	The reply parser reads whole lines into a stack buffer; replies are
 *	checked for size before they are parsed.
 */
#include "smtpc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

#include "blob.h"
#include "log.h"
#include "stats.h"
#include "str.h"
#include "xalloc.h"

#define SMTPC_LINE_MAX 2048
#define SMTPC_REPLY_LINES 100
#define SMTPC_OUT_HIGH (256 * 1024)
#define SMTPC_OUT_LOW (64 * 1024)
#define SMTPC_MAX_IDLE 256  /* idle connections kept per target */
#define SMTPC_MAX_USES 1000 /* transactions per connection */

#define CAP_PIPELINING 0x01
#define CAP_SIZE 0x02
#define CAP_8BITMIME 0x04
#define CAP_SMTPUTF8 0x08
#define CAP_STARTTLS 0x10

enum smtpc_state {
	C_CONNECTING,
	C_GREETING,
	C_EHLO,
	C_HELO,
	C_STARTTLS,  /* STARTTLS sent, waiting for 220 */
	C_HANDSHAKE, /* TLS handshake */
	C_IDLE,
	C_ENVELOPE,
	C_BODY,
	C_DOT,
	C_CLOSED,
};

struct smtpc_req;

struct smtpc_conn {
	struct smtpc_pool *pool;
	struct smtpc_conn *prev, *next; /* idle list */
	struct smtpc_conn *aprev, *anext; /* every open connection of the pool */
	struct bufferevent *bev;
	struct event *idle_timer;
	bool lmtp;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char name[300];
	unsigned caps, rcaps, uses; /* rcaps: of the reply being read */
	bool tls;
	unsigned rset_due; /* RSET replies still to come (RSET is pipelined) */
	enum smtpc_state state;
	int busy; /* inside one of our callbacks: closing must not free yet */
	struct smtpc_req *req;
	long long t_idle;
	/* reply being read */
	int rcode;
	char renh[16];
	char rtext[400];
	size_t rtext_len;
	int rlines;
};

struct smtpc_req {
	struct smtpc_pool *pool;
	struct smtpc_req *rprev, *rnext; /* in flight until the callback ran */
	struct smtpc_conn *conn;
	struct smtpc_target target;
	char target_name[300];
	struct smtpc_opts opts;
	char helo[256];
	struct envelope *env;
	smtpc_done_cb cb;
	void *arg;
	struct smtpc_result res;
	bool decided;     /* res holds the deciding reply */
	bool any_reply;   /* a transaction reply came on this connection */
	bool retried;     /* already moved to a fresh connection once */
	bool in_send;     /* inside smtpc_send(): defer the callback */
	int expect;       /* replies seen: 0 MAIL, 1..n RCPT, n+1 DATA */
	size_t rcpt_ok;
	int sent;         /* commands written (without PIPELINING) */
	size_t rcpt_failed; /* refused recipients (partial mode) */
	size_t lmtp_next;   /* LMTP: index of the recipient the next reply is for */
	size_t lmtp_left; /* LMTP: replies still due after "." */
	size_t lmtp_ok;
	/* body */
	int body_phase; /* 0 Received:, 1 blob, 2 dot */
	size_t body_off;
	bool bol;
	struct event *defer;
};

struct smtpc_pool {
	struct event_base *base;
	SSL_CTX *tls;
	struct smtpc_conn *idle;
	unsigned n_idle;
	struct smtpc_conn *conns; /* all open connections, idle or busy */
	struct smtpc_req *reqs;   /* transactions whose callback has not run */
	bool cancelling;          /* smtpc_pool_cancel() is running */
};

static void smtpc_read_cb(struct bufferevent *bev, void *arg);
static void smtpc_write_cb(struct bufferevent *bev, void *arg);
static void smtpc_event_cb(struct bufferevent *bev, short what, void *arg);
static void smtpc_conn_close(struct smtpc_conn *c);
static void smtpc_start_tx(struct smtpc_conn *c);
static void smtpc_fail(struct smtpc_conn *c, enum smtpc_status st, const char *stage,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

enum smtpc_tls
smtpc_tls_policy(const char *name)
{
	if (name != NULL && strcmp(name, "encrypt") == 0)
		return SMTPC_TLS_ENCRYPT;
	if (name != NULL && strcmp(name, "none") == 0)
		return SMTPC_TLS_NONE;
	return SMTPC_TLS_MAY;
}

/* ---- pool -------------------------------------------------------------------- */

struct smtpc_pool *
smtpc_pool_new(struct event_base *base)
{
	struct smtpc_pool *p = xcalloc(1, sizeof(*p));
	p->base = base;
	p->tls = SSL_CTX_new(TLS_client_method());
	if (p->tls != NULL) {
		SSL_CTX_set_min_proto_version(p->tls, TLS1_2_VERSION);
		SSL_CTX_set_verify(p->tls, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_mode(p->tls, SSL_MODE_RELEASE_BUFFERS);
	}
	return p;
}

static void
smtpc_req_unlink(struct smtpc_req *r)
{
	struct smtpc_pool *p = r->pool;
	if (r->rprev)
		r->rprev->rnext = r->rnext;
	else if (p->reqs == r)
		p->reqs = r->rnext;
	if (r->rnext)
		r->rnext->rprev = r->rprev;
	r->rprev = r->rnext = NULL;
}

/* Detaches r from its connection, which is closed: nothing more is
 * read for r, and a half-sent transaction is abandoned. */
static void
smtpc_req_drop_conn(struct smtpc_req *r)
{
	struct smtpc_conn *c = r->conn;
	if (c == NULL)
		return;
	r->conn = NULL;
	c->req = NULL;
	smtpc_conn_close(c);
}

void
smtpc_pool_cancel(struct smtpc_pool *p)
{
	if (p == NULL)
		return;
	p->cancelling = true;
	/* a callback may send again (smtpc_send then fails at once and lists
	 * its request here): loop until none is left */
	while (p->reqs != NULL) {
		struct smtpc_req *r = p->reqs;
		smtpc_req_unlink(r);
		if (r->defer != NULL) { /* decided, its callback was due */
			event_free(r->defer);
			r->defer = NULL;
		} else {
			smtpc_req_drop_conn(r);
			r->res.status = SMTPC_TEMP;
			r->res.code = 0;
			r->res.enh[0] = '\0';
			snprintf(r->res.text, sizeof(r->res.text),
			         "%s: shutting down before the transaction ended", r->target_name);
			r->res.stage = "shutdown";
		}
		r->cb(&r->res, r->arg);
		free(r);
	}
	p->cancelling = false;
}

void
smtpc_pool_free(struct smtpc_pool *p)
{
	if (p == NULL)
		return;
	/* transactions in flight: dropped without their callback */
	while (p->reqs != NULL) {
		struct smtpc_req *r = p->reqs;
		smtpc_req_unlink(r);
		if (r->defer != NULL)
			event_free(r->defer);
		smtpc_req_drop_conn(r);
		free(r);
	}
	/* the idle ones, and any a transaction left behind */
	while (p->conns != NULL)
		smtpc_conn_close(p->conns);
	SSL_CTX_free(p->tls);
	free(p);
}

unsigned
smtpc_pool_idle(const struct smtpc_pool *p)
{
	return p->n_idle;
}

static void
smtpc_idle_remove(struct smtpc_conn *c)
{
	struct smtpc_pool *p = c->pool;
	if (c->prev)
		c->prev->next = c->next;
	else if (p->idle == c)
		p->idle = c->next;
	else
		return; /* not on the list */
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	p->n_idle--;
	evtimer_del(c->idle_timer);
}

static void
smtpc_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc_conn *c = arg;
	(void)fd;
	(void)what;
	smtpc_idle_remove(c);
	/* be polite, but do not wait for the 221 */
	evbuffer_add(bufferevent_get_output(c->bev), "QUIT\r\n", 6);
	smtpc_conn_close(c);
}

static void
smtpc_idle_add(struct smtpc_conn *c)
{
	struct smtpc_pool *p = c->pool;
	if (p->n_idle >= SMTPC_MAX_IDLE || c->uses >= SMTPC_MAX_USES || c->t_idle <= 0) {
		evbuffer_add(bufferevent_get_output(c->bev), "QUIT\r\n", 6);
		smtpc_conn_close(c);
		return;
	}
	c->state = C_IDLE;
	c->req = NULL;
	c->next = p->idle;
	c->prev = NULL;
	if (p->idle)
		p->idle->prev = c;
	p->idle = c;
	p->n_idle++;
	bufferevent_set_timeouts(c->bev, NULL, NULL);
	struct timeval tv = {c->t_idle / 1000, (c->t_idle % 1000) * 1000};
	evtimer_add(c->idle_timer, &tv);
}

static struct smtpc_conn *
smtpc_idle_take(struct smtpc_pool *p, const struct smtpc_target *t)
{
	for (struct smtpc_conn *c = p->idle; c != NULL; c = c->next) {
		if (c->lmtp == t->lmtp && c->addrlen == t->addrlen &&
		    memcmp(&c->addr, &t->addr, t->addrlen) == 0) {
			smtpc_idle_remove(c);
			return c;
		}
	}
	return NULL;
}

/* ---- completion ------------------------------------------------------------- */

static void
smtpc_deliver_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpc_req *r = arg;
	(void)fd;
	(void)what;
	event_free(r->defer);
	r->defer = NULL;
	smtpc_req_unlink(r);
	r->cb(&r->res, r->arg);
	free(r);
}

/* The transaction is over: report, detach from the connection. */
static void
smtpc_req_done(struct smtpc_req *r)
{
	if (r->conn != NULL) {
		r->conn->req = NULL;
		r->conn = NULL;
	}
	if (r->in_send) {
		r->defer = evtimer_new(r->pool->base, smtpc_deliver_cb, r);
		struct timeval tv = {0, 0};
		evtimer_add(r->defer, &tv);
		return;
	}
	smtpc_req_unlink(r);
	r->cb(&r->res, r->arg);
	free(r);
}

static void
smtpc_set_result(struct smtpc_req *r, enum smtpc_status st, int code, const char *enh,
                 const char *text, const char *stage)
{
	r->res.status = st;
	r->res.code = code;
	mx_strlcpy(r->res.enh, enh ? enh : "", sizeof(r->res.enh));
	mx_strlcpy(r->res.text, text ? text : "", sizeof(r->res.text));
	r->res.stage = stage;
	r->decided = true;
}

static struct smtpc_conn *smtpc_conn_new(struct smtpc_pool *p, const struct smtpc_target *t,
                                         const struct smtpc_opts *o);

/* Fails the current transaction and drops the connection.  A failure
 * before any reply on a reused connection moves the request to a new
 * connection instead. */
static void
smtpc_fail(struct smtpc_conn *c, enum smtpc_status st, const char *stage, const char *fmt, ...)
{
	struct smtpc_req *r = c->req;
	char text[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	c->req = NULL;
	smtpc_conn_close(c);
	if (r == NULL)
		return;
	r->conn = NULL;
	if (st == SMTPC_CONNFAIL && r->res.reused && !r->any_reply && !r->retried) {
		r->retried = true;
		r->res.reused = false;
		r->expect = 0;
		r->sent = 0;
		r->rcpt_ok = 0;
		r->rcpt_failed = 0;
		r->lmtp_next = 0;
		struct smtpc_conn *n = smtpc_conn_new(r->pool, &r->target, &r->opts);
		if (n != NULL) {
			n->req = r;
			r->conn = n;
			return;
		}
	}
	smtpc_set_result(r, st, 0, NULL, text, stage);
	smtpc_req_done(r);
}

/* ---- connections ------------------------------------------------------------ */

static void
smtpc_set_timeout(struct smtpc_conn *c, long long ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	bufferevent_set_timeouts(c->bev, &tv, &tv);
}

static struct smtpc_conn *
smtpc_conn_new(struct smtpc_pool *p, const struct smtpc_target *t, const struct smtpc_opts *o)
{
	struct smtpc_conn *c = xcalloc(1, sizeof(*c));
	c->pool = p;
	c->lmtp = t->lmtp;
	memcpy(&c->addr, &t->addr, t->addrlen);
	c->addrlen = t->addrlen;
	mx_strlcpy(c->name, t->name, sizeof(c->name));
	c->t_idle = o->t_idle;
	c->state = C_CONNECTING;
	c->anext = p->conns;
	if (p->conns)
		p->conns->aprev = c;
	p->conns = c;
	c->bev = bufferevent_socket_new(p->base, -1, BEV_OPT_CLOSE_ON_FREE);
	c->idle_timer = evtimer_new(p->base, smtpc_idle_timeout, c);
	bufferevent_setcb(c->bev, smtpc_read_cb, smtpc_write_cb, smtpc_event_cb, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, SMTPC_OUT_LOW, 0);
	smtpc_set_timeout(c, o->t_connect);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	stats_inc(STAT_DOWNSTREAM_CONNECT);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&c->addr, (int)c->addrlen) < 0) {
		/* reported from the event loop through the event callback */
		log_debug("downstream %s: connect failed at once: %s", c->name, strerror(errno));
	} else if (c->addr.ss_family == AF_INET || c->addr.ss_family == AF_INET6) {
		/* commands and the end of the message go out as soon as they are
		 * written: with Nagle's algorithm a short write behind another
		 * (the final dot behind the body) waits for the server's delayed
		 * ACK, 40 ms on Linux, for every message */
		int one = 1;
		setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	return c;
}

static void
smtpc_conn_close(struct smtpc_conn *c)
{
	if (c->state == C_CLOSED)
		return;
	if (c->state == C_IDLE)
		smtpc_idle_remove(c);
	c->state = C_CLOSED;
	struct smtpc_pool *p = c->pool;
	if (c->aprev)
		c->aprev->anext = c->anext;
	else if (p->conns == c)
		p->conns = c->anext;
	if (c->anext)
		c->anext->aprev = c->aprev;
	c->aprev = c->anext = NULL;
	if (c->idle_timer)
		event_free(c->idle_timer);
	c->idle_timer = NULL;
	if (c->bev) {
		/* flush a final QUIT if the socket takes it; never wait */
		struct evbuffer *out = bufferevent_get_output(c->bev);
		if (evbuffer_get_length(out) > 0)
			evbuffer_write(out, bufferevent_getfd(c->bev));
		bufferevent_free(c->bev);
		c->bev = NULL;
	}
	if (c->busy == 0)
		free(c);
	/* else the callback that is running frees it on its way out */
}

static void
smtpc_cb_enter(struct smtpc_conn *c)
{
	c->busy++;
}

/* Returns true when c is gone (freed here). */
static bool
smtpc_cb_leave(struct smtpc_conn *c)
{
	if (--c->busy == 0 && c->state == C_CLOSED) {
		free(c);
		return true;
	}
	return false;
}

/* ---- replies ------------------------------------------------------------ */

/* Reads one complete reply. Returns 1 when c->r* hold it, 0 for more
 * input, -1 on a protocol violation. */

/* The capability an EHLO reply line names (its text, code stripped), or 0. */
static unsigned
smtpc_cap_of(const char *p)
{
	size_t l = strcspn(p, " ");
	if (l == 10 && mx_str_caseprefix(p, l, "PIPELINING"))
		return CAP_PIPELINING;
	if (l == 8 && mx_str_caseprefix(p, l, "8BITMIME"))
		return CAP_8BITMIME;
	if (l == 8 && mx_str_caseprefix(p, l, "SMTPUTF8"))
		return CAP_SMTPUTF8;
	if (l == 4 && mx_str_caseprefix(p, l, "SIZE"))
		return CAP_SIZE;
	if (l == 8 && p[8] == '\0' && mx_str_caseprefix(p, l, "STARTTLS"))
		return CAP_STARTTLS;
	return 0;
}

static int
smtpc_read_reply(struct smtpc_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	for (;;) {
		size_t avail = evbuffer_get_length(in);
		if (avail == 0)
			return 0;
		struct evbuffer_ptr lim, eol;
		evbuffer_ptr_set(in, &lim, avail < SMTPC_LINE_MAX ? avail : SMTPC_LINE_MAX,
		                 EVBUFFER_PTR_SET);
		eol = evbuffer_search_range(in, "\n", 1, NULL, &lim);
		if (eol.pos < 0)
			return avail >= SMTPC_LINE_MAX ? -1 : 0;
		char line[SMTPC_LINE_MAX + 1];
		size_t n = (size_t)eol.pos + 1;
		evbuffer_remove(in, line, n);
		n--;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		line[n] = '\0';
		if (n < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
		    line[2] < '0' || line[2] > '9' || (n > 3 && line[3] != ' ' && line[3] != '-'))
			return -1;
		int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		bool last = n == 3 || line[3] == ' ';
		const char *text = n > 4 ? line + 4 : "";
		if (c->rlines == 0) {
			c->rcode = code;
			c->renh[0] = '\0';
			c->rtext_len = 0;
			c->rtext[0] = '\0';
			/* enhanced status code: d.ddd.ddd at the start of the text */
			size_t el = strspn(text, "0123456789.");
			if (el >= 5 && el < sizeof(c->renh) && text[0] == line[0] && text[1] == '.' &&
			    (text[el] == ' ' || text[el] == '\0')) {
				mx_strlcpyn(c->renh, text, el, sizeof(c->renh));
				text += el + (text[el] == ' ');
			}
		} else if (code != c->rcode) {
			return -1;
		} else {
			size_t el = strspn(text, "0123456789.");
			if (el >= 5 && text[el] == ' ')
				text += el + 1;
		}
		/* capabilities from every line, as they come: the joined text
		 * below is cut at 400 bytes, and a verbose EHLO reply hid
		 * PIPELINING, SMTPUTF8 or STARTTLS listed late */
		if (c->rlines == 0)
			c->rcaps = 0;
		c->rcaps |= smtpc_cap_of(text);
		if (++c->rlines > SMTPC_REPLY_LINES)
			return -1;
		/* keep the first lines of text, joined with "; " */
		size_t tl = strlen(text);
		if (c->rtext_len > 0 && c->rtext_len + 2 < sizeof(c->rtext)) {
			memcpy(c->rtext + c->rtext_len, "; ", 2);
			c->rtext_len += 2;
		}
		size_t room = sizeof(c->rtext) - 1 - c->rtext_len;
		if (tl > room)
			tl = room;
		memcpy(c->rtext + c->rtext_len, text, tl);
		c->rtext_len += tl;
		c->rtext[c->rtext_len] = '\0';
		if (last) {
			c->rlines = 0;
			return 1;
		}
	}
}

static void
smtpc_parse_caps(struct smtpc_conn *c)
{
	c->caps = c->rcaps; /* gathered line by line (smtpc_cap_of) */
}

/* ---- transaction ------------------------------------------------------------ */

static void
smtpc_write_cmd(struct smtpc_conn *c, int idx)
{
	struct smtpc_req *r = c->req;
	struct envelope *e = r->env;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (idx == 0) {
		evbuffer_add_printf(out, "MAIL FROM:<%s>", e->mail_from);
		if (c->caps & CAP_SIZE)
			evbuffer_add_printf(out, " SIZE=%zu", envelope_size(e));
		if ((c->caps & CAP_8BITMIME) && e->body_8bit)
			evbuffer_add_printf(out, " BODY=8BITMIME");
		if ((c->caps & CAP_SMTPUTF8) && e->params.smtputf8)
			evbuffer_add_printf(out, " SMTPUTF8");
		evbuffer_add(out, "\r\n", 2);
	} else if ((size_t)idx <= e->n_rcpt) {
		evbuffer_add_printf(out, "RCPT TO:<%s>\r\n", e->rcpt[idx - 1].addr);
	} else {
		evbuffer_add(out, "DATA\r\n", 6);
	}
}

static bool
smtpc_needs_utf8(const struct envelope *e)
{
	for (const char *p = e->mail_from; *p; p++)
		if ((unsigned char)*p >= 0x80)
			return true;
	for (size_t i = 0; i < e->n_rcpt; i++)
		for (const char *p = e->rcpt[i].addr; *p; p++)
			if ((unsigned char)*p >= 0x80)
				return true;
	return false;
}

static void
smtpc_start_tx(struct smtpc_conn *c)
{
	struct smtpc_req *r = c->req;
	struct envelope *e = r->env;
	if (r->opts.tls == SMTPC_TLS_ENCRYPT && !c->tls) {
		/* a pooled clear-text connection cannot serve this request */
		c->req = NULL;
		r->conn = NULL;
		smtpc_conn_close(c);
		smtpc_set_result(r, SMTPC_CONNFAIL, 0, NULL, "no TLS on this connection", "starttls");
		smtpc_req_done(r);
		return;
	}
	c->uses++;
	c->state = C_ENVELOPE;
	r->res.tls = c->tls;
	smtpc_set_timeout(c, r->opts.t_reply);
	if (smtpc_needs_utf8(e) && !(c->caps & CAP_SMTPUTF8)) {
		smtpc_set_result(r, SMTPC_PERM, 553, "5.6.7",
		                 "the mailbox server does not support SMTPUTF8 addresses", "mail");
		c->req = NULL;
		r->conn = NULL;
		smtpc_idle_add(c);
		smtpc_req_done(r);
		return;
	}
	if (c->caps & CAP_PIPELINING) {
		for (size_t i = 0; i <= e->n_rcpt + 1; i++)
			smtpc_write_cmd(c, (int)i);
		r->sent = (int)e->n_rcpt + 2;
	} else {
		smtpc_write_cmd(c, 0);
		r->sent = 1;
	}
}

/* Dot-stuffs p[0..n) into out; *bol tracks "at the start of a line". */
static void
smtpc_stuff(struct evbuffer *out, const char *p, size_t n, bool *bol)
{
	while (n > 0) {
		if (*bol && p[0] == '.')
			evbuffer_add(out, ".", 1);
		const char *nl = memchr(p, '\n', n);
		size_t run = nl ? (size_t)(nl - p) + 1 : n;
		/* extend the run over lines that do not start with '.' */
		while (nl != NULL && run < n && p[run] != '.') {
			nl = memchr(p + run, '\n', n - run);
			run = nl ? (size_t)(nl - p) + 1 : n;
		}
		evbuffer_add(out, p, run);
		*bol = p[run - 1] == '\n';
		p += run;
		n -= run;
	}
}

static void
smtpc_fill_body(struct smtpc_conn *c)
{
	struct smtpc_req *r = c->req;
	struct envelope *e = r->env;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	while (evbuffer_get_length(out) < SMTPC_OUT_HIGH) {
		if (r->body_phase == 0) {
			r->bol = true;
			if (e->received)
				smtpc_stuff(out, e->received, strlen(e->received), &r->bol);
			if (e->headers)
				smtpc_stuff(out, e->headers, e->headers_len, &r->bol);
			r->body_phase = 1;
			r->body_off = e->body_skip;
			continue;
		}
		if (r->body_phase == 1) {
			size_t hl = 0;
			const char *head = e->body ? blob_head(e->body, &hl) : NULL;
			if (r->body_off < hl) {
				smtpc_stuff(out, head + r->body_off, hl - r->body_off, &r->bol);
				r->body_off = hl;
				continue;
			}
			char chunk[16384];
			ssize_t n = e->body ? blob_read(e->body, r->body_off, chunk, sizeof(chunk)) : 0;
			if (n < 0) {
				smtpc_fail(c, SMTPC_TEMP, "data", "cannot read message body: %s",
				           strerror(errno));
				return;
			}
			if (n > 0) {
				smtpc_stuff(out, chunk, (size_t)n, &r->bol);
				r->body_off += (size_t)n;
				continue;
			}
			if (!r->bol) /* cannot happen: DATA ends in CRLF; stay safe */
				evbuffer_add(out, "\r\n", 2);
			evbuffer_add(out, ".\r\n", 3);
			r->body_phase = 2;
			c->state = C_DOT;
			r->lmtp_left = c->lmtp ? r->rcpt_ok : 1;
			smtpc_set_timeout(c, r->opts.t_data);
			return;
		}
		return;
	}
}

/* Reply class of a code: 2, 3, 4, 5. */
static int
smtpc_class(int code)
{
	return code / 100;
}

static void
smtpc_after_tx(struct smtpc_conn *c, bool healthy)
{
	struct smtpc_req *r = c->req;
	c->req = NULL;
	if (healthy) {
		if (r != NULL && r->res.status != SMTPC_OK) {
			/* leave the transaction cleanly; the reply is read later, in
			 * front of whatever the connection does next */
			evbuffer_add(bufferevent_get_output(c->bev), "RSET\r\n", 6);
			c->rset_due++;
		}
		smtpc_idle_add(c);
	} else {
		smtpc_conn_close(c);
	}
	if (r != NULL) {
		r->conn = NULL;
		smtpc_req_done(r);
	}
}

/* The text of a recorded "550 5.1.1 text" reply, after code and enhanced code. */
static const char *
smtpc_reply_text(const char *reply)
{
	const char *p = reply;
	if (strlen(p) > 4 && p[3] == ' ')
		p += 4;
	size_t el = strspn(p, "0123456789.");
	if (el >= 5 && p[el] == ' ')
		p += el + 1;
	return p;
}

static const char *
smtpc_reply_enh(const char *reply, char *buf, size_t len)
{
	buf[0] = '\0';
	if (strlen(reply) > 4 && reply[3] == ' ') {
		size_t el = strspn(reply + 4, "0123456789.");
		if (el >= 5 && el < len && reply[4 + el] == ' ')
			mx_strlcpyn(buf, reply + 4, el, len);
	}
	return buf;
}

/* Records the current reply as recipient i's outcome. */
static void
smtpc_rcpt_result(struct envelope *e, size_t i, const struct smtpc_conn *c)
{
	e->rcpt[i].code = c->rcode;
	snprintf(e->rcpt[i].reply, sizeof(e->rcpt[i].reply), "%d%s%s %s", c->rcode, *c->renh ? " " : "",
	         c->renh, c->rtext);
}

/* LMTP: the next recipient still waiting for its post-DATA reply. */
static size_t
smtpc_lmtp_rcpt(struct smtpc_req *r)
{
	struct envelope *e = r->env;
	while (r->lmtp_next < e->n_rcpt && e->rcpt[r->lmtp_next].code / 100 != 2)
		r->lmtp_next++;
	return r->lmtp_next++;
}

static void
smtpc_envelope_reply(struct smtpc_conn *c)
{
	struct smtpc_req *r = c->req;
	struct envelope *e = r->env;
	int code = c->rcode, cls = smtpc_class(code);
	int idx = r->expect++;
	r->any_reply = true;
	if (code == 421) {
		smtpc_fail(c, SMTPC_CONNFAIL, idx == 0 ? "mail" : "rcpt", "%d %s %s", code, c->renh,
		           c->rtext);
		return;
	}
	if (idx == 0) { /* MAIL */
		if (cls != 2)
			smtpc_set_result(r, cls == 4 ? SMTPC_TEMP : SMTPC_PERM, code, c->renh, c->rtext,
			                 "mail");
	} else if ((size_t)idx <= e->n_rcpt) { /* RCPT */
		smtpc_rcpt_result(e, idx - 1, c);
		bool mail_failed = r->decided && strcmp(r->res.stage, "mail") == 0;
		if (cls == 2) {
			r->rcpt_ok++;
		} else if (r->opts.partial && !mail_failed) {
			/* remembered per recipient; the others still get the message */
			r->rcpt_failed++;
		} else if (!mail_failed && (!r->decided || (cls == 4 && r->res.status != SMTPC_TEMP))) {
			/* all or nothing: one refused recipient decides for the
			 * message, and a deferral outranks a refusal */
			char text[400];
			snprintf(text, sizeof(text), "<%s>: %s", e->rcpt[idx - 1].addr, c->rtext);
			smtpc_set_result(r, cls == 4 ? SMTPC_TEMP : SMTPC_PERM, code, c->renh, text, "rcpt");
		}
	} else { /* DATA */
		if (r->opts.partial && r->rcpt_ok == 0 && r->rcpt_failed > 0 && !r->decided) {
			/* every recipient refused: say so with the first refusal */
			char enh[16];
			for (size_t i = 0; i < e->n_rcpt; i++) {
				if (e->rcpt[i].code / 100 == 4) {
					smtpc_set_result(r, SMTPC_TEMP, e->rcpt[i].code,
					                 smtpc_reply_enh(e->rcpt[i].reply, enh, sizeof(enh)),
					                 smtpc_reply_text(e->rcpt[i].reply), "rcpt");
					break;
				}
			}
			if (!r->decided)
				smtpc_set_result(r, SMTPC_PERM, e->rcpt[0].code,
				                 smtpc_reply_enh(e->rcpt[0].reply, enh, sizeof(enh)),
				                 smtpc_reply_text(e->rcpt[0].reply), "rcpt");
		}
		if (code == 354) {
			if (r->decided) {
				/* a sender or recipient failed but DATA went through: the
				 * only way out of DATA without sending a message is to hang up */
				smtpc_after_tx(c, false);
				return;
			}
			c->state = C_BODY;
			smtpc_set_timeout(c, r->opts.t_data);
			smtpc_fill_body(c);
			return;
		}
		if (!r->decided)
			smtpc_set_result(r, cls == 4 ? SMTPC_TEMP : SMTPC_PERM, code, c->renh, c->rtext,
			                 "data");
		smtpc_after_tx(c, true);
		return;
	}
	/* without PIPELINING: send the next command, or stop early */
	if (!(c->caps & CAP_PIPELINING)) {
		if (idx == 0 && r->decided) {
			smtpc_after_tx(c, true);
			return;
		}
		if ((size_t)idx == e->n_rcpt && (r->decided || (r->opts.partial && r->rcpt_ok == 0))) {
			char enh[16];
			if (!r->decided)
				smtpc_set_result(r, SMTPC_PERM, e->rcpt[0].code,
				                 smtpc_reply_enh(e->rcpt[0].reply, enh, sizeof(enh)),
				                 smtpc_reply_text(e->rcpt[0].reply), "rcpt");
			smtpc_after_tx(c, true);
			return;
		}
		smtpc_write_cmd(c, r->sent++);
	}
}

static void
smtpc_dot_reply(struct smtpc_conn *c)
{
	struct smtpc_req *r = c->req;
	int code = c->rcode, cls = smtpc_class(code);
	r->any_reply = true;
	if (!c->lmtp) {
		/* one reply for every recipient that was accepted */
		for (size_t i = 0; i < r->env->n_rcpt; i++)
			if (r->env->rcpt[i].code / 100 == 2)
				smtpc_rcpt_result(r->env, i, c);
		smtpc_set_result(r, cls == 2 ? SMTPC_OK : cls == 4 ? SMTPC_TEMP : SMTPC_PERM, code,
		                 c->renh, c->rtext, "dot");
		if (code == 421) {
			smtpc_after_tx(c, false);
			return;
		}
		smtpc_after_tx(c, true);
		return;
	}
	/* LMTP: one reply per accepted recipient, worst one decides */
	size_t ri = smtpc_lmtp_rcpt(r);
	if (ri < r->env->n_rcpt)
		smtpc_rcpt_result(r->env, ri, c);
	if (cls == 2) {
		r->lmtp_ok++;
		if (!r->decided)
			smtpc_set_result(r, SMTPC_OK, code, c->renh, c->rtext, "dot");
	} else if (!r->decided || r->res.status == SMTPC_OK || cls == 4) {
		smtpc_set_result(r, cls == 4 ? SMTPC_TEMP : SMTPC_PERM, code, c->renh, c->rtext, "dot");
	}
	if (--r->lmtp_left > 0)
		return;
	if (r->opts.partial && r->lmtp_ok > 0) {
		smtpc_set_result(r, SMTPC_OK, 250, "2.0.0", "delivered to some recipients", "dot");
	} else if (r->res.status == SMTPC_PERM && r->lmtp_ok > 0) {
		char text[400];
		snprintf(text, sizeof(text), "delivered to %zu of %zu recipients; the others failed: %s",
		         r->lmtp_ok, r->rcpt_ok, r->res.text);
		mx_strlcpy(r->res.text, text, sizeof(r->res.text));
	}
	smtpc_after_tx(c, true);
}

static void smtpc_read_loop(struct smtpc_conn *c);

/* Wraps the connection in TLS; plaintext the peer sent after its 220 is
 * dropped (CVE-2011-0411, the client side). */
static int
smtpc_start_tls(struct smtpc_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	evbuffer_drain(in, evbuffer_get_length(in));
	if (c->pool->tls == NULL)
		return -1;
	SSL *ssl = SSL_new(c->pool->tls);
	if (ssl == NULL)
		return -1;
	struct bufferevent *tb = bufferevent_openssl_filter_new(c->pool->base, c->bev, ssl,
	                                                        BUFFEREVENT_SSL_CONNECTING,
	                                                        BEV_OPT_CLOSE_ON_FREE);
	if (tb == NULL) {
		SSL_free(ssl);
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
	c->bev = tb;
	c->state = C_HANDSHAKE;
	bufferevent_setcb(tb, smtpc_read_cb, smtpc_write_cb, smtpc_event_cb, c);
	bufferevent_setwatermark(tb, EV_WRITE, SMTPC_OUT_LOW, 0);
	smtpc_set_timeout(c, c->req->opts.t_reply);
	bufferevent_enable(tb, EV_READ | EV_WRITE);
	return 0;
}

static void
smtpc_read_cb(struct bufferevent *bev, void *arg)
{
	struct smtpc_conn *c = arg;
	(void)bev;
	smtpc_cb_enter(c);
	smtpc_read_loop(c);
	smtpc_cb_leave(c);
}

static void
smtpc_read_loop(struct smtpc_conn *c)
{
	for (;;) {
		if (c->state == C_CLOSED)
			return;
		if (c->rset_due > 0) {
			int rc = smtpc_read_reply(c);
			if (rc == 0)
				return;
			if (rc < 0 || c->rcode != 250) {
				smtpc_fail(c, SMTPC_CONNFAIL, "rset", "RSET refused by %s", c->name);
				return;
			}
			c->rset_due--;
			continue;
		}
		if (c->state == C_IDLE) {
			/* nothing left once the RSET's reply is read: still fit for
			 * reuse (it used to be closed here, every refused message
			 * costing a new connection) */
			if (evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
				return;
			/* the peer spoke while idle: do not reuse */
			smtpc_conn_close(c);
			return;
		}
		int rc = smtpc_read_reply(c);
		if (rc == 0)
			return;
		if (rc < 0) {
			smtpc_fail(c, c->state >= C_DOT ? SMTPC_TEMP : SMTPC_CONNFAIL, "reply",
			           "malformed reply from %s", c->name);
			return;
		}
		switch (c->state) {
		case C_GREETING:
			if (c->rcode != 220) {
				smtpc_fail(c, SMTPC_CONNFAIL, "greeting", "%d %s %s", c->rcode, c->renh,
				           c->rtext);
				return;
			}
			evbuffer_add_printf(bufferevent_get_output(c->bev), "%s %s\r\n",
			                    c->lmtp ? "LHLO" : "EHLO", c->req->helo);
			c->state = C_EHLO;
			break;
		case C_EHLO:
			if (c->rcode != 250) {
				if (!c->lmtp && c->rcode >= 500 && c->rcode != 521) {
					evbuffer_add_printf(bufferevent_get_output(c->bev), "HELO %s\r\n",
					                    c->req->helo);
					c->state = C_HELO;
					break;
				}
				smtpc_fail(c, SMTPC_CONNFAIL, "ehlo", "%d %s %s", c->rcode, c->renh, c->rtext);
				return;
			}
			smtpc_parse_caps(c);
			if (!c->tls && c->req->opts.tls != SMTPC_TLS_NONE && (c->caps & CAP_STARTTLS)) {
				evbuffer_add(bufferevent_get_output(c->bev), "STARTTLS\r\n", 10);
				c->state = C_STARTTLS;
				break;
			}
			if (!c->tls && c->req->opts.tls == SMTPC_TLS_ENCRYPT) {
				smtpc_fail(c, SMTPC_CONNFAIL, "starttls", "%s does not offer STARTTLS, and "
				           "downstream_tls is encrypt", c->name);
				return;
			}
			smtpc_start_tx(c);
			break;
		case C_STARTTLS:
			if (c->rcode != 220) {
				if (c->req->opts.tls == SMTPC_TLS_ENCRYPT) {
					smtpc_fail(c, SMTPC_CONNFAIL, "starttls", "%d %s %s", c->rcode, c->renh,
					           c->rtext);
					return;
				}
				smtpc_start_tx(c); /* may: carry on in the clear */
				break;
			}
			if (smtpc_start_tls(c) < 0) {
				smtpc_fail(c, SMTPC_CONNFAIL, "starttls", "cannot start TLS with %s", c->name);
				return;
			}
			return; /* the handshake's own callback goes on */
		case C_HELO:
			if (c->rcode != 250) {
				smtpc_fail(c, SMTPC_CONNFAIL, "helo", "%d %s %s", c->rcode, c->renh, c->rtext);
				return;
			}
			c->caps = 0;
			smtpc_start_tx(c);
			break;
		case C_ENVELOPE:
			smtpc_envelope_reply(c);
			break;
		case C_DOT:
			smtpc_dot_reply(c);
			break;
		case C_BODY:
			/* a reply while we send the body: the peer gave up on us */
			smtpc_fail(c, SMTPC_TEMP, "data", "%d %s %s", c->rcode, c->renh, c->rtext);
			return;
		default:
			smtpc_conn_close(c);
			return;
		}
		if (c->state == C_CLOSED || c->state == C_IDLE)
			return;
	}
}

static void
smtpc_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtpc_conn *c = arg;
	(void)bev;
	smtpc_cb_enter(c);
	if (c->state == C_BODY && c->req != NULL && c->req->body_phase < 2)
		smtpc_fill_body(c);
	smtpc_cb_leave(c);
}

static void smtpc_event(struct smtpc_conn *c, short what);

static void
smtpc_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtpc_conn *c = arg;
	(void)bev;
	smtpc_cb_enter(c);
	smtpc_event(c, what);
	smtpc_cb_leave(c);
}

static void
smtpc_event(struct smtpc_conn *c, short what)
{
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == C_HANDSHAKE) { /* TLS up: EHLO again (RFC 3207) */
			c->tls = true;
			c->state = C_EHLO;
			evbuffer_add_printf(bufferevent_get_output(c->bev), "%s %s\r\n",
			                    c->lmtp ? "LHLO" : "EHLO", c->req->helo);
			return;
		}
		c->state = C_GREETING;
		return;
	}
	if (c->state == C_IDLE) {
		smtpc_conn_close(c);
		return;
	}
	const char *why = (what & BEV_EVENT_TIMEOUT) ? "timeout"
	                  : (what & BEV_EVENT_EOF)    ? "connection closed"
	                                              : strerror(EVUTIL_SOCKET_ERROR());
	static const char *const stages[] = {
		[C_CONNECTING] = "connect", [C_GREETING] = "greeting", [C_EHLO] = "ehlo",
		[C_HELO] = "helo",          [C_IDLE] = "idle",         [C_ENVELOPE] = "envelope",
		[C_STARTTLS] = "starttls",  [C_HANDSHAKE] = "tls",
		[C_BODY] = "data",          [C_DOT] = "dot",           [C_CLOSED] = "closed",
	};
	const char *stage = stages[c->state];
	if (c->state == C_CONNECTING)
		stats_inc(STAT_DOWNSTREAM_CONNECT_FAIL);
	/* after the body has gone out the message may have been accepted:
	 * never fail over (that could deliver twice); defer instead */
	enum smtpc_status st = (c->state == C_DOT || c->state == C_BODY) ? SMTPC_TEMP : SMTPC_CONNFAIL;
	smtpc_fail(c, st, stage, "%s: %s", c->name, why);
}

/* ---- entry ---------------------------------------------------------------- */

void
smtpc_send(struct smtpc_pool *p, const struct smtpc_target *t, const struct smtpc_opts *o,
           struct envelope *env, smtpc_done_cb cb, void *arg)
{
	struct smtpc_req *r = xcalloc(1, sizeof(*r));
	r->pool = p;
	r->target = *t;
	mx_strlcpy(r->target_name, t->name, sizeof(r->target_name));
	r->target.name = r->target_name;
	r->opts = *o;
	mx_strlcpy(r->helo, o->helo, sizeof(r->helo));
	r->opts.helo = r->helo;
	r->env = env;
	r->cb = cb;
	r->arg = arg;
	r->in_send = true;
	for (size_t i = 0; i < env->n_rcpt; i++) {
		env->rcpt[i].code = 0;
		env->rcpt[i].reply[0] = '\0';
	}
	r->rnext = p->reqs;
	if (p->reqs)
		p->reqs->rprev = r;
	p->reqs = r;
	if (p->cancelling) {
		/* sent from a callback of smtpc_pool_cancel(): answered by it */
		smtpc_set_result(r, SMTPC_TEMP, 0, NULL, "shutting down", "shutdown");
		r->in_send = false;
		return;
	}

	struct smtpc_conn *c = smtpc_idle_take(p, t);
	if (c != NULL) {
		stats_inc(STAT_DOWNSTREAM_REUSE);
		r->res.reused = true;
		c->req = r;
		r->conn = c;
		smtpc_start_tx(c);
	} else {
		c = smtpc_conn_new(p, t, o);
		c->req = r;
		r->conn = c;
	}
	r->in_send = false;
}
