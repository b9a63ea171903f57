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
 *	Store layout: "cls:e2:" + id (8 bytes) -> label and the three index
 *	lists, delta-coded varints (about 2 KB); "cls:model" -> header + 3 x
 *	2^20 float weights, read in place (zero-copy) by classify.
 * LIMITS
 *	CLASSIFIER_EXAMPLES_MAX examples; a retrain holds them all in memory
 *	(about 6 KB each, decoded).  No model until there are
 *	CLASSIFIER_MIN_EACH examples of each class.
 */
#include "classifier.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "clock.h"
#include "tokenize.h"
#include "log.h"
#include "strmap.h"
#include "xalloc.h"

#define CLASSIFIER_PASSES 10
#define CLASSIFIER_HUGE (2u << 20)
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
static const char classifier_ex_prefix[] = "cls:e2:"; /* e2: the round-2 features */
#define CLASSIFIER_EX_PREFIX_LEN 7
#define CLASSIFIER_EX_KEY_LEN (CLASSIFIER_EX_PREFIX_LEN + 8)

struct classifier_model_hdr {
	char magic[8]; /* "MXCLS02\0" */
	uint32_t bits, models;
	uint64_t spam, ham, version;
	int64_t trained_at;
	double mix[TOKENIZE_MODELS];
	double train_seconds;
};

struct classifier {
	struct store *st;
};

struct classifier_item {
	uint64_t id;
	enum classifier_label label;
	struct tokenize_sets f;
};

struct classifier_batch {
	struct classifier *c;
	struct classifier_item *items;
	size_t n, cap;
	struct strmap *index; /* id bytes -> item index + 1 */
	pthread_mutex_t lock; /* batch_add may be called from several threads */
};

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

