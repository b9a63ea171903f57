/* SPDX-License-Identifier: MIT */
/*
 * Unit tests: tokenize and the learner, against the reference vectors of
 * the research behind docs/classifier.md (hashes, header shapes, registered
 * domains, exclusions, one learner run), the tokens of a hand-made message,
 * hostile header values, and, when the corpus is at hand (MX_CORPUS, set by
 * ./mxg test), the feature sets of five training messages.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "classifier.h"
#include "mime.h"
#include "tokenize.h"

/* ---- tokens seen through the trace hook ------------------------------------------ */

static char seen[1 << 20];
static size_t seen_len;

static void
trace(bool header, const char *pre, size_t pl, const char *s, size_t n)
{
	if (seen_len + pl + n + 4 >= sizeof(seen))
		return;
	seen[seen_len++] = header ? 'H' : 'T';
	seen[seen_len++] = ' ';
	memcpy(seen + seen_len, pre, pl);
	seen_len += pl;
	memcpy(seen + seen_len, s, n);
	seen_len += n;
	seen[seen_len++] = '\n';
	seen[seen_len] = '\0';
}

static void
extract(const char *msg, size_t len, struct tokenize_sets *f)
{
	struct mime_limits lim;
	mime_limits_default(&lim);
	struct mime_msg m;
	mime_analyse(msg, len, &lim, &m);
	seen_len = 0;
	seen[0] = '\0';
	tokenize_trace = trace;
	tokenize_extract(&m, f);
	tokenize_trace = NULL;
	tokenize_sort(f);
	mime_msg_clear(&m);
}

static bool
has(const char *line)
{
	char want[512];
	snprintf(want, sizeof(want), "\n%s\n", line);
	char *all = malloc(seen_len + 2);
	all[0] = '\n';
	memcpy(all + 1, seen, seen_len + 1);
	bool r = strstr(all, want) != NULL;
	free(all);
	return r;
}

/* ---- reference vectors -------------------------------------------------------------- */

static void
test_hashes(void **state)
{
	(void)state;
	assert_int_equal(tokenize_fnv1a32("", 0, 0x811c9dc5u), 0x811c9dc5u);
	assert_int_equal(tokenize_fold(0x811c9dc5u), 824788);
	assert_int_equal(tokenize_fnv1a32("a", 1, 0x811c9dc5u), 0xe40c292cu);
	assert_int_equal(tokenize_fold(0xe40c292cu), 796524);
	assert_int_equal(tokenize_fold(tokenize_fnv1a32("spam", 4, 0x811c9dc5u)), 97384);
	assert_int_equal(tokenize_fold(tokenize_fnv1a32("cons:fromname=match", 19, 0x811c9dc5u)), 17244);
	assert_int_equal(tokenize_fold(tokenize_fnv1a32("rx0:helo=fqdn", 13, 0x811c9dc5u)), 179176);
	const char *sd = "shape:date=Aa, 99 Aa 9999 99:99:99 -9999";
	assert_int_equal(tokenize_fold(tokenize_fnv1a32(sd, strlen(sd), 0x811c9dc5u)), 396838);
	assert_true(tokenize_fnv1a64("", 0) == 0xcbf29ce484222325ull);
	assert_true(tokenize_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cull);
	assert_true(tokenize_fnv1a64("foobar", 6) == 0x85944171f73967e8ull);
}

/* The learning identity: XXH3-64 of the bytes, CRLF read as LF (the same
 * message stored either way is one example), a lone CR kept. */
static uint64_t
id_of(const char *raw)
{
	struct mime_limits lim;
	mime_limits_default(&lim);
	struct mime_msg m;
	mime_analyse(raw, strlen(raw), &lim, &m);
	uint64_t id = tokenize_message_id(&m);
	mime_msg_clear(&m);
	return id;
}

