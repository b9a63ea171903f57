/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	store_lmdb - the embedded store: LMDB in one folder
 * DESCRIPTION
 *	Every value starts with an 8-byte header: its expiry time (seconds
 *	since the epoch, little-endian; 0 = none).  Expired values read as
 *	absent and are removed by writers that meet them.  The environment is
 *	opened with MDB_NOTLS, so read transactions are not tied to threads;
 *	LMDB itself serialises writers, across processes too.
 *	Views are read transactions: the value bytes are the memory map.
 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "clock.h"
#include "fsutil.h"
#include "log.h"
#include "str.h"
#include "xalloc.h"

#define STORE_HDR 8

struct store {
	MDB_env *env;
	MDB_dbi dbi;
	bool read_only;
	/* held shared by every transaction and view of the process, and
	 * exclusively to adopt a map another process grew (see store_begin) */
	pthread_rwlock_t map_lock;
	char describe[300];
	char path[4096];
	struct log_ratelimit rl;
};

struct store_lock {
	int fd;
};

struct store_view {
	MDB_txn *txn;
	struct store *s;
};

struct store_txn {
	MDB_txn *txn;
	struct store *s;
};

static void
store_log_error(struct store *s, const char *what, int rc)
{
	unsigned supp = 0;
	if (log_ratelimit_ok(&s->rl, 10, &supp))
		log_err("store %s: %s: %s%s%s", s->describe, what, mdb_strerror(rc),
		        rc == MDB_MAP_FULL ? " (the store is full: raise store.size)" : "",
		        supp ? " (repeated)" : "");
}

static uint64_t
store_hdr_get(const void *v)
{
	const unsigned char *p = v;
	uint64_t x = 0;
	for (int i = 7; i >= 0; i--)
		x = (x << 8) | p[i];
	return x;
}

static void
store_hdr_set(void *v, uint64_t x)
{
	unsigned char *p = v;
	for (int i = 0; i < 8; i++, x >>= 8)
		p[i] = (unsigned char)(x & 0xff);
}

static bool
store_live(const MDB_val *v)
{
	if (v->mv_size < STORE_HDR)
		return false;
	uint64_t exp = store_hdr_get(v->mv_data);
	return exp == 0 || exp > (uint64_t)mx_clock_wall();
}

struct store *
store_open(const struct store_opts *o, char *err, size_t errlen)
{
	if (!o->read_only && fsutil_mkdirs(o->path, 0750, err, errlen) < 0)
		return NULL;
	struct store *s = xcalloc(1, sizeof(*s));
	snprintf(s->describe, sizeof(s->describe), "lmdb:%s", o->path);
	mx_strlcpy(s->path, o->path, sizeof(s->path));
	s->read_only = o->read_only;
	pthread_rwlock_init(&s->map_lock, NULL);
	int rc = mdb_env_create(&s->env);
	if (rc == 0)
		rc = mdb_env_set_mapsize(s->env, o->map_size ? o->map_size : (size_t)1 << 30);
	if (rc == 0)
		rc = mdb_env_set_maxreaders(s->env, 512);
	if (rc == 0)
		rc = mdb_env_open(s->env, o->path, MDB_NOTLS | (o->read_only ? MDB_RDONLY : 0), 0640);
	if (rc != 0) {
		snprintf(err, errlen, "cannot open LMDB store in %s: %s", o->path, mdb_strerror(rc));
		mdb_env_close(s->env);
		pthread_rwlock_destroy(&s->map_lock);
		free(s);
		return NULL;
	}
	MDB_txn *txn;
	rc = mdb_txn_begin(s->env, NULL, o->read_only ? MDB_RDONLY : 0, &txn);
	if (rc == 0) {
		rc = mdb_dbi_open(txn, NULL, 0, &s->dbi);
		if (rc == 0)
			rc = mdb_txn_commit(txn); /* frees txn, even when it fails */
		else
			mdb_txn_abort(txn);
	}
	if (rc != 0) {
		snprintf(err, errlen, "cannot open LMDB database in %s: %s", o->path, mdb_strerror(rc));
		mdb_env_close(s->env);
		pthread_rwlock_destroy(&s->map_lock);
		free(s);
		return NULL;
	}
	mdb_reader_check(s->env, NULL); /* clear slots of dead processes */
	return s;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	mdb_env_close(s->env);
	pthread_rwlock_destroy(&s->map_lock);
	free(s);
}

