/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	rcpt_ldap - recipients from an LDAP directory (OpenLDAP, Active Directory)
 * DESCRIPTION
 *	One connection per worker thread (a channel), shared by every session
 *	of that worker: searches are multiplexed on it by message id.  A
 *	search is sent with ldap_search_ext() and its answer collected with
 *	ldap_result() polled with a zero timeout when the connection's socket
 *	(LDAP_OPT_DESC, made non-blocking) is readable, so a slow directory
 *	delays only the sessions waiting for it.
 *	Connecting (TCP, StartTLS or ldaps://, simple bind or anonymous) uses
 *	libldap's synchronous calls, so it runs in a short-lived thread of its
 *	own that hands the bound connection to the worker (event_active()).
 *	URIs are tried in order (failover: the first that connects, secures
 *	and binds wins); when none does, lookups answer TEMPFAIL at once for a
 *	back-off (RCPT_BACKOFF_MIN_MS doubling to RCPT_BACKOFF_MAX_MS) and the
 *	next lookup after it tries again.  A lost connection is re-made and
 *	the searches in flight are sent again; each lookup still has its own
 *	deadline (recipients.timeout) after which it answers TEMPFAIL.
 *	Filter values are escaped (ldap_escape.c); the filter asks for no
 *	attributes ("1.1") and one entry.  An entry means FOUND; success, or
 *	the size limit without an entry, NOTFOUND; anything else (including
 *	noSuchObject: a wrong base must not turn into "user unknown") TEMPFAIL.
 *	The bind password is never logged.
 * LIMITS
 *	RCPT_LDAP_OPS_MAX lookups waiting or in flight per worker; three
 *	timeouts in a row drop the connection (the server hangs).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ldap.h>

#include "rcpt_dl.h"

/* libldap is loaded when a configuration names it (rcpt_dl.c) */
#define RCPT_LDAP_SYMS(X) \
	X(ber_bvdup) X(ber_bvfree) X(ber_memfree) X(ber_pvt_opt_on) X(ldap_abandon_ext) \
	X(ldap_control_find) X(ldap_control_free) X(ldap_controls_free) X(ldap_count_references) \
	X(ldap_create_page_control) X(ldap_err2string) X(ldap_first_entry) \
	X(ldap_free_urldesc) X(ldap_get_option) X(ldap_get_values_len) X(ldap_initialize) \
	X(ldap_memfree) X(ldap_msgfree) X(ldap_msgid) X(ldap_next_entry) \
	X(ldap_parse_pageresponse_control) X(ldap_parse_result) X(ldap_result) \
	X(ldap_sasl_bind_s) X(ldap_search_ext) X(ldap_search_ext_s) X(ldap_set_option) \
	X(ldap_start_tls_s) X(ldap_unbind_ext) X(ldap_unbind_ext_s) X(ldap_url_parse) \
	X(ldap_value_free_len)
RCPT_DL_DECLARE(RCPT_LDAP_SYMS)
static const char *const rcpt_dl_sonames[] = {MX_LDAP_SONAME, "libldap.so.2", "libldap-2.5.so.0", "libldap.so", NULL};
static struct rcpt_dl rcpt_dl_lib = RCPT_DL_INIT("LDAP", "libldap-2.5-0", rcpt_dl_sonames);
#define ber_bvdup (*dl_ber_bvdup)
#define ber_bvfree (*dl_ber_bvfree)
#define ber_memfree (*dl_ber_memfree)
#define ber_pvt_opt_on (*dl_ber_pvt_opt_on)
#define ldap_abandon_ext (*dl_ldap_abandon_ext)
#define ldap_control_find (*dl_ldap_control_find)
#define ldap_control_free (*dl_ldap_control_free)
#define ldap_controls_free (*dl_ldap_controls_free)
#define ldap_count_references (*dl_ldap_count_references)
#define ldap_create_page_control (*dl_ldap_create_page_control)
#define ldap_err2string (*dl_ldap_err2string)
#define ldap_first_entry (*dl_ldap_first_entry)
#define ldap_free_urldesc (*dl_ldap_free_urldesc)
#define ldap_get_option (*dl_ldap_get_option)
#define ldap_get_values_len (*dl_ldap_get_values_len)
#define ldap_initialize (*dl_ldap_initialize)
#define ldap_memfree (*dl_ldap_memfree)
#define ldap_msgfree (*dl_ldap_msgfree)
#define ldap_msgid (*dl_ldap_msgid)
#define ldap_next_entry (*dl_ldap_next_entry)
#define ldap_parse_pageresponse_control (*dl_ldap_parse_pageresponse_control)
#define ldap_parse_result (*dl_ldap_parse_result)
#define ldap_result (*dl_ldap_result)
#define ldap_sasl_bind_s (*dl_ldap_sasl_bind_s)
#define ldap_search_ext (*dl_ldap_search_ext)
#define ldap_search_ext_s (*dl_ldap_search_ext_s)
#define ldap_set_option (*dl_ldap_set_option)
#define ldap_start_tls_s (*dl_ldap_start_tls_s)
#define ldap_unbind_ext (*dl_ldap_unbind_ext)
#define ldap_unbind_ext_s (*dl_ldap_unbind_ext_s)
#define ldap_url_parse (*dl_ldap_url_parse)
#define ldap_value_free_len (*dl_ldap_value_free_len)

#include "clock.h"
#include "ldap_escape.h"
#include "log.h"
#include "rcpt_int.h"
#include "stats.h"
#include "str.h"
#include "xalloc.h"

#define RCPT_LDAP_OPS_MAX 10000
#define RCPT_LDAP_FILTER_MAX 2048
#define RCPT_LDAP_TIMEOUTS_MAX 3
#define RCPT_LDAP_PAGE 500

struct rcpt_ldap {
	_Atomic int refs;
	char **uris;
	size_t n_uris;
	char uri_list[512]; /* for logs */
	char *base;
	int scope;
	char *filter;
	bool filter_local; /* uses %u */
	char *bind_dn, *bind_pw;
	bool starttls, tls_verify;
	char *tls_ca;
	long long timeout_ms;
	char ident[RCPT_IDENT_LEN];
};

struct rcpt_ldap_chan;

struct rcpt_ldap_op {
	struct rcpt_ldap_op *next, *prev;
	struct rcpt_ldap_chan *ch;
	int msgid; /* -1: waiting for a connection */
	bool found;
	bool referred; /* a search continuation reference came (not followed) */
	struct event *timer;
	rcpt_done_cb cb;
	void *arg;
	char filter[];
};

/* A connect running in its own thread; shared by the thread and the
 * channel, freed by whichever lets go last. */
struct rcpt_ldap_job {
	_Atomic int refs;
	pthread_mutex_t mu;
	bool abandoned;         /* the channel went away */
	struct rcpt_ldap *l;    /* a reference */
	struct event *done;     /* the channel's; activated when finished */
	LDAP *ld;               /* result: bound connection, or NULL */
	const char *uri;        /* which one */
	char err[400];
};

enum rcpt_ldap_state { RCPT_LDAP_DOWN, RCPT_LDAP_CONNECTING, RCPT_LDAP_UP };

struct rcpt_ldap_chan {
	struct rcpt_chan hdr;
	struct rcpt_ldap *l; /* a reference */
	struct event_base *base;
	enum rcpt_ldap_state state;
	LDAP *ld;
	const char *uri;
	struct event *rd;
	struct event *done; /* the connect job finished */
	struct event *kick; /* the connection broke inside a lookup: handle it from the loop */
	struct rcpt_ldap_job *job;
	unsigned timeouts;
	struct rcpt_ldap_op *head, *tail;
	unsigned n_ops;
};

static pthread_once_t rcpt_ldap_once = PTHREAD_ONCE_INIT;

static void rcpt_ldap_chan_read(evutil_socket_t fd, short what, void *arg);
static void rcpt_ldap_chan_done(evutil_socket_t fd, short what, void *arg);
static void rcpt_ldap_chan_kick(evutil_socket_t fd, short what, void *arg);
static void rcpt_ldap_op_timeout(evutil_socket_t fd, short what, void *arg);
static void rcpt_ldap_connect_start(struct rcpt_ldap_chan *ch);

/* ---- the backend ------------------------------------------------------------ */

static void
rcpt_ldap_global_init(void)
{
	/* libldap reads its global defaults (ldap.conf) once; do it here, in
	 * one thread, before workers and connect threads race for it */
	int v;
	ldap_get_option(NULL, LDAP_OPT_PROTOCOL_VERSION, &v);
}

static struct rcpt_ldap *
rcpt_ldap_ref(struct rcpt_ldap *l)
{
	atomic_fetch_add(&l->refs, 1);
	return l;
}

static void
rcpt_ldap_unref(struct rcpt_ldap *l)
{
	if (l == NULL || atomic_fetch_sub(&l->refs, 1) != 1)
		return;
	for (size_t i = 0; i < l->n_uris; i++)
		free(l->uris[i]);
	free(l->uris);
	free(l->base);
	free(l->filter);
	free(l->bind_dn);
	if (l->bind_pw != NULL) {
		explicit_bzero(l->bind_pw, strlen(l->bind_pw));
		free(l->bind_pw);
	}
	free(l->tls_ca);
	free(l);
}

void *
rcpt_ldap_open(const struct mx_config *cfg, struct config_errors *errs, char *describe, size_t dlen)
{
	const char *dlwhy;
	if (rcpt_dl_load(&rcpt_dl_lib, &dlwhy) < 0) {
		config_error(errs, "%s: recipients.ldap: %s", cfg->path, dlwhy);
		return NULL;
	}
	pthread_once(&rcpt_ldap_once, rcpt_ldap_global_init);
	size_t before = errs->n;
	const char *why = ldap_escape_check(cfg->ldap_filter);
	if (why != NULL)
		config_error(errs, "%s: recipients.ldap.filter \"%s\" %s", cfg->path, cfg->ldap_filter, why);
	for (size_t i = 0; i < cfg->n_ldap_uris; i++) {
		LDAPURLDesc *lud = NULL;
		if (ldap_url_parse(cfg->ldap_uris[i], &lud) != LDAP_URL_SUCCESS)
			config_error(errs, "%s: recipients.ldap.uris: \"%s\" is not an LDAP URI", cfg->path,
			             cfg->ldap_uris[i]);
		else
			ldap_free_urldesc(lud);
	}
	if (cfg->ldap_tls_ca != NULL && access(cfg->ldap_tls_ca, R_OK) != 0)
		config_error(errs, "%s: recipients.ldap.tls_ca \"%s\": %s", cfg->path, cfg->ldap_tls_ca,
		             strerror(errno));
	if (cfg->n_ldap_uris == 0 && errs->n == before)
		config_error(errs, "%s: recipients.ldap needs uris", cfg->path);
	if (errs->n != before)
		return NULL;
	struct rcpt_ldap *l = xcalloc(1, sizeof(*l));
	atomic_init(&l->refs, 1);
	l->uris = xcalloc(cfg->n_ldap_uris, sizeof(char *));
	size_t o = 0;
	for (size_t i = 0; i < cfg->n_ldap_uris; i++) {
		l->uris[i] = xstrdup(cfg->ldap_uris[i]);
		if (o < sizeof(l->uri_list))
			o += (size_t)snprintf(l->uri_list + o, sizeof(l->uri_list) - o, "%s%s", i ? "," : "",
			                      l->uris[i]);
	}
	l->n_uris = cfg->n_ldap_uris;
	l->base = xstrdup(cfg->ldap_base ? cfg->ldap_base : "");
	l->scope = strcmp(cfg->ldap_scope, "base") == 0  ? LDAP_SCOPE_BASE
	           : strcmp(cfg->ldap_scope, "one") == 0 ? LDAP_SCOPE_ONELEVEL
	                                                 : LDAP_SCOPE_SUBTREE;
	l->filter = xstrdup(cfg->ldap_filter);
	l->filter_local = ldap_escape_uses_local(l->filter);
	l->bind_dn = cfg->ldap_bind_dn ? xstrdup(cfg->ldap_bind_dn) : NULL;
	l->bind_pw = cfg->ldap_bind_password ? xstrdup(cfg->ldap_bind_password) : NULL;
	l->starttls = cfg->ldap_starttls;
	l->tls_verify = cfg->ldap_tls_verify;
	l->tls_ca = cfg->ldap_tls_ca ? xstrdup(cfg->ldap_tls_ca) : NULL;
	l->timeout_ms = cfg->rcpt_timeout;
	char tmo[32];
	snprintf(tmo, sizeof(tmo), "%lld", l->timeout_ms);
	const char *parts[] = {l->uri_list, l->base, cfg->ldap_scope, l->filter, l->bind_dn, l->bind_pw,
	                       l->starttls ? "tls" : "", l->tls_verify ? "verify" : "", l->tls_ca, tmo};
	rcpt_ident(l->ident, "ldap", parts, MX_ARRAY_LEN(parts));
	snprintf(describe, dlen, "ldap %s base=\"%s\" filter=\"%s\" bind=%s%s", l->uri_list, l->base,
	         l->filter, l->bind_dn ? l->bind_dn : "anonymous", l->starttls ? " starttls" : "");
	return l;
}

static void
rcpt_ldap_free(void *be)
{
	rcpt_ldap_unref(be);
}

const char *
rcpt_ldap_uri_list(const struct rcpt_ldap *l)
{
	return l->uri_list;
}

/* ---- connecting (blocking; in a connect thread or the replica thread) ------- */

static void
rcpt_ldap_diag(LDAP *ld, int rc, const char *uri, const char *what, char *err, size_t errlen)
{
	char *diag = NULL;
	ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &diag);
	bool show = diag != NULL && *diag && strcmp(diag, "(unknown error code)") != 0;
	/* raw: whoever logs err escapes it */
	snprintf(err, errlen, "%s: %s: %s%s%.200s", uri, what, ldap_err2string(rc), show ? ": " : "",
	         show ? diag : "");
	ldap_memfree(diag);
}