static void
test_message_id(void **state)
{
	(void)state;
	const char *lf = "Subject: hi\n\nline one\nline two\n";
	uint64_t want = id_of(lf);
	assert_true(want == XXH3_64bits(lf, strlen(lf)));
	assert_true(id_of("Subject: hi\r\n\r\nline one\r\nline two\r\n") == want);
	assert_true(id_of("Subject: hi\r\n\nline one\nline two\r\n") == want); /* mixed */
	assert_true(id_of("Subject: hi\n\nline one\rline two\n") != want);       /* lone CR */
	const char *crcrlf_as = "Subject: hi\n\nline one\r\nline two\n"; /* CR CR LF: the first CR stays */
	assert_true(id_of("Subject: hi\n\nline one\r\r\nline two\n") == XXH3_64bits(crcrlf_as, strlen(crcrlf_as)));
	assert_true(id_of("Subject: hi\n\nline two\r") != id_of("Subject: hi\n\nline two")); /* CR at the end */
	assert_true(id_of("Subject: hi\n\nline one\nline Two\n") != want);

	/* the escape of an mbox writer does not count: the message from its
	 * own file, from an mboxo and from an mboxrd is one example */
	const char *own = "Subject: hi\n\nFrom here\n>From there\nsee >From x\n";
	uint64_t want2 = id_of(own);
	const char *unescaped = "Subject: hi\n\nFrom here\nFrom there\nsee >From x\n";
	assert_true(want2 == XXH3_64bits(unescaped, strlen(unescaped)));
	assert_true(id_of("Subject: hi\n\n>From here\n>From there\nsee >From x\n") == want2);   /* mboxo */
	assert_true(id_of("Subject: hi\n\n>From here\n>>From there\nsee >From x\n") == want2);  /* mboxrd */
	assert_true(id_of("From a@b Mon Jan  1 00:00:00 2024\nSubject: hi\n\n>From here\r\n>>From there\r\n"
	                  "see >From x\n") == want2); /* with its From_ line, and CRLF */
	assert_true(id_of("Subject: hi\n\nsee >From x\n") != id_of("Subject: hi\n\nsee From x\n")); /* not at a line start */
	assert_true(id_of("Subject: hi\n\n>From\tx\n") != id_of("Subject: hi\n\nFrom\tx\n")); /* "From" without the space */
	assert_true(id_of("Subject: hi\n\n>>>From x\n") == id_of("Subject: hi\n\nFrom x\n"));
	assert_true(id_of("Subject: hi\n\n>>>From x\n") != id_of("Subject: hi\n\n> >From x\n"));
}

/* Chinese and Japanese text has no spaces: a run of it gives character
 * bigrams (a lone character itself), CJK punctuation separates, and the
 * words around it are taken as usual. */
