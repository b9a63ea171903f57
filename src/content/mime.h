/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	mime - what a message says: decoded headers, text, links, parts
 * DESCRIPTION
 *	mime_analyse() looks at most at a prefix of the message, walks its
 *	parts (depth and count capped) and, with GMime's decoders, decodes
 *	text/plain and text/html from base64 or quoted-printable, converts
 *	charsets to UTF-8 (invalid bytes become U+FFFD), reduces HTML to text
 *	keeping its links, and collects URLs and their hosts.  Hostile input
 *	(unterminated boundaries, deep nesting, huge header lines, broken
 *	base64, NUL bytes, wrong charsets) costs bounded time and memory and
 *	raises flags instead of failing.
 * LIMITS
 *	struct mime_limits; every output is capped.
 */
#ifndef MX_MIME_H
#define MX_MIME_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define MIME_F_TRUNCATED 0x001  /* only a prefix was analysed */
#define MIME_F_TOO_DEEP 0x002   /* parts nested deeper than max_depth */
#define MIME_F_TOO_MANY 0x004   /* more parts than max_parts */
#define MIME_F_TEXT_CUT 0x008   /* decoded text over max_text */
#define MIME_F_HTML 0x010       /* has an HTML part */
#define MIME_F_HTML_ONLY 0x020  /* HTML and no plain text */
#define MIME_F_CHARSET 0x040    /* an unknown charset */
#define MIME_F_MALFORMED 0x080  /* structural problems (unterminated multipart, ...) */
#define MIME_F_NUL 0x100        /* NUL bytes in text */
#define MIME_F_NO_PARSE 0x200   /* not a message at all */
#define MIME_F_BAD_UTF8 0x400   /* text that was not valid in its charset */
#define MIME_HOSTS_MAX 1000 /* distinct link hosts collected */
#define MIME_HDRS_KEEP 8    /* headers kept past max_headers: those the analysis needs */
#define MIME_F_DUP_CONTENT 0x1000 /* a part with two Content-Type or Content-Transfer-Encoding
                                   * headers (readers differ: GMime takes the last, Python the
                                   * first, as this analysis does) */
#define MIME_F_TOO_MANY_HEADERS 0x800 /* more headers than max_headers (those the
                                       * analysis needs are read all the same) */

struct mime_limits {
	size_t max_bytes;   /* prefix analysed */
	size_t max_depth;   /* nesting of multiparts and message/rfc822 */
	size_t max_parts;
	size_t max_text;    /* decoded text kept, bytes */
	size_t max_urls;
	size_t max_headers;
};

struct mime_header {
	char *name;      /* as written */
	char *value;     /* decoded (RFC 2047), UTF-8, unfolded */
	char *raw_value; /* as written, unfolded, not decoded (may hold any bytes but NUL) */
};

struct mime_part {
	char type[80]; /* "text/plain" */
	char cte[24];  /* Content-Transfer-Encoding, lowercase, "" when absent */
	char charset[40]; /* lowercase, "" when absent */
	char *filename;
	size_t size; /* encoded bytes in the prefix */
	bool attachment;
};

struct mime_msg {
	struct mime_header *hdrs;
	size_t n_hdrs;
	struct buf text;  /* all text parts, HTML reduced, UTF-8 */
	char **urls;      /* as found */
	size_t n_urls;
	char **hosts;     /* distinct hosts of urls, lowercase */
	size_t n_hosts;
	struct mime_part *parts;
	size_t n_parts;
	unsigned flags;
	const char *raw;   /* the analysed prefix (borrowed) */
	size_t raw_len;
	size_t header_len; /* raw[0..header_len) is the top-level header block */
};

void mime_limits_default(struct mime_limits *l);
/* Analyses data[0..len) (borrowed for out's lifetime). Always fills out. */
void mime_analyse(const char *data, size_t len, const struct mime_limits *lim, struct mime_msg *out);
void mime_msg_clear(struct mime_msg *m);
/* The first top-level header of that name (case-insensitive), or NULL. */
const char *mime_header(const struct mime_msg *m, const char *name);
/* RFC 2047 decoding of an unfolded header value, as UTF-8 (malloc'd; a
 * copy of s when it holds no encoded word). */
char *mime_decode_words(const char *s);
/* Calls cb with each address (addr-spec) of an address header's raw
 * value (From:, To:, ...), parsed by GMime as a mail reader would show
 * them: comments, display names, quotes, encoded words and groups
 * understood.  Returns how many. */
typedef void (*mime_addr_cb)(const char *addr, void *arg);
size_t mime_addresses(const char *raw, mime_addr_cb cb, void *arg);

#endif
