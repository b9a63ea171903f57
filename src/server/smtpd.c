/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	smtpd - inbound ESMTP sessions: I/O, states, lifecycle
 * DESCRIPTION
 *	Reading: command lines are cut from the input evbuffer only after
 *	checking that one fits in 512 octets; a longer line is answered with
 *	500 5.5.2 and skipped up to its end.  DATA is fed to smtp_data in
 *	place (evbuffer_peek), never copied a line at a time.
 *	Pipelining: all complete commands in the buffer are handled in one
 *	pass and their replies leave in one write; a command whose hook is
 *	pending stops the pass until smtpd_resume().
 *	Lifetime: refs counts the "alive" reference plus one per pending hook.
 *	smtpd_close() flushes the last reply, frees the bufferevent (closing
 *	the socket) and drops the alive reference; the struct goes at 0.
 * LIMITS
 *	Command deadline timeouts.command from the moment a command is
 *	awaited; timeouts.data per read during DATA; writes time out after
 *	timeouts.command.
 */
#include "smtpd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "blob.h"
#include "clock.h"
#include "log.h"
#include "netaddr.h"
#include "received.h"
#include "smtpd_int.h"
#include "stats.h"
#include "str.h"
#include "tls.h"
#include "xalloc.h"

static void smtpd_read_cb(struct bufferevent *bev, void *arg);
static void smtpd_write_cb(struct bufferevent *bev, void *arg);
static void smtpd_event_cb(struct bufferevent *bev, short what, void *arg);
static void smtpd_timer_cb(evutil_socket_t fd, short what, void *arg);
static void smtpd_process(struct smtpd_session *s);
static void smtpd_unref(struct smtpd_session *s);
static void smtpd_finish_io(struct smtpd_session *s);
static void smtpd_end_data(struct smtpd_session *s);
static void smtpd_pregreet(struct smtpd_session *s);

/* ---- ctx ---------------------------------------------------------------- */

struct smtpd_ctx *
smtpd_ctx_new(struct event_base *base, const struct smtpd_hooks *hooks)
{
	struct smtpd_ctx *ctx = xcalloc(1, sizeof(*ctx));
	ctx->base = base;
	ctx->hooks = hooks;
	return ctx;
}

/*
 * Sessions whose hook is still pending outlive the close: they keep
 * their struct (and a pointer to ctx) until the hook answers.  The hooks'
 * cancel() is asked to answer now; whatever is still pending after that
 * answers later into a session that is closed, and the last session to
 * go frees the ctx (smtpd_unref), so an answer never finds freed memory.
 */
void
smtpd_ctx_free(struct smtpd_ctx *ctx)
{
	if (ctx == NULL)
		return;
	ctx->drain_done = NULL; /* the owner is going: nobody to tell */
	smtpd_ctx_close_all(ctx);
	/* a cancel() that resumes frees only that session */
	struct smtpd_session *s = ctx->head, *next;
	for (; s != NULL && ctx->hooks->cancel != NULL; s = next) {
		next = s->next;
		if (s->pending != SMTPD_P_NONE)
			ctx->hooks->cancel(s);
	}
	if (ctx->count == 0)
		free(ctx);
	else
		ctx->freed = true;
}

unsigned
smtpd_ctx_count(const struct smtpd_ctx *ctx)
{
	return ctx->count;
}

static void
smtpd_ctx_check_drained(struct smtpd_ctx *ctx)
{
	if (ctx->draining && ctx->count == 0 && ctx->drain_done != NULL) {
		void (*done)(void *) = ctx->drain_done;
		ctx->drain_done = NULL;
		done(ctx->drain_arg);
	}
}

void
smtpd_ctx_drain(struct smtpd_ctx *ctx, void (*done)(void *arg), void *arg)
{
	ctx->draining = true;
	ctx->drain_done = done;
	ctx->drain_arg = arg;
	struct smtpd_session *s = ctx->head, *next;
	for (; s != NULL; s = next) {
		next = s->next;
		if (s->state >= SMTPD_S_CLOSING)
			continue;
		if (s->env == NULL && s->pending == SMTPD_P_NONE && s->state != SMTPD_S_TLS) {
			smtpd_reply(s, REPLY_SHUTDOWN);
			smtpd_close(s, "shutdown");
		} else {
			s->drain_notice = true;
		}
	}
	smtpd_ctx_check_drained(ctx);
}

