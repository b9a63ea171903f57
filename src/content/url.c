/* SPDX-License-Identifier: MIT */
#include "url.h"

#include <string.h>

#include "str.h"

bool
url_host(const char *url, size_t len, char host[URL_HOST_MAX + 1])
{
	size_t i = 0;
	while (i < len && (url[i] == ' ' || url[i] == '\t'))
		i++;
	const char *p = url + i;
	size_t n = len - i;
	if (mx_str_caseprefix(p, n, "http://"))
		p += 7, n -= 7;
	else if (mx_str_caseprefix(p, n, "https://"))
		p += 8, n -= 8;
	else if (mx_str_caseprefix(p, n, "ftp://"))
		p += 6, n -= 6;
	else if (mx_str_caseprefix(p, n, "//"))
		p += 2, n -= 2;
	else if (!mx_str_caseprefix(p, n, "www."))
		return false;
	/* authority ends at / ? # or whitespace */
	size_t a = 0;
	while (a < n && p[a] != '/' && p[a] != '?' && p[a] != '#' && p[a] != '\\' && p[a] != ' ' &&
	       p[a] != '"' && p[a] != '\'' && p[a] != '>' && p[a] != '<')
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
	while (h > 0 && p[h - 1] == '.')
		h--;
	if (h == 0 || h > URL_HOST_MAX)
		return false;
	for (size_t k = 0; k < h; k++) {
		unsigned char c = (unsigned char)p[k];
		if (c < 0x21 || c == 0x7f)
			return false;
		host[k] = mx_tolower((char)c);
	}
	host[h] = '\0';
	return true;
}

void
url_scan(const char *text, size_t n, url_found_cb cb, void *arg)
{
	size_t i = 0;
	while (i + 4 < n) {
		char c = text[i] | 0x20, c2 = text[i + 1] | 0x20;
		if (!(c == 'h' && c2 == 't') && !(c == 'w' && c2 == 'w')) {
			i++; /* the common case, without a call */
			continue;
		}
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
		while (e < n) {
			unsigned char u = (unsigned char)text[e];
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
