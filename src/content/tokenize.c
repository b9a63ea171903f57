/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	tokenize - a message as sets of hashed feature indices
 * DESCRIPTION
 *	The recipe of docs/classifier.md, step by step.  Sets are built with a
 *	per-thread bitmap of the index space (128 KB), so adding an index and
 *	testing for a repeat are O(1) and nothing is sorted.
 */
#include "tokenize.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "xalloc.h"

#define TOKENIZE_R_PREFIX 3000
#define TOKENIZE_BODY_PREFIX 20000
#define TOKENIZE_TOKEN_MAX 40

/* Headers written by the sender's mail program: their values are used. */
static const char *const feat_author[] = {
	"from", "reply-to", "subject", "message-id", "in-reply-to", "references", "mime-version",
	"content-type", "content-transfer-encoding", "x-mailer", "user-agent", "organization",
	"x-priority", "x-msmail-priority", "importance", "x-mimeole", NULL,
};

/* Headers never used, not even their names. */
static const char *const feat_black[] = {
	"return-path", "delivered-to", "x-original-to", "received", "date", "to", "cc", "bcc",
	"delivery-date", "x-keywords", "x-status", "status", "x-uid", "x-mime-autoconverted",
	"x-authentication-warning", "envelope-to", "x-envelope-to", "x-envelope-from", "lines",
	"x-original-date", "x-mailscanner", "x-antiabuse", "content-length", "x-originalarrivaltime",
	"x-gmx-antispam", "x-razor-id", "x-rbl-warning", NULL,
};
static const char *const feat_black_prefix[] = {"x-spam", "x-spamcop", "x-virus", "x-mailscanner",
                                                "resent-", NULL};

static _Thread_local uint64_t *feat_bits;

/* ---- hashing ----------------------------------------------------------------- */

uint32_t
tokenize_fnv1a32(const void *p, size_t n, uint32_t h)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x01000193u;
	}
	return h;
}

uint32_t
tokenize_fold(uint32_t h)
{
	return ((h >> TOKENIZE_BITS) ^ h) & (TOKENIZE_SPACE - 1);
}

uint64_t
tokenize_fnv1a64(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

#define FNV32_INIT 0x811c9dc5u

uint64_t
tokenize_message_id(const struct mime_msg *m)
{
	/* CRLF counts as LF: the same message stored either way is the same */
	const unsigned char *s = (const unsigned char *)m->raw;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < m->raw_len; i++) {
		if (s[i] == '\r' && i + 1 < m->raw_len && s[i + 1] == '\n')
			continue;
		h ^= s[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* ---- sets ----------------------------------------------------------------------- */

static inline void
feat_add(struct tokenize_set *s, uint32_t idx)
{
	uint64_t bit = 1ull << (idx & 63);
	uint64_t *word = &feat_bits[idx >> 6];
	if (*word & bit)
		return;
	*word |= bit;
	if (s->n == s->cap)
		s->v = xgrow(s->v, &s->cap, s->n + 1, sizeof(uint32_t));
	s->v[s->n++] = idx;
}

/* Clears the bitmap for the indices of s (the set itself stays). */
static void
feat_done(struct tokenize_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		feat_bits[s->v[i] >> 6] = 0;
}

static void
feat_add_hash(struct tokenize_set *s, uint32_t h)
{
	feat_add(s, tokenize_fold(h));
}

/* Appends without the repeat check (a second set filled alongside; it is
 * made a set afterwards, see tokenize_extract). */
static inline void
feat_push_hash(struct tokenize_set *s, uint32_t h)
{
	if (s->n == s->cap)
		s->v = xgrow(s->v, &s->cap, s->n + 1, sizeof(uint32_t));
	s->v[s->n++] = tokenize_fold(h);
}

/* ---- text helpers ------------------------------------------------------------------ */

static bool
feat_in(const char *const *list, const char *name)
{
	for (; *list; list++)
		if (strcmp(*list, name) == 0)
			return true;
	return false;
}

static bool
feat_black_name(const char *name)
{
	if (feat_in(feat_black, name))
		return true;
	for (const char *const *p = feat_black_prefix; *p; p++)
		if (strncmp(name, *p, strlen(*p)) == 0)
			return true;
	return false;
}

/* Character classes of the tokenizer, as tables (this runs per byte). */
#define TOK_CH 1    /* part of a token */
#define TOK_STRIP 2 /* stripped from a token's ends */
static unsigned char feat_class[256];
static pthread_once_t feat_class_once = PTHREAD_ONCE_INIT;

static void
feat_class_init(void)
{
	for (int c = 0; c < 256; c++) {
		bool tok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		           c >= 0x80 || (c != 0 && strchr("$'._@/:%?=&#-", c) != NULL);
		bool strip = c != 0 && strchr(".:'-?&=/", c) != NULL;
		feat_class[c] = (unsigned char)((tok ? TOK_CH : 0) | (strip ? TOK_STRIP : 0));
	}
}

static inline bool
feat_tokch(unsigned char c)
{
	return feat_class[c] & TOK_CH;
}

static inline bool
feat_strip(unsigned char c)
{
	return feat_class[c] & TOK_STRIP;
}

typedef void (*feat_tok_cb)(const char *t, size_t n, void *arg);

/* The recipe's tokenizer: maximal runs of token characters, stripped of
 * ".:'-?&=/" at both ends, 1 to 40 bytes kept. */
static void
feat_tokens(const char *s, size_t n, feat_tok_cb cb, void *arg)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && !feat_tokch((unsigned char)s[i]))
			i++;
		size_t a = i;
		while (i < n && feat_tokch((unsigned char)s[i]))
			i++;
		size_t b = i;
		while (a < b && feat_strip((unsigned char)s[a]))
			a++;
		while (b > a && feat_strip((unsigned char)s[b - 1]))
			b--;
		if (b > a && b - a <= TOKENIZE_TOKEN_MAX)
			cb(s + a, b - a, arg);
	}
}

