/* SPDX-License-Identifier: MIT */
#include "idna.h"

#include <idn2.h>
#include <string.h>

#include "str.h"

bool
mx_idna_alabel(const char *name, char *out, size_t cap)
{
	if (mx_str_ascii(name))
		return false;
	char *a = NULL;
	bool ok = idn2_to_ascii_8z(name, &a, IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT) == IDN2_OK && a != NULL &&
	          a[0] != '\0' && strlen(a) < cap;
	if (ok)
		memcpy(out, a, strlen(a) + 1);
	idn2_free(a);
	return ok;
}
