/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	mime - message structure walked in place, decoding done by GMime
 * DESCRIPTION
 *	The structure (header blocks, multipart boundaries, message/rfc822)
 *	is walked here directly over the message bytes, with no copy and no
 *	object per part; GMime does what is easy to get wrong: RFC 2047
 *	encoded words, Content-Type and Content-Disposition parameters (RFC
 *	2231 included), base64 / quoted-printable / uuencode decoding, charset
 *	names; iconv converts to UTF-8.  GMime's own parser builds a GObject
 *	tree and cost 68 us a message on the corpus, most of the time a scan
 *	may take; this walk and the same decoders take a fraction of that
 *	(docs/design.md).
 *	Hostile input: every loop is bounded by the input; nesting, part count,
 *	headers and decoded text are capped and raise flags.
 */
#include "mime.h"

#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <gmime/gmime.h>

#include "html.h"
#include "str.h"
#include "strmap.h"
#include "url.h"
#include "xalloc.h"

#define MIME_HVAL_MAX 8192    /* a decoded header value */
#define MIME_PART_TEXT (1 << 20)

static pthread_once_t mime_once = PTHREAD_ONCE_INIT;

static pthread_key_t mime_iconv_key; /* per-thread converters, see mime_iconv */
static void mime_iconv_free(void *p);

static void
mime_init(void)
{
	g_mime_init();
	pthread_key_create(&mime_iconv_key, mime_iconv_free);
}

void
mime_limits_default(struct mime_limits *l)
{
	l->max_bytes = 1 << 20;
	l->max_depth = 20;
	l->max_parts = 200;
	l->max_text = 256 << 10;
	l->max_urls = 200;
	l->max_headers = 200;
}

struct mime_walk {
	struct mime_msg *m;
	const struct mime_limits *lim;
	struct strmap *hosts, *urls;
	bool has_plain;
	struct buf tmp; /* decoded part bytes, reused */
};

/* ---- text helpers ----------------------------------------------------------- */

/* The end of the run of ASCII from s[i] (no NUL, nothing >= 0x80): j >= i
 * with s[j] the first other byte, or n. Sixteen bytes at a time where
 * SSE2 is there (every x86-64): most text is such runs. */
static size_t
mime_ascii_run(const char *s, size_t i, size_t n)
{
#if defined(__SSE2__)
	const __m128i zero = _mm_setzero_si128();
	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		unsigned m = (unsigned)(_mm_movemask_epi8(v) | _mm_movemask_epi8(_mm_cmpeq_epi8(v, zero)));
		if (m != 0)
			return i + (size_t)__builtin_ctz(m);
	}
#endif
	while (i < n && (unsigned char)s[i] < 0x80 && s[i] != '\0')
		i++;
	return i;
}

/* The end of the run from s[i] without CR, LF or NUL: j >= i with s[j]
 * the first such byte, or n. Sixteen bytes at a time where SSE2 is there:
 * most header lines are such a run. */
static size_t
mime_plain_run(const char *s, size_t i, size_t n)
{
#if defined(__SSE2__)
	const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();
	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		__m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)),
		                           _mm_cmpeq_epi8(v, zero));
		unsigned m = (unsigned)_mm_movemask_epi8(hit);
		if (m != 0)
			return i + (size_t)__builtin_ctz(m);
	}
#endif
	while (i < n && s[i] != '\r' && s[i] != '\n' && s[i] != '\0')
		i++;
	return i;
}

/* The cap on the text may cut a character: its first bytes go, so the
 * text stays valid UTF-8 (the rules match it as such, unchecked). */
static void
mime_utf8_trim(struct buf *b)
{
	size_t i = b->len, k = 0;
	while (i > 0 && k < 4 && ((unsigned char)b->data[i - 1] & 0xc0) == 0x80)
		i--, k++;
	if (i == 0 || (unsigned char)b->data[i - 1] < 0x80)
		return; /* ends in ASCII (or only continuation bytes: not ours) */
	unsigned lead = (unsigned char)b->data[i - 1];
	size_t need = lead >= 0xf0 ? 3 : lead >= 0xe0 ? 2 : 1;
	if (k < need) {
		b->len = i - 1;
		b->data[b->len] = '\0';
	}
}