static void
test_cjk(void **state)
{
	(void)state;
	/* 免费赠品，请点击。Free-offer 中 日本語テキスト!  Subject: 特价 */
	const char msg[] = "Subject: =?utf-8?b?54m55Lu3?=\r\n"
	                   "Content-Type: text/plain; charset=utf-8\r\n\r\n"
	                   "\xe5\x85\x8d\xe8\xb4\xb9\xe8\xb5\xa0\xe5\x93\x81\xef\xbc\x8c"
	                   "\xe8\xaf\xb7\xe7\x82\xb9\xe5\x87\xbb\xe3\x80\x82" "Free-offer "
	                   "\xe4\xb8\xad \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x83\x86"
	                   "\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88!\r\n"
	                   "caf\xc3\xa9 \xea\xb4\x91\xea\xb3\xa0\r\n";
	struct tokenize_sets f;
	extract(msg, sizeof(msg) - 1, &f);
	assert_true(has("T \xe5\x85\x8d\xe8\xb4\xb9"));             /* 免费 */
	assert_true(has("T \xe8\xb4\xb9\xe8\xb5\xa0"));             /* 费赠 */
	assert_true(has("T \xe8\xb5\xa0\xe5\x93\x81"));             /* 赠品 */
	assert_false(has("T \xe5\x93\x81\xef\xbc\x8c"));            /* not across the comma */
	assert_true(has("T \xe8\xaf\xb7\xe7\x82\xb9"));             /* 请点 */
	assert_true(has("T \xe7\x82\xb9\xe5\x87\xbb"));             /* 点击 */
	assert_true(has("T free-offer"));                                 /* the word after 。 */
	assert_true(has("T \xe4\xb8\xad"));                             /* 中 alone */
	assert_true(has("T \xe8\xaa\x9e\xe3\x83\x86"));             /* 語テ: kanji and kana */
	assert_true(has("T \xe3\x82\xb9\xe3\x83\x88"));             /* スト */
	assert_true(has("T caf\xc3\xa9"));                               /* other text as before */
	assert_true(has("T \xea\xb4\x91\xea\xb3\xa0"));             /* Korean words have spaces */
	assert_true(has("H subject:\xe7\x89\xb9\xe4\xbb\xb7"));      /* 特价, header values too */
	/* no token longer than two characters out of the Chinese sentence */
	assert_false(has("T \xe5\x85\x8d\xe8\xb4\xb9\xe8\xb5\xa0"));
	tokenize_clear(&f);
	/* Thai has no spaces between words either: สินค้าฟรี (free goods),
	 * ten characters, 30 bytes; and Khmer: ឥតគិតថ្លៃ (free) */
	const char thai[] = "Content-Type: text/plain; charset=utf-8\r\n\r\n"
	                    "\xe0\xb8\xaa\xe0\xb8\xb4\xe0\xb8\x99\xe0\xb8\x84\xe0\xb9\x89"
	                    "\xe0\xb8\xb2\xe0\xb8\x9f\xe0\xb8\xa3\xe0\xb8\xb5 "
	                    "\xe1\x9e\xa5\xe1\x9e\x8f\xe1\x9e\x82\xe1\x9e\xb7\xe1\x9e\x8f"
	                    "\xe1\x9e\x90\xe1\x9f\x92\xe1\x9e\x9b\xe1\x9f\x83\r\n";
	extract(thai, sizeof(thai) - 1, &f);
	assert_true(has("T \xe0\xb8\x9f\xe0\xb8\xa3"));            /* ฟร */
	assert_true(has("T \xe0\xb8\xaa\xe0\xb8\xb4"));            /* สิ */
	assert_true(has("T \xe1\x9e\x82\xe1\x9e\xb7"));            /* គិ */
	assert_false(has("T \xe0\xb8\xaa\xe0\xb8\xb4\xe0\xb8\x99")); /* no longer token */
	tokenize_clear(&f);
}

/* Capitals of Latin-1, Greek and Cyrillic are folded as ASCII ones are. */
static void
test_fold(void **state)
{
	(void)state;
	/* Subject: ÉTÉ; body: БЕСПЛАТНО Бесплатно ΩΜΕΓΑ ÀÞ×ß Straße */
	const char msg[] = "Subject: =?utf-8?q?=C3=89T=C3=89?=\r\n"
	                   "Content-Type: text/plain; charset=utf-8\r\n\r\n"
	                   "\xd0\x91\xd0\x95\xd0\xa1\xd0\x9f\xd0\x9b\xd0\x90\xd0\xa2\xd0\x9d\xd0\x9e "
	                   "\xd0\x81\xd0\xb6 "
	                   "\xce\xa9\xce\x9c\xce\x95\xce\x93\xce\x91 "
	                   "\xc3\x80\xc3\x9e\xc3\x97\xc3\x9f "
	                   "Stra\xc3\x9f" "e\r\n";
	struct tokenize_sets f;
	extract(msg, sizeof(msg) - 1, &f);
	assert_true(has("H subject:\xc3\xa9t\xc3\xa9"));                                        /* été */
	assert_true(has("T \xd0\xb1\xd0\xb5\xd1\x81\xd0\xbf\xd0\xbb\xd0\xb0\xd1\x82\xd0\xbd\xd0\xbe")); /* бесплатно */
	assert_true(has("T \xd1\x91\xd0\xb6"));                                                  /* Ёж: ёж */
	assert_true(has("T \xcf\x89\xce\xbc\xce\xb5\xce\xb3\xce\xb1"));                   /* ωμεγα */
	assert_true(has("T \xc3\xa0\xc3\xbe\xc3\x97\xc3\x9f"));                              /* àþ×ß */
	assert_true(has("T stra\xc3\x9f" "e"));
	assert_false(has("T \xd0\x91\xd0\x95\xd0\xa1\xd0\x9f\xd0\x9b\xd0\x90\xd0\xa2\xd0\x9d\xd0\x9e"));
	tokenize_clear(&f);
	/* Latin Extended-A, checked against Python's str.lower() for every
	 * letter: ŁÓDŹ, ŽLUŤOUČKÝ, Ŀa (the small letter of U+013F is U+0140,
	 * with another lead byte), Ÿ (small ÿ is Latin-1), İ (kept) */
	const char ext[] = "Content-Type: text/plain; charset=utf-8\r\n\r\n"
	                   "\xc5\x81\xc3\x93\x44\xc5\xb9 "
	                   "\xc5\xbdLU\xc5\xa4OU\xc4\x8cK\xc3\x9d "
	                   "\xc4\xbf" "a \xc5\xb8" "es \xc4\xb0stanbul\r\n";
	extract(ext, sizeof(ext) - 1, &f);
	assert_true(has("T \xc5\x82\xc3\xb3" "d\xc5\xba"));                       /* łódź */
	assert_true(has("T \xc5\xbelu\xc5\xa5ou\xc4\x8dk\xc3\xbd"));              /* žluťoučký */
	assert_true(has("T \xc5\x80" "a"));                                           /* ŀa */
	assert_true(has("T \xc3\xbf" "es"));                                          /* ÿes */
	assert_true(has("T \xc4\xb0stanbul"));                                        /* İstanbul */
	tokenize_clear(&f);
}

