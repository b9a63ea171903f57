/* SPDX-License-Identifier: MIT */
/* Unit tests: core - netaddr, strmap, blob, log_escape, str, stats, fsutil. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include "blob.h"
#include "fsutil.h"
#include "log.h"
#include "netaddr.h"
#include "stats.h"
#include "str.h"
#include "strmap.h"

static void
test_netaddr(void **state)
{
	(void)state;
	struct netaddr na;
	char buf[NETADDR_STRLEN];
	assert_int_equal(netaddr_parse("127.0.0.1:2525", &na), 0);
	netaddr_str((struct sockaddr *)&na.ss, buf, sizeof(buf));
	assert_string_equal(buf, "127.0.0.1:2525");
	assert_int_equal(netaddr_parse("[::1]:25", &na), 0);
	netaddr_str((struct sockaddr *)&na.ss, buf, sizeof(buf));
	assert_string_equal(buf, "[::1]:25");
	assert_int_equal(netaddr_port((struct sockaddr *)&na.ss), 25);
	static const char *const bad[] = {"127.0.0.1", "::1:25", "[::1]25", "1.2.3.4:99999",
	                                  "host:25", "1.2.3.4:", "[::1]:x", ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (netaddr_parse(bad[i], &na) == 0)
			fail_msg("accepted \"%s\"", bad[i]);
}

static void
test_cidr(void **state)
{
	(void)state;
	struct netaddr_cidr net;
	struct netaddr a;
	assert_int_equal(netaddr_cidr_parse("192.0.2.0/24", &net), 0);
	netaddr_parse("192.0.2.77:1", &a);
	assert_true(netaddr_cidr_match(&net, (struct sockaddr *)&a.ss));
	netaddr_parse("192.0.3.1:1", &a);
	assert_false(netaddr_cidr_match(&net, (struct sockaddr *)&a.ss));
	assert_int_equal(netaddr_cidr_parse("2001:db8::/32", &net), 0);
	netaddr_parse("[2001:db8:ffff::1]:1", &a);
	assert_true(netaddr_cidr_match(&net, (struct sockaddr *)&a.ss));
	netaddr_parse("192.0.2.77:1", &a);
	assert_false(netaddr_cidr_match(&net, (struct sockaddr *)&a.ss));
	/* IPv4-mapped IPv6 matches the IPv4 network */
	assert_int_equal(netaddr_cidr_parse("10.0.0.0/8", &net), 0);
	netaddr_parse("[::ffff:10.1.2.3]:1", &a);
	assert_true(netaddr_cidr_match(&net, (struct sockaddr *)&a.ss));
	assert_int_equal(netaddr_cidr_parse("10.0.0.1", &net), 0);
	assert_int_equal(net.prefix, 32);
	assert_int_equal(netaddr_cidr_parse("10.0.0.0/33", &net), -1);
	assert_int_equal(netaddr_cidr_parse("10.0.0.0/x", &net), -1);
	assert_int_equal(netaddr_cidr_parse("nonsense", &net), -1);
	assert_int_equal(netaddr_cidr_parse("192.0.2.0/23", &net), 0);
	netaddr_parse("192.0.3.255:1", &a);
	assert_true(netaddr_cidr_match(&net, (struct sockaddr *)&a.ss));
}

static void
test_client_key(void **state)
{
	(void)state;
	struct netaddr a;
	char k[NETADDR_STRLEN];
	netaddr_parse("[2001:db8:1:2:aaaa::1]:1", &a);
	netaddr_client_key((struct sockaddr *)&a.ss, k, sizeof(k));
	assert_string_equal(k, "2001:db8:1:2::/64");
	netaddr_parse("[2001:db8:1:2:bbbb::9]:1", &a);
	char k2[NETADDR_STRLEN];
	netaddr_client_key((struct sockaddr *)&a.ss, k2, sizeof(k2));
	assert_string_equal(k, k2);
	netaddr_parse("[::ffff:192.0.2.1]:1", &a);
	netaddr_client_key((struct sockaddr *)&a.ss, k, sizeof(k));
	assert_string_equal(k, "192.0.2.1");
}