struct store_lock *
store_lock_take(struct store *s, const char *name, bool wait, bool *busy)
{
	*busy = false;
	char p[sizeof(s->path) + 64];
	if (snprintf(p, sizeof(p), "%s/%s.lock", s->path, name) >= (int)sizeof(p))
		return NULL;
	/* created by a process that may write the store (so `mxguard stats`
	 * run as root leaves no file the service user cannot open), readable
	 * by all: a read-only descriptor is all flock needs */
	int fd = s->read_only ? -1 : open(p, O_RDONLY | O_CLOEXEC | O_CREAT | O_EXCL, 0644);
	if (fd >= 0)
		(void)fchmod(fd, 0644); /* whatever the umask */
	else
		fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && s->read_only)
			return NULL; /* no file: nobody has ever held the lock */
		/* the lock is not taken: say so, once a process, whatever the
		 * caller (a learn then trains side by side with others) */
		static atomic_bool warned;
		if (!atomic_exchange(&warned, true))
			log_warn("store: cannot open %s: %s; learns are not serialised", p, strerror(errno));
		return NULL;
	}
	int rc;
	while ((rc = flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB))) < 0 && errno == EINTR)
		;
	if (rc < 0) {
		*busy = errno == EWOULDBLOCK;
		if (!*busy)
			log_warn("store: cannot lock %s: %s", p, strerror(errno));
		close(fd);
		return NULL;
	}
	struct store_lock *l = xmalloc(sizeof(*l));
	l->fd = fd;
	return l;
}

void
store_lock_release(struct store_lock *l)
{
	if (l == NULL)
		return;
	close(l->fd); /* drops the flock */
	free(l);
}

const char *
store_describe(const struct store *s)
{
	return s->describe;
}

/* Transactions and views this thread has open, in any store. */
static _Thread_local int store_pins;

/*
 * Begins a transaction, holding the map lock shared until store_end().
 * Another process with a larger store.size may grow the file past this
 * process's map (MDB_MAP_RESIZED); adopting the new size remaps it, which
 * LMDB allows only while no transaction of the process is open: a view
 * (the classifier's model, read in place) would point into the old map
 * and fault. So the map lock is taken exclusively for it, and a thread
 * that has a transaction of its own open does not try (it would wait for
 * itself): its begin fails, as a store that cannot answer does.
 */
static int
store_begin(struct store *s, unsigned flags, MDB_txn **txn)
{
	for (int tries = 0;; tries++) {
		pthread_rwlock_rdlock(&s->map_lock);
		int rc = mdb_txn_begin(s->env, NULL, flags, txn);
		if (rc == 0) {
			store_pins++;
			return 0;
		}
		pthread_rwlock_unlock(&s->map_lock);
		if (rc != MDB_MAP_RESIZED || tries > 0 || store_pins > 0) {
			store_log_error(s, "begin", rc);
			return rc;
		}
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 5; /* the other threads' transactions end */
		if ((rc = pthread_rwlock_timedwrlock(&s->map_lock, &until)) != 0) {
			log_warn("store %s: the map grew and could not be adopted: %s", s->describe, strerror(rc));
			return MDB_MAP_RESIZED;
		}
		rc = mdb_env_set_mapsize(s->env, 0); /* the size the file has now */
		pthread_rwlock_unlock(&s->map_lock);
		if (rc != 0) {
			store_log_error(s, "resize", rc);
			return rc;
		}
		log_info("store %s: the map grew (another process has a larger store.size); adopted",
		         s->describe);
	}
}

/* Ends what store_begin() began (after its commit or abort). */
static void
store_end(struct store *s)
{
	store_pins--;
	pthread_rwlock_unlock(&s->map_lock);
}

int
store_usage(struct store *s, uint64_t *used, uint64_t *limit)
{
	/* pages the file has grown to, less those on the free list (LMDB
	 * hands them out again before it grows the file): what mdb_stat -ef
	 * reports */
	MDB_txn *txn;
	MDB_cursor *cur;
	if (store_begin(s, MDB_RDONLY, &txn) != 0)
		return -1;
	uint64_t free_pages = 0;
	if (mdb_cursor_open(txn, 0, &cur) == 0) { /* 0: LMDB's free-page database */
		MDB_val k, v;
		while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0)
			if (v.mv_size >= sizeof(size_t)) { /* a page list starts with its length */
				size_t len;
				memcpy(&len, v.mv_data, sizeof(len));
				free_pages += len;
			}
		mdb_cursor_close(cur);
	}
	MDB_envinfo info;
	MDB_stat st;
	int rc = mdb_env_info(s->env, &info) | mdb_env_stat(s->env, &st);
	mdb_txn_abort(txn);
	store_end(s);
	if (rc != 0)
		return -1;
	uint64_t pages = (uint64_t)info.me_last_pgno + 1;
	*used = (pages > free_pages ? pages - free_pages : 0) * st.ms_psize;
	*limit = info.me_mapsize;
	return 0;
}

