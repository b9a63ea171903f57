/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	rcpt_mysql - recipients from MySQL / MariaDB
 * DESCRIPTION
 *	libmariadb's non-blocking API (mysql_*_start / mysql_*_cont) on the
 *	worker's event loop, with a prepared statement per connection: the
 *	address is a bound parameter, never pasted into SQL.  Every '?' of
 *	the query is bound to the address (the key: "user@domain", or
 *	"@domain" for the catch-all probe).  A row means FOUND, none
 *	NOTFOUND, an error TEMPFAIL.
 *	The MySQL protocol runs one statement at a time per connection, so
 *	each worker keeps a small pool (recipients.mysql.connections) and a
 *	queue of lookups waiting for a free connection.  Steps of one lookup:
 *	execute, store the result (the row count is all we need), free it.
 *	A lookup not answered within recipients.timeout gets TEMPFAIL and its
 *	connection is closed (a statement cannot be abandoned half way).
 *	When no connection can be made, lookups answer TEMPFAIL at once for a
 *	back-off.  The password is never logged.
 * LIMITS
 *	RCPT_MYSQL_OPS_MAX lookups waiting per worker; 32 '?' per query.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>

#include "rcpt_dl.h"

/* libmariadb is loaded when a configuration names it (rcpt_dl.c) */
#define RCPT_MYSQL_SYMS(X) \
	X(mysql_close) X(mysql_error) X(mysql_get_socket) X(mysql_get_timeout_value_ms) \
	X(mysql_init) X(mysql_options) X(mysql_real_connect_cont) X(mysql_real_connect_start) \
	X(mysql_server_init) X(mysql_stmt_bind_param) X(mysql_stmt_close) X(mysql_stmt_errno) \
	X(mysql_stmt_error) X(mysql_stmt_execute_cont) X(mysql_stmt_execute_start) \
	X(mysql_stmt_free_result_cont) X(mysql_stmt_free_result_start) X(mysql_stmt_init) \
	X(mysql_stmt_num_rows) X(mysql_stmt_param_count) X(mysql_stmt_prepare_cont) \
	X(mysql_stmt_prepare_start) X(mysql_stmt_store_result_cont) \
	X(mysql_stmt_store_result_start)
RCPT_DL_DECLARE(RCPT_MYSQL_SYMS)
static const char *const rcpt_dl_sonames[] = {MX_MARIADB_SONAME, "libmariadb.so.3", "libmariadb.so", NULL};
static struct rcpt_dl rcpt_dl_lib = RCPT_DL_INIT("MySQL", "libmariadb3", rcpt_dl_sonames);
#define mysql_close (*dl_mysql_close)
#define mysql_error (*dl_mysql_error)
#define mysql_get_socket (*dl_mysql_get_socket)
#define mysql_get_timeout_value_ms (*dl_mysql_get_timeout_value_ms)
#define mysql_init (*dl_mysql_init)
#define mysql_options (*dl_mysql_options)
#define mysql_real_connect_cont (*dl_mysql_real_connect_cont)
#define mysql_real_connect_start (*dl_mysql_real_connect_start)
#define mysql_server_init (*dl_mysql_server_init)
#define mysql_stmt_bind_param (*dl_mysql_stmt_bind_param)
#define mysql_stmt_close (*dl_mysql_stmt_close)
#define mysql_stmt_errno (*dl_mysql_stmt_errno)
#define mysql_stmt_error (*dl_mysql_stmt_error)
#define mysql_stmt_execute_cont (*dl_mysql_stmt_execute_cont)
#define mysql_stmt_execute_start (*dl_mysql_stmt_execute_start)
#define mysql_stmt_free_result_cont (*dl_mysql_stmt_free_result_cont)
#define mysql_stmt_free_result_start (*dl_mysql_stmt_free_result_start)
#define mysql_stmt_init (*dl_mysql_stmt_init)
#define mysql_stmt_num_rows (*dl_mysql_stmt_num_rows)
#define mysql_stmt_param_count (*dl_mysql_stmt_param_count)
#define mysql_stmt_prepare_cont (*dl_mysql_stmt_prepare_cont)
#define mysql_stmt_prepare_start (*dl_mysql_stmt_prepare_start)
#define mysql_stmt_store_result_cont (*dl_mysql_stmt_store_result_cont)
#define mysql_stmt_store_result_start (*dl_mysql_stmt_store_result_start)

