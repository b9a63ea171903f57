/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	classifier - online logistic regression over hashed features, three
 *	models, retrained exactly from the stored examples
 * DESCRIPTION
 *	Each message becomes three sets of feature indices (tokenize.c):
 *	  R  character 4-grams of the first bytes of the raw body
 *	  T  tokens of the headers, the Received chain, MIME structure, body
 *	  H  the header tokens alone
 *	Each model is logistic regression without bias over binary features
 *	scaled by 1/sqrt(n), trained online for CLASSIFIER_PASSES passes in an order
 *	that depends only on the examples (splitmix64 of each message's id), so
 *	the model is a pure function of the stored set: learning a message
 *	twice changes nothing, forgetting one and retraining is exact.  The
 *	spam log-odds are a weighted sum of the three models' log-odds.
 *	docs/classifier.md has the recipe and the measurements behind it.
 *	Store layout: "cls:e4:" + id (8 bytes) -> label and the three index
 *	lists, delta-coded varints (about 2.5 KB); "cls:model" -> header, then
 *	per model a directory of its 2^20 slots (a bit for each slot with a
 *	weight, and the rank of the first; 256 KB) and the weights of those
 *	slots alone (2.6 MB in all where 3 x 2^20 floats took 12 MB), read in
 *	place (zero-copy) by classify.
 * LIMITS
 *	CLASSIFIER_EXAMPLES_MAX examples; a retrain holds them all in memory
 *	(about 6 KB each, decoded).  No model until there are
 *	CLASSIFIER_MIN_EACH examples of each class.
 */
#include "classifier.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "clock.h"
#include "hash.h"
#include "tokenize.h"
#include "log.h"
#include "strmap.h"
#include "xalloc.h"

#define CLASSIFIER_PASSES 10
#define CLASSIFIER_PREFETCH 256 /* bytes of the next example's list to prefetch */
/* the stored model's directory: a word of 32 slots' bits and the rank of
 * its first slot among those with a weight */
struct classifier_dir {
	uint32_t bits, base;
};
#define CLASSIFIER_DIR_N (TOKENIZE_SPACE / 32)
#define CLASSIFIER_DIR_BYTES (sizeof(struct classifier_dir) * CLASSIFIER_DIR_N)
#define CLASSIFIER_LR 5.0
#define CLASSIFIER_EXAMPLES_MAX 500000
/* Fewer examples of either class than this: no model (the classifier says
 * nothing), as SpamAssassin's Bayes waits for 200 of each. */
#define CLASSIFIER_MIN_EACH 50

/* z = 0.2 zR + 0.4 zT + 0.4 zH; P(spam) = 1/(1+exp(-CLASSIFIER_CALIB z)) */
static const double classifier_mix[TOKENIZE_MODELS] = {0.2, 0.4, 0.4};
#define CLASSIFIER_CALIB 2.0
/* Thick threshold: an example already on the right side by this margin
 * does not move the weights (keeps easy mail from crowding out the rest). */
#define CLASSIFIER_TONE 3.0

static const char classifier_model_key[] = "cls:model";
static const char classifier_ex_prefix[] = "cls:e4:"; /* e4: R of the decoded text (e3: of the raw body) */
#define CLASSIFIER_EX_PREFIX_LEN 7
#define CLASSIFIER_EX_KEY_LEN (CLASSIFIER_EX_PREFIX_LEN + 8)

struct classifier_model_hdr {
	char magic[8]; /* "MXCLS04\0" */
	uint32_t bits, models;
	uint64_t spam, ham, version;
	int64_t trained_at;
	double mix[TOKENIZE_MODELS];
	double train_seconds;
	uint32_t slots[TOKENIZE_MODELS]; /* each model's stored weights */
	uint32_t spare;
};

/* A stored model, read in place. */
struct classifier_model {
	const struct classifier_dir *dir[TOKENIZE_MODELS];
	const float *w[TOKENIZE_MODELS];
	uint32_t n[TOKENIZE_MODELS];
};

/* Where the processor has it (any x86-64 since 2008), the popcount
 * instruction, chosen at load time; libgcc's bit twiddling otherwise. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CLASSIFIER_POPCNT __attribute__((target_clones("popcnt", "default")))
#else
#define CLASSIFIER_POPCNT
#endif

struct classifier {
	struct store *st;
};

struct classifier_item {
	uint64_t id;
	enum classifier_label label;
	uint32_t n[TOKENIZE_MODELS]; /* none for a forget */
	uint32_t *v[TOKENIZE_MODELS]; /* each set's indices, ascending, in the arena */
	const unsigned char *enc;     /* the sets as stored (after the label byte) */
	size_t enc_len;
};

/* The batch's feature sets and their encodings, one after another in
 * large mapped chunks (thousands of small blocks kept until the commit
 * would cost malloc more). Each thread that adds to the batch fills a
 * chunk of its own, without the lock: the first touch of fresh memory is
 * the costly part of the copy, and the other threads must not wait on it. */
#define CLASSIFIER_ARENA_CHUNK (8u << 20)
struct classifier_arena {
	struct classifier_arena *next;
	size_t bytes, used;
	_Alignas(8) unsigned char v[];
};

struct classifier_batch {
	struct classifier *c;
	struct classifier_item *items;
	size_t n, cap;
	struct strmap *index; /* id bytes -> item index + 1 */
	struct classifier_arena *arena; /* every thread's chunks */
	uint64_t serial;                /* tells batches apart for the threads' chunks */
	pthread_mutex_t lock; /* batch_add may be called from several threads */
};

/* The chunk this thread fills, and the batch it belongs to. */
static _Thread_local struct {
	uint64_t serial;
	struct classifier_arena *a;
	void *last; /* the last take, for classifier_arena_trim() */
} classifier_tl;
static atomic_uint_least64_t classifier_serials;

/* ---- keys and values ---------------------------------------------------- */

static void
classifier_ex_key(uint64_t id, char key[CLASSIFIER_EX_KEY_LEN])
{
	memcpy(key, classifier_ex_prefix, CLASSIFIER_EX_PREFIX_LEN);
	for (int i = 0; i < 8; i++)
		key[CLASSIFIER_EX_PREFIX_LEN + i] = (char)(id >> (56 - 8 * i));
}

static uint64_t
classifier_key_id(const char *key)
{
	uint64_t id = 0;
	for (int i = 0; i < 8; i++)
		id = (id << 8) | (unsigned char)key[CLASSIFIER_EX_PREFIX_LEN + i];
	return id;
}

/* An example's value: the label (1 byte), then for each model the number
 * of indices and the indices, ascending, as differences from the previous
 * one (from 0 for the first), all as LEB128 varints: about 1.5 bytes an
 * index instead of 4. */
static size_t
classifier_varint_put(unsigned char *p, uint32_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	return n;
}

/* Reads a varint of at most 32 bits; 0 when p..end holds none. */
static size_t
classifier_varint_get(const unsigned char *p, const unsigned char *end, uint32_t *v)
{
	uint32_t r = 0;
	for (size_t i = 0; i < 5 && p + i < end; i++) {
		r |= (uint32_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*v = r;
			return i + 1;
		}
	}
	return 0;
}

/* The most bytes classifier_sets_encode() writes for f. */
static size_t
classifier_sets_bound(const struct tokenize_sets *f)
{
	size_t n = 0;
	for (int m = 0; m < TOKENIZE_MODELS; m++)
		n += f->set[m].n;
	return 5 * (TOKENIZE_MODELS + n);
}

/* Writes the sets as an example's value holds them after its label byte
 * into v (classifier_sets_bound() bytes); returns the length. */
