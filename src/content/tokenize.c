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
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "str.h"
#define XXH_INLINE_ALL
#include <xxhash.h>
#include "xalloc.h"

#define TOKENIZE_R_PREFIX 3000
#define TOKENIZE_BODY_PREFIX 20000
#define TOKENIZE_TOKEN_MAX 40
#define TOKENIZE_SHAPE_LEN 40
#define TOKENIZE_SET_MAX 256 /* distinct addresses or hosts remembered per message */
#define FNV32_INIT 0x811c9dc5u

void (*tokenize_trace)(bool header, const char *prefix, size_t plen, const char *s, size_t n);

/* Headers that carry another filter's verdict, or the reader's: no token. */
static const char *const tokenize_excl_prefix[] = {
	"x-spam", "x-spamcop", "x-virus", "x-mailscanner", "x-razor", "x-rbl",
	"x-antiabuse", "x-gmx-antispam", "x-dcc", "x-bogosity", "x-spamtest", NULL,
};
static const char *const tokenize_excl_sub[] = {"spam", "virus", "junk", "razor", "bogosity", "scan", "dcc",
                                            NULL};

/* The per-thread bitmap; the key frees it when a thread ends. */
static _Thread_local uint64_t *tokenize_bits;
/* For R: a bit per word of the bitmap that has one set, so that R's set
 * is read out of the bitmap in ascending order, without a sort. */
static _Thread_local uint64_t tokenize_bits_sum[TOKENIZE_SPACE / 64 / 64];
static pthread_key_t tokenize_bits_key;
static pthread_key_t tokenize_sort_key; /* frees a thread's sort scratch */

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
	/* The same message stored in different ways is one example:
	 * - CRLF counts as LF;
	 * - a line that starts with '>'s and "From " counts without the '>'s,
	 *   the escape an mbox writer adds (">From " in mboxo, one ">" more in
	 *   mboxrd), so a message learned from its own file and from an mbox
	 *   (either kind) is learned once.
	 * XXH3 streams at memory speed where byte-wise FNV-1a took 7 us of a
	 * learned message's 50; streamed in pieces it hashes the same as in
	 * one piece, so only messages with CR or ">From " take the slower path. */
	const char *s = m->raw;
	size_t n = m->raw_len;
	const char *cr = n ? memchr(s, '\r', n) : NULL;
	const char *gt = mx_memmem2(s, n, ">From ", 6);
	if (cr == NULL && gt == NULL)
		return XXH3_64bits(s, n);
	XXH3_state_t st;
	XXH3_64bits_reset(&st);
	size_t from = 0;
	while (cr != NULL || gt != NULL) {
		if (cr != NULL && (gt == NULL || cr < gt)) {
			size_t at = (size_t)(cr - s);
			if (at + 1 < n && s[at + 1] == '\n') {
				XXH3_64bits_update(&st, s + from, at - from);
				from = at + 1;
			}
			cr = at + 1 < n ? memchr(s + at + 1, '\r', n - at - 1) : NULL;
		} else {
			size_t at = (size_t)(gt - s), b = at; /* at: the last '>' of the run */
			while (b > from && s[b - 1] == '>')
				b--;
			if (b == 0 || s[b - 1] == '\n') {
				XXH3_64bits_update(&st, s + from, b - from);
				from = at + 1;
			}
			gt = at + 6 < n ? mx_memmem2(s + at + 6, n - at - 6, ">From ", 6) : NULL;
		}
	}
	XXH3_64bits_update(&st, s + from, n - from);
	return XXH3_64bits_digest(&st);
}

/* ---- sets ----------------------------------------------------------------------- */

static inline void
tokenize_add(struct tokenize_set *s, uint32_t idx)
{
	uint64_t bit = 1ull << (idx & 63);
	uint64_t *word = &tokenize_bits[idx >> 6];
	if (*word & bit)
		return;
	*word |= bit;
	if (s->n == s->cap)
		s->v = xgrow(s->v, &s->cap, s->n + 1, sizeof(uint32_t));
	s->v[s->n++] = idx;
}

/* Clears the bitmap for the indices of s (the set itself stays). */
static void
tokenize_done(struct tokenize_set *s)
{
	/* locals: the bitmap's words are of the set's length's type, so the
	 * compiler would reload both after every store */
	const uint32_t *v = s->v;
	uint64_t *bits = tokenize_bits;
	for (size_t i = 0, n = s->n; i < n; i++)
		bits[v[i] >> 6] = 0;
}

/* Appends without the repeat check (H is filled alongside T; it is made a
 * set afterwards, see tokenize_extract). */
static inline void
tokenize_push(struct tokenize_set *s, uint32_t idx)
{
	if (s->n == s->cap)
		s->v = xgrow(s->v, &s->cap, s->n + 1, sizeof(uint32_t));
	s->v[s->n++] = idx;
}

/* Where tokens go: t always (as a set), h too for header tokens. */
struct tokenize_ctx {
	struct tokenize_set *t;
	struct tokenize_set *h; /* NULL while emitting T-only groups */
};

/* Adds the token prefix + s whose FNV hash is h. */
static inline void
tokenize_put(struct tokenize_ctx *c, uint32_t h, const char *pre, size_t pl, const char *s, size_t n)
{
	uint32_t idx = tokenize_fold(h);
	tokenize_add(c->t, idx);
	if (c->h)
		tokenize_push(c->h, idx);
	if (tokenize_trace)
		tokenize_trace(c->h != NULL, pre, pl, s, n);
}

/* Emits prefix + s; ph is the FNV state after the prefix. */
static void
tokenize_emit_h(struct tokenize_ctx *c, const char *pre, size_t pl, uint32_t ph, const char *s, size_t n)
{
	tokenize_put(c, tokenize_fnv1a32(s, n, ph), pre, pl, s, n);
}

static void
tokenize_emit(struct tokenize_ctx *c, const char *pre, const char *s, size_t n)
{
	size_t pl = strlen(pre);
	tokenize_emit_h(c, pre, pl, tokenize_fnv1a32(pre, pl, FNV32_INIT), s, n);
}

static void
tokenize_emitz(struct tokenize_ctx *c, const char *pre, const char *s)
{
	tokenize_emit(c, pre, s, strlen(s));
}

/* Emits a + b + s (a and b short: a prefix in two parts). */
static void
tokenize_emit3(struct tokenize_ctx *c, const char *a, const char *b, const char *s)
{
	char pre[64];
	size_t al = strlen(a), bl = strlen(b);
	if (al + bl >= sizeof(pre))
		return;
	memcpy(pre, a, al);
	memcpy(pre + al, b, bl + 1);
	tokenize_emit_h(c, pre, al + bl, tokenize_fnv1a32(pre, al + bl, FNV32_INIT), s, strlen(s));
}

/* ---- character classes ------------------------------------------------------------ */

#define TOKENIZE_CC_TOK 0x01   /* [A-Za-z0-9\x80-\xff$'._@/:%?=&#-]: part of a token */
#define TOKENIZE_CC_STRIP 0x02 /* .:'-?&=/ : stripped from a token's ends */
#define TOKENIZE_CC_W 0x04     /* \w (ASCII): [A-Za-z0-9_] */
#define TOKENIZE_CC_D 0x08     /* [a-z0-9-]: a lowercase host label */
#define TOKENIZE_CC_LOCAL 0x10 /* [\w.+=-]: an address's local part */
#define TOKENIZE_CC_SP 0x20    /* \s: [ \t\n\r\f\v] */
#define TOKENIZE_CC_RDN 0x40   /* [\w.+-] */
static unsigned char tokenize_cc_tab[256];
static pthread_once_t tokenize_cc_once = PTHREAD_ONCE_INIT;