#include "clock.h"
#include "log.h"
#include "rcpt_int.h"
#include "stats.h"
#include "str.h"
#include "xalloc.h"

#define RCPT_MYSQL_OPS_MAX 10000
#define RCPT_MYSQL_PARAMS_MAX 32

struct rcpt_mysql {
	_Atomic int refs;
	char *host, *user, *password, *database, *query;
	unsigned port;
	int connections;
	char where[300];
	long long timeout_ms;
	char ident[RCPT_IDENT_LEN];
};

struct rcpt_mysql_chan;

struct rcpt_mysql_op {
	struct rcpt_mysql_op *next;
	struct rcpt_mysql_chan *ch;
	struct rcpt_mysql_conn *conn; /* running on it, or NULL: waiting */
	struct event *timer;
	int tries;
	rcpt_done_cb cb;
	void *arg;
	char key[];
};

enum rcpt_mysql_step {
	RCPT_MYSQL_CONNECT,
	RCPT_MYSQL_PREPARE,
	RCPT_MYSQL_IDLE,
	RCPT_MYSQL_EXECUTE,
	RCPT_MYSQL_STORE,
	RCPT_MYSQL_FREE,
};

struct rcpt_mysql_conn {
	struct rcpt_mysql_conn *next;
	struct rcpt_mysql_chan *ch;
	MYSQL *my;
	MYSQL_STMT *stmt;
	enum rcpt_mysql_step step;
	struct event *ev;
	struct rcpt_mysql_op *op;
	bool found;
	unsigned nparams;
	MYSQL_BIND bind[RCPT_MYSQL_PARAMS_MAX];
	unsigned long keylen;
};

struct rcpt_mysql_chan {
	struct rcpt_chan hdr;
	struct rcpt_mysql *my;
	struct event_base *base;
	struct rcpt_mysql_conn *conns;
	int n_conns;
	struct rcpt_mysql_op *wait_head, *wait_tail; /* waiting for a connection */
	unsigned n_ops;                              /* waiting and running */
	struct event *start;
};

static pthread_once_t rcpt_mysql_once = PTHREAD_ONCE_INIT;

static void rcpt_mysql_run(struct rcpt_mysql_conn *c, int status);
static void rcpt_mysql_dispatch(struct rcpt_mysql_chan *ch);

/* ---- the backend ------------------------------------------------------------ */

static void
rcpt_mysql_global_init(void)
{
	mysql_library_init(0, NULL, NULL);
}

static void
rcpt_mysql_unref(struct rcpt_mysql *m)
{
	if (m == NULL || atomic_fetch_sub(&m->refs, 1) != 1)
		return;
	free(m->host);
	free(m->user);
	if (m->password != NULL) {
		explicit_bzero(m->password, strlen(m->password));
		free(m->password);
	}
	free(m->database);
	free(m->query);
	free(m);
}

