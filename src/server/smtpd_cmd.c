/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	smtpd_cmd - the SMTP command table: sequence checks and effects
 * DESCRIPTION
 *	Each verb has a row {flags, proceed}.  The flags say what must come
 *	first (HELO, MAIL, a recipient) and whether an argument is allowed;
 *	dispatch checks them in one place, then proceed parses the argument
 *	and acts.  Recipient checks and end-of-message handling go through
 *	the hooks; everything else is protocol.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "clock.h"
#include "log.h"
#include "smtpd_int.h"
#include "stats.h"
#include "str.h"
#include "xalloc.h"

#define CMD_NEED_HELO 0x01 /* HELO/EHLO first */
#define CMD_NEED_MAIL 0x02 /* inside a transaction */
#define CMD_NO_ARG 0x04    /* an argument is a syntax error */
#define CMD_NEED_ARG 0x08  /* no argument is a syntax error */
#define CMD_ERROR 0x10     /* counts as an error (unimplemented, ...) */

typedef void (*smtpd_proceed_fn)(struct smtpd_session *s, const char *arg, size_t len);

struct smtpd_cmd_def {
	unsigned flags;
	smtpd_proceed_fn proceed;
};

static void smtpd_cmd_helo(struct smtpd_session *s, const char *arg, size_t len);
static void smtpd_cmd_ehlo(struct smtpd_session *s, const char *arg, size_t len);
static void smtpd_cmd_mail(struct smtpd_session *s, const char *arg, size_t len);
static void smtpd_cmd_rcpt(struct smtpd_session *s, const char *arg, size_t len);
static void smtpd_cmd_data(struct smtpd_session *s, const char *arg, size_t len);
static void smtpd_cmd_rset(struct smtpd_session *s, const char *arg, size_t len);
static void smtpd_cmd_noop(struct smtpd_session *s, const char *arg, size_t len);
static void smtpd_cmd_quit(struct smtpd_session *s, const char *arg, size_t len);
static void smtpd_cmd_vrfy(struct smtpd_session *s, const char *arg, size_t len);
static void smtpd_cmd_expn(struct smtpd_session *s, const char *arg, size_t len);
static void smtpd_cmd_help(struct smtpd_session *s, const char *arg, size_t len);
static void smtpd_cmd_starttls(struct smtpd_session *s, const char *arg, size_t len);
static void smtpd_cmd_unimpl(struct smtpd_session *s, const char *arg, size_t len);

/* clang-format off */
static const struct smtpd_cmd_def smtpd_cmds[SMTP_VERB__COUNT] = {
	[SMTP_VERB_HELO]     = {CMD_NEED_ARG, smtpd_cmd_helo},
	[SMTP_VERB_EHLO]     = {CMD_NEED_ARG, smtpd_cmd_ehlo},
	[SMTP_VERB_MAIL]     = {CMD_NEED_HELO | CMD_NEED_ARG, smtpd_cmd_mail},
	[SMTP_VERB_RCPT]     = {CMD_NEED_HELO | CMD_NEED_MAIL | CMD_NEED_ARG, smtpd_cmd_rcpt},
	[SMTP_VERB_DATA]     = {CMD_NEED_HELO | CMD_NEED_MAIL | CMD_NO_ARG, smtpd_cmd_data},
	[SMTP_VERB_RSET]     = {CMD_NO_ARG, smtpd_cmd_rset},
	[SMTP_VERB_NOOP]     = {0, smtpd_cmd_noop},
	[SMTP_VERB_QUIT]     = {CMD_NO_ARG, smtpd_cmd_quit},
	[SMTP_VERB_VRFY]     = {CMD_NEED_ARG, smtpd_cmd_vrfy},
	[SMTP_VERB_EXPN]     = {CMD_ERROR, smtpd_cmd_expn},
	[SMTP_VERB_HELP]     = {0, smtpd_cmd_help},
	[SMTP_VERB_STARTTLS] = {CMD_NO_ARG, smtpd_cmd_starttls},
	[SMTP_VERB_AUTH]     = {CMD_ERROR, smtpd_cmd_unimpl},
	[SMTP_VERB_BDAT]     = {CMD_ERROR, smtpd_cmd_unimpl},
};
/* clang-format on */

