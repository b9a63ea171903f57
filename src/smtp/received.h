/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	received - the Received: trace header (RFC 5321 4.4, RFC 3848)
 */
#ifndef MX_RECEIVED_H
#define MX_RECEIVED_H

#include <stdbool.h>
#include <time.h>

struct received_info {
	const char *helo;      /* as the client gave it; escaped here */
	const char *client_ip; /* numeric */
	const char *by;        /* our hostname */
	const char *id;        /* message id */
	const char *for_rcpt;  /* the recipient when there is exactly one, else NULL */
	bool esmtp, tls, utf8;
	const char *tls_version; /* "TLSv1.3" or NULL */
	const char *tls_cipher;
	time_t when;
};

/* Returns a new "Received: ...\r\n" string, folded under 78 columns. */
char *received_build(const struct received_info *ri);
/* RFC 5322 date-time, "Sat, 28 Nov 2026 12:00:00 +0000". */
void received_date(time_t t, char *buf, size_t len);

#endif
