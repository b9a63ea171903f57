/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	rcpt_replica - a local copy of the directory's valid addresses
 * DESCRIPTION
 *	What Exchange's Edge Transport does with EdgeSync, for any LDAP
 *	server: a background thread copies every address the directory holds
 *	(recipients.ldap.replica: filter, attributes) into the store, and RCPT
 *	TO is answered from there, without a network round trip, and on while
 *	the directory is down.
 *	Store layout: "rr:ADDRESS" for each address (lowercase), "rs:replica"
 *	for the state: "IDENT WALLTIME COUNT", IDENT naming the directory
 *	settings the copy came from.  A copy of other settings (after a
 *	configuration change) is not used: lookups go to the directory until
 *	the first sync with the new settings completes.
 *	A sync is a full copy (paged search, RFC 2696), swapped in with one
 *	store transaction: additions and removals become visible together.
 *	A sync that fails keeps the old copy; so does one that returns no
 *	address at all (an ACL or filter mistake must not turn every recipient
 *	into "user unknown"), also when there is no copy of these settings yet
 *	(after a change of the replica filter): lookups then keep going to the
 *	directory.
 *	Values: "user@domain" as is; "smtp:user@domain" (Active Directory's
 *	proxyAddresses, any case) without its prefix; other prefixed values
 *	(x500:, sip:, ...) and values without '@' are skipped.
 *	RFC 4533 (syncrepl) is not used: the full copy works with every
 *	server, including Active Directory, which does not offer it.
 * LIMITS
 *	RCPT_REPLICA_MAX addresses; a failed sync is retried after 5 s,
 *	doubling up to the interval.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "rcpt_int.h"
#include "stats.h"
#include "str.h"
#include "strmap.h"
#include "xalloc.h"

#define RCPT_REPLICA_MAX 10000000
#define RCPT_REPLICA_META "rs:replica"
#define RCPT_REPLICA_PREFIX "rr:"
#define RCPT_REPLICA_RETRY_MS 5000

struct rcpt_replica {
	struct store *store;
	struct rcpt_ldap *l;
	char *filter;
	char **attrs; /* NULL-terminated */
	long long interval_ms;
	char ident[RCPT_IDENT_LEN];
	unsigned retry_ms;
	uint64_t retry_at; /* monotonic ms; after a failure */
};

struct rcpt_replica *
rcpt_replica_new(const struct mx_config *cfg, struct store *s, struct rcpt_ldap *l)
{
	struct rcpt_replica *r = xcalloc(1, sizeof(*r));
	r->store = s;
	r->l = l;
	r->filter = xstrdup(cfg->ldap_replica_filter);
	r->attrs = xcalloc(cfg->n_ldap_replica_attrs + 1, sizeof(char *));
	char attrlist[512] = "";
	size_t o = 0;
	for (size_t i = 0; i < cfg->n_ldap_replica_attrs; i++) {
		r->attrs[i] = xstrdup(cfg->ldap_replica_attrs[i]);
		if (o < sizeof(attrlist))
			o += (size_t)snprintf(attrlist + o, sizeof(attrlist) - o, "%s,", r->attrs[i]);
	}
	r->interval_ms = cfg->ldap_replica_interval;
	const char *parts[] = {rcpt_ldap_uri_list(l), cfg->ldap_base, cfg->ldap_scope, r->filter,
	                       attrlist};
	rcpt_ident(r->ident, "replica", parts, MX_ARRAY_LEN(parts));
	return r;
}

void
rcpt_replica_free(struct rcpt_replica *r)
{
	if (r == NULL)
		return;
	free(r->filter);
	for (size_t i = 0; r->attrs[i] != NULL; i++)
		free(r->attrs[i]);
	free(r->attrs);
	free(r);
}

/* Parses the state value: ident, time, count.  false when absent. */
static bool
rcpt_replica_meta(const void *val, size_t vlen, char ident[RCPT_IDENT_LEN], long long *when,
                  long long *count)
{
	char buf[128];
	if (vlen >= sizeof(buf))
		return false;
	memcpy(buf, val, vlen);
	buf[vlen] = '\0';
	char *sp = strchr(buf, ' ');
	if (sp == NULL || (size_t)(sp - buf) >= RCPT_IDENT_LEN)
		return false;
	memcpy(ident, buf, (size_t)(sp - buf));
	ident[sp - buf] = '\0';
	return sscanf(sp + 1, "%lld %lld", when, count) == 2;
}

