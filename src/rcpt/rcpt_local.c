/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	rcpt_local - per worker thread state of the directory backends
 * DESCRIPTION
 *	One struct rcpt_local per event base: its channels and its queue of
 *	cache writes.  Found through a thread-local pointer (the fast path)
 *	or, the first time on a thread, in a global list under a mutex.
 *	Everything in a rcpt_local is touched only by the thread running its
 *	base, until rcpt_worker_end() (called once that loop has ended).
 * LIMITS
 *	RCPT_LOCAL_PUTS_MAX queued cache writes per worker; beyond that new
 *	answers are not cached until the next flush.
 */
#include "rcpt_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "xalloc.h"

#define RCPT_LOCAL_PUTS_MAX 20000
#define RCPT_LOCAL_REAP_S 30

struct rcpt_local_put {
	char *key;
	char val[8];
	size_t vlen;
	uint32_t ttl;
};

struct rcpt_local {
	struct rcpt_local *next;
	struct event_base *base;
	struct rcpt_chan *chans;
	struct event *reap;
	struct store *store; /* of the queued writes */
	struct rcpt_local_put *puts;
	size_t n_puts, cap_puts;
	struct event *flush;
};

static pthread_mutex_t rcpt_local_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rcpt_local *rcpt_local_list;
static _Thread_local struct rcpt_local *rcpt_local_cur;

static void rcpt_local_reap(evutil_socket_t fd, short what, void *arg);
static void rcpt_local_flush(evutil_socket_t fd, short what, void *arg);

static struct rcpt_local *
rcpt_local_get(struct event_base *base)
{
	struct rcpt_local *l = rcpt_local_cur;
	if (l != NULL && l->base == base)
		return l;
	pthread_mutex_lock(&rcpt_local_lock);
	for (l = rcpt_local_list; l != NULL && l->base != base; l = l->next)
		;
	if (l == NULL) {
		l = xcalloc(1, sizeof(*l));
		l->base = base;
		l->reap = event_new(base, -1, EV_PERSIST, rcpt_local_reap, l);
		struct timeval tv = {RCPT_LOCAL_REAP_S, 0};
		event_add(l->reap, &tv);
		l->flush = evtimer_new(base, rcpt_local_flush, l);
		l->next = rcpt_local_list;
		rcpt_local_list = l;
	}
	pthread_mutex_unlock(&rcpt_local_lock);
	rcpt_local_cur = l;
	return l;
}

struct rcpt_chan *
rcpt_local_find(struct event_base *base, const char *ident)
{
	struct rcpt_local *l = rcpt_local_get(base);
	for (struct rcpt_chan *c = l->chans; c != NULL; c = c->next) {
		if (strcmp(c->ident, ident) == 0) {
			c->used_ms = mx_clock_mono_ms();
			return c;
		}
	}
	return NULL;
}

void
rcpt_local_add(struct event_base *base, struct rcpt_chan *c)
{
	struct rcpt_local *l = rcpt_local_get(base);
	c->used_ms = mx_clock_mono_ms();
	c->next = l->chans;
	l->chans = c;
}

static void
rcpt_local_reap(evutil_socket_t fd, short what, void *arg)
{
	struct rcpt_local *l = arg;
	uint64_t now = mx_clock_mono_ms();
	struct rcpt_chan **pp = &l->chans;
	(void)fd;
	(void)what;
	while (*pp != NULL) {
		struct rcpt_chan *c = *pp;
		if (now - c->used_ms > RCPT_CHAN_IDLE_MS && !c->busy(c)) {
			*pp = c->next;
			c->free(c);
			continue;
		}
		pp = &c->next;
	}
}

static void
rcpt_local_write(struct rcpt_local *l)
{
	if (l->n_puts == 0)
		return;
	struct store_txn *t = store_txn_begin(l->store);
	for (size_t i = 0; i < l->n_puts; i++) {
		struct rcpt_local_put *p = &l->puts[i];
		if (t != NULL)
			store_txn_put(t, p->key, strlen(p->key), p->val, p->vlen, p->ttl);
		free(p->key);
	}
	if (t != NULL)
		store_txn_commit(t); /* the store logs its failures */
	l->n_puts = 0;
}

static void
rcpt_local_flush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rcpt_local_write(arg);
}

void
rcpt_local_put(struct event_base *base, struct store *s, const char *key, const void *val,
               size_t vlen, uint32_t ttl_s)
{
	if (base == NULL) {
		store_put(s, key, strlen(key), val, vlen, ttl_s);
		return;
	}
	struct rcpt_local *l = rcpt_local_get(base);
	if (l->n_puts > 0 && l->store != s)
		rcpt_local_write(l);
	if (l->n_puts >= RCPT_LOCAL_PUTS_MAX || vlen > sizeof(l->puts[0].val))
		return;
	if (l->n_puts == l->cap_puts) {
		l->cap_puts = l->cap_puts ? l->cap_puts * 2 : 64;
		l->puts = xrealloc(l->puts, l->cap_puts * sizeof(*l->puts));
	}
	struct rcpt_local_put *p = &l->puts[l->n_puts++];
	p->key = xstrdup(key);
	memcpy(p->val, val, vlen);
	p->vlen = vlen;
	p->ttl = ttl_s;
	l->store = s;
	if (l->n_puts == 1) {
		struct timeval tv = {0, RCPT_CACHE_FLUSH_MS * 1000};
		evtimer_add(l->flush, &tv);
	}
}

void
rcpt_worker_end(struct event_base *base)
{
	pthread_mutex_lock(&rcpt_local_lock);
	struct rcpt_local **pp = &rcpt_local_list, *l = NULL;
	while (*pp != NULL && (*pp)->base != base)
		pp = &(*pp)->next;
	if (*pp != NULL) {
		l = *pp;
		*pp = l->next;
	}
	pthread_mutex_unlock(&rcpt_local_lock);
	if (l == NULL)
		return;
	if (rcpt_local_cur == l)
		rcpt_local_cur = NULL;
	rcpt_local_write(l);
	while (l->chans != NULL) {
		struct rcpt_chan *c = l->chans;
		l->chans = c->next;
		c->free(c);
	}
	rcpt_queries_drop(base); /* the lookups those connections dropped */
	event_free(l->reap);
	event_free(l->flush);
	free(l->puts);
	free(l);
}

void
rcpt_ident(char out[RCPT_IDENT_LEN], const char *kind, const char *const *parts, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		const char *p = parts[i] ? parts[i] : "\x01(null)";
		for (; *p; p++) {
			h ^= (unsigned char)*p;
			h *= 0x100000001b3ULL;
		}
		h ^= 0xff; /* separator */
		h *= 0x100000001b3ULL;
	}
	snprintf(out, RCPT_IDENT_LEN, "%s:%016llx", kind, (unsigned long long)h);
}