static size_t
classifier_sets_encode(const struct tokenize_sets *f, unsigned char *v)
{
	size_t o = 0;
	for (int m = 0; m < TOKENIZE_MODELS; m++) {
		const struct tokenize_set *st = &f->set[m];
		o += classifier_varint_put(v + o, (uint32_t)st->n);
		uint32_t prev = 0;
		for (size_t i = 0; i < st->n; i++) {
			o += classifier_varint_put(v + o, st->v[i] - prev);
			prev = st->v[i];
		}
	}
	return o;
}

/* ---- public: open, classify --------------------------------------------------- */

struct classifier *
classifier_open(struct store *st)
{
	struct classifier *c = xcalloc(1, sizeof(*c));
	c->st = st;
	return c;
}

void
classifier_close(struct classifier *c)
{
	free(c);
}

/* The sum of w over the indices, in four running sums: one sum would
 * wait on each addition before the next. The order is fixed, so the
 * result is too. */
static inline double
classifier_sum(const float *w, const uint32_t *idx, uint32_t n)
{
	double a = 0, b = 0, c = 0, d = 0;
	uint32_t i = 0;
	for (; i + 4 <= n; i += 4) {
		a += w[idx[i]];
		b += w[idx[i + 1]];
		c += w[idx[i + 2]];
		d += w[idx[i + 3]];
	}
	for (; i < n; i++)
		a += w[idx[i]];
	return (a + b) + (c + d);
}

double
classifier_dot(const float *w, const struct tokenize_set *s)
{
	if (s->n == 0)
		return 0;
	return classifier_sum(w, s->v, (uint32_t)s->n) / sqrt((double)s->n);
}

static double
classifier_z_mix(const float *w, const double mix[TOKENIZE_MODELS], const struct tokenize_sets *f)
{
	double z = 0;
	for (int k = 0; k < TOKENIZE_MODELS; k++)
		z += mix[k] * classifier_dot(w + (size_t)k * TOKENIZE_SPACE, &f->set[k]);
	return z;
}

double
classifier_z(const float *w, const struct tokenize_sets *f)
{
	return classifier_z_mix(w, classifier_mix, f);
}

double
classifier_probability(double z)
{
	return 1.0 / (1.0 + exp(-CLASSIFIER_CALIB * z));
}

/* The model in v: 1 with its header copied into *h and its directories
 * and weights read in place (*m), 0 when there is none, -1 when the one
 * stored is not usable (an older version's, or damaged). */
static int
classifier_model_read(struct store_view *v, struct classifier_model_hdr *h, struct classifier_model *m)
{
	const void *val;
	size_t len;
	if (store_view_get(v, classifier_model_key, sizeof(classifier_model_key) - 1, &val, &len) != MX_FOUND)
		return 0;
	if (len < sizeof(*h) || memcmp(val, "MXCLS04", 8) != 0)
		return -1;
	memcpy(h, val, sizeof(*h)); /* small values may sit unaligned */
	if (h->bits != TOKENIZE_BITS || h->models != TOKENIZE_MODELS)
		return -1;
	size_t want = sizeof(*h) + TOKENIZE_MODELS * CLASSIFIER_DIR_BYTES;
	for (int k = 0; k < TOKENIZE_MODELS; k++) {
		if (h->slots[k] > TOKENIZE_SPACE)
			return -1;
		want += (size_t)h->slots[k] * sizeof(float);
	}
	const char *p = (const char *)val + sizeof(*h);
	if (len != want || (uintptr_t)p % sizeof(uint32_t) != 0)
		return -1; /* a value this large sits on pages of its own: aligned */
	for (int k = 0; k < TOKENIZE_MODELS; k++) {
		m->dir[k] = (const struct classifier_dir *)(const void *)p;
		p += CLASSIFIER_DIR_BYTES;
	}
	for (int k = 0; k < TOKENIZE_MODELS; k++) {
		m->w[k] = (const float *)(const void *)p;
		m->n[k] = h->slots[k];
		p += (size_t)h->slots[k] * sizeof(float);
	}
	return 1;
}

/* Slot g's weight in a stored model: 0 for a slot without one (and for
 * a rank past the weights, which only a damaged store has). */
static inline float
classifier_model_weight(const struct classifier_dir *dir, const float *w, uint32_t n, uint32_t g)
{
	struct classifier_dir d = dir[g >> 5];
	uint32_t bit = 1u << (g & 31);
	if (!(d.bits & bit))
		return 0.0f;
	uint32_t r = d.base + (uint32_t)__builtin_popcount(d.bits & (bit - 1));
	return r < n ? w[r] : 0.0f;
}

/* classifier_z_mix() for a stored model: the same sums in the same order
 * (a slot without a weight adds 0, as the dense weights' zero did), so
 * the same result. */
CLASSIFIER_POPCNT static double
classifier_model_z(const struct classifier_model *m, const double mix[TOKENIZE_MODELS],
                   const struct tokenize_sets *f)
{
	double z = 0;
	for (int k = 0; k < TOKENIZE_MODELS; k++) {
		const uint32_t *idx = f->set[k].v;
		uint32_t n = (uint32_t)f->set[k].n;
		if (n == 0)
			continue;
		const struct classifier_dir *dir = m->dir[k];
		const float *w = m->w[k];
		uint32_t nw = m->n[k];
		double a = 0, b = 0, c = 0, d = 0;
		uint32_t i = 0;
		for (; i + 4 <= n; i += 4) {
			a += classifier_model_weight(dir, w, nw, idx[i]);
			b += classifier_model_weight(dir, w, nw, idx[i + 1]);
			c += classifier_model_weight(dir, w, nw, idx[i + 2]);
			d += classifier_model_weight(dir, w, nw, idx[i + 3]);
		}
		for (; i < n; i++)
			a += classifier_model_weight(dir, w, nw, idx[i]);
		z += mix[k] * (((a + b) + (c + d)) / sqrt((double)n));
	}
	return z;
}

double
classifier_classify(struct classifier *c, const struct mime_msg *m)
{
	if (c == NULL || c->st == NULL)
		return -1;
	struct store_view *v = store_view_begin(c->st);
	if (v == NULL)
		return -1;
	double p = -1;
	struct classifier_model_hdr h;
	struct classifier_model model;
	if (classifier_model_read(v, &h, &model) == 1) {
		struct tokenize_sets f;
		tokenize_extract(m, &f);
		p = classifier_probability(classifier_model_z(&model, h.mix, &f));
		tokenize_clear(&f);
	}
	store_view_end(v);
	return p;
}

/* ---- batches -------------------------------------------------------------------- */

struct classifier_batch *
classifier_batch_begin(struct classifier *c)
{
	if (c == NULL || c->st == NULL)
		return NULL;
	struct classifier_batch *b = xcalloc(1, sizeof(*b));
	b->c = c;
	b->index = strmap_new();
	b->serial = atomic_fetch_add(&classifier_serials, 1) + 1;
	pthread_mutex_init(&b->lock, NULL);
	return b;
}

/* The label the store holds for id, or -1. */
static int
classifier_stored_label(struct classifier *c, uint64_t id)
{
	char key[CLASSIFIER_EX_KEY_LEN];
	classifier_ex_key(id, key);
	struct store_view *v = store_view_begin(c->st);
	if (v == NULL)
		return -1;
	const void *val;
	size_t len;
	int label = -1;
	if (store_view_get(v, key, sizeof(key), &val, &len) == MX_FOUND && len >= 1)
		label = *(const unsigned char *)val;
	store_view_end(v);
	return label;
}

/* What adding id with label to the batch means, given the label the store
 * holds for it (-1: none); *add says whether the message's features must
 * be put in an item for it (a new one, or the batch's forget-only one
 * that is learned after all). Called with the batch locked. */