static void
test_excluded(void **state)
{
	(void)state;
	static const char *const yes[] = {"x-spam-status", "x-spamcop-disposition", "x-virus-scanned",
	                                  "x-mailscanner", "x-ucsc-cats-mailscanner", "x-uvscan-result",
	                                  "x-scanned-by", "x-junk1", "dcc", "x-keywords", "x-razor-id",
	                                  "x-antiabuse", NULL};
	static const char *const no[] = {"received", "x-mailer", "x-status", "list-id", "x-dumb-filters",
	                                 "delivered-to", NULL};
	for (int i = 0; yes[i]; i++)
		assert_true(tokenize_excluded(yes[i]));
	for (int i = 0; no[i]; i++)
		assert_false(tokenize_excluded(no[i]));
}

static void
test_shape(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} v[] = {
		{"Tue, 3 Sep 2002 15:02:41 -0500 (CDT)", "Aa, 9 Aa 9999 99:99:99 -9999 (A)"},
		{"<200209032002.g83K2buK013193@lerami.lerc", "<9999.a99A9aA9999@a.a"},
		{"\"FOXSports FLASH\" <FOXSportsFLASH@mailin", "\"Aa A\" <AaA@a"},
		{"text/html; charset=\"us-ascii\"", "a/a; a=\"a-a\""},
		{"caf\xe9 12345 ABCdef", "a8 9999 Aa"},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char out[64];
		size_t n = tokenize_shape(v[i].in, strlen(v[i].in), out);
		out[n] = '\0';
		assert_string_equal(out, v[i].out);
	}
}

static void
test_regdom(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} v[] = {
		{"mail.example.com", "example.com"}, {"a.b.example.co.uk", "example.co.uk"},
		{"example.com", "example.com"},      {"192.168.1.20", "192.168.1.20"},
		{"www.foo.com.au", "foo.com.au"},    {"x.y.z.de", "y.z.de"},
		{".host.example.org.", "example.org"}, {"1..2", ".2"},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char out[128];
		tokenize_regdom(v[i].in, strlen(v[i].in), out, sizeof(out));
		assert_string_equal(out, v[i].out);
	}
}

/* The learner on four tiny examples (model R only), as the reference ran it. */
static void
test_learner(void **state)
{
	(void)state;
	uint32_t x0[] = {1, 2, 3}, x1[] = {3, 4}, x2[] = {5}, x3[] = {1, 4, 5, 6};
	struct classifier_example ex[4] = {
		{1, 1, {x0, NULL, NULL}, {3, 0, 0}},
		{2, 0, {x1, NULL, NULL}, {2, 0, 0}},
		{3, 1, {x2, NULL, NULL}, {1, 0, 0}},
		{4, 0, {x3, NULL, NULL}, {4, 0, 0}},
	};
	float *w = calloc((size_t)TOKENIZE_MODELS * TOKENIZE_SPACE, sizeof(float));
	classifier_train(ex, 4, w);
	static const double want[7] = {0, 0.328268111, 3.8840282, 1.24147439, -6.19831419, 3.05664039,
	                               -3.55576038};
	for (int i = 0; i < 7; i++)
		assert_true(fabs((double)w[i] - want[i]) < 1e-5);
	/* models without features stay at zero */
	for (size_t i = 0; i < 16; i++)
		assert_true(w[TOKENIZE_SPACE + i] == 0 && w[2 * TOKENIZE_SPACE + i] == 0);
	free(w);
}