static void
tokenize_cc_init(void)
{
	pthread_key_create(&tokenize_bits_key, free);
	pthread_key_create(&tokenize_sort_key, free);
	for (int c = 1; c < 256; c++) {
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		bool w = alnum || c == '_';
		unsigned char k = 0;
		if (alnum || c >= 0x80 || strchr("$'._@/:%?=&#-", c) != NULL)
			k |= TOKENIZE_CC_TOK;
		if (strchr(".:'-?&=/", c) != NULL)
			k |= TOKENIZE_CC_STRIP;
		if (w)
			k |= TOKENIZE_CC_W;
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')
			k |= TOKENIZE_CC_D;
		if (w || strchr(".+=-", c) != NULL)
			k |= TOKENIZE_CC_LOCAL;
		if (strchr(" \t\n\r\f\v", c) != NULL)
			k |= TOKENIZE_CC_SP;
		if (w || strchr(".+-", c) != NULL)
			k |= TOKENIZE_CC_RDN;
		tokenize_cc_tab[c] = k;
	}
}

static inline bool
tokenize_cc(const char *s, size_t i, size_t n, unsigned char cls)
{
	return i < n && (tokenize_cc_tab[(unsigned char)s[i]] & cls) != 0;
}

static inline bool
tokenize_isdigit(const char *s, size_t i, size_t n)
{
	return i < n && s[i] >= '0' && s[i] <= '9';
}

static inline bool
tokenize_islower(const char *s, size_t i, size_t n)
{
	return i < n && s[i] >= 'a' && s[i] <= 'z';
}

bool
tokenize_excluded(const char *name)
{
	if (name[0] == 'x' && name[1] == '-') /* every prefix starts so */
		for (const char *const *p = tokenize_excl_prefix; *p; p++)
			if (strncmp(name, *p, strlen(*p)) == 0)
				return true;
	for (const char *const *p = tokenize_excl_sub; *p; p++)
		if (strstr(name, *p) != NULL)
			return true;
	return strcmp(name, "x-keywords") == 0;
}

/* ---- the tokenizer -------------------------------------------------------------- */

struct tokenize_pfx {
	struct tokenize_ctx *c;
	const char *pre;
	size_t pl;
	uint32_t ph; /* FNV state after the prefix */
};

static void
tokenize_pfx_init(struct tokenize_pfx *p, struct tokenize_ctx *c, const char *pre, size_t pl)
{
	p->c = c;
	p->pre = pre;
	p->pl = pl;
	p->ph = tokenize_fnv1a32(pre, pl, FNV32_INIT);
}

/* Emits prefix + s[0..n), a run of token characters with no separator
 * in it, as tokenize_tokens() takes a token: stripped of .:'-?&=/ at both
 * ends, kept when 1 to 40 bytes remain. */
static void
tokenize_word(struct tokenize_pfx *p, const char *s, size_t n)
{
	while (n > 0 && (tokenize_cc_tab[(unsigned char)s[0]] & TOKENIZE_CC_STRIP))
		s++, n--;
	while (n > 0 && (tokenize_cc_tab[(unsigned char)s[n - 1]] & TOKENIZE_CC_STRIP))
		n--;
	if (n > 0 && n <= TOKENIZE_TOKEN_MAX)
		tokenize_put(p->c, tokenize_fnv1a32(s, n, p->ph), p->pre, p->pl, s, n);
}

/* What the character at s (n bytes left) is to the tokenizer, and its
 * length (*len): 1 a CJK ideograph or kana (U+3040 to U+9FFF), or a
 * letter of the other scripts written without spaces between words
 * (Thai and Lao, U+0E00 to U+0EFF; Myanmar, U+1000 to U+109F; Khmer,
 * U+1780 to U+17FF), 2 CJK or
 * fullwidth punctuation (U+3000 to U+303F, U+FF01 to U+FF65 but letters
 * and digits), which separates words as a space does; 0 anything else. */
static int
tokenize_cjk_kind(const unsigned char *s, size_t n, size_t *len)
{
	*len = 1;
	if (s[0] < 0xe0 || s[0] > 0xef || n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
		return 0;
	*len = 3;
	unsigned cp = (unsigned)(s[0] & 0x0f) << 12 | (unsigned)(s[1] & 0x3f) << 6 | (s[2] & 0x3fu);
	if ((cp >= 0x3040 && cp <= 0x9fff) || (cp >= 0x0e00 && cp <= 0x0eff) || (cp >= 0x1000 && cp <= 0x109f) ||
	    (cp >= 0x1780 && cp <= 0x17ff))
		return 1;
	if ((cp >= 0x3000 && cp <= 0x303f) || (cp >= 0xff01 && cp <= 0xff0f) || (cp >= 0xff1a && cp <= 0xff20) ||
	    (cp >= 0xff3b && cp <= 0xff40) || (cp >= 0xff5b && cp <= 0xff65))
		return 2;
	return 0;
}

/* A run that holds CJK text.  Chinese and Japanese (and Thai, Lao,
 * Khmer and Myanmar) put no spaces between words, so a run would be a
 * whole sentence, longer than a token may be:
 * each stretch of ideographs and kana gives its character bigrams (one
 * character alone gives itself), the usual way to index such text
 * without a dictionary; CJK punctuation separates; what lies between
 * is taken as words. */
static void
tokenize_run_cjk(struct tokenize_pfx *p, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, seg = 0, l;
	while (i < n) {
		int k = tokenize_cjk_kind(u + i, n - i, &l);
		if (k == 0) {
			i += l;
			continue;
		}
		tokenize_word(p, s + seg, i - seg);
		size_t j = i + l;
		if (k == 1) {
			while (j < n && tokenize_cjk_kind(u + j, n - j, &l) == 1)
				j += 3;
			if (j - i == 3)
				tokenize_put(p->c, tokenize_fnv1a32(s + i, 3, p->ph), p->pre, p->pl, s + i, 3);
			for (size_t q = i; q + 6 <= j; q += 3)
				tokenize_put(p->c, tokenize_fnv1a32(s + q, 6, p->ph), p->pre, p->pl, s + q, 6);
		}
		i = seg = j;
	}
	tokenize_word(p, s + seg, n - seg);
}

/* Lower-cases the capitals of Latin-1, Latin Extended-A (the letters of
 * Polish, Czech, Turkish, Hungarian, ...), Greek and Cyrillic in s[0..n) in
 * place (ASCII is lower-cased already): each is two bytes in UTF-8, and so
 * is its small letter.  "ÉTÉ", "Été" and "été" are one word, as are
 * "БЕСПЛАТНО" and "бесплатно". */
static void
tokenize_fold2(unsigned char *s, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++) {
		unsigned char a = s[i], b = s[i + 1];
		if (a == 0xc3 && b >= 0x80 && b <= 0x9e && b != 0x97) {        /* À-Þ, not × */
			s[i + 1] = (unsigned char)(b + 0x20);
		} else if (a == 0xce && b >= 0x91 && b <= 0xa9 && b != 0xa2) { /* Α-Ω */
			if (b <= 0x9f)
				s[i + 1] = (unsigned char)(b + 0x20);
			else
				s[i] = 0xcf, s[i + 1] = (unsigned char)(b - 0x20);
		} else if ((a == 0xc4 || a == 0xc5) && (b & 0xc0) == 0x80) { /* Latin Extended-A */
			unsigned cp = (unsigned)(a & 0x1f) << 6 | (b & 0x3fu), lc;
			if (cp == 0x178)
				lc = 0xff; /* Ÿ: ÿ */
			else if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17e))
				lc = cp & 1 ? cp + 1 : cp; /* capitals odd, Ĺ-Ň and Ź-Ž */
			else if (cp <= 0x177 && cp != 0x130 && cp != 0x138 && cp != 0x149)
				lc = cp & 1 ? cp : cp + 1; /* capitals even: Ā-ķ, Ŋ-ŷ (İ has no
				                             * one-letter small form) */
			else
				lc = cp;
			s[i] = (unsigned char)(0xc0 | lc >> 6);
			s[i + 1] = (unsigned char)(0x80 | (lc & 0x3f));
		} else if (a == 0xd0 && b >= 0x80 && b <= 0xaf) { /* Ѐ-Я */
			if (b <= 0x8f)
				s[i] = 0xd1, s[i + 1] = (unsigned char)(b + 0x10);
			else if (b <= 0x9f)
				s[i + 1] = (unsigned char)(b + 0x20);
			else
				s[i] = 0xd1, s[i + 1] = (unsigned char)(b - 0x20);
		} else {
			continue;
		}
		i++;
	}
}