static enum classifier_learn_rc
classifier_batch_decide(struct classifier_batch *b, uint64_t id, enum classifier_label label, int stored,
                        bool *add)
{
	char idb[8];
	memcpy(idb, &id, 8);
	void *v;
	*add = false;
	if (strmap_get(b->index, idb, 8, &v)) { /* seen in this batch */
		struct classifier_item *it = &b->items[(uintptr_t)v - 1];
		if (it->label == label)
			return CLASSIFIER_DUPLICATE;
		if (label != CLASSIFIER_FORGET && it->enc == NULL) {
			*add = true; /* forgotten first: its features are needed now */
			return CLASSIFIER_RELABELED;
		}
		it->label = label;
		return label == CLASSIFIER_FORGET ? CLASSIFIER_FORGOTTEN : CLASSIFIER_RELABELED;
	}
	if (label == CLASSIFIER_FORGET) {
		*add = stored >= 0;
		return stored < 0 ? CLASSIFIER_UNKNOWN : CLASSIFIER_FORGOTTEN;
	}
	if (stored == (int)label)
		return CLASSIFIER_DUPLICATE;
	*add = true;
	return stored < 0 ? CLASSIFIER_LEARNED : CLASSIFIER_RELABELED;
}

/* len bytes of zeroed memory, mapped: pages that are never touched cost
 * nothing. Not on huge pages: a fresh huge page is zeroed whole, and on a
 * virtual machine whose host reclaims free memory its first touch costs
 * up to ten times as much a megabyte as small pages do (measured: 2 ms a
 * MB against 0.3 ms). */
static void *
classifier_map_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		abort(); /* as xmalloc does */
	return p;
}

static void
classifier_map_free(void *p, size_t len)
{
	if (p != NULL)
		munmap(p, len);
}

/* Room for len bytes (4-byte aligned) in this thread's chunk of the
 * batch's arena. Takes the batch's lock only for a new chunk. */
static void *
classifier_arena_take(struct classifier_batch *b, size_t len)
{
	len = (len + 3) & ~(size_t)3;
	struct classifier_arena *a = classifier_tl.serial == b->serial ? classifier_tl.a : NULL;
	if (a == NULL || a->bytes - sizeof(*a) - a->used < len) {
		size_t bytes = sizeof(*a) + len;
		if (bytes < CLASSIFIER_ARENA_CHUNK)
			bytes = CLASSIFIER_ARENA_CHUNK;
		a = classifier_map_alloc(bytes);
		a->used = 0;
		a->bytes = bytes;
		pthread_mutex_lock(&b->lock);
		a->next = b->arena;
		b->arena = a;
		pthread_mutex_unlock(&b->lock);
		classifier_tl.serial = b->serial;
		classifier_tl.a = a;
	}
	void *v = a->v + a->used;
	a->used += len;
	classifier_tl.last = v;
	return v;
}

/* Shrinks this thread's last take from the arena to len bytes. */
static void
classifier_arena_trim(void *v, size_t len)
{
	struct classifier_arena *a = classifier_tl.a;
	if (v != classifier_tl.last || a == NULL)
		return;
	a->used = (size_t)((unsigned char *)v - a->v) + ((len + 3) & ~(size_t)3);
}