/* Appends s to b as valid UTF-8: invalid bytes become U+FFFD, NUL a space. */
static void
mime_utf8_into(struct buf *b, unsigned *flags, const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && !b->truncated) {
		size_t j = mime_ascii_run(s, i, n);
		if (j > i)
			buf_append(b, s + i, j - i);
		i = j;
		if (i >= n)
			break;
		unsigned char c = (unsigned char)s[i];
		if (c == 0) {
			*flags |= MIME_F_NUL;
			buf_appendc(b, ' ');
			i++;
			continue;
		}
		size_t len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
		if (len && i + len <= n && mx_utf8_valid(s + i, len)) {
			buf_append(b, s + i, len);
			i += len;
		} else {
			*flags |= MIME_F_BAD_UTF8;
			buf_append(b, "\xef\xbf\xbd", 3);
			i++;
		}
	}
}

/* The length of s[0..n) cut to at most max bytes at a character boundary
 * (no UTF-8 sequence cut in two: the rules match it as UTF-8). */
static size_t
mime_utf8_cut(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	size_t k = max;
	while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80 && max - k < 3)
		k--;
	return k;
}

static void
mime_add_url(struct mime_walk *w, const char *url, size_t len)
{
	struct mime_msg *m = w->m;
	/* a link given again is listed once, so that copies of one (200
	 * invisible images) cannot push the others out of the list; hosts
	 * are collected past the list's cap, up to MIME_HOSTS_MAX, so that
	 * no link escapes the host lists that way */
	size_t keep = mime_utf8_cut(url, len, 2048);
	if (m->n_urls < w->lim->max_urls && !strmap_get(w->urls, url, keep, NULL)) {
		strmap_put(w->urls, url, keep, NULL);
		m->urls = xrealloc(m->urls, (m->n_urls + 1) * sizeof(char *));
		m->urls[m->n_urls++] = xstrndup(url, keep);
	}
	if (m->n_hosts >= MIME_HOSTS_MAX)
		return;
	/* the host from the whole link: after a long user name it lies
	 * past what is kept of the link */
	char host[URL_HOST_MAX + 1];
	if (url_host(url, len, host) && !strmap_get(w->hosts, host, strlen(host), NULL)) {
		strmap_put(w->hosts, host, strlen(host), NULL);
		m->hosts = xrealloc(m->hosts, (m->n_hosts + 1) * sizeof(char *));
		m->hosts[m->n_hosts++] = xstrdup(host);
	}
}

static void
mime_url_cb(const char *url, size_t len, void *arg)
{
	mime_add_url(arg, url, len);
}

/* ---- header blocks ------------------------------------------------------------ */

struct mime_hdr {
	const char *name, *value; /* in the message */
	size_t nlen, vlen;        /* vlen: raw, folded */
};

#define MIME_ENTITY_HDRS 64

/* The headers the analysis and the lists need: kept past the cap (in
 * MIME_HDRS_KEEP slots of their own), so that filler headers in front
 * cannot hide them. */
static bool
mime_header_needed(const char *name, size_t nlen)
{
	static const char *const names[] = {"content-type", "content-transfer-encoding",
	                                    "content-disposition", "from", "subject", "sender",
	                                    "reply-to", NULL};
	for (const char *const *p = names; *p; p++)
		if (nlen == strlen(*p) && mx_str_caseprefix(name, nlen, *p))
			return true;
	return false;
}

/*
 * Splits the header block at data into headers (at most max, and up to
 * MIME_HDRS_KEEP more of those mime_header_needed() names: h has room for
 * max + MIME_HDRS_KEEP; the rest counted in *dropped) and returns where
 * the body starts.
 */