/* ---- a hand-made message ---------------------------------------------------------------- */

static const char msg1[] =
	"Return-Path: <bounce@lists.example.org>\r\n"
	"Received: from mx.example.net (mx.example.net [192.0.2.7])\r\n"
	"\tby gw.example.com (mxguard) with ESMTP id 1 for <bob@example.com>; Tue, 3 Sep 2002 15:02:41 -0500\r\n"
	"Received: from [10.1.2.3] (helo=laptop) by mx.example.net; Tue, 3 Sep 2002 15:02:40 -0500\r\n"
	"X-Spam-Status: No, score=-2.0\r\n"
	"X-Virus-Scanned: clean\r\n"
	"From: \"Example News\" <news@example.org>\r\n"
	"To: Bob <bob@example.com>, carol@example.com\r\n"
	"Subject: =?utf-8?q?Caf=C3=A9_news?=\r\n"
	"Date: Tue, 3 Sep 2002 15:02:41 -0500 (CDT)\r\n"
	"Message-ID: <abc123@example.org>\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: text/plain; charset=us-ascii\r\n"
	"\r\n"
	"Hello Bob, visit http://www.example.org/a?b=1 today.\r\n";

static void
test_message_tokens(void **state)
{
	(void)state;
	struct tokenize_sets f;
	extract(msg1, sizeof(msg1) - 1, &f);
	/* group 1: values by header; dates reduced to weekday, hour, zone */
	assert_true(has("H from:news@example.org"));
	assert_true(has("H from:dom=example.org"));
	assert_true(has("H to:dom=example.com"));
	assert_true(has("H subject:caf\xc3\xa9"));
	assert_true(has("H date:wd=tue"));
	assert_true(has("H date:hh=15"));
	assert_true(has("H date:tz=-0500"));
	assert_false(has("H date:2002"));
	assert_true(has("H received:mx.example.net"));
	assert_true(has("H rcv:dom=example.net"));
	/* group 2: the Received chain, bottom hop first */
	assert_true(has("H rx0:helo=ip"));
	assert_true(has("H rx0:ip=priv"));
	assert_true(has("H rx1:helo=fqdn"));
	assert_true(has("H rx1:rdns=some"));
	assert_true(has("H rx1:ip=pub"));
	assert_true(has("H rx1:hr=same"));
	assert_true(has("H rt0:helo=fqdn"));
	assert_true(has("H rx:n=2"));
	assert_true(has("H cons:fromrcv=nomatch"));
	assert_true(has("H rcpt:n=2"));
	assert_true(has("H rcpt:env_in_to=addr"));
	/* 2b: "Example News" <news@example.org>: a name word is in the address */
	assert_true(has("H cons:fromname=match"));
	/* 3, 4: shapes and header names; excluded headers give nothing */
	assert_true(has("H shape:date=Aa, 9 Aa 9999 99:99:99 -9999 (A)"));
	assert_true(has("H hn:received"));
	assert_true(has("H ho:^>return-path"));
	assert_false(strstr(seen, "x-spam") != NULL);
	assert_false(strstr(seen, "x-virus") != NULL);
	assert_true(has("H ho:received>from"));
	/* T only: structure, consistency, body words */
	assert_true(has("T mime:text/plain"));
	assert_true(has("T cons:urlfrom=match"));
	assert_true(has("T cons:message-id=match"));
	assert_true(has("T hello"));
	assert_true(has("T http://www.example.org/a?b=1"));
	/* R: 4-grams of the body ("hello bob, ...", 53 bytes with its LF) */
	assert_true(f.set[TOKENIZE_R].n > 30 && f.set[TOKENIZE_R].n <= 50);
	/* H is the header part of T */
	assert_true(f.set[TOKENIZE_H].n > 20 && f.set[TOKENIZE_H].n < f.set[TOKENIZE_T].n);
	for (int k = 0; k < TOKENIZE_MODELS; k++)
		for (size_t i = 1; i < f.set[k].n; i++)
			assert_true(f.set[k].v[i - 1] < f.set[k].v[i]); /* sorted sets */
	tokenize_clear(&f);
}