/* Connects to the first URI that works; NULL with err. */
static LDAP *
rcpt_ldap_connect(const struct rcpt_ldap *l, const char **used, char *err, size_t errlen)
{
	err[0] = '\0';
	for (size_t i = 0; i < l->n_uris; i++) {
		const char *uri = l->uris[i];
		LDAP *ld = NULL;
		int rc = ldap_initialize(&ld, uri);
		if (rc != LDAP_SUCCESS) {
			snprintf(err, errlen, "%s: %s", uri, ldap_err2string(rc));
			continue;
		}
		int v3 = LDAP_VERSION3;
		ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
		ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
		ldap_set_option(ld, LDAP_OPT_RESTART, LDAP_OPT_ON);
		struct timeval tv = rcpt_tv(l->timeout_ms);
		ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
		ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
		int req = l->tls_verify ? LDAP_OPT_X_TLS_DEMAND : LDAP_OPT_X_TLS_NEVER;
		ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &req);
		if (l->tls_ca != NULL)
			ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, l->tls_ca);
		int zero = 0;
		ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
		if (l->starttls && strncmp(uri, "ldap://", 7) == 0) {
			rc = ldap_start_tls_s(ld, NULL, NULL);
			if (rc != LDAP_SUCCESS) {
				rcpt_ldap_diag(ld, rc, uri, "StartTLS", err, errlen);
				ldap_unbind_ext_s(ld, NULL, NULL);
				continue;
			}
		}
		struct berval cred = {l->bind_pw ? strlen(l->bind_pw) : 0, l->bind_pw ? l->bind_pw : ""};
		rc = ldap_sasl_bind_s(ld, l->bind_dn ? l->bind_dn : "", LDAP_SASL_SIMPLE, &cred, NULL,
		                      NULL, NULL);
		if (rc != LDAP_SUCCESS) {
			rcpt_ldap_diag(ld, rc, uri, l->bind_dn ? "bind" : "anonymous bind", err, errlen);
			ldap_unbind_ext_s(ld, NULL, NULL);
			continue;
		}
		*used = uri;
		return ld;
	}
	return NULL;
}

