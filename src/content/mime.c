/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	mime - GMime 3 wrapper with limits
 * DESCRIPTION
 *	GMime builds the part tree; this file walks it with its own depth and
 *	count limits and decodes only text parts.  Everything returned is
 *	copied out of GMime, and the GMime objects are released before
 *	mime_analyse() returns, so a struct mime_msg is plain data.
 *	GMime recurses while it parses; deep nesting is cut before GMime
 *	sees it (mime_nesting_cut) so its recursion stays bounded too.
 */
#include "mime.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "html.h"
#include "str.h"
#include "strmap.h"
#include "url.h"
#include "xalloc.h"

static pthread_once_t mime_once = PTHREAD_ONCE_INIT;

static void
mime_init(void)
{
	g_mime_init();
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
	struct strmap *hosts;
	bool has_plain;
};

/* ---- text helpers ----------------------------------------------------------- */

/* Appends s to b as valid UTF-8: invalid bytes become U+FFFD, NUL a space. */
static void
mime_utf8_into(struct buf *b, unsigned *flags, const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && !b->truncated) {
		size_t j = i;
		/* fast path: ASCII run without NUL */
		while (j < n && (unsigned char)s[j] < 0x80 && s[j] != '\0')
			j++;
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

static void
mime_append_utf8(struct mime_msg *m, const char *s, size_t n)
{
	mime_utf8_into(&m->text, &m->flags, s, n);
}

static void
mime_add_url(struct mime_walk *w, const char *url, size_t len)
{
	struct mime_msg *m = w->m;
	if (m->n_urls >= w->lim->max_urls)
		return;
	if (len > 2048)
		len = 2048;
	m->urls = xrealloc(m->urls, (m->n_urls + 1) * sizeof(char *));
	m->urls[m->n_urls++] = xstrndup(url, len);
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

/* ---- parts ------------------------------------------------------------------ */

static GByteArray *
mime_decode(GMimePart *part, const char *charset, struct mime_msg *m)
{
	GMimeDataWrapper *content = g_mime_part_get_content(part);
	if (content == NULL)
		return NULL;
	GMimeStream *mem = g_mime_stream_mem_new();
	GMimeStream *f = g_mime_stream_filter_new(mem);
	if (charset != NULL && !mx_str_caseeq(charset, "utf-8") && !mx_str_caseeq(charset, "us-ascii") &&
	    !mx_str_caseeq(charset, "utf8")) {
		GMimeFilter *cf = g_mime_filter_charset_new(charset, "UTF-8");
		if (cf != NULL) {
			g_mime_stream_filter_add(GMIME_STREAM_FILTER(f), cf);
			g_object_unref(cf);
		} else {
			m->flags |= MIME_F_CHARSET;
			/* unknown: read as Latin-1, every byte is a character */
			cf = g_mime_filter_charset_new("iso-8859-1", "UTF-8");
			if (cf != NULL) {
				g_mime_stream_filter_add(GMIME_STREAM_FILTER(f), cf);
				g_object_unref(cf);
			}
		}
	}
	g_mime_data_wrapper_write_to_stream(content, f);
	g_mime_stream_flush(f);
	g_object_unref(f);
	/* take the bytes: the stream would empty a shared array when freed */
	GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
	g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
	g_object_unref(mem);
	return ba;
}

static void mime_walk_object(struct mime_walk *w, GMimeObject *obj, size_t depth);

static void
mime_walk_part(struct mime_walk *w, GMimePart *part)
{
	struct mime_msg *m = w->m;
	GMimeContentType *ct = g_mime_object_get_content_type(GMIME_OBJECT(part));
	struct mime_part *pi = &m->parts[m->n_parts - 1];
	pi->attachment = g_mime_part_is_attachment(part);
	const char *fn = g_mime_part_get_filename(part);
	if (fn != NULL)
		pi->filename = xstrndup(fn, 255);
	bool plain = ct == NULL || g_mime_content_type_is_type(ct, "text", "plain");
	bool html = ct != NULL && g_mime_content_type_is_type(ct, "text", "html");
	if ((!plain && !html) || (pi->attachment && !html && fn != NULL))
		return;
	const char *charset = ct ? g_mime_content_type_get_parameter(ct, "charset") : NULL;
	GByteArray *ba = mime_decode(part, charset, m);
	if (ba == NULL)
		return;
	pi->size = ba->len;
	if (m->text.len > 0)
		buf_appendc(&m->text, '\n');
	if (html) {
		m->flags |= MIME_F_HTML;
		struct buf tmp;
		buf_init(&tmp, w->lim->max_text);
		html_to_text((const char *)ba->data, ba->len, &tmp, mime_url_cb, w);
		mime_append_utf8(m, tmp.data ? tmp.data : "", tmp.len);
		url_scan(tmp.data ? tmp.data : "", tmp.len, mime_url_cb, w);
		buf_clear(&tmp);
	} else {
		w->has_plain = true;
		size_t before = m->text.len;
		mime_append_utf8(m, (const char *)ba->data, ba->len);
		url_scan(m->text.data + before, m->text.len - before, mime_url_cb, w);
	}
	g_byte_array_free(ba, TRUE);
}

static void
mime_walk_object(struct mime_walk *w, GMimeObject *obj, size_t depth)
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
	m->parts = xrealloc(m->parts, (m->n_parts + 1) * sizeof(*m->parts));
	struct mime_part *pi = &m->parts[m->n_parts++];
	memset(pi, 0, sizeof(*pi));
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	if (ct != NULL) {
		char *s = g_mime_content_type_get_mime_type(ct);
		if (s != NULL) {
			mx_strlcpy(pi->type, s, sizeof(pi->type));
			mx_str_lower(pi->type);
			g_free(s);
		}
	}
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		int n = g_mime_multipart_get_count(mp);
		for (int i = 0; i < n; i++)
			mime_walk_object(w, g_mime_multipart_get_part(mp, i), depth + 1);
	} else if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		if (inner != NULL) {
			const char *subj = g_mime_message_get_subject(inner);
			if (subj != NULL) {
				if (m->text.len > 0)
					buf_appendc(&m->text, '\n');
				mime_append_utf8(m, subj, strlen(subj));
			}
			GMimeObject *body = g_mime_message_get_mime_part(inner);
			if (body != NULL)
				mime_walk_object(w, body, depth + 1);
		}
	} else if (GMIME_IS_PART(obj)) {
		mime_walk_part(w, GMIME_PART(obj));
	}
}

