/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	envelope - one mail transaction: sender, recipients, trace, body
 * DESCRIPTION
 *	Built by the server from MAIL, RCPT and DATA; read by filters and by
 *	delivery.  Owns its recipients, its Received: header and its body.
 */
#ifndef MX_ENVELOPE_H
#define MX_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "smtp_parse.h"

struct blob;

struct envelope_rcpt {
	char addr[SMTP_PATH_MAX + 1]; /* as it goes downstream */
	int code;                     /* downstream's reply code, 0 until known */
	char reply[160];              /* "550 5.1.1 text" for this recipient */
};

struct envelope {
	char id[40];                       /* message id for logs and Received: */
	char mail_from[SMTP_PATH_MAX + 1]; /* "" for the null sender <> */
	struct smtp_mail_params params;
	struct envelope_rcpt *rcpt;
	size_t n_rcpt, cap_rcpt;
	char *received; /* "Received: ...\r\n", prepended on relay */
	char *headers;  /* sent after received, in place of body[0..body_skip) */
	size_t headers_len; /* its length: a header block may hold a NUL */
	size_t body_skip;
	struct blob *body;
	bool body_8bit; /* a byte >= 0x80 was seen in the body */
	char client_ip[64];
	char helo[SMTP_DOMAIN_MAX + 1];
	bool tls;
	time_t arrival;
};

void envelope_init(struct envelope *e);
/* Frees recipients, trace header and body; the struct can be reused. */
void envelope_clear(struct envelope *e);
void envelope_add_rcpt(struct envelope *e, const char *addr);
/* True if addr is already a recipient (duplicates are accepted once). */
bool envelope_has_rcpt(const struct envelope *e, const char *addr);
/* Replaces the first skip bytes of the body by headers on the way out
 * (takes headers). */
void envelope_set_headers(struct envelope *e, char *headers, size_t len, size_t skip);
/* Size of what goes downstream: Received:, headers, body. */
size_t envelope_size(const struct envelope *e);

#endif