/* Web requests sent to an SMTP port: answer once and hang up (as Postfix's
 * smtpd_forbidden_commands does). */
static bool
smtpd_is_http(const char *line, size_t len)
{
	static const char *const verbs[] = {"GET ", "POST ", "CONNECT ", "HEAD ", "PUT "};
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (len >= strlen(verbs[i]) && memcmp(line, verbs[i], strlen(verbs[i])) == 0)
			return true;
	return false;
}

void
smtpd_cmd_dispatch(struct smtpd_session *s, char *line, size_t len)
{
	struct smtp_cmd cmd;
	smtp_parse_command(line, len, &cmd);
	s->cur_verb = cmd.verb;
	log_escape(s->cur_arg, sizeof(s->cur_arg), cmd.arg, cmd.arg_len);
	s->cmd_count[cmd.verb]++;
	if (log_get_level() == LOG_LVL_DEBUG) {
		char esc[600];
		log_escape(esc, sizeof(esc), line, len);
		log_debug("%s < %s", s->id, esc);
	}

	if (memchr(line, '\0', len) != NULL) {
		smtpd_reply_text(s, REPLY_UNKNOWN_CMD, "NUL character in command");
		smtpd_count_error(s);
		return;
	}
	if (cmd.verb == SMTP_VERB_UNKNOWN) {
		if (smtpd_is_http(line, len)) {
			smtpd_reply_text(s, REPLY_UNKNOWN_CMD, "This is an SMTP server, not a web server");
			smtpd_close(s, "http request");
			return;
		}
		smtpd_reply(s, REPLY_UNKNOWN_CMD);
		smtpd_count_error(s);
		return;
	}
	const struct smtpd_cmd_def *def = &smtpd_cmds[cmd.verb];
	enum smtp_reply_id err = REPLY__COUNT;
	if ((def->flags & CMD_NO_ARG) && cmd.arg_len > 0)
		err = REPLY_SYNTAX;
	else if ((def->flags & CMD_NEED_ARG) && cmd.arg_len == 0)
		err = (cmd.verb == SMTP_VERB_HELO || cmd.verb == SMTP_VERB_EHLO) ? REPLY_HELO_SYNTAX
		                                                                 : REPLY_SYNTAX;
	else if ((def->flags & CMD_NEED_HELO) && !s->helo_seen)
		err = REPLY_NEED_HELO;
	else if ((def->flags & CMD_NEED_MAIL) && s->env == NULL)
		err = cmd.verb == SMTP_VERB_RCPT ? REPLY_NEED_MAIL : REPLY_BAD_SEQUENCE;
	if (err != REPLY__COUNT) {
		smtpd_reply(s, err);
		smtpd_count_error(s);
		return;
	}
	def->proceed(s, cmd.arg, cmd.arg_len);
	if ((def->flags & CMD_ERROR) && s->state < SMTPD_S_CLOSING)
		smtpd_count_error(s);
}

/* ---- HELO / EHLO ------------------------------------------------------------ */

static bool
smtpd_set_helo(struct smtpd_session *s, const char *arg, size_t len)
{
	if (!smtp_helo_valid(arg, len)) {
		smtpd_reply(s, REPLY_HELO_SYNTAX);
		smtpd_count_error(s);
		return false;
	}
	smtpd_tx_reset(s);
	mx_strlcpyn(s->helo, arg, len, sizeof(s->helo));
	s->helo_seen = true;
	return true;
}

static void
smtpd_cmd_helo(struct smtpd_session *s, const char *arg, size_t len)
{
	if (!smtpd_set_helo(s, arg, len))
		return;
	s->esmtp = false;
	evbuffer_add_printf(bufferevent_get_output(s->bev), "250 %s\r\n", s->cfg->hostname);
}

static void
smtpd_cmd_ehlo(struct smtpd_session *s, const char *arg, size_t len)
{
	if (!smtpd_set_helo(s, arg, len))
		return;
	s->esmtp = true;
	smtpd_reply_ehlo(s);
}

/* ---- MAIL ------------------------------------------------------------------ */