void
smtpd_ctx_close_all(struct smtpd_ctx *ctx)
{
	struct smtpd_session *s = ctx->head, *next;
	for (; s != NULL; s = next) {
		next = s->next;
		if (s->state < SMTPD_S_CLOSING)
			smtpd_reply(s, REPLY_SHUTDOWN);
		if (s->state < SMTPD_S_CLOSED) {
			s->close_reason = s->close_reason ? s->close_reason : "shutdown";
			smtpd_finish_io(s);
		}
	}
}

/* ---- session ------------------------------------------------------------ */

static void
smtpd_set_timeouts(struct smtpd_session *s)
{
	struct timeval rd, wr;
	long long w = s->cfg->t_command;
	wr.tv_sec = w / 1000;
	wr.tv_usec = (w % 1000) * 1000;
	if (s->state == SMTPD_S_DATA) {
		long long r = s->cfg->t_data;
		rd.tv_sec = r / 1000;
		rd.tv_usec = (r % 1000) * 1000;
		bufferevent_set_timeouts(s->bev, &rd, &wr);
	} else {
		/* commands run on the session timer (a deadline, not per read) */
		bufferevent_set_timeouts(s->bev, NULL, &wr);
	}
}

static void smtpd_full_cb(evutil_socket_t fd, short what, void *arg);
static void smtpd_ensure_command_timer(struct smtpd_session *s);

