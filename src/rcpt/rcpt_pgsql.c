/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	rcpt_pgsql - recipients from PostgreSQL
 * DESCRIPTION
 *	One connection per worker thread, in libpq's pipeline mode: every
 *	lookup is PQsendQueryParams() plus a sync point, sent at once, and
 *	the answers come back in order, so many lookups share one connection
 *	without waiting for each other.  Connecting uses PQconnectStart() and
 *	PQconnectPoll() on the worker's event loop (give host addresses, not
 *	names: libpq resolves names synchronously).
 *	The query is parameterised, never pasted: $1 is the address (the key:
 *	"user@domain", or "@domain" for the catch-all probe), $2 its local
 *	part, $3 its domain, all of type text; a query may use any of them.
 *	A row means FOUND, no row NOTFOUND, an error TEMPFAIL.
 *	Lookups time out after recipients.timeout (TEMPFAIL); their answer,
 *	when it comes, is dropped.  Three timeouts in a row, or a broken
 *	connection, drop the connection; lookups in flight are sent again on
 *	the next one.  While the server cannot be reached lookups answer
 *	TEMPFAIL at once for a back-off.
 *	The conninfo may hold a password: it is never logged.
 * LIMITS
 *	RCPT_PGSQL_OPS_MAX lookups waiting or in flight per worker.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "rcpt_dl.h"

/* libpq is loaded when a configuration names it (rcpt_dl.c) */
#define RCPT_PGSQL_SYMS(X) \
	X(PQclear) X(PQconnectPoll) X(PQconnectStart) X(PQconninfoFree) X(PQconninfoParse) \
	X(PQconsumeInput) X(PQenterPipelineMode) X(PQerrorMessage) X(PQfinish) X(PQflush) \
	X(PQfreemem) X(PQgetResult) X(PQisBusy) X(PQntuples) X(PQpipelineSync) \
	X(PQresultErrorMessage) X(PQresultStatus) X(PQsendQueryParams) X(PQsetnonblocking) \
	X(PQsocket) X(PQstatus)
RCPT_DL_DECLARE(RCPT_PGSQL_SYMS)
static const char *const rcpt_dl_sonames[] = {MX_PQ_SONAME, "libpq.so.5", "libpq.so", NULL};
static struct rcpt_dl rcpt_dl_lib = RCPT_DL_INIT("PostgreSQL", "libpq5", rcpt_dl_sonames);
#define PQclear (*dl_PQclear)
#define PQconnectPoll (*dl_PQconnectPoll)
#define PQconnectStart (*dl_PQconnectStart)
#define PQconninfoFree (*dl_PQconninfoFree)
#define PQconninfoParse (*dl_PQconninfoParse)
#define PQconsumeInput (*dl_PQconsumeInput)
#define PQenterPipelineMode (*dl_PQenterPipelineMode)
#define PQerrorMessage (*dl_PQerrorMessage)
#define PQfinish (*dl_PQfinish)
#define PQflush (*dl_PQflush)
#define PQfreemem (*dl_PQfreemem)
#define PQgetResult (*dl_PQgetResult)
#define PQisBusy (*dl_PQisBusy)
#define PQntuples (*dl_PQntuples)
#define PQpipelineSync (*dl_PQpipelineSync)
#define PQresultErrorMessage (*dl_PQresultErrorMessage)
#define PQresultStatus (*dl_PQresultStatus)
#define PQsendQueryParams (*dl_PQsendQueryParams)
#define PQsetnonblocking (*dl_PQsetnonblocking)
#define PQsocket (*dl_PQsocket)
#define PQstatus (*dl_PQstatus)

#include "clock.h"
#include "log.h"
#include "rcpt_int.h"
#include "stats.h"
#include "str.h"
#include "xalloc.h"

#define RCPT_PGSQL_OPS_MAX 10000
#define RCPT_PGSQL_TIMEOUTS_MAX 3
#define RCPT_PGSQL_TEXTOID 25

struct rcpt_pgsql {
	_Atomic int refs;
	char *conninfo;
	char *query;
	char where[200]; /* host/port/dbname, for logs */
	long long timeout_ms;
	char ident[RCPT_IDENT_LEN];
};

struct rcpt_pgsql_chan;

struct rcpt_pgsql_op {
	struct rcpt_pgsql_op *next, *prev;
	struct rcpt_pgsql_chan *ch;
	bool sent;
	bool dead; /* timed out: answered already, its result is dropped */
	bool found, failed;
	struct event *timer;
	rcpt_done_cb cb;
	void *arg;
	char key[];
};

