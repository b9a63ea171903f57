/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	smtp_parse - SMTP command lines, paths and ESMTP parameters
 * DESCRIPTION
 *	Pure functions over a command line already cut at CRLF (no sockets).
 *	Paths are parsed strictly enough to refuse the routing tricks that turn
 *	a gateway into an open relay: source routes (<@a:b@c>), the percent
 *	hack (user%other@ours), bang paths (other!user@ours) and quoted local
 *	parts that hide them ("user@other"@ours); plus control characters,
 *	over-long parts and non-ASCII without SMTPUTF8.
 * LIMITS
 *	RFC 5321 4.5.3.1: local part 64, domain 255, path 256 octets.
 */
#ifndef MX_SMTP_PARSE_H
#define MX_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_LINE_MAX 512 /* command line including CRLF */
#define SMTP_LOCAL_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_PATH_MAX 256

enum smtp_verb {
	SMTP_VERB_UNKNOWN = 0,
	SMTP_VERB_HELO,
	SMTP_VERB_EHLO,
	SMTP_VERB_MAIL,
	SMTP_VERB_RCPT,
	SMTP_VERB_DATA,
	SMTP_VERB_RSET,
	SMTP_VERB_NOOP,
	SMTP_VERB_QUIT,
	SMTP_VERB_VRFY,
	SMTP_VERB_EXPN,
	SMTP_VERB_HELP,
	SMTP_VERB_STARTTLS,
	SMTP_VERB_AUTH,
	SMTP_VERB_BDAT,
	SMTP_VERB__COUNT
};

struct smtp_cmd {
	enum smtp_verb verb;
	const char *arg; /* after the verb and one space; not NUL-terminated */
	size_t arg_len;
};

/* Splits a command line (without CRLF) into verb and argument. */
void smtp_parse_command(const char *line, size_t len, struct smtp_cmd *out);
const char *smtp_verb_name(enum smtp_verb v);

enum smtp_addr_err {
	SMTP_ADDR_OK = 0,
	SMTP_ADDR_SYNTAX,    /* malformed */
	SMTP_ADDR_EMPTY,     /* <> where a mailbox is needed */
	SMTP_ADDR_TOO_LONG,  /* over an RFC 5321 length limit */
	SMTP_ADDR_CONTROL,   /* control character or NUL */
	SMTP_ADDR_ROUTE,     /* source route <@a:user@b> */
	SMTP_ADDR_PERCENT,   /* % in the local part */
	SMTP_ADDR_BANG,      /* ! in the local part */
	SMTP_ADDR_HIDDEN_AT, /* quoted local part hiding @, % or ! */
	SMTP_ADDR_UTF8,      /* non-ASCII without SMTPUTF8, or invalid UTF-8 */
};

/* flags for smtp_parse_path */
#define SMTP_PATH_NULL_OK 0x1    /* <> allowed (MAIL FROM) */
#define SMTP_PATH_UTF8_OK 0x2    /* SMTPUTF8 given: UTF-8 allowed */
#define SMTP_PATH_ROUTING 0x4    /* refuse %, ! and hidden @ (RCPT TO) */
#define SMTP_PATH_POSTMASTER 0x8 /* bare <postmaster> allowed (RCPT TO) */

struct smtp_addr {
	char local[SMTP_LOCAL_MAX + 1];   /* canonical: unquoted when quoting was needless */
	char domain[SMTP_DOMAIN_MAX + 1]; /* lowercased; a U-label domain in
	                                     its A-label (xn--) form */
	char addr[SMTP_PATH_MAX + 1];     /* local@domain, canonical; "" for <> */
	bool null;                        /* <> */
	bool quoted;                      /* local part still needs quotes */
	bool literal;                     /* domain is an address literal [..] */
	bool utf8;                        /* contains non-ASCII */
	bool postmaster;                  /* bare <postmaster>, domain empty */
};

/*
 * Parses a reverse- or forward-path at s (what follows "FROM:" or "TO:").
 * On success *rest points past the path to the ESMTP parameters (leading
 * spaces skipped).  Angle brackets may be omitted when the address has no
 * spaces, as Postfix allows.
 */
enum smtp_addr_err smtp_parse_path(const char *s, size_t len, unsigned flags,
                                   struct smtp_addr *out, const char **rest, size_t *rest_len);
const char *smtp_addr_err_str(enum smtp_addr_err e);

/* ESMTP parameters of MAIL FROM. */
struct smtp_mail_params {
	unsigned long long size; /* 0 if not given */
	bool body_8bit;          /* BODY=8BITMIME */
	bool smtputf8;           /* SMTPUTF8 */
};

enum smtp_param_err {
	SMTP_PARAM_OK = 0,
	SMTP_PARAM_SYNTAX,  /* malformed keyword=value */
	SMTP_PARAM_UNKNOWN, /* not an extension we offered */
	SMTP_PARAM_VALUE,   /* bad value (SIZE=abc, BODY=foo) */
};

/* Parses "SIZE=123 BODY=8BITMIME SMTPUTF8". On error *bad names the word. */
enum smtp_param_err smtp_parse_mail_params(const char *s, size_t len, struct smtp_mail_params *out,
                                           char *bad, size_t badlen);
/* RCPT TO takes no parameters (no DSN offered); anything is UNKNOWN. */
enum smtp_param_err smtp_parse_rcpt_params(const char *s, size_t len, char *bad, size_t badlen);

/* HELO/EHLO argument: a domain or address literal, printable, <= 255. */
bool smtp_helo_valid(const char *s, size_t len);

#endif
