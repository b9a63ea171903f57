/* SPDX-License-Identifier: MIT */
#include "idna.h"

#include <idn2.h>
#include <stdbool.h>
#include <string.h>

#include "str.h"

/* Letters, digits, '-' and '_' in labels of 1 to 63, separated by dots. */
static bool
idna_ldh(const char *a)
{
	size_t label = 0;
	for (const char *p = a;; p++) {
		char c = *p;
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63)
				return false;
			if (c == '\0')
				return true;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		           c == '-' || c == '_') {
			label++;
		} else {
			return false;
		}
	}
}

enum mx_idna
mx_idna_alabel(const char *name, char *out, size_t cap)
{
	if (mx_str_ascii(name))
		return MX_IDNA_ASCII;
	char *a = NULL;
	enum mx_idna rc = MX_IDNA_REFUSED;
	if (idn2_to_ascii_8z(name, &a, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT) == IDN2_OK && a != NULL) {
		size_t len = strlen(a);
		if (!idna_ldh(a))
			rc = MX_IDNA_FORBIDDEN;
		else if (len < cap) {
			memcpy(out, a, len + 1);
			rc = MX_IDNA_CONVERTED;
		}
	}
	idn2_free(a);
	return rc;
}
