/* SPDX-License-Identifier: MIT */
/* Unit tests: smtp_parse - commands, paths (relay tricks), parameters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_parse.h"

struct path_case {
	const char *in;
	unsigned flags;
	enum smtp_addr_err err;
	const char *addr;   /* canonical address when OK */
	const char *domain; /* when OK */
	const char *rest;   /* parameters left over when OK */
};

#define RCPT (SMTP_PATH_ROUTING | SMTP_PATH_POSTMASTER)
#define MAIL (SMTP_PATH_NULL_OK | SMTP_PATH_UTF8_OK)

/* clang-format off */
static const struct path_case path_cases[] = {
	/* ordinary */
	{"<user@example.test>", RCPT, SMTP_ADDR_OK, "user@example.test", "example.test", ""},
	{"<User@EXAMPLE.Test>", RCPT, SMTP_ADDR_OK, "User@example.test", "example.test", ""},
	{" <user@example.test>", RCPT, SMTP_ADDR_OK, "user@example.test", "example.test", ""},
	{"user@example.test", RCPT, SMTP_ADDR_OK, "user@example.test", "example.test", ""},
	{"<first.last+tag@sub.example.test>", RCPT, SMTP_ADDR_OK, "first.last+tag@sub.example.test", "sub.example.test", ""},
	{"<a@example.test> SIZE=100", MAIL, SMTP_ADDR_OK, "a@example.test", "example.test", "SIZE=100"},
	{"<a@[192.0.2.1]>", RCPT, SMTP_ADDR_OK, "a@[192.0.2.1]", "[192.0.2.1]", ""},
	{"<a@[IPv6:2001:db8::1]>", RCPT, SMTP_ADDR_OK, "a@[ipv6:2001:db8::1]", "[ipv6:2001:db8::1]", ""},
	{"<\"john\"@example.test>", RCPT, SMTP_ADDR_OK, "john@example.test", "example.test", ""},
	{"<\"john doe\"@example.test>", RCPT, SMTP_ADDR_OK, "\"john doe\"@example.test", "example.test", ""},
	{"<postmaster>", RCPT, SMTP_ADDR_OK, "postmaster", "", ""},
	{"<Postmaster>", RCPT, SMTP_ADDR_OK, "postmaster", "", ""},
	/* null path */
	{"<>", MAIL, SMTP_ADDR_OK, "", "", ""},
	{"<> BODY=8BITMIME", MAIL, SMTP_ADDR_OK, "", "", "BODY=8BITMIME"},
	{"<>", RCPT, SMTP_ADDR_EMPTY, NULL, NULL, NULL},
	{"", RCPT, SMTP_ADDR_EMPTY, NULL, NULL, NULL},
	/* relay tricks */
	{"<user%other.test@example.test>", RCPT, SMTP_ADDR_PERCENT, NULL, NULL, NULL},
	{"<other.test!user@example.test>", RCPT, SMTP_ADDR_BANG, NULL, NULL, NULL},
	{"<@a.test:user@b.test>", RCPT, SMTP_ADDR_ROUTE, NULL, NULL, NULL},
	{"<@a.test,@b.test:user@c.test>", RCPT, SMTP_ADDR_ROUTE, NULL, NULL, NULL},
	{"@a.test:user@b.test", RCPT, SMTP_ADDR_ROUTE, NULL, NULL, NULL},
	{"<a@b.test:user@c.test>", RCPT, SMTP_ADDR_ROUTE, NULL, NULL, NULL},
	{"<\"user@other.test\"@example.test>", RCPT, SMTP_ADDR_HIDDEN_AT, NULL, NULL, NULL},
	{"<\"user%other.test\"@example.test>", RCPT, SMTP_ADDR_HIDDEN_AT, NULL, NULL, NULL},
	{"<\"other!user\"@example.test>", RCPT, SMTP_ADDR_HIDDEN_AT, NULL, NULL, NULL},
	{"<\"user\\@other\"@example.test>", RCPT, SMTP_ADDR_HIDDEN_AT, NULL, NULL, NULL},
	{"<user@other.test@example.test>", RCPT, SMTP_ADDR_SYNTAX, NULL, NULL, NULL},
	{"<user@example.test%other.test>", RCPT, SMTP_ADDR_SYNTAX, NULL, NULL, NULL},
	/* the same characters are harmless in a sender */
	{"<user%x@example.test>", MAIL, SMTP_ADDR_OK, "user%x@example.test", "example.test", ""},
	/* malformed */
	{"<user@>", RCPT, SMTP_ADDR_SYNTAX, NULL, NULL, NULL},
	{"<@>", RCPT, SMTP_ADDR_ROUTE, NULL, NULL, NULL},
	{"<user>", RCPT, SMTP_ADDR_SYNTAX, NULL, NULL, NULL},
	{"<user@example.test", RCPT, SMTP_ADDR_SYNTAX, NULL, NULL, NULL},
	{"<user@example..test>", RCPT, SMTP_ADDR_SYNTAX, NULL, NULL, NULL},
	{"<user@.example.test>", RCPT, SMTP_ADDR_SYNTAX, NULL, NULL, NULL},
	{"<user@example.test.>", RCPT, SMTP_ADDR_SYNTAX, NULL, NULL, NULL},
	{"<us er@example.test>", RCPT, SMTP_ADDR_SYNTAX, NULL, NULL, NULL},
	{"<user@exa mple.test>", RCPT, SMTP_ADDR_SYNTAX, NULL, NULL, NULL},
	{"<user@example.test>x", RCPT, SMTP_ADDR_SYNTAX, NULL, NULL, NULL},
	{"<user(comment)@example.test>", RCPT, SMTP_ADDR_SYNTAX, NULL, NULL, NULL},
	{"<\"unterminated@example.test>", MAIL, SMTP_ADDR_SYNTAX, NULL, NULL, NULL},
	{"<a@[999.1.1.1]>", RCPT, SMTP_ADDR_SYNTAX, NULL, NULL, NULL},
	{"<a@[1.2.3.4>", RCPT, SMTP_ADDR_SYNTAX, NULL, NULL, NULL},
	{"<<a@example.test>>", RCPT, SMTP_ADDR_SYNTAX, NULL, NULL, NULL},
	/* control characters */
	{"<us\ter@example.test>", RCPT, SMTP_ADDR_CONTROL, NULL, NULL, NULL},
	{"<user@exam\x01ple.test>", RCPT, SMTP_ADDR_CONTROL, NULL, NULL, NULL},
	{"<\"us\x7f\"@example.test>", RCPT, SMTP_ADDR_CONTROL, NULL, NULL, NULL},
	{"<user\r@example.test>", RCPT, SMTP_ADDR_CONTROL, NULL, NULL, NULL},
	/* UTF-8 only with SMTPUTF8 */
	{"<j\xc3\xb6rg@example.test>", RCPT, SMTP_ADDR_UTF8, NULL, NULL, NULL},
	{"<j\xc3\xb6rg@example.test>", RCPT | SMTP_PATH_UTF8_OK, SMTP_ADDR_OK, "j\xc3\xb6rg@example.test", "example.test", ""},
	{"<j\xc3rg@example.test>", RCPT | SMTP_PATH_UTF8_OK, SMTP_ADDR_UTF8, NULL, NULL, NULL},
	{"<a@\xc3\xa9xample.test>", RCPT, SMTP_ADDR_UTF8, NULL, NULL, NULL},
	/* a U-label domain is its A-label (RFC 6531; UTS #46 maps capitals
	 * and fullwidth letters too); the local part stays as written */
	{"<j\xc3\xb6rg@\xc3\xa9xample.test>", RCPT | SMTP_PATH_UTF8_OK, SMTP_ADDR_OK, "j\xc3\xb6rg@xn--xample-9ua.test", "xn--xample-9ua.test", ""},
	{"<a@\xc3\x89XAMPLE.test>", RCPT | SMTP_PATH_UTF8_OK, SMTP_ADDR_OK, "a@xn--xample-9ua.test", "xn--xample-9ua.test", ""},
	{"<a@\xef\xbd\x85xample.test>", RCPT | SMTP_PATH_UTF8_OK, SMTP_ADDR_OK, "a@example.test", "example.test", ""},
	{"<a@\xe2\x98\x83.test>", RCPT | SMTP_PATH_UTF8_OK, SMTP_ADDR_OK, "a@\xe2\x98\x83.test", "\xe2\x98\x83.test", ""},
	/* a domain whose mapping gives ASCII the parser refuses: fullwidth
	 * '>', '=', '@', '/' and U+3000 would become "x> ret=hdrs envid=x",
	 * ESMTP parameters in the downstream's MAIL FROM, or a hidden '@' */
	{"<a@\xef\xbd\x98\xef\xbc\x9e\xe3\x80\x80\xef\xbc\xb2\xef\xbc\xa5\xef\xbc\xb4\xef\xbc\x9d\xef\xbc\xa8\xef\xbc\xa4\xef\xbc\xb2\xef\xbc\xb3>",
	 MAIL | SMTP_PATH_UTF8_OK, SMTP_ADDR_SYNTAX, NULL, NULL, NULL},
	{"<a@evil.test\xef\xbc\xa0x.example.test>", RCPT | SMTP_PATH_UTF8_OK, SMTP_ADDR_SYNTAX, NULL, NULL, NULL},
	{"<a@\xef\xbc\x8e\xef\xbc\x8e\xef\xbc\x8f\xef\xbc\x8e\xef\xbc\x8e\xef\xbc\x8f" "etc>", RCPT | SMTP_PATH_UTF8_OK, SMTP_ADDR_SYNTAX, NULL, NULL, NULL},
	{"<a@x\xe3\x80\x80y.test>", RCPT | SMTP_PATH_UTF8_OK, SMTP_ADDR_SYNTAX, NULL, NULL, NULL},
	/* lengths: local part 64, domain labels 63 */
	{"<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.test>", RCPT, SMTP_ADDR_OK,
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.test", "example.test", ""},
	{"<aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.test>", RCPT, SMTP_ADDR_TOO_LONG, NULL, NULL, NULL},
	{"<a@aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test>", RCPT, SMTP_ADDR_TOO_LONG, NULL, NULL, NULL},
};
/* clang-format on */

static void
test_paths(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
		const struct path_case *c = &path_cases[i];
		struct smtp_addr a;
		const char *rest = NULL;
		size_t rl = 0;
		enum smtp_addr_err e = smtp_parse_path(c->in, strlen(c->in), c->flags, &a, &rest, &rl);
		if (e != c->err)
			fail_msg("case %zu \"%s\": got %s, want %s", i, c->in, smtp_addr_err_str(e),
			         smtp_addr_err_str(c->err));
		if (e != SMTP_ADDR_OK)
			continue;
		if (strcmp(a.addr, c->addr) != 0)
			fail_msg("case %zu \"%s\": addr \"%s\", want \"%s\"", i, c->in, a.addr, c->addr);
		if (strcmp(a.domain, c->domain) != 0)
			fail_msg("case %zu \"%s\": domain \"%s\", want \"%s\"", i, c->in, a.domain, c->domain);
		if (rl != strlen(c->rest) || memcmp(rest, c->rest, rl) != 0)
			fail_msg("case %zu \"%s\": rest \"%.*s\", want \"%s\"", i, c->in, (int)rl, rest, c->rest);
	}
}