static size_t
mime_headers(const char *data, size_t len, struct mime_hdr *h, size_t max, size_t *n,
             size_t *dropped)
{
	size_t i = 0;
	*n = 0;
	*dropped = 0;
	bool kept = false; /* the last header was kept: its folds extend it */
	while (i < len) {
		const char *nl = memchr(data + i, '\n', len - i);
		size_t eol = nl ? (size_t)(nl - data) : len;
		size_t next = nl ? eol + 1 : len;
		size_t ll = eol - i;
		if (ll > 0 && data[eol - 1] == '\r')
			ll--;
		if (ll == 0) /* the blank line */
			return next;
		const char *line = data + i;
		if ((line[0] == ' ' || line[0] == '\t') && *n > 0) {
			/* folded: extends the previous header (one dropped keeps
			 * its folds) */
			if (kept)
				h[*n - 1].vlen = (size_t)(data + eol - h[*n - 1].value);
			i = next;
			continue;
		}
		const char *colon = memchr(line, ':', ll);
		if (colon == NULL || colon == line) { /* not a header: the body starts here */
			return i;
		}
		size_t nlen = (size_t)(colon - line);
		while (nlen > 0 && (line[nlen - 1] == ' ' || line[nlen - 1] == '\t'))
			nlen--;
		kept = *n < max || (*n < max + MIME_HDRS_KEEP && mime_header_needed(line, nlen));
		if (kept) {
			h[*n].name = line;
			h[*n].nlen = nlen;
			const char *v = colon + 1;
			while (v < data + eol && (*v == ' ' || *v == '\t'))
				v++;
			h[*n].value = v;
			h[*n].vlen = (size_t)(data + eol - v);
			(*n)++;
		} else {
			(*dropped)++;
		}
		i = next;
	}
	return len;
}

/* A header's value unfolded (each fold read as one space), NUL-terminated,
 * capped. */
static char *
mime_unfold(const char *v, size_t vlen, size_t cap)
{
	if (vlen > cap)
		vlen = cap;
	char *out = xmalloc(vlen + 1);
	size_t o = 0;
	for (size_t i = 0; i < vlen; i++) {
		size_t run = mime_plain_run(v, i, vlen); /* copied as they are */
		memcpy(out + o, v + i, run - i);
		o += run - i;
		i = run;
		if (i >= vlen)
			break;
		char c = v[i];
		if (c == '\r')
			continue;
		if (c == '\n') {
			/* a fold (line break and its indent) reads as one space */
			size_t j = i + 1;
			while (j < vlen && (v[j] == ' ' || v[j] == '\t'))
				j++;
			if (j > i + 1)
				out[o++] = ' ';
			i = j - 1;
			continue;
		}
		out[o++] = c == '\0' ? ' ' : c;
	}
	while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == '\t'))
		o--;
	out[o] = '\0';
	return out;
}

static bool
mime_is(const struct mime_hdr *h, const char *name)
{
	size_t l = strlen(name);
	return h->nlen == l && mx_str_caseprefix(h->name, l, name);
}

static const struct mime_hdr *
mime_find(const struct mime_hdr *h, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (mime_is(&h[i], name))
			return &h[i];
	return NULL;
}

static size_t
mime_count(const struct mime_hdr *h, size_t n, const char *name)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += mime_is(&h[i], name);
	return c;
}

/* ---- decoding ---------------------------------------------------------------- */

/* Converts src (charset) to UTF-8 into out; unknown charsets are read as
 * Latin-1.  Bytes iconv cannot convert become U+FFFD. */
/* Converters to UTF-8, kept per thread: opening one costs more than most
 * messages' whole analysis. A small cache, replaced round-robin. */
#define MIME_ICONV_CACHE 8
struct mime_iconv_cache {
	char name[MIME_ICONV_CACHE][40];
	iconv_t cd[MIME_ICONV_CACHE];
	unsigned n, next;
};

static void
mime_iconv_free(void *p)
{
	struct mime_iconv_cache *c = p;
	for (unsigned i = 0; i < c->n; i++)
		if (c->cd[i] != (iconv_t)-1)
			g_mime_iconv_close(c->cd[i]);
	free(c);
}

/* A converter from charset to UTF-8 in its initial state, or (iconv_t)-1
 * when the charset is unknown (that answer is cached too). */