/* A run with bytes from 0xc3 up (the lead bytes of the letters
 * tokenize_fold2 folds and of CJK text): folded in a copy, then split as
 * tokenize_run_cjk does (which takes a run without CJK text as one word,
 * the word the plain path would give). */
static void
tokenize_run_folded(struct tokenize_pfx *p, const char *s, size_t n)
{
	char small[512];
	char *b = n <= sizeof(small) ? small : xmalloc(n);
	memcpy(b, s, n);
	tokenize_fold2((unsigned char *)b, n);
	tokenize_run_cjk(p, b, n);
	if (b != small)
		free(b);
}

/* Emits prefix + each token of s: maximal runs of
 * [A-Za-z0-9\x80-\xff$'._@/:%?=&#-] stripped of .:'-?&=/ at both ends,
 * 1 to 40 bytes kept; a run with CJK text in it is split further
 * (tokenize_run_cjk).  One pass: leading strip characters are skipped
 * with the separators, and the hash is kept as it stood after the last
 * character that is not stripped. */
static void
tokenize_tokens(struct tokenize_pfx *p, const char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		while (i < n && (tokenize_cc_tab[(unsigned char)s[i]] & (TOKENIZE_CC_TOK | TOKENIZE_CC_STRIP)) != TOKENIZE_CC_TOK)
			i++;
		if (i == n)
			break;
		size_t a = i, b = i;
		uint32_t h = p->ph, hb = h;
		unsigned wide = 0; /* a lead byte of a letter tokenize_fold2 folds, or of CJK text */
		while (i < n && (tokenize_cc_tab[(unsigned char)s[i]] & TOKENIZE_CC_TOK)) {
			unsigned char ch = (unsigned char)s[i];
			h = (h ^ ch) * 0x01000193u;
			wide |= ch >= 0xc3;
			if (!(tokenize_cc_tab[ch] & TOKENIZE_CC_STRIP)) {
				hb = h;
				b = i + 1;
			}
			i++;
		}
		if (wide)
			tokenize_run_folded(p, s + a, i - a);
		else if (b - a <= TOKENIZE_TOKEN_MAX)
			tokenize_put(p->c, hb, p->pre, p->pl, s + a, b - a);
	}
}

/* ---- text helpers ------------------------------------------------------------------ */

/* Copies n bytes of s to o, ASCII lower-cased (o and s do not overlap),
 * sixteen at a time where SSE2 is there: the headers and the text of
 * every message go through here. */
static void
tokenize_lower_into(char *o, const char *s, size_t n)
{
	size_t i = 0;
#if defined(__SSE2__)
	const __m128i before_a = _mm_set1_epi8('A' - 1), after_z = _mm_set1_epi8('Z' + 1),
	              case_bit = _mm_set1_epi8(0x20);
	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		/* signed compares: bytes >= 0x80 are negative, never upper case */
		__m128i upper = _mm_and_si128(_mm_cmpgt_epi8(v, before_a), _mm_cmplt_epi8(v, after_z));
		_mm_storeu_si128((__m128i *)(void *)(o + i), _mm_or_si128(v, _mm_and_si128(upper, case_bit)));
	}
#endif
	for (; i < n; i++)
		o[i] = mx_tolower(s[i]);
}

/* Copies n bytes of s to o with every byte >= 0x80 made '?' (no
 * overlap), sixteen at a time where SSE2 is there. */
static void
tokenize_ascii_into(char *o, const char *s, size_t n)
{
	size_t i = 0;
#if defined(__SSE2__)
	const __m128i zero = _mm_setzero_si128(), q = _mm_set1_epi8('?');
	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		__m128i high = _mm_cmplt_epi8(v, zero);
		_mm_storeu_si128((__m128i *)(void *)(o + i),
		                 _mm_or_si128(_mm_and_si128(high, q), _mm_andnot_si128(high, v)));
	}
#endif
	for (; i < n; i++)
		o[i] = (unsigned char)s[i] >= 0x80 ? '?' : s[i];
}

/* ASCII-lowercased copy of at most cap bytes. */
static char *
tokenize_lower(const char *s, size_t n, size_t cap, size_t *outlen)
{
	if (n > cap)
		n = cap;
	char *o = xmalloc(n + 1);
	tokenize_lower_into(o, s, n);
	o[n] = '\0';
	*outlen = n;
	return o;
}

/* The registered domain of a host: all-numeric labels as is; else the
 * last three labels for NAME.SLD.CC (CC of 2 letters, SLD of at most 3),
 * else the last two. Leading and trailing dots are dropped. */
void
tokenize_regdom(const char *host, size_t n, char *out, size_t outlen)
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
tokenize_at_domain(const char *s, size_t n, char *out, size_t outlen)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '@')
			continue;
		size_t j = i + 1, labels = 0, end = 0;
		for (;;) {
			size_t ls = j;
			while (tokenize_cc(s, j, n, TOKENIZE_CC_D))
				j++;
			if (j == ls)
				break;
			labels++;
			end = j;
			if (j < n && s[j] == '.' && tokenize_cc(s, j + 1, n, TOKENIZE_CC_D))
				j++;
			else
				break;
		}
		if (labels >= 2) {
			tokenize_regdom(s + i + 1, end - i - 1, out, outlen);
			return true;
		}
	}
	return false;
}