static void
classifier_batch_free(struct classifier_batch *b)
{
	while (b->arena != NULL) {
		struct classifier_arena *a = b->arena;
		b->arena = a->next;
		classifier_map_free(a, a->bytes);
	}
	free(b->items);
	strmap_free(b->index);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

/* The batch's item for id, or NULL. */
static const struct classifier_item *
classifier_batch_item(const struct classifier_batch *b, uint64_t id)
{
	char idb[8];
	memcpy(idb, &id, 8);
	void *v;
	if (!strmap_get(b->index, idb, 8, &v))
		return NULL;
	return &b->items[(uintptr_t)v - 1];
}

/* A message's sets and their encoding, copied into the arena. */
struct classifier_copy {
	uint32_t n[TOKENIZE_MODELS];
	uint32_t *v[TOKENIZE_MODELS];
	const unsigned char *enc;
	size_t enc_len;
};

/* Copies f and its encoding into this thread's chunk of b's arena. */
static void
classifier_copy_make(struct classifier_batch *b, const struct tokenize_sets *f, struct classifier_copy *cp)
{
	for (int m = 0; m < TOKENIZE_MODELS; m++) {
		uint32_t *v = classifier_arena_take(b, f->set[m].n * sizeof(uint32_t));
		memcpy(v, f->set[m].v, f->set[m].n * sizeof(uint32_t));
		cp->n[m] = (uint32_t)f->set[m].n;
		cp->v[m] = v;
	}
	unsigned char *e = classifier_arena_take(b, classifier_sets_bound(f));
	cp->enc_len = classifier_sets_encode(f, e);
	classifier_arena_trim(e, cp->enc_len);
	cp->enc = e;
}

/* Puts id in the batch: a new item, or the forget-only one it has, with
 * the copy of the message's sets (NULL: none). Called with the batch
 * locked. */
static void
classifier_batch_put(struct classifier_batch *b, uint64_t id, enum classifier_label label,
                     const struct classifier_copy *cp)
{
	struct classifier_item *it = (struct classifier_item *)classifier_batch_item(b, id);
	bool fresh = it == NULL;
	if (fresh) {
		b->items = xgrow(b->items, &b->cap, b->n + 1, sizeof(*b->items));
		it = &b->items[b->n];
		memset(it, 0, sizeof(*it));
	}
	it->id = id;
	it->label = label;
	if (cp != NULL) {
		for (int m = 0; m < TOKENIZE_MODELS; m++) {
			it->n[m] = cp->n[m];
			it->v[m] = cp->v[m];
		}
		it->enc = cp->enc;
		it->enc_len = cp->enc_len;
	}
	if (!fresh)
		return;
	b->n++;
	char idb[8];
	memcpy(idb, &id, 8);
	strmap_put(b->index, idb, 8, (void *)(uintptr_t)b->n);
}

enum classifier_learn_rc
classifier_batch_add(struct classifier_batch *b, const struct mime_msg *m,
                     enum classifier_label label)
{
	uint64_t id = tokenize_message_id(m);
	bool add;
	/* the store does not change until the commit: ask it once, unlocked */
	int stored = classifier_stored_label(b->c, id);
	pthread_mutex_lock(&b->lock);
	enum classifier_learn_rc rc = classifier_batch_decide(b, id, label, stored, &add);
	if (add && label == CLASSIFIER_FORGET)
		classifier_batch_put(b, id, label, NULL);
	pthread_mutex_unlock(&b->lock);
	if (!add || label == CLASSIFIER_FORGET)
		return rc;
	/* the costly part, outside the lock; encoded here too, so that the
	 * commit only copies */
	struct tokenize_sets f;
	tokenize_extract(m, &f);
	tokenize_sort(&f);
	struct classifier_copy cp;
	classifier_copy_make(b, &f, &cp);
	tokenize_clear(&f);
	pthread_mutex_lock(&b->lock);
	rc = classifier_batch_decide(b, id, label, stored, &add); /* another thread may have added it */
	if (add)
		classifier_batch_put(b, id, label, &cp);
	pthread_mutex_unlock(&b->lock);
	return rc;
}

/* ---- training ----------------------------------------------------------------------- */


struct classifier_order {
	uint64_t key;
	uint32_t i;
};

/* Sorts o by key: LSD radix sort, 11 bits a round (a comparison sort of
 * each pass's order was a tenth of the training). The keys are distinct:
 * splitmix64 is a bijection, so id ^ salt -> key is one too. */
static void
classifier_order_sort(struct classifier_order *o, size_t n)
{
	enum { BITS = 11, BUCKETS = 1 << BITS };
	struct classifier_order *tmp = xmalloc((n ? n : 1) * sizeof(*tmp)), *from = o, *to = tmp;
	size_t *count = xmalloc(BUCKETS * sizeof(size_t));
	for (int shift = 0; shift < 64; shift += BITS) {
		memset(count, 0, BUCKETS * sizeof(size_t));
		for (size_t i = 0; i < n; i++)
			count[(from[i].key >> shift) & (BUCKETS - 1)]++;
		size_t sum = 0;
		for (size_t b = 0; b < BUCKETS; b++) {
			size_t c = count[b];
			count[b] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			to[count[(from[i].key >> shift) & (BUCKETS - 1)]++] = from[i];
		struct classifier_order *t = from;
		from = to;
		to = t;
	}
	if (from != o) /* an odd number of rounds */
		memcpy(o, from, n * sizeof(*o));
	free(count);
	free(tmp);
}

struct classifier_training;

/* One thread's share of a training: models first..last. */
struct classifier_job {
	struct classifier_training *tr;
	int first, last;
};

/* A model trained on its weights renumbered densely: of the 2^20 slots
 * the examples use a few hundred thousand (R: 270,000 for the 4,334 of
 * the corpus), which fit in the L2 cache where the whole model (4 MB)
 * does not, and every pass reads each example's weights. A slot's new
 * number is its rank among the slots in use, so the lists, rewritten in
 * place, stay ascending. The arithmetic is the same, so the weights are
 * too. */
struct classifier_dense {
	uint32_t *index; /* rank -> slot */
	float *w;        /* rank -> weight */
	uint32_t n;      /* slots in use */
	uint64_t *used;  /* the slots in use, a bit each */
	uint32_t *rank;  /* per word of used: the rank of its first slot */
};

/* A training under way. The models are independent; R has about twice
 * the features of T and H together, so one job trains R and the other
 * T and H, after it has marked and rewritten its share of R's lists (see
 * classifier_share_mark()). classifier_train() runs the second job on
 * the caller; a learn's commit runs both on threads of their own while
 * it writes and syncs the examples. */
#define CLASSIFIER_THREADS 2
struct classifier_training {
	struct classifier_example *ex;
	size_t n;
	struct classifier_order *orders[CLASSIFIER_PASSES];
	struct classifier_job job[CLASSIFIER_THREADS];
	struct classifier_dense dense[TOKENIZE_MODELS];
	/* R's slots are marked, then its lists rewritten, by both jobs, in
	 * chunks of examples */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t *r_used[CLASSIFIER_THREADS]; /* each job's marks */
	atomic_size_t r_mark_next;            /* the next chunk to mark */
	size_t r_marked;                      /* examples marked */
	bool r_ready;                         /* R's ranks are known */
	atomic_size_t r_next;                 /* the next chunk to rewrite */
	size_t r_done;                        /* examples rewritten */
	pthread_t th[CLASSIFIER_THREADS];
	bool started[CLASSIFIER_THREADS];
	bool done; /* joined: the weights are in dense */
};
#define CLASSIFIER_REMAP_CHUNK 64

/* Marks the slots model k's lists of examples from..to-1 use. */
static void
classifier_dense_mark(const struct classifier_training *tr, int k, uint64_t *used, size_t from, size_t to)
{
	/* locals: through ex[j] the compiler would reload the list and its
	 * length after every store to used[] */
	for (size_t j = from; j < to; j++) {
		const uint32_t *v = tr->ex[j].idx[k];
		for (uint32_t i = 0, m = tr->ex[j].n[k]; i < m; i++)
			used[v[i] >> 6] |= 1ull << (v[i] & 63);
	}
}

/* Ranks the slots model k's examples use: used (taken) has them marked. */
CLASSIFIER_POPCNT static void
classifier_dense_rank(struct classifier_training *tr, int k, uint64_t *used)
{
	struct classifier_dense *d = &tr->dense[k];
	uint32_t *rank = xmalloc(TOKENIZE_SPACE / 64 * sizeof(uint32_t));
	uint32_t slots = 0;
	for (size_t i = 0; i < TOKENIZE_SPACE / 64; i++) {
		rank[i] = slots;
		slots += (uint32_t)__builtin_popcountll(used[i]);
	}
	d->n = slots;
	d->w = xcalloc(slots ? slots : 1, sizeof(float));
	d->index = xmalloc((slots ? slots : 1) * sizeof(uint32_t));
	for (size_t i = 0, s = 0; i < TOKENIZE_SPACE / 64; i++)
		for (uint64_t b = used[i]; b != 0; b &= b - 1)
			d->index[s++] = (uint32_t)(i * 64 + (size_t)__builtin_ctzll(b));
	d->used = used;
	d->rank = rank;
}

/* Rewrites model k's lists of examples from..to-1 with the slots' ranks. */
CLASSIFIER_POPCNT static void
classifier_dense_remap(struct classifier_training *tr, int k, size_t from, size_t to)
{
	const uint64_t *used = tr->dense[k].used;
	const uint32_t *rank = tr->dense[k].rank;
	for (size_t j = from; j < to; j++) {
		uint32_t *v = tr->ex[j].idx[k];
		for (uint32_t i = 0, m = tr->ex[j].n[k]; i < m; i++) {
			uint32_t g = v[i];
			v[i] = rank[g >> 6] + (uint32_t)__builtin_popcountll(used[g >> 6] & ((1ull << (g & 63)) - 1));
		}
	}
}

/* Takes chunks of R's examples to mark (in the job's own bitmap) until
 * none is left, and hands the bitmap over; the R job waits for every
 * chunk, merges the bitmaps and ranks the slots. Both jobs do it, and
 * then the same for the rewriting (classifier_share_remap()), so that
 * R's passes, the longest part of a training, start sooner; a job that
 * runs alone (no second thread) does every chunk. */
static void
classifier_share_mark(struct classifier_training *tr, int job)
{
	uint64_t *used = xcalloc(TOKENIZE_SPACE / 64, sizeof(uint64_t));
	size_t mine = 0;
	for (;;) {
		size_t from = atomic_fetch_add(&tr->r_mark_next, CLASSIFIER_REMAP_CHUNK);
		if (from >= tr->n)
			break;
		size_t to = from + CLASSIFIER_REMAP_CHUNK < tr->n ? from + CLASSIFIER_REMAP_CHUNK : tr->n;
		classifier_dense_mark(tr, 0, used, from, to);
		mine += to - from;
	}
	if (mine == 0) {
		/* nothing marked: nothing to hand over (the R job may be done
		 * with the marks already) */
		free(used);
		used = NULL;
	}
	pthread_mutex_lock(&tr->mu);
	if (used != NULL)
		tr->r_used[job] = used;
	tr->r_marked += mine;
	if (tr->r_marked == tr->n)
		pthread_cond_broadcast(&tr->cv);
	pthread_mutex_unlock(&tr->mu);
}

/* Takes chunks of R's lists to rewrite until none is left. */
static void
classifier_share_remap(struct classifier_training *tr)
{
	for (;;) {
		size_t from = atomic_fetch_add(&tr->r_next, CLASSIFIER_REMAP_CHUNK);
		if (from >= tr->n)
			return;
		size_t to = from + CLASSIFIER_REMAP_CHUNK < tr->n ? from + CLASSIFIER_REMAP_CHUNK : tr->n;
		classifier_dense_remap(tr, 0, from, to);
		pthread_mutex_lock(&tr->mu);
		tr->r_done += to - from;
		if (tr->r_done == tr->n)
			pthread_cond_broadcast(&tr->cv);
		pthread_mutex_unlock(&tr->mu);
	}
}

static void
classifier_dense_free(struct classifier_dense *d)
{
	free(d->w);
	free(d->index);
	free(d->used);
	free(d->rank);
	memset(d, 0, sizeof(*d));
}

/* Writes the stored form's directory for d. */
CLASSIFIER_POPCNT static void
classifier_dense_dir(const struct classifier_dense *d, struct classifier_dir *dir)
{
	for (size_t i = 0; i < TOKENIZE_SPACE / 64; i++) {
		uint32_t lo = (uint32_t)d->used[i], hi = (uint32_t)(d->used[i] >> 32);
		dir[2 * i] = (struct classifier_dir){lo, d->rank[i]};
		dir[2 * i + 1] = (struct classifier_dir){hi, d->rank[i] + (uint32_t)__builtin_popcount(lo)};
	}
}

/* Writes the weights to their indices in w (the model's 2^20, zeroed). */
static void
classifier_dense_put(const struct classifier_dense *d, float *w)
{
	for (uint32_t s = 0; s < d->n; s++)
		w[d->index[s]] = d->w[s];
}

/* The passes over model k's lists, rewritten already. */
static void
classifier_train_passes(struct classifier_training *tr, int k)
{
	const struct classifier_example *ex = tr->ex;
	size_t n = tr->n;
	float *w = tr->dense[k].w;
	for (int p = 0; p < CLASSIFIER_PASSES; p++) {
		const struct classifier_order *ord = tr->orders[p];
		for (size_t j = 0; j < n; j++) {
			/* the examples come in a random order, each list a cache
			 * miss to start with: ask for the next ones' early */
			if (j + 2 < n)
				__builtin_prefetch(&ex[ord[j + 2].i]);
			if (j + 1 < n) {
				const struct classifier_example *nx = &ex[ord[j + 1].i];
				const char *l = (const char *)nx->idx[k];
				size_t bytes = (size_t)nx->n[k] * sizeof(uint32_t);
				for (size_t o = 0; o < bytes && o < CLASSIFIER_PREFETCH; o += 64)
					__builtin_prefetch(l + o);
			}
			const struct classifier_example *e = &ex[ord[j].i];
			uint32_t m = e->n[k];
			if (m == 0)
				continue;
			const uint32_t *idx = e->idx[k];
			double sc = 1.0 / sqrt((double)m);
			double z = sc * classifier_sum(w, idx, m);
			if (e->label ? z > CLASSIFIER_TONE : z < -CLASSIFIER_TONE)
				continue;
			double g = (double)e->label - 1.0 / (1.0 + exp(-z));
			float step = (float)(CLASSIFIER_LR * g * sc);
			for (uint32_t i = 0; i < m; i++)
				w[idx[i]] += step;
		}
	}
}

static void *
classifier_train_job(void *arg)
{
	const struct classifier_job *t = arg;
	struct classifier_training *tr = t->tr;
	if (t->first == 0) {
		/* R: mark and rank its slots, rewrite its lists, each with the
		 * other job's help */
		classifier_share_mark(tr, 0);
		pthread_mutex_lock(&tr->mu);
		while (tr->r_marked < tr->n)
			pthread_cond_wait(&tr->cv, &tr->mu);
		uint64_t *used = tr->r_used[0], *other = tr->r_used[1];
		tr->r_used[0] = tr->r_used[1] = NULL;
		pthread_mutex_unlock(&tr->mu);
		if (used == NULL) {
			used = other;
			other = NULL;
		}
		if (used == NULL)
			used = xcalloc(TOKENIZE_SPACE / 64, sizeof(uint64_t)); /* no examples */
		for (size_t i = 0; other != NULL && i < TOKENIZE_SPACE / 64; i++)
			used[i] |= other[i];
		free(other);
		classifier_dense_rank(tr, 0, used);
		pthread_mutex_lock(&tr->mu);
		tr->r_ready = true;
		pthread_cond_broadcast(&tr->cv);
		pthread_mutex_unlock(&tr->mu);
		classifier_share_remap(tr);
		pthread_mutex_lock(&tr->mu);
		while (tr->r_done < tr->n)
			pthread_cond_wait(&tr->cv, &tr->mu);
		pthread_mutex_unlock(&tr->mu);
		classifier_train_passes(tr, 0);
		return NULL;
	}
	/* help with R first (the R job runs before this one when they share
	 * a thread, and leaves nothing to help with) */
	classifier_share_mark(tr, 1);
	pthread_mutex_lock(&tr->mu);
	while (!tr->r_ready)
		pthread_cond_wait(&tr->cv, &tr->mu);
	pthread_mutex_unlock(&tr->mu);
	classifier_share_remap(tr);
	for (int k = t->first; k <= t->last; k++) {
		uint64_t *used = xcalloc(TOKENIZE_SPACE / 64, sizeof(uint64_t));
		classifier_dense_mark(tr, k, used, 0, tr->n);
		classifier_dense_rank(tr, k, used);
		classifier_dense_remap(tr, k, 0, tr->n);
		classifier_train_passes(tr, k);
	}
	return NULL;
}

/* Starts training on ex (whose index lists it rewrites): the first job on
 * a thread, and with both, the second too (else classifier_train_rest()
 * runs it). */
static void
classifier_train_start(struct classifier_training *tr, struct classifier_example *ex, size_t n, bool both)
{
	memset(tr, 0, sizeof(*tr));
	tr->ex = ex;
	tr->n = n;
	pthread_mutex_init(&tr->mu, NULL);
	pthread_cond_init(&tr->cv, NULL);
	atomic_init(&tr->r_mark_next, 0);
	atomic_init(&tr->r_next, 0);
	/* the pass orders depend only on the examples */
	for (int p = 0; p < CLASSIFIER_PASSES; p++) {
		struct classifier_order *o = xmalloc((n ? n : 1) * sizeof(*o));
		uint64_t salt = (uint64_t)(p + 1) * 0x9E3779B97F4A7C15ull;
		for (size_t i = 0; i < n; i++) {
			o[i].key = mx_splitmix64(ex[i].id ^ salt);
			o[i].i = (uint32_t)i;
		}
		classifier_order_sort(o, n);
		tr->orders[p] = o;
	}
	tr->job[0] = (struct classifier_job){tr, 0, 0};
	tr->job[1] = (struct classifier_job){tr, 1, TOKENIZE_MODELS - 1};
	for (int i = 0; i < (both ? CLASSIFIER_THREADS : 1); i++)
		tr->started[i] = pthread_create(&tr->th[i], NULL, classifier_train_job, &tr->job[i]) == 0;
}

/* Trains the models that have no thread of their own, here, in order (the
 * R job first: the other waits for its ranks). */
static void
classifier_train_rest(struct classifier_training *tr)
{
	for (int i = 0; i < CLASSIFIER_THREADS && !tr->done; i++)
		if (!tr->started[i])
			classifier_train_job(&tr->job[i]);
}

/* Waits for the threads; after classifier_train_rest(), the training is
 * done and the weights are in tr->dense. */
static void
classifier_train_join(struct classifier_training *tr)
{
	if (tr->done)
		return;
	tr->done = true;
	for (int i = 0; i < CLASSIFIER_THREADS; i++)
		if (tr->started[i])
			pthread_join(tr->th[i], NULL);
	for (int p = 0; p < CLASSIFIER_PASSES; p++)
		free(tr->orders[p]);
	pthread_mutex_destroy(&tr->mu);
	pthread_cond_destroy(&tr->cv);
}

static void
classifier_train_free(struct classifier_training *tr)
{
	for (int k = 0; k < TOKENIZE_MODELS; k++)
		classifier_dense_free(&tr->dense[k]);
}

void
classifier_train(const struct classifier_example *ex, size_t n, float *w)
{
	/* the training rewrites the lists: on copies */
	struct classifier_example *cp = xmalloc((n ? n : 1) * sizeof(*cp));
	if (n > 0)
		memcpy(cp, ex, n * sizeof(*cp));
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < TOKENIZE_MODELS; k++) {
			uint32_t *v = xmalloc((cp[i].n[k] ? cp[i].n[k] : 1) * sizeof(uint32_t));
			if (cp[i].n[k] > 0)
				memcpy(v, ex[i].idx[k], cp[i].n[k] * sizeof(uint32_t));
			cp[i].idx[k] = v;
		}
	struct classifier_training tr;
	classifier_train_start(&tr, cp, n, false);
	classifier_train_rest(&tr);
	classifier_train_join(&tr);
	for (int k = 0; k < TOKENIZE_MODELS; k++)
		classifier_dense_put(&tr.dense[k], w + (size_t)k * TOKENIZE_SPACE);
	classifier_train_free(&tr);
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < TOKENIZE_MODELS; k++)
			free(cp[i].idx[k]);
	free(cp);
}

