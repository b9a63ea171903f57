/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	ldap_escape - RFC 4515 filter values and query templates
 * DESCRIPTION
 *	See ldap_escape.h.  RFC 4515 section 3: a value is UTF1SUBSET / UTFMB
 *	octets or "\" HEX HEX; the octets that must be escaped are NUL, '(',
 *	')', '*' and '\'.  We escape more (everything outside 0x21..0x7e, and
 *	space is kept), which any server accepts.
 */
#include "ldap_escape.h"

#include <string.h>

static bool
ldap_escape_plain(unsigned char c)
{
	if (c < 0x20 || c > 0x7e)
		return false;
	return c != '*' && c != '(' && c != ')' && c != '\\';
}

int
ldap_escape_value(const char *in, size_t inlen, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (outlen == 0)
		return -1;
	for (size_t i = 0; i < inlen; i++) {
		unsigned char c = (unsigned char)in[i];
		size_t need = ldap_escape_plain(c) ? 1 : 3;
		if (o + need >= outlen) {
			out[0] = '\0';
			return -1;
		}
		if (need == 1) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return (int)o;
}

enum ldap_escape_rc
ldap_escape_expand(const char *tmpl, const char *key, char *out, size_t outlen)
{
	const char *at = strrchr(key, '@');
	if (outlen == 0)
		return LDAP_ESCAPE_TOOLONG;
	out[0] = '\0';
	if (at == NULL)
		return LDAP_ESCAPE_BADKEY;
	size_t llen = (size_t)(at - key);
	if (llen == 0 && ldap_escape_uses_local(tmpl))
		return LDAP_ESCAPE_SUPPRESS;
	size_t o = 0;
	for (const char *p = tmpl; *p; p++) {
		const char *v = NULL;
		size_t vlen = 0;
		if (*p != '%') {
			if (o + 1 >= outlen)
				goto toolong;
			out[o++] = *p;
			continue;
		}
		switch (p[1]) {
		case 's':
			v = key;
			vlen = strlen(key);
			break;
		case 'u':
			v = key;
			vlen = llen;
			break;
		case 'd':
			v = at + 1;
			vlen = strlen(at + 1);
			break;
		case '%':
			if (o + 1 >= outlen)
				goto toolong;
			out[o++] = '%';
			p++;
			continue;
		default: /* ldap_escape_check() refuses such templates */
			goto toolong;
		}
		p++;
		int n = ldap_escape_value(v, vlen, out + o, outlen - o);
		if (n < 0)
			goto toolong;
		o += (size_t)n;
	}
	out[o] = '\0';
	return LDAP_ESCAPE_OK;
toolong:
	out[0] = '\0';
	return LDAP_ESCAPE_TOOLONG;
}

const char *
ldap_escape_check(const char *tmpl)
{
	size_t len = strlen(tmpl);
	int depth = 0, uses = 0;
	if (len < 3 || tmpl[0] != '(' || tmpl[len - 1] != ')')
		return "must be a filter in parentheses, like (mail=%s)";
	for (size_t i = 0; i < len; i++) {
		char c = tmpl[i];
		if (c == '%') {
			char n = tmpl[i + 1];
			if (n == 's' || n == 'u' || n == 'd')
				uses++;
			else if (n != '%')
				return "only %s (address), %u (local part), %d (domain) and %% may follow %";
			i++;
			continue;
		}
		if ((unsigned char)c < 0x20 || c == 0x7f)
			return "contains a control character";
		if (c == '(') {
			depth++;
		} else if (c == ')') {
			if (--depth < 0)
				return "has unbalanced parentheses";
			if (depth == 0 && i != len - 1)
				return "has text outside the outer parentheses";
		}
	}
	if (depth != 0)
		return "has unbalanced parentheses";
	if (uses == 0)
		return "uses none of %s, %u, %d: it would match the same entries for every address";
	return NULL;
}

bool
ldap_escape_uses_local(const char *tmpl)
{
	for (const char *p = tmpl; *p; p++) {
		if (*p != '%')
			continue;
		if (p[1] == 'u')
			return true;
		if (p[1] != '\0')
			p++;
	}
	return false;
}
