/* SPDX-License-Identifier: MIT */
/* Unit tests: ldap_escape - RFC 4515 values, query templates, template checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ldap_escape.h"

/* ---- values ----------------------------------------------------------------- */

static const struct {
	const char *in;
	size_t len; /* 0: strlen */
	const char *out;
} value_cases[] = {
	{"alice@example.test", 0, "alice@example.test"},
	{"", 0, ""},
	{"*", 0, "\\2a"},
	{"(", 0, "\\28"},
	{")", 0, "\\29"},
	{"\\", 0, "\\5c"},
	{"a\0b", 3, "a\\00b"},
	{"*)(uid=*))(|(uid=*", 0, "\\2a\\29\\28uid=\\2a\\29\\29\\28|\\28uid=\\2a"},
	{"admin)(|(objectClass=*", 0, "admin\\29\\28|\\28objectClass=\\2a"},
	{"\\2a", 0, "\\5c2a"}, /* an escape in the input is data, not an escape */
	{"tab\there", 0, "tab\\09here"},
	{"cr\r\nlf", 0, "cr\\0d\\0alf"},
	{"del\x7f", 0, "del\\7f"},
	{"j\xc3\xb6rg", 0, "j\\c3\\b6rg"},      /* UTF-8: octet escapes are always valid */
	{"bad\xff\xfe", 0, "bad\\ff\\fe"},      /* invalid UTF-8 cannot break the filter */
	{"a b=c~d&e|f!g<h>i:j", 0, "a b=c~d&e|f!g<h>i:j"}, /* filter operators inside a value are inert */
	{"\"quoted local\"@example.test", 0, "\"quoted local\"@example.test"},
	{"%s%u%d", 0, "%s%u%d"}, /* a template marker in a value is data */
};

static void
test_value_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(value_cases) / sizeof(value_cases[0]); i++) {
		char out[256];
		size_t len = value_cases[i].len ? value_cases[i].len : strlen(value_cases[i].in);
		int n = ldap_escape_value(value_cases[i].in, len, out, sizeof(out));
		if (n < 0 || strcmp(out, value_cases[i].out) != 0)
			fail_msg("case %zu: got \"%s\" (%d), want \"%s\"", i, out, n, value_cases[i].out);
		assert_int_equal(n, (int)strlen(value_cases[i].out));
	}
}

static void
test_value_bounds(void **state)
{
	(void)state;
	char out[8];
	/* "abcdefg" needs 8 bytes with the NUL: fits exactly */
	assert_int_equal(ldap_escape_value("abcdefg", 7, out, sizeof(out)), 7);
	assert_string_equal(out, "abcdefg");
	assert_int_equal(ldap_escape_value("abcdefgh", 8, out, sizeof(out)), -1);
	assert_string_equal(out, "");
	/* an escape is never cut in half */
	assert_int_equal(ldap_escape_value("abcde*", 6, out, sizeof(out)), -1);
	assert_string_equal(out, "");
	assert_int_equal(ldap_escape_value("abcd*", 5, out, sizeof(out)), 7);
	assert_string_equal(out, "abcd\\2a");
	assert_int_equal(ldap_escape_value("x", 1, out, 0), -1);
	assert_int_equal(ldap_escape_value("x", 1, out, 1), -1);
	assert_int_equal(ldap_escape_value("", 0, out, 1), 0);
}

/* Reverses RFC 4515 escaping; -1 on a malformed escape. */
static int
unescape(const char *in, char *out, size_t *outlen)
{
	size_t o = 0;
	for (const char *p = in; *p; p++) {
		if (*p != '\\') {
			out[o++] = *p;
			continue;
		}
		unsigned v;
		if (sscanf(p + 1, "%2x", &v) != 1 || p[1] == '\0' || p[2] == '\0')
			return -1;
		out[o++] = (char)v;
		p += 2;
	}
	*outlen = o;
	return 0;
}

/* Every byte string: the escaped form holds no filter syntax and
 * unescapes to the input. */
