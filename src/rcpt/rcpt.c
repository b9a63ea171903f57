/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	rcpt - recipient lookups: candidate keys, chaining, backends
 * DESCRIPTION
 *	The candidate keys are tried one after another; for a synchronous
 *	backend (the file) the whole chain runs inside rcpt_lookup().  When a
 *	backend answers later, the chain continues from its callback with a
 *	heap-allocated query.
 */
#include "rcpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "xalloc.h"

#define RCPT_KEYS 3

struct rcpt_map {
	const struct rcpt_backend_ops *ops;
	void *be;
	char delimiter[9];
	char describe[300];
};

struct rcpt_query {
	struct rcpt_map *m;
	struct event_base *base;
	char keys[RCPT_KEYS][SMTP_PATH_MAX + 2];
	int nkeys, next;
	rcpt_done_cb cb;
	void *arg;
};

struct rcpt_map *
rcpt_map_build(const struct mx_config *cfg, struct config_errors *errs)
{
	struct rcpt_map *m = xcalloc(1, sizeof(*m));
	mx_strlcpy(m->delimiter, cfg->rcpt_delimiter ? cfg->rcpt_delimiter : "", sizeof(m->delimiter));
	if (cfg->rcpt_file != NULL) {
		m->ops = &rcpt_file_ops;
		m->be = rcpt_file_open(cfg->rcpt_file, cfg, errs, m->describe, sizeof(m->describe));
	}
	if (m->be == NULL) {
		free(m);
		return NULL;
	}
	return m;
}

void
rcpt_map_free(struct rcpt_map *m)
{
	if (m == NULL)
		return;
	m->ops->free(m->be);
	free(m);
}

const char *
rcpt_map_describe(const struct rcpt_map *m)
{
	return m->describe;
}

/* Fills the candidate keys for a: full, without +extension, @domain. */
static int
rcpt_keys(const struct rcpt_map *m, const struct smtp_addr *a, char keys[RCPT_KEYS][SMTP_PATH_MAX + 2])
{
	int n = 0;
	char local[SMTP_LOCAL_MAX + 1];
	mx_strlcpy(local, a->local, sizeof(local));
	mx_str_lower(local);
	snprintf(keys[n++], SMTP_PATH_MAX + 2, "%s@%s", local, a->domain);
	if (m->delimiter[0] != '\0' && !a->quoted) {
		size_t cut = strcspn(local, m->delimiter);
		if (cut > 0 && local[cut] != '\0') {
			local[cut] = '\0';
			snprintf(keys[n++], SMTP_PATH_MAX + 2, "%s@%s", local, a->domain);
		}
	}
	snprintf(keys[n++], SMTP_PATH_MAX + 2, "@%s", a->domain);
	return n;
}

static void rcpt_query_step(enum mx_lookup r, void *arg);

/* Runs keys from q->next on; returns the final answer or MX_PENDING. */
static enum mx_lookup
rcpt_query_run(struct rcpt_query *q)
{
	while (q->next < q->nkeys) {
		const char *key = q->keys[q->next++];
		enum mx_lookup r = q->m->ops->lookup(q->m->be, q->base, key, rcpt_query_step, q);
		if (r == MX_PENDING)
			return MX_PENDING;
		if (r != MX_NOTFOUND)
			return r;
	}
	return MX_NOTFOUND;
}

static void
rcpt_query_step(enum mx_lookup r, void *arg)
{
	struct rcpt_query *q = arg;
	if (r == MX_NOTFOUND)
		r = rcpt_query_run(q);
	if (r == MX_PENDING)
		return;
	q->cb(r, q->arg);
	free(q);
}

enum mx_lookup
rcpt_lookup(struct rcpt_map *m, struct event_base *base, const struct smtp_addr *a,
            rcpt_done_cb cb, void *arg)
{
	char keys[RCPT_KEYS][SMTP_PATH_MAX + 2];
	int n = rcpt_keys(m, a, keys);
	if (!m->ops->async) { /* the fast path: no allocation */
		for (int i = 0; i < n; i++) {
			enum mx_lookup r = m->ops->lookup(m->be, base, keys[i], NULL, NULL);
			if (r != MX_NOTFOUND)
				return r;
		}
		return MX_NOTFOUND;
	}
	struct rcpt_query *q = xmalloc(sizeof(*q));
	q->m = m;
	q->base = base;
	memcpy(q->keys, keys, sizeof(keys));
	q->nkeys = n;
	q->next = 0;
	q->cb = cb;
	q->arg = arg;
	enum mx_lookup r = rcpt_query_run(q);
	if (r != MX_PENDING)
		free(q);
	return r;
}