static void
test_strmap(void **state)
{
	(void)state;
	struct strmap *m = strmap_new();
	char key[32];
	for (int i = 0; i < 10000; i++) {
		snprintf(key, sizeof(key), "user%d@example.test", i);
		assert_null(strmap_put(m, key, strlen(key), (void *)(intptr_t)(i + 1)));
	}
	assert_int_equal(strmap_count(m), 10000);
	for (int i = 0; i < 10000; i += 2) {
		snprintf(key, sizeof(key), "user%d@example.test", i);
		assert_true(strmap_del(m, key, strlen(key)));
	}
	assert_int_equal(strmap_count(m), 5000);
	for (int i = 0; i < 10000; i++) {
		void *v = NULL;
		snprintf(key, sizeof(key), "user%d@example.test", i);
		bool found = strmap_get(m, key, strlen(key), &v);
		assert_int_equal(found, i % 2 == 1);
		if (found)
			assert_int_equal((intptr_t)v, i + 1);
	}
	/* churn: many put/del cycles must not grow without bound or lose keys */
	for (int r = 0; r < 100000; r++) {
		snprintf(key, sizeof(key), "k%d", r % 50);
		strmap_put(m, key, strlen(key), NULL);
		strmap_del(m, key, strlen(key));
	}
	assert_int_equal(strmap_count(m), 5000);
	assert_false(strmap_get(m, "", 0, NULL));
	strmap_put(m, "", 0, (void *)1);
	assert_true(strmap_get(m, "", 0, NULL));
	strmap_free(m);
}

/* Keys are bytes: two that differ only after a NUL are two keys, and a
 * key with NULs in it is found again (the classifier keys by binary id). */
static void
test_strmap_binary(void **state)
{
	(void)state;
	struct strmap *m = strmap_new();
	const char a[8] = {'\x4b', '\xba', 0, '\xe4', 0, '\xb7', 'b', 'Q'};
	const char b[8] = {'\x4b', '\xba', 0, '\xe4', 0, '\xb7', 'b', 'R'};
	assert_null(strmap_put(m, a, 8, (void *)1));
	assert_null(strmap_put(m, b, 8, (void *)2));
	assert_int_equal(strmap_count(m), 2);
	void *v = NULL;
	assert_true(strmap_get(m, a, 8, &v));
	assert_ptr_equal(v, (void *)1);
	assert_true(strmap_get(m, b, 8, &v));
	assert_ptr_equal(v, (void *)2);
	assert_false(strmap_get(m, a, 2, NULL)); /* a prefix up to the NUL is another key */
	assert_ptr_equal(strmap_put(m, a, 8, (void *)3), (void *)1);
	assert_int_equal(strmap_count(m), 2);
	strmap_free(m);
}

/* Every value is freed once (ASan's leak and double-free checks decide),
 * a deleted slot's value is not touched again. */
static void
test_strmap_free_values(void **state)
{
	(void)state;
	struct strmap *m = strmap_new();
	char key[32];
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		char *v = malloc(16);
		assert_non_null(v);
		snprintf(v, 16, "v%d", i);
		assert_null(strmap_put(m, key, strlen(key), v));
	}
	void *v;
	assert_true(strmap_get(m, "k7", 2, &v));
	assert_string_equal(v, "v7");
	assert_true(strmap_del(m, "k7", 2));
	free(v);
	assert_int_equal(strmap_count(m), 99);
	strmap_free_values(m);
	strmap_free_values(NULL);
}

