/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	smtp_reply - the table of named replies
 * DESCRIPTION
 *	Every reply mxguard writes on its own account is a row here: code,
 *	enhanced status code (RFC 3463), text.  Policy code refers to rows by
 *	name and never spells codes, so a reply is changed in one place.
 *	This is also the one place where MX_TEMPFAIL becomes 451 4.4.3.
 */
#ifndef MX_SMTP_REPLY_H
#define MX_SMTP_REPLY_H

#include "status.h"

enum smtp_reply_id {
	REPLY_OK,
	REPLY_DATA_GO,
	REPLY_QUIT,
	REPLY_VRFY,
	REPLY_HELP,
	REPLY_RSET,
	REPLY_NOOP,
	REPLY_TLS_GO,
	REPLY_SENDER_OK,
	REPLY_RCPT_OK,
	/* 4xx */
	REPLY_SHUTDOWN,
	REPLY_TIMEOUT,
	REPLY_TOO_MANY_CONN,
	REPLY_TOO_MANY_CONN_IP,
	REPLY_TOO_MANY_ERRORS,
	REPLY_HARVEST,
	REPLY_LOOKUP_TEMPFAIL,
	REPLY_DOWNSTREAM_TEMPFAIL,
	REPLY_LOCAL_ERROR,
	REPLY_TOO_MANY_RCPTS,
	REPLY_TLS_UNAVAILABLE,
	REPLY_STORAGE,
	/* 5xx */
	REPLY_LINE_TOO_LONG,
	REPLY_UNKNOWN_CMD,
	REPLY_SYNTAX,
	REPLY_BAD_SEQUENCE,
	REPLY_NEED_HELO,
	REPLY_NESTED_MAIL,
	REPLY_NEED_MAIL,
	REPLY_NEED_RCPT,
	REPLY_HELO_SYNTAX,
	REPLY_SENDER_SYNTAX,
	REPLY_RCPT_SYNTAX,
	REPLY_PARAM_SYNTAX,
	REPLY_PARAM_UNKNOWN,
	REPLY_NON_ASCII,
	REPLY_RELAY_DENIED,
	REPLY_ROUTING_DENIED,
	REPLY_UNKNOWN_USER,
	REPLY_MSG_TOO_BIG,
	REPLY_SIZE_TOO_BIG,
	REPLY_MSG_LINE_TOO_LONG,
	REPLY_BARE_LF,
	REPLY_PREGREET,
	REPLY_NOT_IMPLEMENTED,
	REPLY_EXPN_DISABLED,
	REPLY_TLS_ACTIVE,
	REPLY__COUNT
};

struct smtp_reply {
	int code;
	const char *enh; /* "5.1.1" */
	const char *text;
};

const struct smtp_reply *smtp_reply_get(enum smtp_reply_id id);
/* The reply for a recipient lookup answer (FOUND -> REPLY_RCPT_OK, ...). */
enum smtp_reply_id smtp_reply_for_lookup(enum mx_lookup r);

#endif