void *
rcpt_mysql_open(const struct mx_config *cfg, struct config_errors *errs, char *describe, size_t dlen)
{
	const char *dlwhy;
	if (rcpt_dl_load(&rcpt_dl_lib, &dlwhy) < 0) {
		config_error(errs, "%s: recipients.mysql: %s", cfg->path, dlwhy);
		return NULL;
	}
	pthread_once(&rcpt_mysql_once, rcpt_mysql_global_init);
	if (cfg->mysql_query == NULL || cfg->mysql_user == NULL || cfg->mysql_database == NULL) {
		config_error(errs, "%s: recipients.mysql needs user, database and query", cfg->path);
		return NULL;
	}
	unsigned q = 0;
	for (const char *p = cfg->mysql_query; *p; p++)
		q += *p == '?';
	if (q == 0 || q > RCPT_MYSQL_PARAMS_MAX) {
		config_error(errs, "%s: recipients.mysql.query must use the address as a parameter (?), "
		             "1 to %d times", cfg->path, RCPT_MYSQL_PARAMS_MAX);
		return NULL;
	}
	struct rcpt_mysql *m = xcalloc(1, sizeof(*m));
	atomic_init(&m->refs, 1);
	m->host = xstrdup(cfg->mysql_host);
	m->port = (unsigned)cfg->mysql_port;
	m->user = xstrdup(cfg->mysql_user);
	m->password = cfg->mysql_password ? xstrdup(cfg->mysql_password) : NULL;
	m->database = xstrdup(cfg->mysql_database);
	m->query = xstrdup(cfg->mysql_query);
	m->connections = cfg->mysql_connections;
	m->timeout_ms = cfg->rcpt_timeout;
	snprintf(m->where, sizeof(m->where), "%s:%u/%s", m->host, m->port, m->database);
	char port[16], conns[16], tmo[32];
	snprintf(port, sizeof(port), "%u", m->port);
	snprintf(conns, sizeof(conns), "%d", m->connections);
	snprintf(tmo, sizeof(tmo), "%lld", m->timeout_ms);
	const char *parts[] = {m->host, port, m->user, m->password, m->database, m->query, conns, tmo};
	rcpt_ident(m->ident, "mysql", parts, MX_ARRAY_LEN(parts));
	snprintf(describe, dlen, "mysql %s user=%s query=\"%s\"", m->where, m->user, m->query);
	return m;
}

static void
rcpt_mysql_free(void *be)
{
	rcpt_mysql_unref(be);
}

/* ---- connections ------------------------------------------------------------ */

/* Delivers r for op (unlinked already) and frees it. */
static void
rcpt_mysql_answer(struct rcpt_mysql_op *op, enum mx_lookup r)
{
	rcpt_done_cb cb = op->cb;
	void *arg = op->arg;
	op->ch->n_ops--;
	event_free(op->timer);
	free(op);
	if (r == MX_TEMPFAIL)
		stats_inc(STAT_RCPT_DIRECTORY_FAIL);
	cb(r, arg);
}

static void
rcpt_mysql_conn_free(struct rcpt_mysql_conn *c)
{
	struct rcpt_mysql_chan *ch = c->ch;
	struct rcpt_mysql_conn **pp = &ch->conns;
	while (*pp != NULL && *pp != c)
		pp = &(*pp)->next;
	if (*pp != NULL) {
		*pp = c->next;
		ch->n_conns--;
	}
	if (c->ev != NULL)
		event_free(c->ev);
	if (c->stmt != NULL)
		mysql_stmt_close(c->stmt);
	mysql_close(c->my);
	free(c);
}

/* The connection failed.  Its lookup goes to another connection once (a
 * connection broken while idle shows only when used), then gets TEMPFAIL. */
static void
rcpt_mysql_conn_fail(struct rcpt_mysql_conn *c, const char *what)
{
	struct rcpt_mysql_chan *ch = c->ch;
	const char *err = c->stmt && mysql_stmt_errno(c->stmt) ? mysql_stmt_error(c->stmt)
	                                                         : mysql_error(c->my);
	bool connecting = c->step == RCPT_MYSQL_CONNECT || c->step == RCPT_MYSQL_PREPARE;
	char msg[400];
	snprintf(msg, sizeof(msg), "%s: %s", what, err);
	rcpt_chan_warn(&ch->hdr, connecting ? "cannot connect (recipients get 451 until it is back): "
	                               : "", msg);
	struct rcpt_mysql_op *op = c->op;
	c->op = NULL;
	rcpt_mysql_conn_free(c);
	if (connecting && ch->n_conns == 0) {
		rcpt_chan_backoff(&ch->hdr);
		while (ch->wait_head != NULL) {
			struct rcpt_mysql_op *w = ch->wait_head;
			ch->wait_head = w->next;
			if (ch->wait_head == NULL)
				ch->wait_tail = NULL;
			rcpt_mysql_answer(w, MX_TEMPFAIL);
		}
	}
	if (op != NULL && op->tries++ == 0) {
		op->conn = NULL;
		op->next = ch->wait_head;
		ch->wait_head = op;
		if (ch->wait_tail == NULL)
			ch->wait_tail = op;
	} else if (op != NULL) {
		rcpt_mysql_answer(op, MX_TEMPFAIL);
	}
	event_active(ch->start, EV_READ, 0); /* the rest from the loop */
}