/* The link domains of the body (cons:nurl, cons:urlfrom), as
 * (?:https?|ftp)://([a-z0-9.-]+) finds them from the left: a scheme glued
 * to a word still counts, one without a host does not, and the search
 * goes on after each. */
static void
test_url_domains(void **state)
{
	(void)state;
	static const char msg[] =
		"From: News <news@example.org>\r\nTo: bob@example.com\r\nSubject: links\r\n\r\n"
		"see https://a.b.example.org/x and http:// and ftp://files.example.net,\r\n"
		"xhttp://www.example.com/ https:///nohost http://https://c.example.org\r\n";
	struct tokenize_sets f;
	extract(msg, sizeof(msg) - 1, &f);
	/* example.org, example.net, example.com, and "https" (the regular
	 * expression's host in http://https://...) */
	assert_true(has("T cons:nurl=4"));
	assert_true(has("T cons:urlfrom=match"));
	tokenize_clear(&f);
	static const char none[] = "From: a@example.org\r\n\r\nno links, only http:// and ftp:/x\r\n";
	extract(none, sizeof(none) - 1, &f);
	assert_true(has("T cons:nurl=0"));
	assert_false(has("T cons:urlfrom=match") || has("T cons:urlfrom=nomatch"));
	tokenize_clear(&f);
}

/* Hostile headers: long runs that a naive matcher would rescan at every
 * position; they must take linear time and give sane tokens. */
static void
test_hostile(void **state)
{
	(void)state;
	size_t big = 60000;
	char *msg = malloc(4 * big + 256);
	size_t o = 0;
	o += (size_t)sprintf(msg + o, "Received: from ");
	for (size_t i = 0; i < big; i++)
		msg[o++] = 'a';
	o += (size_t)sprintf(msg + o, " (");
	for (size_t i = 0; i < big; i++)
		msg[o++] = i % 2 ? '.' : '1';
	o += (size_t)sprintf(msg + o, ")\r\nTo: ");
	for (size_t i = 0; i < big; i++)
		msg[o++] = i % 3 ? 'x' : '@';
	o += (size_t)sprintf(msg + o, "\r\nFrom: ");
	for (size_t i = 0; i < big / 2; i++)
		msg[o++] = "for "[i % 4];
	o += (size_t)sprintf(msg + o, "\r\n\r\nbody\r\n");
	struct tokenize_sets f;
	clock_t t0 = clock();
	for (int r = 0; r < 20; r++) {
		extract(msg, o, &f);
		tokenize_clear(&f);
	}
	/* generous: a quadratic matcher takes minutes here */
	assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 20.0);
	extract(msg, o, &f);
	assert_true(has("H rx0:helo=fqdn") || has("H rx0:helo=nodot"));
	assert_int_equal(f.set[TOKENIZE_R].n, 2); /* "body\n": "body", "ody\n" */
	tokenize_clear(&f);
	/* nothing at all, and no body */
	extract("", 0, &f);
	assert_int_equal(f.set[TOKENIZE_R].n, 0);
	tokenize_clear(&f);
	extract("Subject: x\r\n", 12, &f);
	assert_int_equal(f.set[TOKENIZE_R].n, 0);
	assert_true(has("H subject:x"));
	tokenize_clear(&f);
	free(msg);
}

/* ---- the corpus (reference feature sets of five training messages) ----------------------- */

/* The ids are what xxhsum -H3 prints for the file without its first line
 * (the From_ line), with "^>+From " read as "From " (sed -E 's/^>+From /From /'):
 * 00004 has such a line. */