struct feat_emit {
	struct tokenize_set *a; /* a set */
	struct tokenize_set *b; /* raw indices, deduplicated later; may be NULL */
	uint32_t prefix;    /* FNV state after the prefix */
};

static void
feat_emit_tok(const char *t, size_t n, void *arg)
{
	struct feat_emit *e = arg;
	uint32_t h = tokenize_fnv1a32(t, n, e->prefix);
	feat_add_hash(e->a, h);
	if (e->b)
		feat_push_hash(e->b, h);
}

/* Emits prefix + s as one token into a (and b). */
static void
feat_emit_str(struct tokenize_set *a, struct tokenize_set *b, const char *prefix, const char *s, size_t n)
{
	uint32_t h = tokenize_fnv1a32(prefix, strlen(prefix), FNV32_INIT);
	h = tokenize_fnv1a32(s, n, h);
	feat_add_hash(a, h);
	if (b)
		feat_push_hash(b, h);
}

/* ASCII-lowercased copy (bytes >= 0x80 unchanged), at most cap bytes. */
static char *
feat_lower(const char *s, size_t n, size_t cap, size_t *outlen)
{
	if (n > cap)
		n = cap;
	char *o = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++)
		o[i] = mx_tolower(s[i]);
	o[n] = '\0';
	*outlen = n;
	return o;
}

/* The registered domain of a host, as the recipe defines it. */
static void
feat_regdom(const char *host, size_t n, char *out, size_t outlen)
{
	while (n > 0 && host[0] == '.')
		host++, n--;
	while (n > 0 && host[n - 1] == '.')
		n--;
	bool ip = n > 0;
	for (size_t i = 0; i < n && ip; i++)
		ip = (host[i] >= '0' && host[i] <= '9') || host[i] == '.';
	if (ip) {
		mx_strlcpyn(out, host, n, outlen);
		return;
	}
	/* label boundaries from the right */
	size_t dots[3] = {0, 0, 0};
	int nd = 0;
	for (size_t i = n; i > 0 && nd < 3; i--)
		if (host[i - 1] == '.')
			dots[nd++] = i - 1;
	int labels = nd + 1; /* at least this many (up to 4 counted) */
	size_t keep_from;
	size_t last_len = nd >= 1 ? n - dots[0] - 1 : n;
	size_t second_len = nd >= 2 ? dots[0] - dots[1] - 1 : (nd == 1 ? dots[0] : 0);
	if (labels >= 3 && last_len == 2 && second_len <= 3)
		keep_from = nd >= 3 ? dots[2] + 1 : 0; /* last 3 labels */
	else
		keep_from = nd >= 2 ? dots[1] + 1 : 0; /* last 2 labels */
	mx_strlcpyn(out, host + keep_from, n - keep_from, outlen);
}