enum rcpt_pgsql_state { RCPT_PGSQL_DOWN, RCPT_PGSQL_CONNECTING, RCPT_PGSQL_UP };

struct rcpt_pgsql_chan {
	struct rcpt_chan hdr;
	struct rcpt_pgsql *pg;
	struct event_base *base;
	enum rcpt_pgsql_state state;
	PGconn *conn;
	struct event *io;
	int io_fd;
	short io_what;
	struct event *deadline; /* connecting */
	struct event *kick;
	struct event *start;
	struct rcpt_pgsql_op *head, *tail; /* sent ones first, in order */
	unsigned n_ops;
	unsigned timeouts;
};

static void rcpt_pgsql_io(evutil_socket_t fd, short what, void *arg);
static void rcpt_pgsql_connect(struct rcpt_pgsql_chan *ch);

/* ---- the backend ------------------------------------------------------------ */

static void
rcpt_pgsql_unref(struct rcpt_pgsql *pg)
{
	if (pg == NULL || atomic_fetch_sub(&pg->refs, 1) != 1)
		return;
	explicit_bzero(pg->conninfo, strlen(pg->conninfo));
	free(pg->conninfo);
	free(pg->query);
	free(pg);
}

void *
rcpt_pgsql_open(const struct mx_config *cfg, struct config_errors *errs, char *describe, size_t dlen)
{
	const char *dlwhy;
	if (rcpt_dl_load(&rcpt_dl_lib, &dlwhy) < 0) {
		config_error(errs, "%s: recipients.pgsql: %s", cfg->path, dlwhy);
		return NULL;
	}
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(cfg->pgsql_conninfo, &perr);
	if (opts == NULL) {
		char esc[300] = "";
		if (perr != NULL)
			log_escape(esc, sizeof(esc), perr, strlen(perr));
		config_error(errs, "%s: recipients.pgsql.conninfo: %s", cfg->path,
		             *esc ? esc : "cannot be parsed");
		PQfreemem(perr);
		return NULL;
	}
	if (cfg->pgsql_query == NULL) {
		PQconninfoFree(opts);
		config_error(errs, "%s: recipients.pgsql needs a query", cfg->path);
		return NULL;
	}
	struct rcpt_pgsql *pg = xcalloc(1, sizeof(*pg));
	atomic_init(&pg->refs, 1);
	const char *host = NULL, *hostaddr = NULL, *port = NULL, *db = NULL;
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			db = o->val;
	}
	snprintf(pg->where, sizeof(pg->where), "%s:%s/%s", hostaddr ? hostaddr : host ? host : "local",
	         port ? port : "5432", db ? db : "-");
	PQconninfoFree(opts);
	pg->conninfo = xstrdup(cfg->pgsql_conninfo);
	pg->query = xstrdup(cfg->pgsql_query);
	pg->timeout_ms = cfg->rcpt_timeout;
	char tmo[32];
	snprintf(tmo, sizeof(tmo), "%lld", pg->timeout_ms);
	const char *parts[] = {pg->conninfo, pg->query, tmo};
	rcpt_ident(pg->ident, "pgsql", parts, MX_ARRAY_LEN(parts));
	snprintf(describe, dlen, "pgsql %s query=\"%s\"", pg->where, pg->query);
	return pg;
}

static void
rcpt_pgsql_free(void *be)
{
	rcpt_pgsql_unref(be);
}

/* ---- the channel ----------------------------------------------------------- */

static void
rcpt_pgsql_unlink(struct rcpt_pgsql_chan *ch, struct rcpt_pgsql_op *op)
{
	if (op->prev)
		op->prev->next = op->next;
	else
		ch->head = op->next;
	if (op->next)
		op->next->prev = op->prev;
	else
		ch->tail = op->prev;
	ch->n_ops--;
}

/* Delivers r (unless op timed out already) and, when remove, frees op. */
static void
rcpt_pgsql_answer(struct rcpt_pgsql_op *op, enum mx_lookup r, bool remove)
{
	rcpt_done_cb cb = op->dead ? NULL : op->cb;
	void *arg = op->arg;
	if (op->timer != NULL) {
		event_free(op->timer);
		op->timer = NULL;
	}
	op->dead = true;
	if (remove) {
		rcpt_pgsql_unlink(op->ch, op);
		free(op);
	}
	if (r == MX_TEMPFAIL && cb != NULL)
		stats_inc(STAT_RCPT_DIRECTORY_FAIL);
	if (cb != NULL)
		cb(r, arg);
}

