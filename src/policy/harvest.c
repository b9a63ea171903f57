/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	harvest - dictionary-attack defence: unknown recipients per client
 * DESCRIPTION
 *	See harvest.h.  The state of a client is always decided from the
 *	store's window plus what this worker has counted and not written yet,
 *	so a burst within one flush interval is not missed; what other
 *	workers counted meanwhile shows within HARVEST_FLUSH_MS.
 * LIMITS
 *	HARVEST_PENDING_MAX clients with unwritten counts per worker (more
 *	are written at once).
 */
#include "harvest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "stats.h"
#include "str.h"
#include "strmap.h"
#include "xalloc.h"

#define HARVEST_WINDOW_PREFIX "hv:"
#define HARVEST_BLOCK_PREFIX "hb:"
#define HARVEST_PENDING_MAX 10000

struct harvest {
	uint32_t window_s;
	uint32_t tarpit_after, block_after;
	long long tarpit_ms;
	uint32_t block_s;
	int block_code;
	struct netaddr_cidr *allow;
	size_t n_allow;
};

struct harvest_worker {
	struct store *store;
	struct event *flush; /* writes the unwritten counts */
};

/* ---- the window ------------------------------------------------------------- */

void
harvest_window_init(struct harvest_window *w, uint32_t window_s)
{
	memset(w, 0, sizeof(*w));
	w->width = window_s / HARVEST_SLOTS;
	if (w->width == 0)
		w->width = 1;
}

void
harvest_window_add(struct harvest_window *w, time_t now, uint32_t n)
{
	uint32_t slot = (uint32_t)((uint64_t)now / w->width);
	unsigned i = slot % HARVEST_SLOTS;
	if (w->slot[i] != slot) {
		w->slot[i] = slot;
		w->count[i] = 0;
	}
	w->count[i] = w->count[i] > UINT32_MAX - n ? UINT32_MAX : w->count[i] + n;
}

uint32_t
harvest_window_count(const struct harvest_window *w, time_t now)
{
	uint32_t slot = (uint32_t)((uint64_t)now / w->width);
	uint64_t sum = 0;
	for (unsigned i = 0; i < HARVEST_SLOTS; i++) {
		/* the current slot and the HARVEST_SLOTS - 1 before it */
		if (w->count[i] != 0 && w->slot[i] <= slot && slot - w->slot[i] < HARVEST_SLOTS)
			sum += w->count[i];
	}
	return sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum;
}

static void
harvest_put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++, v >>= 8)
		p[i] = (unsigned char)(v & 0xff);
}

static uint32_t
harvest_get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void
harvest_window_encode(const struct harvest_window *w, unsigned char out[HARVEST_WINDOW_BYTES])
{
	harvest_put32(out, w->width);
	for (unsigned i = 0; i < HARVEST_SLOTS; i++) {
		harvest_put32(out + 4 + 8 * i, w->slot[i]);
		harvest_put32(out + 8 + 8 * i, w->count[i]);
	}
}

bool
harvest_window_decode(struct harvest_window *w, const void *in, size_t len, uint32_t window_s)
{
	const unsigned char *p = in;
	harvest_window_init(w, window_s);
	if (len != HARVEST_WINDOW_BYTES || harvest_get32(p) != w->width)
		return false;
	for (unsigned i = 0; i < HARVEST_SLOTS; i++) {
		w->slot[i] = harvest_get32(p + 4 + 8 * i);
		w->count[i] = harvest_get32(p + 8 + 8 * i);
	}
	return true;
}

/* ---- settings ----------------------------------------------------------------- */