static void
test_blob(void **state)
{
	(void)state;
	struct blob *b = blob_new(100, "/tmp");
	char data[10000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)('a' + i % 26);
	for (size_t off = 0; off < sizeof(data); off += 333)
		assert_int_equal(blob_append(b, data + off, off + 333 > sizeof(data) ? sizeof(data) - off : 333), 0);
	assert_int_equal(blob_len(b), sizeof(data));
	size_t hl;
	const char *h = blob_head(b, &hl);
	assert_int_equal(hl, 100);
	assert_memory_equal(h, data, 100);
	char back[10000];
	size_t got = 0;
	while (got < sizeof(back)) {
		ssize_t r = blob_read(b, got, back + got, 777);
		assert_true(r > 0);
		got += (size_t)r;
	}
	assert_int_equal(blob_read(b, got, back, 10), 0);
	assert_memory_equal(back, data, sizeof(data));
	blob_free(b);
	blob_free(NULL);
	/* small: never touches the disk */
	b = blob_new(1 << 20, "/nonexistent");
	assert_int_equal(blob_append(b, "hello", 5), 0);
	assert_int_equal(blob_len(b), 5);
	blob_free(b);
	/* spill into a folder that does not exist: an error, not a crash */
	b = blob_new(4, "/nonexistent/dir");
	assert_int_equal(blob_append(b, "hello", 5), -1);
	blob_free(b);
	/* a flush cut short (here by the file size limit, as a full disk
	 * would) and tried again writes each byte once */
	b = blob_new(100, "/tmp");
	assert_int_equal(blob_append(b, data, 6100), 0); /* 6,000 bytes buffered for the file */
	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 2500;
	void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(blob_flush(b), -1); /* 2,500 written, then EFBIG */
	assert_int_equal(errno, EFBIG);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, prev);
	assert_int_equal(blob_flush(b), 0);
	assert_int_equal(blob_len(b), 6100);
	got = 0;
	while (got < 6100) {
		ssize_t r = blob_read(b, got, back + got, 6100 - got);
		assert_true(r > 0);
		got += (size_t)r;
	}
	assert_int_equal(blob_read(b, got, back, 10), 0); /* nothing twice at the end */
	assert_memory_equal(back, data, 6100);
	blob_free(b);
}

static void
test_log_escape(void **state)
{
	(void)state;
	char out[64];
	log_escape(out, sizeof(out), "ab\r\n\"\\\x01\xff", 8);
	assert_string_equal(out, "ab\\x0d\\x0a\\x22\\x5c\\x01\\xff");
	char small[10];
	log_escape(small, sizeof(small), "0123456789abcdef", 16);
	assert_int_equal(strlen(small), 9);
	assert_string_equal(small + 6, "...");
	log_escape(small, sizeof(small), "", 0);
	assert_string_equal(small, "");
}

/* mx_memmem2 finds what memmem finds: every needle length, every
 * position, across the sixteen-byte blocks and in the tail, with decoys
 * that share the first two bytes. */
static void
test_memmem2(void **state)
{
	(void)state;
	static const char *const needles[] = {">From ", "XJ", ">F", "XJS*C4JDBQADN1"};
	char hay[80];
	for (size_t k = 0; k < sizeof(needles) / sizeof(needles[0]); k++) {
		const char *nd = needles[k];
		size_t m = strlen(nd);
		for (size_t n = 0; n <= sizeof(hay); n++) {
			for (size_t at = 0; at <= n + 1; at++) {
				memset(hay, 'a', sizeof(hay));
				for (size_t d = 0; d + 2 <= n; d += 7) /* decoys: the first two bytes alone */
					memcpy(hay + d, nd, 2);
				if (at + m <= n)
					memcpy(hay + at, nd, m);
				const char *want = memmem(hay, n, nd, m);
				if (mx_memmem2(hay, n, nd, m) != want)
					fail_msg("needle %s, n %zu, at %zu", nd, n, at);
			}
		}
	}
	assert_ptr_equal(mx_memmem2("abc", 3, "c", 1), memmem("abc", 3, "c", 1));
	assert_null(mx_memmem2("ab", 2, "abc", 3));
}