static void
rcpt_pgsql_watch(struct rcpt_pgsql_chan *ch, short what)
{
	int fd = PQsocket(ch->conn);
	if (ch->io != NULL && (ch->io_fd != fd || ch->io_what != what)) {
		event_free(ch->io);
		ch->io = NULL;
	}
	if (ch->io == NULL && fd >= 0) {
		ch->io = event_new(ch->base, fd, what | EV_PERSIST, rcpt_pgsql_io, ch);
		ch->io_fd = fd;
		ch->io_what = what;
		event_add(ch->io, NULL);
	}
}

static void
rcpt_pgsql_close(struct rcpt_pgsql_chan *ch)
{
	if (ch->io != NULL) {
		event_free(ch->io);
		ch->io = NULL;
	}
	if (ch->conn != NULL) {
		PQfinish(ch->conn);
		ch->conn = NULL;
	}
	evtimer_del(ch->deadline);
	ch->state = RCPT_PGSQL_DOWN;
	ch->timeouts = 0;
}

/* Could not connect: back off, and everything waiting gets TEMPFAIL. */
static void
rcpt_pgsql_failed(struct rcpt_pgsql_chan *ch, const char *why)
{
	rcpt_chan_warn(&ch->hdr, "cannot connect (recipients get 451 until it is back): ", why);
	rcpt_pgsql_close(ch);
	rcpt_chan_backoff(&ch->hdr);
	while (ch->head != NULL)
		rcpt_pgsql_answer(ch->head, MX_TEMPFAIL, true);
}

/* The connection broke: drop it; live lookups are sent again. */
static void
rcpt_pgsql_lost(struct rcpt_pgsql_chan *ch, const char *why)
{
	rcpt_chan_warn(&ch->hdr, "connection lost: ", why);
	rcpt_pgsql_close(ch);
	struct rcpt_pgsql_op *op = ch->head;
	while (op != NULL) {
		struct rcpt_pgsql_op *next = op->next;
		if (op->dead) {
			rcpt_pgsql_unlink(ch, op);
			free(op);
		} else {
			op->sent = false;
			op->found = op->failed = false;
		}
		op = next;
	}
	if (ch->head != NULL)
		rcpt_pgsql_connect(ch);
}

/* Sends op; -1 when the connection is broken. */
static int
rcpt_pgsql_send(struct rcpt_pgsql_chan *ch, struct rcpt_pgsql_op *op)
{
	char local[SMTP_LOCAL_MAX + 1] = "";
	const char *at = strrchr(op->key, '@');
	if (at != NULL)
		mx_strlcpyn(local, op->key, (size_t)(at - op->key), sizeof(local));
	const char *vals[3] = {op->key, local, at ? at + 1 : ""};
	const Oid types[3] = {RCPT_PGSQL_TEXTOID, RCPT_PGSQL_TEXTOID, RCPT_PGSQL_TEXTOID};
	if (!PQsendQueryParams(ch->conn, ch->pg->query, 3, types, vals, NULL, NULL, 0) ||
	    !PQpipelineSync(ch->conn))
		return -1;
	op->sent = true;
	stats_inc(STAT_RCPT_DIRECTORY_QUERY);
	int f = PQflush(ch->conn);
	if (f < 0)
		return -1;
	if (f > 0)
		rcpt_pgsql_watch(ch, EV_READ | EV_WRITE);
	return 0;
}

static void
rcpt_pgsql_connected(struct rcpt_pgsql_chan *ch)
{
	evtimer_del(ch->deadline);
	if (PQsetnonblocking(ch->conn, 1) != 0 || !PQenterPipelineMode(ch->conn)) {
		rcpt_pgsql_failed(ch, PQerrorMessage(ch->conn));
		return;
	}
	ch->state = RCPT_PGSQL_UP;
	rcpt_chan_up(&ch->hdr);
	log_info("pgsql: connected to %s", ch->pg->where);
	rcpt_pgsql_watch(ch, EV_READ);
	for (struct rcpt_pgsql_op *op = ch->head; op; op = op->next) {
		if (op->sent || op->dead)
			continue;
		if (rcpt_pgsql_send(ch, op) < 0) {
			rcpt_pgsql_lost(ch, PQerrorMessage(ch->conn));
			return;
		}
	}
}