static void
rcpt_mysql_io(evutil_socket_t fd, short what, void *arg)
{
	struct rcpt_mysql_conn *c = arg;
	int status = 0;
	(void)fd;
	if (what & EV_READ)
		status |= MYSQL_WAIT_READ;
	if (what & EV_WRITE)
		status |= MYSQL_WAIT_WRITE;
	if (what & EV_TIMEOUT)
		status |= MYSQL_WAIT_TIMEOUT;
	rcpt_mysql_run(c, status);
}

/* The library waits for st (MYSQL_WAIT_*): watch the socket for it. */
static void
rcpt_mysql_wait(struct rcpt_mysql_conn *c, int st)
{
	short what = 0;
	if (st & MYSQL_WAIT_READ)
		what |= EV_READ;
	if (st & MYSQL_WAIT_WRITE)
		what |= EV_WRITE;
	if (c->ev != NULL)
		event_free(c->ev);
	c->ev = event_new(c->ch->base, mysql_get_socket(c->my), what, rcpt_mysql_io, c);
	if (st & MYSQL_WAIT_TIMEOUT) {
		unsigned ms = mysql_get_timeout_value_ms(c->my);
		struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
		event_add(c->ev, &tv);
	} else {
		event_add(c->ev, NULL);
	}
}

/* Runs the connection's steps until one has to wait.  status 0 starts
 * the current step; otherwise it continues it with what became ready. */
static void
rcpt_mysql_run(struct rcpt_mysql_conn *c, int status)
{
	struct rcpt_mysql_chan *ch = c->ch;
	struct rcpt_mysql *m = ch->my;
	for (;;) {
		int st, iret = 0;
		my_bool bret = 0;
		MYSQL *cret = NULL;
		switch (c->step) {
		case RCPT_MYSQL_CONNECT:
			st = status ? mysql_real_connect_cont(&cret, c->my, status)
			            : mysql_real_connect_start(&cret, c->my, m->host, m->user, m->password,
			                                       m->database, m->port, NULL, 0);
			if (st) {
				rcpt_mysql_wait(c, st);
				return;
			}
			if (cret == NULL) {
				rcpt_mysql_conn_fail(c, "connect");
				return;
			}
			c->stmt = mysql_stmt_init(c->my);
			if (c->stmt == NULL) { /* out of memory: prepare would crash on it */
				rcpt_mysql_conn_fail(c, "statement");
				return;
			}
			c->step = RCPT_MYSQL_PREPARE;
			break;
		case RCPT_MYSQL_PREPARE:
			st = status ? mysql_stmt_prepare_cont(&iret, c->stmt, status)
			            : mysql_stmt_prepare_start(&iret, c->stmt, m->query, strlen(m->query));
			if (st) {
				rcpt_mysql_wait(c, st);
				return;
			}
			if (iret != 0) {
				rcpt_mysql_conn_fail(c, "prepare");
				return;
			}
			c->nparams = mysql_stmt_param_count(c->stmt);
			if (c->nparams > RCPT_MYSQL_PARAMS_MAX)
				c->nparams = RCPT_MYSQL_PARAMS_MAX;
			rcpt_chan_up(&ch->hdr);
			log_info("mysql: connected to %s", m->where);
			c->step = RCPT_MYSQL_IDLE;
			break;
		case RCPT_MYSQL_IDLE:
			if (c->op == NULL) {
				if (ch->wait_head == NULL)
					return;
				c->op = ch->wait_head;
				ch->wait_head = c->op->next;
				if (ch->wait_head == NULL)
					ch->wait_tail = NULL;
				c->op->conn = c;
			}
			memset(c->bind, 0, sizeof(c->bind));
			c->keylen = strlen(c->op->key);
			for (unsigned i = 0; i < c->nparams; i++) {
				c->bind[i].buffer_type = MYSQL_TYPE_STRING;
				c->bind[i].buffer = c->op->key;
				c->bind[i].buffer_length = c->keylen;
				c->bind[i].length = &c->keylen;
			}
			if (mysql_stmt_bind_param(c->stmt, c->bind)) {
				rcpt_mysql_conn_fail(c, "bind");
				return;
			}
			stats_inc(STAT_RCPT_DIRECTORY_QUERY);
			c->found = false;
			c->step = RCPT_MYSQL_EXECUTE;
			break;
		case RCPT_MYSQL_EXECUTE:
			st = status ? mysql_stmt_execute_cont(&iret, c->stmt, status)
			            : mysql_stmt_execute_start(&iret, c->stmt);
			if (st) {
				rcpt_mysql_wait(c, st);
				return;
			}
			if (iret != 0) {
				rcpt_mysql_conn_fail(c, "execute");
				return;
			}
			c->step = RCPT_MYSQL_STORE;
			break;
		case RCPT_MYSQL_STORE:
			st = status ? mysql_stmt_store_result_cont(&iret, c->stmt, status)
			            : mysql_stmt_store_result_start(&iret, c->stmt);
			if (st) {
				rcpt_mysql_wait(c, st);
				return;
			}
			if (iret != 0) {
				rcpt_mysql_conn_fail(c, "store result");
				return;
			}
			c->found = mysql_stmt_num_rows(c->stmt) > 0;
			c->step = RCPT_MYSQL_FREE;
			break;
		case RCPT_MYSQL_FREE:
			st = status ? mysql_stmt_free_result_cont(&bret, c->stmt, status)
			            : mysql_stmt_free_result_start(&bret, c->stmt);
			if (st) {
				rcpt_mysql_wait(c, st);
				return;
			}
			c->step = RCPT_MYSQL_IDLE;
			if (c->op != NULL) {
				struct rcpt_mysql_op *op = c->op;
				c->op = NULL;
				/* the callback may queue lookups: this connection
				 * takes the next one when it returns */
				rcpt_mysql_answer(op, c->found ? MX_FOUND : MX_NOTFOUND);
			}
			break;
		}
		status = 0;
	}
}

