/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	rcpt_chan - what the directory backends' channels have in common
 * DESCRIPTION
 *	LDAP, PostgreSQL, MySQL and the callout each keep one channel per
 *	worker (rcpt_int.h) and treat it alike: found or made by identity,
 *	warnings rate-limited per channel, a back-off after failed connects
 *	during which lookups answer TEMPFAIL at once, a cap on waiting
 *	lookups, and a timer per lookup.  The protocol work stays in each
 *	backend.
 */
#include "rcpt_int.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "stats.h"
#include "str.h"
#include "xalloc.h"

#define RCPT_CHAN_WARN_S 10

struct rcpt_chan *
rcpt_chan_get(struct event_base *base, const struct rcpt_chan_type *t, const char *ident,
              const char *where, bool *fresh)
{
	struct rcpt_chan *c = rcpt_local_find(base, ident);
	*fresh = c == NULL;
	if (c != NULL)
		return c;
	c = xcalloc(1, t->size);
	mx_strlcpy(c->ident, ident, sizeof(c->ident));
	c->busy = t->busy;
	c->free = t->free;
	c->kind = t->kind;
	c->where = where;
	rcpt_local_add(base, c);
	return c;
}

void
rcpt_chan_warn(struct rcpt_chan *c, const char *what, const char *detail)
{
	unsigned supp = 0;
	if (!log_ratelimit_ok(&c->rl, RCPT_CHAN_WARN_S, &supp))
		return;
	char esc[300] = "";
	if (detail != NULL) {
		size_t n = strlen(detail);
		while (n > 0 && (detail[n - 1] == '\n' || detail[n - 1] == ' '))
			n--;
		log_escape(esc, sizeof(esc), detail, n);
	}
	log_warn("%s %s: %s%s%s", c->kind, c->where, what, esc, supp ? " (and earlier)" : "");
}

void
rcpt_chan_backoff(struct rcpt_chan *c)
{
	if (c->backoff == 0)
		c->backoff = RCPT_BACKOFF_MIN_MS;
	else
		c->backoff = c->backoff >= RCPT_BACKOFF_MAX_MS / 2 ? RCPT_BACKOFF_MAX_MS : c->backoff * 2;
	c->retry_at = mx_clock_mono_ms() + c->backoff;
}

void
rcpt_chan_up(struct rcpt_chan *c)
{
	c->backoff = 0;
}

bool
rcpt_chan_refuse(struct rcpt_chan *c, bool down, unsigned n_ops, unsigned max)
{
	bool refuse = false;
	if (down && mx_clock_mono_ms() < c->retry_at) {
		refuse = true; /* recently unreachable: answer at once */
	} else if (n_ops >= max) {
		rcpt_chan_warn(c, "too many lookups waiting", NULL);
		refuse = true;
	}
	if (refuse)
		stats_inc(STAT_RCPT_DIRECTORY_FAIL);
	return refuse;
}

struct event *
rcpt_timer_start(struct event_base *base, long long ms, event_callback_fn cb, void *arg)
{
	struct event *ev = evtimer_new(base, cb, arg);
	struct timeval tv = rcpt_tv(ms);
	evtimer_add(ev, &tv);
	return ev;
}
