/* SPDX-License-Identifier: MIT */
/* Unit tests: smtp_data - end of DATA, dot-unstuffing, smuggling, limits.
 * Every case is fed whole, then split at every byte boundary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp_data.h"

struct sinkbuf {
	char data[4096];
	size_t len;
};

static int
sink(const char *p, size_t n, void *arg)
{
	struct sinkbuf *b = arg;
	if (b->len + n > sizeof(b->data))
		return -1;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

struct data_case {
	const char *name;
	const char *in;
	int end_at;         /* bytes consumed at the end (-1: no end) */
	const char *out;    /* decoded message when ok */
	unsigned flags;     /* expected flags (without 8BIT) */
	size_t size_max, line_max;
	size_t in_len, out_len; /* 0: strlen (set for inputs with NUL bytes) */
};

/* clang-format off */
static const struct data_case cases[] = {
	{"simple", "Subject: x\r\n\r\nbody\r\n.\r\n", 23, "Subject: x\r\n\r\nbody\r\n", 0, 1000, 1000},
	{"empty message", ".\r\n", 3, "", 0, 1000, 1000},
	{"pipelined rest", "a\r\n.\r\nQUIT\r\n", 6, "a\r\n", 0, 1000, 1000},
	{"dot unstuffing", "..leading\r\n...two\r\n.\r\n", 22, ".leading\r\n..two\r\n", 0, 1000, 1000},
	{"dot inside line", "a.b\r\n .x\r\n.\r\n", 13, "a.b\r\n .x\r\n", 0, 1000, 1000},
	{"no end yet", "abc\r\n", -1, NULL, 0, 1000, 1000},
	{"dot then CRLF not at BOL", "a.\r\n.\r\n", 7, "a.\r\n", 0, 1000, 1000},
	/* smuggling: none of these end the message */
	{"LF.LF", "a\n.\nMAIL FROM:<x>\r\n.\r\n", 22, NULL, SMTP_DATA_BARE_LF, 1000, 1000},
	{"LF.CRLF", "a\n.\r\nRCPT TO:<y>\r\n.\r\n", 21, NULL, SMTP_DATA_BARE_LF, 1000, 1000},
	{"CRLF.LF", "a\r\n.\nb\r\n.\r\n", 11, NULL, SMTP_DATA_BARE_LF, 1000, 1000},
	{"CR.CR", "a\r.\rb\r\n.\r\n", 10, NULL, SMTP_DATA_BARE_CR, 1000, 1000},
	{"CR.CRLF", "a\r.\r\nb\r\n.\r\n", 11, NULL, SMTP_DATA_BARE_CR, 1000, 1000},
	{"bare CR in text", "a\rb\r\n.\r\n", 8, NULL, SMTP_DATA_BARE_CR, 1000, 1000},
	{"bare LF in text", "a\nb\r\n.\r\n", 8, NULL, SMTP_DATA_BARE_LF, 1000, 1000},
	{"dot CR x", "x\r\n.\rQ\r\n.\r\n", 11, NULL, SMTP_DATA_BARE_CR, 1000, 1000},
	/* limits */
	{"too big", "0123456789\r\n.\r\n", 15, NULL, SMTP_DATA_TOO_BIG, 8, 1000},
	{"size exactly", "0123456789\r\n.\r\n", 15, "0123456789\r\n", 0, 12, 1000},
	{"line too long", "0123456789\r\nabc\r\n.\r\n", 20, NULL, SMTP_DATA_LINE_LONG, 1000, 11},
	{"line at limit", "0123456789\r\n.\r\n", 15, "0123456789\r\n", 0, 1000, 12},
	{"NUL passes", "a\0b\r\n.\r\n", 8, "a\0b\r\n", 0, 1000, 1000, 8, 5},
};
/* clang-format on */

static void
run_case(const struct data_case *c, size_t split)
{
	struct sinkbuf b = {.len = 0};
	struct smtp_data d;
	smtp_data_init(&d, c->size_max, c->line_max, sink, &b);
	size_t inlen = c->in_len ? c->in_len : strlen(c->in);
	size_t off = 0;
	bool end = false;
	size_t used = 0;
	while (off < inlen && !end) {
		size_t n = split ? split : inlen;
		if (n > inlen - off)
			n = inlen - off;
		end = smtp_data_feed(&d, c->in + off, n, &used);
		off += used;
	}
	if (c->end_at < 0) {
		if (end)
			fail_msg("%s (split %zu): ended early", c->name, split);
		return;
	}
	if (!end)
		fail_msg("%s (split %zu): no end", c->name, split);
	if (off != (size_t)c->end_at)
		fail_msg("%s (split %zu): end at %zu, want %d", c->name, split, off, c->end_at);
	unsigned flags = d.flags & ~(unsigned)SMTP_DATA_8BIT;
	if (flags != c->flags)
		fail_msg("%s (split %zu): flags %#x, want %#x", c->name, split, flags, c->flags);
	if (c->out != NULL) {
		size_t ol = c->out_len ? c->out_len : strlen(c->out);
		if (b.len != ol || memcmp(b.data, c->out, ol) != 0)
			fail_msg("%s (split %zu): output \"%.*s\"", c->name, split, (int)b.len, b.data);
		assert_true(smtp_data_ok(&d));
	} else {
		assert_false(smtp_data_ok(&d));
	}
}

static void
test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		for (size_t split = 0; split <= 4; split++)
			run_case(&cases[i], split);
}

/* A long stream of random bytes never crashes and never ends without
 * CRLF.CRLF. */
static void
test_fuzz(void **state)
{
	(void)state;
	uint32_t x = 12345;
	char buf[8192];
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < sizeof(buf); i++) {
			x = x * 1103515245 + 12345;
			static const char alphabet[] = "\r\n.a\0\xff";
			buf[i] = alphabet[(x >> 16) % 6];
		}
		struct sinkbuf b = {.len = 0};
		struct smtp_data d;
		smtp_data_init(&d, 4096, 100, sink, &b);
		size_t used, off = 0, start = 0;
		while (off < sizeof(buf)) {
			size_t step = 1 + (x >> 8) % 700; /* random chunking */
			if (step > sizeof(buf) - off)
				step = sizeof(buf) - off;
			if (smtp_data_feed(&d, buf + off, step, &used)) {
				/* the end is ".\r\n" at the start of a message or after CRLF */
				size_t e = off + used;
				assert_true(e >= start + 3);
				assert_memory_equal(buf + e - 3, ".\r\n", 3);
				assert_true(e - 3 == start || (buf[e - 4] == '\n' && buf[e - 5] == '\r'));
				smtp_data_init(&d, 4096, 100, sink, &b);
				b.len = 0;
				start = e;
			}
			off += used;
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_fuzz),
	};
	return cmocka_run_group_tests_name("smtp_data", tests, NULL, NULL);
}
