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

struct classifier;
struct classifier_batch;

enum classifier_label { CLS_HAM = 0, CLS_SPAM = 1, CLS_FORGET = 2 };

enum classifier_learn_rc {
	CLS_LEARNED,   /* new example */
	CLS_DUPLICATE, /* already learned with this label: nothing changes */
	CLS_RELABELED, /* learned before with the other label: corrected */
	CLS_FORGOTTEN, /* removed */
	CLS_UNKNOWN,   /* forget: it was never learned */
	CLS_ERROR,
};

struct classifier_stats {
	uint64_t spam, ham;      /* examples the model was trained on */
	uint64_t model_version;  /* bumps at each retrain */
	int64_t trained_at;      /* unix time of the last retrain, 0 = never */
	double train_seconds;    /* how long that retrain took */
	bool trained;
};

struct classifier *classifier_open(struct store *st);
void classifier_close(struct classifier *c);

/* Spam probability in [0,1], or -1 when no model has been trained. */
double classifier_classify(struct classifier *c, const struct mime_msg *m);

/* Learning in batches: examples are added, then commit retrains the model
 * from every stored example and writes it, all in one store transaction. */
struct classifier_batch *classifier_batch_begin(struct classifier *c);
enum classifier_learn_rc classifier_batch_add(struct classifier_batch *b, const struct mime_msg *m,
                                              enum classifier_label label);
/* 0, or -1 (nothing is written). Frees b. */
int classifier_batch_commit(struct classifier_batch *b);
void classifier_batch_abort(struct classifier_batch *b);

int classifier_stats(struct classifier *c, struct classifier_stats *out);

#endif