static void
rcpt_mysql_conn_new(struct rcpt_mysql_chan *ch)
{
	struct rcpt_mysql_conn *c = xcalloc(1, sizeof(*c));
	c->ch = ch;
	c->my = mysql_init(NULL);
	if (c->my == NULL) {
		free(c);
		return;
	}
	unsigned tmo = (unsigned)MX_MAX(1, (ch->my->timeout_ms + 999) / 1000);
	mysql_options(c->my, MYSQL_OPT_NONBLOCK, 0);
	mysql_options(c->my, MYSQL_OPT_CONNECT_TIMEOUT, &tmo);
	mysql_options(c->my, MYSQL_OPT_READ_TIMEOUT, &tmo);
	mysql_options(c->my, MYSQL_OPT_WRITE_TIMEOUT, &tmo);
	mysql_options(c->my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	c->step = RCPT_MYSQL_CONNECT;
	c->next = ch->conns;
	ch->conns = c;
	ch->n_conns++;
	rcpt_mysql_run(c, 0);
}

/* Waiting lookups to idle connections; more connections when allowed. */
static void
rcpt_mysql_dispatch(struct rcpt_mysql_chan *ch)
{
	/* running a connection may free it (and others change): rescan */
	bool again = true;
	while (again && ch->wait_head != NULL) {
		again = false;
		for (struct rcpt_mysql_conn *c = ch->conns; c != NULL; c = c->next) {
			if (c->step == RCPT_MYSQL_IDLE && c->op == NULL) {
				rcpt_mysql_run(c, 0);
				again = true;
				break;
			}
		}
	}
	if (ch->wait_head == NULL || mx_clock_mono_ms() < ch->hdr.retry_at)
		return;
	unsigned starting = 0;
	for (struct rcpt_mysql_conn *c = ch->conns; c; c = c->next)
		starting += c->step == RCPT_MYSQL_CONNECT || c->step == RCPT_MYSQL_PREPARE;
	if (starting == 0 && ch->n_conns < ch->my->connections)
		rcpt_mysql_conn_new(ch);
}

static void
rcpt_mysql_start(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rcpt_mysql_dispatch(arg);
}

static void
rcpt_mysql_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct rcpt_mysql_op *op = arg;
	struct rcpt_mysql_chan *ch = op->ch;
	(void)fd;
	(void)what;
	char detail[64];
	snprintf(detail, sizeof(detail), "%lld ms", ch->my->timeout_ms);
	rcpt_chan_warn(&ch->hdr, "no answer within ", detail);
	if (op->conn != NULL) {
		struct rcpt_mysql_conn *c = op->conn;
		c->op = NULL;
		rcpt_mysql_conn_free(c); /* a statement cannot be abandoned half way */
	} else {
		struct rcpt_mysql_op **pp = &ch->wait_head, *prev = NULL;
		while (*pp != NULL && *pp != op) {
			prev = *pp;
			pp = &(*pp)->next;
		}
		if (*pp != NULL) {
			*pp = op->next;
			if (ch->wait_tail == op)
				ch->wait_tail = prev;
		}
	}
	rcpt_mysql_answer(op, MX_TEMPFAIL);
	rcpt_mysql_dispatch(ch);
}

