/* SPDX-License-Identifier: MIT */
/* Unit tests: rules - regex kinds, metas, lists, scores, file errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "netaddr.h"
#include "rules.h"

static char path[64];

static struct rules *
load(const char *text, struct config_errors *errs)
{
	snprintf(path, sizeof(path), "/tmp/mx-test-rules-%d", (int)getpid());
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	memset(errs, 0, sizeof(*errs));
	struct rules *r = rules_load(path, errs);
	unlink(path);
	return r;
}

struct hits {
	char names[1024];
	double total;
};

static void
hit(const char *name, double score, void *arg)
{
	struct hits *h = arg;
	strcat(h->names, name);
	strcat(h->names, " ");
	h->total += score;
}

static struct hits
run(struct rules *r, const char *msg, const char *from, const char *client)
{
	struct mime_limits lim;
	mime_limits_default(&lim);
	struct mime_msg m;
	mime_analyse(msg, strlen(msg), &lim, &m);
	struct netaddr na;
	if (client)
		netaddr_parse(client, &na);
	struct rules_input in = {&m, from, client ? (struct sockaddr *)&na.ss : NULL};
	struct hits h = {"", 0};
	rules_run(r, &in, hit, &h);
	mime_msg_clear(&m);
	return h;
}

static void
test_rules_fire(void **state)
{
	(void)state;
	struct config_errors errs;
	struct rules *r = load("# comment\n"
	                       "header SUBJ_FREE Subject /\\bfree\\b/i 1.5 \"free in subject\"\n"
	                       "header FROM_BIZ From /@[a-z]+\\.biz>?$/ 1.0\n"
	                       "header ANY_HDR ALL /^X-Mailer: bulk/m 0.5\n"
	                       "body   BODY_PILLS /cheap\\s+pills/i 2\n"
	                       "uri    URI_IP /^https?:\\/\\/\\d+\\.\\d+\\.\\d+\\.\\d+/ 1.2\n"
	                       "raw    RAW_B64 /Content-Transfer-Encoding: base64/i 0.1\n"
	                       "meta   FREE_PILLS SUBJ_FREE && (BODY_PILLS || URI_IP) 3.0 combo\n"
	                       "meta   NOT_FREE !SUBJ_FREE -0.5\n"
	                       "score  BODY_PILLS 2.5\n"
	                       "allow_from boss@example.test @friends.test\n"
	                       "deny_network 192.0.2.0/24\n"
	                       "deny_urlhost evil.test\n",
	                       &errs);
	assert_non_null(r);
	assert_int_equal(rules_count(r), 8);
	struct hits h = run(r, "From: x@shop.biz\r\nSubject: FREE stuff\r\nX-Mailer: bulk 1.0\r\n\r\n"
	                       "Buy cheap   pills at http://192.0.2.9/x and http://www.evil.test/\r\n",
	                    "x@shop.biz", "192.0.2.7:1");
	assert_string_equal(h.names, "SUBJ_FREE FROM_BIZ ANY_HDR BODY_PILLS URI_IP FREE_PILLS "
	                             "DENY_NETWORK DENY_URLHOST ");
	assert_float_equal(h.total, 1.5 + 1.0 + 0.5 + 2.5 + 1.2 + 3.0 + 20 + 20, 1e-9);
	h = run(r, "From: boss@example.test\r\nSubject: hi\r\n\r\nnothing\r\n", "other@x.test", "10.0.0.1:1");
	assert_string_equal(h.names, "NOT_FREE ALLOW_FROM ");
	h = run(r, "From: Pal <pal@friends.test>\r\n\r\nx\r\n", NULL, NULL);
	assert_string_equal(h.names, "NOT_FREE ALLOW_FROM ");
	assert_float_equal(rules_symbol_score(r, "BODY_PILLS", 0), 2.5, 1e-9);
	assert_float_equal(rules_symbol_score(r, "NOPE", 7), 7, 1e-9);
	rules_free(r);
}

/* The From: addresses as a mail reader shows them: a comment, a quoted
 * local part, a group or a trailing dot does not hide a listed sender; a
 * From: with several addresses is allowed only when every one is; a
 * display name that looks like an address is no address. */