enum mx_lookup
rcpt_replica_lookup(struct rcpt_replica *r, char keys[][SMTP_PATH_MAX + 2], int n)
{
	struct store_view *v = store_view_begin(r->store);
	if (v == NULL)
		return MX_PENDING;
	const void *val;
	size_t vlen;
	char ident[RCPT_IDENT_LEN];
	long long when, count;
	enum mx_lookup res = MX_PENDING;
	if (store_view_get(v, RCPT_REPLICA_META, strlen(RCPT_REPLICA_META), &val, &vlen) != MX_FOUND ||
	    !rcpt_replica_meta(val, vlen, ident, &when, &count) || strcmp(ident, r->ident) != 0)
		goto out;
	res = MX_NOTFOUND;
	for (int i = 0; i < n && res == MX_NOTFOUND; i++) {
		char k[STORE_KEY_MAX + 1];
		int kl = snprintf(k, sizeof(k), RCPT_REPLICA_PREFIX "%s", keys[i]);
		if (kl <= 0 || (size_t)kl >= sizeof(k))
			continue;
		res = store_view_get(v, k, (size_t)kl, &val, &vlen);
	}
out:
	store_view_end(v);
	return res;
}

struct rcpt_replica_collect {
	struct strmap *set;
	size_t skipped;
	bool full; /* stopped at RCPT_REPLICA_MAX */
};

/* One attribute value: an address, "smtp:address", or something else. */
static int
rcpt_replica_value(const char *value, size_t len, void *arg)
{
	struct rcpt_replica_collect *c = arg;
	const char *colon = memchr(value, ':', len);
	const char *at = memchr(value, '@', len);
	if (colon != NULL && (at == NULL || colon < at)) {
		if (!mx_str_caseprefix(value, len, "smtp:")) {
			c->skipped++;
			return 0;
		}
		len -= (size_t)(colon + 1 - value);
		value = colon + 1;
	}
	char addr[SMTP_PATH_MAX + 1];
	if (len == 0 || len > SMTP_PATH_MAX || memchr(value, '@', len) == NULL ||
	    memchr(value, '\0', len) != NULL) {
		c->skipped++;
		return 0;
	}
	memcpy(addr, value, len);
	addr[len] = '\0';
	mx_str_lower(addr);
	if (strmap_count(c->set) >= RCPT_REPLICA_MAX) {
		c->full = true;
		return -1;
	}
	strmap_put(c->set, addr, len, NULL);
	return 0;
}

struct rcpt_replica_old {
	struct strmap *set;  /* the new addresses */
	struct strmap *gone; /* old keys not in set */
	size_t kept;
};

static int
rcpt_replica_scan_old(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
	struct rcpt_replica_old *o = arg;
	size_t pl = strlen(RCPT_REPLICA_PREFIX);
	(void)val;
	(void)vlen;
	if (strmap_get(o->set, (const char *)key + pl, klen - pl, NULL)) {
		/* present already: no write needed */
		strmap_del(o->set, (const char *)key + pl, klen - pl);
		o->kept++;
	} else {
		strmap_put(o->gone, key, klen, NULL);
	}
	return 0;
}

struct rcpt_replica_apply {
	struct store_txn *t;
	int rc;
};

static int
rcpt_replica_put(const char *key, size_t keylen, void *val, void *arg)
{
	struct rcpt_replica_apply *a = arg;
	char k[STORE_KEY_MAX + 1];
	size_t pl = strlen(RCPT_REPLICA_PREFIX);
	(void)val;
	if (keylen + pl > STORE_KEY_MAX)
		return 0;
	memcpy(k, RCPT_REPLICA_PREFIX, pl);
	memcpy(k + pl, key, keylen);
	if (store_txn_put(a->t, k, pl + keylen, "", 0, 0) < 0) {
		a->rc = -1;
		return 1;
	}
	return 0;
}

static int
rcpt_replica_del(const char *key, size_t keylen, void *val, void *arg)
{
	struct rcpt_replica_apply *a = arg;
	(void)val;
	if (store_txn_del(a->t, key, keylen) < 0) {
		a->rc = -1;
		return 1;
	}
	return 0;
}

