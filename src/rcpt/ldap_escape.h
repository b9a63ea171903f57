/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	ldap_escape - RFC 4515 filter values and query templates
 * DESCRIPTION
 *	A recipient address is client input: in a filter it must stay a
 *	value and never become filter syntax.  Every byte that could change
 *	the filter ('*', '(', ')', '\\', NUL) is written as \XX, and so is
 *	every byte that is not printable ASCII (always allowed by RFC 4515,
 *	so even invalid UTF-8 cannot make the filter malformed).
 *	Templates: %s is the whole address, %u its local part, %d its domain,
 *	%% a percent sign.  A key "@domain" (the catch-all probe) has an empty
 *	local part: a template that uses %u is not sent for it (Postfix's
 *	rule), since "(uid=)" would be an error or match nothing useful.
 *	Pure functions: no I/O, no allocation.
 */
#ifndef MX_LDAP_ESCAPE_H
#define MX_LDAP_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

/* Escapes in[0..inlen) into out (NUL-terminated). Returns the length
 * written, or -1 when it does not fit in outlen (out is then ""). */
int ldap_escape_value(const char *in, size_t inlen, char *out, size_t outlen);

enum ldap_escape_rc {
	LDAP_ESCAPE_OK = 0,
	LDAP_ESCAPE_SUPPRESS = 1, /* the template needs a local part and key has none */
	LDAP_ESCAPE_TOOLONG = -1,
	LDAP_ESCAPE_BADKEY = -2,  /* no '@' in key */
};

/* Expands tmpl for key ("user@domain" or "@domain") into out. */
enum ldap_escape_rc ldap_escape_expand(const char *tmpl, const char *key, char *out, size_t outlen);

/* Checks a filter template: NULL when fine, else what is wrong (static
 * text).  It must be a parenthesised filter with balanced parentheses,
 * use only %s %u %d %%, and use at least one of %s %u %d. */
const char *ldap_escape_check(const char *tmpl);

/* True when tmpl uses %u. */
bool ldap_escape_uses_local(const char *tmpl);

#endif