static void
smtpd_setup_bev(struct smtpd_session *s)
{
	bufferevent_setcb(s->bev, smtpd_read_cb, smtpd_write_cb, smtpd_event_cb, s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SMTPD_INPUT_MAX);
	smtpd_set_timeouts(s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

struct smtpd_session *
smtpd_session_start(struct smtpd_ctx *ctx, int fd, const struct sockaddr *peer, socklen_t peerlen,
                    struct mx_config *cfg, SSL_CTX *tls, void *hook_data)
{
	struct smtpd_session *s = xcalloc(1, sizeof(*s));
	s->ctx = ctx;
	s->cfg = config_ref(cfg);
	if (tls != NULL) {
		SSL_CTX_up_ref(tls);
		s->tls_ctx = tls;
	}
	s->hook_data = hook_data;
	s->refs = 1;
	memcpy(&s->peer, peer, peerlen);
	s->peerlen = peerlen;
	netaddr_ip_str(peer, s->client_ip, sizeof(s->client_ip));
	mx_id_str(mx_id_next(), s->id);
	s->start_ms = mx_clock_mono_ms();
	s->cur_verb = SMTP_VERB_UNKNOWN;

	s->next = ctx->head;
	if (ctx->head)
		ctx->head->prev = s;
	ctx->head = s;
	ctx->count++;

	evutil_make_socket_nonblocking(fd);
	if (peer->sa_family == AF_INET || peer->sa_family == AF_INET6) {
		/* a reply goes out when it is written: replies that come one by
		 * one (a recipient looked up in a directory while the client
		 * waits for the rest of its pipelined group) would otherwise
		 * wait for the client's delayed ACK, 40 ms on Linux, each time;
		 * replies written together still leave in one segment */
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	s->bev = bufferevent_socket_new(ctx->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		close(fd);
		s->state = SMTPD_S_CLOSING;
		s->close_reason = "bufferevent";
		smtpd_finish_io(s);
		return NULL;
	}
	s->timer = evtimer_new(ctx->base, smtpd_timer_cb, s);
	s->full_ev = evtimer_new(ctx->base, smtpd_full_cb, s);
	s->state = SMTPD_S_GREET_WAIT;
	smtpd_setup_bev(s);
	stats_inc(STAT_SMTP_CONNECT);
	log_info("%s connect client=%s", s->id, s->client_ip);

	struct smtpd_verdict v;
	smtpd_verdict_init(&v, REPLY_OK);
	s->refs++;
	s->pending = SMTPD_P_CONNECT;
	if (ctx->hooks->connect == NULL || ctx->hooks->connect(s, &v) == SMTPD_HOOK_DONE)
		smtpd_resume(s, &v);
	return s;
}

/* The connect verdict: refuse, or greet (now or after the greeting delay). */
static void
smtpd_connect_done(struct smtpd_session *s, const struct smtpd_verdict *v)
{
	if (v->reply != REPLY_OK) {
		smtpd_reply_verdict(s, v);
		smtpd_close(s, "refused at connect");
		return;
	}
	if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0) {
		smtpd_pregreet(s); /* talked while the connect check ran */
		return;
	}
	if (s->cfg->greet_delay_ms > 0) {
		struct timeval tv = {s->cfg->greet_delay_ms / 1000, (s->cfg->greet_delay_ms % 1000) * 1000};
		evtimer_add(s->timer, &tv);
		return;
	}
	s->state = SMTPD_S_CMD;
	smtpd_reply_greeting(s);
	smtpd_arm_command_timer(s);
	smtpd_process(s);
}

void
smtpd_resume(struct smtpd_session *s, const struct smtpd_verdict *v)
{
	enum smtpd_pending p = s->pending;
	s->pending = SMTPD_P_NONE;
	if (s->state >= SMTPD_S_CLOSING) {
		smtpd_unref(s);
		return;
	}
	if (p == SMTPD_P_CONNECT)
		smtpd_connect_done(s, v);
	else
		smtpd_cmd_resume(s, p, v);
	/* resume reading what was pipelined behind the command; when the
	 * answer came synchronously, the running smtpd_process() loop goes on */
	if (s->state == SMTPD_S_CMD && s->pending == SMTPD_P_NONE && !s->in_process)
		smtpd_process(s);
	smtpd_ensure_command_timer(s);
	smtpd_unref(s);
}

void
smtpd_arm_command_timer(struct smtpd_session *s)
{
	long long t = s->cfg->t_command;
	struct timeval tv = {t / 1000, (t % 1000) * 1000};
	evtimer_add(s->timer, &tv);
}

/* The command deadline, unless one runs already (a deadline: not pushed
 * back by each read). */
static void
smtpd_ensure_command_timer(struct smtpd_session *s)
{
	if (s->state == SMTPD_S_CMD && s->pending == SMTPD_P_NONE && s->timer != NULL &&
	    !evtimer_pending(s->timer, NULL))
		smtpd_arm_command_timer(s);
}

/* Bytes not yet on the wire: in the bufferevent, and under TLS also in
 * the socket bufferevent beneath the filter. */
static size_t
smtpd_output_pending(struct smtpd_session *s)
{
	size_t n = evbuffer_get_length(bufferevent_get_output(s->bev));
	struct bufferevent *under = bufferevent_get_underlying(s->bev);
	if (under != NULL)
		n += evbuffer_get_length(bufferevent_get_output(under));
	return n;
}

/* Closing: free the socket once the last reply is out, or give up after
 * the write timeout. */
static void
smtpd_close_poll(struct smtpd_session *s)
{
	if (smtpd_output_pending(s) == 0 ||
	    mx_clock_mono_ms() - s->close_ms > (uint64_t)s->cfg->t_command) {
		smtpd_finish_io(s);
		return;
	}
	/* 5 ms at first (the last reply is usually out at once), then 100 */
	struct timeval tv = {0, mx_clock_mono_ms() - s->close_ms < 100 ? 5000 : 100000};
	evtimer_add(s->timer, &tv);
}

void
smtpd_close(struct smtpd_session *s, const char *reason)
{
	if (s->state >= SMTPD_S_CLOSING)
		return;
	s->close_reason = reason;
	s->state = SMTPD_S_CLOSING;
	s->close_ms = mx_clock_mono_ms();
	if (s->timer)
		evtimer_del(s->timer);
	bufferevent_disable(s->bev, EV_READ);
	if (s->full_ev)
		evtimer_del(s->full_ev);
	/* always polled, to the write timeout at most: during a TLS
	 * handshake the last reply cannot go out at all, and nothing else
	 * would ever end the session (it held its connection slot for good) */
	smtpd_close_poll(s);
}

static void
smtpd_log_disconnect(struct smtpd_session *s)
{
	char counts[256];
	size_t o = 0;
	counts[0] = '\0';
	for (int v = 1; v < SMTP_VERB__COUNT && o < sizeof(counts) - 32; v++) {
		if (s->cmd_count[v] == 0)
			continue;
		char name[16];
		mx_strlcpy(name, smtp_verb_name((enum smtp_verb)v), sizeof(name));
		for (char *p = name; *p; p++)
			*p = mx_tolower(*p);
		o += (size_t)snprintf(counts + o, sizeof(counts) - o, " %s=%u", name, s->cmd_count[v]);
	}
	if (s->cmd_count[0] && o < sizeof(counts) - 32)
		snprintf(counts + o, sizeof(counts) - o, " unknown=%u", s->cmd_count[0]);
	log_info("%s disconnect client=%s reason=\"%s\" messages=%u errors=%u%s duration=%.3f", s->id,
	         s->client_ip, s->close_reason ? s->close_reason : "unknown", s->n_msgs, s->errors,
	         counts, (double)(mx_clock_mono_ms() - s->start_ms) / 1000.0);
}

/* Output flushed (or abandoned): release the socket and the alive ref. */
static void
smtpd_finish_io(struct smtpd_session *s)
{
	if (s->state == SMTPD_S_CLOSED)
		return;
	s->state = SMTPD_S_CLOSED;
	if (s->timer) {
		event_free(s->timer);
		s->timer = NULL;
	}
	if (s->full_ev) {
		event_free(s->full_ev);
		s->full_ev = NULL;
	}
	if (s->bev) {
		bufferevent_free(s->bev);
		s->bev = NULL;
	}
	smtpd_log_disconnect(s);
	smtpd_unref(s);
}

static void
smtpd_unref(struct smtpd_session *s)
{
	if (--s->refs > 0)
		return;
	struct smtpd_ctx *ctx = s->ctx;
	if (ctx->hooks->close != NULL)
		ctx->hooks->close(s);
	if (s->prev)
		s->prev->next = s->next;
	else
		ctx->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	ctx->count--;
	if (s->env) {
		envelope_clear(s->env);
		free(s->env);
	}
	config_unref(s->cfg);
	if (s->tls_ctx)
		SSL_CTX_free(s->tls_ctx);
	free(s);
	if (ctx->freed && ctx->count == 0)
		free(ctx); /* smtpd_ctx_free() left it to the last session */
	else
		smtpd_ctx_check_drained(ctx);
}

void
smtpd_tx_reset(struct smtpd_session *s)
{
	if (s->env != NULL) {
		envelope_clear(s->env);
		free(s->env);
		s->env = NULL;
	}
}

bool
smtpd_count_error(struct smtpd_session *s)
{
	if (++s->errors < (unsigned)s->cfg->max_errors)
		return false;
	stats_inc(STAT_SMTP_ERRORS_CLOSE);
	smtpd_reply(s, REPLY_TOO_MANY_ERRORS);
	smtpd_close(s, "too many errors");
	return true;
}

/* ---- logging ------------------------------------------------------------- */

void
smtpd_log_reject(struct smtpd_session *s, int code, const char *enh, const char *text)
{
	char from[160] = "", to[160] = "";
	if (s->env != NULL) {
		char esc[140];
		log_escape(esc, sizeof(esc), s->env->mail_from, strlen(s->env->mail_from));
		snprintf(from, sizeof(from), " from=<%s>", esc);
	}
	if (s->cur_verb == SMTP_VERB_RCPT && s->cur_arg[0])
		snprintf(to, sizeof(to), " arg=\"%s\"", s->cur_arg);
	char rtext[200];
	size_t tl = strcspn(text, "\r\n");
	log_escape(rtext, sizeof(rtext), text, tl);
	log_info("%s reject client=%s cmd=%s reply=\"%d%s%s %s\"%s%s", s->id, s->client_ip,
	         s->state == SMTPD_S_GREET_WAIT ? "CONNECT" : smtp_verb_name(s->cur_verb), code,
	         *enh ? " " : "", enh, rtext, from, to);
}

void
smtpd_log_message(struct smtpd_session *s, const char *result, int code, const char *enh,
                  const char *text, const char *extra)
{
	struct envelope *e = s->env;
	char from[140], rtext[240], rcpts[600];
	log_escape(from, sizeof(from), e->mail_from, strlen(e->mail_from));
	size_t tl = strcspn(text, "\r\n");
	log_escape(rtext, sizeof(rtext), text, tl);
	size_t o = 0;
	rcpts[0] = '\0';
	for (size_t i = 0; i < e->n_rcpt && o < sizeof(rcpts) - 8; i++) {
		char r[140];
		log_escape(r, sizeof(r), e->rcpt[i].addr, strlen(e->rcpt[i].addr));
		int n = snprintf(rcpts + o, sizeof(rcpts) - o, "%s<%s>", i ? "," : "", r);
		if (n < 0 || (size_t)n >= sizeof(rcpts) - o) {
			mx_strlcpy(rcpts + (o > sizeof(rcpts) - 8 ? sizeof(rcpts) - 8 : o), ",...",
			           sizeof(rcpts) - o);
			break;
		}
		o += (size_t)n;
	}
	log_info("%s message id=%s client=%s from=<%s> to=%s nrcpt=%zu size=%zu result=%s "
	         "reply=\"%d%s%s %s\"%s%s delay=%.3f",
	         s->id, e->id, s->client_ip, from, rcpts, e->n_rcpt, envelope_size(e), result, code,
	         *enh ? " " : "", enh, rtext, extra && *extra ? " " : "", extra ? extra : "",
	         (double)(mx_clock_mono_ms() - s->data_start_ms) / 1000.0);
}

/* ---- input ------------------------------------------------------------ */

static void
smtpd_pregreet(struct smtpd_session *s)
{
	stats_inc(STAT_SMTP_PREGREET);
	evtimer_del(s->timer);
	struct evbuffer *in = bufferevent_get_input(s->bev);
	char peek[64];
	size_t n = evbuffer_copyout(in, peek, sizeof(peek));
	char esc[200];
	log_escape(esc, sizeof(esc), peek, n);
	log_info("%s pregreet client=%s data=\"%s\"", s->id, s->client_ip, esc);
	evbuffer_drain(in, evbuffer_get_length(in));
	smtpd_reply(s, REPLY_PREGREET);
	smtpd_close(s, "pregreet");
}

/* Cuts one command line. Returns 1 with a line, 0 when more input is needed. */
static int
smtpd_next_line(struct smtpd_session *s, struct evbuffer *in, char *line, size_t *len)
{
	for (;;) {
		size_t avail = evbuffer_get_length(in);
		if (avail == 0)
			return 0;
		struct evbuffer_ptr lim, eol;
		size_t scan = avail < SMTP_LINE_MAX ? avail : SMTP_LINE_MAX;
		evbuffer_ptr_set(in, &lim, scan, EVBUFFER_PTR_SET);
		if (s->skip_line) {
			/* discarding the rest of an over-long line */
			eol = evbuffer_search(in, "\n", 1, NULL);
			if (eol.pos < 0) {
				evbuffer_drain(in, avail);
				return 0;
			}
			evbuffer_drain(in, (size_t)eol.pos + 1);
			s->skip_line = false;
			continue;
		}
		eol = evbuffer_search_range(in, "\n", 1, NULL, &lim);
		if (eol.pos < 0) {
			if (avail < SMTP_LINE_MAX)
				return 0;
			/* no end of line within 512 octets */
			stats_inc(STAT_SMTP_LINE_TOO_LONG);
			s->skip_line = true;
			s->cur_verb = SMTP_VERB_UNKNOWN;
			s->cur_arg[0] = '\0';
			smtpd_reply(s, REPLY_LINE_TOO_LONG);
			if (smtpd_count_error(s))
				return 0;
			continue;
		}
		size_t n = (size_t)eol.pos + 1;
		evbuffer_remove(in, line, n);
		n--; /* the LF */
		if (n > 0 && line[n - 1] == '\r')
			n--;
		line[n] = '\0';
		*len = n;
		return 1;
	}
}

/* Why a session whose client went away ended, for the disconnect line. */
static const char *
smtpd_lost_reason(const struct smtpd_session *s)
{
	return s->state == SMTPD_S_DATA ? "lost connection in DATA"
	       : s->env != NULL        ? "lost connection in transaction"
	                               : "lost connection";
}

static void
smtpd_process(struct smtpd_session *s)
{
	char line[SMTP_LINE_MAX + 1];
	size_t len;
	struct evbuffer *in = bufferevent_get_input(s->bev);

	s->refs++; /* the session must outlive this loop */
	s->in_process = true;
	while (s->state == SMTPD_S_CMD || s->state == SMTPD_S_DATA) {
		if (s->pending != SMTPD_P_NONE)
			break;
		if (s->drain_notice && s->env == NULL && s->state == SMTPD_S_CMD) {
			smtpd_reply(s, REPLY_SHUTDOWN);
			smtpd_close(s, "shutdown");
			break;
		}
		if (smtpd_output_pending(s) > SMTPD_OUTPUT_MAX) {
			/* the client is not reading its replies: stop until it does
			 * (under TLS the filter passes them on at once, so what waits
			 * in the socket's buffer beneath counts too, and is polled:
			 * the filter says nothing when that one drains) */
			s->output_full = true;
			bufferevent_disable(s->bev, EV_READ);
			if (bufferevent_get_underlying(s->bev) != NULL) {
				struct timeval tv = {0, 50000};
				evtimer_add(s->full_ev, &tv);
			}
			break;
		}
		if (s->state == SMTPD_S_DATA) {
			struct evbuffer_iovec v[8];
			int nv = evbuffer_peek(in, -1, NULL, v, 8);
			if (nv > 8)
				nv = 8;
			size_t total = 0;
			bool end = false;
			for (int i = 0; i < nv && !end; i++) {
				size_t used = 0;
				if (v[i].iov_len == 0) /* filters can leave empty chains */
					continue;
				end = smtp_data_feed(&s->data, v[i].iov_base, v[i].iov_len, &used);
				total += used;
			}
			if (total == 0)
				break;
			evbuffer_drain(in, total);
			if (end)
				smtpd_end_data(s);
			continue;
		}
		if (smtpd_next_line(s, in, line, &len) == 0)
			break;
		evtimer_del(s->timer);
		smtpd_cmd_dispatch(s, line, len);
		if (s->state == SMTPD_S_CMD && s->pending == SMTPD_P_NONE)
			smtpd_arm_command_timer(s);
	}
	/* back to commands with nothing pending (after a message, or an
	 * answer that came later): the command deadline runs again; it used
	 * not to, and a client silent after its 250 held its slot for good */
	smtpd_ensure_command_timer(s);
	/* a client that shut its side has said all it will: once what it
	 * sent is answered, the session ends (the replies go out first) */
	if (s->read_eof && s->pending == SMTPD_P_NONE &&
	    (s->state == SMTPD_S_CMD || s->state == SMTPD_S_DATA))
		smtpd_close(s, smtpd_lost_reason(s));
	s->in_process = false;
	smtpd_unref(s);
}

static void
smtpd_read_cb(struct bufferevent *bev, void *arg)
{
	struct smtpd_session *s = arg;
	(void)bev;
	switch (s->state) {
	case SMTPD_S_GREET_WAIT:
		/* while the connect hook runs, input waits; smtpd_connect_done sees it */
		if (s->pending == SMTPD_P_NONE)
			smtpd_pregreet(s);
		return;
	case SMTPD_S_CMD:
	case SMTPD_S_DATA:
		smtpd_process(s);
		return;
	default:
		return;
	}
}

static void
smtpd_write_cb(struct bufferevent *bev, void *arg)
{
	struct smtpd_session *s = arg;
	(void)bev;
	if (s->state == SMTPD_S_CLOSING) {
		smtpd_close_poll(s);
		return;
	}
	if (s->output_full) {
		s->output_full = false;
		bufferevent_enable(s->bev, EV_READ);
		smtpd_process(s);
	}
}

static void
smtpd_full_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_session *s = arg;
	(void)fd;
	(void)what;
	if (!s->output_full || s->state >= SMTPD_S_CLOSING)
		return;
	if (smtpd_output_pending(s) > SMTPD_OUTPUT_MAX / 2) {
		struct timeval tv = {0, 50000};
		evtimer_add(s->full_ev, &tv);
		return;
	}
	s->output_full = false;
	bufferevent_enable(s->bev, EV_READ);
	smtpd_process(s);
}

static void
smtpd_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct smtpd_session *s = arg;
	(void)bev;
	if (what & BEV_EVENT_CONNECTED) { /* TLS handshake done */
		if (s->state != SMTPD_S_TLS)
			return;
		SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
		const char *ver, *cipher;
		tls_describe(ssl, &ver, &cipher);
		stats_inc(STAT_SMTP_TLS);
		log_info("%s tls client=%s version=%s cipher=%s", s->id, s->client_ip, ver, cipher);
		s->tls = true;
		s->state = SMTPD_S_CMD;
		smtpd_set_timeouts(s);
		smtpd_arm_command_timer(s);
		smtpd_process(s);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		stats_inc(STAT_SMTP_TIMEOUT);
		if (s->state == SMTPD_S_CLOSING) { /* the client does not read */
			s->close_reason = "write timeout";
			smtpd_finish_io(s);
			return;
		}
		smtpd_reply(s, REPLY_TIMEOUT);
		smtpd_close(s, s->state == SMTPD_S_DATA ? "timeout after DATA" : "write timeout");
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		if (s->state == SMTPD_S_TLS) {
			stats_inc(STAT_SMTP_TLS_FAIL);
			unsigned long e = bufferevent_get_openssl_error(s->bev);
			char buf[200] = "handshake failed";
			if (e)
				ERR_error_string_n(e, buf, sizeof(buf));
			log_info("%s tls-fail client=%s error=\"%s\"", s->id, s->client_ip, buf);
		}
	}
	/* EOF alone: the client shut its sending side only (as one that
	 * pipelined everything may) and can still read.  A command still being
	 * answered (a hook pending) or still unread is answered first (Postfix,
	 * which answers before it reads on, does the same); otherwise the
	 * session ends as a close does, replies not yet written going out
	 * first (a 250 made just before the EOF was read was dropped: found by
	 * tests/fuzz/fuzz_queue, where the queue's writer thread answers) */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    (s->state == SMTPD_S_CMD || s->state == SMTPD_S_DATA)) {
		if (!s->read_eof &&
		    (s->pending != SMTPD_P_NONE || evbuffer_get_length(bufferevent_get_input(s->bev)) > 0)) {
			s->read_eof = true;
			if (s->pending == SMTPD_P_NONE && !s->in_process)
				smtpd_process(s);
			return;
		}
		smtpd_close(s, smtpd_lost_reason(s));
		return;
	}
	/* an error, or EOF in another state: the client is gone */
	if (s->state < SMTPD_S_CLOSING)
		s->close_reason = (what & BEV_EVENT_EOF) || s->state == SMTPD_S_DATA || s->env != NULL
		                      ? smtpd_lost_reason(s)
		                      : "connection error";
	else if (s->close_reason == NULL)
		s->close_reason = "lost connection";
	smtpd_finish_io(s);
}

