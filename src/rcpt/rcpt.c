/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	rcpt - recipient lookups: candidate keys, chaining, cache, replica
 * DESCRIPTION
 *	The candidate keys are tried one after another; for a synchronous
 *	backend (the file) the whole chain runs inside rcpt_lookup().  When a
 *	backend answers later, the chain continues from its callback with a
 *	heap-allocated query.
 *	For a directory: the replica answers when it holds a complete copy;
 *	else the cache; else the directory, whose final FOUND/NOTFOUND is
 *	cached (TEMPFAIL never is).
 */
#include "rcpt.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rcpt_int.h"
#include "stats.h"
#include "str.h"
#include "xalloc.h"

#define RCPT_KEYS 3

struct rcpt_map {
	const struct rcpt_backend_ops *ops;
	void *be;
	struct store *store;          /* cache and replica; NULL: neither */
	uint32_t pos_ttl, neg_ttl;    /* seconds; 0: that side is not cached */
	struct rcpt_replica *replica; /* NULL: none */
	char delimiter[9];
	char describe[300];
};

struct rcpt_query {
	struct rcpt_query *prev, *next_q; /* rcpt_queries, while pending */
	struct rcpt_map *m;
	struct event_base *base;
	char keys[RCPT_KEYS][SMTP_PATH_MAX + 2];
	int nkeys, next;
	rcpt_done_cb cb;
	void *arg;
};

/* Queries waiting for a directory, of every worker: rcpt_worker_end()
 * frees a worker's once its directory connections dropped their ops. */
static pthread_mutex_t rcpt_queries_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rcpt_query *rcpt_queries;

static void
rcpt_query_link(struct rcpt_query *q)
{
	pthread_mutex_lock(&rcpt_queries_lock);
	q->prev = NULL;
	q->next_q = rcpt_queries;
	if (rcpt_queries)
		rcpt_queries->prev = q;
	rcpt_queries = q;
	pthread_mutex_unlock(&rcpt_queries_lock);
}

/* Takes q off the list; the caller holds rcpt_queries_lock. */
static void
rcpt_query_unlink_locked(struct rcpt_query *q)
{
	if (q->prev)
		q->prev->next_q = q->next_q;
	else
		rcpt_queries = q->next_q;
	if (q->next_q)
		q->next_q->prev = q->prev;
}

static void
rcpt_query_unlink(struct rcpt_query *q)
{
	pthread_mutex_lock(&rcpt_queries_lock);
	rcpt_query_unlink_locked(q);
	pthread_mutex_unlock(&rcpt_queries_lock);
}

void
rcpt_queries_drop(struct event_base *base)
{
	pthread_mutex_lock(&rcpt_queries_lock);
	struct rcpt_query *q = rcpt_queries, *next;
	for (; q != NULL; q = next) {
		next = q->next_q;
		if (q->base != base)
			continue;
		rcpt_query_unlink_locked(q);
		free(q);
	}
	pthread_mutex_unlock(&rcpt_queries_lock);
}

static uint32_t
rcpt_ttl_s(long long ms)
{
	if (ms <= 0)
		return 0;
	return ms < 1000 ? 1 : (uint32_t)(ms / 1000);
}

struct rcpt_map *
rcpt_map_build(const struct mx_config *cfg, struct store *store, struct config_errors *errs)
{
	struct rcpt_map *m = xcalloc(1, sizeof(*m));
	mx_strlcpy(m->delimiter, cfg->rcpt_delimiter ? cfg->rcpt_delimiter : "", sizeof(m->delimiter));
	const char *src = cfg->rcpt_source ? cfg->rcpt_source : "file";
	size_t before = errs->n;
	if (strcmp(src, "ldap") == 0) {
		m->ops = &rcpt_ldap_ops;
		m->be = rcpt_ldap_open(cfg, errs, m->describe, sizeof(m->describe));
	} else if (strcmp(src, "pgsql") == 0) {
		m->ops = &rcpt_pgsql_ops;
		m->be = rcpt_pgsql_open(cfg, errs, m->describe, sizeof(m->describe));
	} else if (strcmp(src, "mysql") == 0) {
		m->ops = &rcpt_mysql_ops;
		m->be = rcpt_mysql_open(cfg, errs, m->describe, sizeof(m->describe));
	} else if (strcmp(src, "callout") == 0) {
		m->ops = &rcpt_callout_ops;
		m->be = rcpt_callout_open(cfg, errs, m->describe, sizeof(m->describe));
	} else if (cfg->rcpt_file != NULL) {
		m->ops = &rcpt_file_ops;
		m->be = rcpt_file_open(cfg->rcpt_file, cfg, errs, m->describe, sizeof(m->describe));
	}
	if (m->be == NULL) {
		if (errs->n == before)
			config_error(errs, "%s: 'recipients' names no source", cfg->path);
		free(m);
		return NULL;
	}
	if (m->ops->async && store != NULL) {
		m->store = store;
		m->pos_ttl = rcpt_ttl_s(cfg->rcpt_positive_ttl);
		m->neg_ttl = rcpt_ttl_s(cfg->rcpt_negative_ttl);
		if (m->ops == &rcpt_ldap_ops && cfg->ldap_replica)
			m->replica = rcpt_replica_new(cfg, store, m->be);
	}
	size_t o = strlen(m->describe);
	if (m->replica != NULL && o < sizeof(m->describe))
		o += (size_t)snprintf(m->describe + o, sizeof(m->describe) - o, ", replica every %llds",
		                      cfg->ldap_replica_interval / 1000);
	if (m->ops->async && o < sizeof(m->describe))
		snprintf(m->describe + o, sizeof(m->describe) - o, ", cache %us/%us",
		         m->store ? m->pos_ttl : 0, m->store ? m->neg_ttl : 0);
	return m;
}