struct harvest *
harvest_build(const struct mx_config *cfg, struct config_errors *errs)
{
	if (!cfg->harvest)
		return NULL;
	struct harvest *h = xcalloc(1, sizeof(*h));
	h->window_s = (uint32_t)(cfg->harvest_window / 1000);
	h->tarpit_after = (uint32_t)cfg->harvest_tarpit_after;
	h->block_after = (uint32_t)cfg->harvest_block_after;
	h->tarpit_ms = cfg->harvest_tarpit_delay;
	h->block_s = (uint32_t)(cfg->harvest_block_time / 1000);
	h->block_code = cfg->harvest_block_code;
	h->allow = xcalloc(cfg->n_harvest_allow + 1, sizeof(*h->allow));
	size_t before = errs->n;
	for (size_t i = 0; i < cfg->n_harvest_allow; i++) {
		if (netaddr_cidr_parse(cfg->harvest_allow[i], &h->allow[h->n_allow]) < 0)
			config_error(errs, "%s: harvest.allow: \"%s\" is not an address or network (like "
			             "192.0.2.0/24 or 2001:db8::/32)", cfg->path, cfg->harvest_allow[i]);
		else
			h->n_allow++;
	}
	if (errs->n != before) {
		harvest_free(h);
		return NULL;
	}
	return h;
}

void
harvest_free(struct harvest *h)
{
	if (h == NULL)
		return;
	free(h->allow);
	free(h);
}

long long
harvest_tarpit_ms(const struct harvest *h)
{
	return h->tarpit_ms;
}

int
harvest_block_code(const struct harvest *h)
{
	return h->block_code;
}

/* ---- counting ---------------------------------------------------------------- */

/*
 * Counts not written yet, shared by the workers of the process: each sees
 * the others' at once (other processes, and later other gateways, within
 * HARVEST_FLUSH_MS).  The lock is held while the counts are written and
 * while a count is read (store + unwritten), so a count is never missed
 * nor counted twice; a write is one small transaction every
 * HARVEST_FLUSH_MS at most.
 */
static struct {
	pthread_mutex_t mu;
	struct strmap *pending; /* key -> uint32_t count */
	uint32_t window_s;
} harvest_shared = {PTHREAD_MUTEX_INITIALIZER, NULL, 0};

/* Unwritten counts for key; adds n first.  Under the lock. */
static uint32_t
harvest_shared_count(const char *key, uint32_t n)
{
	size_t kl = strlen(key);
	uint32_t *v = NULL, total = 0;
	if (harvest_shared.pending == NULL)
		harvest_shared.pending = strmap_new();
	if (strmap_get(harvest_shared.pending, key, kl, (void **)&v)) {
		*v += n;
		total = *v;
	} else if (n > 0) {
		v = xmalloc(sizeof(*v));
		*v = n;
		strmap_put(harvest_shared.pending, key, kl, v);
		total = n;
	}
	return total;
}

struct harvest_write {
	struct store_txn *t;
	uint32_t window_s;
	time_t now;
};

static int
harvest_write_one(const char *key, size_t keylen, void *val, void *arg)
{
	struct harvest_write *hw = arg;
	const uint32_t *n = val;
	char k[STORE_KEY_MAX + 1];
	int kl = snprintf(k, sizeof(k), HARVEST_WINDOW_PREFIX "%.*s", (int)keylen, key);
	if (kl <= 0 || (size_t)kl >= sizeof(k))
		return 0;
	struct harvest_window win;
	const void *old;
	size_t ol;
	if (store_txn_get(hw->t, k, (size_t)kl, &old, &ol) != MX_FOUND ||
	    !harvest_window_decode(&win, old, ol, hw->window_s))
		harvest_window_init(&win, hw->window_s);
	harvest_window_add(&win, hw->now, *n);
	unsigned char buf[HARVEST_WINDOW_BYTES];
	harvest_window_encode(&win, buf);
	store_txn_put(hw->t, k, (size_t)kl, buf, sizeof(buf), hw->window_s + win.width);
	return 0;
}

/* Writes the unwritten counts in one transaction.  Under the lock. */
static void
harvest_write_locked(struct store *s)
{
	if (harvest_shared.pending == NULL || strmap_count(harvest_shared.pending) == 0)
		return;
	struct harvest_write hw = {store_txn_begin(s), harvest_shared.window_s, mx_clock_wall()};
	if (hw.t != NULL) {
		strmap_foreach(harvest_shared.pending, harvest_write_one, &hw);
		store_txn_commit(hw.t); /* the store logs its failures */
	}
	strmap_free_values(harvest_shared.pending);
	harvest_shared.pending = strmap_new();
}

static void
harvest_worker_write(struct harvest_worker *w)
{
	pthread_mutex_lock(&harvest_shared.mu);
	harvest_write_locked(w->store);
	pthread_mutex_unlock(&harvest_shared.mu);
}