static void
rcpt_ldap_job_unref(struct rcpt_ldap_job *j)
{
	if (atomic_fetch_sub(&j->refs, 1) != 1)
		return;
	if (j->ld != NULL)
		ldap_unbind_ext_s(j->ld, NULL, NULL);
	rcpt_ldap_unref(j->l);
	pthread_mutex_destroy(&j->mu);
	free(j);
}

static void *
rcpt_ldap_job_main(void *arg)
{
	struct rcpt_ldap_job *j = arg;
	const char *uri = NULL;
	char err[sizeof(j->err)];
	LDAP *ld = rcpt_ldap_connect(j->l, &uri, err, sizeof(err));
	pthread_mutex_lock(&j->mu);
	j->ld = ld;
	j->uri = uri;
	memcpy(j->err, err, sizeof(err));
	if (!j->abandoned)
		event_active(j->done, EV_READ, 0);
	pthread_mutex_unlock(&j->mu);
	rcpt_ldap_job_unref(j);
	return NULL;
}

/* ---- the channel: one connection per worker ---------------------------------- */

static void
rcpt_ldap_op_unlink(struct rcpt_ldap_chan *ch, struct rcpt_ldap_op *op)
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

/* Unlinks op, frees it and delivers r. */
static void
rcpt_ldap_op_finish(struct rcpt_ldap_op *op, enum mx_lookup r)
{
	struct rcpt_ldap_chan *ch = op->ch;
	rcpt_ldap_op_unlink(ch, op);
	rcpt_done_cb cb = op->cb;
	void *arg = op->arg;
	event_free(op->timer);
	free(op);
	if (r == MX_TEMPFAIL)
		stats_inc(STAT_RCPT_DIRECTORY_FAIL);
	cb(r, arg);
}