static bool
rcpt_mysql_busy(struct rcpt_chan *c)
{
	struct rcpt_mysql_chan *ch = (struct rcpt_mysql_chan *)c;
	return ch->n_ops > 0;
}

static void
rcpt_mysql_chan_free(struct rcpt_chan *c)
{
	struct rcpt_mysql_chan *ch = (struct rcpt_mysql_chan *)c;
	while (ch->conns != NULL) {
		struct rcpt_mysql_conn *conn = ch->conns;
		if (conn->op != NULL) {
			event_free(conn->op->timer);
			free(conn->op);
		}
		rcpt_mysql_conn_free(conn);
	}
	while (ch->wait_head != NULL) {
		struct rcpt_mysql_op *op = ch->wait_head;
		ch->wait_head = op->next;
		event_free(op->timer);
		free(op);
	}
	event_free(ch->start);
	rcpt_mysql_unref(ch->my);
	free(ch);
}

static const struct rcpt_chan_type rcpt_mysql_chan_type = {
	"mysql", sizeof(struct rcpt_mysql_chan), rcpt_mysql_busy, rcpt_mysql_chan_free};

static struct rcpt_mysql_chan *
rcpt_mysql_chan_get(struct rcpt_mysql *m, struct event_base *base)
{
	bool fresh;
	struct rcpt_mysql_chan *ch = (struct rcpt_mysql_chan *)rcpt_chan_get(
	    base, &rcpt_mysql_chan_type, m->ident, m->where, &fresh);
	if (!fresh)
		return ch;
	atomic_fetch_add(&m->refs, 1);
	ch->my = m;
	ch->base = base;
	ch->start = event_new(base, -1, 0, rcpt_mysql_start, ch);
	return ch;
}

static enum mx_lookup
rcpt_mysql_lookup(void *be, struct event_base *base, const char *key, rcpt_done_cb cb, void *arg)
{
	struct rcpt_mysql *m = be;
	struct rcpt_mysql_chan *ch = rcpt_mysql_chan_get(m, base);
	if (rcpt_chan_refuse(&ch->hdr, ch->n_conns == 0, ch->n_ops, RCPT_MYSQL_OPS_MAX))
		return MX_TEMPFAIL;
	size_t klen = strlen(key) + 1;
	struct rcpt_mysql_op *op = xcalloc(1, sizeof(*op) + klen);
	memcpy(op->key, key, klen);
	op->ch = ch;
	op->cb = cb;
	op->arg = arg;
	op->timer = rcpt_timer_start(base, m->timeout_ms, rcpt_mysql_timeout, op);
	if (ch->wait_tail)
		ch->wait_tail->next = op;
	else
		ch->wait_head = op;
	ch->wait_tail = op;
	ch->n_ops++;
	/* from the loop: a connection that fails at once answers lookups */
	event_active(ch->start, EV_READ, 0);
	return MX_PENDING;
}

const struct rcpt_backend_ops rcpt_mysql_ops = {
	.name = "mysql",
	.async = true,
	.lookup = rcpt_mysql_lookup,
	.free = rcpt_mysql_free,
};
