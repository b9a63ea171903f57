/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	tokenize - a message as sets of hashed feature indices
 * DESCRIPTION
 *	The recipe of docs/classifier.md, step by step.  The recipe is written
 *	with regular expressions; each one is matched here by a small scanner
 *	with exactly the expression's semantics (leftmost match, greedy, the
 *	same restart point), in one pass over the text, so that hostile header
 *	values cost linear time.  The comment above each scanner gives the
 *	expression it implements.
 *	Sets are built with a per-thread bitmap of the index space (128 KB),
 *	so adding an index and testing for a repeat are O(1).
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
#define TOKENIZE_SHAPE_LEN 40
#define TOKENIZE_SET_MAX 256 /* distinct addresses or hosts remembered per message */
#define FNV32_INIT 0x811c9dc5u

void (*tokenize_trace)(bool header, const char *prefix, size_t plen, const char *s, size_t n);

/* Headers that carry another filter's verdict, or the reader's: no token. */
static const char *const feat_excl_prefix[] = {
	"x-spam", "x-spamcop", "x-virus", "x-mailscanner", "x-razor", "x-rbl",
	"x-antiabuse", "x-gmx-antispam", "x-dcc", "x-bogosity", "x-spamtest", NULL,
};
static const char *const feat_excl_sub[] = {"spam", "virus", "junk", "razor", "bogosity", "scan", "dcc",
                                            NULL};

/* The per-thread bitmap; the key frees it when a thread ends. */
static _Thread_local uint64_t *feat_bits;
static pthread_key_t feat_bits_key;

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

/* Appends without the repeat check (H is filled alongside T; it is made a
 * set afterwards, see tokenize_extract). */
static inline void
feat_push(struct tokenize_set *s, uint32_t idx)
{
	if (s->n == s->cap)
		s->v = xgrow(s->v, &s->cap, s->n + 1, sizeof(uint32_t));
	s->v[s->n++] = idx;
}

/* Where tokens go: t always (as a set), h too for header tokens. */
struct feat_ctx {
	struct tokenize_set *t;
	struct tokenize_set *h; /* NULL while emitting T-only groups */
};

/* Adds the token prefix + s whose FNV hash is h. */
static inline void
feat_put(struct feat_ctx *c, uint32_t h, const char *pre, size_t pl, const char *s, size_t n)
{
	uint32_t idx = tokenize_fold(h);
	feat_add(c->t, idx);
	if (c->h)
		feat_push(c->h, idx);
	if (tokenize_trace)
		tokenize_trace(c->h != NULL, pre, pl, s, n);
}

/* Emits prefix + s; ph is the FNV state after the prefix. */
static void
feat_emit_h(struct feat_ctx *c, const char *pre, size_t pl, uint32_t ph, const char *s, size_t n)
{
	feat_put(c, tokenize_fnv1a32(s, n, ph), pre, pl, s, n);
}

static void
feat_emit(struct feat_ctx *c, const char *pre, const char *s, size_t n)
{
	size_t pl = strlen(pre);
	feat_emit_h(c, pre, pl, tokenize_fnv1a32(pre, pl, FNV32_INIT), s, n);
}

static void
feat_emitz(struct feat_ctx *c, const char *pre, const char *s)
{
	feat_emit(c, pre, s, strlen(s));
}

/* Emits a + b + s (a and b short: a prefix in two parts). */
static void
feat_emit3(struct feat_ctx *c, const char *a, const char *b, const char *s)
{
	char pre[64];
	size_t al = strlen(a), bl = strlen(b);
	if (al + bl >= sizeof(pre))
		return;
	memcpy(pre, a, al);
	memcpy(pre + al, b, bl + 1);
	feat_emit_h(c, pre, al + bl, tokenize_fnv1a32(pre, al + bl, FNV32_INIT), s, strlen(s));
}

/* ---- character classes ------------------------------------------------------------ */

#define CC_TOK 0x01   /* [A-Za-z0-9\x80-\xff$'._@/:%?=&#-]: part of a token */
#define CC_STRIP 0x02 /* .:'-?&=/ : stripped from a token's ends */
#define CC_W 0x04     /* \w (ASCII): [A-Za-z0-9_] */
#define CC_D 0x08     /* [a-z0-9-]: a lowercase host label */
#define CC_LOCAL 0x10 /* [\w.+=-]: an address's local part */
#define CC_SP 0x20    /* \s: [ \t\n\r\f\v] */
#define CC_RDN 0x40   /* [\w.+-] */
static unsigned char feat_cc[256];
static pthread_once_t feat_cc_once = PTHREAD_ONCE_INIT;

static void
feat_cc_init(void)
{
	pthread_key_create(&feat_bits_key, free);
	for (int c = 1; c < 256; c++) {
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		bool w = alnum || c == '_';
		unsigned char k = 0;
		if (alnum || c >= 0x80 || strchr("$'._@/:%?=&#-", c) != NULL)
			k |= CC_TOK;
		if (strchr(".:'-?&=/", c) != NULL)
			k |= CC_STRIP;
		if (w)
			k |= CC_W;
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')
			k |= CC_D;
		if (w || strchr(".+=-", c) != NULL)
			k |= CC_LOCAL;
		if (strchr(" \t\n\r\f\v", c) != NULL)
			k |= CC_SP;
		if (w || strchr(".+-", c) != NULL)
			k |= CC_RDN;
		feat_cc[c] = k;
	}
}

static inline bool
cc(const char *s, size_t i, size_t n, unsigned char cls)
{
	return i < n && (feat_cc[(unsigned char)s[i]] & cls) != 0;
}

static inline bool
is_digit(const char *s, size_t i, size_t n)
{
	return i < n && s[i] >= '0' && s[i] <= '9';
}

static inline bool
is_lower(const char *s, size_t i, size_t n)
{
	return i < n && s[i] >= 'a' && s[i] <= 'z';
}

