/* SPDX-License-Identifier: MIT */
/* Unit tests: the reply table and the trace header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "received.h"
#include "smtp_reply.h"

static void
test_table(void **state)
{
	(void)state;
	for (int i = 0; i < REPLY__COUNT; i++) {
		const struct smtp_reply *r = smtp_reply_get((enum smtp_reply_id)i);
		assert_true(r->code >= 200 && r->code <= 599);
		assert_non_null(r->text);
		assert_null(strpbrk(r->text, "\r\n"));
		if (r->code == 354)
			continue;
		/* every reply carries an enhanced status code of its own class */
		assert_non_null(r->enh);
		assert_int_equal(r->enh[0] - '0', r->code / 100);
		assert_int_equal(r->enh[1], '.');
	}
}

static void
test_lookup_mapping(void **state)
{
	(void)state;
	/* the one place where a directory failure becomes 451 4.4.3 */
	const struct smtp_reply *r = smtp_reply_get(smtp_reply_for_lookup(MX_TEMPFAIL));
	assert_int_equal(r->code, 451);
	assert_string_equal(r->enh, "4.4.3");
	r = smtp_reply_get(smtp_reply_for_lookup(MX_NOTFOUND));
	assert_int_equal(r->code, 550);
	assert_string_equal(r->enh, "5.1.1");
	r = smtp_reply_get(smtp_reply_for_lookup(MX_FOUND));
	assert_int_equal(r->code, 250);
	r = smtp_reply_get(REPLY_RELAY_DENIED);
	assert_int_equal(r->code, 554);
	assert_string_equal(r->enh, "5.7.1");
}

static void
test_received(void **state)
{
	(void)state;
	struct received_info ri = {
		.helo = "evil)\r\nX-Injected: yes",
		.client_ip = "192.0.2.1",
		.by = "mx1.example.test",
		.id = "0123456789abcdef",
		.for_rcpt = "alice@example.test",
		.esmtp = true,
		.tls = true,
		.tls_version = "TLSv1.3",
		.tls_cipher = "TLS_AES_256_GCM_SHA384",
		.when = 1795953600, /* 2026-11-29 12:00 UTC */
	};
	char *h = received_build(&ri);
	assert_non_null(strstr(h, "Received: from evil___X-Injected:_yes ([192.0.2.1])\r\n"));
	assert_non_null(strstr(h, "by mx1.example.test (mxguard) with ESMTPS id 0123456789abcdef"));
	assert_non_null(strstr(h, "(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)"));
	assert_non_null(strstr(h, "for <alice@example.test>;"));
	assert_non_null(strstr(h, "Sun, 29 Nov 2026 12:00:00 +0000\r\n"));
	/* every line is CRLF-terminated and continuation lines start with a tab */
	for (char *p = strstr(h, "\r\n"); p != NULL && p[2]; p = strstr(p + 2, "\r\n"))
		assert_int_equal(p[2], '\t');
	assert_int_equal(h[strlen(h) - 1], '\n');
	free(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_lookup_mapping),
		cmocka_unit_test(test_received),
	};
	return cmocka_run_group_tests_name("smtp_reply", tests, NULL, NULL);
}