/* The state of the copy in the store; false when there is none of ours. */
static bool
rcpt_replica_state(struct rcpt_replica *r, long long *when, long long *count)
{
	void *val = NULL;
	size_t vlen = 0;
	char ident[RCPT_IDENT_LEN];
	bool ok = store_get(r->store, RCPT_REPLICA_META, strlen(RCPT_REPLICA_META), &val, &vlen) ==
	              MX_FOUND &&
	          rcpt_replica_meta(val, vlen, ident, when, count) && strcmp(ident, r->ident) == 0;
	free(val);
	return ok;
}

static long long
rcpt_replica_failed(struct rcpt_replica *r, const char *why)
{
	stats_inc(STAT_RCPT_REPLICA_SYNC_FAIL);
	r->retry_ms = r->retry_ms ? (unsigned)MX_MIN((long long)r->retry_ms * 2, r->interval_ms)
	                          : (unsigned)MX_MIN(RCPT_REPLICA_RETRY_MS, r->interval_ms);
	r->retry_at = mx_clock_mono_ms() + r->retry_ms;
	char esc[600];
	log_escape(esc, sizeof(esc), why, strlen(why)); /* the directory's own words */
	log_warn("ldap replica %s: sync failed: %s; the copy stays as it was; retry in %u ms",
	         rcpt_ldap_uri_list(r->l), esc, r->retry_ms);
	return r->retry_ms;
}

long long
rcpt_replica_sync(struct rcpt_replica *r, const atomic_bool *stop)
{
	long long when = 0, count = 0;
	bool have = rcpt_replica_state(r, &when, &count);
	long long now_ms = (long long)mx_clock_wall() * 1000;
	/* a stamp in the future (a clock that ran ahead, stepped back since)
	 * means due now: it used to hold syncs off for as long as the clock
	 * had been wrong */
	if (have && when * 1000 <= now_ms && now_ms - when * 1000 < r->interval_ms)
		return when * 1000 + r->interval_ms - now_ms;
	uint64_t mono = mx_clock_mono_ms();
	if (r->retry_at > mono)
		return (long long)(r->retry_at - mono);

	struct rcpt_replica_collect c = {strmap_new(), 0, false};
	char err[512];
	int rc = rcpt_ldap_fetch_all(r->l, r->filter, r->attrs, stop, rcpt_replica_value, &c, err,
	                             sizeof(err));
	if (rc < 0) {
		strmap_free(c.set);
		if (c.full)
			snprintf(err, sizeof(err), "more than %d addresses", RCPT_REPLICA_MAX);
		return rcpt_replica_failed(r, err);
	}
	size_t total = strmap_count(c.set);
	if (total == 0) {
		strmap_free(c.set);
		return rcpt_replica_failed(r, "the directory returned no address (filter or access "
		                              "rights?)");
	}
	struct store_txn *t = store_txn_begin(r->store);
	if (t == NULL) {
		strmap_free(c.set);
		return rcpt_replica_failed(r, "cannot write to the store");
	}
	struct rcpt_replica_old old = {c.set, strmap_new(), 0};
	struct rcpt_replica_apply a = {t, 0};
	if (store_txn_scan(t, RCPT_REPLICA_PREFIX, strlen(RCPT_REPLICA_PREFIX), rcpt_replica_scan_old,
	                   &old) < 0)
		a.rc = -1;
	size_t added = strmap_count(c.set), removed = strmap_count(old.gone);
	if (a.rc == 0)
		strmap_foreach(old.gone, rcpt_replica_del, &a);
	if (a.rc == 0)
		strmap_foreach(c.set, rcpt_replica_put, &a);
	char meta[128];
	int ml = snprintf(meta, sizeof(meta), "%s %lld %zu", r->ident, (long long)mx_clock_wall(), total);
	if (a.rc == 0)
		a.rc = store_txn_put(t, RCPT_REPLICA_META, strlen(RCPT_REPLICA_META), meta, (size_t)ml, 0);
	strmap_free(old.gone);
	strmap_free(c.set);
	if (a.rc < 0) {
		store_txn_abort(t);
		return rcpt_replica_failed(r, "cannot write to the store");
	}
	if (store_txn_commit(t) < 0)
		return rcpt_replica_failed(r, "cannot commit to the store");
	r->retry_ms = 0;
	r->retry_at = 0;
	stats_inc(STAT_RCPT_REPLICA_SYNC);
	log_info("ldap replica %s: synced %zu addresses (%zu added, %zu removed, %zu values skipped) "
	         "in %llu ms", rcpt_ldap_uri_list(r->l), total, added, removed, c.skipped,
	         (unsigned long long)(mx_clock_mono_ms() - mono));
	return r->interval_ms;
}