enum mx_lookup
store_get(struct store *s, const void *key, size_t klen, void **val, size_t *vlen)
{
	struct store_view *v = store_view_begin(s);
	if (v == NULL)
		return MX_TEMPFAIL;
	const void *p;
	size_t n;
	enum mx_lookup r = store_view_get(v, key, klen, &p, &n);
	if (r == MX_FOUND) {
		*val = xmalloc(n + 1);
		memcpy(*val, p, n);
		((char *)*val)[n] = '\0';
		*vlen = n;
	}
	store_view_end(v);
	return r;
}

int
store_put(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
          uint32_t ttl_s)
{
	struct store_txn *t = store_txn_begin(s);
	if (t == NULL)
		return -1;
	if (store_txn_put(t, key, klen, val, vlen, ttl_s) < 0) {
		store_txn_abort(t);
		return -1;
	}
	return store_txn_commit(t);
}

int
store_del(struct store *s, const void *key, size_t klen)
{
	struct store_txn *t = store_txn_begin(s);
	if (t == NULL)
		return -1;
	if (store_txn_del(t, key, klen) < 0) {
		store_txn_abort(t);
		return -1;
	}
	return store_txn_commit(t);
}

int
store_incr(struct store *s, const void *key, size_t klen, int64_t delta, uint32_t ttl_s,
           int64_t *result)
{
	struct store_txn *t = store_txn_begin(s);
	if (t == NULL)
		return -1;
	int64_t v = 0;
	uint32_t ttl = ttl_s;
	MDB_val k = {klen, (void *)key}, d;
	if (mdb_get(t->txn, s->dbi, &k, &d) == 0 && store_live(&d) && d.mv_size == STORE_HDR + 8) {
		memcpy(&v, (char *)d.mv_data + STORE_HDR, 8);
		uint64_t exp = store_hdr_get(d.mv_data);
		/* keep the expiry set at creation */
		ttl = exp ? (uint32_t)(exp > (uint64_t)mx_clock_wall() ? exp - (uint64_t)mx_clock_wall() : 1) : 0;
	}
	v += delta;
	if (store_txn_put(t, key, klen, &v, sizeof(v), ttl) < 0) {
		store_txn_abort(t);
		return -1;
	}
	if (result)
		*result = v;
	return store_txn_commit(t);
}

struct store_view *
store_view_begin(struct store *s)
{
	MDB_txn *txn;
	if (store_begin(s, MDB_RDONLY, &txn) != 0)
		return NULL;
	struct store_view *v = xmalloc(sizeof(*v));
	v->txn = txn;
	v->s = s;
	return v;
}

enum mx_lookup
store_view_get(struct store_view *v, const void *key, size_t klen, const void **val, size_t *vlen)
{
	if (klen == 0 || klen > STORE_KEY_MAX)
		return MX_NOTFOUND;
	MDB_val k = {klen, (void *)key}, d;
	int rc = mdb_get(v->txn, v->s->dbi, &k, &d);
	if (rc == MDB_NOTFOUND)
		return MX_NOTFOUND;
	if (rc != 0) {
		store_log_error(v->s, "get", rc);
		return MX_TEMPFAIL;
	}
	if (!store_live(&d))
		return MX_NOTFOUND;
	*val = (const char *)d.mv_data + STORE_HDR;
	*vlen = d.mv_size - STORE_HDR;
	return MX_FOUND;
}

void
store_view_end(struct store_view *v)
{
	if (v == NULL)
		return;
	mdb_txn_abort(v->txn);
	store_end(v->s);
	free(v);
}

struct store_txn *
store_txn_begin(struct store *s)
{
	MDB_txn *txn;
	if (store_begin(s, 0, &txn) != 0)
		return NULL;
	struct store_txn *t = xmalloc(sizeof(*t));
	t->txn = txn;
	t->s = s;
	return t;
}

void *
store_txn_reserve(struct store_txn *t, const void *key, size_t klen, size_t vlen, uint32_t ttl_s)
{
	if (klen == 0 || klen > STORE_KEY_MAX)
		return NULL;
	MDB_val k = {klen, (void *)key}, d = {vlen + STORE_HDR, NULL};
	int rc = mdb_put(t->txn, t->s->dbi, &k, &d, MDB_RESERVE);
	if (rc != 0) {
		store_log_error(t->s, "put", rc);
		return NULL;
	}
	store_hdr_set(d.mv_data, ttl_s ? (uint64_t)mx_clock_wall() + ttl_s : 0);
	return (char *)d.mv_data + STORE_HDR;
}