static void
test_long_path(void **state)
{
	(void)state;
	/* a domain of 4 x 63-char labels: over the 255 limit */
	char in[400] = "<a@";
	for (int i = 0; i < 4; i++) {
		size_t l = strlen(in);
		memset(in + l, 'b', 63);
		in[l + 63] = '.';
		in[l + 64] = '\0';
	}
	strcat(in, "test>");
	struct smtp_addr a;
	const char *rest;
	size_t rl;
	assert_int_equal(smtp_parse_path(in, strlen(in), RCPT, &a, &rest, &rl), SMTP_ADDR_TOO_LONG);
}

static void
test_commands(void **state)
{
	(void)state;
	static const struct {
		const char *line;
		enum smtp_verb verb;
		const char *arg;
	} cases[] = {
		{"EHLO client.test", SMTP_VERB_EHLO, "client.test"},
		{"ehlo client.test  ", SMTP_VERB_EHLO, "client.test"},
		{"HELO x", SMTP_VERB_HELO, "x"},
		{"MAIL FROM:<a@b>", SMTP_VERB_MAIL, "FROM:<a@b>"},
		{"rcpt to:<a@b>", SMTP_VERB_RCPT, "to:<a@b>"},
		{"DATA", SMTP_VERB_DATA, ""},
		{"QUIT", SMTP_VERB_QUIT, ""},
		{"StartTLS", SMTP_VERB_STARTTLS, ""},
		{"DATAX", SMTP_VERB_UNKNOWN, ""},
		{"", SMTP_VERB_UNKNOWN, ""},
		{"GET / HTTP/1.0", SMTP_VERB_UNKNOWN, "/ HTTP/1.0"},
		{"BDAT 100 LAST", SMTP_VERB_BDAT, "100 LAST"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct smtp_cmd cmd;
		smtp_parse_command(cases[i].line, strlen(cases[i].line), &cmd);
		if (cmd.verb != cases[i].verb)
			fail_msg("\"%s\": verb %s", cases[i].line, smtp_verb_name(cmd.verb));
		if (cmd.verb != SMTP_VERB_UNKNOWN &&
		    (cmd.arg_len != strlen(cases[i].arg) || memcmp(cmd.arg, cases[i].arg, cmd.arg_len)))
			fail_msg("\"%s\": arg \"%.*s\"", cases[i].line, (int)cmd.arg_len, cmd.arg);
	}
}

static void
test_mail_params(void **state)
{
	(void)state;
	struct smtp_mail_params p;
	char bad[64];
	const char *s = "SIZE=12345 BODY=8BITMIME SMTPUTF8";
	assert_int_equal(smtp_parse_mail_params(s, strlen(s), &p, bad, sizeof(bad)), SMTP_PARAM_OK);
	assert_int_equal(p.size, 12345);
	assert_true(p.body_8bit);
	assert_true(p.smtputf8);
	s = "body=7bit size=1";
	assert_int_equal(smtp_parse_mail_params(s, strlen(s), &p, bad, sizeof(bad)), SMTP_PARAM_OK);
	assert_false(p.body_8bit);
	s = "SIZE=abc";
	assert_int_equal(smtp_parse_mail_params(s, strlen(s), &p, bad, sizeof(bad)), SMTP_PARAM_VALUE);
	assert_string_equal(bad, "SIZE=abc");
	s = "SIZE=99999999999999999999999";
	assert_int_equal(smtp_parse_mail_params(s, strlen(s), &p, bad, sizeof(bad)), SMTP_PARAM_VALUE);
	s = "BODY=BINARYMIME";
	assert_int_equal(smtp_parse_mail_params(s, strlen(s), &p, bad, sizeof(bad)), SMTP_PARAM_VALUE);
	s = "AUTH=<>";
	assert_int_equal(smtp_parse_mail_params(s, strlen(s), &p, bad, sizeof(bad)), SMTP_PARAM_UNKNOWN);
	assert_string_equal(bad, "AUTH=<>");
	s = "=x";
	assert_int_equal(smtp_parse_mail_params(s, strlen(s), &p, bad, sizeof(bad)), SMTP_PARAM_SYNTAX);
	s = "SMTPUTF8=yes";
	assert_int_equal(smtp_parse_mail_params(s, strlen(s), &p, bad, sizeof(bad)), SMTP_PARAM_VALUE);
	s = "";
	assert_int_equal(smtp_parse_rcpt_params(s, 0, bad, sizeof(bad)), SMTP_PARAM_OK);
	s = "NOTIFY=NEVER";
	assert_int_equal(smtp_parse_rcpt_params(s, strlen(s), bad, sizeof(bad)), SMTP_PARAM_UNKNOWN);
}

static void
test_helo(void **state)
{
	(void)state;
	assert_true(smtp_helo_valid("client.example.test", 19));
	assert_true(smtp_helo_valid("[192.0.2.1]", 11));
	assert_false(smtp_helo_valid("", 0));
	assert_false(smtp_helo_valid("bad\x01name", 8));
	char big[300];
	memset(big, 'a', sizeof(big));
	assert_false(smtp_helo_valid(big, sizeof(big)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths),    cmocka_unit_test(test_long_path),
		cmocka_unit_test(test_commands), cmocka_unit_test(test_mail_params),
		cmocka_unit_test(test_helo),
	};
	return cmocka_run_group_tests_name("smtp_parse", tests, NULL, NULL);
}
