/* SPDX-License-Identifier: MIT */
#include "url.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "idna.h"
#include "str.h"
#include "xalloc.h"

static int
url_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = mx_tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The length of "http:", "https:" or "ftp:" followed by any number of
 * slashes or backslashes (a browser takes "http:/\\host" and even
 * "http:host" for "http://host": WHATWG's special schemes ignore them),
 * or of a leading "//"; 0 for anything else. */
static size_t
url_scheme_len(const char *p, size_t n)
{
	size_t k;
	if (mx_str_caseprefix(p, n, "http:"))
		k = 5;
	else if (mx_str_caseprefix(p, n, "https:"))
		k = 6;
	else if (mx_str_caseprefix(p, n, "ftp:"))
		k = 4;
	else
		k = 0;
	size_t s = k;
	while (s < n && (p[s] == '/' || p[s] == '\\'))
		s++;
	if (k > 0)
		return s;
	return s >= 2 ? s : 0;
}

static bool url_host_clean(const char *url, size_t len, char host[URL_HOST_MAX + 1]);

bool
url_host(const char *url, size_t len, char host[URL_HOST_MAX + 1])
{
	/* a browser drops tabs and line ends anywhere in a link
	 * ("ht&#13;tp://evil.test" opens evil.test): in a copy as long as the
	 * link, so that what follows them is never cut off */
	if (!memchr(url, '\t', len) && !memchr(url, '\n', len) && !memchr(url, '\r', len))
		return url_host_clean(url, len, host);
	char small[1024] = {0};
	char *clean = len <= sizeof(small) ? small : xmalloc(len);
	size_t o = 0;
	for (size_t k = 0; k < len; k++)
		if (url[k] != '\t' && url[k] != '\n' && url[k] != '\r')
			clean[o++] = url[k];
	bool ok = url_host_clean(clean, o, host);
	if (clean != small)
		free(clean);
	return ok;
}

static bool
url_host_clean(const char *url, size_t len, char host[URL_HOST_MAX + 1])
{
	/* a browser trims spaces and control characters at both ends */
	size_t i = 0;
	while (i < len && (url[i] == ' ' || (unsigned char)url[i] < 0x20))
		i++;
	while (len > i && (url[len - 1] == ' ' || (unsigned char)url[len - 1] < 0x20))
		len--;
	const char *p = url + i;
	size_t n = len - i;
	size_t sl = url_scheme_len(p, n);
	if (sl > 0)
		p += sl, n -= sl;
	else if (!mx_str_caseprefix(p, n, "www."))
		return false;
	/* the authority ends at / ? # or \ (WHATWG): a quote, a space or a
	 * '<' before an '@' is the user name's, not the host's
	 * ("http://bank.test'@evil.test/" opens evil.test) */
	size_t a = 0;
	while (a < n && p[a] != '/' && p[a] != '?' && p[a] != '#' && p[a] != '\\')
		a++;
	const char *at = NULL;
	for (size_t k = 0; k < a; k++)
		if (p[k] == '@')
			at = p + k;
	if (at) { /* userinfo: the host is after the last @ */
		a -= (size_t)(at + 1 - p);
		p = at + 1;
	}
	size_t h = 0;
	if (a > 0 && p[0] == '[') {
		while (h < a && p[h] != ']')
			h++;
		if (h < a)
			h++;
	} else {
		while (h < a && p[h] != ':')
			h++;
	}
	/* percent-escapes decoded, as a browser does ("evil%2etest" is
	 * evil.test): a host spelled so cannot slip past a list */
	size_t o = 0;
	for (size_t k = 0; k < h; k++) {
		unsigned char c = (unsigned char)p[k];
		int hi, lo;
		if (c == '%' && k + 2 < h && (hi = url_hexval(p[k + 1])) >= 0 &&
		    (lo = url_hexval(p[k + 2])) >= 0) {
			c = (unsigned char)(hi << 4 | lo);
			k += 2;
			if (strchr("#%/:<>?@[\\]^|", c) != NULL)
				return false; /* a browser refuses such a host */
		}
		if (c < 0x21 || c == 0x7f || c == '<' || c == '>' || c == '^' || c == '|' ||
		    o >= URL_HOST_MAX)
			return false; /* what a browser refuses in a host */
		host[o++] = (char)c;
	}
	host[o] = '\0';
	return url_host_name(host, o, host);
}

/* A name IDNA2008 refuses as a whole (a label with a symbol such as ☃,
 * or one that breaks a hyphen rule) is still mapped by a browser (UTS #46
 * as WHATWG applies it, which refuses neither): each label is taken on
 * its own, so that "☃.ＥＶＩＬ.test" is ☃.evil.test, which a list entry
 * for evil.test catches, where the name as written would slip past it.
 * A label libidn2 refuses stays as written. False when a label maps to
 * what no host name has, or the result does not fit. */
static bool
url_host_labels(char host[URL_HOST_MAX + 1])
{
	char out[URL_HOST_MAX + 1], label[URL_HOST_MAX + 1], conv[URL_HOST_MAX + 1];
	size_t o = 0;
	for (const char *p = host;;) {
		const char *e = strchr(p, '.');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		memcpy(label, p, l);
		label[l] = '\0';
		enum mx_idna r = mx_idna_alabel(label, conv, sizeof(conv));
		if (r == MX_IDNA_FORBIDDEN)
			return false;
		const char *piece = r == MX_IDNA_CONVERTED ? conv : label;
		size_t pl = strlen(piece);
		if (o + pl + (e != NULL) > URL_HOST_MAX)
			return false;
		memcpy(out + o, piece, pl);
		o += pl;
		if (e == NULL)
			break;
		out[o++] = '.';
		p = e + 1;
	}
	out[o] = '\0';
	memcpy(host, out, o + 1);
	return true;
}

/* The name lower-cased, its IDNA dots as dots, trailing dots dropped,
 * and an internationalised name in its ASCII form. */
static bool
url_host_text(const char *name, size_t len, char host[URL_HOST_MAX + 1])
{
	/* lower case, and the dots IDNA maps to '.' even where the name is
	 * no valid IDN ("evil。test" opens evil.test: U+3002 ideographic,
	 * U+FF0E fullwidth, U+FF61 halfwidth) */
	size_t o = 0;
	bool wide = false;
	for (size_t k = 0; k < len; k++) {
		const unsigned char *u = (const unsigned char *)name + k;
		if (o >= URL_HOST_MAX)
			return false;
		if (k + 2 < len && ((u[0] == 0xe3 && u[1] == 0x80 && u[2] == 0x82) ||
		                    (u[0] == 0xef && u[1] == 0xbc && u[2] == 0x8e) ||
		                    (u[0] == 0xef && u[1] == 0xbd && u[2] == 0xa1))) {
			host[o++] = '.';
			k += 2;
		} else {
			wide |= u[0] >= 0x80;
			host[o++] = mx_tolower((char)u[0]);
		}
	}
	while (o > 0 && host[o - 1] == '.')
		o--;
	if (o == 0)
		return false;
	host[o] = '\0';
	if (!wide)
		return true;
	/* An internationalised name as a browser opens it: UTS #46
	 * mapping (fullwidth letters, capitals, ignored characters such as
	 * the soft hyphen and zero-width space), then its ASCII form
	 * ("exämple.test" is xn--exmple-cua.test, "ｅｖｉｌ.test" is
	 * evil.test). One whose mapping holds what no host name has
	 * ("evil.test／" is "evil.test/") is no host: a browser refuses it. */
	enum mx_idna r = mx_idna_alabel(host, host, URL_HOST_MAX + 1);
	if (r == MX_IDNA_FORBIDDEN || (r == MX_IDNA_REFUSED && !url_host_labels(host)))
		return false;
	o = strlen(host);
	while (o > 0 && host[o - 1] == '.')
		host[--o] = '\0';
	return o > 0;
}

/* One part of an IPv4 host as a browser reads it (WHATWG URL): decimal,
 * hexadecimal after "0x", octal after a leading 0. */
static bool
url_ipv4_part(const char *p, size_t l, uint64_t *out)
{
	if (l == 0)
		return false;
	unsigned radix = 10;
	if (l >= 2 && p[0] == '0' && p[1] == 'x')
		radix = 16, p += 2, l -= 2;
	else if (l >= 2 && p[0] == '0')
		radix = 8, p += 1, l -= 1;
	uint64_t v = 0;
	for (size_t i = 0; i < l; i++) {
		int d = url_hexval(p[i]);
		if (d < 0 || (unsigned)d >= radix)
			return false;
		v = v * radix + (unsigned)d;
		if (v > 0xffffffffull)
			return false;
	}
	*out = v;
	return true;
}

/* A host whose last label is a number is an IPv4 address to a browser:
 * "0x7f.1", "2130706433" and "0177.0.0.01" all open 127.0.0.1. Such a
 * host is rewritten in dotted decimal, so that a list entry catches every
 * spelling of its address; one a browser would refuse stays as written. */
static void
url_host_ipv4(char *host)
{
	const char *dot = strrchr(host, '.'), *last = dot ? dot + 1 : host;
	uint64_t v;
	bool digits = last[0] != '\0' && strspn(last, "0123456789") == strlen(last);
	if (!digits && !(last[0] == '0' && last[1] == 'x' && url_ipv4_part(last, strlen(last), &v)))
		return;
	uint64_t part[4];
	size_t np = 0;
	for (const char *p = host;; p++) {
		const char *e = strchr(p, '.');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (np == 4 || !url_ipv4_part(p, l, &part[np]))
			return;
		np++;
		if (e == NULL)
			break;
		p = e;
	}
	v = part[np - 1];
	if (v >> (8 * (5 - np)) != 0)
		return;
	for (size_t i = 0; i + 1 < np; i++) {
		if (part[i] > 255)
			return;
		v += part[i] << (8 * (3 - i));
	}
	snprintf(host, URL_HOST_MAX + 1, "%u.%u.%u.%u", (unsigned)(v >> 24), (unsigned)(v >> 16 & 255),
	         (unsigned)(v >> 8 & 255), (unsigned)(v & 255));
}

/* "[2001:DB8:0::1]" as "[2001:db8::1]": one spelling of an IPv6 address. */
static void
url_host_ipv6(char *host)
{
	size_t n = strlen(host);
	char in[URL_HOST_MAX + 1], out[INET6_ADDRSTRLEN];
	unsigned char a[16];
	if (n < 3 || host[0] != '[' || host[n - 1] != ']')
		return;
	memcpy(in, host + 1, n - 2);
	in[n - 2] = '\0';
	if (inet_pton(AF_INET6, in, a) == 1 && inet_ntop(AF_INET6, a, out, sizeof(out)) != NULL)
		snprintf(host, URL_HOST_MAX + 1, "[%s]", out);
}

bool
url_host_name(const char *name, size_t len, char host[URL_HOST_MAX + 1])
{
	if (!url_host_text(name, len, host))
		return false;
	if (host[0] == '[')
		url_host_ipv6(host);
	else
		url_host_ipv4(host);
	return true;
}

/* The first i' >= i (i' + 4 < n) where a link may start: "ht" or "ww",
 * in either case; n if none. Sixteen positions at a time where SSE2 is
 * there (every x86-64): most text has no link, and this is the whole of
 * url_scan()'s time for it. */
static size_t
url_candidate(const char *text, size_t i, size_t n)
{
#if defined(__SSE2__)
	const __m128i lower = _mm_set1_epi8(0x20), h = _mm_set1_epi8('h'), t = _mm_set1_epi8('t'),
	              w = _mm_set1_epi8('w');
	for (; i + 16 + 1 <= n; i += 16) {
		__m128i a = _mm_or_si128(_mm_loadu_si128((const __m128i *)(const void *)(text + i)), lower);
		__m128i b = _mm_or_si128(_mm_loadu_si128((const __m128i *)(const void *)(text + i + 1)), lower);
		__m128i ht = _mm_and_si128(_mm_cmpeq_epi8(a, h), _mm_cmpeq_epi8(b, t));
		__m128i ww = _mm_and_si128(_mm_cmpeq_epi8(a, w), _mm_cmpeq_epi8(b, w));
		unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(ht, ww));
		if (m != 0) {
			i += (size_t)__builtin_ctz(m);
			return i + 4 < n ? i : n;
		}
	}
#endif
	for (; i + 4 < n; i++) {
		char c = text[i] | 0x20, c2 = text[i + 1] | 0x20;
		if ((c == 'h' && c2 == 't') || (c == 'w' && c2 == 'w'))
			return i;
	}
	return n;
}

