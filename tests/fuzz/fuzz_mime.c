/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a whole message through what a scan does to it: MIME
 * analysis (with small limits picked by the first byte, so the caps are
 * reached), the classifier's features, the rules of etc/rules.example and
 * GTUBE, and the header rewrite of a tagged message.  Checked besides "no
 * crash, no leak": the decoded text and header values are valid UTF-8 as
 * mime.h promises, feature indices are in range, every cap holds, and the
 * rewritten header block has no X-Spam-* header a sender could have
 * smuggled in; the From: address parser (GMime's) bounded on every header;
 * and the message's id is the same with CRLF line ends and
 * with the '>' of an mbox writer's escape added.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "headers.h"
#include "mime.h"
#include "rules.h"
#include "scan.h"
#include "tokenize.h"
#include "url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool
utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t k;
		unsigned min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			k = 1, min = 0x80, c &= 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2, min = 0x800, c &= 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			k = 3, min = 0x10000, c &= 0x07;
		} else {
			return false;
		}
		for (size_t j = 1; j <= k; j++) {
			if (i + j >= n || (s[i + j] & 0xc0) != 0x80)
				return false;
			c = c << 6 | (s[i + j] & 0x3f);
		}
		if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

static const struct scanner *scanner;

static void
init(void)
{
	struct config_errors errs = { 0 };
	struct rules *r = rules_load(MX_SOURCE_DIR "/etc/rules.example", &errs);
	if (r == NULL)
		abort();
	config_errors_clear(&errs);
	/* both kept for the process: the scanner borrows the config */
	struct mx_config *cfg = config_defaults();
	scanner = scanner_new(cfg, r, NULL);
}

/* a header line of the block (at its start or after a line end) that
 * names X-Spam-* */
static bool
has_xspam(const char *b, size_t n)
{
	for (size_t i = 0; i + 7 <= n; i++)
		if ((i == 0 || b[i - 1] == '\n') && strncasecmp(b + i, "x-spam-", 7) == 0)
			return true;
	return false;
}

/* The message's id as stored another way: LF line ends written as CRLF
 * (crlf), and/or every line that starts with '>'s and "From " given one
 * '>' more, as an mboxrd writer does (escape).  Both must be the same
 * example. */
static uint64_t
id_written_as(const char *raw, size_t n, bool crlf, bool escape)
{
	char *b = malloc(3 * n + 1);
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (escape && (i == 0 || raw[i - 1] == '\n')) {
			size_t j = i;
			while (j < n && raw[j] == '>')
				j++;
			if (n - j >= 5 && memcmp(raw + j, "From ", 5) == 0)
				b[o++] = '>';
		}
		if (crlf && raw[i] == '\n' && (i == 0 || raw[i - 1] != '\r'))
			b[o++] = '\r';
		b[o++] = raw[i];
	}
	struct mime_msg t;
	memset(&t, 0, sizeof(t));
	t.raw = b;
	t.raw_len = o;
	uint64_t id = tokenize_message_id(&t);
	free(b);
	return id;
}

static void
fuzz_addr_one(const char *addr, void *arg)
{
	if (addr == NULL || addr[0] == '\0')
		abort();
	(*(size_t *)arg)++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (scanner == NULL)
		init();
	if (size < 1)
		return 0;
	unsigned sel = data[0];
	/* the message in a buffer of its own size: ASan sees reads past it */
	size_t n = size - 1;
	char *msg = malloc(n ? n : 1);
	memcpy(msg, data + 1, n);

	struct mime_limits lim;
	mime_limits_default(&lim);
	if (sel & 1) {
		lim.max_bytes = 64 + (sel >> 1) * 16;
		lim.max_depth = 1 + (sel >> 4);
		lim.max_parts = 2 + (sel >> 3);
		lim.max_text = 32 + (sel >> 2) * 8;
		lim.max_urls = sel >> 5;
		lim.max_headers = 1 + (sel >> 2);
	}
	struct mime_msg m;
	mime_analyse(msg, n, &lim, &m);
	if (!utf8_valid((const unsigned char *)m.text.data, m.text.len)) {
		if (getenv("FUZZ_DEBUG"))
			for (size_t i = 0; i < m.text.len; i++)
				fprintf(stderr, "%02x%s", (unsigned char)m.text.data[i], i % 32 == 31 ? "\n" : " ");
		abort();
	}
	if (m.text.len > lim.max_text || m.n_urls > lim.max_urls || m.n_hdrs > lim.max_headers + MIME_HDRS_KEEP ||
	    m.n_hosts > MIME_HOSTS_MAX ||
	    m.n_parts > lim.max_parts || m.raw_len > lim.max_bytes || m.header_len > m.raw_len)
		abort();
	for (size_t i = 0; i < m.n_hdrs; i++)
		if (!utf8_valid((const unsigned char *)m.hdrs[i].value, strlen(m.hdrs[i].value)))
			abort();
	/* a link's host is in the form list entries are put in: taken to that
	 * form again it stays as it is (else a list entry written as the
	 * host reads would miss it) */
	for (size_t i = 0; i < m.n_hosts; i++) {
		char h2[URL_HOST_MAX + 1];
		if (!url_host_name(m.hosts[i], strlen(m.hosts[i]), h2) || strcmp(h2, m.hosts[i]) != 0) {
			fprintf(stderr, "host \"%s\" is \"%s\" again\n", m.hosts[i], h2);
			abort();
		}
	}

	struct tokenize_sets f;
	tokenize_extract(&m, &f);
	tokenize_sort(&f);
	for (int k = 0; k < TOKENIZE_MODELS; k++)
		for (size_t i = 0; i < f.set[k].n; i++)
			if (f.set[k].v[i] >= TOKENIZE_SPACE || (i > 0 && f.set[k].v[i] <= f.set[k].v[i - 1]))
				abort();
	tokenize_clear(&f);
	uint64_t id = tokenize_message_id(&m);
	if (!(m.flags & MIME_F_TRUNCATED) &&
	    (id_written_as(m.raw, m.raw_len, true, false) != id || id_written_as(m.raw, m.raw_len, false, true) != id ||
	     id_written_as(m.raw, m.raw_len, true, true) != id))
		abort();

	/* the address parser the rules' From: lists use, on every header */
	for (size_t i = 0; i < m.n_hdrs && i < 8; i++) {
		size_t seen = 0;
		size_t na = mime_addresses(m.hdrs[i].raw_value ? m.hdrs[i].raw_value : "", fuzz_addr_one, &seen);
		if (na != seen)
			abort();
	}

	char *h = headers_rewrite(m.raw, m.header_len, (sel & 2) ? "[SPAM] " : NULL, NULL);
	if (h != NULL && has_xspam(h, strlen(h)))
		abort();
	free(h);
	mime_msg_clear(&m);

	struct scan_result r;
	scanner_scan(scanner, msg, n, (sel & 4) ? "a@b.test" : NULL, NULL, &r, NULL);
	if (r.n_sym > SCAN_SYMBOLS_MAX || r.spam_probability < 0 || r.spam_probability > 1)
		abort();
	free(msg);
	return 0;
}
