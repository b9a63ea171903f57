/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	idna - internationalised domain names in their ASCII form
 * DESCRIPTION
 *	mx_idna_alabel() gives a name that has non-ASCII bytes its A-label
 *	(xn--) form, as browsers, MTAs and DNS take it: UTS #46 mapping
 *	(capitals, fullwidth letters, ignored characters such as the soft
 *	hyphen), non-transitional, NFC (libidn2).  The one place the project
 *	asks libidn2, so that RCPT TO domains, hosted domains, list entries
 *	and link hosts are all put in one form.
 *
 *	The mapping can turn a character into ASCII that no host name has:
 *	fullwidth '＞' into '>', U+3000 into a space, '＠' into '@'.  Such a
 *	name is MX_IDNA_FORBIDDEN, never converted: in an SMTP path its
 *	A-label would carry what the parser refuses ("a@ｘ＞　ＲＥＴ＝ＨＤＲＳ"
 *	would become "a@x> ret=hdrs", ESMTP parameters of the client's
 *	choosing on the way to the downstream).
 */
#ifndef MX_IDNA_H
#define MX_IDNA_H

#include <stddef.h>

enum mx_idna {
	MX_IDNA_ASCII,     /* ASCII already; out untouched */
	MX_IDNA_CONVERTED, /* out holds the A-label form */
	MX_IDNA_REFUSED,   /* IDNA2008 refuses it (a symbol such as ☃, a hyphen
	                    * rule), or its A-label does not fit; out untouched */
	MX_IDNA_FORBIDDEN, /* its mapping gives what no host name holds (any
	                    * ASCII but letters, digits, '-', '_' and '.', an
	                    * empty label); out untouched */
};

/* name (NUL-terminated) into out (cap bytes; may be name itself). */
enum mx_idna mx_idna_alabel(const char *name, char *out, size_t cap);

#endif
