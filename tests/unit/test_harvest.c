/* SPDX-License-Identifier: MIT */
/* Unit tests: harvest - the sliding window, thresholds, blocks, allow list, /64 keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "clock.h"
#include "harvest.h"
#include "log.h"

/* ---- the window --------------------------------------------------------------- */

static void
test_window_basic(void **state)
{
	(void)state;
	struct harvest_window w;
	harvest_window_init(&w, 160); /* 16 slots of 10 s */
	assert_int_equal(w.width, 10);
	time_t t0 = 1000000;
	assert_int_equal(harvest_window_count(&w, t0), 0);
	harvest_window_add(&w, t0, 3);
	harvest_window_add(&w, t0 + 5, 2); /* same slot */
	assert_int_equal(harvest_window_count(&w, t0 + 5), 5);
	harvest_window_add(&w, t0 + 10, 1);
	assert_int_equal(harvest_window_count(&w, t0 + 10), 6);
	/* 150 s later both slots are still inside the window */
	assert_int_equal(harvest_window_count(&w, t0 + 150), 6);
	/* the first slot (t0..t0+9) leaves once 16 slots have passed */
	assert_int_equal(harvest_window_count(&w, t0 + 160), 1);
	assert_int_equal(harvest_window_count(&w, t0 + 170), 0);
	assert_int_equal(harvest_window_count(&w, t0 + 100000), 0);
}

/* A slot reused after the ring wrapped starts from zero. */
static void
test_window_wrap(void **state)
{
	(void)state;
	struct harvest_window w;
	harvest_window_init(&w, 16); /* 1 s slots */
	harvest_window_add(&w, 100, 7);
	harvest_window_add(&w, 116, 1); /* same ring position, 16 s later */
	assert_int_equal(harvest_window_count(&w, 116), 1);
	/* a count from the future (clock stepped back) is not counted */
	harvest_window_add(&w, 200, 4);
	assert_int_equal(harvest_window_count(&w, 150), 0);
	assert_int_equal(harvest_window_count(&w, 200), 4);
}

/* Exhaustive against a naive model: every count made in the last window
 * is counted, nothing older than window + width is. */
static void
test_window_model(void **state)
{
	(void)state;
	const uint32_t window = 64;
	struct harvest_window w;
	harvest_window_init(&w, window);
	uint32_t at[4096];
	size_t n = 0;
	uint32_t seed = 7;
	time_t now = 5000;
	for (int step = 0; step < 4000; step++) {
		seed = seed * 1103515245u + 12345u;
		now += (seed >> 16) % 5; /* 0..4 s apart */
		if ((seed >> 8) % 3 != 0) {
			harvest_window_add(&w, now, 1);
			at[n++ % 4096] = (uint32_t)now;
		}
		uint32_t got = harvest_window_count(&w, now);
		uint32_t surely = 0, maybe = 0;
		for (size_t i = 0; i < (n < 4096 ? n : 4096); i++) {
			uint32_t age = (uint32_t)now - at[i];
			if (age < window - w.width)
				surely++;
			if (age < window + w.width)
				maybe++;
		}
		if (got < surely || got > maybe)
			fail_msg("step %d: count %u outside [%u, %u]", step, got, surely, maybe);
	}
}

static void
test_window_encoding(void **state)
{
	(void)state;
	struct harvest_window w, back;
	harvest_window_init(&w, 600);
	harvest_window_add(&w, 1700000000, 42);
	harvest_window_add(&w, 1700000100, 0xffffffffu); /* saturates */
	harvest_window_add(&w, 1700000100, 5);
	unsigned char buf[HARVEST_WINDOW_BYTES];
	harvest_window_encode(&w, buf);
	assert_true(harvest_window_decode(&back, buf, sizeof(buf), 600));
	assert_memory_equal(&w, &back, sizeof(w));
	assert_int_equal(harvest_window_count(&back, 1700000100), 0xffffffffu);
	/* another window width (configuration changed), or junk: start afresh */
	assert_false(harvest_window_decode(&back, buf, sizeof(buf), 60));
	assert_int_equal(harvest_window_count(&back, 1700000100), 0);
	assert_false(harvest_window_decode(&back, buf, sizeof(buf) - 1, 600));
}

/* ---- the policy with a real store ---------------------------------------------- */

struct fixture {
	char dir[64], conf[80];
	struct store *store;
	struct event_base *base;
	struct mx_config *cfg;
	struct harvest *h;
	struct harvest_worker *w;
	int warnings;
	char last[512];
};

