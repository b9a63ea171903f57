/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	rcpt_cache - directory answers kept in the store
 * DESCRIPTION
 *	"rc:ADDRESS" -> "F" (exists) or "N" (does not), with the positive or
 *	negative TTL.  The key is the whole address as looked up (lowercase),
 *	the value the final answer after extensions and catch-all, so a hit
 *	costs one read.  The store is shared (across workers now, across
 *	gateways with a network store later).  TEMPFAIL is never cached, and
 *	a store that cannot answer reads as a miss: the directory is asked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rcpt_int.h"
#include "stats.h"

#define RCPT_CACHE_PREFIX "rc:"

static int
rcpt_cache_key(char *out, size_t len, const char *key)
{
	int n = snprintf(out, len, RCPT_CACHE_PREFIX "%s", key);
	return n > 0 && (size_t)n < len ? n : -1;
}

enum mx_lookup
rcpt_cache_get(struct store *s, const char *key)
{
	char k[STORE_KEY_MAX + 1];
	int kl = rcpt_cache_key(k, sizeof(k), key);
	if (kl < 0)
		return MX_PENDING;
	struct store_view *v = store_view_begin(s);
	if (v == NULL)
		return MX_PENDING;
	const void *val;
	size_t vlen;
	enum mx_lookup r = MX_PENDING;
	if (store_view_get(v, k, (size_t)kl, &val, &vlen) == MX_FOUND && vlen == 1)
		r = *(const char *)val == 'F' ? MX_FOUND : *(const char *)val == 'N' ? MX_NOTFOUND
		                                                                    : MX_PENDING;
	store_view_end(v);
	stats_inc(r == MX_PENDING ? STAT_RCPT_CACHE_MISS : STAT_RCPT_CACHE_HIT);
	return r;
}

void
rcpt_cache_put(struct event_base *base, struct store *s, const char *key, enum mx_lookup r,
               uint32_t ttl_s)
{
	char k[STORE_KEY_MAX + 1];
	if (ttl_s == 0 || (r != MX_FOUND && r != MX_NOTFOUND) ||
	    rcpt_cache_key(k, sizeof(k), key) < 0)
		return;
	rcpt_local_put(base, s, k, r == MX_FOUND ? "F" : "N", 1, ttl_s);
}
