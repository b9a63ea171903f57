/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	smtp_parse - SMTP command lines, paths and ESMTP parameters
 * DESCRIPTION
 *	Hand-written because no Debian library parses RFC 5321 paths with the
 *	relay-trick checks a gateway needs (see docs/design.md).  Every loop is
 *	bounded by the input length, which the caller has already capped at
 *	SMTP_LINE_MAX.
 */
#include "smtp_parse.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "idna.h"
#include "str.h"

static const char *const smtp_verb_names[SMTP_VERB__COUNT] = {
	[SMTP_VERB_UNKNOWN] = "UNKNOWN", [SMTP_VERB_HELO] = "HELO", [SMTP_VERB_EHLO] = "EHLO",
	[SMTP_VERB_MAIL] = "MAIL",       [SMTP_VERB_RCPT] = "RCPT", [SMTP_VERB_DATA] = "DATA",
	[SMTP_VERB_RSET] = "RSET",       [SMTP_VERB_NOOP] = "NOOP", [SMTP_VERB_QUIT] = "QUIT",
	[SMTP_VERB_VRFY] = "VRFY",       [SMTP_VERB_EXPN] = "EXPN", [SMTP_VERB_HELP] = "HELP",
	[SMTP_VERB_STARTTLS] = "STARTTLS", [SMTP_VERB_AUTH] = "AUTH", [SMTP_VERB_BDAT] = "BDAT",
};

const char *
smtp_verb_name(enum smtp_verb v)
{
	return (unsigned)v < SMTP_VERB__COUNT ? smtp_verb_names[v] : "UNKNOWN";
}

void
smtp_parse_command(const char *line, size_t len, struct smtp_cmd *out)
{
	size_t vl = 0;
	while (vl < len && line[vl] != ' ')
		vl++;
	out->verb = SMTP_VERB_UNKNOWN;
	for (int v = 1; v < SMTP_VERB__COUNT; v++) {
		const char *n = smtp_verb_names[v];
		if (strlen(n) == vl && mx_str_caseprefix(line, vl, n)) {
			out->verb = (enum smtp_verb)v;
			break;
		}
	}
	size_t a = vl < len ? vl + 1 : vl;
	/* trailing spaces are not part of the argument (clients add them) */
	size_t e = len;
	while (e > a && line[e - 1] == ' ')
		e--;
	out->arg = line + a;
	out->arg_len = e - a;
}

/* ---- paths ----------------------------------------------------------------- */

static bool
smtp_is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool
smtp_is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* A dot-string: atext runs separated by single dots. */
static bool
smtp_is_dot_string(const char *s, size_t len)
{
	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (s[i + 1] == '.')
				return false;
		} else if (!smtp_is_atext(c) && c < 0x80) {
			return false;
		}
	}
	return true;
}

struct smtp_cursor {
	const char *p, *e;
	unsigned flags;
	bool utf8;
};

