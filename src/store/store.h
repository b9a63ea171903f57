/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	store - shared state behind one interface (LMDB now, Redis later)
 * DESCRIPTION
 *	Keys and values are byte strings.  Values may carry a time to live;
 *	an expired value reads as absent.  Reads return tri-state answers:
 *	MX_TEMPFAIL (the store could not answer) is never MX_NOTFOUND.
 *	Big read-mostly values (the classifier's model) are read through a
 *	view: zero-copy for LMDB (the bytes stay in the memory map for the
 *	view's lifetime), a cached copy for network backends.
 *	Writes can be grouped in a transaction (all or nothing).
 *	Thread-safe: one struct store is shared by every worker thread and by
 *	other processes on the same files (`mxguard learn` while `serve` runs).
 * LIMITS
 *	Keys up to 511 bytes (LMDB's limit); values up to the map size.
 */
#ifndef MX_STORE_H
#define MX_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

struct store;
struct store_view;
struct store_txn;

#define STORE_KEY_MAX 511

struct store_opts {
	const char *path;   /* LMDB folder (created if missing) */
	size_t map_size;    /* bytes; 0 = 1 GiB */
	bool read_only;
};

/* Opens the store; NULL with err filled. */
struct store *store_open(const struct store_opts *o, char *err, size_t errlen);
void store_close(struct store *s);
const char *store_describe(const struct store *s);
/* The bytes the store's data take and the most it may take (store.size):
 * a write that needs more than limit - used fails.  0, or -1. */
int store_usage(struct store *s, uint64_t *used, uint64_t *limit);

/* Copies the value into *val (malloc'ed, caller frees). */
enum mx_lookup store_get(struct store *s, const void *key, size_t klen, void **val, size_t *vlen);
/* ttl_s 0 = no expiry. 0 or -1. */
int store_put(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
              uint32_t ttl_s);
/* 0 (also when absent) or -1. */
int store_del(struct store *s, const void *key, size_t klen);
/* Adds delta to a 64-bit counter (absent = 0) and returns the new value;
 * the ttl is set when the counter is created. 0 or -1. */
int store_incr(struct store *s, const void *key, size_t klen, int64_t delta, uint32_t ttl_s,
               int64_t *result);

/* Zero-copy reads: valid until store_view_end(). */
struct store_view *store_view_begin(struct store *s);
enum mx_lookup store_view_get(struct store_view *v, const void *key, size_t klen,
                              const void **val, size_t *vlen);
void store_view_end(struct store_view *v);

/* Grouped writes. */
struct store_txn *store_txn_begin(struct store *s);
int store_txn_put(struct store_txn *t, const void *key, size_t klen, const void *val, size_t vlen,
                  uint32_t ttl_s);
/* Like store_txn_put, but the value is written by the caller into the
 * returned space (vlen bytes, valid until the next call on t): a large
 * value is built in place rather than copied.  NULL on error. */
void *store_txn_reserve(struct store_txn *t, const void *key, size_t klen, size_t vlen,
                        uint32_t ttl_s);
int store_txn_del(struct store_txn *t, const void *key, size_t klen);
enum mx_lookup store_txn_get(struct store_txn *t, const void *key, size_t klen, const void **val,
                             size_t *vlen);
/* Calls cb for every live key starting with prefix (inside the txn; cb may
 * not write). Returns 0, or -1. cb returns non-zero to stop. */
int store_txn_scan(struct store_txn *t, const void *prefix, size_t plen,
                   int (*cb)(const void *key, size_t klen, const void *val, size_t vlen, void *arg),
                   void *arg);
int store_txn_commit(struct store_txn *t); /* frees t; 0 or -1 */
void store_txn_abort(struct store_txn *t); /* frees t */

/* A named lock shared by every process on the store, for work that one
 * of them at a time should do (the classifier's training).  Held until
 * store_lock_release() or the holder's death.  wait: block until it is
 * free; else NULL at once when another holds it.  NULL also on error
 * (*busy false).  LMDB: flock() on a file NAME.lock in the store's folder;
 * a network backend will use a lease. */
struct store_lock;
struct store_lock *store_lock_take(struct store *s, const char *name, bool wait, bool *busy);
void store_lock_release(struct store_lock *l);

/* Scan outside a transaction (a read view). */
/* Expired entries are never read, but they stay until removed: the
 * cache and the harvest counters take keys senders choose, and a store
 * nobody sweeps fills. store_sweep() removes the expired entries under
 * prefix, visiting at most `visit` of them in one write transaction from
 * where the last call stopped (sw keeps the place; zeroed to start) and
 * starting over at the prefix's first key after its last. The number
 * removed, or -1. */
struct store_sweep {
	char next[STORE_KEY_MAX + 1];
	size_t next_len; /* 0: from the prefix's first key */
};
long store_sweep(struct store *s, const char *prefix, struct store_sweep *sw, size_t visit);

int store_scan(struct store *s, const void *prefix, size_t plen,
               int (*cb)(const void *key, size_t klen, const void *val, size_t vlen, void *arg),
               void *arg);

#endif
