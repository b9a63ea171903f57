/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	classifier - the learning spam classifier
 * DESCRIPTION
 *	Learns from labelled messages and gives a spam probability.  Its state
 *	lives in the store: the training examples (so that learning a message
 *	twice counts once, and forgetting one retrains the model without it)
 *	and the model the examples produce.  Classification reads the model
 *	through a store view: for LMDB, straight from the memory map, so a
 *	`mxguard learn` in another process is seen by the next message.
 *	The learner and its features are described in docs/classifier.md.
 */
#ifndef MX_CLASSIFIER_H
#define MX_CLASSIFIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mime.h"
#include "store.h"
#include "tokenize.h"

struct classifier;
struct classifier_batch;

enum classifier_label { CLASSIFIER_HAM = 0, CLASSIFIER_SPAM = 1, CLASSIFIER_FORGET = 2 };

enum classifier_learn_rc {
	CLASSIFIER_LEARNED,   /* new example */
	CLASSIFIER_DUPLICATE, /* already learned with this label: nothing changes */
	CLASSIFIER_RELABELED, /* learned before with the other label: corrected */
	CLASSIFIER_FORGOTTEN, /* removed */
	CLASSIFIER_UNKNOWN,   /* forget: it was never learned */
	CLASSIFIER_ERROR,
};

struct classifier_stats {
	uint64_t spam, ham;      /* examples the model was trained on */
	uint64_t model_version;  /* bumps at each retrain */
	int64_t trained_at;      /* unix time of the last retrain, 0 = never */
	double train_seconds;    /* how long that retrain took */
	bool trained;
	bool outdated; /* the stored model is an older version's (or damaged): relearn */
	bool stale;    /* examples were stored after the model: a learn is training on
	                  them (training) or did not finish (the next learn retrains) */
	bool training; /* a learn holds the training lock */
	/* without a model: the examples stored, by label (a model needs
	 * classifier_min_each of each) */
	uint64_t stored_spam, stored_ham;
};
/* Examples of each class before there is a model. */
extern const unsigned classifier_min_each;

struct classifier *classifier_open(struct store *st);
void classifier_close(struct classifier *c);

/* Spam probability in [0,1], or -1 when no model has been trained. */
double classifier_classify(struct classifier *c, const struct mime_msg *m);

/* Learning in batches: examples are added, then commit retrains the model
 * from every stored example and writes it, all in one store transaction.
 * classifier_batch_add may be called from several threads at once (the
 * features are extracted outside the batch's lock). */
struct classifier_batch *classifier_batch_begin(struct classifier *c);
enum classifier_learn_rc classifier_batch_add(struct classifier_batch *b, const struct mime_msg *m,
                                              enum classifier_label label);
/* 0, or -1 (nothing is written). Frees b. */
int classifier_batch_commit(struct classifier_batch *b);
void classifier_batch_abort(struct classifier_batch *b);

int classifier_stats(struct classifier *c, struct classifier_stats *out);

/* The learner itself (exposed for tests): trains the TOKENIZE_MODELS
 * models from the examples into w (TOKENIZE_MODELS x TOKENIZE_SPACE
 * floats, zeroed by the caller): CLASSIFIER_PASSES (10) passes, each in the order of
 * splitmix64(id ^ (pass+1) * golden), logistic updates with a thick
 * threshold; docs/classifier.md has the recipe. The examples are left
 * as they are (the retrain inside classifier_batch_commit renumbers its
 * own lists in place). */
struct classifier_example {
	uint64_t id;
	int label; /* 1 spam, 0 ham */
	uint32_t *idx[TOKENIZE_MODELS]; /* each set's indices, ascending */
	uint32_t n[TOKENIZE_MODELS];
};
void classifier_train(const struct classifier_example *ex, size_t n, float *w);
/* One model's log-odds: the sum of w (that model's TOKENIZE_SPACE weights)
 * over the set, in the classifier's order, scaled by 1/sqrt(n); 0 for an
 * empty set. */
double classifier_dot(const float *w, const struct tokenize_set *s);
/* The combined log-odds z of one message's sets under weights w, and the
 * spam probability it means. */
double classifier_z(const float *w, const struct tokenize_sets *f);
double classifier_probability(double z);

#endif
