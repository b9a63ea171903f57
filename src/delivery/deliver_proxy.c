/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	deliver_proxy - before-queue relay: the client gets the downstream's answer
 * DESCRIPTION
 *	Targets are tried in upstream_order(): priority, random among equals,
 *	recently failed ones last.  A target that cannot take the message at
 *	all (connect, greeting, EHLO, 421, timeout before the body went out)
 *	is marked failed for timeouts.downstream_retry and the next one is
 *	tried.  Once a target answered for the message itself, its answer is
 *	final: 2xx -> 250, 4xx -> 451 4.4.0, 5xx -> passed on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "delivery.h"
#include "log.h"
#include "smtpc.h"
#include "str.h"
#include "xalloc.h"

#define PROXY_MAX_TARGETS 64

struct proxy_job {
	struct smtpc_pool *pool;
	const struct mx_config *cfg;
	struct upstream_set *ups;
	struct envelope *env;
	size_t order[PROXY_MAX_TARGETS];
	size_t n, i;
	unsigned attempts;
	char last_err[300];
	delivery_done_cb cb;
	void *arg;
	struct delivery_outcome out;
};

/* from delivery.c */
enum delivery_rc deliver_proxy_submit(struct delivery *d, const struct mx_config *cfg,
                                      struct upstream_set *ups, struct envelope *env,
                                      struct delivery_outcome *out, delivery_done_cb cb, void *arg);

static struct log_ratelimit proxy_down_rl;

static void proxy_try(struct proxy_job *j);

static void
proxy_finish(struct proxy_job *j)
{
	j->cb(&j->out, j->arg);
	free(j);
}

static void
proxy_result(const struct smtpc_result *r, void *arg)
{
	struct proxy_job *j = arg;
	struct upstream_target *t = &j->ups->t[j->order[j->i]];
	struct delivery_outcome *o = &j->out;
	char dtext[300];
	log_escape(dtext, sizeof(dtext), r->text, strlen(r->text));

	if (r->status == SMTPC_CONNFAIL) {
		upstream_mark_dead(t, mx_clock_mono_ms() + (uint64_t)j->cfg->t_down_retry);
		unsigned supp = 0;
		if (log_ratelimit_ok(&proxy_down_rl, 10, &supp))
			log_warn("downstream %s unusable at %s: %s%s", t->name, r->stage, dtext,
			         supp ? " (and more, suppressed)" : "");
		snprintf(j->last_err, sizeof(j->last_err), "%s at %s: %s", t->name, r->stage, dtext);
		j->i++;
		proxy_try(j);
		return;
	}
	upstream_mark_alive(t);
	snprintf(o->log, sizeof(o->log), "downstream=%s stage=%s attempts=%u downstream_reply=\"%d%s%s %s\"",
	         t->name, r->stage, j->attempts, r->code, *r->enh ? " " : "", r->enh, dtext);
	switch (r->status) {
	case SMTPC_OK:
		o->code = 250;
		mx_strlcpy(o->enh, "2.0.0", sizeof(o->enh));
		snprintf(o->text, sizeof(o->text), "Ok: %s relayed (mailbox server: %d %s)", j->env->id,
		         r->code, r->text);
		break;
	case SMTPC_TEMP:
		o->code = 451;
		mx_strlcpy(o->enh, "4.4.0", sizeof(o->enh));
		if (r->code)
			snprintf(o->text, sizeof(o->text), "Mailbox server deferred the message: %d%s%s %s",
			         r->code, *r->enh ? " " : "", r->enh, r->text);
		else
			snprintf(o->text, sizeof(o->text), "Mailbox server did not confirm the message: %s",
			         r->text);
		break;
	case SMTPC_PERM:
	case SMTPC_CONNFAIL:
		o->code = r->code >= 500 && r->code <= 599 ? r->code : 554;
		mx_strlcpy(o->enh, r->enh[0] == '5' ? r->enh : "5.0.0", sizeof(o->enh));
		snprintf(o->text, sizeof(o->text), "Mailbox server rejected the message: %s", r->text);
		break;
	}
	proxy_finish(j);
}

static void
proxy_try(struct proxy_job *j)
{
	if (j->i >= j->n) {
		struct delivery_outcome *o = &j->out;
		o->code = 451;
		mx_strlcpy(o->enh, "4.4.1", sizeof(o->enh));
		mx_strlcpy(o->text, "Mailbox server unavailable, try again later", sizeof(o->text));
		snprintf(o->log, sizeof(o->log), "downstream=none attempts=%u last_error=\"%s\"",
		         j->attempts, j->last_err);
		proxy_finish(j);
		return;
	}
	struct upstream_target *t = &j->ups->t[j->order[j->i]];
	struct smtpc_target st = {
		.lmtp = t->proto == UPSTREAM_LMTP,
		.addrlen = t->addrlen,
		.name = t->name,
	};
	memcpy(&st.addr, &t->addr, t->addrlen);
	struct smtpc_opts so = {
		.helo = j->cfg->down_helo ? j->cfg->down_helo : j->cfg->hostname,
		.t_connect = j->cfg->t_down_connect,
		.t_reply = j->cfg->t_down_reply,
		.t_data = j->cfg->t_down_data,
		.t_idle = j->cfg->t_down_idle,
		.tls = smtpc_tls_policy(j->cfg->down_tls),
	};
	j->attempts++;
	smtpc_send(j->pool, &st, &so, j->env, proxy_result, j);
}

enum delivery_rc
deliver_proxy_submit(struct delivery *d, const struct mx_config *cfg, struct upstream_set *ups,
                     struct envelope *env, struct delivery_outcome *out, delivery_done_cb cb,
                     void *arg)
{
	struct proxy_job *j = xcalloc(1, sizeof(*j));
	j->pool = delivery_pool(d);
	j->cfg = cfg;
	j->ups = ups;
	j->env = env;
	j->cb = cb;
	j->arg = arg;
	j->n = upstream_order(ups, j->order, PROXY_MAX_TARGETS, mx_clock_mono_ms());
	(void)out;
	proxy_try(j);
	return DELIVERY_PENDING;
}
