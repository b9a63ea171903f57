/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	tokenize - a message as sets of hashed feature indices
 * DESCRIPTION
 *	Three feature sets per message (docs/classifier.md has the exact
 *	recipe): R, character 4-grams of the first bytes; T, tokens of the
 *	headers, the MIME structure and the body text; H, the header and
 *	structure tokens alone.  Tokens and 4-grams are hashed with 32-bit
 *	FNV-1a and folded to TOKENIZE_BITS bits; a set holds each index once.
 *	tokenize_message_id() is the message's identity for learning: 64-bit
 *	XXH3 of its bytes (without a leading mbox From line, CRLF as LF).
 */
#ifndef MX_TOKENIZE_H
#define MX_TOKENIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mime.h"

#define TOKENIZE_BITS 20
#define TOKENIZE_SPACE (1u << TOKENIZE_BITS)
#define TOKENIZE_MODELS 3

enum { TOKENIZE_R = 0, TOKENIZE_T = 1, TOKENIZE_H = 2 };

struct tokenize_set {
	uint32_t *v;
	size_t n, cap;
};

struct tokenize_sets {
	struct tokenize_set set[TOKENIZE_MODELS];
};

/* Fills f (caller clears it with tokenize_clear). Thread-safe. */
void tokenize_extract(const struct mime_msg *m, struct tokenize_sets *f);
void tokenize_clear(struct tokenize_sets *f);
/* Sorts each set ascending (training then walks the weights in order). */
void tokenize_sort(struct tokenize_sets *f);
uint64_t tokenize_message_id(const struct mime_msg *m);

/* Exposed for tests (vectors from the research reference). */
uint32_t tokenize_fnv1a32(const void *p, size_t n, uint32_t h);
uint32_t tokenize_fold(uint32_t h);
uint64_t tokenize_fnv1a64(const void *p, size_t n);
size_t tokenize_shape(const char *s, size_t n, char *out); /* out: n bytes */
void tokenize_regdom(const char *host, size_t n, char *out, size_t outlen);
bool tokenize_excluded(const char *name); /* lowercase header name */
/* Tests and debugging: when set, called with every token (not the R
 * 4-grams) as it is emitted; header is true for tokens of both T and H. */
extern void (*tokenize_trace)(bool header, const char *prefix, size_t plen, const char *s, size_t n);

#endif
