/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	wiring - fills the SMTP hooks with recipient checks and delivery
 * DESCRIPTION
 *	Connect: a client blocked by the harvest defence is refused (421 or
 *	554), a tarpitted one greeted late.  RCPT: hosted domain? (else 554
 *	5.7.1 relay denied), then the recipient map (550 5.1.1 unknown, 451
 *	4.4.3 when the directory cannot answer); unknown recipients count
 *	towards the harvest defence, whose tarpit holds the reply (a timer on
 *	the session's base) and whose block ends the session.  End of DATA:
 *	delivery; the client gets its outcome.
 */
#include "wiring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "blob.h"
#include "connlimit.h"
#include "headers.h"
#include "log.h"
#include "queue.h"
#include "stats.h"
#include "str.h"
#include "xalloc.h"

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

/* ---- harvest defence: tarpit and block ------------------------------------ */

struct wiring_hold {
	struct smtpd_session *s;
	struct event *ev;
	struct smtpd_verdict v;
};

static void
wiring_hold_done(evutil_socket_t fd, short what, void *arg)
{
	struct wiring_hold *h = arg;
	(void)fd;
	(void)what;
	event_free(h->ev);
	struct smtpd_session *s = h->s;
	struct wiring_session *ws = smtpd_session_hook_data(s);
	struct smtpd_verdict v = h->v;
	ws->hold = NULL;
	free(h);
	smtpd_resume(s, &v);
}

/* The tarpit: the verdict goes out after ms, from a timer. */
static void
wiring_hold(struct smtpd_session *s, const struct smtpd_verdict *v, long long ms)
{
	struct wiring_hold *h = xmalloc(sizeof(*h));
	h->s = s;
	h->v = *v;
	h->ev = evtimer_new(smtpd_session_base(s), wiring_hold_done, h);
	((struct wiring_session *)smtpd_session_hook_data(s))->hold = h;
	/* the loop's cached time may be behind: the hold must not be shorter */
	event_base_update_cache_time(smtpd_session_base(s));
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	evtimer_add(h->ev, &tv);
	stats_inc(STAT_HARVEST_TARPIT);
}

/* The client is blocked: 421 or 554 (harvest.block_code), and goodbye. */
static void
wiring_blocked(struct wiring_session *ws, struct smtpd_verdict *v, const char *addr)
{
	int code = harvest_block_code(ws->rt->harvest);
	smtpd_verdict_custom(v, code, code == 421 ? "4.7.1" : "5.7.1",
	                     "%s%s%sToo many unknown recipients from your address; blocked, try "
	                     "again later", addr ? "<" : "", addr ? addr : "", addr ? ">: " : "");
	v->disconnect = true;
	snprintf(v->log, sizeof(v->log), "harvest=blocked key=%s", ws->hc.key);
}

/*
 * The harvest defence on a recipient verdict: counts an unknown one, and
 * returns how long to hold the reply (0: at once).  A client that crossed
 * harvest.block_after gets the block reply instead.
 */
static long long
wiring_harvest_rcpt(struct wiring_session *ws, struct smtpd_verdict *v, enum mx_lookup r,
                    const char *addr)
{
	const struct harvest *h = ws->rt->harvest;
	if (!ws->harvest || h == NULL)
		return 0;
	enum harvest_state st = r == MX_NOTFOUND ? harvest_unknown(h, ws->w->harvest, &ws->hc)
	                                         : harvest_state(h, &ws->hc);
	if (st == HARVEST_BLOCKED) {
		wiring_blocked(ws, v, addr);
		return 0;
	}
	return st == HARVEST_TARPIT ? harvest_tarpit_ms(h) : 0;
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
	w->ws->rcpt_wait = NULL;
	long long hold = wiring_harvest_rcpt(w->ws, &v, r, w->addr);
	free(w);
	if (hold > 0)
		wiring_hold(s, &v, hold);
	else
		smtpd_resume(s, &v);
}

static enum smtpd_hook_rc
wiring_connect(struct smtpd_session *s, struct smtpd_verdict *v)
{
	struct wiring_session *ws = smtpd_session_hook_data(s);
	ws->s = s;
	smtpd_verdict_init(v, REPLY_OK);
	const struct harvest *h = ws->rt->harvest;
	if (h == NULL || ws->w->harvest == NULL)
		return SMTPD_HOOK_DONE;
	ws->harvest = true;
	switch (harvest_connect(h, ws->w->harvest, (const struct sockaddr *)&ws->peer, &ws->hc)) {
	case HARVEST_BLOCKED: {
		char until[32] = "";
		struct tm tm;
		if (gmtime_r(&ws->hc.until, &tm) != NULL)
			strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", &tm);
		wiring_blocked(ws, v, NULL);
		stats_inc(STAT_HARVEST_REFUSED);
		log_info("%s harvest: refused client=%s key=%s blocked_until=%s", smtpd_session_id(s),
		         ws->hc.ip, ws->hc.key, until);
		return SMTPD_HOOK_DONE;
	}
	case HARVEST_TARPIT:
		if (harvest_tarpit_ms(h) > 0) {
			wiring_hold(s, v, harvest_tarpit_ms(h));
			return SMTPD_HOOK_PENDING;
		}
		return SMTPD_HOOK_DONE;
	case HARVEST_OK:
		break;
	}
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
	if (r == MX_PENDING) {
		ws->rcpt_wait = w;
		return SMTPD_HOOK_PENDING;
	}
	wiring_rcpt_answer(v, r, w->addr);
	long long hold = wiring_harvest_rcpt(ws, v, r, w->addr);
	free(w);
	if (hold > 0) {
		wiring_hold(s, v, hold);
		return SMTPD_HOOK_PENDING;
	}
	return SMTPD_HOOK_DONE;
}

static void
wiring_outcome(struct wiring_session *ws, struct smtpd_verdict *v, const struct delivery_outcome *o)
{
	smtpd_verdict_custom(v, o->code, o->enh, "%s", o->text);
	snprintf(v->log, sizeof(v->log), "%s%s%s", ws->scanlog, *ws->scanlog ? " " : "", o->log);
}

static void
wiring_delivered(const struct delivery_outcome *o, void *arg)
{
	struct wiring_session *ws = arg;
	struct smtpd_verdict v;
	wiring_outcome(ws, &v, o);
	smtpd_resume(ws->s, &v);
}

/* A header block longer than this is refused: no mail program writes
 * one, and past it our verdict headers could not replace a sender's. */
#define WIRING_HEADERS_MAX (1 << 20)

/* The header block at the start of p[0..n): with the empty line that
 * ends it, or all of p when that is the whole message and it has no body;
 * 0 when there is neither in p. */
static size_t
wiring_header_len(const char *p, size_t n, bool whole)
{
	size_t len = mx_header_block_len(p, n);
	return len > 0 || !whole ? len : n;
}

/*
 * The header block of the message in body, whose first n bytes are at p:
 * from p when it is there (the usual case), else read into *buf (freed by
 * the caller).  A message without an empty line is all header block (it
 * has no body), so that a sender cannot keep an X-Spam-* header past the
 * rewrite by leaving the empty line out.  NULL when the block is longer
 * than WIRING_HEADERS_MAX, or (*read_err set) when the body's temporary
 * file could not be read.
 */
static const char *
wiring_header_block(struct blob *body, const char *p, size_t n, char **buf, size_t *len,
                    bool *read_err)
{
	size_t total = blob_len(body);
	*buf = NULL;
	*read_err = false;
	*len = wiring_header_len(p, n, n >= total);
	if (*len > 0 || n >= total)
		return p;
	size_t want = total < WIRING_HEADERS_MAX ? total : WIRING_HEADERS_MAX, got = 0;
	char *b = xmalloc(want);
	while (got < want) {
		ssize_t r = blob_read(body, got, b + got, want - got);
		if (r <= 0) {
			int err = errno;
			*read_err = true;
			free(b);
			errno = err;
			return NULL;
		}
		got += (size_t)r;
	}
	*len = wiring_header_len(b, got, got >= total);
	if (*len == 0) {
		free(b);
		return NULL;
	}
	*buf = b;
	return b;
}

/* The message's temporary file could not be read back (a failing disk):
 * 451, and a log line that says so. Returns true (the verdict is final). */
static bool
wiring_read_error(struct wiring_session *ws, struct smtpd_verdict *v, int err)
{
	log_err("%s cannot read the message body back: %s", smtpd_session_id(ws->s), strerror(err));
	smtpd_verdict_custom(v, 451, "4.3.0", "Local error reading the message, try again later");
	snprintf(v->log, sizeof(v->log), "%s%sreason=read_error", ws->scanlog, *ws->scanlog ? " " : "");
	return true;
}

/*
 * The content filter at end of DATA.  Returns true when the verdict is
 * final (reject or tempfail); otherwise the envelope carries our verdict
 * headers and goes on to delivery.
 */
static bool
wiring_filter(struct wiring_session *ws, struct envelope *env, struct smtpd_verdict *v)
{
	const struct mx_config *cfg = ws->rt->cfg;
	ws->scanlog[0] = '\0';
	if (!cfg->content_enabled || ws->rt->scanner == NULL || env->body == NULL)
		return false;
	/* the prefix to analyse: from the memory head, or read when longer */
	size_t want = blob_len(env->body), hl;
	if (want > (size_t)cfg->scan_limit)
		want = (size_t)cfg->scan_limit;
	const char *data = blob_head(env->body, &hl);
	char *tmp = NULL;
	if (hl < want) {
		tmp = xmalloc(want);
		for (size_t got = 0; got < want;) {
			ssize_t r = blob_read(env->body, got, tmp + got, want - got);
			if (r <= 0) { /* a message scanned in part would be waved through */
				int err = errno;
				free(tmp);
				return wiring_read_error(ws, v, err);
			}
			got += (size_t)r;
		}
		data = tmp;
	}
	struct scan_result res;
	scanner_scan(ws->rt->scanner, data ? data : "", data ? want : 0, env->mail_from,
	             (const struct sockaddr *)&ws->peer, &res, NULL);
	char syms[900];
	scan_symbols_str(&res, syms, sizeof(syms));
	snprintf(ws->scanlog, sizeof(ws->scanlog), "score=%.2f action=%s symbols=%s", res.score,
	         scan_action_name(res.action), *syms ? syms : "none");
	bool final = false;
	ws->nodsn = res.action != SCAN_ACCEPT;
	stats_inc(STAT_CONTENT_SCANNED);
	stats_score_observe(res.score);
	for (size_t i = 0; i < res.n_sym; i++)
		stats_symbol_hit(res.sym[i].name);
	if (res.action != SCAN_ACCEPT)
		stats_inc(res.action == SCAN_REJECT     ? STAT_CONTENT_REJECT
		          : res.action == SCAN_TEMPFAIL ? STAT_CONTENT_TEMPFAIL
		                                        : STAT_CONTENT_TAG);
	if (res.action == SCAN_REJECT) {
		smtpd_verdict_custom(v, 550, "5.7.1", "Message rejected as spam (score %.1f)", res.score);
		mx_strlcpy(v->log, ws->scanlog, sizeof(v->log));
		final = true;
	} else if (res.action == SCAN_TEMPFAIL) {
		smtpd_verdict_custom(v, 451, "4.7.1",
		                     "Message deferred by the content filter (score %.1f), try again later",
		                     res.score);
		mx_strlcpy(v->log, ws->scanlog, sizeof(v->log));
		final = true;
	} else {
		bool tagged = res.action == SCAN_TAG;
		bool add = strcmp(cfg->content_headers, "all") == 0 ||
		           (tagged && strcmp(cfg->content_headers, "tagged") == 0);
		/* the header block of the message as received */
		char *hbuf = NULL;
		size_t block;
		bool read_err;
		const char *h = wiring_header_block(env->body, data ? data : "", data ? want : 0, &hbuf,
		                                    &block, &read_err);
		if (h == NULL && read_err) {
			int err = errno;
			free(tmp);
			return wiring_read_error(ws, v, err);
		}
		if (h == NULL) {
			smtpd_verdict_custom(v, 552, "5.6.0", "Message header block longer than %d bytes",
			                     WIRING_HEADERS_MAX);
			snprintf(v->log, sizeof(v->log), "%s reason=header_too_long", ws->scanlog);
			free(tmp);
			return true;
		}
		const char *prefix = tagged && cfg->subject_prefix && *cfg->subject_prefix
		                         ? cfg->subject_prefix : NULL;
		size_t rl = 0;
		char *rewritten = block ? headers_rewrite(h, block, prefix, &rl) : NULL;
		free(hbuf);
		char *verdict = add ? headers_verdict(&res, cfg->hostname) : NULL;
		if (rewritten || verdict) {
			/* lengths, not strings: a header block may hold a NUL, and
			 * what follows it must not be lost */
			size_t vl = verdict ? strlen(verdict) : 0;
			char *all = xmalloc(vl + rl + 1);
			if (vl)
				memcpy(all, verdict, vl);
			if (rl)
				memcpy(all + vl, rewritten, rl);
			all[vl + rl] = '\0';
			envelope_set_headers(env, all, vl + rl, rewritten ? block : 0);
		}
		free(rewritten);
		free(verdict);
	}
	free(tmp);
	return final;
}

static void
wiring_queued(int err, const char *id, void *arg)
{
	struct wiring_session *ws = arg;
	struct smtpd_verdict v;
	if (err == 0) {
		smtpd_verdict_custom(&v, 250, "2.0.0", "Ok: queued as %s", id);
		v.result = "queued";
		stats_inc(STAT_QUEUE_QUEUED);
	} else if (err == ECANCELED) { /* a forced stop before the write */
		smtpd_verdict_init(&v, REPLY_SHUTDOWN);
	} else if (err == ENOSPC || err == EDQUOT) {
		smtpd_verdict_custom(&v, 452, "4.3.1", "Insufficient system storage");
		stats_inc(STAT_QUEUE_NOSPACE);
	} else {
		smtpd_verdict_custom(&v, 451, "4.3.0", "Local error queueing the message, try again later");
	}
	snprintf(v.log, sizeof(v.log), "%s%squeue=%s%s%s", ws->scanlog, *ws->scanlog ? " " : "",
	         err ? "error" : "written", err ? " error=" : "", err ? strerror(err) : "");
	if (err && err != ECANCELED)
		log_err("%s cannot write %s to the queue: %s", smtpd_session_id(ws->s), id, strerror(err));
	smtpd_resume(ws->s, &v);
}

/* MAIL and DATA: refuse before the client sends what the spool cannot hold. */
static enum smtpd_hook_rc
wiring_room(struct smtpd_session *s, const struct envelope *env, struct smtpd_verdict *v,
            enum smtp_reply_id ok)
{
	struct wiring_session *ws = smtpd_session_hook_data(s);
	smtpd_verdict_init(v, ok);
	if (ws->w->queue == NULL || strcmp(ws->rt->cfg->delivery_mode, "queue") != 0)
		return SMTPD_HOOK_DONE;
	char why[200];
	if (!queue_has_room(ws->w->queue, ws->rt->cfg, env->params.size, why, sizeof(why))) {
		static struct log_ratelimit rl;
		if (log_ratelimit_ok(&rl, 10, NULL))
			log_warn("queue: refusing mail: %s", why);
		stats_inc(STAT_QUEUE_NOSPACE);
		smtpd_verdict_init(v, REPLY_STORAGE);
	}
	return SMTPD_HOOK_DONE;
}

static enum smtpd_hook_rc
wiring_mail(struct smtpd_session *s, const struct envelope *env, struct smtpd_verdict *v)
{
	return wiring_room(s, env, v, REPLY_SENDER_OK);
}

static enum smtpd_hook_rc
wiring_data(struct smtpd_session *s, const struct envelope *env, struct smtpd_verdict *v)
{
	return wiring_room(s, env, v, REPLY_DATA_GO);
}

static enum smtpd_hook_rc
wiring_message(struct smtpd_session *s, struct envelope *env, struct smtpd_verdict *v)
{
	struct wiring_session *ws = smtpd_session_hook_data(s);
	ws->nodsn = false;
	if (wiring_filter(ws, env, v))
		return SMTPD_HOOK_DONE;
	if (ws->w->queue != NULL && strcmp(ws->rt->cfg->delivery_mode, "queue") == 0) {
		queue_submit(ws->w->queue, ws->w->base, env, ws->nodsn, wiring_queued, ws);
		return SMTPD_HOOK_PENDING;
	}
	struct delivery_outcome o;
	if (delivery_submit(ws->w->delivery, ws->rt->cfg, ws->rt->ups, env, &o, wiring_delivered, ws) ==
	    DELIVERY_PENDING)
		return SMTPD_HOOK_PENDING;
	wiring_outcome(ws, v, &o);
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

/*
 * The worker is stopping and its loop will not run again: a tarpit's timer
 * would never fire and a directory's answer never come (rcpt_worker_end()
 * drops pending lookups without their callback), so the session would
 * wait forever.  Both are called off and answered now; the session is
 * closed, so the answer only releases it.  Deliveries are answered by
 * smtpc_pool_cancel(); a spool write still running answers when it ends.
 */
static void
wiring_cancel(struct smtpd_session *s)
{
	struct wiring_session *ws = smtpd_session_hook_data(s);
	struct smtpd_verdict v;
	if (ws->hold != NULL) {
		struct wiring_hold *h = ws->hold;
		ws->hold = NULL;
		event_free(h->ev);
		v = h->v;
		free(h);
		smtpd_resume(s, &v);
	} else if (ws->rcpt_wait != NULL) {
		free(ws->rcpt_wait);
		ws->rcpt_wait = NULL;
		smtpd_verdict_init(&v, REPLY_SHUTDOWN);
		smtpd_resume(s, &v);
	}
}

const struct smtpd_hooks wiring_hooks = {
	.connect = wiring_connect,
	.mail = wiring_mail,
	.data = wiring_data,
	.rcpt = wiring_rcpt,
	.message = wiring_message,
	.close = wiring_close,
	.cancel = wiring_cancel,
};
