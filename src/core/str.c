/* SPDX-License-Identifier: MIT */
#include "str.h"

#include <limits.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

int
mx_strlcpy(char *dst, const char *src, size_t dstlen)
{
	return mx_strlcpyn(dst, src, strlen(src), dstlen);
}

int
mx_strlcpyn(char *dst, const char *src, size_t srclen, size_t dstlen)
{
	if (dstlen == 0)
		return -1;
	size_t n = srclen < dstlen - 1 ? srclen : dstlen - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return n == srclen ? 0 : -1;
}

void
mx_str_lower(char *s)
{
	for (; *s; s++)
		*s = mx_tolower(*s);
}

bool
mx_str_caseeq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (mx_tolower(*a) != mx_tolower(*b))
			return false;
	return *a == *b;
}

bool
mx_str_caseprefix(const char *s, size_t len, const char *prefix)
{
	size_t pl = strlen(prefix);
	if (len < pl)
		return false;
	for (size_t i = 0; i < pl; i++)
		if (mx_tolower(s[i]) != mx_tolower(prefix[i]))
			return false;
	return true;
}

const char *
mx_memmem2(const char *h, size_t n, const char *needle, size_t m)
{
	size_t i = 0;
	if (m < 2 || n < m)
		return m == 0 ? h : (m == 1 ? memchr(h, needle[0], n) : NULL);
#if defined(__SSE2__)
	const __m128i c0 = _mm_set1_epi8(needle[0]), c1 = _mm_set1_epi8(needle[1]);
	for (; i + 17 <= n; i += 16) {
		__m128i a = _mm_loadu_si128((const __m128i *)(const void *)(h + i));
		__m128i b = _mm_loadu_si128((const __m128i *)(const void *)(h + i + 1));
		unsigned mask = (unsigned)_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, c0), _mm_cmpeq_epi8(b, c1)));
		for (; mask != 0; mask &= mask - 1) {
			size_t at = i + (size_t)__builtin_ctz(mask);
			if (at + m <= n && memcmp(h + at, needle, m) == 0)
				return h + at;
		}
	}
#endif
	for (; i + m <= n; i++)
		if (h[i] == needle[0] && memcmp(h + i, needle, m) == 0)
			return h + i;
	return NULL;
}

bool
mx_str_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

bool
mx_str_casesuffix(const char *s, const char *suffix)
{
	size_t sl = strlen(s), xl = strlen(suffix);
	if (xl > sl)
		return false;
	return mx_str_caseeq(s + sl - xl, suffix);
}

int
mx_parse_u64(const char *s, size_t len, unsigned long long *out)
{
	if (len == 0 || len > 20)
		return -1;
	unsigned long long v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (ULLONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

size_t
mx_header_block_len(const char *p, size_t n)
{
	if (n >= 2 && p[0] == '\r' && p[1] == '\n')
		return 2;
	const char *end = memmem(p, n, "\r\n\r\n", 4);
	return end != NULL ? (size_t)(end - p) + 4 : 0;
}

size_t
mx_utf8_seq(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	if (len == 0)
		return 0;
	unsigned c = *p;
	if (c < 0x80)
		return 1;
	size_t n;
	unsigned cp, min;
	if ((c & 0xe0) == 0xc0) {
		n = 1, cp = c & 0x1f, min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		n = 2, cp = c & 0x0f, min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		n = 3, cp = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (len <= n)
		return 0;
	for (size_t i = 1; i <= n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n + 1;
}

bool
mx_utf8_valid(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		size_t k = mx_utf8_seq(s + i, len - i);
		if (k == 0)
			return false;
		i += k;
	}
	return true;
}