static iconv_t
mime_iconv(const char *charset)
{
	struct mime_iconv_cache *c = pthread_getspecific(mime_iconv_key);
	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		pthread_setspecific(mime_iconv_key, c);
	}
	char name[40];
	if (mx_strlcpy(name, charset, sizeof(name)) < 0)
		return (iconv_t)-1; /* no charset has such a name */
	mx_str_lower(name);
	for (unsigned i = 0; i < c->n; i++) {
		if (strcmp(c->name[i], name) == 0) {
			if (c->cd[i] != (iconv_t)-1)
				iconv(c->cd[i], NULL, NULL, NULL, NULL);
			return c->cd[i];
		}
	}
	unsigned slot;
	if (c->n < MIME_ICONV_CACHE) {
		slot = c->n++;
	} else {
		slot = c->next++ % MIME_ICONV_CACHE;
		if (c->cd[slot] != (iconv_t)-1)
			g_mime_iconv_close(c->cd[slot]);
	}
	memcpy(c->name[slot], name, sizeof(name));
	c->cd[slot] = g_mime_iconv_open("UTF-8", name);
	return c->cd[slot];
}

/* Whether charset's bytes below 0x80 are ASCII, one byte each (so that a
 * text of such bytes converts to itself): the ISO 8859 and Windows code
 * pages, KOI8. Not UTF-7, UTF-16 or the ISO 2022 family, whose ASCII
 * bytes encode other characters. */
static bool
mime_ascii_superset(const char *charset)
{
	static const char *const pfx[] = {"iso-8859-", "iso8859-", "iso_8859-", "windows-125",
	                                  "cp125", "koi8-", "latin", NULL};
	for (const char *const *p = pfx; *p; p++)
		if (mx_str_caseprefix(charset, strlen(charset), *p))
			return true;
	return false;
}

static void
mime_charset(struct mime_walk *w, const char *charset, const char *src, size_t n, struct buf *out)
{
	if (charset == NULL || mx_str_caseeq(charset, "utf-8") || mx_str_caseeq(charset, "utf8") ||
	    mx_str_caseeq(charset, "us-ascii") || mx_str_caseeq(charset, "ascii")) {
		mime_utf8_into(out, &w->m->flags, src, n);
		return;
	}
	iconv_t cd = mime_iconv(charset);
	if (cd != (iconv_t)-1 && mime_ascii_superset(charset) && mime_ascii_run(src, 0, n) == n) {
		/* ASCII (no NUL) in a charset that extends it: converting
		 * changes nothing, and it is valid UTF-8 as it is */
		buf_append(out, src, n);
		return;
	}
	if (cd == (iconv_t)-1) {
		w->m->flags |= MIME_F_CHARSET;
		cd = mime_iconv("iso-8859-1");
		if (cd == (iconv_t)-1) {
			mime_utf8_into(out, &w->m->flags, src, n);
			return;
		}
	}
	char chunk[4096];
	char *in = (char *)src;
	size_t left = n;
	while (left > 0 && !out->truncated) {
		char *o = chunk;
		size_t room = sizeof(chunk);
		size_t r = iconv(cd, &in, &left, &o, &room);
		if (o > chunk)
			mime_utf8_into(out, &w->m->flags, chunk, (size_t)(o - chunk));
		if (r == (size_t)-1) {
			if (errno == E2BIG)
				continue;
			/* EILSEQ or EINVAL: mark it and skip one byte */
			w->m->flags |= MIME_F_BAD_UTF8;
			buf_append(out, "\xef\xbf\xbd", 3);
			in++;
			left--;
			iconv(cd, NULL, NULL, NULL, NULL);
		}
	}
}

