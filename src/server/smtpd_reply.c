/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	smtpd_reply - the one function that writes replies to SMTP clients
 * DESCRIPTION
 *	Every reply passes here: soft_bounce turns policy rejections (55x)
 *	into 45x, reply text is cleaned of anything that could break the
 *	protocol (CR, LF, controls) and cut to the RFC 5321 line limit, and
 *	every 4xx/5xx is logged with the command that caused it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "log.h"
#include "smtpd_int.h"
#include "str.h"

#define SMTPD_REPLY_MAX 510 /* a reply line without CRLF (RFC 5321 4.5.3.1.5) */

void
smtpd_verdict_init(struct smtpd_verdict *v, enum smtp_reply_id reply)
{
	memset(v, 0, sizeof(*v));
	v->reply = reply;
}

void
smtpd_verdict_custom(struct smtpd_verdict *v, int code, const char *enh, const char *fmt, ...)
{
	memset(v, 0, sizeof(*v));
	v->reply = SMTPD_VERDICT_CUSTOM;
	v->code = code;
	mx_strlcpy(v->enh, enh ? enh : "", sizeof(v->enh));
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->text, sizeof(v->text), fmt, ap);
	va_end(ap);
}

void
smtpd_reply_raw(struct smtpd_session *s, int code, const char *enh, const char *text)
{
	if (s->bev == NULL || s->state >= SMTPD_S_CLOSING)
		return;
	char e[16] = "";
	if (enh != NULL && *enh)
		mx_strlcpy(e, enh, sizeof(e));
	if (s->cfg->soft_bounce && code >= 550 && code <= 559) {
		code -= 100;
		if (e[0] == '5')
			e[0] = '4';
	}
	char line[SMTPD_REPLY_MAX + 3];
	int n = snprintf(line, sizeof(line), "%d%s%s ", code, *e ? " " : "", e);
	size_t o = (size_t)n;
	for (const char *p = text; *p && o < SMTPD_REPLY_MAX; p++) {
		unsigned char c = (unsigned char)*p;
		line[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	line[o++] = '\r';
	line[o++] = '\n';
	evbuffer_add(bufferevent_get_output(s->bev), line, o);
	/* A stop's 421 refuses no command of the client's: the disconnect line
	 * says reason="shutdown", and a reject line naming the command last
	 * read (a RCPT cut off at a forced stop, say) would mislead. */
	const struct smtp_reply *stop = smtp_reply_get(REPLY_SHUTDOWN);
	if (code >= 400 && !(code == stop->code && strcmp(e, stop->enh) == 0))
		smtpd_log_reject(s, code, e, line + n);
}

void
smtpd_reply(struct smtpd_session *s, enum smtp_reply_id id)
{
	const struct smtp_reply *r = smtp_reply_get(id);
	smtpd_reply_raw(s, r->code, r->enh, r->text);
}

void
smtpd_reply_text(struct smtpd_session *s, enum smtp_reply_id id, const char *fmt, ...)
{
	const struct smtp_reply *r = smtp_reply_get(id);
	char text[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	smtpd_reply_raw(s, r->code, r->enh, text);
}

void
smtpd_reply_verdict(struct smtpd_session *s, const struct smtpd_verdict *v)
{
	if (v->reply == SMTPD_VERDICT_CUSTOM)
		smtpd_reply_raw(s, v->code, v->enh, v->text);
	else
		smtpd_reply(s, v->reply);
}

void
smtpd_reply_greeting(struct smtpd_session *s)
{
	if (s->bev == NULL)
		return;
	evbuffer_add_printf(bufferevent_get_output(s->bev), "220 %s %s\r\n", s->cfg->hostname,
	                    s->cfg->banner);
}

void
smtpd_reply_ehlo(struct smtpd_session *s)
{
	struct evbuffer *out = bufferevent_get_output(s->bev);
	char helo[80];
	log_escape(helo, sizeof(helo), s->helo, strlen(s->helo));
	evbuffer_add_printf(out, "250-%s Hello %s [%s]\r\n", s->cfg->hostname, helo, s->client_ip);
	evbuffer_add_printf(out, "250-PIPELINING\r\n250-SIZE %lld\r\n250-8BITMIME\r\n",
	                    s->cfg->message_size);
	evbuffer_add_printf(out, "250-ENHANCEDSTATUSCODES\r\n");
	if (s->tls_ctx != NULL && !s->tls)
		evbuffer_add_printf(out, "250-STARTTLS\r\n");
	evbuffer_add_printf(out, "250 SMTPUTF8\r\n");
}