static void
smtpd_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd_session *s = arg;
	(void)fd;
	(void)what;
	if (s->state == SMTPD_S_CLOSING) {
		smtpd_close_poll(s);
		return;
	}
	if (s->state == SMTPD_S_GREET_WAIT) {
		if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0) {
			smtpd_pregreet(s);
			return;
		}
		s->state = SMTPD_S_CMD;
		smtpd_reply_greeting(s);
		smtpd_arm_command_timer(s);
		return;
	}
	if (s->state == SMTPD_S_CMD) {
		stats_inc(STAT_SMTP_TIMEOUT);
		smtpd_reply(s, REPLY_TIMEOUT);
		smtpd_close(s, s->env ? "timeout in transaction" : "timeout");
	} else if (s->state == SMTPD_S_TLS) { /* no reply can go out mid-handshake */
		stats_inc(STAT_SMTP_TIMEOUT);
		log_info("%s tls-fail client=%s reason=\"handshake timeout\"", s->id, s->client_ip);
		s->refs++; /* the close may free the session at once */
		smtpd_close(s, "TLS handshake timeout");
		if (s->state == SMTPD_S_CLOSING)
			smtpd_finish_io(s); /* nothing of ours can go out: no wait */
		smtpd_unref(s);
	}
}

/* ---- DATA ---------------------------------------------------------------- */

