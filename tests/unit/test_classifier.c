/* SPDX-License-Identifier: MIT */
/*
 * Unit tests: the classifier over a real LMDB store - learning in batches,
 * duplicates, relabelling, forgetting, the minimum before a model exists,
 * and damaged examples in the store (skipped, never trusted).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "classifier.h"
#include "mime.h"
#include "store.h"
#include "tokenize.h"

static char dir[64];

static struct store *
open_store(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mx-test-cls-%d", (int)getpid());
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	struct store_opts o = {dir, 64u << 20, false};
	char err[256];
	struct store *s = store_open(&o, err, sizeof(err));
	assert_non_null(s);
	return s;
}

static void
close_store(struct store *s)
{
	store_close(s);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* A message: spam ones talk of pills, ham ones of meetings; i makes each
 * one different. */
static char *
message(bool spam, int i)
{
	char *m = malloc(1024);
	snprintf(m, 1024,
	         "From: %s <%s@%s.test>\r\nTo: bob@example.test\r\nSubject: %s %d\r\n"
	         "Message-ID: <%d@%s.test>\r\n\r\n%s number %d\r\n",
	         spam ? "Best Pharmacy" : "Alice Smith", spam ? "offers" : "alice",
	         spam ? "cheap-meds" : "example", spam ? "Cheap pills online" : "Meeting notes", i, i,
	         spam ? "cheap-meds" : "example",
	         spam ? "Buy cheap pills now, lowest prices, click here" : "Notes from the meeting, see you",
	         i);
	return m;
}

static enum classifier_learn_rc
learn(struct classifier_batch *b, const char *text, enum classifier_label label)
{
	struct mime_limits lim;
	mime_limits_default(&lim);
	struct mime_msg m;
	mime_analyse(text, strlen(text), &lim, &m);
	enum classifier_learn_rc rc = classifier_batch_add(b, &m, label);
	mime_msg_clear(&m);
	return rc;
}

static double
classify(struct classifier *c, const char *text)
{
	struct mime_limits lim;
	mime_limits_default(&lim);
	struct mime_msg m;
	mime_analyse(text, strlen(text), &lim, &m);
	double p = classifier_classify(c, &m);
	mime_msg_clear(&m);
	return p;
}

static void
learn_many(struct classifier *c, int spam, int ham, int from)
{
	struct classifier_batch *b = classifier_batch_begin(c);
	for (int i = 0; i < spam + ham; i++) {
		char *m = message(i < spam, from + i);
		assert_int_equal(learn(b, m, i < spam ? CLASSIFIER_SPAM : CLASSIFIER_HAM), CLASSIFIER_LEARNED);
		free(m);
	}
	assert_int_equal(classifier_batch_commit(b), 0);
}

static void
test_minimum_then_model(void **state)
{
	(void)state;
	struct store *s = open_store();
	struct classifier *c = classifier_open(s);
	char *probe = message(true, 10000);
	learn_many(c, 49, 60, 0);
	struct classifier_stats st;
	classifier_stats(c, &st);
	assert_false(st.trained); /* 49 spam: too few to judge by */
	assert_true(classify(c, probe) < 0);
	learn_many(c, 1, 0, 500);
	classifier_stats(c, &st);
	assert_true(st.trained);
	assert_int_equal(st.spam, 50);
	assert_int_equal(st.ham, 60);
	assert_true(classify(c, probe) > 0.9);
	char *ham = message(false, 10001);
	assert_true(classify(c, ham) < 0.1);
	free(ham);
	free(probe);
	classifier_close(c);
	close_store(s);
}