/* End of ([\w-]+\.)+[\w-]+ at j (greedy), or 0 when it does not match. */
static size_t
tokenize_dom_end(const char *s, size_t n, size_t j)
{
	size_t labels = 0, end = 0;
	for (;;) {
		size_t ls = j;
		while (j < n && (tokenize_cc(s, j, n, TOKENIZE_CC_W) || s[j] == '-'))
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
tokenize_next_addr(const char *s, size_t n, size_t *pos, size_t *a, size_t *at, size_t *e)
{
	for (size_t i = *pos; i < n; i++) {
		if (s[i] != '@')
			continue;
		size_t b = i;
		while (b > *pos && tokenize_cc(s, b - 1, n, TOKENIZE_CC_LOCAL))
			b--;
		if (b == i)
			continue;
		size_t end = tokenize_dom_end(s, n, i + 1);
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
tokenize_host_at(const char *s, size_t n, size_t p, size_t *run)
{
	size_t j = p;
	while (tokenize_cc(s, j, n, TOKENIZE_CC_D))
		j++;
	*run = j;
	if (j == p)
		return 0;
	size_t dots = 0;
	while (j < n && s[j] == '.' && tokenize_cc(s, j + 1, n, TOKENIZE_CC_D)) {
		j++;
		while (tokenize_cc(s, j, n, TOKENIZE_CC_D))
			j++;
		dots++;
	}
	return dots ? j : 0;
}

/* End of \d{1,3}(?:\.\d{1,3}){3} at p, or 0. */
static size_t
tokenize_quad_at(const char *s, size_t n, size_t p)
{
	size_t j = p;
	for (int k = 0; k < 4; k++) {
		size_t d = j;
		while (tokenize_isdigit(s, j, n))
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
tokenize_isip(const char *s, size_t n)
{
	size_t a = 0, b = n;
	if (a < b && s[a] == '[')
		a++;
	if (b > a && s[b - 1] == ']')
		b--;
	return b > a && tokenize_quad_at(s + a, b - a, 0) == b - a;
}

/* Group 1 of the first \[?(\d{1,3}(?:\.\d{1,3}){3})\]? in s. */
static bool
tokenize_find_quad(const char *s, size_t n, size_t *qa, size_t *qe)
{
	for (size_t p = 0; p < n; p++) {
		if (!tokenize_isdigit(s, p, n))
			continue;
		size_t e = tokenize_quad_at(s, n, p);
		if (e) {
			*qa = p;
			*qe = e;
			return true;
		}
	}
	return false;
}

/* A set of short strings (addresses, domains), at most TOKENIZE_SET_MAX. */
struct tokenize_strset {
	char *v[TOKENIZE_SET_MAX];
	size_t n;
};

static bool
tokenize_strset_has(const struct tokenize_strset *s, const char *p, size_t n)
{
	for (size_t i = 0; i < s->n; i++)
		if (strlen(s->v[i]) == n && memcmp(s->v[i], p, n) == 0)
			return true;
	return false;
}

static void
tokenize_strset_add(struct tokenize_strset *s, const char *p, size_t n)
{
	if (s->n < TOKENIZE_SET_MAX && !tokenize_strset_has(s, p, n))
		s->v[s->n++] = xstrndup(p, n);
}

static void
tokenize_strset_free(struct tokenize_strset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	s->n = 0;
}

/* ---- the message's headers as the recipe sees them ------------------------------------ */

/* What the recipe does with a header, decided once from its name. */
#define TOKENIZE_HDR_EXCL 0x001     /* excluded: no token at all */
#define TOKENIZE_HDR_DATE 0x002
#define TOKENIZE_HDR_ADDR 0x004     /* k:dom= tokens */
#define TOKENIZE_HDR_SHAPE 0x008
#define TOKENIZE_HDR_RECEIVED 0x010
#define TOKENIZE_HDR_ENV 0x020      /* delivered-to, x-original-to, envelope-to */
#define TOKENIZE_HDR_TO 0x040
#define TOKENIZE_HDR_CC 0x080

struct tokenize_hdr {
	char *name;   /* lowercase */
	char *rawq;   /* unfolded raw value, bytes >= 0x80 as '?' */
	char *dv;     /* rawq RFC 2047-decoded, UTF-8, ASCII-lowercased */
	size_t nl, rl, dl;
	unsigned kind;
	bool dv_own; /* dv was decoded into its own allocation */
};

struct tokenize_msg {
	const struct mime_msg *m;
	struct tokenize_hdr *h;
	size_t n;
	char *arena; /* the strings above, in one allocation */
};

/* The names the recipe treats specially, sorted for bsearch. */
static const struct tokenize_named {
	const char *name;
	unsigned kind;
} tokenize_named[] = {
	{"cc", TOKENIZE_HDR_ADDR | TOKENIZE_HDR_CC},
	{"content-type", TOKENIZE_HDR_SHAPE},
	{"date", TOKENIZE_HDR_DATE | TOKENIZE_HDR_SHAPE},
	{"delivered-to", TOKENIZE_HDR_ADDR | TOKENIZE_HDR_ENV},
	{"delivery-date", TOKENIZE_HDR_DATE},
	{"envelope-to", TOKENIZE_HDR_ADDR | TOKENIZE_HDR_ENV},
	{"errors-to", TOKENIZE_HDR_ADDR},
	{"from", TOKENIZE_HDR_ADDR | TOKENIZE_HDR_SHAPE},
	{"mail-followup-to", TOKENIZE_HDR_ADDR},
	{"message-id", TOKENIZE_HDR_SHAPE},
	{"received", TOKENIZE_HDR_RECEIVED},
	{"reply-to", TOKENIZE_HDR_ADDR | TOKENIZE_HDR_SHAPE},
	{"resent-date", TOKENIZE_HDR_DATE},
	{"resent-from", TOKENIZE_HDR_ADDR},
	{"resent-to", TOKENIZE_HDR_ADDR},
	{"return-path", TOKENIZE_HDR_ADDR | TOKENIZE_HDR_SHAPE},
	{"sender", TOKENIZE_HDR_ADDR},
	{"subject", TOKENIZE_HDR_SHAPE},
	{"to", TOKENIZE_HDR_ADDR | TOKENIZE_HDR_SHAPE | TOKENIZE_HDR_TO},
	{"x-apparently-to", TOKENIZE_HDR_ADDR},
	{"x-envelope-from", TOKENIZE_HDR_ADDR},
	{"x-envelope-to", TOKENIZE_HDR_ADDR},
	{"x-mailer", TOKENIZE_HDR_SHAPE},
	{"x-original-date", TOKENIZE_HDR_DATE},
	{"x-original-to", TOKENIZE_HDR_ADDR | TOKENIZE_HDR_ENV},
	{"x-sender", TOKENIZE_HDR_ADDR},
};

static int
tokenize_named_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct tokenize_named *)elem)->name);
}

static unsigned
tokenize_kind(const char *name)
{
	const struct tokenize_named *f = bsearch(name, tokenize_named, sizeof(tokenize_named) / sizeof(tokenize_named[0]),
	                                     sizeof(tokenize_named[0]), tokenize_named_cmp);
	return (f ? f->kind : 0) | (tokenize_excluded(name) ? TOKENIZE_HDR_EXCL : 0);
}

/* Header names repeat from message to message: their kinds are cached per
 * thread (direct-mapped by hash; a collision just recomputes). */
#define FEAT_KIND_CACHE 512
struct tokenize_kind_slot {
	char name[32];
	unsigned kind;
};
static _Thread_local struct tokenize_kind_slot tokenize_kind_cache[FEAT_KIND_CACHE];

static unsigned
tokenize_kind_cached(const char *name, size_t nl)
{
	if (nl >= sizeof(tokenize_kind_cache[0].name))
		return tokenize_kind(name);
	struct tokenize_kind_slot *slot =
		&tokenize_kind_cache[tokenize_fnv1a32(name, nl, FNV32_INIT) % FEAT_KIND_CACHE];
	if (memcmp(slot->name, name, nl + 1) != 0) {
		memcpy(slot->name, name, nl + 1);
		slot->kind = tokenize_kind(name);
	}
	return slot->kind;
}

static void
tokenize_msg_init(struct tokenize_msg *fm, const struct mime_msg *m)
{
	fm->m = m;
	fm->n = m->n_hdrs;
	fm->h = xcalloc(fm->n ? fm->n : 1, sizeof(*fm->h));
	size_t total = 1;
	for (size_t i = 0; i < fm->n; i++) {
		struct tokenize_hdr *h = &fm->h[i];
		h->nl = strlen(m->hdrs[i].name);
		h->rl = m->hdrs[i].raw_value ? strlen(m->hdrs[i].raw_value) : 0;
		total += (h->nl + 1) + 2 * (h->rl + 1);
	}
	/* names and raw values in one allocation; decoded values are copies
	 * of the raw ones unless they hold encoded words */
	char *a = fm->arena = xmalloc(total);
	for (size_t i = 0; i < fm->n; i++) {
		struct tokenize_hdr *h = &fm->h[i];
		h->name = a;
		tokenize_lower_into(a, m->hdrs[i].name, h->nl + 1); /* with its NUL */
		a += h->nl + 1;
		h->kind = tokenize_kind_cached(h->name, h->nl);
		const char *rv = m->hdrs[i].raw_value ? m->hdrs[i].raw_value : "";
		h->rawq = a;
		tokenize_ascii_into(a, rv, h->rl + 1);
		a += h->rl + 1;
		if (mx_memmem2(h->rawq, h->rl, "=?", 2) == NULL) {
			h->dv = a;
			h->dl = h->rl;
			tokenize_lower_into(a, h->rawq, h->rl + 1);
		} else {
			char *d = mime_decode_words(h->rawq);
			h->dv = tokenize_lower(d, strlen(d), SIZE_MAX, &h->dl);
			h->dv_own = true;
			free(d);
		}
		a += h->rl + 1;
	}
}

static void
tokenize_msg_clear(struct tokenize_msg *fm)
{
	for (size_t i = 0; i < fm->n; i++)
		if (fm->h[i].dv_own)
			free(fm->h[i].dv);
	free(fm->arena);
	free(fm->h);
}

static const struct tokenize_hdr *
tokenize_first(const struct tokenize_msg *fm, const char *name)
{
	for (size_t i = 0; i < fm->n; i++)
		if (strcmp(fm->h[i].name, name) == 0)
			return &fm->h[i];
	return NULL;
}

/* first_dom(name): the regdom of the first @domain in the first such header. */
static bool
tokenize_first_dom(const struct tokenize_msg *fm, const char *name, char *out, size_t outlen)
{
	const struct tokenize_hdr *h = tokenize_first(fm, name);
	return h != NULL && tokenize_at_domain(h->dv, h->dl, out, outlen);
}

/* ---- model R ---------------------------------------------------------------------- */

/* The index of each of the n 4-grams of t (n + 3 bytes) into out: FNV-1a
 * of the gram, folded. */
static void
tokenize_grams_one(const unsigned char *u, size_t from, size_t n, uint32_t *out)
{
	for (size_t g = from; g < n; g++) {
		uint32_t h = FNV32_INIT;
		for (int j = 0; j < 4; j++)
			h = (h ^ u[g + j]) * 0x01000193u;
		out[g] = tokenize_fold(h);
	}
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The same, eight grams at a time in AVX2 lanes: the grams are
 * independent, and one at a time each took four multiplications of its
 * own. The same arithmetic, so the same indices. */
__attribute__((target("avx2"))) static void
tokenize_grams_avx2(const unsigned char *u, size_t n, uint32_t *out)
{
	const __m256i init = _mm256_set1_epi32((int)FNV32_INIT), prime = _mm256_set1_epi32(0x01000193);
	const __m256i mask = _mm256_set1_epi32(TOKENIZE_SPACE - 1);
	size_t g = 0;
	for (; g + 8 <= n; g += 8) {
		__m256i h = init;
		for (int j = 0; j < 4; j++) {
			__m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(u + g + j)));
			h = _mm256_mullo_epi32(_mm256_xor_si256(h, b), prime);
		}
		h = _mm256_and_si256(_mm256_xor_si256(_mm256_srli_epi32(h, TOKENIZE_BITS), h), mask);
		_mm256_storeu_si256((__m256i *)(void *)(out + g), h);
	}
	tokenize_grams_one(u, g, n, out);
}
#endif

static void
tokenize_grams(const char *t, size_t n, uint32_t *out)
{
	const unsigned char *u = (const unsigned char *)t;
#if defined(__x86_64__) && defined(__GNUC__)
	if (__builtin_cpu_supports("avx2")) { /* a flag libgcc set at start */
		tokenize_grams_avx2(u, n, out);
		return;
	}
#endif
	tokenize_grams_one(u, 0, n, out);
}

/* 4-grams of the first TOKENIZE_R_PREFIX bytes of the decoded text (the
 * text parts, transfer encodings undone, in UTF-8, HTML reduced to its
 * text), CRLF as LF, ASCII-lowercased. (Before feature version 4, of the
 * raw body: base64 and quoted-printable gave grams of the encoding, and
 * 5-fold cross-validation on the train part misordered 6 to 9 % fewer
 * pairs with the decoded text; docs/classifier.md.) */
static void
tokenize_model_r(const struct mime_msg *m, struct tokenize_set *r)
{
	/* the decoded text (every text part, HTML reduced to its text) */
	const char *s = m->text.data;
	size_t n = s != NULL ? m->text.len : 0, i = 0;
	char text[TOKENIZE_R_PREFIX];
	size_t o = 0;
	/* the runs between CRs lower-cased whole; a CR before a LF dropped */
	while (i < n && o < sizeof(text)) {
		const char *cr = memchr(s + i, '\r', n - i);
		size_t end = cr != NULL ? (size_t)(cr - s) : n, take = end - i;
		if (take > sizeof(text) - o)
			take = sizeof(text) - o;
		tokenize_lower_into(text + o, s + i, take);
		o += take;
		i += take;
		if (i >= n || o >= sizeof(text))
			break; /* the end, or full */
		if (!(i + 1 < n && s[i + 1] == '\n'))
			text[o++] = '\r';
		i++;
	}
	if (o < 4)
		return;
	/* room for every gram up front; the bitmap keeps each index once */
	size_t grams = o - 3;
	if (r->cap < r->n + grams)
		r->v = xgrow(r->v, &r->cap, r->n + grams, sizeof(uint32_t));
	uint64_t *bits = tokenize_bits, *sum = tokenize_bits_sum;
	uint32_t *out = r->v + r->n;
	tokenize_grams(text, grams, out);
	for (size_t g = 0; g < grams; g++) {
		uint32_t idx = out[g];
		bits[idx >> 6] |= 1ull << (idx & 63);
		sum[idx >> 12] |= 1ull << ((idx >> 6) & 63);
	}
	/* the set, ascending, read out of the bitmap, which is left clear */
	size_t k = 0;
	for (size_t si = 0; si < TOKENIZE_SPACE / 64 / 64; si++) {
		for (uint64_t sw = sum[si]; sw != 0; sw &= sw - 1) {
			size_t wi = si * 64 + (size_t)__builtin_ctzll(sw);
			for (uint64_t b = bits[wi]; b != 0; b &= b - 1)
				out[k++] = (uint32_t)(wi * 64 + (size_t)__builtin_ctzll(b));
			bits[wi] = 0;
		}
		sum[si] = 0;
	}
	r->n += k;
}

/* ---- header tokens (T and H), group 1: values -------------------------------------- */

/* date headers: ^\s*([a-z]{3}) and
 * \b(\d\d?):\d\d(?::\d\d)?(?:\s+([+-]\d{4}|[a-z]{1,5}))? */
static void
tokenize_date(struct tokenize_ctx *c, const char *name, const char *v, size_t n)
{
	size_t nl = strlen(name);
	char *pre = xmalloc(nl + 5);
	memcpy(pre, name, nl);
	size_t i = 0;
	while (tokenize_cc(v, i, n, TOKENIZE_CC_SP))
		i++;
	if (tokenize_islower(v, i, n) && tokenize_islower(v, i + 1, n) && tokenize_islower(v, i + 2, n)) {
		memcpy(pre + nl, ":wd=", 5);
		tokenize_emit(c, pre, v + i, 3);
	}
	const char *tz = "none";
	size_t tzl = 4;
	for (size_t p = 0; p < n; p++) {
		if (!tokenize_isdigit(v, p, n) || (p > 0 && tokenize_cc(v, p - 1, n, TOKENIZE_CC_W)))
			continue;
		size_t d = p;
		while (tokenize_isdigit(v, d, n))
			d++;
		if (d - p > 2 || d >= n || v[d] != ':' || !tokenize_isdigit(v, d + 1, n) || !tokenize_isdigit(v, d + 2, n))
			continue;
		char hh[2] = {d - p == 2 ? v[p] : '0', v[d - 1]};
		memcpy(pre + nl, ":hh=", 5);
		tokenize_emit(c, pre, hh, 2);
		size_t q = d + 3;
		if (q < n && v[q] == ':' && tokenize_isdigit(v, q + 1, n) && tokenize_isdigit(v, q + 2, n))
			q += 3;
		size_t r = q;
		while (tokenize_cc(v, r, n, TOKENIZE_CC_SP))
			r++;
		if (r > q && r < n) {
			if ((v[r] == '+' || v[r] == '-') && tokenize_isdigit(v, r + 1, n) && tokenize_isdigit(v, r + 2, n) &&
			    tokenize_isdigit(v, r + 3, n) && tokenize_isdigit(v, r + 4, n)) {
				tz = v + r;
				tzl = 5;
			} else if (tokenize_islower(v, r, n)) {
				size_t e = r;
				while (e < r + 5 && tokenize_islower(v, e, n))
					e++;
				tz = v + r;
				tzl = e - r;
			}
		}
		break;
	}
	memcpy(pre + nl, ":tz=", 5);
	tokenize_emit(c, pre, tz, tzl);
	free(pre);
}

/* received: tokens of the value up to ';', and the regdom of each
 * [a-z0-9-]+(?:\.[a-z0-9-]+)+ that is not all digits and dots. */
static void
tokenize_received(struct tokenize_ctx *c, const char *v, size_t n)
{
	const char *semi = memchr(v, ';', n);
	if (semi)
		n = (size_t)(semi - v);
	struct tokenize_pfx p;
	tokenize_pfx_init(&p, c, "received:", 9);
	tokenize_tokens(&p, v, n);
	size_t i = 0;
	while (i < n) {
		size_t run, e = tokenize_host_at(v, n, i, &run);
		if (e == 0) {
			i = run > i ? run : i + 1;
			continue;
		}
		bool numeric = true;
		for (size_t k = i; k < e && numeric; k++)
			numeric = v[k] == '.' || (v[k] >= '0' && v[k] <= '9');
		if (!numeric) {
			char dom[256];
			tokenize_regdom(v + i, e - i, dom, sizeof(dom));
			tokenize_emitz(c, "rcv:dom=", dom);
		}
		i = e;
	}
}

static void
tokenize_values(struct tokenize_ctx *c, const struct tokenize_msg *fm)
{
	for (size_t i = 0; i < fm->n; i++) {
		const struct tokenize_hdr *h = &fm->h[i];
		if (h->kind & TOKENIZE_HDR_EXCL)
			continue;
		if (h->kind & TOKENIZE_HDR_DATE) {
			tokenize_date(c, h->name, h->dv, h->dl);
			continue;
		}
		if (h->kind & TOKENIZE_HDR_RECEIVED) {
			tokenize_received(c, h->dv, h->dl);
			continue;
		}
		size_t nl = h->nl;
		char *pre = xmalloc(nl + 6);
		memcpy(pre, h->name, nl);
		memcpy(pre + nl, ":", 2);
		struct tokenize_pfx p;
		tokenize_pfx_init(&p, c, pre, nl + 1);
		tokenize_tokens(&p, h->dv, h->dl);
		if (h->kind & TOKENIZE_HDR_ADDR) {
			memcpy(pre + nl, ":dom=", 6);
			size_t pos = 0, a, at, e;
			while (tokenize_next_addr(h->dv, h->dl, &pos, &a, &at, &e))
				tokenize_emit(c, pre, h->dv + at + 1, e - at - 1);
		}
		free(pre);
	}
}

/* ---- group 2: the Received chain and the recipients ----------------------------------- */

/* The first match of (?:[\w.+-]*@)?([a-z0-9-]+(?:\.[a-z0-9-]+)+) in s
 * whose group 1 is not an IP literal: group 1 in [*ra, *re). */
static bool
tokenize_rdns(const char *s, size_t n, size_t *ra, size_t *re)
{
	size_t p = 0, run_end = 0, opt_hs = 0, opt_he = 0;
	bool opt_ok = false;
	while (p < n) {
		/* the optional "user@" part: the same for every start in one run */
		if (p >= run_end) {
			size_t e = p;
			while (tokenize_cc(s, e, n, TOKENIZE_CC_RDN))
				e++;
			run_end = e > p ? e : p + 1;
			opt_ok = false;
			if (e < n && s[e] == '@') {
				size_t r;
				opt_he = tokenize_host_at(s, n, e + 1, &r);
				opt_hs = e + 1;
				opt_ok = opt_he != 0;
			}
		}
		size_t hs = 0, he = 0, run = p + 1;
		if (opt_ok) {
			hs = opt_hs;
			he = opt_he;
		} else {
			he = tokenize_host_at(s, n, p, &run);
			hs = p;
		}
		if (he == 0) {
			p = run > p ? run : p + 1;
			continue;
		}
		if (tokenize_quad_at(s, he, hs) != he) {
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
tokenize_private_ip(const char *ip, size_t n)
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
tokenize_host_add(struct tokenize_strset *hosts, const char *h, size_t n)
{
	if (n == 0 || tokenize_isip(h, n) || memchr(h, '.', n) == NULL)
		return;
	char dom[256];
	tokenize_regdom(h, n, dom, sizeof(dom));
	tokenize_strset_add(hosts, dom, strlen(dom));
}

/* One hop: ^\s*from\s+(\S+)(?:\s+\(([^)]*)\))? and what it says. */
static void
tokenize_hop(struct tokenize_ctx *c, const char *v, size_t n, const char *pfx, struct tokenize_strset *hosts)
{
	size_t i = 0;
	while (tokenize_cc(v, i, n, TOKENIZE_CC_SP))
		i++;
	size_t j = i + 4;
	if (n < j || memcmp(v + i, "from", 4) != 0 || !tokenize_cc(v, j, n, TOKENIZE_CC_SP)) {
		tokenize_emit3(c, pfx, "nofrom", "");
		return;
	}
	while (tokenize_cc(v, j, n, TOKENIZE_CC_SP))
		j++;
	size_t ha = j;
	while (j < n && !tokenize_cc(v, j, n, TOKENIZE_CC_SP))
		j++;
	if (j == ha) {
		tokenize_emit3(c, pfx, "nofrom", "");
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
	while (tokenize_cc(v, k, n, TOKENIZE_CC_SP))
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
	if (tokenize_find_quad(par, pl, &qa, &qe)) {
		ip = par + qa;
		il = qe - qa;
	} else if (tokenize_find_quad(helo, hl, &qa, &qe)) {
		ip = helo + qa;
		il = qe - qa;
	}
	size_t ra, re;
	bool have_rd = tokenize_rdns(par, pl, &ra, &re);
	const char *rd = have_rd ? par + ra : NULL;
	size_t rl = have_rd ? re - ra : 0;
	const char *kind = tokenize_isip(helo, hl) ? "ip" : memchr(helo, '.', hl) == NULL ? "nodot" : "fqdn";
	tokenize_emit3(c, pfx, "helo=", kind);
	tokenize_emit3(c, pfx, "rdns=", (!have_rd || (rl >= 7 && memcmp(rd, "unknown", 7) == 0)) ? "none" : "some");
	if (ip) {
		tokenize_emit3(c, pfx, "ip=", tokenize_private_ip(ip, il) ? "priv" : "pub");
	}
	if (strcmp(kind, "fqdn") == 0 && have_rd) {
		const char *hr = "diff";
		if (hl == rl && memcmp(helo, rd, hl) == 0) {
			hr = "same";
		} else {
			char d1[256], d2[256];
			tokenize_regdom(helo, hl, d1, sizeof(d1));
			tokenize_regdom(rd, rl, d2, sizeof(d2));
			if (strcmp(d1, d2) == 0)
				hr = "dom";
		}
		tokenize_emit3(c, pfx, "hr=", hr);
	}
	tokenize_host_add(hosts, helo, hl);
	if (have_rd)
		tokenize_host_add(hosts, rd, rl);
}

/* \bfor\s+<?([\w.+=-]+@[\w.-]+)>? in v: group 1 into env. */
static void
tokenize_for_addrs(const char *v, size_t n, struct tokenize_strset *env)
{
	for (size_t i = 0; i + 3 <= n; i++) {
		const char *f = memchr(v + i, 'f', n - i - 2); /* the next "for" starts with one */
		if (f == NULL)
			break;
		i = (size_t)(f - v);
		if (f[1] != 'o' || f[2] != 'r' || (i > 0 && tokenize_cc(v, i - 1, n, TOKENIZE_CC_W)))
			continue;
		size_t k = i + 3;
		if (!tokenize_cc(v, k, n, TOKENIZE_CC_SP))
			continue;
		while (tokenize_cc(v, k, n, TOKENIZE_CC_SP))
			k++;
		if (k < n && v[k] == '<')
			k++;
		size_t a = k;
		while (tokenize_cc(v, k, n, TOKENIZE_CC_LOCAL))
			k++;
		if (k == a || k >= n || v[k] != '@')
			continue;
		k++;
		size_t d = k;
		while (tokenize_cc(v, k, n, TOKENIZE_CC_W) || (k < n && (v[k] == '.' || v[k] == '-')))
			k++;
		if (k == d)
			continue;
		tokenize_strset_add(env, v + a, k - a);
		if (k < n && v[k] == '>')
			k++;
		i = k - 1;
	}
}

static void
tokenize_addrs_into(const char *v, size_t n, struct tokenize_strset *set)
{
	size_t pos = 0, a, at, e;
	while (tokenize_next_addr(v, n, &pos, &a, &at, &e))
		tokenize_strset_add(set, v + a, e - a);
}

static size_t
tokenize_local_len(const char *a)
{
	const char *at = strchr(a, '@');
	return at ? (size_t)(at - a) : strlen(a);
}

static void
tokenize_rx(struct tokenize_ctx *c, const struct tokenize_msg *fm)
{
	size_t nr = 0;
	for (size_t i = 0; i < fm->n; i++)
		nr += (fm->h[i].kind & TOKENIZE_HDR_RECEIVED) != 0;
	struct tokenize_strset *hosts = xcalloc(1, sizeof(*hosts));
	struct tokenize_strset *env = xcalloc(1, sizeof(*env));
	struct tokenize_strset *tocc = xcalloc(1, sizeof(*tocc));
	/* bottom-most (first added) hop first */
	size_t pos = 0;
	for (size_t i = fm->n; i > 0; i--) {
		const struct tokenize_hdr *h = &fm->h[i - 1];
		if (!(h->kind & TOKENIZE_HDR_RECEIVED))
			continue;
		size_t vl;
		char *v = tokenize_lower(h->rawq, h->rl, h->rl, &vl);
		char p1[8], p2[8];
		snprintf(p1, sizeof(p1), "rx%zu:", pos < 2 ? pos : 2);
		size_t top = nr - 1 - pos;
		snprintf(p2, sizeof(p2), "rt%zu:", top < 2 ? top : 2);
		tokenize_hop(c, v, vl, p1, hosts);
		tokenize_hop(c, v, vl, p2, hosts);
		const char *semi = memchr(v, ';', vl);
		tokenize_for_addrs(v, semi ? (size_t)(semi - v) : vl, env);
		free(v);
		pos++;
	}
	char num[24];
	snprintf(num, sizeof(num), "%zu", nr < 8 ? nr : 8);
	tokenize_emitz(c, "rx:n=", num);
	char fd[256];
	if (tokenize_first_dom(fm, "from", fd, sizeof(fd)))
		tokenize_emitz(c, "cons:fromrcv=", tokenize_strset_has(hosts, fd, strlen(fd)) ? "match" : "nomatch");
	for (size_t i = 0; i < fm->n; i++) {
		const struct tokenize_hdr *h = &fm->h[i];
		if (h->kind & TOKENIZE_HDR_ENV) {
			size_t vl;
			char *v = tokenize_lower(h->rawq, h->rl, h->rl, &vl);
			tokenize_addrs_into(v, vl, env);
			free(v);
		}
	}
	for (size_t i = 0; i < fm->n; i++)
		if (fm->h[i].kind & TOKENIZE_HDR_TO)
			tokenize_addrs_into(fm->h[i].dv, fm->h[i].dl, tocc);
	for (size_t i = 0; i < fm->n; i++)
		if (fm->h[i].kind & TOKENIZE_HDR_CC)
			tokenize_addrs_into(fm->h[i].dv, fm->h[i].dl, tocc);
	snprintf(num, sizeof(num), "%zu", tocc->n < 5 ? tocc->n : 5);
	tokenize_emitz(c, "rcpt:n=", num);
	if (env->n > 0) {
		const char *r = "no";
		for (size_t i = 0; i < env->n && strcmp(r, "addr") != 0; i++)
			if (tokenize_strset_has(tocc, env->v[i], strlen(env->v[i])))
				r = "addr";
		for (size_t i = 0; i < env->n && strcmp(r, "no") == 0; i++) {
			size_t el = tokenize_local_len(env->v[i]);
			for (size_t k = 0; k < tocc->n && strcmp(r, "no") == 0; k++)
				if (tokenize_local_len(tocc->v[k]) == el && memcmp(env->v[i], tocc->v[k], el) == 0)
					r = "local";
		}
		tokenize_emitz(c, "rcpt:env_in_to=", r);
	}
	tokenize_strset_free(hosts);
	tokenize_strset_free(env);
	tokenize_strset_free(tocc);
	free(hosts);
	free(env);
	free(tocc);
}

/* ---- group 2b: does a word of the From display name occur in its address? ------------ */

static void
tokenize_fromname(struct tokenize_ctx *c, const struct tokenize_msg *fm)
{
	const struct tokenize_hdr *h = tokenize_first(fm, "from");
	if (h == NULL)
		return;
	size_t pos = 0, a, at, e;
	if (!tokenize_next_addr(h->dv, h->dl, &pos, &a, &at, &e))
		return;
	/* [a-z0-9]{3,} in the value with the address cut out */
	char *rest = xmalloc(h->dl - (e - a) + 1);
	memcpy(rest, h->dv, a);
	memcpy(rest + a, h->dv + e, h->dl - e);
	size_t rl = h->dl - (e - a);
	const char *r = "none";
	for (size_t i = 0; i < rl;) {
		size_t s = i;
		while (i < rl && (tokenize_islower(rest, i, rl) || tokenize_isdigit(rest, i, rl)))
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
	tokenize_emitz(c, "cons:fromname=", r);
}

/* ---- group 3: shapes; group 4: header names and order --------------------------------- */

/* [A-Z]+ -> A, [a-z]+ -> a, [0-9]+ -> up to four 9s, [\x80-\xff]+ -> 8 */
size_t
tokenize_shape(const char *s, size_t n, char *out)
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
tokenize_shapes_names(struct tokenize_ctx *c, const struct tokenize_msg *fm)
{
	for (size_t i = 0; i < fm->n; i++) {
		const struct tokenize_hdr *h = &fm->h[i];
		if (!(h->kind & TOKENIZE_HDR_SHAPE))
			continue;
		char sh[TOKENIZE_SHAPE_LEN], pre[32];
		size_t sl = tokenize_shape(h->rawq, h->rl < TOKENIZE_SHAPE_LEN ? h->rl : TOKENIZE_SHAPE_LEN, sh);
		/* "shape:" + name + "=": the names of TOKENIZE_HDR_SHAPE are short */
		memcpy(pre, "shape:", 6);
		memcpy(pre + 6, h->name, h->nl);
		memcpy(pre + 6 + h->nl, "=", 2);
		tokenize_emit(c, pre, sh, sl);
	}
	const char *prev = "^";
	for (size_t i = 0; i < fm->n; i++) {
		const struct tokenize_hdr *h = &fm->h[i];
		if (h->kind & TOKENIZE_HDR_EXCL)
			continue;
		tokenize_emit(c, "hn:", h->name, h->nl);
		size_t a = strlen(prev), b = strlen(h->name);
		char *pair = xmalloc(a + b + 2);
		memcpy(pair, prev, a);
		pair[a] = '>';
		memcpy(pair + a + 1, h->name, b + 1);
		tokenize_emit(c, "ho:", pair, a + 1 + b);
		free(pair);
		prev = h->name;
	}
}

/* ---- T only: MIME structure, sender consistency, body words ----------------------------- */

struct tokenize_url_doms {
	char d[64][128];
	size_t n;
};

/* regdoms of (?:https?|ftp)://([a-z0-9.-]+) in the lowercased body */
static void
tokenize_collect_url_doms(const char *body, size_t n, struct tokenize_url_doms *ud)
{
	/* every scheme ends in "://": find those (by their ':', with the
	 * vectorised memchr: text has few), then look back for the scheme,
	 * leftmost first, as a scan from the left would (i: where that scan
	 * is) */
	size_t i = 0;
	for (const char *q; i + 6 < n && (q = memchr(body + i, ':', n - i)) != NULL;) {
		size_t p = (size_t)(q - body), skip = 0;
		if (p + 2 >= n || q[1] != '/' || q[2] != '/') {
			i = p + 1;
			continue;
		}
		if (p >= i + 5 && memcmp(body + p - 5, "https", 5) == 0 && p - 5 + 6 < n)
			i = p - 5, skip = 8;
		else if (p >= i + 4 && memcmp(body + p - 4, "http", 4) == 0 && p - 4 + 6 < n)
			i = p - 4, skip = 7;
		else if (p >= i + 3 && memcmp(body + p - 3, "ftp", 3) == 0 && p - 3 + 6 < n)
			i = p - 3, skip = 6;
		if (skip == 0) {
			i = p + 1;
			continue;
		}
		size_t s = i + skip, e = s;
		while (e < n && (tokenize_cc(body, e, n, TOKENIZE_CC_D) || body[e] == '.'))
			e++;
		if (e == s) { /* no host: nothing else starts before the "://" */
			i = p + 1;
			continue;
		}
		char dom[128];
		tokenize_regdom(body + s, e - s, dom, sizeof(dom));
		bool seen = false;
		for (size_t k = 0; k < ud->n && !seen; k++)
			seen = strcmp(ud->d[k], dom) == 0;
		if (!seen && ud->n < 64)
			mx_strlcpy(ud->d[ud->n++], dom, sizeof(ud->d[0]));
		i = e;
	}
}

static void
tokenize_body_groups(struct tokenize_ctx *c, const struct tokenize_msg *fm)
{
	const struct mime_msg *m = fm->m;
	/* 5: MIME structure */
	for (size_t i = 0; i < m->n_parts; i++) {
		const struct mime_part *p = &m->parts[i];
		const char *type = p->type[0] ? p->type : "text/plain";
		tokenize_emitz(c, "mime:", type);
		char tc[140];
		int l = snprintf(tc, sizeof(tc), "%s;%s", type, p->cte);
		tokenize_emit(c, "mime:", tc, (size_t)l);
		if (p->charset[0])
			tokenize_emitz(c, "mime:charset=", p->charset);
	}
	/* 6: sender consistency */
	size_t bl;
	char *body = tokenize_lower(m->text.data ? m->text.data : "", m->text.len, TOKENIZE_BODY_PREFIX, &bl);
	struct tokenize_url_doms *ud = xmalloc(sizeof(*ud));
	ud->n = 0;
	tokenize_collect_url_doms(body, bl, ud);
	/* links of HTML parts are not in the text: the recipe reads them in
	 * place of their tags */
	char **urls = xcalloc(m->n_urls ? m->n_urls : 1, sizeof(char *));
	size_t *ulen = xcalloc(m->n_urls ? m->n_urls : 1, sizeof(size_t));
	for (size_t i = 0; i < m->n_urls; i++) {
		urls[i] = tokenize_lower(m->urls[i], strlen(m->urls[i]), 2048, &ulen[i]);
		tokenize_collect_url_doms(urls[i], ulen[i], ud);
	}
	char nurl[8];
	snprintf(nurl, sizeof(nurl), "%zu", ud->n < 5 ? ud->n : 5);
	tokenize_emitz(c, "cons:nurl=", nurl);
	char fd[256];
	if (tokenize_first_dom(fm, "from", fd, sizeof(fd))) {
		if (ud->n > 0) {
			bool match = false;
			for (size_t k = 0; k < ud->n && !match; k++)
				match = strcmp(ud->d[k], fd) == 0;
			tokenize_emitz(c, "cons:urlfrom=", match ? "match" : "nomatch");
		}
		static const char *const others[] = {"reply-to", "message-id", "sender"};
		for (int k = 0; k < 3; k++) {
			char od[256], pre[40];
			if (!tokenize_first_dom(fm, others[k], od, sizeof(od)))
				continue;
			snprintf(pre, sizeof(pre), "cons:%s=", others[k]);
			tokenize_emitz(c, pre, strcmp(od, fd) == 0 ? "match" : "nomatch");
		}
	}
	free(ud);
	/* 7: body words */
	struct tokenize_pfx p;
	tokenize_pfx_init(&p, c, "", 0);
	tokenize_tokens(&p, body, bl);
	for (size_t i = 0; i < m->n_urls; i++) {
		tokenize_tokens(&p, urls[i], ulen[i]);
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
		tokenize_emit(c, "", "part", 4);
		tokenize_tokens(&p, type, strlen(type));
		if (mp->filename) {
			size_t fl;
			char *fn = tokenize_lower(mp->filename, strlen(mp->filename), 1024, &fl);
			tokenize_tokens(&p, fn, fl);
			free(fn);
		}
	}
	free(body);
}

/* ---- sorting and the entry points ------------------------------------------------------- */

/* LSD radix sort of indices below 2^TOKENIZE_BITS, the counts of every
 * round taken in one read. A set of a few hundred indices (H, T) sorts
 * in three rounds of 7 bits (small count tables beat few rounds); R's
 * thousand in two rounds of 10. The scratch list is the thread's own,
 * kept from one message to the next. */
#define TOKENIZE_RADIX_BIG 512 /* from this many indices on, two rounds */
static _Thread_local uint32_t *tokenize_sort_tmp;
static _Thread_local size_t tokenize_sort_cap;

/* inlined at each call, so that the rounds and widths are constants */
static inline __attribute__((always_inline)) void
tokenize_radix_rounds(uint32_t *v, uint32_t *tmp, size_t n, int bits, int rounds, uint32_t *count)
{
	uint32_t buckets = 1u << bits, mask = buckets - 1;
	memset(count, 0, (size_t)rounds * buckets * sizeof(uint32_t));
	for (size_t i = 0; i < n; i++)
		for (int r = 0; r < rounds; r++)
			count[(size_t)r * buckets + ((v[i] >> (r * bits)) & mask)]++;
	uint32_t *src = v, *dst = tmp;
	for (int r = 0; r < rounds; r++) {
		uint32_t *c = count + (size_t)r * buckets, sum = 0;
		for (uint32_t b = 0; b < buckets; b++) {
			uint32_t k = c[b];
			c[b] = sum;
			sum += k;
		}
		int shift = r * bits;
		for (size_t i = 0; i < n; i++)
			dst[c[(src[i] >> shift) & mask]++] = src[i];
		uint32_t *t = src;
		src = dst;
		dst = t;
	}
	if (src != v)
		memcpy(v, src, n * sizeof(uint32_t));
}

static void
tokenize_radix_sort(uint32_t *v, size_t n)
{
	if (n < 2)
		return;
	if (n > tokenize_sort_cap) {
		pthread_once(&tokenize_cc_once, tokenize_cc_init);
		free(tokenize_sort_tmp);
		tokenize_sort_cap = n < 4096 ? 4096 : n;
		tokenize_sort_tmp = xmalloc(tokenize_sort_cap * sizeof(uint32_t));
		pthread_setspecific(tokenize_sort_key, tokenize_sort_tmp);
	}
	_Static_assert(TOKENIZE_BITS <= 21, "three rounds of 7 bits, two of 10 or 11");
	uint32_t count[2 << 11];
	if (n >= TOKENIZE_RADIX_BIG)
		tokenize_radix_rounds(v, tokenize_sort_tmp, n, (TOKENIZE_BITS + 1) / 2, 2, count);
	else
		tokenize_radix_rounds(v, tokenize_sort_tmp, n, (TOKENIZE_BITS + 2) / 3, 3, count);
}

void
tokenize_extract(const struct mime_msg *m, struct tokenize_sets *f)
{
	memset(f, 0, sizeof(*f));
	pthread_once(&tokenize_cc_once, tokenize_cc_init);
	if (tokenize_bits == NULL) {
		tokenize_bits = xcalloc(TOKENIZE_SPACE / 64, sizeof(uint64_t));
		pthread_setspecific(tokenize_bits_key, tokenize_bits);
	}
	f->set[TOKENIZE_R].v = xgrow(NULL, &f->set[TOKENIZE_R].cap, TOKENIZE_R_PREFIX, sizeof(uint32_t));
	tokenize_model_r(m, &f->set[TOKENIZE_R]); /* ascending already, and the bitmap clear */
	/* T and H in one walk: T as a set, H's indices raw, made a set once
	 * T's bits are cleared */
	struct tokenize_msg fm;
	tokenize_msg_init(&fm, m);
	struct tokenize_set hs = {0};
	struct tokenize_ctx c = {&f->set[TOKENIZE_T], &hs};
	tokenize_values(&c, &fm);
	tokenize_rx(&c, &fm);
	tokenize_fromname(&c, &fm);
	tokenize_shapes_names(&c, &fm);
	c.h = NULL;
	tokenize_body_groups(&c, &fm);
	tokenize_msg_clear(&fm);
	tokenize_done(&f->set[TOKENIZE_T]);
	for (size_t i = 0; i < hs.n; i++)
		tokenize_add(&f->set[TOKENIZE_H], hs.v[i]);
	tokenize_done(&f->set[TOKENIZE_H]);
	free(hs.v);
}

void
tokenize_sort(struct tokenize_sets *f)
{
	for (int k = 0; k < TOKENIZE_MODELS; k++)
		if (k != TOKENIZE_R) /* comes out of tokenize_extract() ascending */
			tokenize_radix_sort(f->set[k].v, f->set[k].n);
}

void
tokenize_clear(struct tokenize_sets *f)
{
	for (int k = 0; k < TOKENIZE_MODELS; k++)
		free(f->set[k].v);
	memset(f, 0, sizeof(*f));
}
