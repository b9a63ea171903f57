/* SPDX-License-Identifier: MIT */
#include "html.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "str.h"

#define HTML_ATTR_MAX 2048

static const struct {
	const char *name;
	uint32_t cp;
} html_entities[] = {
	{"amp", '&'},    {"lt", '<'},      {"gt", '>'},     {"quot", '"'},    {"apos", '\''},
	{"nbsp", 0xa0},  {"copy", 0xa9},   {"reg", 0xae},   {"trade", 0x2122}, {"euro", 0x20ac},
	{"pound", 0xa3}, {"yen", 0xa5},    {"cent", 0xa2},  {"mdash", 0x2014}, {"ndash", 0x2013},
	{"hellip", 0x2026}, {"laquo", 0xab}, {"raquo", 0xbb}, {"middot", 0xb7}, {"bull", 0x2022},
	{"rsquo", 0x2019}, {"lsquo", 0x2018}, {"rdquo", 0x201d}, {"ldquo", 0x201c}, {"shy", 0},
	{"zwnj", 0},     {"zwj", 0},
};

static void
html_put_cp(struct buf *out, uint32_t cp)
{
	char u[4];
	size_t n;
	if (cp == 0)
		return;
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_append(out, u, n);
}

/* Decodes an entity at p ('&' already seen at p[-1]); returns bytes used. */
static size_t
html_entity(const char *p, size_t n, struct buf *out)
{
	size_t i = 0;
	if (n > 0 && p[0] == '#') {
		uint32_t cp = 0;
		bool hex = n > 1 && (p[1] == 'x' || p[1] == 'X');
		i = hex ? 2 : 1;
		size_t start = i;
		while (i < n && i < 10) {
			char c = p[i];
			int d = (c >= '0' && c <= '9') ? c - '0'
			        : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
			        : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
			if (d < 0)
				break;
			cp = cp * (hex ? 16 : 10) + (uint32_t)d;
			i++;
		}
		if (i == start) {
			buf_appendc(out, '&');
			return 0;
		}
		if (i < n && p[i] == ';')
			i++;
		html_put_cp(out, cp);
		return i;
	}
	while (i < n && i < 8 && ((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z')))
		i++;
	for (size_t e = 0; e < sizeof(html_entities) / sizeof(html_entities[0]); e++) {
		if (strlen(html_entities[e].name) == i && strncmp(p, html_entities[e].name, i) == 0) {
			if (i < n && p[i] == ';')
				i++;
			html_put_cp(out, html_entities[e].cp);
			return i;
		}
	}
	buf_appendc(out, '&');
	return 0;
}

static bool
html_is_block(const char *name, size_t len)
{
	static const struct {
		const char *name;
		size_t len;
	} blocks[] = {
		{"br", 2},    {"p", 1},      {"div", 3},        {"tr", 2},     {"td", 2},  {"th", 2},
		{"li", 2},    {"ul", 2},     {"ol", 2},         {"table", 5},  {"h1", 2},  {"h2", 2},
		{"h3", 2},    {"h4", 2},     {"h5", 2},         {"h6", 2},     {"hr", 2},  {"blockquote", 10},
		{"pre", 3},   {"title", 5},  {"center", 6},     {"form", 4},
	};
	for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++)
		if (blocks[i].len == len && mx_str_caseprefix(name, len, blocks[i].name))
			return true;
	return false;
}

/* Scans the attributes of one tag for href= and src=. */
static void
html_attrs(const char *p, size_t n, html_url_cb cb, void *arg)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n' || p[i] == '/'))
			i++;
		size_t ns = i;
		while (i < n && p[i] != '=' && p[i] != ' ' && p[i] != '\t' && p[i] != '\r' &&
		       p[i] != '\n' && p[i] != '/')
			i++;
		size_t nl = i - ns;
		while (i < n && (p[i] == ' ' || p[i] == '\t'))
			i++;
		if (i >= n || p[i] != '=')
			continue;
		i++;
		while (i < n && (p[i] == ' ' || p[i] == '\t'))
			i++;
		size_t vs, vl;
		if (i < n && (p[i] == '"' || p[i] == '\'')) {
			char q = p[i++];
			vs = i;
			while (i < n && p[i] != q)
				i++;
			vl = i - vs;
			if (i < n)
				i++;
		} else {
			vs = i;
			while (i < n && p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
				i++;
			vl = i - vs;
		}
		bool url = (nl == 4 && mx_str_caseprefix(p + ns, 4, "href")) ||
		           (nl == 3 && mx_str_caseprefix(p + ns, 3, "src")) ||
		           (nl == 6 && mx_str_caseprefix(p + ns, 6, "action"));
		if (url && vl > 0 && cb != NULL) {
			/* entities decoded: "&#109;ailto:" is how links hide. A
			 * link longer than HTML_ATTR_MAX is decoded whole all the
			 * same: its host may come after a long user name */
			struct buf v;
			buf_init(&v, (vl > HTML_ATTR_MAX ? vl : HTML_ATTR_MAX) * 4);
			for (size_t k = 0; k < vl; k++) {
				if (p[vs + k] == '&')
					k += html_entity(p + vs + k + 1, vl - k - 1, &v);
				else
					buf_appendc(&v, p[vs + k]);
			}
			if (v.len > 0)
				cb(v.data, v.len, arg);
			buf_clear(&v);
		}
	}
}

void
html_to_text(const char *in, size_t n, struct buf *out, html_url_cb cb, void *arg)
{
	size_t i = 0;
	bool space = true; /* collapse whitespace runs */
	while (i < n && !out->truncated) {
		char c = in[i];
		if (c == '<') {
			if (i + 3 < n && in[i + 1] == '!' && in[i + 2] == '-' && in[i + 3] == '-') {
				const char *e = memmem(in + i + 4, n - i - 4, "-->", 3);
				i = e ? (size_t)(e - in) + 3 : n;
				continue;
			}
			size_t j = i + 1;
			bool closing = j < n && in[j] == '/';
			if (closing)
				j++;
			size_t ns = j;
			while (j < n && ((in[j] >= 'a' && in[j] <= 'z') || (in[j] >= 'A' && in[j] <= 'Z') ||
			                 (in[j] >= '0' && in[j] <= '9')))
				j++;
			size_t nl = j - ns;
			if (nl == 0 && !closing && (j >= n || in[j] != '!')) { /* a bare '<' */
				buf_appendc(out, '<');
				space = false;
				i++;
				continue;
			}
			const char *gt = memchr(in + j, '>', n - j);
			size_t end = gt ? (size_t)(gt - in) : n;
			if (!closing)
				html_attrs(in + j, end - j, cb, arg);
			i = end < n ? end + 1 : n;
			bool skip = (nl == 6 && mx_str_caseprefix(in + ns, 6, "script")) ||
			            (nl == 5 && mx_str_caseprefix(in + ns, 5, "style"));
			if (skip && !closing) {
				const char *close = NULL;
				for (size_t k = i; k + 2 < n; k++) {
					if (in[k] == '<' && in[k + 1] == '/' &&
					    mx_str_caseprefix(in + k + 2, n - k - 2, nl == 6 ? "script" : "style")) {
						close = in + k;
						break;
					}
				}
				if (close == NULL) {
					i = n;
				} else {
					const char *e = memchr(close, '>', (size_t)(in + n - close));
					i = e ? (size_t)(e - in) + 1 : n;
				}
			}
			/* inline tags join their neighbours, as a browser shows them
			 * ("V<b></b>iagra" is one word); block tags break the line */
			if (nl > 0 && html_is_block(in + ns, nl)) {
				if (out->len > 0 && out->data[out->len - 1] != '\n')
					buf_appendc(out, '\n');
				space = true;
			}
			continue;
		}
		if (c == '&') {
			i++;
			i += html_entity(in + i, n - i, out);
			space = false;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			if (!space)
				buf_appendc(out, ' ');
			space = true;
			i++;
			continue;
		}
		size_t j = i;
		while (j < n && in[j] != '<' && in[j] != '&' && in[j] != ' ' && in[j] != '\t' &&
		       in[j] != '\r' && in[j] != '\n')
			j++;
		buf_append(out, in + i, j - i);
		space = false;
		i = j;
	}
}
