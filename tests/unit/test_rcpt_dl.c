/* SPDX-License-Identifier: MIT */
/*
 * Unit tests: loading a client library at run time (rcpt_dl.c) - found,
 * not installed, or without a function the backend needs; the error
 * names the library and the Debian package, and the first answer stays.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "rcpt_dl.h"

#define GOOD_SYMS(X) X(cos) X(sqrt)
RCPT_DL_DECLARE(GOOD_SYMS)

static void
test_loaded(void **state)
{
	(void)state;
	static const char *const sonames[] = {"libmx-not-there.so.7", "libm.so.6", NULL};
	struct rcpt_dl d = RCPT_DL_INIT("Maths", "libc6", sonames);
	const char *why = NULL;
	assert_int_equal(rcpt_dl_load(&d, &why), 0); /* the second name loads */
	assert_non_null(dl_cos);
	assert_true(dl_cos(0.0) == 1.0);
	assert_true(dl_sqrt(16.0) == 4.0);
	assert_int_equal(rcpt_dl_load(&d, &why), 0);
}

static void
test_not_installed(void **state)
{
	(void)state;
	static const char *const sonames[] = {"libmx-not-there.so.7", "libmx-nor-this.so", NULL};
	static const char *const names[] = {"f"};
	static void *f;
	static void *const ptrs[] = {&f};
	struct rcpt_dl d = {"LDAP", "libldap-2.5-0", sonames, names, ptrs, 1, 0, ""};
	const char *why = NULL;
	assert_int_equal(rcpt_dl_load(&d, &why), -1);
	assert_non_null(strstr(why, "LDAP support needs libmx-not-there.so.7 (Debian package libldap-2.5-0)"));
	assert_int_equal(rcpt_dl_load(&d, &why), -1); /* not tried again */
	assert_null(f);
}

static void
test_missing_function(void **state)
{
	(void)state;
	static const char *const sonames[] = {"libm.so.6", NULL};
	static const char *const names[] = {"cos", "mx_no_such_function"};
	static void *a, *b;
	static void *const ptrs[] = {&a, &b};
	struct rcpt_dl d = {"PostgreSQL", "libpq5", sonames, names, ptrs, 2, 0, ""};
	const char *why = NULL;
	assert_int_equal(rcpt_dl_load(&d, &why), -1);
	assert_non_null(strstr(why, "PostgreSQL support: the client library has no mx_no_such_function"));
	assert_int_equal(rcpt_dl_load(&d, &why), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loaded),
		cmocka_unit_test(test_not_installed),
		cmocka_unit_test(test_missing_function),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