static void
harvest_worker_flush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	harvest_worker_write(arg);
}

struct harvest_worker *
harvest_worker_new(struct event_base *base, struct store *s)
{
	struct harvest_worker *w = xcalloc(1, sizeof(*w));
	w->store = s;
	w->flush = evtimer_new(base, harvest_worker_flush, w);
	return w;
}

void
harvest_worker_free(struct harvest_worker *w)
{
	if (w == NULL)
		return;
	harvest_worker_write(w);
	event_free(w->flush);
	free(w);
}

/* The window count in the store for key, or 0. */
static uint32_t
harvest_stored(const struct harvest *h, struct store *s, const char *key, time_t now)
{
	char k[STORE_KEY_MAX + 1];
	int kl = snprintf(k, sizeof(k), HARVEST_WINDOW_PREFIX "%s", key);
	void *val = NULL;
	size_t vl = 0;
	uint32_t n = 0;
	struct harvest_window win;
	if (store_get(s, k, (size_t)kl, &val, &vl) == MX_FOUND &&
	    harvest_window_decode(&win, val, vl, h->window_s))
		n = harvest_window_count(&win, now);
	free(val);
	return n;
}

/* A block in force for key: fills until and returns true. */
static bool
harvest_blocked(struct store *s, const char *key, time_t *until)
{
	char k[STORE_KEY_MAX + 1];
	int kl = snprintf(k, sizeof(k), HARVEST_BLOCK_PREFIX "%s", key);
	void *val = NULL;
	size_t vl = 0;
	bool b = store_get(s, k, (size_t)kl, &val, &vl) == MX_FOUND;
	long long since = 0, u = 0;
	if (b && sscanf(val, "%lld %lld", &since, &u) == 2)
		*until = (time_t)u;
	free(val);
	return b;
}

enum harvest_state
harvest_state(const struct harvest *h, const struct harvest_client *c)
{
	if (c->allowed)
		return HARVEST_OK;
	if (c->count > h->block_after)
		return HARVEST_BLOCKED;
	return c->count > h->tarpit_after ? HARVEST_TARPIT : HARVEST_OK;
}

enum harvest_state
harvest_connect(const struct harvest *h, struct harvest_worker *w, const struct sockaddr *sa,
                struct harvest_client *c)
{
	memset(c, 0, sizeof(*c));
	netaddr_client_key(sa, c->key, sizeof(c->key));
	netaddr_ip_str(sa, c->ip, sizeof(c->ip));
	for (size_t i = 0; i < h->n_allow; i++) {
		if (netaddr_cidr_match(&h->allow[i], sa)) {
			c->allowed = true;
			return HARVEST_OK;
		}
	}
	if (harvest_blocked(w->store, c->key, &c->until))
		return HARVEST_BLOCKED;
	pthread_mutex_lock(&harvest_shared.mu);
	c->count = harvest_stored(h, w->store, c->key, mx_clock_wall()) +
	           harvest_shared_count(c->key, 0);
	pthread_mutex_unlock(&harvest_shared.mu);
	/* a count past block_after without a block record: the block expired
	 * and the window still remembers; only new unknowns block again */
	return c->count > h->tarpit_after ? HARVEST_TARPIT : HARVEST_OK;
}

static void
harvest_block(const struct harvest *h, struct harvest_worker *w, struct harvest_client *c,
              time_t now)
{
	char k[STORE_KEY_MAX + 1], val[96];
	int kl = snprintf(k, sizeof(k), HARVEST_BLOCK_PREFIX "%s", c->key);
	c->until = now + (time_t)h->block_s;
	int vl = snprintf(val, sizeof(val), "%lld %lld %u", (long long)now, (long long)c->until,
	                  c->count);
	store_put(w->store, k, (size_t)kl, val, (size_t)vl, h->block_s);
	stats_inc(STAT_HARVEST_BLOCK);
	log_warn("harvest: block client=%s key=%s unknown_recipients=%u window=%us block_time=%us "
	         "reply=%d", c->ip, c->key, c->count, h->window_s, h->block_s, h->block_code);
}