static bool
feat_excluded(const char *name)
{
	if (name[0] == 'x' && name[1] == '-') /* every prefix starts so */
		for (const char *const *p = feat_excl_prefix; *p; p++)
			if (strncmp(name, *p, strlen(*p)) == 0)
				return true;
	for (const char *const *p = feat_excl_sub; *p; p++)
		if (strstr(name, *p) != NULL)
			return true;
	return strcmp(name, "x-keywords") == 0;
}

/* ---- the tokenizer -------------------------------------------------------------- */

struct feat_pfx {
	struct feat_ctx *c;
	const char *pre;
	size_t pl;
	uint32_t ph; /* FNV state after the prefix */
};

static void
feat_pfx_init(struct feat_pfx *p, struct feat_ctx *c, const char *pre, size_t pl)
{
	p->c = c;
	p->pre = pre;
	p->pl = pl;
	p->ph = tokenize_fnv1a32(pre, pl, FNV32_INIT);
}

/* Emits prefix + each token of s: maximal runs of
 * [A-Za-z0-9\x80-\xff$'._@/:%?=&#-] stripped of .:'-?&=/ at both ends,
 * 1 to 40 bytes kept.  One pass: leading strip characters are skipped
 * with the separators, and the hash is kept as it stood after the last
 * character that is not stripped. */
static void
feat_tokens(struct feat_pfx *p, const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (feat_cc[(unsigned char)s[i]] & (CC_TOK | CC_STRIP)) != CC_TOK)
			i++;
		if (i == n)
			break;
		size_t a = i, b = i;
		uint32_t h = p->ph, hb = h;
		while (i < n && (feat_cc[(unsigned char)s[i]] & CC_TOK)) {
			h = (h ^ (unsigned char)s[i]) * 0x01000193u;
			if (!(feat_cc[(unsigned char)s[i]] & CC_STRIP)) {
				hb = h;
				b = i + 1;
			}
			i++;
		}
		if (b - a <= TOKENIZE_TOKEN_MAX)
			feat_put(p->c, hb, p->pre, p->pl, s + a, b - a);
	}
}

/* ---- text helpers ------------------------------------------------------------------ */

/* ASCII-lowercased copy of at most cap bytes. */
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

/* The registered domain of a host: all-numeric labels as is; else the
 * last three labels for NAME.SLD.CC (CC of 2 letters, SLD of at most 3),
 * else the last two. Leading and trailing dots are dropped. */
static void
feat_regdom(const char *host, size_t n, char *out, size_t outlen)
{
	while (n > 0 && host[0] == '.')
		host++, n--;
	while (n > 0 && host[n - 1] == '.')
		n--;
	bool ip = n > 0;
	for (size_t i = 0; i < n && ip; i++)
		ip = (host[i] >= '0' && host[i] <= '9') || (host[i] == '.' && i > 0 && host[i - 1] != '.');
	if (ip) {
		mx_strlcpyn(out, host, n, outlen);
		return;
	}
	size_t dots[3] = {0, 0, 0};
	int nd = 0;
	for (size_t i = n; i > 0 && nd < 3; i--)
		if (host[i - 1] == '.')
			dots[nd++] = i - 1;
	int labels = nd + 1;
	size_t keep_from;
	size_t last_len = nd >= 1 ? n - dots[0] - 1 : n;
	size_t second_len = nd >= 2 ? dots[0] - dots[1] - 1 : (nd == 1 ? dots[0] : 0);
	if (labels >= 3 && last_len == 2 && second_len <= 3)
		keep_from = nd >= 3 ? dots[2] + 1 : 0;
	else
		keep_from = nd >= 2 ? dots[1] + 1 : 0;
	mx_strlcpyn(out, host + keep_from, n - keep_from, outlen);
}

/* @([a-z0-9-]+(?:\.[a-z0-9-]+)+), first match: the regdom of group 1. */
static bool
feat_at_domain(const char *s, size_t n, char *out, size_t outlen)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '@')
			continue;
		size_t j = i + 1, labels = 0, end = 0;
		for (;;) {
			size_t ls = j;
			while (cc(s, j, n, CC_D))
				j++;
			if (j == ls)
				break;
			labels++;
			end = j;
			if (j < n && s[j] == '.' && cc(s, j + 1, n, CC_D))
				j++;
			else
				break;
		}
		if (labels >= 2) {
			feat_regdom(s + i + 1, end - i - 1, out, outlen);
			return true;
		}
	}
	return false;
}

/* End of ([\w-]+\.)+[\w-]+ at j (greedy), or 0 when it does not match. */
static size_t
feat_dom_end(const char *s, size_t n, size_t j)
{
	size_t labels = 0, end = 0;
	for (;;) {
		size_t ls = j;
		while (j < n && (cc(s, j, n, CC_W) || s[j] == '-'))
			j++;
		if (j == ls)
			break;
		labels++;
		end = j;
		if (j < n && s[j] == '.')
			j++;
		else
			break;
	}
	return labels >= 2 ? end : 0;
}

/* The next match of [\w.+=-]+@(?:[\w-]+\.)+[\w-]+ in s from *pos:
 * [*a, *e) with the '@' at *at. */
static bool
feat_next_addr(const char *s, size_t n, size_t *pos, size_t *a, size_t *at, size_t *e)
{
	for (size_t i = *pos; i < n; i++) {
		if (s[i] != '@')
			continue;
		size_t b = i;
		while (b > *pos && cc(s, b - 1, n, CC_LOCAL))
			b--;
		if (b == i)
			continue;
		size_t end = feat_dom_end(s, n, i + 1);
		if (end == 0)
			continue;
		*a = b;
		*at = i;
		*e = end;
		*pos = end;
		return true;
	}
	return false;
}

/* End of [a-z0-9-]+(?:\.[a-z0-9-]+)+ at p, 0 when it does not match;
 * *run is the end of the first label run (for skipping on failure). */
static size_t
feat_host_at(const char *s, size_t n, size_t p, size_t *run)
{
	size_t j = p;
	while (cc(s, j, n, CC_D))
		j++;
	*run = j;
	if (j == p)
		return 0;
	size_t dots = 0;
	while (j < n && s[j] == '.' && cc(s, j + 1, n, CC_D)) {
		j++;
		while (cc(s, j, n, CC_D))
			j++;
		dots++;
	}
	return dots ? j : 0;
}

