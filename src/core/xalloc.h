/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	xalloc - allocation that never returns NULL
 * DESCRIPTION
 *	Out of memory aborts the process.  Sizes that a peer controls are
 *	capped before they reach these functions, so OOM is a bug or a limit
 *	set too high, never something an attacker can trigger.
 */
#ifndef MX_XALLOC_H
#define MX_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* Grows an array of nmemb elements to at least want, doubling; overflow-checked. */
void *xgrow(void *p, size_t *nmemb, size_t want, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