static void
test_duplicates_relabel_forget(void **state)
{
	(void)state;
	struct store *s = open_store();
	struct classifier *c = classifier_open(s);
	learn_many(c, 60, 60, 0);
	char *m = message(true, 0);
	struct classifier_batch *b = classifier_batch_begin(c);
	assert_int_equal(learn(b, m, CLASSIFIER_SPAM), CLASSIFIER_DUPLICATE);  /* stored */
	assert_int_equal(learn(b, m, CLASSIFIER_HAM), CLASSIFIER_RELABELED);   /* corrected */
	assert_int_equal(learn(b, m, CLASSIFIER_HAM), CLASSIFIER_DUPLICATE);   /* in this batch already */
	assert_int_equal(classifier_batch_commit(b), 0);
	struct classifier_stats st;
	classifier_stats(c, &st);
	assert_int_equal(st.spam, 59);
	assert_int_equal(st.ham, 61);
	b = classifier_batch_begin(c);
	assert_int_equal(learn(b, m, CLASSIFIER_FORGET), CLASSIFIER_FORGOTTEN);
	char *never = message(false, 99999);
	assert_int_equal(learn(b, never, CLASSIFIER_FORGET), CLASSIFIER_UNKNOWN);
	assert_int_equal(classifier_batch_commit(b), 0);
	classifier_stats(c, &st);
	assert_int_equal(st.spam, 59);
	assert_int_equal(st.ham, 60);
	/* an empty batch changes nothing, not even the version */
	uint64_t v = st.model_version;
	b = classifier_batch_begin(c);
	assert_int_equal(classifier_batch_commit(b), 0);
	classifier_stats(c, &st);
	assert_int_equal(st.model_version, v);
	free(never);
	free(m);
	classifier_close(c);
	close_store(s);
}

/* The training lock: one holder; a second taker without waiting gets
 * NULL and busy; released, it is free again. stats says a learn trains. */
static void
test_train_lock(void **state)
{
	(void)state;
	struct store *s = open_store();
	struct classifier *c = classifier_open(s);
	learn_many(c, 60, 60, 0);
	bool busy = true;
	struct store_lock *a = store_lock_take(s, "train", false, &busy);
	assert_non_null(a);
	assert_false(busy);
	struct store_lock *b = store_lock_take(s, "train", false, &busy);
	assert_null(b);
	assert_true(busy);
	struct store_lock *other = store_lock_take(s, "other", false, &busy);
	assert_non_null(other); /* locks by name */
	store_lock_release(other);
	struct classifier_stats st;
	classifier_stats(c, &st);
	assert_true(st.trained);
	assert_true(st.training);
	store_lock_release(a);
	classifier_stats(c, &st);
	assert_false(st.training);
	b = store_lock_take(s, "train", true, &busy);
	assert_non_null(b);
	store_lock_release(b);
	store_lock_release(NULL);
	classifier_close(c);
	close_store(s);
}

/* A learn stores its examples, then its model, in two transactions. One
 * stopped between them leaves examples newer than the model: stats says
 * so, and the next learn retrains though it adds nothing. */
static void
test_interrupted_learn(void **state)
{
	(void)state;
	struct store *s = open_store();
	struct classifier *c = classifier_open(s);
	learn_many(c, 60, 60, 0);
	struct classifier_stats st;
	classifier_stats(c, &st);
	assert_true(st.trained);
	assert_false(st.stale);
	uint64_t v = st.model_version;
	/* the store as such a learn leaves it: the generation bumped, the
	 * model not */
	struct store_txn *t = store_txn_begin(s);
	const void *val;
	size_t len;
	uint64_t gen = 0;
	assert_int_equal(store_txn_get(t, "cls:gen", 7, &val, &len), MX_FOUND);
	assert_int_equal(len, sizeof(gen));
	memcpy(&gen, val, sizeof(gen));
	assert_true(gen >= 1);
	gen++;
	assert_int_equal(store_txn_put(t, "cls:gen", 7, &gen, sizeof(gen), 0), 0);
	assert_int_equal(store_txn_commit(t), 0);
	classifier_stats(c, &st);
	assert_true(st.stale);
	assert_int_equal(st.model_version, v);
	/* nothing new to learn, but the model is retrained */
	struct classifier_batch *b = classifier_batch_begin(c);
	char *m = message(true, 0);
	assert_int_equal(learn(b, m, CLASSIFIER_SPAM), CLASSIFIER_DUPLICATE);
	free(m);
	assert_int_equal(classifier_batch_commit(b), 0);
	classifier_stats(c, &st);
	assert_false(st.stale);
	assert_int_equal(st.model_version, v + 1);
	assert_int_equal(st.spam, 60);
	assert_int_equal(st.ham, 60);
	/* and then, up to date, an empty batch changes nothing */
	b = classifier_batch_begin(c);
	assert_int_equal(classifier_batch_commit(b), 0);
	classifier_stats(c, &st);
	assert_int_equal(st.model_version, v + 1);
	classifier_close(c);
	close_store(s);
}

/* A model of this version that does not add up (a short value, slot
 * counts past the space, a wrong feature width) is not used either. */
