/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	dsn - delivery status notifications (RFC 3464)
 * DESCRIPTION
 *	Builds the multipart/report a sender receives when some recipients
 *	of a queued message failed for good or the message expired: a human
 *	part, a message/delivery-status part with one block per failed
 *	recipient, and the original message's headers.
 */
#ifndef MX_DSN_H
#define MX_DSN_H

#include <stddef.h>
#include <time.h>

struct dsn_rcpt {
	const char *addr;
	const char *status;     /* "5.1.1" */
	const char *diagnostic; /* "550 5.1.1 No such user" or NULL */
};

struct dsn_info {
	const char *hostname;   /* Reporting-MTA */
	const char *sender;     /* the original sender, the DSN's recipient */
	const char *orig_id;
	time_t arrival;
	const char *reason;     /* one line for the human part */
	const struct dsn_rcpt *rcpts;
	size_t n_rcpts;
	const char *orig_headers; /* the original header block (may be NULL) */
	size_t orig_headers_len;
};

/* Returns the whole message (CRLF), caller frees. */
char *dsn_build(const struct dsn_info *d, time_t now);

#endif