static void
test_value_roundtrip(void **state)
{
	(void)state;
	uint32_t seed = 12345;
	for (int round = 0; round < 20000; round++) {
		char in[40], out[200], back[64];
		size_t len = (size_t)(round % 40);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = (char)(seed >> 16);
		}
		int n = ldap_escape_value(in, len, out, sizeof(out));
		assert_true(n >= 0);
		for (int i = 0; i < n; i++) {
			unsigned char c = (unsigned char)out[i];
			assert_true(c != '*' && c != '(' && c != ')' && c != '\0' && c >= 0x20 && c < 0x7f);
			/* every backslash starts an escape of two hex digits, inside
			 * the output (strchr() would also find the terminating NUL) */
			if (c == '\\')
				assert_true(i + 2 < n && strchr("0123456789abcdef", out[i + 1]) &&
				            strchr("0123456789abcdef", out[i + 2]));
		}
		size_t bl = 0;
		assert_int_equal(unescape(out, back, &bl), 0);
		assert_int_equal(bl, len);
		assert_memory_equal(back, in, len);
	}
}

/* ---- templates ----------------------------------------------------------------- */

static const struct {
	const char *tmpl, *key, *out;
	enum ldap_escape_rc rc;
} expand_cases[] = {
	{"(mail=%s)", "alice@example.test", "(mail=alice@example.test)", LDAP_ESCAPE_OK},
	{"(|(mail=%s)(proxyAddresses=smtp:%s))", "bob@example.test",
	 "(|(mail=bob@example.test)(proxyAddresses=smtp:bob@example.test))", LDAP_ESCAPE_OK},
	{"(&(uid=%u)(dc=%d))", "carol@example.test", "(&(uid=carol)(dc=example.test))", LDAP_ESCAPE_OK},
	{"(mail=%s)", "*@example.test", "(mail=\\2a@example.test)", LDAP_ESCAPE_OK},
	{"(mail=%s)", "*)(mail=*@example.test", "(mail=\\2a\\29\\28mail=\\2a@example.test)",
	 LDAP_ESCAPE_OK},
	{"(uid=%u)", "a*b)(x@example.test", "(uid=a\\2ab\\29\\28x)", LDAP_ESCAPE_OK},
	/* the local part ends at the last '@' (a quoted local part may hold one) */
	{"(uid=%u)", "\"a@b\"@example.test", "(uid=\"a@b\")", LDAP_ESCAPE_OK},
	{"(dc=%d)", "\"a@b\"@example.test", "(dc=example.test)", LDAP_ESCAPE_OK},
	{"(mail=%s)", "@example.test", "(mail=@example.test)", LDAP_ESCAPE_OK},
	{"(uid=%u)", "@example.test", "", LDAP_ESCAPE_SUPPRESS},
	{"(|(mail=%s)(uid=%u))", "@example.test", "", LDAP_ESCAPE_SUPPRESS},
	{"(mail=%s)", "no-at-sign", "", LDAP_ESCAPE_BADKEY},
	{"(note=100%%)(mail=%s)", "a@b.test", "(note=100%)(mail=a@b.test)", LDAP_ESCAPE_OK},
	{"(mail=%s)", "\\5c@example.test", "(mail=\\5c5c@example.test)", LDAP_ESCAPE_OK},
};

static void
test_expand_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(expand_cases) / sizeof(expand_cases[0]); i++) {
		char out[512];
		enum ldap_escape_rc rc =
		    ldap_escape_expand(expand_cases[i].tmpl, expand_cases[i].key, out, sizeof(out));
		if (rc != expand_cases[i].rc || strcmp(out, expand_cases[i].out) != 0)
			fail_msg("case %zu: got %d \"%s\", want %d \"%s\"", i, rc, out, expand_cases[i].rc,
			         expand_cases[i].out);
	}
}