static void
test_damaged_model(void **state)
{
	(void)state;
	struct store *s = open_store();
	struct classifier *c = classifier_open(s);
	learn_many(c, 50, 50, 0);
	char *m = message(true, 1);
	assert_true(classify(c, m) > 0.5);
	const void *val;
	size_t len;
	struct store_txn *t = store_txn_begin(s);
	assert_int_equal(store_txn_get(t, "cls:model", 9, &val, &len), MX_FOUND);
	char *good = malloc(len);
	memcpy(good, val, len);
	store_txn_abort(t);
	struct {
		size_t len;
		size_t off;
		uint32_t v;
	} damage[] = {
		{len - 4, 0, 0},             /* a weight short */
		{len, 8, 21},                /* another feature width */
		{len, 12, 2},                /* another number of models */
		{len, 80, 0xffffffffu},      /* R's slot count past the space */
		{len + 4, 0, 0},             /* a weight too many */
	};
	for (size_t i = 0; i < sizeof(damage) / sizeof(damage[0]); i++) {
		char *bad = calloc(1, damage[i].len);
		memcpy(bad, good, damage[i].len < len ? damage[i].len : len);
		if (damage[i].off)
			memcpy(bad + damage[i].off, &damage[i].v, 4);
		t = store_txn_begin(s);
		assert_int_equal(store_txn_put(t, "cls:model", 9, bad, damage[i].len, 0), 0);
		assert_int_equal(store_txn_commit(t), 0);
		struct classifier_stats st;
		assert_int_equal(classifier_stats(c, &st), 0);
		assert_true(st.outdated);
		assert_true(classify(c, m) < 0);
		free(bad);
	}
	free(good);
	free(m);
	classifier_close(c);
	close_store(s);
}

/* Forgotten and learned again in one batch: the second word counts. */
static void
test_forget_then_learn(void **state)
{
	(void)state;
	struct store *s = open_store();
	struct classifier *c = classifier_open(s);
	learn_many(c, 60, 60, 0);
	char *m = message(true, 3); /* stored as spam */
	struct classifier_batch *b = classifier_batch_begin(c);
	assert_int_equal(learn(b, m, CLASSIFIER_FORGET), CLASSIFIER_FORGOTTEN);
	assert_int_equal(learn(b, m, CLASSIFIER_HAM), CLASSIFIER_RELABELED);
	assert_int_equal(learn(b, m, CLASSIFIER_HAM), CLASSIFIER_DUPLICATE);
	assert_int_equal(classifier_batch_commit(b), 0);
	struct classifier_stats st;
	classifier_stats(c, &st);
	assert_int_equal(st.spam, 59);
	assert_int_equal(st.ham, 61);
	/* and the other way round: learned, then forgotten */
	char *n = message(false, 5000);
	b = classifier_batch_begin(c);
	assert_int_equal(learn(b, n, CLASSIFIER_HAM), CLASSIFIER_LEARNED);
	assert_int_equal(learn(b, n, CLASSIFIER_FORGET), CLASSIFIER_FORGOTTEN);
	assert_int_equal(classifier_batch_commit(b), 0);
	classifier_stats(c, &st);
	assert_int_equal(st.ham, 61);
	b = classifier_batch_begin(c);
	assert_int_equal(learn(b, n, CLASSIFIER_FORGET), CLASSIFIER_UNKNOWN);
	classifier_batch_abort(b);
	free(n);
	free(m);
	classifier_close(c);
	close_store(s);
}

/* Damaged example values are skipped at retrain; the good ones count. */
static void
test_damaged_examples(void **state)
{
	(void)state;
	struct store *s = open_store();
	struct classifier *c = classifier_open(s);
	struct store_txn *t = store_txn_begin(s);
	static const struct {
		const char *v;
		size_t n;
	} bad[] = {
		{"\x01", 1},                         /* no counts */
		{"\x07\x01\x05\x00\x00", 5},        /* label 7 */
		{"\x01\x05\x01\x00\x00", 5},        /* 5 indices announced, 1 there */
		{"\x01\x02\x01\x00\x00\x00", 6},    /* index repeated (delta 0) */
		{"\x01\x01\xff\xff\xff\xff\x7f\x00\x00", 9}, /* index beyond 2^20, varint too long */
		{"\x01\x01\x80\x80\x40\x00\x00", 7}, /* index 2^20 exactly */
		{"\x01\x01\x01\x00\x00\x00\x00", 7}, /* bytes left over */
		{"\x00\xff\xff\xff\xff\xff\xff", 7}, /* count varint overlong */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char key[15] = "cls:e4:";
		memset(key + 7, 0, 8);
		key[14] = (char)(i + 1);
		assert_int_equal(store_txn_put(t, key, sizeof(key), bad[i].v, bad[i].n, 0), 0);
	}
	assert_int_equal(store_txn_commit(t), 0);
	learn_many(c, 55, 56, 0);
	struct classifier_stats st;
	classifier_stats(c, &st);
	assert_true(st.trained);
	assert_int_equal(st.spam, 55);
	assert_int_equal(st.ham, 56);
	char *probe = message(true, 777);
	assert_true(classify(c, probe) > 0.9);
	free(probe);
	classifier_close(c);
	close_store(s);
}

