/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	headers - the header block mxguard sends on: verdict headers added,
 *	forged ones removed, Subject prefixed
 * DESCRIPTION
 *	headers_rewrite() takes a message's raw header block and returns the
 *	block to send instead: every incoming X-Spam-* header dropped (a
 *	sender must not be able to pose as our verdict), and, when prefix is
 *	given, the Subject prefixed (a Subject: line is added if there was
 *	none).  Folded lines stay with their header.  Line ends are kept.
 *	A block without the empty line is a message without a body: all of
 *	it is rewritten, and a Subject: line added goes at its end.
 */
#ifndef MX_HEADERS_H
#define MX_HEADERS_H

#include <stdbool.h>
#include <stddef.h>

#include "scan.h"

/* Returns the new block (caller frees), or NULL when nothing changes.
 * The block may hold any byte, NUL too: *out_len (if not NULL) says how
 * long the result is. */
char *headers_rewrite(const char *block, size_t len, const char *subject_prefix, size_t *out_len);
/* Our verdict: "X-Spam-Status: Yes, score=7.20 ...\r\n" lines (caller frees). */
char *headers_verdict(const struct scan_result *r, const char *hostname);

#endif