/* End of \d{1,3}(?:\.\d{1,3}){3} at p, or 0. */
static size_t
feat_quad_at(const char *s, size_t n, size_t p)
{
	size_t j = p;
	for (int k = 0; k < 4; k++) {
		size_t d = j;
		while (is_digit(s, j, n))
			j++;
		if (j == d)
			return 0;
		if (k < 3) {
			if (j - d > 3 || j >= n || s[j] != '.')
				return 0;
			j++;
		} else if (j - d > 3) {
			j = d + 3;
		}
	}
	return j;
}

/* Full match of \[?\d{1,3}(?:\.\d{1,3}){3}\]? */
static bool
feat_isip(const char *s, size_t n)
{
	size_t a = 0, b = n;
	if (a < b && s[a] == '[')
		a++;
	if (b > a && s[b - 1] == ']')
		b--;
	return b > a && feat_quad_at(s + a, b - a, 0) == b - a;
}

/* Group 1 of the first \[?(\d{1,3}(?:\.\d{1,3}){3})\]? in s. */
static bool
feat_find_quad(const char *s, size_t n, size_t *qa, size_t *qe)
{
	for (size_t p = 0; p < n; p++) {
		if (!is_digit(s, p, n))
			continue;
		size_t e = feat_quad_at(s, n, p);
		if (e) {
			*qa = p;
			*qe = e;
			return true;
		}
	}
	return false;
}

/* A set of short strings (addresses, domains), at most TOKENIZE_SET_MAX. */
struct feat_strset {
	char *v[TOKENIZE_SET_MAX];
	size_t n;
};

static bool
feat_strset_has(const struct feat_strset *s, const char *p, size_t n)
{
	for (size_t i = 0; i < s->n; i++)
		if (strlen(s->v[i]) == n && memcmp(s->v[i], p, n) == 0)
			return true;
	return false;
}

static void
feat_strset_add(struct feat_strset *s, const char *p, size_t n)
{
	if (s->n < TOKENIZE_SET_MAX && !feat_strset_has(s, p, n))
		s->v[s->n++] = xstrndup(p, n);
}

static void
feat_strset_free(struct feat_strset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	s->n = 0;
}

/* ---- the message's headers as the recipe sees them ------------------------------------ */

/* What the recipe does with a header, decided once from its name. */
#define FH_EXCL 0x001     /* excluded: no token at all */
#define FH_DATE 0x002
#define FH_ADDR 0x004     /* k:dom= tokens */
#define FH_SHAPE 0x008
#define FH_RECEIVED 0x010
#define FH_ENV 0x020      /* delivered-to, x-original-to, envelope-to */
#define FH_TO 0x040
#define FH_CC 0x080

struct feat_hdr {
	char *name;   /* lowercase */
	char *rawq;   /* unfolded raw value, bytes >= 0x80 as '?' */
	char *dv;     /* rawq RFC 2047-decoded, UTF-8, ASCII-lowercased */
	size_t nl, rl, dl;
	unsigned kind;
	bool dv_own; /* dv was decoded into its own allocation */
};

struct feat_msg {
	const struct mime_msg *m;
	struct feat_hdr *h;
	size_t n;
	char *arena; /* the strings above, in one allocation */
};

/* The names the recipe treats specially, sorted for bsearch. */
static const struct feat_named {
	const char *name;
	unsigned kind;
} feat_named[] = {
	{"cc", FH_ADDR | FH_CC},
	{"content-type", FH_SHAPE},
	{"date", FH_DATE | FH_SHAPE},
	{"delivered-to", FH_ADDR | FH_ENV},
	{"delivery-date", FH_DATE},
	{"envelope-to", FH_ADDR | FH_ENV},
	{"errors-to", FH_ADDR},
	{"from", FH_ADDR | FH_SHAPE},
	{"mail-followup-to", FH_ADDR},
	{"message-id", FH_SHAPE},
	{"received", FH_RECEIVED},
	{"reply-to", FH_ADDR | FH_SHAPE},
	{"resent-date", FH_DATE},
	{"resent-from", FH_ADDR},
	{"resent-to", FH_ADDR},
	{"return-path", FH_ADDR | FH_SHAPE},
	{"sender", FH_ADDR},
	{"subject", FH_SHAPE},
	{"to", FH_ADDR | FH_SHAPE | FH_TO},
	{"x-apparently-to", FH_ADDR},
	{"x-envelope-from", FH_ADDR},
	{"x-envelope-to", FH_ADDR},
	{"x-mailer", FH_SHAPE},
	{"x-original-date", FH_DATE},
	{"x-original-to", FH_ADDR | FH_ENV},
	{"x-sender", FH_ADDR},
};

static int
feat_named_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct feat_named *)elem)->name);
}

static unsigned
feat_kind(const char *name)
{
	const struct feat_named *f = bsearch(name, feat_named, sizeof(feat_named) / sizeof(feat_named[0]),
	                                     sizeof(feat_named[0]), feat_named_cmp);
	return (f ? f->kind : 0) | (feat_excluded(name) ? FH_EXCL : 0);
}

/* Header names repeat from message to message: their kinds are cached per
 * thread (direct-mapped by hash; a collision just recomputes). */
#define FEAT_KIND_CACHE 512
struct feat_kind_slot {
	char name[32];
	unsigned kind;
};
static _Thread_local struct feat_kind_slot feat_kind_cache[FEAT_KIND_CACHE];

static unsigned
feat_kind_cached(const char *name, size_t nl)
{
	if (nl >= sizeof(feat_kind_cache[0].name))
		return feat_kind(name);
	struct feat_kind_slot *slot =
		&feat_kind_cache[tokenize_fnv1a32(name, nl, FNV32_INIT) % FEAT_KIND_CACHE];
	if (memcmp(slot->name, name, nl + 1) != 0) {
		memcpy(slot->name, name, nl + 1);
		slot->kind = feat_kind(name);
	}
	return slot->kind;
}