static enum smtp_addr_err
smtp_parse_local(struct smtp_cursor *c, struct smtp_addr *out)
{
	char buf[SMTP_PATH_MAX + 1];
	size_t n = 0;
	const char *start = c->p;
	bool quoted = false;

	if (c->p < c->e && *c->p == '"') {
		quoted = true;
		c->p++;
		for (;;) {
			if (c->p >= c->e)
				return SMTP_ADDR_SYNTAX;
			unsigned char ch = (unsigned char)*c->p++;
			if (ch == '"')
				break;
			if (ch == '\\') {
				if (c->p >= c->e)
					return SMTP_ADDR_SYNTAX;
				ch = (unsigned char)*c->p++;
			}
			if (smtp_is_ctl(ch))
				return SMTP_ADDR_CONTROL;
			if (ch >= 0x80) {
				if (!(c->flags & SMTP_PATH_UTF8_OK))
					return SMTP_ADDR_UTF8;
				c->utf8 = true;
			}
			if ((c->flags & SMTP_PATH_ROUTING) && (ch == '@' || ch == '%' || ch == '!'))
				return SMTP_ADDR_HIDDEN_AT;
			if (n >= SMTP_PATH_MAX)
				return SMTP_ADDR_TOO_LONG;
			buf[n++] = (char)ch;
		}
	} else {
		while (c->p < c->e && *c->p != '@' && *c->p != '>' && *c->p != ' ') {
			unsigned char ch = (unsigned char)*c->p;
			if (smtp_is_ctl(ch))
				return SMTP_ADDR_CONTROL;
			if (ch >= 0x80) {
				if (!(c->flags & SMTP_PATH_UTF8_OK))
					return SMTP_ADDR_UTF8;
				c->utf8 = true;
			} else if ((c->flags & SMTP_PATH_ROUTING) && ch == '%') {
				return SMTP_ADDR_PERCENT;
			} else if ((c->flags & SMTP_PATH_ROUTING) && ch == '!') {
				return SMTP_ADDR_BANG;
			} else if (ch != '.' && !smtp_is_atext(ch)) {
				return SMTP_ADDR_SYNTAX;
			}
			if (n >= SMTP_PATH_MAX)
				return SMTP_ADDR_TOO_LONG;
			buf[n++] = (char)ch;
			c->p++;
		}
		if (n == 0)
			return SMTP_ADDR_SYNTAX;
	}
	if ((size_t)(c->p - start) > SMTP_LOCAL_MAX)
		return SMTP_ADDR_TOO_LONG;
	if (c->utf8 && !mx_utf8_valid(buf, n))
		return SMTP_ADDR_UTF8;

	/* canonical form: drop quotes that were not needed */
	if (!quoted || smtp_is_dot_string(buf, n)) {
		memcpy(out->local, buf, n);
		out->local[n] = '\0';
		out->quoted = false;
		return SMTP_ADDR_OK;
	}
	size_t o = 0;
	out->local[o++] = '"';
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '"' || buf[i] == '\\') {
			if (o + 1 >= SMTP_LOCAL_MAX)
				return SMTP_ADDR_TOO_LONG;
			out->local[o++] = '\\';
		}
		if (o + 1 >= SMTP_LOCAL_MAX)
			return SMTP_ADDR_TOO_LONG;
		out->local[o++] = buf[i];
	}
	out->local[o++] = '"';
	out->local[o] = '\0';
	out->quoted = true;
	return SMTP_ADDR_OK;
}

static enum smtp_addr_err
smtp_parse_domain(struct smtp_cursor *c, struct smtp_addr *out)
{
	const char *start = c->p;
	size_t n = 0;
	bool wide = false;
	if (c->p < c->e && *c->p == '[') {
		const char *close = memchr(c->p, ']', (size_t)(c->e - c->p));
		if (close == NULL)
			return SMTP_ADDR_SYNTAX;
		size_t len = (size_t)(close - c->p) + 1;
		if (len > SMTP_DOMAIN_MAX)
			return SMTP_ADDR_TOO_LONG;
		char ip[SMTP_DOMAIN_MAX + 1];
		const char *in = c->p + 1;
		size_t il = len - 2;
		for (size_t i = 0; i < il; i++)
			if (smtp_is_ctl((unsigned char)in[i]))
				return SMTP_ADDR_CONTROL;
		unsigned char tmp[16];
		int fam = AF_INET;
		if (mx_str_caseprefix(in, il, "IPv6:")) {
			in += 5;
			il -= 5;
			fam = AF_INET6;
		}
		if (mx_strlcpyn(ip, in, il, sizeof(ip)) < 0 || inet_pton(fam, ip, tmp) != 1)
			return SMTP_ADDR_SYNTAX;
		memcpy(out->domain, c->p, len);
		out->domain[len] = '\0';
		mx_str_lower(out->domain);
		out->literal = true;
		c->p = close + 1;
		return SMTP_ADDR_OK;
	}
	size_t label = 0;
	while (c->p < c->e && *c->p != '>' && *c->p != ' ') {
		unsigned char ch = (unsigned char)*c->p;
		if (smtp_is_ctl(ch))
			return SMTP_ADDR_CONTROL;
		if (ch == '.') {
			if (label == 0)
				return SMTP_ADDR_SYNTAX;
			label = 0;
		} else if (ch >= 0x80) {
			if (!(c->flags & SMTP_PATH_UTF8_OK))
				return SMTP_ADDR_UTF8;
			c->utf8 = wide = true;
			label++;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		           (ch >= '0' && ch <= '9') || ch == '-' || ch == '_') {
			label++;
		} else {
			return SMTP_ADDR_SYNTAX;
		}
		if (label > 63 || n >= SMTP_DOMAIN_MAX)
			return SMTP_ADDR_TOO_LONG;
		out->domain[n++] = mx_tolower((char)ch);
		c->p++;
	}
	out->domain[n] = '\0';
	if (n == 0 || label == 0)
		return SMTP_ADDR_SYNTAX;
	if (c->utf8 && !mx_utf8_valid(start, n))
		return SMTP_ADDR_UTF8;
	if (wide) {
		/* RFC 6531: a U-label and its A-label name one domain. The
		 * domain takes its A-label form (UTS #46, as browsers and MTAs
		 * map it: "BÄD.test" is xn--bd-via.test), so that the hosted
		 * domains, the recipient lists and the directory see one
		 * spelling; one libidn2 refuses stays as written. One whose
		 * mapping gives ASCII the loop above refuses ("ｘ＞　ＲＥＴ＝"
		 * would be "x> ret=") is refused too: the domain must not carry
		 * into the downstream's MAIL FROM what the client may not. */
		if (mx_idna_alabel(out->domain, out->domain, sizeof(out->domain)) == MX_IDNA_FORBIDDEN)
			return SMTP_ADDR_SYNTAX;
	}
	return SMTP_ADDR_OK;
}