/* A stored example before decoding: its value after the label byte. */
struct classifier_raw {
	const unsigned char *p;
	size_t len;
	uint64_t id;
	unsigned label;
};

/* One thread's share of the decoding. */
struct classifier_decode {
	const struct classifier_raw *raw;
	size_t n;
	uint32_t *idx; /* the lists, one after another */
	size_t nidx, cap;
	size_t *off;                      /* per example: its lists' start, SIZE_MAX if damaged */
	uint32_t (*cnt)[TOKENIZE_MODELS]; /* per example: the lists' lengths */
};

/* The examples a retrain uses: the stored ones the batch leaves alone,
 * decoded (on two threads), and the batch's own. */
struct classifier_collect {
	const struct classifier_batch *b; /* its items are taken as they are */
	struct classifier_raw *raw;
	size_t nraw, rawcap;
	struct classifier_decode dec[2];
	struct classifier_example *ex;
	size_t n, cap;
	uint64_t spam, ham;
	bool overflow;
};

static void
classifier_collect_free(struct classifier_collect *c)
{
	for (int i = 0; i < 2; i++) {
		if (c->dec[i].idx != NULL)
			classifier_map_free(c->dec[i].idx, c->dec[i].cap * sizeof(uint32_t));
		free(c->dec[i].off);
		free(c->dec[i].cnt);
	}
	free(c->raw);
	free(c->ex);
}

