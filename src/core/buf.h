/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	buf - growable byte buffer with a hard cap
 * DESCRIPTION
 *	Appends past the cap are cut and set `truncated`; growth is doubling
 *	and overflow-checked.  data is always NUL-terminated.  Pointers into
 *	data become invalid after an append (it may move).
 */
#ifndef MX_BUF_H
#define MX_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len, cap, max;
	bool truncated;
};

void buf_init(struct buf *b, size_t max);
void buf_clear(struct buf *b); /* frees; b can be reused after buf_init */
void buf_reset(struct buf *b); /* len = 0, keeps memory */
/* Returns 0, or -1 when cut at the cap. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_appendc(struct buf *b, char c);
int buf_appends(struct buf *b, const char *s);

#endif