static void
feat_msg_init(struct feat_msg *fm, const struct mime_msg *m)
{
	fm->m = m;
	fm->n = m->n_hdrs;
	fm->h = xcalloc(fm->n ? fm->n : 1, sizeof(*fm->h));
	size_t total = 1;
	for (size_t i = 0; i < fm->n; i++) {
		struct feat_hdr *h = &fm->h[i];
		h->nl = strlen(m->hdrs[i].name);
		h->rl = m->hdrs[i].raw_value ? strlen(m->hdrs[i].raw_value) : 0;
		total += (h->nl + 1) + 2 * (h->rl + 1);
	}
	/* names and raw values in one allocation; decoded values are copies
	 * of the raw ones unless they hold encoded words */
	char *a = fm->arena = xmalloc(total);
	for (size_t i = 0; i < fm->n; i++) {
		struct feat_hdr *h = &fm->h[i];
		h->name = a;
		for (size_t k = 0; k <= h->nl; k++)
			a[k] = mx_tolower(m->hdrs[i].name[k]);
		a += h->nl + 1;
		h->kind = feat_kind_cached(h->name, h->nl);
		const char *rv = m->hdrs[i].raw_value ? m->hdrs[i].raw_value : "";
		h->rawq = a;
		for (size_t k = 0; k <= h->rl; k++)
			a[k] = (unsigned char)rv[k] >= 0x80 ? '?' : rv[k];
		a += h->rl + 1;
		if (memmem(h->rawq, h->rl, "=?", 2) == NULL) {
			h->dv = a;
			h->dl = h->rl;
			for (size_t k = 0; k <= h->rl; k++)
				a[k] = mx_tolower(h->rawq[k]);
		} else {
			char *d = mime_decode_words(h->rawq);
			h->dv = feat_lower(d, strlen(d), SIZE_MAX, &h->dl);
			h->dv_own = true;
			free(d);
		}
		a += h->rl + 1;
	}
}

static void
feat_msg_clear(struct feat_msg *fm)
{
	for (size_t i = 0; i < fm->n; i++)
		if (fm->h[i].dv_own)
			free(fm->h[i].dv);
	free(fm->arena);
	free(fm->h);
}

static const struct feat_hdr *
feat_first(const struct feat_msg *fm, const char *name)
{
	for (size_t i = 0; i < fm->n; i++)
		if (strcmp(fm->h[i].name, name) == 0)
			return &fm->h[i];
	return NULL;
}

/* first_dom(name): the regdom of the first @domain in the first such header. */
static bool
feat_first_dom(const struct feat_msg *fm, const char *name, char *out, size_t outlen)
{
	const struct feat_hdr *h = feat_first(fm, name);
	return h != NULL && feat_at_domain(h->dv, h->dl, out, outlen);
}

/* ---- model R ---------------------------------------------------------------------- */

/* 4-grams of the first bytes of the raw body (after the first empty line),
 * CRLF as LF, ASCII-lowercased. */
static void
feat_model_r(const struct mime_msg *m, struct tokenize_set *r)
{
	const char *s = m->raw;
	size_t n = m->raw_len, i;
	/* after the first empty line with CRLF read as LF: a LF followed by
	 * LF or CRLF (or the message's very first line empty) */
	if (n > 0 && s[0] == '\n') {
		i = 1;
	} else if (n > 1 && s[0] == '\r' && s[1] == '\n') {
		i = 2;
	} else {
		const char *p = s, *end = s + n;
		i = n + 1;
		while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
			p++;
			if (p < end && *p == '\n') {
				i = (size_t)(p - s) + 1;
				break;
			}
			if (p + 1 < end && p[0] == '\r' && p[1] == '\n') {
				i = (size_t)(p - s) + 2;
				break;
			}
		}
		if (i > n)
			return;
	}
	char text[TOKENIZE_R_PREFIX];
	size_t o = 0;
	for (; i < n && o < sizeof(text); i++) {
		if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n')
			continue;
		text[o++] = mx_tolower(s[i]);
	}
	if (o < 4)
		return;
	/* room for every gram up front; the bitmap keeps each index once */
	if (r->cap < r->n + o)
		r->v = xgrow(r->v, &r->cap, r->n + o, sizeof(uint32_t));
	uint64_t *bits = feat_bits;
	uint32_t *out = r->v + r->n;
	size_t k = 0;
	for (size_t g = 0; g + 4 <= o; g++) {
		uint32_t h = FNV32_INIT;
		h = (h ^ (unsigned char)text[g]) * 0x01000193u;
		h = (h ^ (unsigned char)text[g + 1]) * 0x01000193u;
		h = (h ^ (unsigned char)text[g + 2]) * 0x01000193u;
		h = (h ^ (unsigned char)text[g + 3]) * 0x01000193u;
		uint32_t idx = tokenize_fold(h);
		uint64_t bit = 1ull << (idx & 63), word = bits[idx >> 6];
		out[k] = idx; /* kept only when new: no branch to mispredict */
		k += (word & bit) == 0;
		bits[idx >> 6] = word | bit;
	}
	r->n += k;
}

/* ---- header tokens (T and H), group 1: values -------------------------------------- */

/* date headers: ^\s*([a-z]{3}) and
 * \b(\d\d?):\d\d(?::\d\d)?(?:\s+([+-]\d{4}|[a-z]{1,5}))? */