static void
rcpt_pgsql_poll_connect(struct rcpt_pgsql_chan *ch)
{
	switch (PQconnectPoll(ch->conn)) {
	case PGRES_POLLING_READING:
		rcpt_pgsql_watch(ch, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		rcpt_pgsql_watch(ch, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		rcpt_pgsql_connected(ch);
		break;
	default:
		rcpt_pgsql_failed(ch, PQerrorMessage(ch->conn));
		break;
	}
}

static void
rcpt_pgsql_connect(struct rcpt_pgsql_chan *ch)
{
	ch->conn = PQconnectStart(ch->pg->conninfo);
	ch->state = RCPT_PGSQL_CONNECTING;
	if (ch->conn == NULL || PQstatus(ch->conn) == CONNECTION_BAD) {
		rcpt_pgsql_failed(ch, ch->conn ? PQerrorMessage(ch->conn) : "out of memory");
		return;
	}
	struct timeval tv = rcpt_tv(ch->pg->timeout_ms);
	evtimer_add(ch->deadline, &tv);
	rcpt_pgsql_watch(ch, EV_WRITE);
}

static void
rcpt_pgsql_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct rcpt_pgsql_chan *ch = arg;
	(void)fd;
	(void)what;
	if (ch->state == RCPT_PGSQL_CONNECTING)
		rcpt_pgsql_failed(ch, "connection timed out");
}

static void
rcpt_pgsql_start(evutil_socket_t fd, short what, void *arg)
{
	struct rcpt_pgsql_chan *ch = arg;
	(void)fd;
	(void)what;
	if (ch->state == RCPT_PGSQL_CONNECTING && ch->conn == NULL)
		rcpt_pgsql_connect(ch);
}

static void
rcpt_pgsql_kick(evutil_socket_t fd, short what, void *arg)
{
	struct rcpt_pgsql_chan *ch = arg;
	(void)fd;
	(void)what;
	if (ch->state == RCPT_PGSQL_UP)
		rcpt_pgsql_lost(ch, PQerrorMessage(ch->conn));
}

/* Reads every complete answer: per lookup a result, NULL, then the sync. */
static void
rcpt_pgsql_results(struct rcpt_pgsql_chan *ch)
{
	int nulls = 0;
	while (ch->state == RCPT_PGSQL_UP && ch->head != NULL && ch->head->sent &&
	       !PQisBusy(ch->conn)) {
		PGresult *res = PQgetResult(ch->conn);
		struct rcpt_pgsql_op *op = ch->head;
		if (res == NULL) {
			if (++nulls > 1)
				break;
			continue;
		}
		nulls = 0;
		switch (PQresultStatus(res)) {
		case PGRES_TUPLES_OK:
			if (PQntuples(res) > 0)
				op->found = true;
			break;
		case PGRES_COMMAND_OK:
			break;
		case PGRES_PIPELINE_SYNC:
			ch->timeouts = 0;
			PQclear(res);
			rcpt_pgsql_answer(op, op->found    ? MX_FOUND
			                      : op->failed ? MX_TEMPFAIL
			                                   : MX_NOTFOUND, true);
			continue;
		default:
			op->failed = true;
			rcpt_chan_warn(&ch->hdr, "query failed: ", PQresultErrorMessage(res));
			break;
		}
		PQclear(res);
	}
}

static void
rcpt_pgsql_io(evutil_socket_t fd, short what, void *arg)
{
	struct rcpt_pgsql_chan *ch = arg;
	(void)fd;
	if (ch->state == RCPT_PGSQL_CONNECTING) {
		rcpt_pgsql_poll_connect(ch);
		return;
	}
	if (ch->state != RCPT_PGSQL_UP)
		return;
	if (what & EV_WRITE) {
		int f = PQflush(ch->conn);
		if (f < 0) {
			rcpt_pgsql_lost(ch, PQerrorMessage(ch->conn));
			return;
		}
		if (f == 0)
			rcpt_pgsql_watch(ch, EV_READ);
	}
	if (what & EV_READ) {
		if (!PQconsumeInput(ch->conn)) {
			rcpt_pgsql_lost(ch, PQerrorMessage(ch->conn));
			return;
		}
		rcpt_pgsql_results(ch);
	}
}

static void
rcpt_pgsql_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct rcpt_pgsql_op *op = arg;
	struct rcpt_pgsql_chan *ch = op->ch;
	(void)fd;
	(void)what;
	char detail[64];
	snprintf(detail, sizeof(detail), "%lld ms", ch->pg->timeout_ms);
	rcpt_chan_warn(&ch->hdr, "no answer within ", detail);
	bool sent = op->sent;
	/* a sent query keeps its place: its answer still comes, in order */
	rcpt_pgsql_answer(op, MX_TEMPFAIL, !sent);
	if (sent && ++ch->timeouts >= RCPT_PGSQL_TIMEOUTS_MAX && ch->state == RCPT_PGSQL_UP)
		rcpt_pgsql_lost(ch, "the server stopped answering");
}

