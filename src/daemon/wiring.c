/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	wiring - fills the SMTP hooks with recipient checks and delivery
 * DESCRIPTION
 *	RCPT: hosted domain? (else 554 5.7.1 relay denied), then the
 *	recipient map (550 5.1.1 unknown, 451 4.4.3 when the directory cannot
 *	answer).  End of DATA: delivery; the client gets its outcome.
 */
#include "wiring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connlimit.h"
#include "log.h"
#include "stats.h"
#include "str.h"

static void
wiring_rcpt_answer(struct smtpd_verdict *v, enum mx_lookup r, const char *addr)
{
	enum smtp_reply_id id = smtp_reply_for_lookup(r);
	const struct smtp_reply *rep = smtp_reply_get(id);
	switch (r) {
	case MX_FOUND:
		smtpd_verdict_init(v, REPLY_RCPT_OK);
		break;
	case MX_NOTFOUND:
		smtpd_verdict_custom(v, rep->code, rep->enh, "<%s>: %s", addr, rep->text);
		v->unknown_rcpt = true;
		stats_inc(STAT_SMTP_RCPT_UNKNOWN);
		break;
	default:
		smtpd_verdict_custom(v, rep->code, rep->enh, "<%s>: %s", addr, rep->text);
		stats_inc(STAT_SMTP_RCPT_TEMPFAIL);
		break;
	}
}

struct wiring_rcpt_wait {
	struct wiring_session *ws;
	char addr[SMTP_PATH_MAX + 1];
};

static void
wiring_rcpt_done(enum mx_lookup r, void *arg)
{
	struct wiring_rcpt_wait *w = arg;
	struct smtpd_verdict v;
	wiring_rcpt_answer(&v, r, w->addr);
	struct smtpd_session *s = w->ws->s;
	free(w);
	smtpd_resume(s, &v);
}

static enum smtpd_hook_rc
wiring_connect(struct smtpd_session *s, struct smtpd_verdict *v)
{
	struct wiring_session *ws = smtpd_session_hook_data(s);
	ws->s = s;
	smtpd_verdict_init(v, REPLY_OK);
	return SMTPD_HOOK_DONE;
}

static enum smtpd_hook_rc
wiring_rcpt(struct smtpd_session *s, const struct smtp_addr *a, struct smtpd_verdict *v)
{
	struct wiring_session *ws = smtpd_session_hook_data(s);
	struct runtime *rt = ws->rt;
	if (a->literal || !domain_set_match(rt->domains, a->domain)) {
		const struct smtp_reply *rep = smtp_reply_get(REPLY_RELAY_DENIED);
		char esc[300];
		log_escape(esc, sizeof(esc), a->addr, strlen(a->addr));
		smtpd_verdict_custom(v, rep->code, rep->enh, "<%s>: %s", esc, rep->text);
		stats_inc(STAT_SMTP_RELAY_DENIED);
		return SMTPD_HOOK_DONE;
	}
	struct wiring_rcpt_wait *w = malloc(sizeof(*w));
	if (w == NULL) {
		smtpd_verdict_init(v, REPLY_LOCAL_ERROR);
		return SMTPD_HOOK_DONE;
	}
	w->ws = ws;
	mx_strlcpy(w->addr, a->addr, sizeof(w->addr));
	enum mx_lookup r = rcpt_lookup(rt->rcpt, ws->w->base, a, wiring_rcpt_done, w);
	if (r == MX_PENDING)
		return SMTPD_HOOK_PENDING;
	wiring_rcpt_answer(v, r, w->addr);
	free(w);
	return SMTPD_HOOK_DONE;
}

static void
wiring_outcome(struct smtpd_verdict *v, const struct delivery_outcome *o)
{
	smtpd_verdict_custom(v, o->code, o->enh, "%s", o->text);
	mx_strlcpy(v->log, o->log, sizeof(v->log));
}

static void
wiring_delivered(const struct delivery_outcome *o, void *arg)
{
	struct wiring_session *ws = arg;
	struct smtpd_verdict v;
	wiring_outcome(&v, o);
	smtpd_resume(ws->s, &v);
}

static enum smtpd_hook_rc
wiring_message(struct smtpd_session *s, struct envelope *env, struct smtpd_verdict *v)
{
	struct wiring_session *ws = smtpd_session_hook_data(s);
	struct delivery_outcome o;
	if (delivery_submit(ws->w->delivery, ws->rt->cfg, ws->rt->ups, env, &o, wiring_delivered, ws) ==
	    DELIVERY_PENDING)
		return SMTPD_HOOK_PENDING;
	wiring_outcome(v, &o);
	return SMTPD_HOOK_DONE;
}

static void
wiring_close(struct smtpd_session *s)
{
	struct wiring_session *ws = smtpd_session_hook_data(s);
	connlimit_release(ws->w->connlimit, (const struct sockaddr *)&ws->peer);
	runtime_unref(ws->rt);
	free(ws);
}

const struct smtpd_hooks wiring_hooks = {
	.connect = wiring_connect,
	.rcpt = wiring_rcpt,
	.message = wiring_message,
	.close = wiring_close,
};
