/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	smtp_data - the DATA decoder: end detection, dot-unstuffing, limits
 * DESCRIPTION
 *	States: BOL (at the start of a line, after CRLF), TEXT, CR (a CR in
 *	text), DOT (a '.' at BOL), DOTCR (".\r" at BOL).  Text runs between
 *	CR/LF are found with memchr-free scanning and handed to the sink as
 *	one piece, so a 5 KB message costs a handful of sink calls.
 */
#include "smtp_data.h"

#include <string.h>

enum { ST_BOL, ST_TEXT, ST_CR, ST_DOT, ST_DOTCR };

void
smtp_data_init(struct smtp_data *d, size_t size_max, size_t line_max, smtp_data_sink_cb sink,
               void *arg)
{
	memset(d, 0, sizeof(*d));
	d->state = ST_BOL;
	d->size_max = size_max;
	d->line_max = line_max;
	d->sink = sink;
	d->sink_arg = arg;
}

bool
smtp_data_ok(const struct smtp_data *d)
{
	return (d->flags & ~(unsigned)SMTP_DATA_8BIT) == 0;
}

static void
smtp_data_emit(struct smtp_data *d, const char *p, size_t n)
{
	if (n == 0 || (d->flags & (SMTP_DATA_TOO_BIG | SMTP_DATA_SINK_ERR | SMTP_DATA_BARE_LF |
	                           SMTP_DATA_BARE_CR | SMTP_DATA_LINE_LONG)))
		return;
	if (d->size + n > d->size_max) {
		d->flags |= SMTP_DATA_TOO_BIG;
		return;
	}
	d->size += n;
	if (d->sink(p, n, d->sink_arg) < 0)
		d->flags |= SMTP_DATA_SINK_ERR;
}

/* Counts octets on the current line; CRLF counts as 2. */
static void
smtp_data_line(struct smtp_data *d, size_t n)
{
	d->line_len += n;
	if (d->line_len > d->longest_line)
		d->longest_line = d->line_len;
	if (d->line_len > d->line_max)
		d->flags |= SMTP_DATA_LINE_LONG;
}

bool
smtp_data_feed(struct smtp_data *d, const char *p, size_t n, size_t *used)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)p[i];
		switch (d->state) {
		case ST_BOL:
			d->line_len = 0;
			if (c == '.') {
				d->state = ST_DOT;
				smtp_data_line(d, 1);
				i++;
				continue;
			}
			d->state = ST_TEXT;
			/* fallthrough */
		case ST_TEXT: {
			size_t j = i;
			unsigned char hi = 0;
			while (j < n && p[j] != '\r' && p[j] != '\n')
				hi |= (unsigned char)p[j++];
			if (hi & 0x80)
				d->flags |= SMTP_DATA_8BIT;
			smtp_data_line(d, j - i);
			smtp_data_emit(d, p + i, j - i);
			i = j;
			if (i == n)
				break;
			if (p[i] == '\n') { /* bare LF: never a line end */
				d->flags |= SMTP_DATA_BARE_LF;
				smtp_data_line(d, 1);
				i++;
			} else {
				d->state = ST_CR;
				i++;
			}
			continue;
		}
		case ST_CR:
			if (c == '\n') {
				smtp_data_line(d, 2);
				smtp_data_emit(d, "\r\n", 2);
				d->state = ST_BOL;
				i++;
			} else { /* bare CR; c is text, handle it there */
				d->flags |= SMTP_DATA_BARE_CR;
				smtp_data_line(d, 1);
				d->state = ST_TEXT;
			}
			continue;
		case ST_DOT:
			if (c == '\r') {
				d->state = ST_DOTCR;
				i++;
			} else { /* a stuffed dot: dropped, the rest is text */
				d->state = ST_TEXT;
			}
			continue;
		case ST_DOTCR:
			if (c == '\n') {
				*used = i + 1;
				d->state = ST_BOL;
				return true;
			}
			/* ".\r" then something else: a bare CR after the dropped dot */
			d->flags |= SMTP_DATA_BARE_CR;
			smtp_data_line(d, 1);
			d->state = ST_TEXT;
			continue;
		}
	}
	*used = n;
	return false;
}
