/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	scan - one message in, a score, an action and the symbols out
 * DESCRIPTION
 *	Runs MIME analysis, the classifier and the rules, adds up the symbol
 *	scores and picks the action from the thresholds.  Scores are log-odds:
 *	the CLASSIFIER symbol is the logit of the classifier's probability,
 *	a rule scoring 2 multiplies the odds of spam by e^2, and
 *	spam_probability is the logistic function of the total.
 *	A scanner is immutable once built and shared by every thread.
 */
#ifndef MX_SCAN_H
#define MX_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "classifier.h"
#include "config.h"
#include "mime.h"
#include "rules.h"

enum scan_action { SCAN_ACCEPT, SCAN_TAG, SCAN_TEMPFAIL, SCAN_REJECT };

#define SCAN_SYMBOLS_MAX 64

struct scan_symbol {
	char name[65];
	double score;
};

struct scan_result {
	double score;
	double spam_probability;
	double classifier_probability; /* -1: no model */
	enum scan_action action;
	struct scan_symbol sym[SCAN_SYMBOLS_MAX];
	size_t n_sym;
	size_t n_sym_dropped; /* fired past SCAN_SYMBOLS_MAX: scored, not named */
	unsigned mime_flags;
	char digest_subject[120]; /* for logs */
};

struct scanner;

/* rules may be NULL (taken); cls may be NULL (borrowed). */
struct scanner *scanner_new(const struct mx_config *cfg, struct rules *rules, struct classifier *cls);
void scanner_free(struct scanner *s);
/*
 * Scans data[0..len).  mail_from and client may be NULL (offline).  When
 * msg is not NULL it receives the parsed message (the caller clears it).
 */
void scanner_scan(const struct scanner *s, const char *data, size_t len, const char *mail_from,
                  const struct sockaddr *client, struct scan_result *out, struct mime_msg *msg);
const char *scan_action_name(enum scan_action a);
/* "CLASSIFIER(3.21),GTUBE(1000.00)" into buf. */
void scan_symbols_str(const struct scan_result *r, char *buf, size_t len);
const struct mime_limits *scanner_limits(const struct scanner *s);

#endif
