/* SPDX-License-Identifier: MIT */
/* Unit tests: upstream - target syntax, MX-style ordering, health marks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "upstream.h"

static struct upstream_set *
build(struct config_downstream *d, size_t n, struct config_errors *errs)
{
	struct mx_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	cfg.path = "test.conf";
	cfg.down = d;
	cfg.n_down = n;
	memset(errs, 0, sizeof(*errs));
	return upstream_set_build(&cfg, errs);
}

static void
test_parse(void **state)
{
	(void)state;
	struct config_downstream d[] = {
		{"smtp:127.0.0.1:2626", 10, 1}, {"lmtp:[::1]:24", 10, 2},
		{"lmtp:/run/dovecot/lmtp", 20, 3}, {"smtp:localhost:25", 30, 4},
	};
	struct config_errors errs;
	struct upstream_set *s = build(d, 4, &errs);
	assert_non_null(s);
	assert_true(s->n >= 4);
	assert_int_equal(s->t[0].proto, UPSTREAM_SMTP);
	assert_int_equal(s->t[1].proto, UPSTREAM_LMTP);
	assert_int_equal(s->t[2].addr.ss_family, AF_UNIX);
	assert_int_equal(s->t[2].priority, 20);
	upstream_set_free(s);

	struct config_downstream bad[] = {{"smtp:127.0.0.1", 0, 7}};
	assert_null(build(bad, 1, &errs));
	assert_non_null(strstr(errs.msg[0], "test.conf:7:"));
	config_errors_clear(&errs);
	struct config_downstream bad2[] = {{"smtp:no-such-host.invalid:25", 0, 8}};
	assert_null(build(bad2, 1, &errs));
	assert_non_null(strstr(errs.msg[0], "cannot resolve"));
	config_errors_clear(&errs);
	struct config_downstream bad3[] = {{"smtp:127.0.0.1:0", 0, 9}};
	assert_null(build(bad3, 1, &errs));
	config_errors_clear(&errs);
}

static void
test_order(void **state)
{
	(void)state;
	struct config_downstream d[] = {
		{"smtp:127.0.0.1:3", 20, 1}, {"smtp:127.0.0.1:1", 10, 2},
		{"smtp:127.0.0.1:2", 10, 3}, {"smtp:127.0.0.1:4", 30, 4},
	};
	struct config_errors errs;
	struct upstream_set *s = build(d, 4, &errs);
	size_t order[8];
	int first_is_1 = 0;
	for (int round = 0; round < 400; round++) {
		assert_int_equal(upstream_order(s, order, 8, 1000), 4);
		/* the two priority-10 targets first, in random order */
		assert_int_equal(s->t[order[0]].priority, 10);
		assert_int_equal(s->t[order[1]].priority, 10);
		assert_int_equal(s->t[order[2]].priority, 20);
		assert_int_equal(s->t[order[3]].priority, 30);
		first_is_1 += order[0] == 1;
	}
	/* both equal targets come first often (random, not fixed) */
	assert_true(first_is_1 > 100 && first_is_1 < 300);
	/* a failed target goes last until its retry time */
	upstream_mark_dead(&s->t[1], 5000);
	upstream_mark_dead(&s->t[2], 5000);
	upstream_order(s, order, 8, 1000);
	assert_int_equal(order[0], 0);
	assert_int_equal(order[1], 3);
	assert_int_equal(s->t[order[2]].priority, 10);
	upstream_order(s, order, 8, 6000); /* retry time passed */
	assert_int_equal(s->t[order[0]].priority, 10);
	upstream_mark_alive(&s->t[1]);
	upstream_set_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_order),
	};
	return cmocka_run_group_tests_name("upstream", tests, NULL, NULL);
}