static int
smtpd_data_sink(const char *p, size_t n, void *arg)
{
	struct smtpd_session *s = arg;
	return blob_append(s->env->body, p, n);
}

void
smtpd_start_data(struct smtpd_session *s)
{
	struct envelope *e = s->env;
	e->body = blob_new((size_t)s->cfg->memory_per_message, s->cfg->tmp_dir);
	smtp_data_init(&s->data, (size_t)s->cfg->message_size, (size_t)s->cfg->line_length,
	               smtpd_data_sink, s);
	s->state = SMTPD_S_DATA;
	s->data_start_ms = mx_clock_mono_ms();
	evtimer_del(s->timer);
	smtpd_set_timeouts(s);
}

static void
smtpd_end_data(struct smtpd_session *s)
{
	struct envelope *e = s->env;
	s->state = SMTPD_S_CMD;
	smtpd_set_timeouts(s);
	s->n_msgs++;
	stats_inc(STAT_MSG_RECEIVED);
	stats_add(STAT_MSG_BYTES, s->data.size);
	e->body_8bit = (s->data.flags & SMTP_DATA_8BIT) != 0;

	enum smtp_reply_id fail = REPLY__COUNT;
	const char *why = NULL;
	if (s->data.flags & (SMTP_DATA_BARE_LF | SMTP_DATA_BARE_CR)) {
		fail = REPLY_BARE_LF;
		why = (s->data.flags & SMTP_DATA_BARE_LF) ? "bare_lf" : "bare_cr";
		stats_inc(STAT_MSG_BARE_LF);
	} else if (s->data.flags & SMTP_DATA_TOO_BIG) {
		fail = REPLY_MSG_TOO_BIG;
		why = "too_big";
		stats_inc(STAT_MSG_TOO_BIG);
	} else if (s->data.flags & SMTP_DATA_LINE_LONG) {
		fail = REPLY_MSG_LINE_TOO_LONG;
		why = "line_too_long";
	} else if (s->data.flags & SMTP_DATA_SINK_ERR || blob_flush(e->body) < 0) {
		fail = REPLY_STORAGE;
		why = "storage";
		log_err("%s cannot store message body in %s: %s", s->id, s->cfg->tmp_dir,
		        strerror(errno));
	}
	if (fail != REPLY__COUNT) {
		const struct smtp_reply *r = smtp_reply_get(fail);
		char extra[64];
		snprintf(extra, sizeof(extra), "reason=%s", why);
		smtpd_reply(s, fail);
		stats_inc(r->code >= 500 ? STAT_MSG_REJECTED : STAT_MSG_TEMPFAIL);
		smtpd_log_message(s, "rejected", r->code, r->enh, r->text, extra);
		smtpd_tx_reset(s);
		return;
	}

	/* trace header */
	struct received_info ri = {
		.helo = s->helo,
		.client_ip = s->client_ip,
		.by = s->cfg->hostname,
		.id = e->id,
		.for_rcpt = e->n_rcpt == 1 ? e->rcpt[0].addr : NULL,
		.esmtp = s->esmtp,
		.tls = s->tls,
		.utf8 = e->params.smtputf8,
		.when = e->arrival,
	};
	if (s->tls)
		tls_describe(bufferevent_openssl_get_ssl(s->bev), &ri.tls_version, &ri.tls_cipher);
	e->received = received_build(&ri);
	e->tls = s->tls;
	mx_strlcpy(e->helo, s->helo, sizeof(e->helo));
	mx_strlcpy(e->client_ip, s->client_ip, sizeof(e->client_ip));

	struct smtpd_verdict v;
	smtpd_verdict_init(&v, REPLY_OK);
	s->pending = SMTPD_P_MESSAGE;
	s->refs++;
	if (s->ctx->hooks->message(s, e, &v) == SMTPD_HOOK_DONE)
		smtpd_resume(s, &v);
}