static void
smtpd_cmd_mail(struct smtpd_session *s, const char *arg, size_t len)
{
	if (s->env != NULL) {
		smtpd_reply(s, REPLY_NESTED_MAIL);
		smtpd_count_error(s);
		return;
	}
	if (!mx_str_caseprefix(arg, len, "FROM:")) {
		smtpd_reply_text(s, REPLY_SYNTAX, "Syntax: MAIL FROM:<address>");
		smtpd_count_error(s);
		return;
	}
	struct smtp_addr a;
	const char *rest;
	size_t rest_len;
	enum smtp_addr_err ae =
	    smtp_parse_path(arg + 5, len - 5, SMTP_PATH_NULL_OK | SMTP_PATH_UTF8_OK, &a, &rest, &rest_len);
	if (ae != SMTP_ADDR_OK) {
		smtpd_reply_text(s, ae == SMTP_ADDR_UTF8 ? REPLY_NON_ASCII : REPLY_SENDER_SYNTAX, "%s (%s)",
		                 smtp_reply_get(ae == SMTP_ADDR_UTF8 ? REPLY_NON_ASCII : REPLY_SENDER_SYNTAX)->text,
		                 smtp_addr_err_str(ae));
		smtpd_count_error(s);
		return;
	}
	struct smtp_mail_params pm;
	char bad[64];
	enum smtp_param_err pe = smtp_parse_mail_params(rest, rest_len, &pm, bad, sizeof(bad));
	if (pe != SMTP_PARAM_OK) {
		char esc[80];
		log_escape(esc, sizeof(esc), bad, strlen(bad));
		smtpd_reply_text(s, pe == SMTP_PARAM_UNKNOWN ? REPLY_PARAM_UNKNOWN : REPLY_PARAM_SYNTAX,
		                 "%s: %s", smtp_reply_get(pe == SMTP_PARAM_UNKNOWN ? REPLY_PARAM_UNKNOWN
		                                                                   : REPLY_PARAM_SYNTAX)->text,
		                 esc);
		smtpd_count_error(s);
		return;
	}
	if (a.utf8 && !pm.smtputf8) {
		smtpd_reply(s, REPLY_NON_ASCII);
		smtpd_count_error(s);
		return;
	}
	if (pm.size > (unsigned long long)s->cfg->message_size) {
		smtpd_reply(s, REPLY_SIZE_TOO_BIG);
		smtpd_count_error(s);
		return;
	}
	s->env = xmalloc(sizeof(*s->env));
	envelope_init(s->env);
	mx_strlcpy(s->env->mail_from, a.null ? "" : a.addr, sizeof(s->env->mail_from));
	s->env->params = pm;
	s->env->arrival = mx_clock_wall();
	mx_id_str(mx_id_next(), s->env->id);
	struct smtpd_verdict v;
	smtpd_verdict_init(&v, REPLY_SENDER_OK);
	s->pending = SMTPD_P_MAIL;
	s->refs++;
	if (s->ctx->hooks->mail == NULL || s->ctx->hooks->mail(s, s->env, &v) == SMTPD_HOOK_DONE)
		smtpd_resume(s, &v);
}

static void
smtpd_mail_done(struct smtpd_session *s, const struct smtpd_verdict *v)
{
	const struct smtp_reply *r = v->reply == SMTPD_VERDICT_CUSTOM ? NULL : smtp_reply_get(v->reply);
	int code = r ? r->code : v->code;
	smtpd_reply_verdict(s, v);
	if (code >= 400)
		smtpd_tx_reset(s); /* no transaction */
	if (v->disconnect)
		smtpd_close(s, "refused by policy");
}

/* ---- RCPT ------------------------------------------------------------------ */

