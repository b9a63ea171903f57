/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	str - bounded copies and ASCII helpers
 * DESCRIPTION
 *	mx_strlcpy reports truncation; callers treat it as an error.
 *	ASCII case helpers never depend on the locale.
 */
#ifndef MX_STR_H
#define MX_STR_H

#include <stdbool.h>
#include <stddef.h>

/* Copies at most dstlen-1 bytes and NUL-terminates. Returns -1 if src did
 * not fit (dst then holds a truncated copy), else 0. */
int mx_strlcpy(char *dst, const char *src, size_t dstlen);
/* Same with an explicit source length. */
int mx_strlcpyn(char *dst, const char *src, size_t srclen, size_t dstlen);

static inline char
mx_tolower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}
static inline char
mx_toupper(char c)
{
	return (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
}
void mx_str_lower(char *s);
bool mx_str_caseeq(const char *a, const char *b);
bool mx_str_caseprefix(const char *s, size_t len, const char *prefix);
/* The first occurrence of needle (m >= 2 bytes) in h[0..n), or NULL, as
 * memmem(); for needles whose first two bytes are rare together (">F",
 * "XJ"): sixteen positions are ruled out at a time where SSE2 is there,
 * where glibc's memmem took 2-3 % of a scan or a learn. */
const char *mx_memmem2(const char *h, size_t n, const char *needle, size_t m);
/* Is every byte of s ASCII (below 0x80)? */
bool mx_str_ascii(const char *s);
/* Case-insensitive suffix test: does s end in suffix? */
bool mx_str_casesuffix(const char *s, const char *suffix);
/* Parses a decimal unsigned number filling all of s; -1 on junk/overflow. */
int mx_parse_u64(const char *s, size_t len, unsigned long long *out);
/* Validates UTF-8 (no overlongs, no surrogates). */
bool mx_utf8_valid(const char *s, size_t len);
/* The length (1 to 4) of the valid UTF-8 character at s[0..len), or 0
 * when s starts with a byte that does not begin one (or len is 0). */
size_t mx_utf8_seq(const char *s, size_t len);
/* The length of the header block at the start of a CRLF message p[0..n),
 * with the empty line that ends it (2 when the block is empty), or 0 when
 * p has no empty line.  Any byte may occur, NUL too. */
size_t mx_header_block_len(const char *p, size_t n);

#endif