/* Decodes the transfer encoding of body into w->tmp. */
static void
mime_transfer(struct mime_walk *w, const char *cte, const char *body, size_t len)
{
	buf_reset(&w->tmp);
	GMimeContentEncoding enc = cte ? g_mime_content_encoding_from_string(cte)
	                               : GMIME_CONTENT_ENCODING_DEFAULT;
	if (enc != GMIME_CONTENT_ENCODING_BASE64 && enc != GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE &&
	    enc != GMIME_CONTENT_ENCODING_UUENCODE) {
		buf_append(&w->tmp, body, len < MIME_PART_TEXT ? len : MIME_PART_TEXT);
		return;
	}
	GMimeEncoding st;
	g_mime_encoding_init_decode(&st, enc);
	char out[8192 + 64];
	size_t off = 0;
	while (off < len && w->tmp.len < MIME_PART_TEXT) {
		size_t take = len - off < 4096 ? len - off : 4096;
		size_t n = g_mime_encoding_step(&st, body + off, take, out);
		buf_append(&w->tmp, out, n);
		off += take;
	}
}

/* ---- entities ------------------------------------------------------------------- */

static void mime_entity(struct mime_walk *w, const char *data, size_t len, size_t depth,
                        bool top);

static void
mime_text_part(struct mime_walk *w, bool html, const char *charset, const char *cte,
               const char *body, size_t len)
{
	struct mime_msg *m = w->m;
	mime_transfer(w, cte, body, len);
	struct buf conv;
	buf_init(&conv, w->lim->max_text);
	mime_charset(w, charset, w->tmp.data ? w->tmp.data : "", w->tmp.len, &conv);
	if (conv.truncated)
		mime_utf8_trim(&conv);
	if (m->text.len > 0)
		buf_appendc(&m->text, '\n');
	if (html) {
		m->flags |= MIME_F_HTML;
		struct buf t;
		buf_init(&t, w->lim->max_text);
		html_to_text(conv.data ? conv.data : "", conv.len, &t, mime_url_cb, w);
		if (t.len) {
			mime_utf8_into(&m->text, &m->flags, t.data, t.len);
			url_scan(t.data, t.len, mime_url_cb, w);
		}
		buf_clear(&t);
	} else {
		w->has_plain = true;
		if (conv.len) {
			buf_append(&m->text, conv.data, conv.len);
			url_scan(conv.data, conv.len, mime_url_cb, w);
		}
	}
	if (m->text.truncated)
		m->flags |= MIME_F_TEXT_CUT;
	buf_clear(&conv);
}

/* Finds the next delimiter line "--boundary" (or its "--" close) from
 * *pos; returns its start or NULL, and sets *after past its line and
 * *close when it ends the multipart. */
static const char *
mime_next_boundary(const char *data, size_t len, size_t pos, const char *b, size_t blen,
                   size_t *after, bool *close)
{
	/* a delimiter starts a line: look at line starts only (memchr is
	 * vectorised; memmem of the whole text was several times slower) */
	size_t at = pos;
	if (at > 0 && at <= len && data[at - 1] != '\n') {
		const char *nl = at < len ? memchr(data + at, '\n', len - at) : NULL;
		if (nl == NULL)
			return NULL;
		at = (size_t)(nl - data) + 1;
	}
	while (at + 2 + blen <= len) {
		if (memcmp(data + at, b - 2, blen + 2) == 0) { /* "--" + boundary */
			size_t e = at + 2 + blen;
			bool cl = e + 1 < len && data[e] == '-' && data[e + 1] == '-';
			/* then only white space to the line's end (RFC 2046): "--bx"
			 * is no delimiter of boundary "b", as a reader sees it; the
			 * close delimiter is one whatever follows (GMime and Python
			 * read "--b--</BODY>" so, and mail has it) */
			size_t t = cl ? e + 2 : e;
			while (t < len && (data[t] == ' ' || data[t] == '\t' || data[t] == '\r'))
				t++;
			if (cl || t >= len || data[t] == '\n') {
				if (cl && t < len && data[t] != '\n') {
					const char *nl2 = memchr(data + t, '\n', len - t);
					t = nl2 ? (size_t)(nl2 - data) : len;
				}
				*close = cl;
				*after = t < len ? t + 1 : len;
				return data + at;
			}
		}
		const char *nl = memchr(data + at, '\n', len - at);
		if (nl == NULL)
			return NULL;
		at = (size_t)(nl - data) + 1;
	}
	return NULL;
}

