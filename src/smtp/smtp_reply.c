/* SPDX-License-Identifier: MIT */
#include "smtp_reply.h"

#include "log.h"

/* clang-format off */
static const struct smtp_reply smtp_replies[REPLY__COUNT] = {
	[REPLY_OK]               = {250, "2.0.0", "Ok"},
	[REPLY_DATA_GO]          = {354, NULL,    "End data with <CR><LF>.<CR><LF>"},
	[REPLY_QUIT]             = {221, "2.0.0", "Bye"},
	[REPLY_VRFY]             = {252, "2.5.2", "Cannot VRFY user, but will accept message and attempt delivery"},
	[REPLY_HELP]             = {214, "2.0.0", "See RFC 5321; commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS"},
	[REPLY_RSET]             = {250, "2.0.0", "Ok"},
	[REPLY_NOOP]             = {250, "2.0.0", "Ok"},
	[REPLY_TLS_GO]           = {220, "2.0.0", "Ready to start TLS"},
	[REPLY_SENDER_OK]        = {250, "2.1.0", "Sender ok"},
	[REPLY_RCPT_OK]          = {250, "2.1.5", "Recipient ok"},

	[REPLY_SHUTDOWN]         = {421, "4.3.2", "Service shutting down, closing connection"},
	[REPLY_TIMEOUT]          = {421, "4.4.2", "Timeout exceeded, closing connection"},
	[REPLY_TOO_MANY_CONN]    = {421, "4.7.0", "Too many connections, try again later"},
	[REPLY_TOO_MANY_CONN_IP] = {421, "4.7.0", "Too many connections from your address, try again later"},
	[REPLY_TOO_MANY_ERRORS]  = {421, "4.7.0", "Too many errors, closing connection"},
	[REPLY_HARVEST]          = {421, "4.7.1", "Too many unknown recipients, closing connection"},
	[REPLY_LOOKUP_TEMPFAIL]  = {451, "4.4.3", "Recipient directory unavailable, try again later"},
	[REPLY_DOWNSTREAM_TEMPFAIL] = {451, "4.4.1", "Mailbox server unavailable, try again later"},
	[REPLY_LOCAL_ERROR]      = {451, "4.3.0", "Local error in processing, try again later"},
	[REPLY_TOO_MANY_RCPTS]   = {452, "4.5.3", "Too many recipients"},
	[REPLY_TLS_UNAVAILABLE]  = {454, "4.7.0", "TLS not available"},
	[REPLY_STORAGE]          = {452, "4.3.1", "Insufficient system storage"},

	[REPLY_LINE_TOO_LONG]    = {500, "5.5.2", "Line too long"},
	[REPLY_UNKNOWN_CMD]      = {500, "5.5.1", "Command unrecognized"},
	[REPLY_SYNTAX]           = {501, "5.5.4", "Syntax error in parameters or arguments"},
	[REPLY_BAD_SEQUENCE]     = {503, "5.5.1", "Bad sequence of commands"},
	[REPLY_NEED_HELO]        = {503, "5.5.1", "Send HELO or EHLO first"},
	[REPLY_NESTED_MAIL]      = {503, "5.5.1", "Sender already specified"},
	[REPLY_NEED_MAIL]        = {503, "5.5.1", "Need MAIL before RCPT"},
	[REPLY_NEED_RCPT]        = {554, "5.5.1", "No valid recipients"},
	[REPLY_HELO_SYNTAX]      = {501, "5.5.4", "HELO/EHLO requires a domain or address literal"},
	[REPLY_SENDER_SYNTAX]    = {501, "5.1.7", "Bad sender address syntax"},
	[REPLY_RCPT_SYNTAX]      = {501, "5.1.3", "Bad recipient address syntax"},
	[REPLY_PARAM_SYNTAX]     = {501, "5.5.4", "Malformed parameters"},
	[REPLY_PARAM_UNKNOWN]    = {555, "5.5.4", "Unsupported parameter"},
	[REPLY_NON_ASCII]        = {553, "5.6.7", "Non-ASCII address requires SMTPUTF8"},
	[REPLY_RELAY_DENIED]     = {554, "5.7.1", "Relay access denied"},
	[REPLY_ROUTING_DENIED]   = {554, "5.7.1", "Relay access denied: routing characters in address"},
	[REPLY_UNKNOWN_USER]     = {550, "5.1.1", "Recipient address rejected: user unknown"},
	[REPLY_MSG_TOO_BIG]      = {552, "5.3.4", "Message size exceeds fixed limit"},
	[REPLY_SIZE_TOO_BIG]     = {552, "5.3.4", "Message size exceeds fixed limit"},
	[REPLY_MSG_LINE_TOO_LONG] = {554, "5.6.0", "Message rejected: a line exceeds the length limit"},
	[REPLY_BARE_LF]          = {554, "5.6.0", "Message rejected: bare CR or LF in DATA (only CRLF ends a line)"},
	[REPLY_PREGREET]         = {554, "5.5.1", "Protocol error: client talked before the greeting"},
	[REPLY_NOT_IMPLEMENTED]  = {502, "5.5.1", "Command not implemented"},
	[REPLY_EXPN_DISABLED]    = {502, "5.5.1", "EXPN is disabled"},
	[REPLY_TLS_ACTIVE]       = {503, "5.5.1", "TLS already active"},
};
/* clang-format on */

const struct smtp_reply *
smtp_reply_get(enum smtp_reply_id id)
{
	mx_assert((unsigned)id < REPLY__COUNT && smtp_replies[id].code != 0);
	return &smtp_replies[id];
}

enum smtp_reply_id
smtp_reply_for_lookup(enum mx_lookup r)
{
	switch (r) {
	case MX_FOUND:
		return REPLY_RCPT_OK;
	case MX_NOTFOUND:
		return REPLY_UNKNOWN_USER;
	case MX_TEMPFAIL:
	case MX_PENDING:
		break;
	}
	return REPLY_LOOKUP_TEMPFAIL;
}