static void
test_rules_from_lists(void **state)
{
	(void)state;
	struct config_errors errs;
	struct rules *r = load("allow_from boss@example.test\n"
	                       "deny_from @evil.test bad@spam.test @.bulk.test @.\xc3\xbc" "bel.test\n",
	                       &errs);
	assert_non_null(r);
	static const struct {
		const char *from, *want;
	} cases[] = {
		{"x@evil.test", "DENY_FROM "},
		{"(comment) x@evil.test", "DENY_FROM "},
		{"x@evil.test (Bob)", "DENY_FROM "},
		{"\"bad\"@spam.test", "DENY_FROM "},
		{"Bad@Spam.Test.", "DENY_FROM "},
		{"friends: a@good.test, x@evil.test;", "DENY_FROM "},
		{"a@good.test, <x@evil.test>", "DENY_FROM "},
		{"\"Boss <boss@example.test>\" <x@evil.test>", "DENY_FROM "},
		{"x@sub.evil.test", ""}, /* @domain is that domain alone */
		{"x@bulk.test", "DENY_FROM "},     /* @.domain: the domain, */
		{"x@a.b.BULK.test", "DENY_FROM "}, /* and its subdomains, */
		{"x@notbulk.test", ""},            /* not names that end alike */
		{"x@bulk.test.example", ""},
		{"x@mail.xn--bel-goa.test", "DENY_FROM "}, /* @.übel.test */
		{"=?utf-8?b?eEBldmlsLnRlc3Q=?=", ""}, /* a name that reads x@evil.test */
		{"Boss <boss@example.test>", "ALLOW_FROM "},
		{"(the boss) \"boss\"@EXAMPLE.test", "ALLOW_FROM "},
		{"boss@example.test, x@other.test", ""}, /* not every one allowed */
		{"boss@example.test, x@evil.test", "DENY_FROM "},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char msg[512];
		snprintf(msg, sizeof(msg), "From: %s\r\nSubject: hi\r\n\r\nbody\r\n", cases[i].from);
		struct hits h = run(r, msg, NULL, NULL);
		if (strcmp(h.names, cases[i].want) != 0)
			fail_msg("From: %s: got \"%s\", want \"%s\"", cases[i].from, h.names, cases[i].want);
	}
	/* a denied address behind many others is found all the same (within
	 * the 8 KB a header value is read to) */
	char big[40000];
	size_t o = (size_t)snprintf(big, sizeof(big), "From: ");
	for (int i = 0; i < 300; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o, "(c) u%d@x%d.test, ", i, i);
	snprintf(big + o, sizeof(big) - o, "x@evil.test\r\nSubject: hi\r\n\r\nbody\r\n");
	struct hits h0 = run(r, big, NULL, NULL);
	assert_string_equal(h0.names, "DENY_FROM ");
	/* past 8 KB too: the From value is read whole (a long display name
	 * in front hid the denied address behind it) */
	o = (size_t)snprintf(big, sizeof(big), "From: \"");
	memset(big + o, 'A', 9000);
	o += 9000;
	snprintf(big + o, sizeof(big) - o, "\" <friend@elsewhere.test>, x@evil.test\r\nSubject: hi\r\n\r\nb\r\n");
	h0 = run(r, big, NULL, NULL);
	assert_string_equal(h0.names, "DENY_FROM ");
	/* every From: header counts: a second one neither escapes the deny
	 * list nor shares the first one's allow */
	h0 = run(r, "From: friend@elsewhere.test\r\nFrom: x@evil.test\r\n\r\nb\r\n", NULL, NULL);
	assert_string_equal(h0.names, "DENY_FROM ");
	h0 = run(r, "From: boss@example.test\r\nFrom: \"Your Bank\" <p@phish.test>\r\n\r\nb\r\n", NULL, NULL);
	assert_string_equal(h0.names, "");
	/* the envelope sender alone, with a trailing dot and quotes */
	struct hits h = run(r, "Subject: hi\r\n\r\nbody\r\n", "\"bad\"@spam.test.", NULL);
	assert_string_equal(h.names, "DENY_FROM ");
	rules_free(r);
}

/* Internationalised names are compared in their ASCII form, as DNS and
 * a browser know them: a list entry in either form catches a link or a
 * sender in the other, and fullwidth letters or capitals do not hide one.
 * Addresses likewise, in the one form a browser's reading gives. */