static void
smtpd_cmd_rcpt(struct smtpd_session *s, const char *arg, size_t len)
{
	if (!mx_str_caseprefix(arg, len, "TO:")) {
		smtpd_reply_text(s, REPLY_SYNTAX, "Syntax: RCPT TO:<address>");
		smtpd_count_error(s);
		return;
	}
	unsigned flags = SMTP_PATH_ROUTING | SMTP_PATH_POSTMASTER;
	if (s->env->params.smtputf8)
		flags |= SMTP_PATH_UTF8_OK;
	struct smtp_addr *a = &s->pending_rcpt;
	const char *rest;
	size_t rest_len;
	enum smtp_addr_err ae = smtp_parse_path(arg + 3, len - 3, flags, a, &rest, &rest_len);
	if (ae != SMTP_ADDR_OK) {
		enum smtp_reply_id id = REPLY_RCPT_SYNTAX;
		switch (ae) {
		case SMTP_ADDR_ROUTE:
		case SMTP_ADDR_PERCENT:
		case SMTP_ADDR_BANG:
		case SMTP_ADDR_HIDDEN_AT:
			id = REPLY_ROUTING_DENIED;
			stats_inc(STAT_SMTP_RELAY_DENIED);
			break;
		case SMTP_ADDR_UTF8:
			id = REPLY_NON_ASCII;
			break;
		default:
			break;
		}
		smtpd_reply_text(s, id, "%s (%s)", smtp_reply_get(id)->text, smtp_addr_err_str(ae));
		smtpd_count_error(s);
		return;
	}
	char bad[64];
	enum smtp_param_err pe = smtp_parse_rcpt_params(rest, rest_len, bad, sizeof(bad));
	if (pe != SMTP_PARAM_OK) {
		char esc[80];
		log_escape(esc, sizeof(esc), bad, strlen(bad));
		smtpd_reply_text(s, pe == SMTP_PARAM_UNKNOWN ? REPLY_PARAM_UNKNOWN : REPLY_PARAM_SYNTAX,
		                 "Unsupported RCPT parameter: %s", esc);
		smtpd_count_error(s);
		return;
	}
	if (s->env->n_rcpt >= (size_t)s->cfg->max_recipients) {
		smtpd_reply(s, REPLY_TOO_MANY_RCPTS);
		return;
	}
	if (a->postmaster) { /* RFC 5321 4.5.1: <postmaster> is ours */
		mx_strlcpy(a->domain, s->cfg->domains[0], sizeof(a->domain));
		snprintf(a->addr, sizeof(a->addr), "postmaster@%s", a->domain);
	}
	struct smtpd_verdict v;
	smtpd_verdict_init(&v, REPLY_RCPT_OK);
	s->pending = SMTPD_P_RCPT;
	s->refs++;
	if (s->ctx->hooks->rcpt(s, a, &v) == SMTPD_HOOK_DONE)
		smtpd_resume(s, &v);
}

static void
smtpd_rcpt_done(struct smtpd_session *s, const struct smtpd_verdict *v)
{
	const struct smtp_reply *r = v->reply == SMTPD_VERDICT_CUSTOM ? NULL : smtp_reply_get(v->reply);
	int code = r ? r->code : v->code;
	if (code >= 200 && code < 300) {
		if (!envelope_has_rcpt(s->env, s->pending_rcpt.addr))
			envelope_add_rcpt(s->env, s->pending_rcpt.addr);
		stats_inc(STAT_SMTP_RCPT_OK);
	}
	smtpd_reply_verdict(s, v);
	if (v->disconnect) {
		smtpd_close(s, "refused by policy");
		return;
	}
	if (v->unknown_rcpt && ++s->unknown_rcpts >= (unsigned)s->cfg->max_unknown_rcpt) {
		stats_inc(STAT_SMTP_HARVEST_CLOSE);
		smtpd_reply(s, REPLY_HARVEST);
		smtpd_close(s, "too many unknown recipients");
		return;
	}
	if (code >= 500 && !v->unknown_rcpt)
		smtpd_count_error(s);
}

/* ---- DATA and the end of the message --------------------------------------- */

static void
smtpd_cmd_data(struct smtpd_session *s, const char *arg, size_t len)
{
	if (s->env->n_rcpt == 0) {
		smtpd_reply(s, REPLY_NEED_RCPT);
		smtpd_count_error(s);
		return;
	}
	struct smtpd_verdict v;
	smtpd_verdict_init(&v, REPLY_DATA_GO);
	s->pending = SMTPD_P_DATA;
	s->refs++;
	if (s->ctx->hooks->data == NULL || s->ctx->hooks->data(s, s->env, &v) == SMTPD_HOOK_DONE)
		smtpd_resume(s, &v);
}