/* ---- nesting guard ------------------------------------------------------------ */

/*
 * GMime's parser recurses once per nested multipart.  Count the distinct
 * boundary= parameters in the prefix: more than max_depth * 4 means the
 * message is hostile (or absurd); cut the prefix before the first
 * boundary past that many, so GMime parses a bounded tree.
 */
static size_t
mime_nesting_cut(const char *data, size_t len, size_t max_boundaries)
{
	size_t count = 0;
	const char *p = data, *e = data + len;
	while (p < e) {
		const char *b = memmem(p, (size_t)(e - p), "oundary=", 8);
		if (b == NULL)
			break;
		if (b > data && (b[-1] == 'b' || b[-1] == 'B') && ++count > max_boundaries)
			return (size_t)(b - data);
		p = b + 8;
	}
	return len;
}

/* ---- entry -------------------------------------------------------------------- */

static void
mime_warning(gint64 offset, GMimeParserWarning errcode, const gchar *item, gpointer user_data)
{
	(void)offset;
	(void)errcode;
	(void)item;
	((struct mime_msg *)user_data)->warnings++;
}

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
	/* an mbox "From " line in front is not a header */
	if (len > 5 && memcmp(data, "From ", 5) == 0) {
		const char *nl = memchr(data, '\n', len);
		size_t skip = nl ? (size_t)(nl - data) + 1 : len;
		data += skip;
		len -= skip;
	}
	size_t cut = mime_nesting_cut(data, len, lim->max_depth * 4);
	if (cut < len) {
		len = cut;
		out->flags |= MIME_F_TOO_DEEP;
	}
	out->raw = data;
	out->raw_len = len;
	const char *hend = memmem(data, len, "\n\n", 2);
	const char *hend2 = memmem(data, len, "\r\n\r\n", 4);
	if (hend2 != NULL && (hend == NULL || hend2 < hend))
		out->header_len = (size_t)(hend2 - data) + 4;
	else
		out->header_len = hend ? (size_t)(hend - data) + 2 : len;

	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data, len);
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	g_object_unref(stream);
	GMimeParserOptions *opts = g_mime_parser_options_new();
	g_mime_parser_options_set_warning_callback(opts, mime_warning, out);
	GMimeMessage *msg = g_mime_parser_construct_message(parser, opts);
	g_object_unref(parser);
	if (msg == NULL) {
		out->flags |= MIME_F_NO_PARSE;
		mime_append_utf8(out, data + out->header_len, len - out->header_len);
		g_mime_parser_options_free(opts);
		return;
	}
	GMimeHeaderList *hl = g_mime_object_get_header_list(GMIME_OBJECT(msg));
	int nh = g_mime_header_list_get_count(hl);
	for (int i = 0; i < nh && out->n_hdrs < lim->max_headers; i++) {
		GMimeHeader *h = g_mime_header_list_get_header_at(hl, i);
		const char *name = g_mime_header_get_name(h);
		const char *value = g_mime_header_get_value(h);
		out->hdrs = xrealloc(out->hdrs, (out->n_hdrs + 1) * sizeof(*out->hdrs));
		struct mime_header *mh = &out->hdrs[out->n_hdrs++];
		mh->name = xstrndup(name ? name : "", 100);
		/* value: valid UTF-8, at most 8 KB */
		struct buf v;
		buf_init(&v, 8192);
		mime_utf8_into(&v, &out->flags, value ? value : "", value ? strlen(value) : 0);
		mh->value = v.data ? v.data : xstrdup("");
	}
	struct mime_walk w = {.m = out, .lim = lim, .hosts = strmap_new()};
	GMimeObject *body = g_mime_message_get_mime_part(msg);
	if (body != NULL)
		mime_walk_object(&w, body, 0);
	if ((out->flags & MIME_F_HTML) && !w.has_plain)
		out->flags |= MIME_F_HTML_ONLY;
	if (out->warnings > 0)
		out->flags |= MIME_F_MALFORMED;
	strmap_free(w.hosts);
	g_object_unref(msg);
	g_mime_parser_options_free(opts);
	out->flags &= ~(unsigned)MIME_F_TEXT_CUT;
	if (out->text.truncated)
		out->flags |= MIME_F_TEXT_CUT;
}

void
mime_msg_clear(struct mime_msg *m)
{
	for (size_t i = 0; i < m->n_hdrs; i++) {
		free(m->hdrs[i].name);
		free(m->hdrs[i].value);
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