static void
test_str(void **state)
{
	(void)state;
	char buf[5];
	assert_int_equal(mx_strlcpy(buf, "abcd", sizeof(buf)), 0);
	assert_int_equal(mx_strlcpy(buf, "abcde", sizeof(buf)), -1);
	assert_string_equal(buf, "abcd");
	unsigned long long v;
	assert_int_equal(mx_parse_u64("18446744073709551615", 20, &v), 0);
	assert_int_equal(mx_parse_u64("18446744073709551616", 20, &v), -1);
	assert_int_equal(mx_parse_u64("", 0, &v), -1);
	assert_int_equal(mx_parse_u64("1a", 2, &v), -1);
	assert_true(mx_utf8_valid("\xc3\xa9t\xc3\xa9", 6));
	assert_false(mx_utf8_valid("\xc0\xaf", 2));         /* overlong */
	assert_false(mx_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	assert_false(mx_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(mx_utf8_valid("\xe2\x82", 2));         /* truncated */
	assert_int_equal(mx_utf8_seq("a", 1), 1);
	assert_int_equal(mx_utf8_seq("\xc3\xa9x", 3), 2);
	assert_int_equal(mx_utf8_seq("\xe2\x82\xac", 3), 3);
	assert_int_equal(mx_utf8_seq("\xf0\x9f\x98\x80", 4), 4);
	assert_int_equal(mx_utf8_seq("\xf0\x9f\x98\x80", 3), 0); /* cut by len */
	assert_int_equal(mx_utf8_seq("\xa9", 1), 0);                /* continuation byte first */
	assert_int_equal(mx_utf8_seq("\xff", 1), 0);
	assert_int_equal(mx_utf8_seq("\xc0\xaf", 2), 0);
	assert_int_equal(mx_utf8_seq("", 0), 0);
	assert_true(mx_str_caseeq("Example.TEST", "example.test"));
	assert_true(mx_str_casesuffix("mx.Example.Test", ".example.test"));
	/* the header block, with its empty line; a NUL does not end it */
	assert_int_equal(mx_header_block_len("A: b\0c\r\nD: e\r\n\r\nbody\r\n", 22), 16);
	assert_int_equal(mx_header_block_len("\r\nbody\r\n\r\nmore", 14), 2);
	assert_int_equal(mx_header_block_len("A: b\r\nC: d\r\n", 12), 0);
	assert_int_equal(mx_header_block_len("", 0), 0);
}

static void
test_stats(void **state)
{
	(void)state;
	stats_inc(STAT_MSG_RECEIVED);
	stats_add(STAT_MSG_BYTES, 41);
	stats_inc(STAT_MSG_BYTES);
	assert_int_equal(stats_get(STAT_MSG_BYTES), 42);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	stats_write_prometheus(f);
	fclose(f);
	assert_non_null(strstr(buf, "mxguard_msg_bytes_total 42\n"));
	assert_non_null(strstr(buf, "# TYPE mxguard_msg_received_total counter"));
	free(buf);
}

/* Four workers counting the same 200 symbols at once: each name once in
 * the table, no hit lost. */
#define STATS_T_NAMES 200
#define STATS_T_ROUNDS 50
static void *
stats_symbol_worker(void *arg)
{
	(void)arg;
	char name[16];
	for (int r = 0; r < STATS_T_ROUNDS; r++)
		for (int i = 0; i < STATS_T_NAMES; i++) {
			snprintf(name, sizeof(name), "T_%d", i);
			stats_symbol_hit(name);
		}
	return NULL;
}

static char *
stats_text(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	stats_write_prometheus(f);
	fclose(f);
	return buf;
}

static void
test_stats_content(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		stats_symbol_hit("GTUBE");
	stats_symbol_hit("CLASSIFIER");
	assert_int_equal(stats_symbol_get("GTUBE"), 3);
	assert_int_equal(stats_symbol_get("CLASSIFIER"), 1);
	assert_int_equal(stats_symbol_get("NEVER"), 0);
	char longname[STATS_SYMBOL_NAME_MAX + 2];
	memset(longname, 'A', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	stats_symbol_hit(longname); /* too long for a name: counted as "*" */
	stats_symbol_hit("");
	assert_int_equal(stats_symbol_get("*"), 2);

	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, stats_symbol_worker, NULL), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	char *text = stats_text();
	int rows = 0;
	for (const char *p = text; (p = strstr(p, "mxguard_content_symbol_total{symbol=\"T_")) != NULL; p++)
		rows++;
	assert_int_equal(rows, STATS_T_NAMES);
	assert_non_null(strstr(text, "mxguard_content_symbol_total{symbol=\"T_7\"} 200\n"));
	assert_non_null(strstr(text, "mxguard_content_symbol_total{symbol=\"T_199\"} 200\n"));
	/* sorted by name, after the TYPE line */
	char *cls = strstr(text, "mxguard_content_symbol_total{symbol=\"CLASSIFIER\"} 1\n");
	char *gtube = strstr(text, "mxguard_content_symbol_total{symbol=\"GTUBE\"} 3\n");
	assert_non_null(cls);
	assert_non_null(gtube);
	assert_true(cls < gtube);
	assert_true(strstr(text, "# TYPE mxguard_content_symbol_total counter\n") < cls);
	free(text);

	/* past the table's 1,024 names, the rest are counted together */
	char name[16];
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "O_%d", i);
		stats_symbol_hit(name);
	}
	assert_int_equal(stats_symbol_get("*"), 2 + (2 + STATS_T_NAMES + 1000 - 1024));
	assert_int_equal(stats_symbol_get("GTUBE"), 3);
	text = stats_text();
	assert_non_null(strstr(text, "mxguard_content_symbol_total{symbol=\"*\"} 180\n"));
	free(text);

	/* the score histogram: cumulative buckets, +Inf for what has no bound */
	const double scores[] = {-3, 0, 2.5, 3, 12, 1000, NAN};
	for (size_t i = 0; i < sizeof(scores) / sizeof(scores[0]); i++)
		stats_score_observe(scores[i]);
	text = stats_text();
	assert_non_null(strstr(text, "# TYPE mxguard_content_score histogram\n"));
	assert_non_null(strstr(text, "mxguard_content_score_bucket{le=\"-10\"} 0\n"));
	assert_non_null(strstr(text, "mxguard_content_score_bucket{le=\"-2\"} 1\n"));
	assert_non_null(strstr(text, "mxguard_content_score_bucket{le=\"0\"} 2\n"));
	assert_non_null(strstr(text, "mxguard_content_score_bucket{le=\"2\"} 2\n"));
	assert_non_null(strstr(text, "mxguard_content_score_bucket{le=\"3\"} 4\n"));
	assert_non_null(strstr(text, "mxguard_content_score_bucket{le=\"12\"} 5\n"));
	assert_non_null(strstr(text, "mxguard_content_score_bucket{le=\"100\"} 5\n"));
	assert_non_null(strstr(text, "mxguard_content_score_bucket{le=\"+Inf\"} 7\n"));
	assert_non_null(strstr(text, "mxguard_content_score_sum 1014.500\n"));
	assert_non_null(strstr(text, "mxguard_content_score_count 7\n"));
	free(text);
}