static void
smtpd_data_done(struct smtpd_session *s, const struct smtpd_verdict *v)
{
	if (v->reply != REPLY_DATA_GO) {
		smtpd_reply_verdict(s, v);
		if (v->disconnect)
			smtpd_close(s, "refused by policy");
		return;
	}
	const struct smtp_reply *r = smtp_reply_get(REPLY_DATA_GO);
	evbuffer_add_printf(bufferevent_get_output(s->bev), "%d %s\r\n", r->code, r->text);
	smtpd_start_data(s);
}

static void
smtpd_message_done(struct smtpd_session *s, const struct smtpd_verdict *v)
{
	const struct smtp_reply *r = v->reply == SMTPD_VERDICT_CUSTOM ? NULL : smtp_reply_get(v->reply);
	int code = r ? r->code : v->code;
	const char *enh = r ? r->enh : v->enh;
	const char *text = r ? r->text : v->text;
	const char *result = v->result ? v->result
	                     : code < 300 ? "relayed" : code < 500 ? "tempfail" : "rejected";
	if (code < 300)
		stats_inc(STAT_MSG_DELIVERED);
	else
		stats_inc(code < 500 ? STAT_MSG_TEMPFAIL : STAT_MSG_REJECTED);
	smtpd_reply_verdict(s, v);
	smtpd_log_message(s, result, code, enh ? enh : "", text, v->log);
	smtpd_tx_reset(s);
	if (v->disconnect)
		smtpd_close(s, "closed after message");
}

void
smtpd_cmd_resume(struct smtpd_session *s, enum smtpd_pending p, const struct smtpd_verdict *v)
{
	switch (p) {
	case SMTPD_P_MAIL:
		smtpd_mail_done(s, v);
		break;
	case SMTPD_P_RCPT:
		smtpd_rcpt_done(s, v);
		break;
	case SMTPD_P_DATA:
		smtpd_data_done(s, v);
		break;
	case SMTPD_P_MESSAGE:
		smtpd_message_done(s, v);
		break;
	case SMTPD_P_NONE:
	case SMTPD_P_CONNECT:
		smtpd_reply_verdict(s, v);
		break;
	}
}

/* ---- the rest ----------------------------------------------------------------- */

static void
smtpd_cmd_rset(struct smtpd_session *s, const char *arg, size_t len)
{
	smtpd_tx_reset(s);
	smtpd_reply(s, REPLY_RSET);
}

static void
smtpd_cmd_noop(struct smtpd_session *s, const char *arg, size_t len)
{
	smtpd_reply(s, REPLY_NOOP);
}

static void
smtpd_cmd_quit(struct smtpd_session *s, const char *arg, size_t len)
{
	smtpd_reply(s, REPLY_QUIT);
	smtpd_close(s, "quit");
}

static void
smtpd_cmd_vrfy(struct smtpd_session *s, const char *arg, size_t len)
{
	smtpd_reply(s, REPLY_VRFY);
}

static void
smtpd_cmd_expn(struct smtpd_session *s, const char *arg, size_t len)
{
	smtpd_reply(s, REPLY_EXPN_DISABLED);
}

static void
smtpd_cmd_help(struct smtpd_session *s, const char *arg, size_t len)
{
	smtpd_reply(s, REPLY_HELP);
}

static void
smtpd_cmd_unimpl(struct smtpd_session *s, const char *arg, size_t len)
{
	smtpd_reply(s, REPLY_NOT_IMPLEMENTED);
}

static void
smtpd_cmd_starttls(struct smtpd_session *s, const char *arg, size_t len)
{
	if (s->tls) {
		smtpd_reply(s, REPLY_TLS_ACTIVE);
		smtpd_count_error(s);
		return;
	}
	if (s->tls_ctx == NULL) {
		smtpd_reply(s, REPLY_NOT_IMPLEMENTED);
		smtpd_count_error(s);
		return;
	}
	/* RFC 3207 4.2: the session starts over */
	smtpd_tx_reset(s);
	s->helo_seen = false;
	s->helo[0] = '\0';
	smtpd_reply(s, REPLY_TLS_GO);
	smtpd_start_tls(s);
}