static void
feat_date(struct feat_ctx *c, const char *name, const char *v, size_t n)
{
	size_t nl = strlen(name);
	char *pre = xmalloc(nl + 5);
	memcpy(pre, name, nl);
	size_t i = 0;
	while (cc(v, i, n, CC_SP))
		i++;
	if (is_lower(v, i, n) && is_lower(v, i + 1, n) && is_lower(v, i + 2, n)) {
		memcpy(pre + nl, ":wd=", 5);
		feat_emit(c, pre, v + i, 3);
	}
	const char *tz = "none";
	size_t tzl = 4;
	for (size_t p = 0; p < n; p++) {
		if (!is_digit(v, p, n) || (p > 0 && cc(v, p - 1, n, CC_W)))
			continue;
		size_t d = p;
		while (is_digit(v, d, n))
			d++;
		if (d - p > 2 || d >= n || v[d] != ':' || !is_digit(v, d + 1, n) || !is_digit(v, d + 2, n))
			continue;
		char hh[2] = {d - p == 2 ? v[p] : '0', v[d - 1]};
		memcpy(pre + nl, ":hh=", 5);
		feat_emit(c, pre, hh, 2);
		size_t q = d + 3;
		if (q < n && v[q] == ':' && is_digit(v, q + 1, n) && is_digit(v, q + 2, n))
			q += 3;
		size_t r = q;
		while (cc(v, r, n, CC_SP))
			r++;
		if (r > q && r < n) {
			if ((v[r] == '+' || v[r] == '-') && is_digit(v, r + 1, n) && is_digit(v, r + 2, n) &&
			    is_digit(v, r + 3, n) && is_digit(v, r + 4, n)) {
				tz = v + r;
				tzl = 5;
			} else if (is_lower(v, r, n)) {
				size_t e = r;
				while (e < r + 5 && is_lower(v, e, n))
					e++;
				tz = v + r;
				tzl = e - r;
			}
		}
		break;
	}
	memcpy(pre + nl, ":tz=", 5);
	feat_emit(c, pre, tz, tzl);
	free(pre);
}

/* received: tokens of the value up to ';', and the regdom of each
 * [a-z0-9-]+(?:\.[a-z0-9-]+)+ that is not all digits and dots. */
static void
feat_received(struct feat_ctx *c, const char *v, size_t n)
{
	const char *semi = memchr(v, ';', n);
	if (semi)
		n = (size_t)(semi - v);
	struct feat_pfx p;
	feat_pfx_init(&p, c, "received:", 9);
	feat_tokens(&p, v, n);
	size_t i = 0;
	while (i < n) {
		size_t run, e = feat_host_at(v, n, i, &run);
		if (e == 0) {
			i = run > i ? run : i + 1;
			continue;
		}
		bool numeric = true;
		for (size_t k = i; k < e && numeric; k++)
			numeric = v[k] == '.' || (v[k] >= '0' && v[k] <= '9');
		if (!numeric) {
			char dom[256];
			feat_regdom(v + i, e - i, dom, sizeof(dom));
			feat_emitz(c, "rcv:dom=", dom);
		}
		i = e;
	}
}

static void
feat_values(struct feat_ctx *c, const struct feat_msg *fm)
{
	for (size_t i = 0; i < fm->n; i++) {
		const struct feat_hdr *h = &fm->h[i];
		if (h->kind & FH_EXCL)
			continue;
		if (h->kind & FH_DATE) {
			feat_date(c, h->name, h->dv, h->dl);
			continue;
		}
		if (h->kind & FH_RECEIVED) {
			feat_received(c, h->dv, h->dl);
			continue;
		}
		size_t nl = h->nl;
		char *pre = xmalloc(nl + 6);
		memcpy(pre, h->name, nl);
		memcpy(pre + nl, ":", 2);
		struct feat_pfx p;
		feat_pfx_init(&p, c, pre, nl + 1);
		feat_tokens(&p, h->dv, h->dl);
		if (h->kind & FH_ADDR) {
			memcpy(pre + nl, ":dom=", 6);
			size_t pos = 0, a, at, e;
			while (feat_next_addr(h->dv, h->dl, &pos, &a, &at, &e))
				feat_emit(c, pre, h->dv + at + 1, e - at - 1);
		}
		free(pre);
	}
}

/* ---- group 2: the Received chain and the recipients ----------------------------------- */

/* The first match of (?:[\w.+-]*@)?([a-z0-9-]+(?:\.[a-z0-9-]+)+) in s
 * whose group 1 is not an IP literal: group 1 in [*ra, *re). */
static bool
feat_rdns(const char *s, size_t n, size_t *ra, size_t *re)
{
	size_t p = 0, run_end = 0, opt_hs = 0, opt_he = 0;
	bool opt_ok = false;
	while (p < n) {
		/* the optional "user@" part: the same for every start in one run */
		if (p >= run_end) {
			size_t e = p;
			while (cc(s, e, n, CC_RDN))
				e++;
			run_end = e > p ? e : p + 1;
			opt_ok = false;
			if (e < n && s[e] == '@') {
				size_t r;
				opt_he = feat_host_at(s, n, e + 1, &r);
				opt_hs = e + 1;
				opt_ok = opt_he != 0;
			}
		}
		size_t hs = 0, he = 0, run = p + 1;
		if (opt_ok) {
			hs = opt_hs;
			he = opt_he;
		} else {
			he = feat_host_at(s, n, p, &run);
			hs = p;
		}
		if (he == 0) {
			p = run > p ? run : p + 1;
			continue;
		}
		if (feat_quad_at(s, he, hs) != he) {
			*ra = hs;
			*re = he;
			return true;
		}
		p = he;
		run_end = 0; /* recompute the run at the new start */
	}
	return false;
}

static bool
feat_private_ip(const char *ip, size_t n)
{
	if ((n >= 3 && memcmp(ip, "10.", 3) == 0) || (n >= 4 && memcmp(ip, "127.", 4) == 0) ||
	    (n >= 8 && memcmp(ip, "192.168.", 8) == 0))
		return true;
	/* ^172\.(1[6-9]|2\d|3[01])\. */
	if (n < 7 || memcmp(ip, "172.", 4) != 0 || ip[6] != '.')
		return false;
	char a = ip[4], b = ip[5];
	return (a == '1' && b >= '6' && b <= '9') || (a == '2' && b >= '0' && b <= '9') ||
	       (a == '3' && (b == '0' || b == '1'));
}