/* Sends op on the live connection; -1 when the connection is broken. */
static int
rcpt_ldap_send(struct rcpt_ldap_chan *ch, struct rcpt_ldap_op *op)
{
	static char *no_attrs[] = {LDAP_NO_ATTRS, NULL};
	int msgid = -1;
	int rc = ldap_search_ext(ch->ld, ch->l->base, ch->l->scope, op->filter, no_attrs, 0, NULL, NULL,
	                         NULL, 1, &msgid);
	if (rc != LDAP_SUCCESS) {
		op->msgid = -1;
		return -1;
	}
	op->msgid = msgid;
	op->found = false;
	stats_inc(STAT_RCPT_DIRECTORY_QUERY);
	return 0;
}

/* Drops the connection; searches in flight wait to be sent again. */
static void
rcpt_ldap_drop(struct rcpt_ldap_chan *ch)
{
	if (ch->rd != NULL) {
		event_free(ch->rd);
		ch->rd = NULL;
	}
	if (ch->ld != NULL) {
		ldap_unbind_ext(ch->ld, NULL, NULL);
		ch->ld = NULL;
	}
	for (struct rcpt_ldap_op *op = ch->head; op; op = op->next)
		op->msgid = -1;
	ch->state = RCPT_LDAP_DOWN;
	ch->timeouts = 0;
}

