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
 */
#ifndef MX_IDNA_H
#define MX_IDNA_H

#include <stdbool.h>
#include <stddef.h>

/* name (NUL-terminated) into out (cap bytes; may be name itself).
 * Returns false, out untouched, when name is ASCII already, libidn2
 * refuses it, or its A-label is empty or longer than out holds. */
bool mx_idna_alabel(const char *name, char *out, size_t cap);

#endif