enum smtp_addr_err
smtp_parse_path(const char *s, size_t len, unsigned flags, struct smtp_addr *out,
                const char **rest, size_t *rest_len)
{
	struct smtp_cursor c = {s, s + len, flags, false};
	memset(out, 0, sizeof(*out));
	while (c.p < c.e && *c.p == ' ')
		c.p++;
	const char *path_start = c.p;
	bool bracket = c.p < c.e && *c.p == '<';
	if (bracket)
		c.p++;
	if (c.p < c.e && *c.p == '@')
		return SMTP_ADDR_ROUTE;
	if (bracket && c.p < c.e && *c.p == '>') {
		if (!(flags & SMTP_PATH_NULL_OK))
			return SMTP_ADDR_EMPTY;
		out->null = true;
		c.p++;
		goto params;
	}
	if (c.p >= c.e || (!bracket && *c.p == '>'))
		return bracket ? SMTP_ADDR_SYNTAX : SMTP_ADDR_EMPTY;

	enum smtp_addr_err err = smtp_parse_local(&c, out);
	if (err != SMTP_ADDR_OK)
		return err;
	if (c.p >= c.e || *c.p != '@') {
		/* RFC 5321 4.5.1: <postmaster> without a domain must be accepted */
		if ((flags & SMTP_PATH_POSTMASTER) && mx_str_caseeq(out->local, "postmaster") &&
		    (bracket ? (c.p < c.e && *c.p == '>') : (c.p >= c.e || *c.p == ' '))) {
			out->postmaster = true;
			mx_strlcpy(out->local, "postmaster", sizeof(out->local));
			snprintf(out->addr, sizeof(out->addr), "postmaster");
			if (bracket)
				c.p++;
			goto params;
		}
		return SMTP_ADDR_SYNTAX;
	}
	c.p++;
	if (c.p < c.e && memchr(c.p, ':', (size_t)(c.e - c.p)) != NULL && bracket) {
		/* "<a@b:c@d>" style: a route that did not start with '@' */
		const char *gt = memchr(c.p, '>', (size_t)(c.e - c.p));
		const char *colon = memchr(c.p, ':', (size_t)(c.e - c.p));
		if (gt != NULL && colon < gt && !(*c.p == '['))
			return SMTP_ADDR_ROUTE;
	}
	err = smtp_parse_domain(&c, out);
	if (err != SMTP_ADDR_OK)
		return err;
	if (bracket) {
		if (c.p >= c.e || *c.p != '>')
			return SMTP_ADDR_SYNTAX;
		c.p++;
	}
	if ((size_t)(c.p - path_start) > SMTP_PATH_MAX + (bracket ? 0 : 2))
		return SMTP_ADDR_TOO_LONG;
	out->utf8 = c.utf8;
	size_t ll = strlen(out->local), dl = strlen(out->domain);
	if (ll + 1 + dl > SMTP_PATH_MAX - 2)
		return SMTP_ADDR_TOO_LONG;
	memcpy(out->addr, out->local, ll);
	out->addr[ll] = '@';
	memcpy(out->addr + ll + 1, out->domain, dl + 1);

params:
	if (c.p < c.e && *c.p != ' ')
		return SMTP_ADDR_SYNTAX;
	while (c.p < c.e && *c.p == ' ')
		c.p++;
	*rest = c.p;
	*rest_len = (size_t)(c.e - c.p);
	return SMTP_ADDR_OK;
}

