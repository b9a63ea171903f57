/* SPDX-License-Identifier: MIT */
/* Unit tests: config - defaults, units, bounds, unknown keys, file:line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static const char *const MINIMAL =
    "listen = [\"127.0.0.1:2525\"];\n"
    "domains = [\"Example.TEST\"];\n"
    "recipients = { file = \"r\"; };\n"
    "downstream = \"smtp:127.0.0.1:2626\";\n";

static char path[64];

static void
write_conf(const char *text)
{
	snprintf(path, sizeof(path), "/tmp/mx-test-config-%d.conf", (int)getpid());
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static struct mx_config *
load(const char *text, struct config_errors *errs)
{
	write_conf(text);
	memset(errs, 0, sizeof(*errs));
	struct mx_config *c = config_load(path, errs);
	unlink(path);
	return c;
}

/* The first error must contain want. */
static void
expect_error(const char *text, const char *want)
{
	struct config_errors errs;
	struct mx_config *c = load(text, &errs);
	if (c != NULL)
		fail_msg("accepted a config that should fail with \"%s\"", want);
	assert_true(errs.n > 0);
	bool found = false;
	for (size_t i = 0; i < errs.n; i++)
		if (strstr(errs.msg[i], want) != NULL)
			found = true;
	if (!found)
		fail_msg("want \"%s\", got \"%s\"", want, errs.msg[0]);
	config_errors_clear(&errs);
}

/* An internationalised domain is kept in its A-label form, the form
 * RCPT TO's domain is compared in. */
static void
test_idn_domain(void **state)
{
	(void)state;
	struct config_errors errs;
	struct mx_config *c = load("listen = [\"127.0.0.1:2525\"];\n"
	                           "domains = [\"Ex\xc3\xa4mple.test\", \"xn--bd-via.test\"];\n"
	                           "recipients = { file = \"r\"; }; downstream = \"smtp:127.0.0.1:1\";\n",
	                           &errs);
	assert_non_null(c);
	assert_string_equal(c->domains[0], "xn--exmple-cua.test");
	assert_string_equal(c->domains[1], "xn--bd-via.test");
	config_unref(c);
}

static void
test_defaults(void **state)
{
	(void)state;
	struct config_errors errs;
	struct mx_config *c = load(MINIMAL, &errs);
	assert_non_null(c);
	assert_int_equal(c->n_listen, 1);
	assert_string_equal(c->domains[0], "example.test"); /* lowercased */
	assert_int_equal(c->message_size, 25LL << 20);
	assert_int_equal(c->t_command, 300000);
	assert_int_equal(c->t_data, 180000);
	assert_int_equal(c->max_unknown_rcpt, 20);
	assert_string_equal(c->rcpt_delimiter, "+");
	assert_int_equal(c->n_down, 1);
	assert_string_equal(c->down[0].target, "smtp:127.0.0.1:2626");
	assert_false(c->soft_bounce);
	assert_non_null(c->hostname);
	config_unref(c);
}