static bool
feat_dchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* The regdom of the first "@label(.label)+" in s (lowercase), or false. */
static bool
feat_at_domain(const char *s, size_t n, char *out, size_t outlen)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '@')
			continue;
		size_t j = i + 1, dots = 0;
		size_t last_dot = 0;
		while (j < n) {
			if (feat_dchar((unsigned char)s[j])) {
				j++;
			} else if (s[j] == '.' && j + 1 < n && feat_dchar((unsigned char)s[j + 1]) &&
			           j > i + 1 && s[j - 1] != '.') {
				dots++;
				last_dot = j;
				j++;
			} else {
				break;
			}
		}
		(void)last_dot;
		if (dots >= 1 && j > i + 1) {
			feat_regdom(s + i + 1, j - i - 1, out, outlen);
			return true;
		}
	}
	return false;
}

static bool
feat_wchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
	       c >= 0x80;
}

/* from/reply-to: "name:addr=" + address and "name:dom=" + domain for each
 * address [\w.+=-]+@([\w-]+\.)+[\w-]+ in the value. */
static void
feat_addresses(struct tokenize_set *a, struct tokenize_set *b, const char *name, const char *v, size_t n)
{
	char pa[64], pd[64];
	snprintf(pa, sizeof(pa), "%s:addr=", name);
	snprintf(pd, sizeof(pd), "%s:dom=", name);
	for (size_t i = 0; i < n; i++) {
		if (v[i] != '@')
			continue;
		size_t s = i;
		while (s > 0 && (feat_wchar((unsigned char)v[s - 1]) || strchr(".+=-", v[s - 1])))
			s--;
		if (s == i)
			continue;
		/* domain: ([\w-]+\.)+[\w-]+ , greedy */
		size_t j = i + 1, last_label_start = j, labels = 0;
		while (j < n) {
			size_t ls = j;
			while (j < n && (feat_wchar((unsigned char)v[j]) || v[j] == '-'))
				j++;
			if (j == ls)
				break;
			labels++;
			last_label_start = ls;
			if (j < n && v[j] == '.' && j + 1 < n &&
			    (feat_wchar((unsigned char)v[j + 1]) || v[j + 1] == '-'))
				j++;
			else
				break;
		}
		(void)last_label_start;
		if (labels < 2)
			continue;
		feat_emit_str(a, b, pa, v + s, j - s);
		feat_emit_str(a, b, pd, v + i + 1, j - i - 1);
		i = j;
	}
}

/* ---- the recipe ----------------------------------------------------------------- */

struct feat_url_doms {
	char d[64][128];
	size_t n;
};

static void
feat_collect_url_doms(const char *body, size_t n, struct feat_url_doms *ud)
{
	ud->n = 0;
	for (size_t i = 0; i + 6 < n; i++) {
		size_t skip = 0;
		if (body[i] != 'h' && body[i] != 'f')
			continue;
		if (strncmp(body + i, "http://", 7) == 0)
			skip = 7;
		else if (strncmp(body + i, "https://", 8) == 0)
			skip = 8;
		else if (strncmp(body + i, "ftp://", 6) == 0)
			skip = 6;
		if (skip == 0)
			continue;
		size_t s = i + skip, e = s;
		while (e < n && ((body[e] >= 'a' && body[e] <= 'z') || (body[e] >= '0' && body[e] <= '9') ||
		                 body[e] == '.' || body[e] == '-'))
			e++;
		if (e == s)
			continue;
		char dom[128];
		feat_regdom(body + s, e - s, dom, sizeof(dom));
		bool seen = false;
		for (size_t k = 0; k < ud->n && !seen; k++)
			seen = strcmp(ud->d[k], dom) == 0;
		if (!seen && ud->n < 64)
			mx_strlcpy(ud->d[ud->n++], dom, sizeof(ud->d[0]));
		i = e - 1;
	}
}

static const char *
feat_header(const struct mime_msg *m, const char *name, bool raw)
{
	for (size_t i = 0; i < m->n_hdrs; i++)
		if (mx_str_caseeq(m->hdrs[i].name, name))
			return raw ? m->hdrs[i].raw_value : m->hdrs[i].value;
	return NULL;
}