static void
mime_multipart(struct mime_walk *w, const char *body, size_t len, const char *boundary,
               size_t depth)
{
	struct mime_msg *m = w->m;
	size_t blen = strlen(boundary);
	if (blen == 0 || blen > 200) {
		m->flags |= MIME_F_MALFORMED;
		return;
	}
	char dashb[204];
	dashb[0] = dashb[1] = '-';
	memcpy(dashb + 2, boundary, blen + 1);
	size_t after;
	bool close;
	const char *first = mime_next_boundary(body, len, 0, dashb + 2, blen, &after, &close);
	if (first == NULL) { /* no parts at all: the preamble is all there is */
		m->flags |= MIME_F_MALFORMED;
		return;
	}
	size_t start = after;
	while (!close) {
		if (m->flags & (MIME_F_TOO_MANY | MIME_F_TOO_DEEP))
			return;
		size_t nafter;
		bool nclose;
		const char *next = mime_next_boundary(body, len, start, dashb + 2, blen, &nafter, &nclose);
		size_t end = next ? (size_t)(next - body) : len;
		/* the line break before the delimiter belongs to it */
		if (end > start && body[end - 1] == '\n')
			end--;
		if (end > start && body[end - 1] == '\r')
			end--;
		mime_entity(w, body + start, end - start, depth + 1, false);
		if (next == NULL) {
			m->flags |= MIME_F_MALFORMED; /* unterminated */
			return;
		}
		start = nafter;
		close = nclose;
	}
}

