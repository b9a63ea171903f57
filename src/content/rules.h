/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	rules - the admin's rules file: regex rules, meta rules, lists
 * DESCRIPTION
 *	One rule a line (docs/rules.md):
 *	    header NAME Header-Name /regex/flags SCORE [description]
 *	    body   NAME /regex/flags SCORE [description]     decoded text
 *	    uri    NAME /regex/flags SCORE [description]     each link
 *	    raw    NAME /regex/flags SCORE [description]     raw message
 *	    meta   NAME EXPRESSION SCORE [description]       && || ! ( )
 *	    score  NAME SCORE                                  override
 *	    allow_from | deny_from       ADDRESS|@DOMAIN ...
 *	    allow_network | deny_network CIDR ...
 *	    allow_urlhost | deny_urlhost HOST ...
 *	Regexes are PCRE2, JIT-compiled, with match limits so that no rule
 *	can backtrack for long.  A bad line is a file:line error and the whole
 *	file is refused (a reload keeps the old rules).
 *	A rules set is immutable after loading and shared by all threads.
 */
#ifndef MX_RULES_H
#define MX_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "config.h"
#include "mime.h"

struct rules;

/* What a rule looks at, besides the parsed message. */
struct rules_input {
	const struct mime_msg *msg;
	const char *mail_from;          /* envelope sender, may be NULL/"" */
	const struct sockaddr *client;  /* may be NULL (offline scans) */
};

/* One symbol that fired. */
struct rules_hit {
	const char *name; /* owned by the rules set */
	double score;
};

typedef void (*rules_hit_cb)(const char *name, double score, void *arg);

/* Loads path (NULL: only the built-in symbols); NULL with errs on error. */
struct rules *rules_load(const char *path, struct config_errors *errs);
void rules_free(struct rules *r);
size_t rules_count(const struct rules *r);
/* Runs every rule; calls cb for each symbol that fires (lists included). */
void rules_run(const struct rules *r, const struct rules_input *in, rules_hit_cb cb, void *arg);
/* The score of a named symbol: the file's `score` line, else dflt. */
double rules_symbol_score(const struct rules *r, const char *name, double dflt);

#endif