static void
test_units(void **state)
{
	(void)state;
	long long v;
	assert_int_equal(config_parse_duration("30", &v), 0);
	assert_int_equal(v, 30000);
	assert_int_equal(config_parse_duration("500ms", &v), 0);
	assert_int_equal(v, 500);
	assert_int_equal(config_parse_duration("5m", &v), 0);
	assert_int_equal(v, 300000);
	assert_int_equal(config_parse_duration("2d", &v), 0);
	assert_int_equal(v, 172800000);
	assert_int_equal(config_parse_duration("5 minutes", &v), -1);
	assert_int_equal(config_parse_duration("-5s", &v), -1);
	assert_int_equal(config_parse_size("64k", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(config_parse_size("25M", &v), 0);
	assert_int_equal(v, 25LL << 20);
	assert_int_equal(config_parse_size("1G", &v), 0);
	assert_int_equal(config_parse_size("99999999999999999999G", &v), -1);

	char text[1024];
	snprintf(text, sizeof(text),
	         "%slimits = { message_size = \"10M\"; line_length = 5000; };\n"
	         "timeouts = { command = \"45s\"; data = 60; };\n",
	         MINIMAL);
	struct config_errors errs;
	struct mx_config *c = load(text, &errs);
	assert_non_null(c);
	assert_int_equal(c->message_size, 10LL << 20);
	assert_int_equal(c->line_length, 5000);
	assert_int_equal(c->t_command, 45000);
	assert_int_equal(c->t_data, 60000);
	config_unref(c);
}

static void
test_errors(void **state)
{
	(void)state;
	char text[1024];
	/* unknown key, with the line and a suggestion */
	snprintf(text, sizeof(text), "%s\nhostnme = \"x\";\n", MINIMAL);
	expect_error(text, ":6: unknown key 'hostnme' (did you mean 'hostname'?)");
	snprintf(text, sizeof(text), "%slimits = { mesage_size = 10; };\n", MINIMAL);
	expect_error(text, ":5: unknown key 'limits.mesage_size' (did you mean 'limits.message_size'?)");
	/* wrong types and ranges */
	snprintf(text, sizeof(text), "%slimits = { recipients = \"many\"; };\n", MINIMAL);
	expect_error(text, ":5: 'limits.recipients' must be an integer");
	snprintf(text, sizeof(text), "%slimits = { recipients = 0; };\n", MINIMAL);
	expect_error(text, ":5: 'limits.recipients' is 0; it must be between 1 and 100000");
	snprintf(text, sizeof(text), "%stimeouts = { command = \"soon\"; };\n", MINIMAL);
	expect_error(text, "'timeouts.command' is not a duration");
	snprintf(text, sizeof(text), "%slog_level = \"loud\";\n", MINIMAL);
	expect_error(text, "'log_level' is \"loud\"; allowed: debug|info|warn|err");
	snprintf(text, sizeof(text), "%slimits = 5;\n", MINIMAL);
	expect_error(text, "'limits' must be a group");
	snprintf(text, sizeof(text), "%ssubdomains = 1;\n", MINIMAL);
	expect_error(text, "'subdomains' must be true or false");
	/* addresses serve could not bind: refused by check-config too */
	snprintf(text, sizeof(text), "listen = [\"127.0.0.1\"]; domains = [\"example.test\"];\n"
	                             "recipients = { file = \"/dev/null\"; };\ndownstream = \"smtp:127.0.0.1:25\";\n");
	expect_error(text, ":1: 'listen' entry \"127.0.0.1\": expected IP:PORT");
	snprintf(text, sizeof(text), "%sadmin = { listen = \"localhost:9\"; };\n", MINIMAL);
	expect_error(text, ":5: 'admin.listen' \"localhost:9\": expected IP:PORT");
	/* a line break in text that goes out as it is (libconfig's \r\n) */
	snprintf(text, sizeof(text), "%sbanner = \"ok\\r\\n250 forged\";\n", MINIMAL);
	expect_error(text, ":5: 'banner' must not contain control characters");
	snprintf(text, sizeof(text), "%scontent = { subject_prefix = \"[S]\\r\\nBcc: x@y\"; };\n", MINIMAL);
	expect_error(text, "'content.subject_prefix' must not contain control characters");
	/* missing required keys */
	expect_error("listen = [\"127.0.0.1:25\"];\n", "required key 'domains' is missing");
	/* syntax error with its line */
	snprintf(text, sizeof(text), "%s\nhostname = mx.example.test;\n", MINIMAL);
	expect_error(text, ":6: syntax error");
	/* cross-key checks */
	expect_error("listen = [\"127.0.0.1:2525\"]; domains = [\"bad..domain\"];\n"
	             "recipients = { file = \"r\"; }; downstream = \"smtp:127.0.0.1:1\";\n",
	             "not a domain name");
	expect_error("listen = [\"127.0.0.1:2525\"]; domains = [\"\xe2\x98\x83.test\"];\n"
	             "recipients = { file = \"r\"; }; downstream = \"smtp:127.0.0.1:1\";\n",
	             "not a domain name"); /* a name IDNA2008 refuses */
	snprintf(text, sizeof(text), "%stls = { cert = \"c.pem\"; };\n", MINIMAL);
	expect_error(text, "'tls' needs both cert and key");
	expect_error("listen = [\"127.0.0.1:2525\"]; domains = [\"a.test\"];\n"
	             "recipients = { file = \"r\"; }; downstream = \"ftp:x\";\n",
	             "expected smtp:HOST:PORT");
	expect_error("listen = [\"127.0.0.1:2525\"]; domains = [\"a.test\"];\n"
	             "recipients = { }; downstream = \"smtp:127.0.0.1:1\";\n",
	             "'recipients' names no source");
	/* a missing file */
	struct config_errors errs = {0};
	assert_null(config_load("/nonexistent/mx.conf", &errs));
	assert_non_null(strstr(errs.msg[0], "cannot read file"));
	config_errors_clear(&errs);
}

static void
test_downstream_forms(void **state)
{
	(void)state;
	struct config_errors errs;
	struct mx_config *c = load("listen = [\"127.0.0.1:2525\"]; domains = [\"a.test\"];\n"
	                           "recipients = { file = \"r\"; };\n"
	                           "downstream = ( { target = \"smtp:127.0.0.1:1\"; priority = 10; },\n"
	                           "  { target = \"lmtp:/run/lmtp\"; priority = 20; },\n"
	                           "  \"smtp:127.0.0.1:2\" );\n",
	                           &errs);
	assert_non_null(c);
	assert_int_equal(c->n_down, 3);
	assert_int_equal(c->down[0].priority, 10);
	assert_string_equal(c->down[1].target, "lmtp:/run/lmtp");
	assert_int_equal(c->down[1].priority, 20);
	assert_int_equal(c->down[2].priority, 0);
	config_unref(c);
	expect_error("listen = [\"127.0.0.1:2525\"]; domains = [\"a.test\"];\n"
	             "recipients = { file = \"r\"; };\n"
	             "downstream = ( { target = \"smtp:127.0.0.1:1\"; weight = 10; } );\n",
	             ":3: unknown or mistyped key 'downstream.weight'");
}

static void
test_keys(void **state)
{
	(void)state;
	size_t n = 0;
	for (const char *const *k = config_key_names(); *k; k++)
		n++;
	assert_true(n > 30);
}

/* recipients: exactly one source; directory keys; harvest. */
static void
test_directories(void **state)
{
	(void)state;
	static const char *const base = "listen = [\"127.0.0.1:2525\"];\n"
	                                "domains = [\"example.test\"];\n"
	                                "downstream = \"smtp:127.0.0.1:2626\";\n";
	char text[2048];
	struct config_errors errs;
	snprintf(text, sizeof(text),
	         "%srecipients = { ldap = { uris = [\"ldap://10.0.0.1\", \"ldaps://10.0.0.2:636\"]; "
	         "base = \"dc=example,dc=test\"; filter = \"(|(mail=%%s)(proxyAddresses=smtp:%%s))\"; "
	         "bind_dn = \"cn=r\"; bind_password = \"pw\"; replica = {}; }; "
	         "cache = { positive_ttl = 3600; negative_ttl = \"5m\"; }; };\n"
	         "harvest = { window = 600; tarpit_after = 10; block_after = 50; block_time = 3600; "
	         "allow = [\"192.0.2.0/24\"]; };\n", base);
	struct mx_config *c = load(text, &errs);
	assert_non_null(c);
	assert_string_equal(c->rcpt_source, "ldap");
	assert_int_equal(c->n_ldap_uris, 2);
	assert_string_equal(c->ldap_scope, "sub");
	assert_true(c->ldap_replica);
	assert_int_equal(c->ldap_replica_interval, 600000);
	assert_string_equal(c->ldap_replica_filter, "(mail=*)");
	assert_int_equal(c->n_ldap_replica_attrs, 1);
	assert_int_equal(c->rcpt_positive_ttl, 3600000);
	assert_int_equal(c->rcpt_negative_ttl, 300000);
	assert_int_equal(c->rcpt_timeout, 5000);
	assert_true(c->harvest);
	assert_int_equal(c->harvest_window, 600000);
	assert_int_equal(c->harvest_block_code, 421);
	assert_int_equal(c->harvest_tarpit_delay, 2000);
	assert_int_equal(c->n_harvest_allow, 1);
	config_unref(c);
	/* defaults: the file, no harvest */
	c = load(MINIMAL, &errs);
	assert_non_null(c);
	assert_string_equal(c->rcpt_source, "file");
	assert_false(c->harvest);
	assert_false(c->ldap_replica);
	config_unref(c);

	snprintf(text, sizeof(text), "%srecipients = { file = \"r\"; ldap = { uris = [\"ldap://h\"]; }; };\n",
	         base);
	expect_error(text, "'recipients' names both file and ldap; configure exactly one source");
	snprintf(text, sizeof(text), "%srecipients = { delimiter = \"+\"; };\n", base);
	expect_error(text, "'recipients' names no source");
	snprintf(text, sizeof(text), "%srecipients = { ldap = { base = \"dc=x\"; }; };\n", base);
	expect_error(text, "'recipients.ldap' needs uris");
	snprintf(text, sizeof(text), "%srecipients = { ldap = { uris = [\"http://h\"]; }; };\n", base);
	expect_error(text, "expected ldap://HOST[:PORT] or ldaps://HOST[:PORT]");
	snprintf(text, sizeof(text),
	         "%srecipients = { ldap = { uris = [\"ldap://h\"]; bind_dn = \"cn=x\"; }; };\n", base);
	expect_error(text, "needs both bind_dn and bind_password");
	snprintf(text, sizeof(text), "%srecipients = { ldap = { uris = [\"ldap://h\"]; scope = \"all\"; }; };\n",
	         base);
	expect_error(text, "'recipients.ldap.scope' is \"all\"; allowed: sub|one|base");
	snprintf(text, sizeof(text), "%srecipients = { pgsql = { conninfo = \"host=h\"; }; };\n", base);
	expect_error(text, "'recipients.pgsql' needs a query");
	snprintf(text, sizeof(text), "%srecipients = { mysql = { query = \"SELECT 1\"; }; };\n", base);
	expect_error(text, "'recipients.mysql' needs user and database");
	snprintf(text, sizeof(text), "%srecipients = { callout = { sender = \"x@y\"; }; pgsql = {}; };\n",
	         base);
	expect_error(text, "names both pgsql and callout");
	snprintf(text, sizeof(text), "%sharvest = { block_code = 420; };\n", MINIMAL);
	expect_error(text, "'harvest.block_code' is 420; it must be between 421 and 554");
	snprintf(text, sizeof(text), "%sharvest = { block_code = 500; };\n", MINIMAL);
	expect_error(text, "'harvest.block_code' must be 421 or 554");
	snprintf(text, sizeof(text), "%sharvest = { tarpit_after = 20; block_after = 10; };\n", MINIMAL);
	expect_error(text, "'harvest.block_after' (10) is below 'harvest.tarpit_after' (20)");
	snprintf(text, sizeof(text), "%sharvest = { windo = 60; };\n", MINIMAL);
	expect_error(text, "unknown key 'harvest.windo' (did you mean 'harvest.window'?)");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults), cmocka_unit_test(test_idn_domain),         cmocka_unit_test(test_units),
		cmocka_unit_test(test_errors),           cmocka_unit_test(test_downstream_forms),
		cmocka_unit_test(test_keys),             cmocka_unit_test(test_directories),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