static bool
rcpt_pgsql_busy(struct rcpt_chan *c)
{
	struct rcpt_pgsql_chan *ch = (struct rcpt_pgsql_chan *)c;
	return ch->head != NULL || ch->state == RCPT_PGSQL_CONNECTING;
}

static void
rcpt_pgsql_chan_free(struct rcpt_chan *c)
{
	struct rcpt_pgsql_chan *ch = (struct rcpt_pgsql_chan *)c;
	while (ch->head != NULL) {
		struct rcpt_pgsql_op *op = ch->head;
		rcpt_pgsql_unlink(ch, op);
		if (op->timer)
			event_free(op->timer);
		free(op);
	}
	rcpt_pgsql_close(ch);
	event_free(ch->deadline);
	event_free(ch->kick);
	event_free(ch->start);
	rcpt_pgsql_unref(ch->pg);
	free(ch);
}

static const struct rcpt_chan_type rcpt_pgsql_chan_type = {
	"pgsql", sizeof(struct rcpt_pgsql_chan), rcpt_pgsql_busy, rcpt_pgsql_chan_free};

static struct rcpt_pgsql_chan *
rcpt_pgsql_chan_get(struct rcpt_pgsql *pg, struct event_base *base)
{
	bool fresh;
	struct rcpt_pgsql_chan *ch = (struct rcpt_pgsql_chan *)rcpt_chan_get(
	    base, &rcpt_pgsql_chan_type, pg->ident, pg->where, &fresh);
	if (!fresh)
		return ch;
	atomic_fetch_add(&pg->refs, 1);
	ch->pg = pg;
	ch->base = base;
	ch->io_fd = -1;
	ch->deadline = evtimer_new(base, rcpt_pgsql_deadline, ch);
	ch->kick = event_new(base, -1, 0, rcpt_pgsql_kick, ch);
	ch->start = event_new(base, -1, 0, rcpt_pgsql_start, ch);
	return ch;
}

static enum mx_lookup
rcpt_pgsql_lookup(void *be, struct event_base *base, const char *key, rcpt_done_cb cb, void *arg)
{
	struct rcpt_pgsql *pg = be;
	struct rcpt_pgsql_chan *ch = rcpt_pgsql_chan_get(pg, base);
	if (rcpt_chan_refuse(&ch->hdr, ch->state == RCPT_PGSQL_DOWN, ch->n_ops, RCPT_PGSQL_OPS_MAX))
		return MX_TEMPFAIL;
	size_t klen = strlen(key) + 1;
	struct rcpt_pgsql_op *op = xcalloc(1, sizeof(*op) + klen);
	memcpy(op->key, key, klen);
	op->ch = ch;
	op->cb = cb;
	op->arg = arg;
	op->timer = rcpt_timer_start(base, pg->timeout_ms, rcpt_pgsql_timeout, op);
	op->prev = ch->tail;
	if (ch->tail)
		ch->tail->next = op;
	else
		ch->head = op;
	ch->tail = op;
	ch->n_ops++;
	if (ch->state == RCPT_PGSQL_UP) {
		if (rcpt_pgsql_send(ch, op) < 0)
			event_active(ch->kick, EV_READ, 0);
	} else if (ch->state == RCPT_PGSQL_DOWN) {
		/* from the loop: a connect that fails at once answers every
		 * waiting lookup, and never from inside this call */
		ch->state = RCPT_PGSQL_CONNECTING;
		event_active(ch->start, EV_READ, 0);
	}
	return MX_PENDING;
}

const struct rcpt_backend_ops rcpt_pgsql_ops = {
	.name = "pgsql",
	.async = true,
	.lookup = rcpt_pgsql_lookup,
	.free = rcpt_pgsql_free,
};