static void
feat_host_add(struct feat_strset *hosts, const char *h, size_t n)
{
	if (n == 0 || feat_isip(h, n) || memchr(h, '.', n) == NULL)
		return;
	char dom[256];
	feat_regdom(h, n, dom, sizeof(dom));
	feat_strset_add(hosts, dom, strlen(dom));
}

/* One hop: ^\s*from\s+(\S+)(?:\s+\(([^)]*)\))? and what it says. */
static void
feat_hop(struct feat_ctx *c, const char *v, size_t n, const char *pfx, struct feat_strset *hosts)
{
	size_t i = 0;
	while (cc(v, i, n, CC_SP))
		i++;
	size_t j = i + 4;
	if (n < j || memcmp(v + i, "from", 4) != 0 || !cc(v, j, n, CC_SP)) {
		feat_emit3(c, pfx, "nofrom", "");
		return;
	}
	while (cc(v, j, n, CC_SP))
		j++;
	size_t ha = j;
	while (j < n && !cc(v, j, n, CC_SP))
		j++;
	if (j == ha) {
		feat_emit3(c, pfx, "nofrom", "");
		return;
	}
	size_t he = j;
	while (ha < he && (v[ha] == '(' || v[ha] == ')'))
		ha++;
	while (he > ha && (v[he - 1] == '(' || v[he - 1] == ')'))
		he--;
	const char *helo = v + ha;
	size_t hl = he - ha;
	const char *par = "";
	size_t pl = 0;
	size_t k = j;
	while (cc(v, k, n, CC_SP))
		k++;
	if (k > j && k < n && v[k] == '(') {
		const char *close = memchr(v + k + 1, ')', n - k - 1);
		if (close) {
			par = v + k + 1;
			pl = (size_t)(close - par);
		}
	}
	size_t qa, qe;
	const char *ip = NULL;
	size_t il = 0;
	if (feat_find_quad(par, pl, &qa, &qe)) {
		ip = par + qa;
		il = qe - qa;
	} else if (feat_find_quad(helo, hl, &qa, &qe)) {
		ip = helo + qa;
		il = qe - qa;
	}
	size_t ra, re;
	bool have_rd = feat_rdns(par, pl, &ra, &re);
	const char *rd = have_rd ? par + ra : NULL;
	size_t rl = have_rd ? re - ra : 0;
	const char *kind = feat_isip(helo, hl) ? "ip" : memchr(helo, '.', hl) == NULL ? "nodot" : "fqdn";
	feat_emit3(c, pfx, "helo=", kind);
	feat_emit3(c, pfx, "rdns=", (!have_rd || (rl >= 7 && memcmp(rd, "unknown", 7) == 0)) ? "none" : "some");
	if (ip) {
		feat_emit3(c, pfx, "ip=", feat_private_ip(ip, il) ? "priv" : "pub");
	}
	if (strcmp(kind, "fqdn") == 0 && have_rd) {
		const char *hr = "diff";
		if (hl == rl && memcmp(helo, rd, hl) == 0) {
			hr = "same";
		} else {
			char d1[256], d2[256];
			feat_regdom(helo, hl, d1, sizeof(d1));
			feat_regdom(rd, rl, d2, sizeof(d2));
			if (strcmp(d1, d2) == 0)
				hr = "dom";
		}
		feat_emit3(c, pfx, "hr=", hr);
	}
	feat_host_add(hosts, helo, hl);
	if (have_rd)
		feat_host_add(hosts, rd, rl);
}

/* \bfor\s+<?([\w.+=-]+@[\w.-]+)>? in v: group 1 into env. */
static void
feat_for_addrs(const char *v, size_t n, struct feat_strset *env)
{
	for (size_t i = 0; i + 3 <= n; i++) {
		if (memcmp(v + i, "for", 3) != 0 || (i > 0 && cc(v, i - 1, n, CC_W)))
			continue;
		size_t k = i + 3;
		if (!cc(v, k, n, CC_SP))
			continue;
		while (cc(v, k, n, CC_SP))
			k++;
		if (k < n && v[k] == '<')
			k++;
		size_t a = k;
		while (cc(v, k, n, CC_LOCAL))
			k++;
		if (k == a || k >= n || v[k] != '@')
			continue;
		k++;
		size_t d = k;
		while (cc(v, k, n, CC_W) || (k < n && (v[k] == '.' || v[k] == '-')))
			k++;
		if (k == d)
			continue;
		feat_strset_add(env, v + a, k - a);
		if (k < n && v[k] == '>')
			k++;
		i = k - 1;
	}
}

static void
feat_addrs_into(const char *v, size_t n, struct feat_strset *set)
{
	size_t pos = 0, a, at, e;
	while (feat_next_addr(v, n, &pos, &a, &at, &e))
		feat_strset_add(set, v + a, e - a);
}

static size_t
feat_local_len(const char *a)
{
	const char *at = strchr(a, '@');
	return at ? (size_t)(at - a) : strlen(a);
}