static void
mime_entity(struct mime_walk *w, const char *data, size_t len, size_t depth, bool top)
{
	struct mime_msg *m = w->m;
	if (depth > w->lim->max_depth) {
		m->flags |= MIME_F_TOO_DEEP;
		return;
	}
	if (m->n_parts >= w->lim->max_parts) {
		m->flags |= MIME_F_TOO_MANY;
		return;
	}
	struct mime_hdr h[MIME_ENTITY_HDRS + MIME_HDRS_KEEP];
	struct mime_hdr *hp = h;
	size_t n, dropped, max = MIME_ENTITY_HDRS;
	if (top) {
		max = w->lim->max_headers;
		hp = xcalloc(max + MIME_HDRS_KEEP, sizeof(*hp));
	}
	size_t body = mime_headers(data, len, hp, max, &n, &dropped);
	if (dropped > 0 || n > max)
		m->flags |= MIME_F_TOO_MANY_HEADERS;
	if (mime_count(hp, n, "Content-Type") > 1 || mime_count(hp, n, "Content-Transfer-Encoding") > 1)
		m->flags |= MIME_F_DUP_CONTENT;
	if (top) {
		m->header_len = body;
		m->hdrs = xcalloc(n ? n : 1, sizeof(*m->hdrs));
		for (size_t i = 0; i < n; i++) {
			/* the address headers whole: the lists must see every
			 * address ("ALLOW_FROM only when every one is allowed") */
			bool addr = mime_is(&hp[i], "From");
			char *raw = mime_unfold(hp[i].value, hp[i].vlen, addr ? hp[i].vlen : MIME_HVAL_MAX);
			/* RFC 2047 words, only when there are any */
			char *dec = strstr(raw, "=?") ? g_mime_utils_header_decode_text(NULL, raw) : NULL;
			struct buf v;
			buf_init(&v, MIME_HVAL_MAX);
			const char *src = dec ? dec : raw;
			mime_utf8_into(&v, &m->flags, src, strlen(src));
			if (v.truncated)
				mime_utf8_trim(&v); /* no character cut in two */
			m->hdrs[i].name = xstrndup(hp[i].name, hp[i].nlen);
			m->hdrs[i].value = v.data ? v.data : xstrdup("");
			m->hdrs[i].raw_value = raw;
			g_free(dec);
		}
		m->n_hdrs = n;
	}
	m->parts = xrealloc(m->parts, (m->n_parts + 1) * sizeof(*m->parts));
	struct mime_part *pi = &m->parts[m->n_parts++];
	memset(pi, 0, sizeof(*pi));
	pi->size = len - body;

	/* Content-Type, Content-Transfer-Encoding, Content-Disposition */
	char type[80] = "text/plain";
	char *boundary = NULL, *charset = NULL, *filename = NULL, *cte = NULL;
	bool attachment = false;
	const struct mime_hdr *ct = mime_find(hp, n, "Content-Type");
	if (ct != NULL) {
		/* whole: a cap before unfolding let filler parameters (or
		 * folds) in front cut the boundary off, and the body went
		 * unread */
		char *v = mime_unfold(ct->value, ct->vlen, ct->vlen);
		GMimeContentType *t = g_mime_content_type_parse(NULL, v);
		if (t != NULL) {
			char *mt = g_mime_content_type_get_mime_type(t);
			if (mt != NULL) {
				mx_strlcpy(type, mt, sizeof(type));
				g_free(mt);
			}
			const char *p = g_mime_content_type_get_parameter(t, "boundary");
			if (p)
				boundary = xstrdup(p);
			p = g_mime_content_type_get_parameter(t, "charset");
			if (p)
				charset = xstrndup(p, 60);
			p = g_mime_content_type_get_parameter(t, "name");
			if (p)
				filename = xstrndup(p, 255);
			g_object_unref(t);
		}
		free(v);
		mx_str_lower(type);
	}
	const struct mime_hdr *te = mime_find(hp, n, "Content-Transfer-Encoding");
	if (te != NULL) { /* unfolded whole, then its first word */
		char *v = mime_unfold(te->value, te->vlen, te->vlen);
		const char *w0 = v + strspn(v, " \t");
		cte = xstrndup(w0, strcspn(w0, " \t;("));
		free(v);
	}
	const struct mime_hdr *cd = mime_find(hp, n, "Content-Disposition");
	if (cd != NULL) {
		char *v = mime_unfold(cd->value, cd->vlen, cd->vlen);
		GMimeContentDisposition *d = g_mime_content_disposition_parse(NULL, v);
		if (d != NULL) {
			attachment = g_mime_content_disposition_is_attachment(d);
			const char *fn = g_mime_content_disposition_get_parameter(d, "filename");
			if (fn != NULL) {
				free(filename);
				filename = xstrndup(fn, 255);
			}
			g_object_unref(d);
		}
		free(v);
	}
	if (top)
		free(hp);
	mx_strlcpy(pi->type, type, sizeof(pi->type));
	if (cte != NULL) {
		mx_strlcpy(pi->cte, cte, sizeof(pi->cte));
		mx_str_lower(pi->cte);
	}
	if (charset != NULL) {
		mx_strlcpy(pi->charset, charset, sizeof(pi->charset));
		mx_str_lower(pi->charset);
	}
	pi->attachment = attachment;
	pi->filename = filename;

	const char *b = data + body;
	size_t blen = len - body;
	if (strncmp(type, "multipart/", 10) == 0) {
		if (boundary != NULL)
			mime_multipart(w, b, blen, boundary, depth);
		else
			m->flags |= MIME_F_MALFORMED;
	} else if (strcmp(type, "message/rfc822") == 0) {
		mime_entity(w, b, blen, depth + 1, false);
		/* the inner message's Subject reads as text too */
		struct mime_hdr ih[MIME_ENTITY_HDRS + MIME_HDRS_KEEP];
		size_t in, idr;
		mime_headers(b, blen, ih, MIME_ENTITY_HDRS, &in, &idr);
		const struct mime_hdr *s = mime_find(ih, in, "Subject");
		if (s != NULL) {
			char *raw = mime_unfold(s->value, s->vlen, MIME_HVAL_MAX);
			char *dec = strstr(raw, "=?") ? g_mime_utils_header_decode_text(NULL, raw) : NULL;
			if (m->text.len > 0)
				buf_appendc(&m->text, '\n');
			const char *src = dec ? dec : raw;
			mime_utf8_into(&m->text, &m->flags, src, strlen(src));
			g_free(dec);
			free(raw);
		}
	} else {
		bool plain = strcmp(type, "text/plain") == 0;
		bool html = strcmp(type, "text/html") == 0;
		if ((plain || html) && !(attachment && !html && filename != NULL))
			mime_text_part(w, html, charset, cte, b, blen);
	}
	free(boundary);
	free(charset);
	free(cte);
}