/* Appends an example; its index lists are filled by the caller. */
static struct classifier_example *
classifier_collect_add(struct classifier_collect *c, uint64_t id, unsigned label)
{
	c->ex = xgrow(c->ex, &c->cap, c->n + 1, sizeof(*c->ex));
	struct classifier_example *e = &c->ex[c->n++];
	e->id = id;
	e->label = label == CLASSIFIER_SPAM;
	if (e->label)
		c->spam++;
	else
		c->ham++;
	return e;
}

/* Whether the item holds a message's features (a forget's does not). */
static bool
classifier_item_full(const struct classifier_item *it)
{
	return it->n[0] || it->n[1] || it->n[2];
}

static int
classifier_collect_one(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
	struct classifier_collect *c = arg;
	if (klen != CLASSIFIER_EX_KEY_LEN || vlen < 1 + TOKENIZE_MODELS)
		return 0;
	if (c->nraw >= CLASSIFIER_EXAMPLES_MAX) {
		c->overflow = true;
		return 1;
	}
	const unsigned char *p = val;
	unsigned label = *p;
	if (label > CLASSIFIER_SPAM)
		return 0; /* damaged: skip */
	uint64_t id = classifier_key_id(key);
	const struct classifier_item *it = c->b ? classifier_batch_item(c->b, id) : NULL;
	if (it != NULL && (it->label == CLASSIFIER_FORGET || classifier_item_full(it)))
		return 0; /* the batch forgets or replaces it */
	c->raw = xgrow(c->raw, &c->rawcap, c->nraw + 1, sizeof(*c->raw));
	c->raw[c->nraw++] = (struct classifier_raw){p + 1, vlen - 1, id, label};
	return 0;
}

/* Decodes one example's lists onto d->idx; false if it is damaged. */
static bool
classifier_decode_one(struct classifier_decode *d, const struct classifier_raw *r, uint32_t cnt[TOKENIZE_MODELS])
{
	const unsigned char *p = r->p, *end = p + r->len;
	size_t start = d->nidx;
	for (int m = 0; m < TOKENIZE_MODELS; m++) {
		uint32_t n;
		size_t used = classifier_varint_get(p, end, &n);
		/* each index takes at least a byte: a count beyond that is damage */
		if (used == 0 || n > (size_t)(end - p))
			goto damaged;
		p += used;
		if (d->nidx + n > d->cap)
			goto damaged; /* cannot happen: cap is the values' bytes */
		uint32_t *out = d->idx + d->nidx, prev = 0;
		for (uint32_t i = 0; i < n; i++) {
			uint32_t v;
			if (p < end && *p < 0x80) { /* most differences take one byte */
				v = *p++;
			} else {
				used = classifier_varint_get(p, end, &v);
				if (used == 0)
					goto damaged;
				p += used;
			}
			if ((i > 0 && v == 0) || v >= TOKENIZE_SPACE - prev)
				goto damaged;
			prev += v;
			out[i] = prev;
		}
		d->nidx += n;
		cnt[m] = n;
	}
	if (p == end)
		return true;
damaged:
	d->nidx = start;
	return false;
}

static void *
classifier_decode_run(void *arg)
{
	struct classifier_decode *d = arg;
	/* an index takes at least a byte: the values' length bounds the
	 * lists, which go in a mapping (untouched pages cost nothing) rather
	 * than a growing heap block copied at every doubling */
	size_t bound = 1;
	for (size_t i = 0; i < d->n; i++)
		bound += d->raw[i].len;
	d->cap = bound;
	d->idx = classifier_map_alloc(bound * sizeof(uint32_t));
	d->off = xmalloc((d->n ? d->n : 1) * sizeof(size_t));
	d->cnt = xmalloc((d->n ? d->n : 1) * sizeof(*d->cnt));
	for (size_t i = 0; i < d->n; i++) {
		size_t start = d->nidx;
		d->off[i] = classifier_decode_one(d, &d->raw[i], d->cnt[i]) ? start : SIZE_MAX;
	}
	return NULL;
}

/* Decodes the stored examples gathered by the scan, half on a thread of
 * its own, and adds them. */
static void
classifier_collect_decode(struct classifier_collect *c)
{
	size_t half = c->nraw >= 256 ? c->nraw / 2 : 0;
	c->dec[0] = (struct classifier_decode){.raw = c->raw, .n = half};
	c->dec[1] = (struct classifier_decode){.raw = c->raw + half, .n = c->nraw - half};
	pthread_t th;
	bool started = half > 0 && pthread_create(&th, NULL, classifier_decode_run, &c->dec[0]) == 0;
	classifier_decode_run(&c->dec[1]);
	if (started)
		pthread_join(th, NULL);
	else
		classifier_decode_run(&c->dec[0]);
	for (int h = 0; h < 2; h++) {
		const struct classifier_decode *d = &c->dec[h];
		for (size_t i = 0; i < d->n; i++) {
			if (d->off[i] == SIZE_MAX)
				continue; /* damaged: skipped */
			struct classifier_example *e = classifier_collect_add(c, d->raw[i].id, d->raw[i].label);
			size_t off = d->off[i];
			for (int m = 0; m < TOKENIZE_MODELS; m++) {
				e->n[m] = d->cnt[i][m];
				e->idx[m] = d->idx + off;
				off += d->cnt[i][m];
			}
		}
	}
}

/* A retrain under way: the examples and the training. */
struct classifier_retrain {
	struct classifier_collect col;
	struct classifier_training tr;
	bool training;
	uint64_t t0;
};

/* Gathers the examples the store holds once the batch (NULL: none) is
 * written (the stored ones the batch leaves alone, decoded, and the
 * batch's own, as they are in memory) and, with enough of both classes, starts training
 * on them; classifier_retrain_end() finishes. The training order depends
 * only on the examples' ids, so the model is the same as if the store
 * had been read after the writes. */
