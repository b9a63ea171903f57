/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the DATA decoder.  The first input byte picks the
 * limits and how the rest is cut into socket reads; the same bytes fed in
 * one piece and in pieces must give the same message, the same flags and
 * the same end, because a client decides where its TCP segments end (when
 * a limit is hit, only that one was: the message is refused).
 * Also checked: the output never exceeds size_max, and a complete message
 * that may be relayed (no flag but 8BIT) ends in CRLF.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct out {
	char *p;
	size_t n, cap;
};

static int
sink(const char *p, size_t n, void *arg)
{
	struct out *o = arg;
	if (o->n + n > o->cap) {
		o->cap = (o->n + n) * 2 + 16;
		o->p = realloc(o->p, o->cap);
		if (o->p == NULL)
			abort();
	}
	memcpy(o->p + o->n, p, n);
	o->n += n;
	return 0;
}

static bool
run(const char *p, size_t n, size_t size_max, size_t line_max, unsigned seed, struct out *o,
    unsigned *flags, size_t *end)
{
	struct smtp_data d;
	smtp_data_init(&d, size_max, line_max, sink, o);
	size_t off = 0;
	while (off < n) {
		size_t chunk = n - off;
		if (seed != 0) {
			seed = seed * 1103515245u + 12345u;
			chunk = 1 + (seed >> 16) % 7;
			if (chunk > n - off)
				chunk = n - off;
		}
		/* each read in a buffer of its own: no peeking at the next */
		char *b = malloc(chunk);
		memcpy(b, p + off, chunk);
		size_t used = 0;
		bool done = smtp_data_feed(&d, b, chunk, &used);
		free(b);
		if (done) {
			if (used > chunk)
				abort();
			*flags = d.flags;
			*end = off + used;
			return true;
		}
		off += chunk;
	}
	*flags = d.flags;
	*end = n;
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned sel = data[0];
	const char *p = (const char *)data + 1;
	size_t n = size - 1;
	size_t size_max = (sel & 3) == 0 ? 1u << 20 : 16 + (sel & 3) * 40;
	size_t line_max = (sel & 4) ? 1000 : 20;

	struct out a = { 0 }, b = { 0 };
	unsigned fa, fb;
	size_t ea, eb;
	bool da = run(p, n, size_max, line_max, 0, &a, &fa, &ea);
	bool db = run(p, n, size_max, line_max, sel | 1u, &b, &fb, &eb);
	/* a limit stops the output where it was hit, which depends on the
	 * cuts; the message is refused either way, and by both */
	const unsigned lim = SMTP_DATA_TOO_BIG | SMTP_DATA_LINE_LONG;
	if (da != db || ea != eb || (fa & ~lim) != (fb & ~lim) || !(fa & lim) != !(fb & lim))
		abort();
	if (!(fa & lim) && (a.n != b.n || (a.n && memcmp(a.p, b.p, a.n) != 0)))
		abort();
	if (a.n > size_max)
		abort();
	if (da && (fa & ~(unsigned)SMTP_DATA_8BIT) == 0 && a.n > 0 &&
	    (a.n < 2 || a.p[a.n - 2] != '\r' || a.p[a.n - 1] != '\n'))
		abort();
	free(a.p);
	free(b.p);
	return 0;
}