static void
sink(enum log_level level, const char *line, void *arg)
{
	struct fixture *f = arg;
	if (level >= LOG_LVL_WARN) {
		f->warnings++;
		snprintf(f->last, sizeof(f->last), "%s", line);
	}
}

static struct fixture *
fixture_new(const char *harvest)
{
	struct fixture *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/mx-test-harvest-%d", (int)getpid());
	snprintf(f->conf, sizeof(f->conf), "%s.conf", f->dir);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	FILE *fp = fopen(f->conf, "w");
	fprintf(fp, "listen = [\"127.0.0.1:1\"]; domains = [\"example.test\"];\n"
	            "recipients = { file = \"/dev/null\"; };\ndownstream = \"smtp:127.0.0.1:2\";\n"
	            "harvest = { %s };\n", harvest);
	fclose(fp);
	struct config_errors errs = {0};
	f->cfg = config_load(f->conf, &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.msg[i]);
	assert_non_null(f->cfg);
	f->h = harvest_build(f->cfg, &errs);
	assert_non_null(f->h);
	char err[256];
	struct store_opts so = {f->dir, 16 << 20, false};
	f->store = store_open(&so, err, sizeof(err));
	assert_non_null(f->store);
	f->base = event_base_new();
	f->w = harvest_worker_new(f->base, f->store);
	log_set_sink(sink, f);
	mx_clock_fake(1000, 1700000000);
	return f;
}

static void
fixture_free(struct fixture *f)
{
	harvest_worker_free(f->w);
	event_base_free(f->base);
	harvest_free(f->h);
	config_unref(f->cfg);
	store_close(f->store);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", f->dir, f->conf);
	assert_int_equal(system(cmd), 0);
	log_set_sink(NULL, NULL);
	mx_clock_fake(0, 0);
	free(f);
}

static struct sockaddr_storage
addr(const char *ip)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
	return ss;
}

/* Lets the worker's flush timer write its counts. */
static void
flush(struct fixture *f)
{
	struct timeval tv = {0, 2 * HARVEST_FLUSH_MS * 1000};
	event_base_loopexit(f->base, &tv);
	event_base_dispatch(f->base);
}

static enum harvest_state
connect_as(struct fixture *f, const char *ip, struct harvest_client *c)
{
	struct sockaddr_storage ss = addr(ip);
	return harvest_connect(f->h, f->w, (struct sockaddr *)&ss, c);
}

struct listed {
	int n;
	struct harvest_block b;
};

static void
list_cb(const struct harvest_block *b, void *arg)
{
	struct listed *l = arg;
	l->b = *b;
	l->n++;
}