static int
classifier_retrain_begin(struct store_txn *t, const struct classifier_batch *b, struct classifier_retrain *r)
{
	memset(r, 0, sizeof(*r));
	struct classifier_collect *col = &r->col;
	col->b = b;
	if (store_txn_scan(t, classifier_ex_prefix, CLASSIFIER_EX_PREFIX_LEN, classifier_collect_one, col) < 0) {
		classifier_collect_free(col);
		return -1;
	}
	classifier_collect_decode(col);
	for (size_t i = 0; b != NULL && i < b->n && !col->overflow; i++) {
		const struct classifier_item *it = &b->items[i];
		if (it->label == CLASSIFIER_FORGET || !classifier_item_full(it))
			continue;
		if (col->n >= CLASSIFIER_EXAMPLES_MAX) {
			col->overflow = true;
			break;
		}
		struct classifier_example *e = classifier_collect_add(col, it->id, it->label);
		for (int m = 0; m < TOKENIZE_MODELS; m++) {
			e->n[m] = it->n[m];
			e->idx[m] = it->v[m];
		}
	}
	if (col->overflow)
		log_warn("classifier: more than %d examples; the rest are not used",
		         CLASSIFIER_EXAMPLES_MAX);
	if (col->spam < CLASSIFIER_MIN_EACH || col->ham < CLASSIFIER_MIN_EACH)
		return 0; /* too few to judge by: no model until there are enough of both */
	r->t0 = mx_clock_mono_ms();
	classifier_train_start(&r->tr, col->ex, col->n, true);
	r->training = true;
	return 0;
}

/* Waits for the training and frees what the retrain holds. */
static void
classifier_retrain_cancel(struct classifier_retrain *r)
{
	if (r->training) {
		classifier_train_rest(&r->tr);
		classifier_train_join(&r->tr);
		classifier_train_free(&r->tr);
		r->training = false;
	}
	classifier_collect_free(&r->col);
}

/* Writes the model the retrain trained (joined) into t, and frees the
 * retrain. */
static int
classifier_retrain_end(struct store_txn *t, uint64_t version, struct classifier_retrain *r)
{
	/* the model goes straight into the store: no copy on the heap */
	size_t len = sizeof(struct classifier_model_hdr) + TOKENIZE_MODELS * CLASSIFIER_DIR_BYTES;
	for (int k = 0; k < TOKENIZE_MODELS; k++)
		len += (size_t)r->tr.dense[k].n * sizeof(float);
	char *model = store_txn_reserve(t, classifier_model_key, sizeof(classifier_model_key) - 1, len, 0);
	char *p = model != NULL ? model + sizeof(struct classifier_model_hdr) : NULL;
	if (((uintptr_t)p % sizeof(uint32_t)) != 0)
		p = NULL; /* cannot happen: a value this large has pages of its own */
	if (p != NULL) {
		for (int k = 0; k < TOKENIZE_MODELS; k++) {
			classifier_dense_dir(&r->tr.dense[k], (struct classifier_dir *)(void *)p);
			p += CLASSIFIER_DIR_BYTES;
		}
		for (int k = 0; k < TOKENIZE_MODELS; k++) {
			size_t wl = (size_t)r->tr.dense[k].n * sizeof(float);
			if (wl > 0)
				memcpy(p, r->tr.dense[k].w, wl);
			p += wl;
		}
	}
	struct classifier_model_hdr hdr = {.magic = "MXCLS04"}, *h = &hdr;
	h->bits = TOKENIZE_BITS;
	h->models = TOKENIZE_MODELS;
	h->spam = r->col.spam;
	h->ham = r->col.ham;
	h->version = version;
	h->trained_at = (int64_t)mx_clock_wall();
	for (int k = 0; k < TOKENIZE_MODELS; k++) {
		h->mix[k] = classifier_mix[k];
		h->slots[k] = r->tr.dense[k].n;
	}
	classifier_train_free(&r->tr);
	r->training = false;
	h->train_seconds = (double)(mx_clock_mono_ms() - r->t0) / 1000.0;
	log_info("classifier: model %llu trained on %llu spam and %llu ham in %.2f s",
	         (unsigned long long)version, (unsigned long long)h->spam,
	         (unsigned long long)h->ham, h->train_seconds);
	if (p != NULL)
		memcpy(model, &hdr, sizeof(hdr));
	classifier_collect_free(&r->col);
	return p != NULL ? 0 : -1;
}

/* Examples stored under an older feature version's prefix: never used
 * again (their features or ids mean something else now), so the first
 * learn after an upgrade removes them rather than leave them in the
 * store for good. */
static const char *const classifier_old_prefixes[] = {"cls:e1:", "cls:e2:", "cls:e3:"};

struct classifier_old {
	char (*keys)[CLASSIFIER_EX_KEY_LEN];
	size_t n, cap;
};

static int
classifier_old_one(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
	(void)val;
	(void)vlen;
	struct classifier_old *o = arg;
	if (klen != CLASSIFIER_EX_KEY_LEN)
		return 0;
	o->keys = xgrow(o->keys, &o->cap, o->n + 1, sizeof(*o->keys));
	memcpy(o->keys[o->n++], key, CLASSIFIER_EX_KEY_LEN);
	return 0;
}

static int
classifier_drop_old(struct store_txn *t)
{
	struct classifier_old o = {0};
	int rc = 0;
	for (size_t p = 0; p < sizeof(classifier_old_prefixes) / sizeof(classifier_old_prefixes[0]); p++)
		if (store_txn_scan(t, classifier_old_prefixes[p], CLASSIFIER_EX_PREFIX_LEN, classifier_old_one, &o) < 0)
			rc = -1;
	for (size_t i = 0; i < o.n && rc == 0; i++)
		if (store_txn_del(t, o.keys[i], CLASSIFIER_EX_KEY_LEN) < 0)
			rc = -1;
	if (o.n > 0 && rc == 0)
		log_info("classifier: removed %zu examples of an older feature version; "
		         "learn the corpus again", o.n);
	free(o.keys);
	return rc;
}

/* The examples' generation: bumped by each learn that retrains, and
 * recorded with the model it trains. A learn stores its examples and its
 * model in two transactions, so that the examples are written and synced
 * while the model trains; when the two differ, the learn that stored the
 * examples did not get to store its model (it was stopped, or the store
 * was full), and the next learn retrains even if it adds nothing. */
static const char classifier_gen_key[] = "cls:gen";
static const char classifier_trained_key[] = "cls:trained";

/* A stored counter's value (0 when absent or not a counter). */
static uint64_t
classifier_u64_of(enum mx_lookup found, const void *val, size_t len)
{
	uint64_t v = 0;
	if (found == MX_FOUND && len == sizeof(v))
		memcpy(&v, val, sizeof(v));
	return v;
}

static uint64_t
classifier_u64_get(struct store_txn *t, const char *key)
{
	const void *val = NULL;
	size_t len = 0;
	enum mx_lookup found = store_txn_get(t, key, strlen(key), &val, &len);
	return classifier_u64_of(found, val, len);
}

static int
classifier_u64_put(struct store_txn *t, const char *key, uint64_t v)
{
	return store_txn_put(t, key, strlen(key), &v, sizeof(v), 0);
}

/* Writes the batch's examples into t. */
static int
classifier_examples_write(const struct classifier_batch *b, struct store_txn *t)
{
	for (size_t i = 0; b != NULL && i < b->n; i++) {
		const struct classifier_item *it = &b->items[i];
		char key[CLASSIFIER_EX_KEY_LEN];
		classifier_ex_key(it->id, key);
		if (it->label == CLASSIFIER_FORGET) {
			if (store_txn_del(t, key, sizeof(key)) < 0)
				return -1;
		} else if (classifier_item_full(it)) {
			unsigned char *v = store_txn_reserve(t, key, sizeof(key), 1 + it->enc_len, 0);
			if (v == NULL)
				return -1;
			v[0] = (unsigned char)it->label;
			memcpy(v + 1, it->enc, it->enc_len);
		}
	}
	return 0;
}