/* Lost the connection: reconnect now, resending what was in flight. */
static void
rcpt_ldap_lost(struct rcpt_ldap_chan *ch, const char *why)
{
	rcpt_chan_warn(&ch->hdr, "connection lost: ", why);
	rcpt_ldap_drop(ch);
	if (ch->head != NULL)
		rcpt_ldap_connect_start(ch);
}

static void
rcpt_ldap_connect_start(struct rcpt_ldap_chan *ch)
{
	struct rcpt_ldap_job *j = xcalloc(1, sizeof(*j));
	atomic_init(&j->refs, 2);
	pthread_mutex_init(&j->mu, NULL);
	j->l = rcpt_ldap_ref(ch->l);
	j->done = ch->done;
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, rcpt_ldap_job_main, j) != 0) {
		pthread_attr_destroy(&attr);
		snprintf(j->err, sizeof(j->err), "cannot start a thread: %s", strerror(errno));
		atomic_store(&j->refs, 1);
		ch->job = j;
		ch->state = RCPT_LDAP_CONNECTING;
		event_active(ch->done, EV_READ, 0);
		return;
	}
	pthread_attr_destroy(&attr);
	ch->job = j;
	ch->state = RCPT_LDAP_CONNECTING;
}

/* The connect job finished (in the worker's loop). */
static void
rcpt_ldap_chan_done(evutil_socket_t fd, short what, void *arg)
{
	struct rcpt_ldap_chan *ch = arg;
	(void)fd;
	(void)what;
	struct rcpt_ldap_job *j = ch->job;
	if (j == NULL)
		return;
	ch->job = NULL;
	pthread_mutex_lock(&j->mu);
	LDAP *ld = j->ld;
	j->ld = NULL;
	const char *uri = j->uri;
	char err[sizeof(j->err)];
	memcpy(err, j->err, sizeof(err));
	pthread_mutex_unlock(&j->mu);
	rcpt_ldap_job_unref(j);
	int sd = -1;
	if (ld != NULL && (ldap_get_option(ld, LDAP_OPT_DESC, &sd) != LDAP_OPT_SUCCESS || sd < 0)) {
		ldap_unbind_ext(ld, NULL, NULL);
		ld = NULL;
		snprintf(err, sizeof(err), "%s: connected, but libldap has no socket for it", uri);
	}
	if (ld == NULL) {
		ch->state = RCPT_LDAP_DOWN;
		rcpt_chan_backoff(&ch->hdr);
		rcpt_chan_warn(&ch->hdr, "cannot connect (recipients get 451 until it is back): ", err);
		while (ch->head != NULL)
			rcpt_ldap_op_finish(ch->head, MX_TEMPFAIL);
		return;
	}
	evutil_make_socket_nonblocking(sd);
	ch->ld = ld;
	ch->uri = uri;
	ch->state = RCPT_LDAP_UP;
	rcpt_chan_up(&ch->hdr);
	ch->timeouts = 0;
	ch->rd = event_new(ch->base, sd, EV_READ | EV_PERSIST, rcpt_ldap_chan_read, ch);
	event_add(ch->rd, NULL);
	log_info("ldap: connected to %s%s", uri, ch->l->starttls && strncmp(uri, "ldap://", 7) == 0
	                                           ? " (StartTLS)" : "");
	for (struct rcpt_ldap_op *op = ch->head; op; op = op->next) {
		if (op->msgid >= 0)
			continue;
		if (rcpt_ldap_send(ch, op) < 0) {
			rcpt_ldap_lost(ch, "sending a search failed");
			return;
		}
	}
}