void
rcpt_map_free(struct rcpt_map *m)
{
	if (m == NULL)
		return;
	rcpt_replica_free(m->replica);
	m->ops->free(m->be);
	free(m);
}

const char *
rcpt_map_describe(const struct rcpt_map *m)
{
	return m->describe;
}

long long
rcpt_map_replica_sync(struct rcpt_map *m, const atomic_bool *stop)
{
	return m->replica != NULL ? rcpt_replica_sync(m->replica, stop) : -1;
}

/* Fills the candidate keys for a: full, without +extension, @domain. */
static int
rcpt_keys(const struct rcpt_map *m, const struct smtp_addr *a, char keys[RCPT_KEYS][SMTP_PATH_MAX + 2])
{
	int n = 0;
	char local[SMTP_LOCAL_MAX + 1];
	mx_strlcpy(local, a->local, sizeof(local));
	mx_str_lower(local);
	snprintf(keys[n++], SMTP_PATH_MAX + 2, "%s@%s", local, a->domain);
	if (m->delimiter[0] != '\0' && !a->quoted) {
		size_t cut = strcspn(local, m->delimiter);
		if (cut > 0 && local[cut] != '\0') {
			local[cut] = '\0';
			snprintf(keys[n++], SMTP_PATH_MAX + 2, "%s@%s", local, a->domain);
		}
	}
	snprintf(keys[n++], SMTP_PATH_MAX + 2, "@%s", a->domain);
	return n;
}

static void rcpt_query_step(enum mx_lookup r, void *arg);

/* Runs keys from q->next on; returns the final answer or MX_PENDING. */
static enum mx_lookup
rcpt_query_run(struct rcpt_query *q)
{
	while (q->next < q->nkeys) {
		const char *key = q->keys[q->next++];
		enum mx_lookup r = q->m->ops->lookup(q->m->be, q->base, key, rcpt_query_step, q);
		if (r == MX_PENDING)
			return MX_PENDING;
		if (r != MX_NOTFOUND)
			return r;
	}
	return MX_NOTFOUND;
}

/* A final directory answer: into the cache. */
static void
rcpt_query_done(struct rcpt_query *q, enum mx_lookup r)
{
	struct rcpt_map *m = q->m;
	if (m->store != NULL)
		rcpt_cache_put(q->base, m->store, q->keys[0], r, r == MX_FOUND ? m->pos_ttl : m->neg_ttl);
}

static void
rcpt_query_step(enum mx_lookup r, void *arg)
{
	struct rcpt_query *q = arg;
	if (r == MX_NOTFOUND)
		r = rcpt_query_run(q);
	if (r == MX_PENDING)
		return;
	rcpt_query_unlink(q);
	rcpt_query_done(q, r);
	q->cb(r, q->arg);
	free(q);
}

enum mx_lookup
rcpt_lookup(struct rcpt_map *m, struct event_base *base, const struct smtp_addr *a,
            rcpt_done_cb cb, void *arg)
{
	char keys[RCPT_KEYS][SMTP_PATH_MAX + 2];
	int n = rcpt_keys(m, a, keys);
	if (!m->ops->async) { /* the fast path: no allocation */
		for (int i = 0; i < n; i++) {
			enum mx_lookup r = m->ops->lookup(m->be, base, keys[i], NULL, NULL);
			if (r != MX_NOTFOUND)
				return r;
		}
		return MX_NOTFOUND;
	}
	if (m->replica != NULL) {
		enum mx_lookup r = rcpt_replica_lookup(m->replica, keys, n);
		if (r != MX_PENDING) {
			stats_inc(STAT_RCPT_REPLICA_ANSWER);
			return r;
		}
	}
	if (m->store != NULL && (m->pos_ttl || m->neg_ttl)) {
		enum mx_lookup r = rcpt_cache_get(m->store, keys[0]);
		if (r != MX_PENDING)
			return r;
	}
	struct rcpt_query *q = xmalloc(sizeof(*q));
	q->m = m;
	q->base = base;
	memcpy(q->keys, keys, sizeof(keys));
	q->nkeys = m->ops->whole_address ? 1 : n;
	q->next = 0;
	q->cb = cb;
	q->arg = arg;
	enum mx_lookup r = rcpt_query_run(q);
	if (r != MX_PENDING) {
		rcpt_query_done(q, r);
		free(q);
	} else {
		rcpt_query_link(q); /* answered from the loop, never before this returns */
	}
	return r;
}