/* A model written by an older version is not used, and stats says so. */
static void
test_outdated_model(void **state)
{
	(void)state;
	struct store *s = open_store();
	struct classifier *c = classifier_open(s);
	char old[256] = "MXCLS01";
	struct store_txn *t = store_txn_begin(s);
	assert_int_equal(store_txn_put(t, "cls:model", 9, old, sizeof(old), 0), 0);
	/* and examples of older feature versions, which the next learn removes */
	assert_int_equal(store_txn_put(t, "cls:e1:\1\2\3\4\5\6\7\10", 15, "\1", 1, 0), 0);
	assert_int_equal(store_txn_put(t, "cls:e2:\0\2\3\4\5\6\7\10", 15, "\0", 1, 0), 0);
	assert_int_equal(store_txn_put(t, "cls:e3:\0\2\3\4\5\6\7\11", 15, "\1\0\0\0", 4, 0), 0);
	assert_int_equal(store_txn_put(t, "cls:e2:other", 12, "\0", 1, 0), 0); /* not an example key */
	assert_int_equal(store_txn_commit(t), 0);
	struct classifier_stats st;
	assert_int_equal(classifier_stats(c, &st), 0);
	assert_true(st.outdated);
	assert_false(st.trained);
	char *m = message(true, 1);
	assert_true(classify(c, m) < 0);
	/* learning replaces it */
	learn_many(c, 50, 50, 100);
	classifier_stats(c, &st);
	assert_false(st.outdated);
	assert_true(st.trained);
	void *val = NULL;
	size_t vlen;
	assert_int_equal(store_get(s, "cls:e1:\1\2\3\4\5\6\7\10", 15, &val, &vlen), MX_NOTFOUND);
	assert_int_equal(store_get(s, "cls:e2:\0\2\3\4\5\6\7\10", 15, &val, &vlen), MX_NOTFOUND);
	assert_int_equal(store_get(s, "cls:e3:\0\2\3\4\5\6\7\11", 15, &val, &vlen), MX_NOTFOUND);
	assert_int_equal(store_get(s, "cls:e2:other", 12, &val, &vlen), MX_FOUND);
	free(val);
	assert_true(classify(c, m) > 0.5);
	free(m);
	classifier_close(c);
	close_store(s);
}

/* The stored model (a directory and the weights of the slots in use) says
 * exactly what the dense weights of the same training say: the same
 * examples through classifier_train() and classifier_z() give the same
 * probability, to the last bit, for learned and unseen messages. */
static void
test_stored_equals_dense(void **state)
{
	(void)state;
	struct store *s = open_store();
	struct classifier *c = classifier_open(s);
	enum { SPAM = 60, HAM = 70 };
	learn_many(c, SPAM, HAM, 0);
	struct classifier_example ex[SPAM + HAM];
	struct mime_limits lim;
	mime_limits_default(&lim);
	for (int i = 0; i < SPAM + HAM; i++) {
		char *text = message(i < SPAM, i);
		struct mime_msg m;
		mime_analyse(text, strlen(text), &lim, &m);
		struct tokenize_sets f;
		tokenize_extract(&m, &f);
		tokenize_sort(&f);
		ex[i].id = tokenize_message_id(&m);
		ex[i].label = i < SPAM;
		for (int k = 0; k < TOKENIZE_MODELS; k++) {
			ex[i].n[k] = (uint32_t)f.set[k].n;
			ex[i].idx[k] = malloc((f.set[k].n + 1) * sizeof(uint32_t));
			memcpy(ex[i].idx[k], f.set[k].v, f.set[k].n * sizeof(uint32_t));
		}
		tokenize_clear(&f);
		mime_msg_clear(&m);
		free(text);
	}
	float *w = calloc((size_t)TOKENIZE_MODELS * TOKENIZE_SPACE, sizeof(float));
	assert_non_null(w);
	classifier_train(ex, SPAM + HAM, w);
	int probes[] = {0, 7, SPAM + 3, 500, 501, 999};
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		char *text = message(probes[i] % 2 == 0 || probes[i] < SPAM, probes[i]);
		double stored = classify(c, text);
		struct mime_msg m;
		mime_analyse(text, strlen(text), &lim, &m);
		struct tokenize_sets f;
		tokenize_extract(&m, &f);
		double dense = classifier_probability(classifier_z(w, &f));
		tokenize_clear(&f);
		mime_msg_clear(&m);
		assert_true(stored >= 0);
		assert_memory_equal(&stored, &dense, sizeof(double));
		free(text);
	}
	for (int i = 0; i < SPAM + HAM; i++)
		for (int k = 0; k < TOKENIZE_MODELS; k++)
			free(ex[i].idx[k]);
	free(w);
	classifier_close(c);
	close_store(s);
}

