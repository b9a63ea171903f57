/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	rcpt_int - what the recipient backends share inside rcpt/
 * DESCRIPTION
 *	Channels: a directory backend's connections on one worker's event
 *	base.  A channel is used only by the thread that runs its base, so it
 *	needs no locks.  Channels are found by the backend's identity (a hash
 *	of every setting that shapes a connection), so the map built by a
 *	reload reuses the connections of the old one when nothing changed.
 *	A channel unused for RCPT_CHAN_IDLE_MS is closed; rcpt_worker_end()
 *	closes the rest.
 *	The cache: answers under "rc:ADDRESS" ("F" or "N"), written behind
 *	(batched in one store transaction every RCPT_CACHE_FLUSH_MS per
 *	worker: a store commit is an fsync).
 */
#ifndef MX_RCPT_INT_H
#define MX_RCPT_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

#include <event2/event.h>

#include "log.h"
#include "rcpt.h"
#include "store.h"

#define RCPT_CHAN_IDLE_MS (5 * 60 * 1000)
#define RCPT_CACHE_FLUSH_MS 50
#define RCPT_IDENT_LEN 40
#define RCPT_BACKOFF_MIN_MS 250
#define RCPT_BACKOFF_MAX_MS 10000

struct rcpt_chan {
	struct rcpt_chan *next;
	char ident[RCPT_IDENT_LEN];
	uint64_t used_ms;
	/* true while lookups are in flight or a connection is being made */
	bool (*busy)(struct rcpt_chan *c);
	/* closes and frees; pending lookups are dropped without callback */
	void (*free)(struct rcpt_chan *c);
	/* for rcpt_chan_warn(): "pgsql" and "127.0.0.1:5432/mail" (borrowed
	 * from the backend, which the channel holds a reference to) */
	const char *kind, *where;
	struct log_ratelimit rl;
	unsigned backoff; /* ms; 0: the last connect worked */
	uint64_t retry_at; /* monotonic ms: no connect before */
};

/* The channel for ident on base, or NULL; marks it used.  The calling
 * thread must be the one that runs base. */
struct rcpt_chan *rcpt_local_find(struct event_base *base, const char *ident);
/* Adds c (taken) to base's channels. */
void rcpt_local_add(struct event_base *base, struct rcpt_chan *c);
/* Queues a store write for the next flush on base (NULL base: now). */
void rcpt_local_put(struct event_base *base, struct store *s, const char *key, const void *val,
                    size_t vlen, uint32_t ttl_s);

/* "ldap:" + 16 hex digits of FNV-1a over the parts (NULL parts count). */
void rcpt_ident(char out[RCPT_IDENT_LEN], const char *kind, const char *const *parts, size_t n);

/* Cached answer for key: FOUND, NOTFOUND, or MX_PENDING when none. */
enum mx_lookup rcpt_cache_get(struct store *s, const char *key);
void rcpt_cache_put(struct event_base *base, struct store *s, const char *key, enum mx_lookup r,
                    uint32_t ttl_s);

/* ---- what the directory backends' channels share (rcpt_chan.c) ---------- */

struct rcpt_chan_type {
	const char *kind; /* "ldap", "pgsql", ...: first word of its log lines */
	size_t size;      /* of the backend's channel struct, rcpt_chan first */
	bool (*busy)(struct rcpt_chan *c);
	void (*free)(struct rcpt_chan *c);
};

/* The channel for ident on base (marked used), or else a new one: t->size
 * bytes, zeroed, with its header filled in and added to base's channels;
 * *fresh tells the caller to set up the rest.  where is borrowed. */
struct rcpt_chan *rcpt_chan_get(struct event_base *base, const struct rcpt_chan_type *t,
                                const char *ident, const char *where, bool *fresh);

/* Warns "KIND WHERE: WHAT DETAIL" at most every 10 s per channel (the
 * next one says "(and earlier)").  detail may be NULL; it is escaped,
 * without its trailing newlines and spaces (libpq ends messages so). */
void rcpt_chan_warn(struct rcpt_chan *c, const char *what, const char *detail);

/* A connect failed: the next back-off (RCPT_BACKOFF_MIN_MS doubling up to
 * RCPT_BACKOFF_MAX_MS) starts now.  One worked: rcpt_chan_up(). */
void rcpt_chan_backoff(struct rcpt_chan *c);
void rcpt_chan_up(struct rcpt_chan *c);

/* Whether a new lookup must get TEMPFAIL at once, without waiting: the
 * backend is down (no connection, none being made) within its back-off,
 * or n_ops lookups wait already (at most max; logged).  Counted. */
bool rcpt_chan_refuse(struct rcpt_chan *c, bool down, unsigned n_ops, unsigned max);

/* ms as a struct timeval (timeouts come in ms from the configuration). */
static inline struct timeval
rcpt_tv(long long ms)
{
	struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
	return tv;
}

/* A one-shot timer on base calling cb(arg) after ms, started. */
struct event *rcpt_timer_start(struct event_base *base, long long ms, event_callback_fn cb,
                               void *arg);

/* LDAP (rcpt_ldap.c) for the replica (rcpt_replica.c). */
struct rcpt_ldap;
typedef int (*rcpt_ldap_value_cb)(const char *value, size_t len, void *arg);
/* Blocking: connects, searches base with filter and pages through every
 * result, calling cb for each value of attrs; cb returns 0 to go on, else
 * the fetch stops.  0, or -1 with err. */
int rcpt_ldap_fetch_all(struct rcpt_ldap *l, const char *filter, char *const *attrs,
                        const atomic_bool *stop, rcpt_ldap_value_cb cb, void *arg, char *err,
                        size_t errlen);
const char *rcpt_ldap_uri_list(const struct rcpt_ldap *l);

/* Replica (rcpt_replica.c). */
struct rcpt_replica;
struct rcpt_replica *rcpt_replica_new(const struct mx_config *cfg, struct store *s,
                                      struct rcpt_ldap *l);
void rcpt_replica_free(struct rcpt_replica *r);
/* FOUND/NOTFOUND from the replica for the candidate keys (the first that
 * exists wins), or MX_PENDING when no complete copy of the current
 * settings exists yet or the store cannot be read: then the directory is
 * asked. */
enum mx_lookup rcpt_replica_lookup(struct rcpt_replica *r, char keys[][SMTP_PATH_MAX + 2], int n);
long long rcpt_replica_sync(struct rcpt_replica *r, const atomic_bool *stop);

/* rcpt.c: frees the pending lookups of base, whose directory connections
 * are gone (rcpt_worker_end); their callbacks never run. */
void rcpt_queries_drop(struct event_base *base);

#endif