static const struct {
	const char *path;
	uint64_t id;
	size_t n[3];
	uint32_t first[3], last[3];
} corpus_vec[] = {
	{"easy-ham-1/00003.860e3c3cee1b42ead714c5c874fe25f7.txt", 0xdb51a272b5020ecbull, {1172, 344, 186},
	 {1286, 758, 758}, {1046019, 1043550, 1033045}},
	{"easy-ham-1/00004.864220c5b6930b209cc287c361c99af1.txt", 0x26d0ae4947a671eaull, {865, 305, 183},
	 {2241, 3065, 3065}, {1048511, 1045862, 1031737}},
	{"easy-ham-1/00006.253ea2f9a9cc36fa0b1129b04b806608.txt", 0xc7b3a0400faaee18ull, {543, 270, 198},
	 {3092, 3792, 3792}, {1047518, 1033045, 1033045}},
	{"spam-1/00032.7b07a09236ce9feb12d80197144d3206.txt", 0xb9a316bc09b53c79ull, {550, 274, 200},
	 {68, 10980, 10980}, {1046070, 1045035, 1021466}},
	{"spam-2/00939.8d335bc76836e51b449de9f6b38aa0f8.txt", 0x50d91afd37e5531dull, {640, 301, 221},
	 {697, 3356, 3356}, {1047836, 1047374, 1047374}},
};

static void
test_corpus(void **state)
{
	(void)state;
	const char *dir = getenv("MX_CORPUS");
	if (dir == NULL || *dir == '\0') {
		print_message("MX_CORPUS not set: corpus vectors skipped (./mxg test sets it)\n");
		skip();
	}
	for (size_t i = 0; i < sizeof(corpus_vec) / sizeof(corpus_vec[0]); i++) {
		char path[1024];
		snprintf(path, sizeof(path), "%s/%s", dir, corpus_vec[i].path);
		FILE *fp = fopen(path, "rb");
		if (fp == NULL)
			fail_msg("%s: not found (scripts/corpus.sh fetches the corpus)", path);
		static char buf[1 << 20];
		size_t n = fread(buf, 1, sizeof(buf), fp);
		fclose(fp);
		struct mime_limits lim;
		mime_limits_default(&lim);
		struct mime_msg m;
		mime_analyse(buf, n, &lim, &m);
		assert_true(tokenize_message_id(&m) == corpus_vec[i].id);
		struct tokenize_sets f;
		tokenize_extract(&m, &f);
		tokenize_sort(&f);
		for (int k = 0; k < 3; k++) {
			assert_int_equal(f.set[k].n, corpus_vec[i].n[k]);
			assert_int_equal(f.set[k].v[0], corpus_vec[i].first[k]);
			assert_int_equal(f.set[k].v[f.set[k].n - 1], corpus_vec[i].last[k]);
		}
		tokenize_clear(&f);
		mime_msg_clear(&m);
	}
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* tokenize_sort: three rounds for small sets, two for large ones; sizes
 * on both sides of the switch, the extremes of the index space, and a set
 * larger than the scratch list kept between calls. T and H are sorted; R
 * comes out of tokenize_extract() ascending and is left as it is. */
static void
test_sort(void **state)
{
	(void)state;
	static const size_t sizes[] = {0, 1, 2, 3, 150, 511, 512, 513, 940, 3000, 10000};
	uint64_t x = 88172645463325252ull;
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		size_t n = sizes[si];
		struct tokenize_sets f;
		memset(&f, 0, sizeof(f));
		for (int k = 0; k < TOKENIZE_MODELS; k++) {
			f.set[k].n = n;
			f.set[k].cap = n;
			f.set[k].v = malloc((n ? n : 1) * sizeof(uint32_t));
			for (size_t i = 0; i < n; i++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				uint32_t v = (uint32_t)(x % TOKENIZE_SPACE);
				if (i == 0)
					v = TOKENIZE_SPACE - 1;
				else if (i == 1)
					v = 0;
				f.set[k].v[i] = v;
			}
		}
		uint32_t *want = malloc((n ? n : 1) * sizeof(uint32_t) * TOKENIZE_MODELS);
		for (int k = 0; k < TOKENIZE_MODELS; k++) {
			memcpy(want + (size_t)k * n, f.set[k].v, n * sizeof(uint32_t));
			if (k != TOKENIZE_R)
				qsort(want + (size_t)k * n, n, sizeof(uint32_t), cmp_u32);
		}
		tokenize_sort(&f);
		for (int k = 0; k < TOKENIZE_MODELS; k++)
			assert_memory_equal(f.set[k].v, want + (size_t)k * n, n * sizeof(uint32_t));
		free(want);
		tokenize_clear(&f);
	}
}