static void
rcpt_ldap_chan_kick(evutil_socket_t fd, short what, void *arg)
{
	struct rcpt_ldap_chan *ch = arg;
	(void)fd;
	(void)what;
	if (ch->state == RCPT_LDAP_UP)
		rcpt_ldap_lost(ch, "sending a search failed");
}

static struct rcpt_ldap_op *
rcpt_ldap_op_find(struct rcpt_ldap_chan *ch, int msgid)
{
	for (struct rcpt_ldap_op *op = ch->head; op; op = op->next)
		if (op->msgid == msgid)
			return op;
	return NULL;
}

/* The answer to one search. */
static enum mx_lookup
rcpt_ldap_verdict(struct rcpt_ldap_chan *ch, struct rcpt_ldap_op *op, LDAPMessage *msg)
{
	int rc = LDAP_OTHER;
	char *text = NULL;
	if (ldap_parse_result(ch->ld, msg, &rc, NULL, &text, NULL, NULL, 0) != LDAP_SUCCESS)
		rc = LDAP_OTHER;
	enum mx_lookup r;
	if (op->found)
		r = MX_FOUND;
	else if (op->referred) {
		/* part of the tree is on another server (Active Directory's
		 * child domains, an OpenLDAP referral object): the entry may
		 * be there, so no "user unknown" (it used to be 550, cached) */
		r = MX_TEMPFAIL;
		rc = LDAP_REFERRAL;
	} else if (rc == LDAP_SUCCESS || rc == LDAP_SIZELIMIT_EXCEEDED)
		r = MX_NOTFOUND;
	else
		r = MX_TEMPFAIL;
	if (r == MX_TEMPFAIL) {
		char detail[300];
		bool show = text != NULL && *text;
		snprintf(detail, sizeof(detail), "%s%s%.200s", ldap_err2string(rc), show ? ": " : "",
		         show ? text : "");
		rcpt_chan_warn(&ch->hdr, "search failed: ", detail);
	}
	ldap_memfree(text);
	return r;
}

static void
rcpt_ldap_chan_read(evutil_socket_t fd, short what, void *arg)
{
	struct rcpt_ldap_chan *ch = arg;
	(void)fd;
	(void)what;
	while (ch->state == RCPT_LDAP_UP) {
		LDAPMessage *msg = NULL;
		struct timeval zero = {0, 0};
		int t = ldap_result(ch->ld, LDAP_RES_ANY, LDAP_MSG_ONE, &zero, &msg);
		if (t == 0)
			return;
		if (t < 0) {
			int err = LDAP_SERVER_DOWN;
			ldap_get_option(ch->ld, LDAP_OPT_RESULT_CODE, &err);
			if (msg)
				ldap_msgfree(msg);
			rcpt_ldap_lost(ch, ldap_err2string(err));
			return;
		}
		struct rcpt_ldap_op *op = rcpt_ldap_op_find(ch, ldap_msgid(msg));
		if (op != NULL && t == LDAP_RES_SEARCH_ENTRY) {
			op->found = true;
		} else if (op != NULL && t == LDAP_RES_SEARCH_REFERENCE) {
			op->referred = true;
		} else if (op != NULL && t == LDAP_RES_SEARCH_RESULT) {
			ch->timeouts = 0;
			enum mx_lookup r = rcpt_ldap_verdict(ch, op, msg);
			ldap_msgfree(msg);
			rcpt_ldap_op_finish(op, r);
			continue;
		}
		ldap_msgfree(msg);
	}
}

