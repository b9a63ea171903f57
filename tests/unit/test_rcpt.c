/* SPDX-License-Identifier: MIT */
/* Unit tests: rcpt - the recipients file, matching rules, hosted domains. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "domains.h"
#include "rcpt.h"

static char conf_path[64], rcpt_path[64];

static struct mx_config *
make_config(const char *recipients, const char *extra, struct config_errors *errs)
{
	snprintf(conf_path, sizeof(conf_path), "/tmp/mx-test-rcpt-%d.conf", (int)getpid());
	snprintf(rcpt_path, sizeof(rcpt_path), "/tmp/mx-test-rcpt-%d.txt", (int)getpid());
	FILE *f = fopen(rcpt_path, "w");
	fputs(recipients, f);
	fclose(f);
	f = fopen(conf_path, "w");
	fprintf(f, "listen = [\"127.0.0.1:1\"]; domains = [\"example.test\", \"other.test\"];\n"
	           "recipients = { file = \"%s\"; %s };\ndownstream = \"smtp:127.0.0.1:2\";\n",
	        rcpt_path, extra ? extra : "");
	fclose(f);
	memset(errs, 0, sizeof(*errs));
	struct mx_config *c = config_load(conf_path, errs);
	unlink(conf_path);
	return c;
}

static enum mx_lookup
lookup(struct rcpt_map *m, const char *addr)
{
	struct smtp_addr a;
	const char *rest;
	size_t rl;
	char path[300];
	snprintf(path, sizeof(path), "<%s>", addr);
	assert_int_equal(smtp_parse_path(path, strlen(path), SMTP_PATH_ROUTING, &a, &rest, &rl),
	                 SMTP_ADDR_OK);
	return rcpt_lookup(m, NULL, &a, NULL, NULL);
}

static void
test_matching(void **state)
{
	(void)state;
	struct config_errors errs;
	struct mx_config *c = make_config("# users\n"
	                                  "alice@example.test\n"
	                                  "  Bob@Example.Test   # trailing comment\n"
	                                  "\n"
	                                  "@other.test\n"
	                                  "x+y@example.test\n",
	                                  NULL, &errs);
	assert_non_null(c);
	struct rcpt_map *m = rcpt_map_build(c, NULL, &errs);
	assert_non_null(m);
	assert_non_null(strstr(rcpt_map_describe(m), "(4 entries)"));
	assert_int_equal(lookup(m, "alice@example.test"), MX_FOUND);
	assert_int_equal(lookup(m, "ALICE@EXAMPLE.TEST"), MX_FOUND);
	assert_int_equal(lookup(m, "bob@example.test"), MX_FOUND);
	assert_int_equal(lookup(m, "alice+news@example.test"), MX_FOUND);
	assert_int_equal(lookup(m, "alice+@example.test"), MX_FOUND);
	assert_int_equal(lookup(m, "x+y@example.test"), MX_FOUND); /* verbatim first */
	assert_int_equal(lookup(m, "x+z@example.test"), MX_NOTFOUND);
	assert_int_equal(lookup(m, "carol@example.test"), MX_NOTFOUND);
	assert_int_equal(lookup(m, "+alice@example.test"), MX_NOTFOUND);
	assert_int_equal(lookup(m, "anyone@other.test"), MX_FOUND); /* catch-all */
	assert_int_equal(lookup(m, "alice@sub.example.test"), MX_NOTFOUND);
	rcpt_map_free(m);
	config_unref(c);
	unlink(rcpt_path);
}

/* An entry matches however the file quotes it: it is kept in the form
 * RCPT TO addresses are looked up by. */
static void
test_quoted(void **state)
{
	(void)state;
	struct config_errors errs;
	struct mx_config *c = make_config("\"John\"@example.test\n"
	                                  "\"a\\\"\\b\"@example.test\n"
	                                  "\"x\\.y\"@example.test\n"
	                                  "john@example.test\n",
	                                  NULL, &errs);
	assert_non_null(c);
	struct rcpt_map *m = rcpt_map_build(c, NULL, &errs);
	assert_non_null(m);
	assert_non_null(strstr(rcpt_map_describe(m), "(3 entries)")); /* "John" and john are one */
	assert_int_equal(lookup(m, "john@example.test"), MX_FOUND);
	assert_int_equal(lookup(m, "\"john\"@example.test"), MX_FOUND);
	assert_int_equal(lookup(m, "\"a\\\"b\"@example.test"), MX_FOUND); /* "a\"b" */
	assert_int_equal(lookup(m, "\"A\\\"B\"@Example.Test"), MX_FOUND);
	assert_int_equal(lookup(m, "x.y@example.test"), MX_FOUND);
	assert_int_equal(lookup(m, "ab@example.test"), MX_NOTFOUND);
	rcpt_map_free(m);
	config_unref(c);
	unlink(rcpt_path);
}

/* A U-label domain is its A-label, as RCPT TO gives it: in addresses and
 * in catch-alls; a U-label the parser refuses stays as written. */
static void
test_idn(void **state)
{
	(void)state;
	struct config_errors errs;
	struct mx_config *c = make_config("carol@Ex\xc3\xa4mple.test\n"
	                                  "@\xc3\xbc" "bel.test\n"
	                                  "@b\xc3\xa4" "d..test\n",
	                                  NULL, &errs);
	assert_non_null(c);
	struct rcpt_map *m = rcpt_map_build(c, NULL, &errs);
	assert_non_null(m);
	assert_non_null(strstr(rcpt_map_describe(m), "(3 entries)"));
	assert_int_equal(lookup(m, "carol@xn--exmple-cua.test"), MX_FOUND);
	assert_int_equal(lookup(m, "dave@xn--exmple-cua.test"), MX_NOTFOUND);
	assert_int_equal(lookup(m, "anyone@xn--bel-goa.test"), MX_FOUND);
	rcpt_map_free(m);
	config_unref(c);
	unlink(rcpt_path);
}