static void
feat_rx(struct feat_ctx *c, const struct feat_msg *fm)
{
	size_t nr = 0;
	for (size_t i = 0; i < fm->n; i++)
		nr += (fm->h[i].kind & FH_RECEIVED) != 0;
	struct feat_strset *hosts = xcalloc(1, sizeof(*hosts));
	struct feat_strset *env = xcalloc(1, sizeof(*env));
	struct feat_strset *tocc = xcalloc(1, sizeof(*tocc));
	/* bottom-most (first added) hop first */
	size_t pos = 0;
	for (size_t i = fm->n; i > 0; i--) {
		const struct feat_hdr *h = &fm->h[i - 1];
		if (!(h->kind & FH_RECEIVED))
			continue;
		size_t vl;
		char *v = feat_lower(h->rawq, h->rl, h->rl, &vl);
		char p1[8], p2[8];
		snprintf(p1, sizeof(p1), "rx%zu:", pos < 2 ? pos : 2);
		size_t top = nr - 1 - pos;
		snprintf(p2, sizeof(p2), "rt%zu:", top < 2 ? top : 2);
		feat_hop(c, v, vl, p1, hosts);
		feat_hop(c, v, vl, p2, hosts);
		const char *semi = memchr(v, ';', vl);
		feat_for_addrs(v, semi ? (size_t)(semi - v) : vl, env);
		free(v);
		pos++;
	}
	char num[24];
	snprintf(num, sizeof(num), "%zu", nr < 8 ? nr : 8);
	feat_emitz(c, "rx:n=", num);
	char fd[256];
	if (feat_first_dom(fm, "from", fd, sizeof(fd)))
		feat_emitz(c, "cons:fromrcv=", feat_strset_has(hosts, fd, strlen(fd)) ? "match" : "nomatch");
	for (size_t i = 0; i < fm->n; i++) {
		const struct feat_hdr *h = &fm->h[i];
		if (h->kind & FH_ENV) {
			size_t vl;
			char *v = feat_lower(h->rawq, h->rl, h->rl, &vl);
			feat_addrs_into(v, vl, env);
			free(v);
		}
	}
	for (size_t i = 0; i < fm->n; i++)
		if (fm->h[i].kind & FH_TO)
			feat_addrs_into(fm->h[i].dv, fm->h[i].dl, tocc);
	for (size_t i = 0; i < fm->n; i++)
		if (fm->h[i].kind & FH_CC)
			feat_addrs_into(fm->h[i].dv, fm->h[i].dl, tocc);
	snprintf(num, sizeof(num), "%zu", tocc->n < 5 ? tocc->n : 5);
	feat_emitz(c, "rcpt:n=", num);
	if (env->n > 0) {
		const char *r = "no";
		for (size_t i = 0; i < env->n && strcmp(r, "addr") != 0; i++)
			if (feat_strset_has(tocc, env->v[i], strlen(env->v[i])))
				r = "addr";
		for (size_t i = 0; i < env->n && strcmp(r, "no") == 0; i++) {
			size_t el = feat_local_len(env->v[i]);
			for (size_t k = 0; k < tocc->n && strcmp(r, "no") == 0; k++)
				if (feat_local_len(tocc->v[k]) == el && memcmp(env->v[i], tocc->v[k], el) == 0)
					r = "local";
		}
		feat_emitz(c, "rcpt:env_in_to=", r);
	}
	feat_strset_free(hosts);
	feat_strset_free(env);
	feat_strset_free(tocc);
	free(hosts);
	free(env);
	free(tocc);
}

/* ---- group 2b: does a word of the From display name occur in its address? ------------ */

static void
feat_fromname(struct feat_ctx *c, const struct feat_msg *fm)
{
	const struct feat_hdr *h = feat_first(fm, "from");
	if (h == NULL)
		return;
	size_t pos = 0, a, at, e;
	if (!feat_next_addr(h->dv, h->dl, &pos, &a, &at, &e))
		return;
	/* [a-z0-9]{3,} in the value with the address cut out */
	char *rest = xmalloc(h->dl - (e - a) + 1);
	memcpy(rest, h->dv, a);
	memcpy(rest + a, h->dv + e, h->dl - e);
	size_t rl = h->dl - (e - a);
	const char *r = "none";
	for (size_t i = 0; i < rl;) {
		size_t s = i;
		while (i < rl && (is_lower(rest, i, rl) || is_digit(rest, i, rl)))
			i++;
		if (i - s >= 3) {
			if (strcmp(r, "none") == 0)
				r = "nomatch";
			if (memmem(h->dv + a, e - a, rest + s, i - s) != NULL) {
				r = "match";
				break;
			}
		}
		if (i == s)
			i++;
	}
	free(rest);
	feat_emitz(c, "cons:fromname=", r);
}

/* ---- group 3: shapes; group 4: header names and order --------------------------------- */

/* [A-Z]+ -> A, [a-z]+ -> a, [0-9]+ -> up to four 9s, [\x80-\xff]+ -> 8 */
static size_t
feat_shape(const char *s, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		unsigned char ch = (unsigned char)s[i];
		int k = (ch >= 'A' && ch <= 'Z') ? 1 : (ch >= 'a' && ch <= 'z') ? 2 : (ch >= '0' && ch <= '9') ? 3
		        : ch >= 0x80 ? 4 : 0;
		if (k == 0) {
			out[o++] = (char)ch;
			i++;
			continue;
		}
		size_t run = 0;
		while (i < n) {
			unsigned char d = (unsigned char)s[i];
			int kd = (d >= 'A' && d <= 'Z') ? 1 : (d >= 'a' && d <= 'z') ? 2 : (d >= '0' && d <= '9') ? 3
			         : d >= 0x80 ? 4 : 0;
			if (kd != k)
				break;
			run++;
			i++;
		}
		if (k == 3)
			for (size_t r = 0; r < run && r < 4; r++)
				out[o++] = '9';
		else
			out[o++] = "?Aa?8"[k];
	}
	return o;
}

static void
feat_shapes_names(struct feat_ctx *c, const struct feat_msg *fm)
{
	for (size_t i = 0; i < fm->n; i++) {
		const struct feat_hdr *h = &fm->h[i];
		if (!(h->kind & FH_SHAPE))
			continue;
		char sh[TOKENIZE_SHAPE_LEN], pre[32];
		size_t sl = feat_shape(h->rawq, h->rl < TOKENIZE_SHAPE_LEN ? h->rl : TOKENIZE_SHAPE_LEN, sh);
		/* "shape:" + name + "=": the names of FH_SHAPE are short */
		memcpy(pre, "shape:", 6);
		memcpy(pre + 6, h->name, h->nl);
		memcpy(pre + 6 + h->nl, "=", 2);
		feat_emit(c, pre, sh, sl);
	}
	const char *prev = "^";
	for (size_t i = 0; i < fm->n; i++) {
		const struct feat_hdr *h = &fm->h[i];
		if (h->kind & FH_EXCL)
			continue;
		feat_emit(c, "hn:", h->name, h->nl);
		size_t a = strlen(prev), b = strlen(h->name);
		char *pair = xmalloc(a + b + 2);
		memcpy(pair, prev, a);
		pair[a] = '>';
		memcpy(pair + a + 1, h->name, b + 1);
		feat_emit(c, "ho:", pair, a + 1 + b);
		free(pair);
		prev = h->name;
	}
}