/* ---- entry -------------------------------------------------------------------- */

void
mime_analyse(const char *data, size_t len, const struct mime_limits *lim, struct mime_msg *out)
{
	pthread_once(&mime_once, mime_init);
	memset(out, 0, sizeof(*out));
	buf_init(&out->text, lim->max_text);
	if (len > lim->max_bytes) {
		len = lim->max_bytes;
		out->flags |= MIME_F_TRUNCATED;
	}
	/* an mbox "From SENDER DATE" line in front is not a header; "From :
	 * x" is one, in the obsolete syntax a reader accepts */
	size_t fw = 5;
	while (fw < len && data[fw] == ' ')
		fw++;
	if (len > 5 && memcmp(data, "From ", 5) == 0 && fw < len && data[fw] != ':') {
		const char *nl = memchr(data, '\n', len);
		size_t skip = nl ? (size_t)(nl - data) + 1 : len;
		data += skip;
		len -= skip;
	}
	out->raw = data;
	out->raw_len = len;
	struct mime_walk w = {.m = out, .lim = lim, .hosts = strmap_new(), .urls = strmap_new()};
	buf_init(&w.tmp, MIME_PART_TEXT);
	mime_entity(&w, data, len, 0, true);
	if (out->n_hdrs == 0 && out->header_len == 0)
		out->flags |= MIME_F_NO_PARSE;
	if ((out->flags & MIME_F_HTML) && !w.has_plain)
		out->flags |= MIME_F_HTML_ONLY;
	if (out->text.truncated) {
		out->flags |= MIME_F_TEXT_CUT;
		mime_utf8_trim(&out->text);
	}
	buf_clear(&w.tmp);
	strmap_free(w.hosts);
	strmap_free(w.urls);
}

char *
mime_decode_words(const char *s)
{
	if (strstr(s, "=?") == NULL)
		return xstrdup(s);
	pthread_once(&mime_once, mime_init);
	char *dec = g_mime_utils_header_decode_text(NULL, s);
	char *out = xstrdup(dec ? dec : s);
	g_free(dec);
	return out;
}

static size_t
mime_addresses_of(InternetAddressList *l, mime_addr_cb cb, void *arg, int depth)
{
	size_t n = 0;
	int count = internet_address_list_length(l);
	for (int i = 0; i < count; i++) {
		InternetAddress *ia = internet_address_list_get_address(l, i);
		if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			if (depth < 2)
				n += mime_addresses_of(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), cb,
				                       arg, depth + 1);
			continue;
		}
		const char *a = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
		if (a == NULL || *a == '\0')
			continue;
		n++;
		cb(a, arg);
	}
	return n;
}

size_t
mime_addresses(const char *raw, mime_addr_cb cb, void *arg)
{
	pthread_once(&mime_once, mime_init);
	InternetAddressList *l = internet_address_list_parse(NULL, raw);
	if (l == NULL)
		return 0;
	size_t n = mime_addresses_of(l, cb, arg, 0);
	g_object_unref(l);
	return n;
}

void
mime_msg_clear(struct mime_msg *m)
{
	for (size_t i = 0; i < m->n_hdrs; i++) {
		free(m->hdrs[i].name);
		free(m->hdrs[i].value);
		free(m->hdrs[i].raw_value);
	}
	free(m->hdrs);
	for (size_t i = 0; i < m->n_urls; i++)
		free(m->urls[i]);
	free(m->urls);
	for (size_t i = 0; i < m->n_hosts; i++)
		free(m->hosts[i]);
	free(m->hosts);
	for (size_t i = 0; i < m->n_parts; i++)
		free(m->parts[i].filename);
	free(m->parts);
	buf_clear(&m->text);
	memset(m, 0, sizeof(*m));
}

const char *
mime_header(const struct mime_msg *m, const char *name)
{
	for (size_t i = 0; i < m->n_hdrs; i++)
		if (mx_str_caseeq(m->hdrs[i].name, name))
			return m->hdrs[i].value;
	return NULL;
}