void
url_scan(const char *text, size_t n, url_found_cb cb, void *arg)
{
	size_t i = 0;
	while (i + 4 < n) {
		i = url_candidate(text, i, n);
		if (i >= n)
			break;
		const char *best = text + i;
		size_t at = i, rest = n - i, skip = 0;
		if (mx_str_caseprefix(best, rest, "http://"))
			skip = 7;
		else if (mx_str_caseprefix(best, rest, "https://"))
			skip = 8;
		else if (mx_str_caseprefix(best, rest, "www.") &&
		         (at == 0 || !((text[at - 1] >= 'a' && text[at - 1] <= 'z') ||
		                       (text[at - 1] >= 'A' && text[at - 1] <= 'Z') || text[at - 1] == '.' ||
		                       text[at - 1] == '/')))
			skip = 4;
		if (skip == 0) {
			i++;
			continue;
		}
		size_t e = at + skip;
		/* "http://[2001:db8::1]/": the ']' that closes an IPv6 host
		 * (first in the authority, or after its user name) is the
		 * link's own; any other ends it ("[see http://x.test]") */
		bool v6 = e < n && text[e] == '[', auth = true;
		while (e < n) {
			unsigned char u = (unsigned char)text[e];
			if (u == '/' || u == '?' || u == '#')
				auth = false;
			else if (u == '[' && auth && text[e - 1] == '@')
				v6 = true;
			if (u == ']' && v6) {
				v6 = false;
				e++;
				continue;
			}
			if (u <= ' ' || u == '"' || u == '\'' || u == '<' || u == '>' || u == ')' || u == ']' ||
			    u == 0x7f)
				break;
			e++;
		}
		while (e > at + skip && (text[e - 1] == '.' || text[e - 1] == ',' || text[e - 1] == ';'))
			e--;
		if (e > at + skip)
			cb(best, e - at, arg);
		i = e > at ? e : at + 1;
	}
}