static uint64_t
get_u64(struct store *s, const char *key)
{
	void *val = NULL;
	size_t len = 0;
	uint64_t v = 0;
	if (store_get(s, key, strlen(key), &val, &len) == MX_FOUND && len == sizeof(v))
		memcpy(&v, val, sizeof(v));
	free(val);
	return v;
}

/* The generation only grows: a learn that leaves too few examples for a
 * model bumps it too (it used to delete it, and numbers given again could
 * make a model look trained on examples it never saw); and a model of
 * older examples never replaces one of later ones (a learn that ran
 * without the lock may have stored that one meanwhile). */
static void
test_generation_grows(void **state)
{
	(void)state;
	struct store *s = open_store();
	struct classifier *c = classifier_open(s);
	learn_many(c, 60, 60, 0);
	uint64_t g1 = get_u64(s, "cls:gen");
	assert_true(g1 >= 1);
	assert_int_equal(get_u64(s, "cls:trained"), g1);
	struct classifier_batch *b = classifier_batch_begin(c);
	for (int i = 0; i < 11; i++) { /* down to 49 spam: no model */
		char *m = message(true, i);
		assert_int_equal(learn(b, m, CLASSIFIER_FORGET), CLASSIFIER_FORGOTTEN);
		free(m);
	}
	assert_int_equal(classifier_batch_commit(b), 0);
	struct classifier_stats st;
	classifier_stats(c, &st);
	assert_false(st.trained);
	assert_true(get_u64(s, "cls:gen") > g1);
	learn_many(c, 11, 0, 0); /* back to 60: a model again */
	classifier_stats(c, &st);
	assert_true(st.trained);
	assert_false(st.stale);
	uint64_t g2 = get_u64(s, "cls:gen"), v = st.model_version;
	assert_true(g2 > g1 + 1);
	/* as if a learn without the lock had stored a model of later
	 * examples while this one trained: this one's is not stored */
	uint64_t later = g2 + 5;
	assert_int_equal(store_put(s, "cls:trained", 11, &later, sizeof(later), 0), 0);
	learn_many(c, 1, 0, 500);
	classifier_stats(c, &st);
	assert_int_equal(st.model_version, v);
	assert_int_equal(get_u64(s, "cls:trained"), later);
	classifier_close(c);
	close_store(s);
}

/* Another process with a larger store.size grows the file past this
 * one's map. Adopting the new size remaps it, so it waits until no other
 * thread has a transaction or a view open (a view points into the map:
 * the gateway reads the model so); a thread with one of its own open
 * gets a failed begin instead of waiting for itself. */
struct grow_wait {
	struct store *s;
	struct timespec start;
	double waited;
	bool ok;
};

static double
since(const struct timespec *a)
{
	struct timespec b;
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) + (double)(b.tv_nsec - a->tv_nsec) / 1e9;
}

static void *
grow_begin(void *arg)
{
	struct grow_wait *g = arg;
	struct store_view *v = store_view_begin(g->s);
	g->waited = since(&g->start);
	g->ok = v != NULL;
	store_view_end(v);
	return NULL;
}