enum harvest_state
harvest_unknown(const struct harvest *h, struct harvest_worker *w, struct harvest_client *c)
{
	if (c->allowed)
		return HARVEST_OK;
	time_t now = mx_clock_wall();
	pthread_mutex_lock(&harvest_shared.mu);
	if (harvest_shared.window_s != h->window_s || (harvest_shared.pending != NULL &&
	    strmap_count(harvest_shared.pending) >= HARVEST_PENDING_MAX))
		harvest_write_locked(w->store); /* a reload changed the window, or too much waits */
	harvest_shared.window_s = h->window_s;
	c->count = harvest_stored(h, w->store, c->key, now) + harvest_shared_count(c->key, 1);
	pthread_mutex_unlock(&harvest_shared.mu);
	if (!evtimer_pending(w->flush, NULL)) {
		struct timeval tv = {0, HARVEST_FLUSH_MS * 1000};
		evtimer_add(w->flush, &tv);
	}
	if (c->count > h->block_after) {
		if (!harvest_blocked(w->store, c->key, &c->until))
			harvest_block(h, w, c, now);
		return HARVEST_BLOCKED;
	}
	return c->count > h->tarpit_after ? HARVEST_TARPIT : HARVEST_OK;
}

/* ---- blocks ------------------------------------------------------------------- */

struct harvest_list {
	void (*cb)(const struct harvest_block *b, void *arg);
	void *arg;
};

static int
harvest_list_one(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
	struct harvest_list *l = arg;
	struct harvest_block b;
	memset(&b, 0, sizeof(b));
	size_t pl = strlen(HARVEST_BLOCK_PREFIX);
	mx_strlcpyn(b.key, (const char *)key + pl, klen - pl, sizeof(b.key));
	char text[96];
	mx_strlcpyn(text, val, vlen, sizeof(text));
	long long since = 0, until = 0;
	unsigned count = 0;
	if (sscanf(text, "%lld %lld %u", &since, &until, &count) >= 2) {
		b.since = (time_t)since;
		b.until = (time_t)until;
		b.count = count;
		l->cb(&b, l->arg);
	}
	return 0;
}

int
harvest_block_list(struct store *s, void (*cb)(const struct harvest_block *b, void *arg), void *arg)
{
	struct harvest_list l = {cb, arg};
	return store_scan(s, HARVEST_BLOCK_PREFIX, strlen(HARVEST_BLOCK_PREFIX), harvest_list_one, &l);
}

int
harvest_block_remove(struct store *s, const char *addr, char *key, size_t keylen, char *err,
                     size_t errlen)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (strchr(addr, '/') != NULL) {
		struct netaddr_cidr net;
		if (netaddr_cidr_parse(addr, &net) < 0 || net.family != AF_INET6 || net.prefix != 64) {
			snprintf(err, errlen, "\"%s\": expected an IP address (or an IPv6 /64)", addr);
			return -1;
		}
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, net.addr, 16);
	} else if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
	} else {
		snprintf(err, errlen, "\"%s\": expected an IP address", addr);
		return -1;
	}
	netaddr_client_key((struct sockaddr *)&ss, key, keylen);
	char bk[STORE_KEY_MAX + 1], wk[STORE_KEY_MAX + 1];
	int bl = snprintf(bk, sizeof(bk), HARVEST_BLOCK_PREFIX "%s", key);
	int wl = snprintf(wk, sizeof(wk), HARVEST_WINDOW_PREFIX "%s", key);
	struct store_txn *t = store_txn_begin(s);
	if (t == NULL) {
		snprintf(err, errlen, "cannot write to the store");
		return -1;
	}
	const void *v;
	size_t vl;
	bool had = store_txn_get(t, bk, (size_t)bl, &v, &vl) == MX_FOUND;
	if (store_txn_del(t, bk, (size_t)bl) < 0 || store_txn_del(t, wk, (size_t)wl) < 0) {
		store_txn_abort(t);
		snprintf(err, errlen, "cannot write to the store");
		return -1;
	}
	if (store_txn_commit(t) < 0) {
		snprintf(err, errlen, "cannot write to the store");
		return -1;
	}
	return had ? 1 : 0;
}