/* R: author header lines (raw values) + "\n" + the raw body, first bytes. */
static void
feat_model_r(const struct mime_msg *m, struct tokenize_set *r)
{
	char text[TOKENIZE_R_PREFIX];
	size_t o = 0;
	for (size_t i = 0; i < m->n_hdrs && o < sizeof(text); i++) {
		char name[64];
		if (mx_strlcpy(name, m->hdrs[i].name, sizeof(name)) < 0)
			continue;
		mx_str_lower(name);
		if (!feat_in(feat_author, name))
			continue;
		const char *v = m->hdrs[i].raw_value ? m->hdrs[i].raw_value : "";
		const char *parts[4] = {name, ": ", v, "\n"};
		for (int k = 0; k < 4 && o < sizeof(text); k++) {
			size_t l = strlen(parts[k]);
			if (l > sizeof(text) - o)
				l = sizeof(text) - o;
			memcpy(text + o, parts[k], l);
			o += l;
		}
	}
	if (o < sizeof(text))
		text[o++] = '\n';
	const char *body = m->raw + m->header_len;
	size_t blen = m->raw_len > m->header_len ? m->raw_len - m->header_len : 0;
	for (size_t i = 0; i < blen && o < sizeof(text); i++) {
		if (body[i] == '\r' && i + 1 < blen && body[i + 1] == '\n')
			continue; /* CRLF as LF */
		text[o++] = body[i];
	}
	for (size_t i = 0; i + 4 <= o; i++)
		feat_add_hash(r, tokenize_fnv1a32(text + i, 4, FNV32_INIT));
}

/* T groups 1-5 go to both t and h; group 6 (body) to t alone. */
static void
feat_model_th(const struct mime_msg *m, struct tokenize_set *t, struct tokenize_set *h)
{
	/* 1: author headers, decoded, lowercased, name-prefixed tokens */
	for (size_t i = 0; i < m->n_hdrs; i++) {
		char name[64];
		if (mx_strlcpy(name, m->hdrs[i].name, sizeof(name)) < 0)
			continue;
		mx_str_lower(name);
		if (!feat_in(feat_author, name))
			continue;
		size_t vl;
		char *v = feat_lower(m->hdrs[i].value, strlen(m->hdrs[i].value), 8192, &vl);
		char prefix[80];
		snprintf(prefix, sizeof(prefix), "%s:", name);
		struct feat_emit e = {t, h, tokenize_fnv1a32(prefix, strlen(prefix), FNV32_INIT)};
		feat_tokens(v, vl, feat_emit_tok, &e);
		if (strcmp(name, "from") == 0 || strcmp(name, "reply-to") == 0)
			feat_addresses(t, h, name, v, vl);
		free(v);
	}
	/* 2: header names and their order */
	char prev[64] = "^";
	for (size_t i = 0; i < m->n_hdrs; i++) {
		char name[64];
		if (mx_strlcpy(name, m->hdrs[i].name, sizeof(name)) < 0)
			continue;
		mx_str_lower(name);
		if (feat_black_name(name))
			continue;
		feat_emit_str(t, h, "hn:", name, strlen(name));
		char pair[140];
		int pl = snprintf(pair, sizeof(pair), "%s>%s", prev, name);
		feat_emit_str(t, h, "ho:", pair, (size_t)pl);
		mx_strlcpy(prev, name, sizeof(prev));
	}
	/* 3: MIME structure */
	for (size_t i = 0; i < m->n_parts; i++) {
		const struct mime_part *p = &m->parts[i];
		const char *type = p->type[0] ? p->type : "text/plain";
		feat_emit_str(t, h, "mime:", type, strlen(type));
		char tc[140];
		int l = snprintf(tc, sizeof(tc), "%s;%s", type, p->cte);
		feat_emit_str(t, h, "mime:", tc, (size_t)l);
		if (p->charset[0])
			feat_emit_str(t, h, "mime:charset=", p->charset, strlen(p->charset));
	}
	/* 4: sender consistency */
	size_t bl;
	char *body = feat_lower(m->text.data ? m->text.data : "", m->text.len, TOKENIZE_BODY_PREFIX, &bl);
	struct feat_url_doms *ud = xmalloc(sizeof(*ud));
	feat_collect_url_doms(body, bl, ud);
	char nurl[8];
	int nl = snprintf(nurl, sizeof(nurl), "%zu", ud->n < 5 ? ud->n : 5);
	feat_emit_str(t, h, "cons:nurl=", nurl, (size_t)nl);
	const char *from = feat_header(m, "from", false);
	char fd[128];
	size_t fl;
	char *fromlc = from ? feat_lower(from, strlen(from), 8192, &fl) : NULL;
	if (fromlc != NULL && feat_at_domain(fromlc, fl, fd, sizeof(fd))) {
		if (ud->n > 0) {
			bool match = false;
			for (size_t k = 0; k < ud->n && !match; k++)
				match = strcmp(ud->d[k], fd) == 0;
			const char *r = match ? "match" : "nomatch";
			feat_emit_str(t, h, "cons:urlfrom=", r, strlen(r));
		}
		static const char *const others[] = {"reply-to", "message-id", "sender"};
		for (int k = 0; k < 3; k++) {
			const char *v = feat_header(m, others[k], false);
			if (v == NULL)
				continue;
			size_t ol;
			char *lc = feat_lower(v, strlen(v), 8192, &ol);
			char od[128];
			if (feat_at_domain(lc, ol, od, sizeof(od))) {
				char pre[40];
				snprintf(pre, sizeof(pre), "cons:%s=", others[k]);
				const char *r = strcmp(od, fd) == 0 ? "match" : "nomatch";
				feat_emit_str(t, h, pre, r, strlen(r));
			}
			free(lc);
		}
	}
	free(fromlc);
	free(ud);
	/* 5: the from-clause of the bottom-most Received */
	const char *rcvd = NULL;
	for (size_t i = 0; i < m->n_hdrs; i++)
		if (mx_str_caseeq(m->hdrs[i].name, "received"))
			rcvd = m->hdrs[i].raw_value;
	if (rcvd != NULL) {
		size_t rl;
		char *lc = feat_lower(rcvd, strlen(rcvd), 8192, &rl);
		char *semi = memchr(lc, ';', rl);
		if (semi)
			rl = (size_t)(semi - lc);
		for (size_t i = 0; i + 3 < rl; i++) {
			bool ws1 = lc[i] == ' ' || lc[i] == '\t' || lc[i] == '\n' || lc[i] == '\r';
			if (ws1 && lc[i + 1] == 'b' && lc[i + 2] == 'y' &&
			    (lc[i + 3] == ' ' || lc[i + 3] == '\t' || lc[i + 3] == '\n' || lc[i + 3] == '\r')) {
				rl = i;
				break;
			}
		}
		struct feat_emit e = {t, h, tokenize_fnv1a32("received:", 9, FNV32_INIT)};
		feat_tokens(lc, rl, feat_emit_tok, &e);
		free(lc);
	}
	/* 6: body tokens */
	struct feat_emit eb = {t, NULL, FNV32_INIT};
	feat_tokens(body, bl, feat_emit_tok, &eb);
	free(body);
}

