/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	html - HTML reduced to text, links kept
 * DESCRIPTION
 *	A tolerant single-pass converter: tags dropped (block tags become line
 *	breaks), <script>, <style> and comments skipped, character references
 *	decoded to UTF-8, href/src attribute values handed to a callback.
 *	Written here because a DOM parser is far slower than spam filtering
 *	needs and gives nothing for this use (docs/design.md).
 * LIMITS
 *	Linear in the input; output bounded by the buf's cap; attribute
 *	values longer than 2 KB are not reported.
 */
#ifndef MX_HTML_H
#define MX_HTML_H

#include <stddef.h>

#include "buf.h"

typedef void (*html_url_cb)(const char *url, size_t len, void *arg);

void html_to_text(const char *in, size_t n, struct buf *out, html_url_cb cb, void *arg);

#endif