const char *
smtp_addr_err_str(enum smtp_addr_err e)
{
	switch (e) {
	case SMTP_ADDR_OK: return "ok";
	case SMTP_ADDR_SYNTAX: return "syntax";
	case SMTP_ADDR_EMPTY: return "empty";
	case SMTP_ADDR_TOO_LONG: return "too_long";
	case SMTP_ADDR_CONTROL: return "control_char";
	case SMTP_ADDR_ROUTE: return "source_route";
	case SMTP_ADDR_PERCENT: return "percent_hack";
	case SMTP_ADDR_BANG: return "bang_path";
	case SMTP_ADDR_HIDDEN_AT: return "quoted_routing";
	case SMTP_ADDR_UTF8: return "utf8";
	}
	return "unknown";
}

/* ---- ESMTP parameters ---------------------------------------------------- */

struct smtp_param {
	const char *kw, *val;
	size_t kwlen, vallen;
};

/* Next "keyword[=value]" word. Returns 1 with a param, 0 at the end, -1 on junk. */
static int
smtp_next_param(const char **p, const char *e, struct smtp_param *out)
{
	while (*p < e && **p == ' ')
		(*p)++;
	if (*p >= e)
		return 0;
	const char *w = *p;
	while (*p < e && **p != ' ')
		(*p)++;
	size_t wl = (size_t)(*p - w);
	const char *eq = memchr(w, '=', wl);
	out->kw = w;
	out->kwlen = eq ? (size_t)(eq - w) : wl;
	out->val = eq ? eq + 1 : NULL;
	out->vallen = eq ? wl - out->kwlen - 1 : 0;
	if (out->kwlen == 0)
		return -1;
	for (size_t i = 0; i < out->kwlen; i++) {
		char ch = w[i];
		bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
		if (!alnum && !(ch == '-' && i > 0))
			return -1;
	}
	for (size_t i = 0; i < out->vallen; i++) {
		unsigned char ch = (unsigned char)out->val[i];
		if (ch < 33 || ch > 126 || ch == '=')
			return -1;
	}
	return 1;
}

static void
smtp_param_bad(const struct smtp_param *pm, char *bad, size_t badlen)
{
	size_t l = pm->kwlen + (pm->val ? pm->vallen + 1 : 0);
	mx_strlcpyn(bad, pm->kw, l, badlen);
}

enum smtp_param_err
smtp_parse_mail_params(const char *s, size_t len, struct smtp_mail_params *out, char *bad,
                       size_t badlen)
{
	const char *p = s, *e = s + len;
	struct smtp_param pm;
	int rc;
	memset(out, 0, sizeof(*out));
	if (badlen > 0)
		bad[0] = '\0';
	while ((rc = smtp_next_param(&p, e, &pm)) == 1) {
		if (pm.kwlen == 4 && mx_str_caseprefix(pm.kw, 4, "SIZE")) {
			if (pm.val == NULL || mx_parse_u64(pm.val, pm.vallen, &out->size) < 0) {
				smtp_param_bad(&pm, bad, badlen);
				return SMTP_PARAM_VALUE;
			}
		} else if (pm.kwlen == 4 && mx_str_caseprefix(pm.kw, 4, "BODY")) {
			if (pm.val != NULL && pm.vallen == 8 && mx_str_caseprefix(pm.val, 8, "8BITMIME"))
				out->body_8bit = true;
			else if (pm.val != NULL && pm.vallen == 4 && mx_str_caseprefix(pm.val, 4, "7BIT"))
				out->body_8bit = false;
			else {
				smtp_param_bad(&pm, bad, badlen);
				return SMTP_PARAM_VALUE;
			}
		} else if (pm.kwlen == 8 && mx_str_caseprefix(pm.kw, 8, "SMTPUTF8")) {
			if (pm.val != NULL) {
				smtp_param_bad(&pm, bad, badlen);
				return SMTP_PARAM_VALUE;
			}
			out->smtputf8 = true;
		} else {
			smtp_param_bad(&pm, bad, badlen);
			return SMTP_PARAM_UNKNOWN;
		}
	}
	return rc < 0 ? SMTP_PARAM_SYNTAX : SMTP_PARAM_OK;
}

enum smtp_param_err
smtp_parse_rcpt_params(const char *s, size_t len, char *bad, size_t badlen)
{
	const char *p = s;
	struct smtp_param pm;
	int rc = smtp_next_param(&p, s + len, &pm);
	if (badlen > 0)
		bad[0] = '\0';
	if (rc == 0)
		return SMTP_PARAM_OK;
	if (rc < 0)
		return SMTP_PARAM_SYNTAX;
	smtp_param_bad(&pm, bad, badlen);
	return SMTP_PARAM_UNKNOWN;
}

bool
smtp_helo_valid(const char *s, size_t len)
{
	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (smtp_is_ctl(c))
			return false;
	}
	return true;
}