/* Stores the model the retrain trains on the examples of generation gen,
 * in a transaction of its own, and frees the retrain. locked: this learn
 * holds the training lock, so no other model can have been stored since
 * it began; examples stored meanwhile by learns waiting for the lock are
 * theirs to train on next. */
static int
classifier_model_store(struct classifier *c, struct classifier_retrain *r, uint64_t gen, bool locked)
{
	classifier_train_rest(&r->tr);
	classifier_train_join(&r->tr);
	struct store_txn *t = store_txn_begin(c->st);
	if (t == NULL) {
		classifier_retrain_cancel(r);
		return -1;
	}
	if ((!locked && classifier_u64_get(t, classifier_gen_key) != gen) ||
	    classifier_u64_get(t, classifier_trained_key) >= gen) {
		/* another learn stored examples since: its model, trained on
		 * them too, replaces this one; or one that ran without the lock
		 * stored a model of later examples already, which this older
		 * one must not replace (generations only grow) */
		log_info("classifier: model not stored: another learn stored examples meanwhile, "
		         "and its model includes these");
		classifier_retrain_cancel(r);
		store_txn_abort(t);
		return 0;
	}
	uint64_t version = 1;
	const void *val;
	size_t len;
	if (store_txn_get(t, classifier_model_key, sizeof(classifier_model_key) - 1, &val, &len) == MX_FOUND &&
	    len >= sizeof(struct classifier_model_hdr)) {
		struct classifier_model_hdr h;
		memcpy(&h, val, sizeof(h)); /* small values may sit unaligned */
		version = h.version + 1;
	}
	if (classifier_retrain_end(t, version, r) < 0 || classifier_u64_put(t, classifier_trained_key, gen) < 0) {
		store_txn_abort(t);
		return -1;
	}
	return store_txn_commit(t);
}

/* Stores the batch's examples (b NULL: none) and retrains the model (see
 * classifier_gen_key). */
static int
classifier_batch_train(struct classifier *c, const struct classifier_batch *b, bool locked)
{
	struct store_txn *t = store_txn_begin(c->st);
	if (t == NULL)
		return -1;
	uint64_t gen = classifier_u64_get(t, classifier_gen_key);
	if ((b == NULL || b->n == 0) && gen == classifier_u64_get(t, classifier_trained_key)) {
		store_txn_abort(t); /* nothing new, and the model is up to date */
		return 0;
	}
	struct classifier_retrain r;
	if (classifier_drop_old(t) < 0 || classifier_retrain_begin(t, b, &r) < 0) {
		store_txn_abort(t);
		return -1;
	}
	/* the generation only grows, also where the model goes: a number
	 * given twice could make a model look trained on examples it never
	 * saw (cls:trained equal to a cls:gen that means other examples) */
	int rc = classifier_examples_write(b, t);
	if (rc == 0)
		rc = classifier_u64_put(t, classifier_gen_key, ++gen);
	if (rc == 0 && !r.training) { /* too few examples to judge by: no model */
		store_txn_del(t, classifier_model_key, sizeof(classifier_model_key) - 1);
		store_txn_del(t, classifier_trained_key, sizeof(classifier_trained_key) - 1);
	}
	if (rc < 0) {
		/* the write transaction first: the training cannot be stopped,
		 * and LMDB's writer lock would be held, every other writer of
		 * every process waiting, until it ends */
		store_txn_abort(t);
		classifier_retrain_cancel(&r);
		return -1;
	}
	if (store_txn_commit(t) < 0) {
		classifier_retrain_cancel(&r);
		return -1;
	}
	if (!r.training) {
		classifier_retrain_cancel(&r);
		return 0;
	}
	return classifier_model_store(c, &r, gen, locked);
}

/* Stores the batch's examples alone and bumps the generation, for the
 * learn that holds the training lock, or the next, to train on. */
static int
classifier_examples_store(struct classifier *c, const struct classifier_batch *b)
{
	struct store_txn *t = store_txn_begin(c->st);
	if (t == NULL)
		return -1;
	uint64_t gen = classifier_u64_get(t, classifier_gen_key);
	if (classifier_drop_old(t) < 0 || classifier_examples_write(b, t) < 0 ||
	    classifier_u64_put(t, classifier_gen_key, gen + 1) < 0) {
		store_txn_abort(t);
		return -1;
	}
	return store_txn_commit(t);
}

/*
 * One learn trains at a time (the store's "train" lock). A retrain reads
 * every example into memory and keeps a core busy for seconds at tens of
 * thousands of examples; learns started together (a report button pressed
 * by several users) each used to run one in full, side by side. Now a
 * learn that finds another training stores its examples at once, waits,
 * and then retrains only if no model has been trained on them by then:
 * any number of learns started together cost at most two retrains, and
 * each still returns once a model includes what it learned.
 */
static int
classifier_batch_store(struct classifier *c, struct classifier_batch *b)
{
	bool busy;
	struct store_lock *l = store_lock_take(c->st, "train", false, &busy);
	if (l == NULL && busy) {
		if (b->n > 0 && classifier_examples_store(c, b) < 0)
			return -1;
		/* stored: what the batch holds is not needed while waiting (a
		 * folder's worth, behind a retrain that may take a while) */
		while (b->arena != NULL) {
			struct classifier_arena *a = b->arena;
			b->arena = a->next;
			classifier_map_free(a, a->bytes);
		}
		log_info("classifier: examples stored; another learn is training: waiting for it");
		l = store_lock_take(c->st, "train", true, &busy);
		b = NULL; /* stored: retrain if the model does not include them yet */
	}
	/* without the lock (the store's folder not writable, say) as before:
	 * the model of a learn that missed another's examples is not stored */
	int rc = classifier_batch_train(c, b, l != NULL);
	store_lock_release(l);
	return rc;
}

int
classifier_batch_commit(struct classifier_batch *b)
{
	int rc = classifier_batch_store(b->c, b);
	classifier_batch_free(b);
	return rc;
}

void
classifier_batch_abort(struct classifier_batch *b)
{
	if (b == NULL)
		return;
	classifier_batch_free(b);
}

const unsigned classifier_min_each = CLASSIFIER_MIN_EACH;

static int
classifier_count_one(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
	(void)key;
	struct classifier_stats *out = arg;
	if (klen != CLASSIFIER_EX_KEY_LEN || vlen < 1 + TOKENIZE_MODELS)
		return 0;
	unsigned label = *(const unsigned char *)val;
	out->stored_spam += label == CLASSIFIER_SPAM;
	out->stored_ham += label == CLASSIFIER_HAM;
	return 0;
}

int
classifier_stats(struct classifier *c, struct classifier_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (c == NULL || c->st == NULL)
		return -1;
	struct store_view *v = store_view_begin(c->st);
	if (v == NULL)
		return -1;
	struct classifier_model_hdr h;
	struct classifier_model model;
	int rc = classifier_model_read(v, &h, &model);
	if (rc < 0) {
		out->outdated = true; /* scoring ignores it */
	} else if (rc > 0) {
		out->spam = h.spam;
		out->ham = h.ham;
		out->model_version = h.version;
		out->trained_at = h.trained_at;
		out->train_seconds = h.train_seconds;
		out->trained = true;
		uint64_t g[2];
		const char *keys[2] = {classifier_gen_key, classifier_trained_key};
		for (int i = 0; i < 2; i++) {
			const void *val = NULL;
			size_t len = 0;
			enum mx_lookup found = store_view_get(v, keys[i], strlen(keys[i]), &val, &len);
			g[i] = classifier_u64_of(found, val, len);
		}
		out->stale = g[0] != g[1];
		bool busy;
		store_lock_release(store_lock_take(c->st, "train", false, &busy));
		out->training = busy;
	}
	store_view_end(v);
	if (!out->trained) /* say how far from a model it is */
		store_scan(c->st, classifier_ex_prefix, CLASSIFIER_EX_PREFIX_LEN, classifier_count_one, out);
	return 0;
}