/* STARTTLS: the 220 is queued; drop pipelined plaintext, then wrap. */
void
smtpd_start_tls(struct smtpd_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	size_t junk = evbuffer_get_length(in);
	if (junk > 0) {
		/* CVE-2011-0411: never carry plaintext over into the TLS session */
		log_info("%s starttls-injection client=%s discarded=%zu", s->id, s->client_ip, junk);
		evbuffer_drain(in, junk);
	}
	SSL *ssl = SSL_new(s->tls_ctx);
	if (ssl == NULL) {
		smtpd_close(s, "SSL_new failed");
		return;
	}
	struct bufferevent *tb = bufferevent_openssl_filter_new(
	    s->ctx->base, s->bev, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (tb == NULL) {
		SSL_free(ssl);
		smtpd_close(s, "TLS setup failed");
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tb, 1);
	s->bev = tb;
	s->state = SMTPD_S_TLS;
	evtimer_del(s->timer);
	smtpd_setup_bev(s);
	/* the handshake must finish within the command timeout: a deadline
	 * on the session timer (the bufferevent's timeouts are per read, and
	 * a ClientHello trickled a byte at a time never hit them) */
	long long t = s->cfg->t_command;
	struct timeval tv = {t / 1000, (t % 1000) * 1000};
	bufferevent_set_timeouts(s->bev, &tv, &tv);
	evtimer_add(s->timer, &tv);
}

/* ---- accessors ------------------------------------------------------------ */

const char *
smtpd_session_id(const struct smtpd_session *s)
{
	return s->id;
}

const char *
smtpd_session_client_ip(const struct smtpd_session *s)
{
	return s->client_ip;
}

const struct sockaddr *
smtpd_session_peer(const struct smtpd_session *s)
{
	return (const struct sockaddr *)&s->peer;
}

const char *
smtpd_session_helo(const struct smtpd_session *s)
{
	return s->helo;
}

const struct mx_config *
smtpd_session_config(const struct smtpd_session *s)
{
	return s->cfg;
}

void *
smtpd_session_hook_data(const struct smtpd_session *s)
{
	return s->hook_data;
}

struct event_base *
smtpd_session_base(const struct smtpd_session *s)
{
	return s->ctx->base;
}

bool
smtpd_session_tls(const struct smtpd_session *s)
{
	return s->tls;
}

const char *
smtpd_session_sender(const struct smtpd_session *s)
{
	return s->env ? s->env->mail_from : NULL;
}