static void
test_expand_bounds(void **state)
{
	(void)state;
	char out[20];
	/* "(mail=a@b.test)" is 15 bytes */
	assert_int_equal(ldap_escape_expand("(mail=%s)", "a@b.test", out, 16), LDAP_ESCAPE_OK);
	assert_string_equal(out, "(mail=a@b.test)");
	assert_int_equal(ldap_escape_expand("(mail=%s)", "a@b.test", out, 15), LDAP_ESCAPE_TOOLONG);
	assert_string_equal(out, "");
	assert_int_equal(ldap_escape_expand("(mail=%s)", "**@b.test", out, sizeof(out)),
	                 LDAP_ESCAPE_TOOLONG);
	assert_string_equal(out, "");
	assert_int_equal(ldap_escape_expand("(mail=%s)", "a@b", out, 0), LDAP_ESCAPE_TOOLONG);
	/* a longest address (local 64, domain 255) with every byte escaped fits
	 * the backend's 2048-byte buffer in a two-use template */
	char key[330], big[2048];
	memset(key, '*', 64);
	key[64] = '@';
	memset(key + 65, 'd', 255);
	key[320] = '\0';
	assert_int_equal(ldap_escape_expand("(|(mail=%s)(proxyAddresses=smtp:%s))", key, big,
	                                    sizeof(big)), LDAP_ESCAPE_OK);
}

static const struct {
	const char *tmpl;
	const char *why; /* NULL: valid; else a substring of the message */
} check_cases[] = {
	{"(mail=%s)", NULL},
	{"(|(mail=%s)(proxyAddresses=smtp:%s))", NULL},
	{"(&(objectClass=user)(|(uid=%u)(mail=%s)))", NULL},
	{"(&(uid=%u)(dc=%d))", NULL},
	{"(&(note=50%%)(mail=%s))", NULL},
	{"mail=%s", "parentheses"},
	{"(mail=%s", "parentheses"},
	{"(mail=%s))", "parentheses"},
	{"((mail=%s)", "unbalanced"},
	{"(mail=%s)(uid=%u)", "outside"},
	{"(mail=%x)", "only %s"},
	{"(mail=%)", "only %s"},
	{"(objectClass=*)", "none of"},
	{"(mail=%%s)", "none of"},
	{"(mail=\x01%s)", "control"},
	{"()", "parentheses"},
};

static void
test_check_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]); i++) {
		const char *why = ldap_escape_check(check_cases[i].tmpl);
		if (check_cases[i].why == NULL) {
			if (why != NULL)
				fail_msg("case %zu \"%s\": unexpected error: %s", i, check_cases[i].tmpl, why);
		} else if (why == NULL || strstr(why, check_cases[i].why) == NULL) {
			fail_msg("case %zu \"%s\": got %s, want an error with \"%s\"", i,
			         check_cases[i].tmpl, why ? why : "(valid)", check_cases[i].why);
		}
	}
	assert_true(ldap_escape_uses_local("(uid=%u)"));
	assert_false(ldap_escape_uses_local("(mail=%s)"));
	assert_false(ldap_escape_uses_local("(note=%%u)(mail=%s)"));
}

/* Whatever the address, an expanded valid template is a valid filter with
 * the template's structure: the parenthesis depth profile is unchanged. */
static void
test_injection_structure(void **state)
{
	(void)state;
	static const char *const keys[] = {
	    "*@example.test", "*)(objectClass=*@example.test", "a)(|(a=*@example.test",
	    "\\29@example.test", "x\\@example.test", "(((((@example.test", ")))))@example.test",
	    "\"*)(x\"@example.test",
	};
	const char *tmpl = "(|(mail=%s)(proxyAddresses=smtp:%s)(uid=%u))";
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char out[1024];
		assert_int_equal(ldap_escape_expand(tmpl, keys[i], out, sizeof(out)), LDAP_ESCAPE_OK);
		int depth = 0, groups = 0;
		for (const char *p = out; *p; p++) {
			assert_true(*p != '*');
			if (*p == '(') {
				depth++;
				groups++;
			} else if (*p == ')') {
				depth--;
			}
			assert_true(depth >= 0);
		}
		assert_int_equal(depth, 0);
		assert_int_equal(groups, 4);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_value_table),       cmocka_unit_test(test_value_bounds),
		cmocka_unit_test(test_value_roundtrip),   cmocka_unit_test(test_expand_table),
		cmocka_unit_test(test_expand_bounds),     cmocka_unit_test(test_check_table),
		cmocka_unit_test(test_injection_structure),
	};
	return cmocka_run_group_tests_name("ldap_escape", tests, NULL, NULL);
}