/* LSD radix sort of indices below 2^TOKENIZE_BITS, two passes of 10 bits. */
static void
feat_radix_sort(uint32_t *v, size_t n)
{
	if (n < 2)
		return;
	uint32_t *tmp = xmalloc(n * sizeof(uint32_t));
	uint32_t *src = v, *dst = tmp;
	for (int shift = 0; shift < TOKENIZE_BITS; shift += 10) {
		size_t count[1025] = {0};
		for (size_t i = 0; i < n; i++)
			count[((src[i] >> shift) & 1023) + 1]++;
		for (int b = 0; b < 1024; b++)
			count[b + 1] += count[b];
		for (size_t i = 0; i < n; i++)
			dst[count[(src[i] >> shift) & 1023]++] = src[i];
		uint32_t *t = src;
		src = dst;
		dst = t;
	}
	if (src != v)
		memcpy(v, src, n * sizeof(uint32_t));
	free(tmp);
}

void
tokenize_extract(const struct mime_msg *m, struct tokenize_sets *f)
{
	memset(f, 0, sizeof(*f));
	pthread_once(&feat_class_once, feat_class_init);
	if (feat_bits == NULL)
		feat_bits = xcalloc(TOKENIZE_SPACE / 64, sizeof(uint64_t));
	f->set[TOKENIZE_R].v = xgrow(NULL, &f->set[TOKENIZE_R].cap, TOKENIZE_R_PREFIX, sizeof(uint32_t));
	feat_model_r(m, &f->set[TOKENIZE_R]);
	feat_done(&f->set[TOKENIZE_R]);
	/* T and H are filled in one walk: T as a set, H's indices raw, made a
	 * set once T's bits are cleared */
	struct tokenize_set hs = {0};
	feat_model_th(m, &f->set[TOKENIZE_T], &hs);
	feat_done(&f->set[TOKENIZE_T]);
	for (size_t i = 0; i < hs.n; i++)
		feat_add(&f->set[TOKENIZE_H], hs.v[i]);
	feat_done(&f->set[TOKENIZE_H]);
	free(hs.v);
}

void
tokenize_sort(struct tokenize_sets *f)
{
	for (int k = 0; k < TOKENIZE_MODELS; k++)
		feat_radix_sort(f->set[k].v, f->set[k].n);
}

void
tokenize_clear(struct tokenize_sets *f)
{
	for (int k = 0; k < TOKENIZE_MODELS; k++)
		free(f->set[k].v);
	memset(f, 0, sizeof(*f));
}