static void
test_rules_idn(void **state)
{
	(void)state;
	struct config_errors errs;
	struct rules *r = load("deny_urlhost b\xc3\xa4" "d.test xn--bse-sna.test\n"
	                       "deny_from @\xc3\xbc" "bel.test\n"
	                       "allow_from boss@xn--exmple-cua.test\n"
	                       "deny_urlhost 0x7f.1 [2001:DB8:0::5]\n",
	                       &errs);
	assert_non_null(r);
	static const struct {
		const char *msg, *want;
	} cases[] = {
		{"Subject: a\r\n\r\nhttp://xn--bd-via.test/\r\n", "DENY_URLHOST "},
		{"Subject: a\r\n\r\nhttp://www.B\xc3\x84" "D.test/\r\n", "DENY_URLHOST "}, /* capitals */
		{"Subject: a\r\n\r\nhttp://\xef\xbd\x82\xc3\xa4" "d.test/\r\n", "DENY_URLHOST "}, /* fullwidth b */
		{"Subject: a\r\n\r\nhttp://b\xc2\xad\xc3\xa4" "d.test/\r\n", "DENY_URLHOST "}, /* soft hyphen */
		{"Subject: a\r\n\r\nhttp://b%C3%A4" "d.test/\r\n", "DENY_URLHOST "},          /* escaped */
		{"Subject: a\r\n\r\nhttp://b\xc3\xb6se.test/\r\n", "DENY_URLHOST "},
		{"Subject: a\r\n\r\nhttp://bad.test/ http://bose.test/\r\n", ""},
		/* addresses in any spelling, the entries' and the links' */
		{"Subject: a\r\n\r\nhttp://127.0.0.1/x\r\n", "DENY_URLHOST "},
		{"Subject: a\r\n\r\nhttp://2130706433/x\r\n", "DENY_URLHOST "},
		{"Subject: a\r\n\r\nhttp://0177.0.0.1/x\r\n", "DENY_URLHOST "},
		{"Subject: a\r\n\r\nhttp://127.0.0.2/x\r\n", ""},
		{"Subject: a\r\n\r\nhttp://[2001:db8::5]/x\r\n", "DENY_URLHOST "},
		/* a label IDNA2008 refuses (☃) in front hides no listed domain */
		{"Subject: a\r\n\r\n<a href=\"http://\xe2\x98\x83.B\xc3\x84" "D.test/\">x</a>\r\n", "DENY_URLHOST "},
		{"From: x@xn--bel-goa.test\r\n\r\nx\r\n", "DENY_FROM "},
		{"From: x@\xc3\x9c" "BEL.test\r\n\r\nx\r\n", "DENY_FROM "},
		{"From: boss@ex\xc3\xa4mple.test\r\n\r\nx\r\n", "ALLOW_FROM "},
		{"From: boss@example.test\r\n\r\nx\r\n", ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hits h = run(r, cases[i].msg, NULL, NULL);
		if (strcmp(h.names, cases[i].want) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, h.names, cases[i].want);
	}
	/* and the envelope sender */
	struct hits h = run(r, "Subject: hi\r\n\r\nbody\r\n", "x@\xc3\xbc" "bel.test", NULL);
	assert_string_equal(h.names, "DENY_FROM ");
	rules_free(r);
}

static void
test_rules_errors(void **state)
{
	(void)state;
	static const struct {
		const char *text, *want;
	} cases[] = {
		{"body X /unclosed 1\n", ":1: regex not closed"},
		{"body X /a(/ 1\n", ":1: bad regex at offset"},
		{"body X /a/q 1\n", ":1: unknown regex flag 'q'"},
		{"body X /a/\n", ":1: rule X needs a numeric score"},
		{"bodx X /a/ 1\n", ":1: unknown rule type 'bodx'"},
		{"body 9X /a/ 1\n", ":1: rule name must be"},
		{"body X /a/ 1\nbody X /b/ 1\n", ":2: rule X already defined at line 1"},
		{"meta M A && B 1\n", ":1: meta M: unknown rule 'A'"},
		{"body A /a/ 1\nmeta M (A 1\n", ":2: meta M: missing )"},
		{"meta M1 M2 1\nmeta M2 M1 1\n", "is part of a cycle"},
		{"header H /a/ 1\n", ":1: expected /regex/ here"},
		{"deny_network nonsense\n", ":1: \"nonsense\" is not a network"},
		{"allow_from nobody\n", ":1: \"nobody\": expected user@domain"},
		{"score X many\n", ":1: expected: score NAME NUMBER"},
		/* names whose IDNA mapping holds what no host has (fullwidth '>'
		 * and U+3000, a fullwidth solidus): entries that could never
		 * match, said so at load */
		{"deny_from @x\xef\xbc\x9e\xe3\x80\x80y.test\n", ":1: \"@x\xef\xbc\x9e\xe3\x80\x80y.test\": its domain is no domain name"},
		{"deny_urlhost evil.test\xef\xbc\x8f\n", ":1: \"evil.test\xef\xbc\x8f\" is no host name a link can have"},
		/* a half-compiled meta was accepted and ran off its stack (found
		 * by tests/fuzz/fuzz_rules) */
		{"body A /a/ 1\nmeta M !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!A 1\n",
		 ":2: meta M: nested more than 50 deep"},
		{"body A /a/ 1\nmeta M ((((((((((((((((((((((((((((((((((((((((((((((((((((A 1\n",
		 ":2: meta M: nested more than 50 deep"},
		/* not UTF-8 in a pattern that is matched as UTF-8: an error, not
		 * a crash in pcre2_compile (found by tests/fuzz/fuzz_rules) */
		{"header S Subject /\\b(\xb8via)/i 1\n", ":1: bad regex at offset 3: UTF-8 error"},
		{"body B /caf\xc3/ 1\n", ":1: bad regex at offset 3: UTF-8 error"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config_errors errs;
		struct rules *r = load(cases[i].text, &errs);
		if (r != NULL)
			fail_msg("case %zu accepted", i);
		bool found = false;
		for (size_t k = 0; k < errs.n; k++)
			found = found || strstr(errs.msg[k], cases[i].want) != NULL;
		if (!found)
			fail_msg("case %zu: want \"%s\", got \"%s\"", i, cases[i].want, errs.n ? errs.msg[0] : "");
		config_errors_clear(&errs);
	}
}

/* Lines as bytes: a NUL byte, and a line too long. Before, a NUL hid its
 * line's length and the tail past the read buffer was read as a line of its
 * own: a rule there was loaded. */
static void
test_rules_nul_and_long_lines(void **state)
{
	(void)state;
	static char text[6000];
	size_t n = (size_t)snprintf(text, sizeof(text), "# a comment");
	text[n++] = '\0';
	memset(text + n, 'x', 4200);
	n += 4200;
	n += (size_t)snprintf(text + n, sizeof(text) - n, "body EVIL /a/ 9\nbody A /b/ 1\n");
	struct config_errors errs;
	snprintf(path, sizeof(path), "/tmp/mx-test-rules-%d", (int)getpid());
	for (int k = 0; k < 2; k++) {
		if (k == 1) /* no NUL: the line is too long */
			text[11] = ' ';
		FILE *f = fopen(path, "w");
		assert_int_equal(fwrite(text, 1, n, f), n);
		fclose(f);
		memset(&errs, 0, sizeof(errs));
		assert_null(rules_load(path, &errs));
		assert_int_equal(errs.n, 1);
		assert_non_null(strstr(errs.msg[0], k == 0 ? ":1: NUL byte" : ":1: line too long"));
		config_errors_clear(&errs);
	}
	unlink(path);
}

static void
test_rules_backtracking_bounded(void **state)
{
	(void)state;
	struct config_errors errs;
	struct rules *r = load("body EVIL /(a+)+$/ 1\n", &errs);
	assert_non_null(r);
	char msg[40000];
	strcpy(msg, "Subject: x\r\n\r\n");
	size_t o = strlen(msg);
	memset(msg + o, 'a', 30000);
	strcpy(msg + o + 30000, "!\r\n");
	struct hits h = run(r, msg, NULL, NULL); /* returns: the match limit stops it */
	assert_string_equal(h.names, "");
	rules_free(r);
	/* a plain rule over many repeats of its group still matches: the
	 * JIT's stack was PCRE2's 32 KB, and 4,000 repeats made it fail */
	r = load("body PILLS /(?:cheap\\s)+pills/ 1\nbody PILLS2 /(cheap\\s)+pills/ 1\n", &errs);
	assert_non_null(r);
	static char big[80000];
	strcpy(big, "Subject: x\r\n\r\n");
	o = strlen(big);
	for (int i = 0; i < 10000; i++, o += 6)
		memcpy(big + o, "cheap ", 6);
	strcpy(big + o, "pills\r\n");
	h = run(r, big, NULL, NULL);
	assert_string_equal(h.names, "PILLS PILLS2 ");
	rules_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules_fire), cmocka_unit_test(test_rules_from_lists), cmocka_unit_test(test_rules_idn),
		cmocka_unit_test(test_rules_errors),
		cmocka_unit_test(test_rules_nul_and_long_lines),
		cmocka_unit_test(test_rules_backtracking_bounded),
	};
	return cmocka_run_group_tests_name("rules", tests, NULL, NULL);
}