static void
test_store_map_grown(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/mx-test-cls-%d", (int)getpid());
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	struct store_opts o = {dir, 4u << 20, false};
	char err[256];
	struct store *s = store_open(&o, err, sizeof(err));
	assert_non_null(s);
	char big[65536];
	memset(big, 'x', sizeof(big));
	assert_int_equal(store_put(s, "k", 1, big, sizeof(big), 0), 0);
	struct store_view *v = store_view_begin(s);
	assert_non_null(v);
	const void *p;
	size_t n;
	assert_int_equal(store_view_get(v, "k", 1, &p, &n), MX_FOUND);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) { /* the other process: a store.size of 64 MiB, 8 MiB more data */
		struct store_opts o2 = {dir, 64u << 20, false};
		struct store *s2 = store_open(&o2, err, sizeof(err));
		int rc = s2 == NULL;
		static char chunk[1 << 20];
		memset(chunk, 'y', sizeof(chunk));
		for (int i = 0; i < 8 && rc == 0; i++) {
			char key[16];
			snprintf(key, sizeof(key), "grow%d", i);
			rc = store_put(s2, key, strlen(key), chunk, sizeof(chunk), 0) != 0;
		}
		store_close(s2);
		_exit(rc);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	struct grow_wait g = {.s = s};
	clock_gettime(CLOCK_MONOTONIC, &g.start);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, grow_begin, &g), 0);
	struct timespec pause = {0, 300 * 1000000};
	nanosleep(&pause, NULL);
	/* this thread's view is still good, and a second begin here fails
	 * rather than wait for itself */
	assert_memory_equal(p, big, sizeof(big));
	assert_null(store_view_begin(s));
	store_view_end(v);
	pthread_join(th, NULL);
	assert_true(g.ok);
	assert_true(g.waited >= 0.25); /* it waited for the view to end */
	void *val = NULL;
	size_t len = 0;
	assert_int_equal(store_get(s, "grow7", 5, &val, &len), MX_FOUND);
	assert_int_equal(len, 1 << 20);
	free(val);
	uint64_t used, limit;
	assert_int_equal(store_usage(s, &used, &limit), 0);
	assert_int_equal(limit, 64u << 20);
	close_store(s);
}

/* Expired entries are removed by store_sweep(), a bounded number at a
 * time, from where the last call stopped; live ones and other prefixes are
 * left alone. */
static void
test_store_sweep(void **state)
{
	(void)state;
	struct store *s = open_store();
	char key[32];
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "rc:a%03d", i);
		assert_int_equal(store_put(s, key, strlen(key), "N", 1, 1), 0);
	}
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "rc:b%03d", i);
		assert_int_equal(store_put(s, key, strlen(key), "F", 1, i % 2 ? 0 : 3600), 0);
	}
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "hv:%03d", i);
		assert_int_equal(store_put(s, key, strlen(key), "x", 1, 1), 0);
	}
	assert_int_equal(store_put(s, "rd:z", 4, "x", 1, 1), 0); /* past the prefix */
	sleep(2);
	struct store_sweep sw = {0};
	long total = 0, n;
	int calls = 0;
	do {
		n = store_sweep(s, "rc:", &sw, 30);
		assert_true(n >= 0);
		total += n;
		calls++;
	} while ((n > 0 || sw.next_len > 0) && calls < 20);
	assert_int_equal(total, 100);
	assert_true(calls >= 4); /* 30 a call */
	void *val = NULL;
	size_t len = 0;
	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof(key), "rc:b%03d", i);
		assert_int_equal(store_get(s, key, strlen(key), &val, &len), MX_FOUND);
		free(val);
	}
	/* expired entries read as absent already; removed, they are gone from
	 * a scan too, and the other prefixes keep theirs until swept */
	struct store_sweep hv = {0};
	assert_int_equal(store_sweep(s, "hv:", &hv, 1000), 20);
	assert_int_equal(store_sweep(s, "hv:", &hv, 1000), 0);
	uint64_t used1, limit;
	assert_int_equal(store_usage(s, &used1, &limit), 0);
	struct store_sweep rd = {0};
	assert_int_equal(store_sweep(s, "rd:", &rd, 10), 1);
	close_store(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimum_then_model),
		cmocka_unit_test(test_duplicates_relabel_forget),
		cmocka_unit_test(test_interrupted_learn),
		cmocka_unit_test(test_train_lock),
		cmocka_unit_test(test_generation_grows),
		cmocka_unit_test(test_store_map_grown),
		cmocka_unit_test(test_store_sweep),
		cmocka_unit_test(test_damaged_examples),
		cmocka_unit_test(test_outdated_model),
		cmocka_unit_test(test_forget_then_learn),
		cmocka_unit_test(test_stored_equals_dense),
		cmocka_unit_test(test_damaged_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
