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

#include <event2/event.h>

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

/* Back-off after failed connects: 0 -> MIN, then doubling up to MAX. */
static inline unsigned
rcpt_backoff_next(unsigned cur)
{
	if (cur == 0)
		return RCPT_BACKOFF_MIN_MS;
	return cur >= RCPT_BACKOFF_MAX_MS / 2 ? RCPT_BACKOFF_MAX_MS : cur * 2;
}

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

#endif