/* R's set straight from tokenize_extract(): the folded FNV-1a of every
 * 4-gram of the lower-cased prefix of the decoded text, CR-LF read as LF
 * (computed here one byte and one gram at a time), each once,
 * ascending - for bodies of lengths around the sixteen bytes and eight
 * grams the vector code takes at a time and around the prefix, with and
 * without CRs. */
static void
test_r_set(void **state)
{
	(void)state;
	static const size_t lens[] = {0, 3, 4, 5, 10, 11, 12, 19, 31, 32, 33, 100, 2999, 3000, 3001, 3002, 5000, 6001};
	uint64_t x = 0x9E3779B97F4A7C15ull;
	for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
		size_t n = lens[li];
		const char *hdr = "From: a@b.test\nSubject: r\n\n";
		size_t hl = strlen(hdr);
		char *msg = malloc(hl + n + 1);
		memcpy(msg, hdr, hl);
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			/* repeats too; every other body has CRs, some before LF */
			msg[hl + i] = (char)("aAbB c\x80\xffzZ09.-\n\r@["[x % (li % 2 ? 18 : 16)]);
		}
		msg[hl + n] = '\0';
		struct mime_limits lim;
		mime_limits_default(&lim);
		struct mime_msg m;
		mime_analyse(msg, hl + n, &lim, &m);
		/* the decoded text (here the body in UTF-8: \x80 and \xff are
		 * U+FFFD), CR-LF read as LF, ASCII lower-cased, at most 3000 bytes */
		const char *dec = m.text.data ? m.text.data : "";
		size_t dn = m.text.len;
		if (n >= 4)
			assert_true(dn >= n); /* the body is all there */
		char *text = malloc(dn + 1);
		size_t pre = 0;
		for (size_t i = 0; i < dn && pre < 3000; i++) {
			unsigned char ch = (unsigned char)dec[i];
			if (ch == '\r' && i + 1 < dn && dec[i + 1] == '\n')
				continue;
			text[pre++] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
		}
		size_t ng = pre >= 4 ? pre - 3 : 0;
		uint32_t *want = malloc((ng ? ng : 1) * sizeof(uint32_t));
		for (size_t g = 0; g < ng; g++) {
			uint32_t h = 0x811c9dc5u;
			for (int j = 0; j < 4; j++)
				h = (h ^ (unsigned char)text[g + (size_t)j]) * 0x01000193u;
			want[g] = tokenize_fold(h);
		}
		free(text);
		qsort(want, ng, sizeof(uint32_t), cmp_u32);
		size_t nw = 0;
		for (size_t g = 0; g < ng; g++)
			if (nw == 0 || want[nw - 1] != want[g])
				want[nw++] = want[g];
		struct tokenize_sets f;
		tokenize_extract(&m, &f);
		assert_int_equal(f.set[TOKENIZE_R].n, nw);
		if (nw > 0)
			assert_memory_equal(f.set[TOKENIZE_R].v, want, nw * sizeof(uint32_t));
		tokenize_clear(&f);
		/* and the bitmap was left clear: the same message again, the same set */
		tokenize_extract(&m, &f);
		assert_int_equal(f.set[TOKENIZE_R].n, nw);
		tokenize_clear(&f);
		mime_msg_clear(&m);
		free(want);
		free(msg);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_r_set),
		cmocka_unit_test(test_url_domains),
		cmocka_unit_test(test_hashes),  cmocka_unit_test(test_message_id),  cmocka_unit_test(test_excluded),
		cmocka_unit_test(test_shape),   cmocka_unit_test(test_regdom),
		cmocka_unit_test(test_learner), cmocka_unit_test(test_message_tokens), cmocka_unit_test(test_cjk), cmocka_unit_test(test_fold),
		cmocka_unit_test(test_hostile), cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_sort),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
