/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	strmap - string-keyed hash map, open addressing with linear probing
 * DESCRIPTION
 *	Written here rather than taken from GLib so that the lower layers do
 *	not link GLib; see docs/design.md.  Deletion uses tombstones; the table
 *	grows at 70 % load counting tombstones.
 */
#include "strmap.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "hash.h"
#include "xalloc.h"

struct strmap_slot {
	char *key; /* NULL: empty; STRMAP_TOMB: deleted */
	size_t keylen;
	uint64_t hash;
	void *val;
};

struct strmap {
	struct strmap_slot *slots;
	size_t cap, count, used; /* used counts live + tombstones */
};

static char strmap_tomb_mark;
#define STRMAP_TOMB (&strmap_tomb_mark)

static uint64_t strmap_seed;
static pthread_once_t strmap_seed_once = PTHREAD_ONCE_INIT;

static void
strmap_seed_init(void)
{
	if (getrandom(&strmap_seed, sizeof(strmap_seed), 0) != sizeof(strmap_seed))
		strmap_seed = (uint64_t)(uintptr_t)&strmap_seed ^ 0x9e3779b97f4a7c15ull;
}

uint64_t
strmap_hash(const char *key, size_t keylen)
{
	pthread_once(&strmap_seed_once, strmap_seed_init);
	/* FNV-1a over the seed, then a final avalanche (splitmix64). */
	uint64_t h = 0xcbf29ce484222325ull ^ strmap_seed;
	for (size_t i = 0; i < keylen; i++) {
		h ^= (unsigned char)key[i];
		h *= 0x100000001b3ull;
	}
	return mx_mix64(h);
}

struct strmap *
strmap_new(void)
{
	struct strmap *m = xcalloc(1, sizeof(*m));
	m->cap = 16;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
	return m;
}

void
strmap_free(struct strmap *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key != NULL && m->slots[i].key != STRMAP_TOMB)
			free(m->slots[i].key);
	free(m->slots);
	free(m);
}

void
strmap_free_values(struct strmap *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key != NULL && m->slots[i].key != STRMAP_TOMB)
			free(m->slots[i].val);
	strmap_free(m);
}

static struct strmap_slot *
strmap_find(const struct strmap *m, const char *key, size_t keylen, uint64_t h)
{
	size_t mask = m->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct strmap_slot *s = &m->slots[i];
		if (s->key == NULL)
			return NULL;
		if (s->key != STRMAP_TOMB && s->hash == h && s->keylen == keylen &&
		    memcmp(s->key, key, keylen) == 0)
			return s;
	}
}

static void
strmap_grow(struct strmap *m)
{
	struct strmap_slot *old = m->slots;
	size_t oldcap = m->cap;
	size_t cap = m->count * 2 + 1 > oldcap / 2 ? oldcap * 2 : oldcap;
	m->slots = xcalloc(cap, sizeof(*m->slots));
	m->cap = cap;
	m->used = m->count;
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i].key == NULL || old[i].key == STRMAP_TOMB)
			continue;
		size_t j = old[i].hash & (cap - 1);
		while (m->slots[j].key != NULL)
			j = (j + 1) & (cap - 1);
		m->slots[j] = old[i];
	}
	free(old);
}

void *
strmap_put(struct strmap *m, const char *key, size_t keylen, void *val)
{
	uint64_t h = strmap_hash(key, keylen);
	struct strmap_slot *s = strmap_find(m, key, keylen, h);
	if (s != NULL) {
		void *prev = s->val;
		s->val = val;
		return prev;
	}
	if ((m->used + 1) * 10 >= m->cap * 7)
		strmap_grow(m);
	size_t mask = m->cap - 1;
	size_t i = h & mask;
	while (m->slots[i].key != NULL && m->slots[i].key != STRMAP_TOMB)
		i = (i + 1) & mask;
	if (m->slots[i].key == NULL)
		m->used++;
	/* keys are bytes (the classifier's are binary ids): not strndup,
	 * which would stop at a NUL and leave memcmp reading past the copy */
	char *k = xmalloc(keylen + 1);
	memcpy(k, key, keylen);
	k[keylen] = '\0';
	m->slots[i].key = k;
	m->slots[i].keylen = keylen;
	m->slots[i].hash = h;
	m->slots[i].val = val;
	m->count++;
	return NULL;
}

bool
strmap_get(const struct strmap *m, const char *key, size_t keylen, void **val)
{
	struct strmap_slot *s = strmap_find(m, key, keylen, strmap_hash(key, keylen));
	if (s == NULL)
		return false;
	if (val != NULL)
		*val = s->val;
	return true;
}

bool
strmap_del(struct strmap *m, const char *key, size_t keylen)
{
	struct strmap_slot *s = strmap_find(m, key, keylen, strmap_hash(key, keylen));
	if (s == NULL)
		return false;
	free(s->key);
	s->key = STRMAP_TOMB;
	s->val = NULL;
	m->count--;
	return true;
}

size_t
strmap_count(const struct strmap *m)
{
	return m->count;
}

void
strmap_foreach(const struct strmap *m,
               int (*cb)(const char *key, size_t keylen, void *val, void *arg), void *arg)
{
	for (size_t i = 0; i < m->cap; i++) {
		struct strmap_slot *s = &m->slots[i];
		if (s->key == NULL || s->key == STRMAP_TOMB)
			continue;
		if (cb(s->key, s->keylen, s->val, arg) != 0)
			return;
	}
}