int
store_txn_put(struct store_txn *t, const void *key, size_t klen, const void *val, size_t vlen,
              uint32_t ttl_s)
{
	void *d = store_txn_reserve(t, key, klen, vlen, ttl_s);
	if (d == NULL)
		return -1;
	if (vlen)
		memcpy(d, val, vlen);
	return 0;
}

int
store_txn_del(struct store_txn *t, const void *key, size_t klen)
{
	if (klen == 0 || klen > STORE_KEY_MAX)
		return 0;
	MDB_val k = {klen, (void *)key};
	int rc = mdb_del(t->txn, t->s->dbi, &k, NULL);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		store_log_error(t->s, "del", rc);
		return -1;
	}
	return 0;
}

enum mx_lookup
store_txn_get(struct store_txn *t, const void *key, size_t klen, const void **val, size_t *vlen)
{
	struct store_view v = {t->txn, t->s};
	return store_view_get(&v, key, klen, val, vlen);
}

static int
store_scan_txn(MDB_txn *txn, struct store *s, const void *prefix, size_t plen,
               int (*cb)(const void *, size_t, const void *, size_t, void *), void *arg)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, s->dbi, &cur);
	if (rc != 0) {
		store_log_error(s, "cursor", rc);
		return -1;
	}
	MDB_val k = {plen, (void *)prefix}, d;
	rc = mdb_cursor_get(cur, &k, &d, plen ? MDB_SET_RANGE : MDB_FIRST);
	while (rc == 0) {
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
			break;
		if (store_live(&d) &&
		    cb(k.mv_data, k.mv_size, (char *)d.mv_data + STORE_HDR, d.mv_size - STORE_HDR, arg))
			break;
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : -1;
}

int
store_txn_scan(struct store_txn *t, const void *prefix, size_t plen,
               int (*cb)(const void *, size_t, const void *, size_t, void *), void *arg)
{
	return store_scan_txn(t->txn, t->s, prefix, plen, cb, arg);
}

int
store_scan(struct store *s, const void *prefix, size_t plen,
           int (*cb)(const void *, size_t, const void *, size_t, void *), void *arg)
{
	struct store_view *v = store_view_begin(s);
	if (v == NULL)
		return -1;
	int rc = store_scan_txn(v->txn, s, prefix, plen, cb, arg);
	store_view_end(v);
	return rc;
}

int
store_txn_commit(struct store_txn *t)
{
	int rc = mdb_txn_commit(t->txn);
	store_end(t->s);
	if (rc != 0)
		store_log_error(t->s, "commit", rc);
	free(t);
	return rc == 0 ? 0 : -1;
}

void
store_txn_abort(struct store_txn *t)
{
	if (t == NULL)
		return;
	mdb_txn_abort(t->txn);
	store_end(t->s);
	free(t);
}

long
store_sweep(struct store *s, const char *prefix, struct store_sweep *sw, size_t visit)
{
	MDB_txn *txn;
	if (store_begin(s, 0, &txn) != 0)
		return -1;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, s->dbi, &cur);
	if (rc != 0) {
		store_log_error(s, "cursor", rc);
		mdb_txn_abort(txn);
		store_end(s);
		return -1;
	}
	size_t plen = strlen(prefix);
	MDB_val k, d;
	if (sw->next_len > 0)
		k = (MDB_val){sw->next_len, sw->next};
	else
		k = (MDB_val){plen, (void *)prefix};
	rc = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE);
	uint64_t now = (uint64_t)mx_clock_wall();
	long removed = 0;
	size_t seen = 0;
	sw->next_len = 0;
	while (rc == 0) {
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
			break; /* past the prefix: the next call starts over */
		if (seen++ >= visit) { /* the place to go on from */
			size_t kl = k.mv_size <= STORE_KEY_MAX ? k.mv_size : STORE_KEY_MAX;
			memcpy(sw->next, k.mv_data, kl);
			sw->next_len = kl;
			break;
		}
		uint64_t exp = d.mv_size >= STORE_HDR ? store_hdr_get(d.mv_data) : 0;
		if (exp != 0 && exp <= now) {
			if ((rc = mdb_cursor_del(cur, 0)) != 0)
				break;
			removed++;
		}
		/* after a delete the cursor is on the next entry already, and
		 * MDB_NEXT returns that one */
		rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		store_log_error(s, "sweep", rc);
		mdb_txn_abort(txn);
		store_end(s);
		return -1;
	}
	if (removed == 0) { /* nothing to write: no commit, no sync */
		mdb_txn_abort(txn);
		store_end(s);
		return 0;
	}
	rc = mdb_txn_commit(txn);
	store_end(s);
	if (rc != 0) {
		store_log_error(s, "commit", rc);
		return -1;
	}
	return removed;
}