static void *
classifier_ex_encode(const struct classifier_item *it, size_t *len)
{
	size_t n = 0;
	for (int m = 0; m < TOKENIZE_MODELS; m++)
		n += it->f.set[m].n;
	unsigned char *v = xmalloc(1 + 5 * (TOKENIZE_MODELS + n));
	size_t o = 0;
	v[o++] = (unsigned char)it->label;
	for (int m = 0; m < TOKENIZE_MODELS; m++) {
		const struct tokenize_set *s = &it->f.set[m];
		o += classifier_varint_put(v + o, (uint32_t)s->n);
		uint32_t prev = 0;
		for (size_t i = 0; i < s->n; i++) {
			o += classifier_varint_put(v + o, s->v[i] - prev);
			prev = s->v[i];
		}
	}
	*len = o;
	return v;
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

static double
classifier_dot(const float *w, const struct tokenize_set *s)
{
	if (s->n == 0)
		return 0;
	double sum = 0;
	for (size_t i = 0; i < s->n; i++)
		sum += w[s->v[i]];
	return sum / sqrt((double)s->n);
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

double
classifier_classify(struct classifier *c, const struct mime_msg *m)
{
	if (c == NULL || c->st == NULL)
		return -1;
	struct store_view *v = store_view_begin(c->st);
	if (v == NULL)
		return -1;
	const void *val;
	size_t len;
	double p = -1;
	size_t want = sizeof(struct classifier_model_hdr) + sizeof(float) * TOKENIZE_MODELS * TOKENIZE_SPACE;
	if (store_view_get(v, classifier_model_key, sizeof(classifier_model_key) - 1, &val, &len) == MX_FOUND &&
	    len == want && memcmp(val, "MXCLS02", 8) == 0 &&
	    (uintptr_t)((const char *)val + sizeof(struct classifier_model_hdr)) % sizeof(float) == 0) {
		/* a value this large sits on pages of its own: the weights are
		 * aligned and read in place; the header is copied */
		struct classifier_model_hdr h;
		memcpy(&h, val, sizeof(h));
		const float *w = (const float *)((const char *)val + sizeof(h));
		struct tokenize_sets f;
		tokenize_extract(m, &f);
		double z = classifier_z_mix(w, h.mix, &f);
		tokenize_clear(&f);
		p = classifier_probability(z);
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

/* What adding id with label to the batch means; *add says whether an
 * item must be appended for it. Called with the batch locked. */
static enum classifier_learn_rc
classifier_batch_decide(struct classifier_batch *b, uint64_t id, enum classifier_label label, bool *add)
{
	char idb[8];
	memcpy(idb, &id, 8);
	void *v;
	*add = false;
	if (strmap_get(b->index, idb, 8, &v)) { /* seen in this batch */
		struct classifier_item *it = &b->items[(uintptr_t)v - 1];
		if (it->label == label)
			return CLASSIFIER_DUPLICATE;
		it->label = label;
		return label == CLASSIFIER_FORGET ? CLASSIFIER_FORGOTTEN : CLASSIFIER_RELABELED;
	}
	int stored = classifier_stored_label(b->c, id);
	if (label == CLASSIFIER_FORGET) {
		*add = stored >= 0;
		return stored < 0 ? CLASSIFIER_UNKNOWN : CLASSIFIER_FORGOTTEN;
	}
	if (stored == (int)label)
		return CLASSIFIER_DUPLICATE;
	*add = true;
	return stored < 0 ? CLASSIFIER_LEARNED : CLASSIFIER_RELABELED;
}

static void
classifier_batch_append(struct classifier_batch *b, uint64_t id, enum classifier_label label,
                 struct tokenize_sets *f)
{
	b->items = xgrow(b->items, &b->cap, b->n + 1, sizeof(*b->items));
	struct classifier_item *it = &b->items[b->n];
	memset(it, 0, sizeof(*it));
	it->id = id;
	it->label = label;
	if (f)
		it->f = *f;
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
	pthread_mutex_lock(&b->lock);
	enum classifier_learn_rc rc = classifier_batch_decide(b, id, label, &add);
	if (add && label == CLASSIFIER_FORGET)
		classifier_batch_append(b, id, label, NULL);
	pthread_mutex_unlock(&b->lock);
	if (!add || label == CLASSIFIER_FORGET)
		return rc;
	/* the costly part, outside the lock */
	struct tokenize_sets f;
	tokenize_extract(m, &f);
	tokenize_sort(&f);
	pthread_mutex_lock(&b->lock);
	rc = classifier_batch_decide(b, id, label, &add); /* another thread may have added it */
	if (add)
		classifier_batch_append(b, id, label, &f);
	pthread_mutex_unlock(&b->lock);
	if (!add)
		tokenize_clear(&f);
	return rc;
}

/* ---- training ----------------------------------------------------------------------- */


struct classifier_order {
	uint64_t key, id;
	uint32_t i;
};

static uint64_t
classifier_splitmix64(uint64_t x)
{
	uint64_t z = x + 0x9E3779B97F4A7C15ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static int
classifier_order_cmp(const void *a, const void *b)
{
	const struct classifier_order *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

struct classifier_job {
	const struct classifier_example *ex;
	size_t n;
	struct classifier_order **orders; /* one per pass, shared */
	int model;
	float *w;
};

static void *
classifier_train_model(void *arg)
{
	struct classifier_job *t = arg;
	int k = t->model;
	float *w = t->w;
	for (int p = 0; p < CLASSIFIER_PASSES; p++) {
		const struct classifier_order *ord = t->orders[p];
		for (size_t j = 0; j < t->n; j++) {
			const struct classifier_example *e = &t->ex[ord[j].i];
			uint32_t n = e->n[k];
			if (n == 0)
				continue;
			const uint32_t *idx = e->idx[k];
			double s = 1.0 / sqrt((double)n), sum = 0;
			for (uint32_t i = 0; i < n; i++)
				sum += w[idx[i]];
			double z = s * sum;
			if (e->label ? z > CLASSIFIER_TONE : z < -CLASSIFIER_TONE)
				continue;
			double g = (double)e->label - 1.0 / (1.0 + exp(-z));
			float step = (float)(CLASSIFIER_LR * g * s);
			for (uint32_t i = 0; i < n; i++)
				w[idx[i]] += step;
		}
	}
	return NULL;
}

void
classifier_train(const struct classifier_example *ex, size_t n, float *w)
{
	/* the pass orders depend only on the examples */
	struct classifier_order *orders[CLASSIFIER_PASSES];
	for (int p = 0; p < CLASSIFIER_PASSES; p++) {
		orders[p] = xmalloc((n ? n : 1) * sizeof(struct classifier_order));
		uint64_t salt = (uint64_t)(p + 1) * 0x9E3779B97F4A7C15ull;
		for (size_t i = 0; i < n; i++) {
			orders[p][i].key = classifier_splitmix64(ex[i].id ^ salt);
			orders[p][i].id = ex[i].id;
			orders[p][i].i = (uint32_t)i;
		}
		qsort(orders[p], n, sizeof(struct classifier_order), classifier_order_cmp);
	}
	/* the three models are independent: train them side by side */
	struct classifier_job tr[TOKENIZE_MODELS];
	pthread_t th[TOKENIZE_MODELS];
	bool started[TOKENIZE_MODELS] = {false};
	for (int k = 0; k < TOKENIZE_MODELS; k++) {
		tr[k] = (struct classifier_job){ex, n, orders, k, w + (size_t)k * TOKENIZE_SPACE};
		started[k] = pthread_create(&th[k], NULL, classifier_train_model, &tr[k]) == 0;
		if (!started[k])
			classifier_train_model(&tr[k]);
	}
	for (int k = 0; k < TOKENIZE_MODELS; k++)
		if (started[k])
			pthread_join(th[k], NULL);
	for (int p = 0; p < CLASSIFIER_PASSES; p++)
		free(orders[p]);
}

struct classifier_collect {
	struct classifier_example *ex;
	size_t n, cap;
	uint64_t spam, ham;
	bool overflow;
	uint32_t *idx; /* every example's indices, decoded, one after another */
	size_t nidx, idxcap;
};

static void
classifier_collect_free(struct classifier_collect *c)
{
	free(c->idx);
	free(c->ex);
}

static int
classifier_collect_one(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
	struct classifier_collect *c = arg;
	if (klen != CLASSIFIER_EX_KEY_LEN || vlen < 1 + TOKENIZE_MODELS)
		return 0;
	if (c->n >= CLASSIFIER_EXAMPLES_MAX) {
		c->overflow = true;
		return 1;
	}
	const unsigned char *p = val, *end = p + vlen;
	unsigned label = *p++;
	if (label > CLASSIFIER_SPAM)
		return 0; /* damaged: skip */
	size_t start = c->nidx;
	uint32_t n[TOKENIZE_MODELS];
	for (int m = 0; m < TOKENIZE_MODELS; m++) {
		size_t used = classifier_varint_get(p, end, &n[m]);
		/* each index takes at least a byte: a count beyond that is damage */
		if (used == 0 || n[m] > (size_t)(end - p)) {
			c->nidx = start;
			return 0;
		}
		p += used;
		if (c->nidx + n[m] > c->idxcap)
			c->idx = xgrow(c->idx, &c->idxcap, c->nidx + n[m], sizeof(uint32_t));
		uint32_t prev = 0;
		for (uint32_t i = 0; i < n[m]; i++) {
			uint32_t d;
			used = classifier_varint_get(p, end, &d);
			if (used == 0 || (i > 0 && d == 0) || d >= TOKENIZE_SPACE - prev) {
				c->nidx = start;
				return 0;
			}
			p += used;
			prev += d;
			c->idx[c->nidx++] = prev;
		}
	}
	if (p != end) {
		c->nidx = start;
		return 0;
	}
	c->ex = xgrow(c->ex, &c->cap, c->n + 1, sizeof(*c->ex));
	struct classifier_example *e = &c->ex[c->n++];
	e->id = classifier_key_id(key);
	e->label = label == CLASSIFIER_SPAM;
	/* offsets for now: the array may still move */
	size_t off = start;
	for (int m = 0; m < TOKENIZE_MODELS; m++) {
		e->n[m] = n[m];
		e->idx[m] = (const uint32_t *)(uintptr_t)off;
		off += n[m];
	}
	if (e->label)
		c->spam++;
	else
		c->ham++;
	return 0;
}

/* Retrains every model from the examples the transaction sees and writes
 * the model into it. */
static int
classifier_retrain(struct store_txn *t, uint64_t version)
{
	struct classifier_collect col = {0};
	if (store_txn_scan(t, classifier_ex_prefix, CLASSIFIER_EX_PREFIX_LEN, classifier_collect_one, &col) < 0) {
		classifier_collect_free(&col);
		return -1;
	}
	if (col.overflow)
		log_warn("classifier: more than %d examples; the rest are not used",
		         CLASSIFIER_EXAMPLES_MAX);
	for (size_t i = 0; i < col.n; i++)
		for (int m = 0; m < TOKENIZE_MODELS; m++)
			col.ex[i].idx[m] = col.idx + (uintptr_t)col.ex[i].idx[m];
	if (col.spam < CLASSIFIER_MIN_EACH || col.ham < CLASSIFIER_MIN_EACH) {
		/* too few to judge by: no model until there are enough of both */
		classifier_collect_free(&col);
		store_txn_del(t, classifier_model_key, sizeof(classifier_model_key) - 1);
		return 0;
	}
	struct classifier_model_hdr hdr = {.magic = "MXCLS02"}, *h = &hdr;
	h->bits = TOKENIZE_BITS;
	h->models = TOKENIZE_MODELS;
	h->spam = col.spam;
	h->ham = col.ham;
	h->version = version;
	h->trained_at = (int64_t)mx_clock_wall();
	for (int k = 0; k < TOKENIZE_MODELS; k++)
		h->mix[k] = classifier_mix[k];
	/* trained in a separate buffer on huge pages where the system has
	 * them: the updates hit the 12 MB of weights at random, and with 4 KB
	 * pages most of them would miss the TLB */
	size_t wlen = sizeof(float) * TOKENIZE_MODELS * TOKENIZE_SPACE;
	float *w = NULL;
	if (posix_memalign((void **)&w, CLASSIFIER_HUGE, wlen) != 0)
		abort();
	madvise(w, wlen, MADV_HUGEPAGE);
	memset(w, 0, wlen);

	uint64_t t0 = mx_clock_mono_ms();
	classifier_train(col.ex, col.n, w);
	h->train_seconds = (double)(mx_clock_mono_ms() - t0) / 1000.0;
	log_info("classifier: model %llu trained on %llu spam and %llu ham in %.2f s",
	         (unsigned long long)version, (unsigned long long)col.spam,
	         (unsigned long long)col.ham, h->train_seconds);
	/* written straight into the store: no 12 MB copy on the heap */
	char *model = store_txn_reserve(t, classifier_model_key, sizeof(classifier_model_key) - 1, sizeof(hdr) + wlen, 0);
	if (model != NULL) {
		memcpy(model, &hdr, sizeof(hdr));
		memcpy(model + sizeof(hdr), w, wlen);
	}
	free(w);
	classifier_collect_free(&col);
	return model != NULL ? 0 : -1;
}

int
classifier_batch_commit(struct classifier_batch *b)
{
	struct classifier *c = b->c;
	int rc = -1;
	struct store_txn *t = store_txn_begin(c->st);
	if (t == NULL)
		goto out;
	uint64_t version = 1;
	const void *val;
	size_t len;
	if (store_txn_get(t, classifier_model_key, sizeof(classifier_model_key) - 1, &val, &len) == MX_FOUND &&
	    len >= sizeof(struct classifier_model_hdr)) {
		struct classifier_model_hdr h;
		memcpy(&h, val, sizeof(h)); /* small values may sit unaligned */
		version = h.version + 1;
	}
	for (size_t i = 0; i < b->n; i++) {
		struct classifier_item *it = &b->items[i];
		char key[CLASSIFIER_EX_KEY_LEN];
		classifier_ex_key(it->id, key);
		if (it->label == CLASSIFIER_FORGET) {
			if (store_txn_del(t, key, sizeof(key)) < 0)
				goto abort;
			continue;
		}
		if (it->f.set[0].n == 0 && it->f.set[1].n == 0 && it->f.set[2].n == 0)
			continue; /* relabelled back to a forget-only item: nothing to store */
		size_t vlen;
		void *v = classifier_ex_encode(it, &vlen);
		int prc = store_txn_put(t, key, sizeof(key), v, vlen, 0);
		free(v);
		if (prc < 0)
			goto abort;
	}
	if (b->n > 0 && classifier_retrain(t, version) < 0)
		goto abort;
	rc = store_txn_commit(t);
	goto out;
abort:
	store_txn_abort(t);
out:
	for (size_t i = 0; i < b->n; i++)
		tokenize_clear(&b->items[i].f);
	free(b->items);
	strmap_free(b->index);
	pthread_mutex_destroy(&b->lock);
	free(b);
	return rc;
}

void
classifier_batch_abort(struct classifier_batch *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++)
		tokenize_clear(&b->items[i].f);
	free(b->items);
	strmap_free(b->index);
	pthread_mutex_destroy(&b->lock);
	free(b);
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
	const void *val;
	size_t len;
	if (store_view_get(v, classifier_model_key, sizeof(classifier_model_key) - 1, &val, &len) == MX_FOUND &&
	    len >= 8 && memcmp(val, "MXCLS", 5) == 0 && memcmp(val, "MXCLS02", 8) != 0) {
		out->outdated = true; /* made by an older version: scoring ignores it */
	} else if (store_view_get(v, classifier_model_key, sizeof(classifier_model_key) - 1, &val, &len) == MX_FOUND &&
	           len >= sizeof(struct classifier_model_hdr)) {
		struct classifier_model_hdr h;
		memcpy(&h, val, sizeof(h));
		out->spam = h.spam;
		out->ham = h.ham;
		out->model_version = h.version;
		out->trained_at = h.trained_at;
		out->train_seconds = h.train_seconds;
		out->trained = true;
	}
	store_view_end(v);
	return 0;
}