static void
test_thresholds(void **state)
{
	(void)state;
	struct fixture *f = fixture_new("window = 600; tarpit_after = 3; block_after = 6; "
	                                "block_time = 3600; tarpit_delay = \"250ms\"; block_code = 554;");
	assert_int_equal(harvest_tarpit_ms(f->h), 250);
	assert_int_equal(harvest_block_code(f->h), 554);
	struct harvest_client c;
	assert_int_equal(connect_as(f, "192.0.2.7", &c), HARVEST_OK);
	assert_string_equal(c.key, "192.0.2.7");
	/* 1..3: fine; 4..6: tarpit; 7: blocked */
	for (int i = 1; i <= 3; i++)
		assert_int_equal(harvest_unknown(f->h, f->w, &c), HARVEST_OK);
	assert_int_equal(harvest_state(f->h, &c), HARVEST_OK);
	for (int i = 4; i <= 6; i++)
		assert_int_equal(harvest_unknown(f->h, f->w, &c), HARVEST_TARPIT);
	assert_int_equal(harvest_state(f->h, &c), HARVEST_TARPIT);
	assert_int_equal(f->warnings, 0);
	assert_int_equal(harvest_unknown(f->h, f->w, &c), HARVEST_BLOCKED);
	assert_int_equal(c.count, 7);
	assert_int_equal(f->warnings, 1); /* one log line for the block */
	assert_non_null(strstr(f->last, "harvest: block client=192.0.2.7 key=192.0.2.7 "
	                                "unknown_recipients=7"));
	assert_int_equal(c.until, 1700000000 + 3600);
	assert_int_equal(harvest_unknown(f->h, f->w, &c), HARVEST_BLOCKED);
	assert_int_equal(f->warnings, 1); /* blocked already: not logged again */
	/* the next connection is refused; another client is not */
	struct harvest_client c2;
	assert_int_equal(connect_as(f, "192.0.2.7", &c2), HARVEST_BLOCKED);
	assert_int_equal(c2.until, 1700000000 + 3600);
	assert_int_equal(connect_as(f, "192.0.2.8", &c2), HARVEST_OK);
	struct listed l = {0};
	assert_int_equal(harvest_block_list(f->store, list_cb, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.b.key, "192.0.2.7");
	assert_int_equal(l.b.count, 7);
	assert_int_equal(l.b.since, 1700000000);
	/* the block expires with block_time; the window forgets with window */
	flush(f);
	mx_clock_fake(1000, 1700000000 + 3601);
	assert_int_equal(connect_as(f, "192.0.2.7", &c2), HARVEST_OK);
	memset(&l, 0, sizeof(l));
	harvest_block_list(f->store, list_cb, &l);
	assert_int_equal(l.n, 0);
	fixture_free(f);
}

/* Counts cross sessions and workers: the store holds what was flushed,
 * and a worker adds what it has not written yet. */
static void
test_shared_counts(void **state)
{
	(void)state;
	struct fixture *f = fixture_new("window = 600; tarpit_after = 2; block_after = 100;");
	struct harvest_worker *w2 = harvest_worker_new(f->base, f->store);
	struct harvest_client a, b;
	assert_int_equal(connect_as(f, "198.51.100.1", &a), HARVEST_OK);
	harvest_unknown(f->h, f->w, &a);
	harvest_unknown(f->h, f->w, &a);
	/* a second session on the same worker sees the unwritten counts */
	assert_int_equal(connect_as(f, "198.51.100.1", &b), HARVEST_OK);
	assert_int_equal(b.count, 2);
	assert_int_equal(harvest_unknown(f->h, f->w, &b), HARVEST_TARPIT);
	/* another worker of the process sees them at once, written or not */
	struct sockaddr_storage ss = addr("198.51.100.1");
	assert_int_equal(harvest_connect(f->h, w2, (struct sockaddr *)&ss, &b), HARVEST_TARPIT);
	assert_int_equal(b.count, 3);
	flush(f);
	/* and other processes once written: the window is in the store */
	char k[64];
	snprintf(k, sizeof(k), "hv:198.51.100.1");
	void *val = NULL;
	size_t vl = 0;
	struct harvest_window win;
	assert_int_equal(store_get(f->store, k, strlen(k), &val, &vl), MX_FOUND);
	assert_true(harvest_window_decode(&win, val, vl, 600));
	assert_int_equal(harvest_window_count(&win, 1700000000), 3);
	free(val);
	assert_int_equal(harvest_connect(f->h, w2, (struct sockaddr *)&ss, &b), HARVEST_TARPIT);
	assert_int_equal(b.count, 3);
	assert_int_equal(harvest_unknown(f->h, w2, &b), HARVEST_TARPIT);
	assert_int_equal(b.count, 4);
	/* 11 minutes later the window has forgotten */
	harvest_worker_free(w2);
	mx_clock_fake(1000, 1700000000 + 660);
	assert_int_equal(connect_as(f, "198.51.100.1", &b), HARVEST_OK);
	assert_int_equal(b.count, 0);
	fixture_free(f);
}

static void
test_allow_and_v6(void **state)
{
	(void)state;
	struct fixture *f = fixture_new("tarpit_after = 1; block_after = 2; "
	                                "allow = [\"192.0.2.0/24\", \"2001:db8:ffff::/48\"];");
	struct harvest_client c;
	assert_int_equal(connect_as(f, "192.0.2.200", &c), HARVEST_OK);
	assert_true(c.allowed);
	for (int i = 0; i < 10; i++)
		assert_int_equal(harvest_unknown(f->h, f->w, &c), HARVEST_OK);
	assert_int_equal(connect_as(f, "2001:db8:ffff:1::5", &c), HARVEST_OK);
	assert_true(c.allowed);
	/* IPv6 counts per /64: two hosts of one /64 share a count */
	assert_int_equal(connect_as(f, "2001:db8:1:2::10", &c), HARVEST_OK);
	assert_false(c.allowed);
	assert_string_equal(c.key, "2001:db8:1:2::/64");
	harvest_unknown(f->h, f->w, &c);
	struct harvest_client d;
	assert_int_equal(connect_as(f, "2001:db8:1:2:aaaa::99", &d), HARVEST_OK);
	assert_int_equal(d.count, 1);
	assert_int_equal(harvest_unknown(f->h, f->w, &d), HARVEST_TARPIT);
	assert_int_equal(harvest_unknown(f->h, f->w, &d), HARVEST_BLOCKED);
	assert_int_equal(connect_as(f, "2001:db8:1:2::77", &d), HARVEST_BLOCKED);
	assert_int_equal(connect_as(f, "2001:db8:1:3::77", &d), HARVEST_OK);
	/* lifting the block by any address of the /64 */
	char key[64], err[128];
	assert_int_equal(harvest_block_remove(f->store, "2001:db8:1:2::1234", key, sizeof(key), err,
	                                      sizeof(err)), 1);
	assert_string_equal(key, "2001:db8:1:2::/64");
	harvest_worker_free(f->w); /* its unwritten counts go to the store */
	f->w = harvest_worker_new(f->base, f->store);
	assert_int_equal(harvest_block_remove(f->store, "2001:db8:1:2::/64", key, sizeof(key), err,
	                                      sizeof(err)), 0);
	assert_int_equal(connect_as(f, "2001:db8:1:2::77", &d), HARVEST_OK);
	assert_int_equal(d.count, 0); /* the count was forgotten too */
	assert_int_equal(harvest_block_remove(f->store, "not-an-ip", key, sizeof(key), err,
	                                      sizeof(err)), -1);
	assert_non_null(strstr(err, "expected an IP address"));
	fixture_free(f);
}

static void
test_bad_allow(void **state)
{
	(void)state;
	FILE *fp = fopen("/tmp/mx-test-harvest-bad.conf", "w");
	fprintf(fp, "listen = [\"127.0.0.1:1\"]; domains = [\"example.test\"];\n"
	            "recipients = { file = \"/dev/null\"; };\ndownstream = \"smtp:127.0.0.1:2\";\n"
	            "harvest = { allow = [\"10.0.0.0/8\", \"10.0.0.300\"]; };\n");
	fclose(fp);
	struct config_errors errs = {0};
	struct mx_config *cfg = config_load("/tmp/mx-test-harvest-bad.conf", &errs);
	assert_non_null(cfg);
	assert_null(harvest_build(cfg, &errs));
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.msg[0], "harvest.allow: \"10.0.0.300\""));
	config_errors_clear(&errs);
	config_unref(cfg);
	/* block_after below tarpit_after, and a block code that is not 421/554 */
	fp = fopen("/tmp/mx-test-harvest-bad.conf", "w");
	fprintf(fp, "listen = [\"127.0.0.1:1\"]; domains = [\"example.test\"];\n"
	            "recipients = { file = \"/dev/null\"; };\ndownstream = \"smtp:127.0.0.1:2\";\n"
	            "harvest = { tarpit_after = 10; block_after = 5; block_code = 450; };\n");
	fclose(fp);
	assert_null(config_load("/tmp/mx-test-harvest-bad.conf", &errs));
	assert_int_equal(errs.n, 2);
	config_errors_clear(&errs);
	unlink("/tmp/mx-test-harvest-bad.conf");
	/* no harvest group: off, and no error */
	fp = fopen("/tmp/mx-test-harvest-bad.conf", "w");
	fprintf(fp, "listen = [\"127.0.0.1:1\"]; domains = [\"example.test\"];\n"
	            "recipients = { file = \"/dev/null\"; };\ndownstream = \"smtp:127.0.0.1:2\";\n");
	fclose(fp);
	cfg = config_load("/tmp/mx-test-harvest-bad.conf", &errs);
	assert_non_null(cfg);
	assert_null(harvest_build(cfg, &errs));
	assert_int_equal(errs.n, 0);
	config_unref(cfg);
	unlink("/tmp/mx-test-harvest-bad.conf");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window_basic),    cmocka_unit_test(test_window_wrap),
		cmocka_unit_test(test_window_model),    cmocka_unit_test(test_window_encoding),
		cmocka_unit_test(test_thresholds),      cmocka_unit_test(test_shared_counts),
		cmocka_unit_test(test_allow_and_v6),    cmocka_unit_test(test_bad_allow),
	};
	return cmocka_run_group_tests_name("harvest", tests, NULL, NULL);
}
