/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	smtp_data - the DATA decoder: end detection, dot-unstuffing, limits
 * DESCRIPTION
 *	A byte-stream state machine fed with whatever the socket delivered.
 *	Only CRLF "." CRLF ends the message (RFC 5321 4.1.1.4); a bare LF or
 *	a bare CR anywhere is recorded (SMTP smuggling, CVE-2023-51764) and
 *	never treated as a line end.  Leading dots are removed as RFC 5321
 *	4.5.2 says.  The unstuffed message, with its CRLF line ends, goes to
 *	the sink callback in runs.
 *	After a limit is hit the decoder keeps reading to the real end of the
 *	message but stops emitting, so the client gets one reply, in sync.
 * LIMITS
 *	size_max bytes in all; line_max bytes in one line (CRLF included).
 */
#ifndef MX_SMTP_DATA_H
#define MX_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_DATA_BARE_LF 0x01
#define SMTP_DATA_BARE_CR 0x02
#define SMTP_DATA_TOO_BIG 0x04
#define SMTP_DATA_LINE_LONG 0x08
#define SMTP_DATA_SINK_ERR 0x10
#define SMTP_DATA_8BIT 0x20 /* a byte >= 0x80 was seen */

/* Receives decoded bytes; returns 0, or -1 to stop emitting (I/O error). */
typedef int (*smtp_data_sink_cb)(const char *p, size_t n, void *arg);

struct smtp_data {
	int state;
	unsigned flags;
	size_t line_len, line_max;
	size_t size, size_max; /* size counts decoded bytes */
	size_t longest_line;
	smtp_data_sink_cb sink;
	void *sink_arg;
};

void smtp_data_init(struct smtp_data *d, size_t size_max, size_t line_max,
                    smtp_data_sink_cb sink, void *arg);
/*
 * Feeds n bytes.  Returns true when the terminating CRLF.CRLF was found;
 * *used then says how many bytes belonged to the message (the rest is the
 * next command, pipelined).  Returns false when all n bytes were used.
 */
bool smtp_data_feed(struct smtp_data *d, const char *p, size_t n, size_t *used);
/* True when the message may be relayed (no flag other than 8BIT set). */
bool smtp_data_ok(const struct smtp_data *d);

#endif