static void
test_delimiter(void **state)
{
	(void)state;
	struct config_errors errs;
	struct mx_config *c = make_config("alice@example.test\n", "delimiter = \"-\";", &errs);
	assert_non_null(c);
	struct rcpt_map *m = rcpt_map_build(c, NULL, &errs);
	assert_int_equal(lookup(m, "alice-list@example.test"), MX_FOUND);
	assert_int_equal(lookup(m, "alice+list@example.test"), MX_NOTFOUND);
	rcpt_map_free(m);
	config_unref(c);
	c = make_config("alice@example.test\n", "delimiter = \"\";", &errs);
	m = rcpt_map_build(c, NULL, &errs);
	assert_int_equal(lookup(m, "alice+list@example.test"), MX_NOTFOUND);
	rcpt_map_free(m);
	config_unref(c);
	unlink(rcpt_path);
}

static void
test_bad_file(void **state)
{
	(void)state;
	struct config_errors errs;
	struct mx_config *c = make_config("alice@example.test\nnot-an-address\nbad address@example.test\n"
	                                  "user@\n<x>@example.test\n",
	                                  NULL, &errs);
	assert_non_null(c);
	assert_null(rcpt_map_build(c, NULL, &errs));
	assert_int_equal(errs.n, 4);
	char want[128];
	snprintf(want, sizeof(want), "%s:2: \"not-an-address\": not an address (expected user@domain or @domain)", rcpt_path);
	assert_string_equal(errs.msg[0], want);
	assert_non_null(strstr(errs.msg[1], ":3: one address per line"));
	assert_non_null(strstr(errs.msg[2], ":4: \"user@\": no domain"));
	assert_non_null(strstr(errs.msg[3], ":5: \"<x>@example.test\": malformed address"));
	config_errors_clear(&errs);
	config_unref(c);
	unlink(rcpt_path);
	/* a missing file */
	c = make_config("", NULL, &errs);
	unlink(rcpt_path);
	assert_null(rcpt_map_build(c, NULL, &errs));
	assert_non_null(strstr(errs.msg[0], "cannot open"));
	config_errors_clear(&errs);
	config_unref(c);
}

/* Writes n bytes as the recipients file and expects it refused with one
 * error containing want. */
static void
expect_refused(struct mx_config *c, const char *data, size_t n, const char *want)
{
	FILE *f = fopen(rcpt_path, "w");
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
	struct config_errors errs = {0};
	assert_null(rcpt_map_build(c, NULL, &errs));
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.msg[0], want));
	config_errors_clear(&errs);
}

#define LIT(s) s, sizeof(s) - 1

/* The file as bytes: a NUL byte in a line, and lines too long. Before, a
 * NUL hid the length of its line from the check, and the tail of that line
 * past the read buffer was read as a line of its own: an address there was
 * accepted. */
static void
test_nul_and_long_lines(void **state)
{
	(void)state;
	struct config_errors errs;
	struct mx_config *c = make_config("", NULL, &errs);
	assert_non_null(c);
	expect_refused(c, LIT("alice@example.test\nbob@example.test\0junk\n"), ":2: NUL byte");
	expect_refused(c, LIT("alice@example.test\n\0\n"), ":2: NUL byte");
	expect_refused(c, LIT("alice@example.test\n\0"), ":2: NUL byte");
	char buf[4096];
	/* a NUL, padding past the line limit, then an address */
	size_t n = (size_t)snprintf(buf, sizeof(buf), "bob@example.test");
	buf[n++] = '\0';
	memset(buf + n, 'x', 1100);
	n += 1100;
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "evil@example.test\nalice@example.test\n");
	expect_refused(c, buf, n, ":1: NUL byte");
	/* a line too long, an address at its end: one error, for line 1 */
	memset(buf, 'x', 1030);
	n = 1030 + (size_t)snprintf(buf + 1030, sizeof(buf) - 1030, "evil@example.test\nalice@example.test\n");
	expect_refused(c, buf, n, ":1: line too long");
	config_unref(c);
	unlink(rcpt_path);
}

static void
test_domains(void **state)
{
	(void)state;
	struct config_errors errs;
	struct mx_config *c = make_config("", NULL, &errs);
	struct domain_set *d = domain_set_build(c);
	assert_true(domain_set_match(d, "example.test"));
	assert_false(domain_set_match(d, "sub.example.test"));
	assert_false(domain_set_match(d, "example.test.evil"));
	assert_false(domain_set_match(d, "xexample.test"));
	domain_set_free(d);
	config_unref(c);
	c = make_config("", "", &errs);
	c->subdomains = true;
	d = domain_set_build(c);
	assert_true(domain_set_match(d, "sub.example.test"));
	assert_true(domain_set_match(d, "a.b.other.test"));
	assert_false(domain_set_match(d, "xexample.test"));
	assert_false(domain_set_match(d, "test"));
	domain_set_free(d);
	config_unref(c);
	unlink(rcpt_path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matching), cmocka_unit_test(test_quoted), cmocka_unit_test(test_idn),
		cmocka_unit_test(test_delimiter),
		cmocka_unit_test(test_bad_file),
		cmocka_unit_test(test_nul_and_long_lines),
		cmocka_unit_test(test_domains),
	};
	return cmocka_run_group_tests_name("rcpt", tests, NULL, NULL);
}