static void
rcpt_ldap_op_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct rcpt_ldap_op *op = arg;
	struct rcpt_ldap_chan *ch = op->ch;
	(void)fd;
	(void)what;
	if (op->msgid >= 0 && ch->ld != NULL)
		ldap_abandon_ext(ch->ld, op->msgid, NULL, NULL);
	char detail[64];
	snprintf(detail, sizeof(detail), "%lld ms", ch->l->timeout_ms);
	rcpt_chan_warn(&ch->hdr, "no answer within ", detail);
	bool hung = op->msgid >= 0 && ++ch->timeouts >= RCPT_LDAP_TIMEOUTS_MAX;
	rcpt_ldap_op_finish(op, MX_TEMPFAIL);
	if (hung && ch->state == RCPT_LDAP_UP)
		rcpt_ldap_lost(ch, "the server stopped answering");
}

static bool
rcpt_ldap_chan_busy(struct rcpt_chan *c)
{
	struct rcpt_ldap_chan *ch = (struct rcpt_ldap_chan *)c;
	return ch->head != NULL || ch->state == RCPT_LDAP_CONNECTING;
}

static void
rcpt_ldap_chan_free(struct rcpt_chan *c)
{
	struct rcpt_ldap_chan *ch = (struct rcpt_ldap_chan *)c;
	if (ch->job != NULL) {
		pthread_mutex_lock(&ch->job->mu);
		ch->job->abandoned = true;
		pthread_mutex_unlock(&ch->job->mu);
		rcpt_ldap_job_unref(ch->job);
	}
	while (ch->head != NULL) {
		struct rcpt_ldap_op *op = ch->head;
		rcpt_ldap_op_unlink(ch, op);
		event_free(op->timer);
		free(op);
	}
	rcpt_ldap_drop(ch);
	event_free(ch->done);
	event_free(ch->kick);
	rcpt_ldap_unref(ch->l);
	free(ch);
}

static const struct rcpt_chan_type rcpt_ldap_chan_type = {
	"ldap", sizeof(struct rcpt_ldap_chan), rcpt_ldap_chan_busy, rcpt_ldap_chan_free};

static struct rcpt_ldap_chan *
rcpt_ldap_chan_get(struct rcpt_ldap *l, struct event_base *base)
{
	bool fresh;
	struct rcpt_ldap_chan *ch = (struct rcpt_ldap_chan *)rcpt_chan_get(
	    base, &rcpt_ldap_chan_type, l->ident, l->uri_list, &fresh);
	if (!fresh)
		return ch;
	ch->l = rcpt_ldap_ref(l);
	ch->base = base;
	ch->done = event_new(base, -1, 0, rcpt_ldap_chan_done, ch);
	ch->kick = event_new(base, -1, 0, rcpt_ldap_chan_kick, ch);
	return ch;
}

static enum mx_lookup
rcpt_ldap_lookup(void *be, struct event_base *base, const char *key, rcpt_done_cb cb, void *arg)
{
	struct rcpt_ldap *l = be;
	char filter[RCPT_LDAP_FILTER_MAX];
	enum ldap_escape_rc er = ldap_escape_expand(l->filter, key, filter, sizeof(filter));
	if (er == LDAP_ESCAPE_SUPPRESS)
		return MX_NOTFOUND;
	if (er != LDAP_ESCAPE_OK)
		return MX_TEMPFAIL; /* cannot happen for keys of valid addresses */
	struct rcpt_ldap_chan *ch = rcpt_ldap_chan_get(l, base);
	if (rcpt_chan_refuse(&ch->hdr, ch->state == RCPT_LDAP_DOWN, ch->n_ops, RCPT_LDAP_OPS_MAX))
		return MX_TEMPFAIL;
	size_t flen = strlen(filter) + 1;
	struct rcpt_ldap_op *op = xcalloc(1, sizeof(*op) + flen);
	memcpy(op->filter, filter, flen);
	op->ch = ch;
	op->msgid = -1;
	op->cb = cb;
	op->arg = arg;
	op->timer = rcpt_timer_start(base, l->timeout_ms, rcpt_ldap_op_timeout, op);
	op->prev = ch->tail;
	if (ch->tail)
		ch->tail->next = op;
	else
		ch->head = op;
	ch->tail = op;
	ch->n_ops++;
	if (ch->state == RCPT_LDAP_UP) {
		if (rcpt_ldap_send(ch, op) < 0)
			event_active(ch->kick, EV_READ, 0); /* reconnect from the loop */
	} else if (ch->state == RCPT_LDAP_DOWN) {
		rcpt_ldap_connect_start(ch);
	}
	return MX_PENDING;
}