static void
test_fsutil_mkdirs(void **state)
{
	(void)state;
	char top[] = "/tmp/mx-fsutil-XXXXXX";
	assert_non_null(mkdtemp(top));
	char p[512], err[600];
	struct stat st;
	mode_t old = umask(022);
	/* every missing level, with the mode asked for */
	snprintf(p, sizeof(p), "%s/a/b//c/", top);
	assert_int_equal(fsutil_mkdirs(p, 0750, err, sizeof(err)), 0);
	snprintf(p, sizeof(p), "%s/a/b/c", top);
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0750);
	/* existing: fine, and not an error */
	assert_int_equal(fsutil_mkdirs(p, 0750, err, sizeof(err)), 0);
	/* a file in the way: ENOTDIR, and the message names it */
	char file[600];
	snprintf(file, sizeof(file), "%s/a/f", top);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/a/f/x/y", top);
	errno = 0;
	assert_int_equal(fsutil_mkdirs(p, 0750, err, sizeof(err)), -1);
	assert_int_equal(errno, ENOTDIR);
	char want[700];
	snprintf(want, sizeof(want), "cannot create %s: %s", file, strerror(ENOTDIR));
	assert_string_equal(err, want);
	assert_int_equal(fsutil_mkdirs(file, 0750, NULL, 0), -1);
	assert_int_equal(errno, ENOTDIR);
	assert_int_equal(fsutil_mkdirs("", 0750, err, sizeof(err)), -1);
	umask(old);
	/* fsync of a folder, and of something that is not one */
	assert_int_equal(fsutil_fsync_dir(top), 0);
	assert_int_equal(fsutil_fsync_dir(file), -1);
	unlink(file);
	snprintf(p, sizeof(p), "%s/a/b/c", top);
	assert_int_equal(rmdir(p), 0);
	snprintf(p, sizeof(p), "%s/a/b", top);
	assert_int_equal(rmdir(p), 0);
	snprintf(p, sizeof(p), "%s/a", top);
	assert_int_equal(rmdir(p), 0);
	assert_int_equal(rmdir(top), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_netaddr), cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_client_key), cmocka_unit_test(test_strmap), cmocka_unit_test(test_strmap_binary),
		cmocka_unit_test(test_blob), cmocka_unit_test(test_log_escape), cmocka_unit_test(test_memmem2),
		cmocka_unit_test(test_str), cmocka_unit_test(test_stats),
		cmocka_unit_test(test_stats_content),
		cmocka_unit_test(test_fsutil_mkdirs), cmocka_unit_test(test_strmap_free_values),
	};
	return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