/* ---- T only: MIME structure, sender consistency, body words ----------------------------- */

struct feat_url_doms {
	char d[64][128];
	size_t n;
};

/* regdoms of (?:https?|ftp)://([a-z0-9.-]+) in the lowercased body */
static void
feat_collect_url_doms(const char *body, size_t n, struct feat_url_doms *ud)
{
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
		while (e < n && (cc(body, e, n, CC_D) || body[e] == '.'))
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

static void
feat_body_groups(struct feat_ctx *c, const struct feat_msg *fm)
{
	const struct mime_msg *m = fm->m;
	/* 5: MIME structure */
	for (size_t i = 0; i < m->n_parts; i++) {
		const struct mime_part *p = &m->parts[i];
		const char *type = p->type[0] ? p->type : "text/plain";
		feat_emitz(c, "mime:", type);
		char tc[140];
		int l = snprintf(tc, sizeof(tc), "%s;%s", type, p->cte);
		feat_emit(c, "mime:", tc, (size_t)l);
		if (p->charset[0])
			feat_emitz(c, "mime:charset=", p->charset);
	}
	/* 6: sender consistency */
	size_t bl;
	char *body = feat_lower(m->text.data ? m->text.data : "", m->text.len, TOKENIZE_BODY_PREFIX, &bl);
	struct feat_url_doms *ud = xmalloc(sizeof(*ud));
	ud->n = 0;
	feat_collect_url_doms(body, bl, ud);
	/* links of HTML parts are not in the text: the recipe reads them in
	 * place of their tags */
	char **urls = xcalloc(m->n_urls ? m->n_urls : 1, sizeof(char *));
	size_t *ulen = xcalloc(m->n_urls ? m->n_urls : 1, sizeof(size_t));
	for (size_t i = 0; i < m->n_urls; i++) {
		urls[i] = feat_lower(m->urls[i], strlen(m->urls[i]), 2048, &ulen[i]);
		feat_collect_url_doms(urls[i], ulen[i], ud);
	}
	char nurl[8];
	snprintf(nurl, sizeof(nurl), "%zu", ud->n < 5 ? ud->n : 5);
	feat_emitz(c, "cons:nurl=", nurl);
	char fd[256];
	if (feat_first_dom(fm, "from", fd, sizeof(fd))) {
		if (ud->n > 0) {
			bool match = false;
			for (size_t k = 0; k < ud->n && !match; k++)
				match = strcmp(ud->d[k], fd) == 0;
			feat_emitz(c, "cons:urlfrom=", match ? "match" : "nomatch");
		}
		static const char *const others[] = {"reply-to", "message-id", "sender"};
		for (int k = 0; k < 3; k++) {
			char od[256], pre[40];
			if (!feat_first_dom(fm, others[k], od, sizeof(od)))
				continue;
			snprintf(pre, sizeof(pre), "cons:%s=", others[k]);
			feat_emitz(c, pre, strcmp(od, fd) == 0 ? "match" : "nomatch");
		}
	}
	free(ud);
	/* 7: body words */
	struct feat_pfx p;
	feat_pfx_init(&p, c, "", 0);
	feat_tokens(&p, body, bl);
	for (size_t i = 0; i < m->n_urls; i++) {
		feat_tokens(&p, urls[i], ulen[i]);
		free(urls[i]);
	}
	free(urls);
	free(ulen);
	/* parts that are not text read as "[part TYPE FILENAME]" */
	for (size_t i = 0; i < m->n_parts; i++) {
		const struct mime_part *mp = &m->parts[i];
		const char *type = mp->type[0] ? mp->type : "text/plain";
		if (strcmp(type, "text/plain") == 0 || strcmp(type, "text/html") == 0 ||
		    strncmp(type, "multipart/", 10) == 0 || strcmp(type, "message/rfc822") == 0)
			continue;
		feat_emit(c, "", "part", 4);
		feat_tokens(&p, type, strlen(type));
		if (mp->filename) {
			size_t fl;
			char *fn = feat_lower(mp->filename, strlen(mp->filename), 1024, &fl);
			feat_tokens(&p, fn, fl);
			free(fn);
		}
	}
	free(body);
}

/* ---- sorting and the entry points ------------------------------------------------------- */

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
	pthread_once(&feat_cc_once, feat_cc_init);
	if (feat_bits == NULL) {
		feat_bits = xcalloc(TOKENIZE_SPACE / 64, sizeof(uint64_t));
		pthread_setspecific(feat_bits_key, feat_bits);
	}
	f->set[TOKENIZE_R].v = xgrow(NULL, &f->set[TOKENIZE_R].cap, TOKENIZE_R_PREFIX, sizeof(uint32_t));
	feat_model_r(m, &f->set[TOKENIZE_R]);
	feat_done(&f->set[TOKENIZE_R]);
	/* T and H in one walk: T as a set, H's indices raw, made a set once
	 * T's bits are cleared */
	struct feat_msg fm;
	feat_msg_init(&fm, m);
	struct tokenize_set hs = {0};
	struct feat_ctx c = {&f->set[TOKENIZE_T], &hs};
	feat_values(&c, &fm);
	feat_rx(&c, &fm);
	feat_fromname(&c, &fm);
	feat_shapes_names(&c, &fm);
	c.h = NULL;
	feat_body_groups(&c, &fm);
	feat_msg_clear(&fm);
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

/* Exposed for the unit tests. */
size_t
tokenize_shape(const char *s, size_t n, char *out)
{
	return feat_shape(s, n, out);
}

void
tokenize_regdom(const char *host, size_t n, char *out, size_t outlen)
{
	feat_regdom(host, n, out, outlen);
}

bool
tokenize_excluded(const char *name)
{
	return feat_excluded(name);
}