const struct rcpt_backend_ops rcpt_ldap_ops = {
	.name = "ldap",
	.async = true,
	.lookup = rcpt_ldap_lookup,
	.free = rcpt_ldap_free,
};

/* ---- the replica's full copy (blocking) ------------------------------------- */

int
rcpt_ldap_fetch_all(struct rcpt_ldap *l, const char *filter, char *const *attrs,
                    const atomic_bool *stop, rcpt_ldap_value_cb cb, void *arg, char *err,
                    size_t errlen)
{
	const char *uri = NULL;
	LDAP *ld = rcpt_ldap_connect(l, &uri, err, errlen);
	if (ld == NULL)
		return -1;
	struct berval *cookie = NULL;
	int ret = 0;
	long long page_ms = MX_MAX(l->timeout_ms, 30000);
	do {
		LDAPControl *page = NULL;
		int rc = ldap_create_page_control(ld, RCPT_LDAP_PAGE, cookie, 0, &page);
		if (rc != LDAP_SUCCESS) {
			rcpt_ldap_diag(ld, rc, uri, "paged results control", err, errlen);
			ret = -1;
			break;
		}
		LDAPControl *ctrls[2] = {page, NULL};
		LDAPMessage *res = NULL;
		struct timeval tv = rcpt_tv(page_ms);
		rc = ldap_search_ext_s(ld, l->base, l->scope, filter, (char **)attrs, 0, ctrls, NULL, &tv,
		                       0, &res);
		ldap_control_free(page);
		if (rc != LDAP_SUCCESS) {
			rcpt_ldap_diag(ld, rc, uri, "search", err, errlen);
			ldap_msgfree(res);
			ret = -1;
			break;
		}
		for (LDAPMessage *e = ldap_first_entry(ld, res); e && ret == 0;
		     e = ldap_next_entry(ld, e)) {
			for (size_t i = 0; attrs[i] != NULL && ret == 0; i++) {
				struct berval **vals = ldap_get_values_len(ld, e, attrs[i]);
				for (size_t k = 0; vals != NULL && vals[k] != NULL && ret == 0; k++)
					ret = cb(vals[k]->bv_val, vals[k]->bv_len, arg);
				ldap_value_free_len(vals);
			}
		}
		if (ret != 0)
			snprintf(err, errlen, "%s: search: stopped after a value", uri);
		int refs = ldap_count_references(ld, res);
		if (refs > 0 && ret == 0) {
			/* a copy without the referred part would answer "user
			 * unknown" for its mailboxes: no copy at all */
			snprintf(err, errlen, "%s: search: %d continuation reference%s to other servers "
			         "(referrals are not followed): the copy would be incomplete; search a base "
			         "that holds every mailbox (Active Directory: the global catalog, port 3268)",
			         uri, refs, refs == 1 ? "" : "s");
			ret = -1;
		}
		LDAPControl **sctrls = NULL;
		int code = LDAP_SUCCESS;
		/* a result that cannot be parsed is a failure, not the last page */
		int prc = ldap_parse_result(ld, res, &code, NULL, NULL, NULL, &sctrls, 1);
		if (prc != LDAP_SUCCESS)
			code = prc;
		ber_bvfree(cookie);
		cookie = NULL;
		if (code != LDAP_SUCCESS && ret == 0) {
			rcpt_ldap_diag(ld, code, uri, "search result", err, errlen);
			ret = -1;
		}
		LDAPControl *pr = sctrls ? ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, sctrls, NULL) : NULL;
		if (pr != NULL && ret == 0) {
			struct berval next = {0, NULL};
			ber_int_t count = 0;
			if (ldap_parse_pageresponse_control(ld, pr, &count, &next) == LDAP_SUCCESS &&
			    next.bv_len > 0)
				cookie = ber_bvdup(&next);
			ber_memfree(next.bv_val);
		}
		ldap_controls_free(sctrls);
		if (ret == 0 && cookie != NULL && atomic_load(stop)) {
			snprintf(err, errlen, "stopped");
			ret = -1;
		}
	} while (ret == 0 && cookie != NULL);
	ber_bvfree(cookie);
	ldap_unbind_ext_s(ld, NULL, NULL);
	return ret;
}
