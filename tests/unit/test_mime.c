/* SPDX-License-Identifier: MIT */
/* Unit tests: mime, html, url, headers - decoding and hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "headers.h"
#include "html.h"
#include "buf.h"
#include "mime.h"
#include "str.h"
#include "url.h"

static struct mime_limits lim;

static void
analyse(const char *msg, struct mime_msg *m)
{
	mime_analyse(msg, strlen(msg), &lim, m);
}

static int
setup(void **state)
{
	(void)state;
	mime_limits_default(&lim);
	return 0;
}

static void
test_plain_and_headers(void **state)
{
	(void)state;
	struct mime_msg m;
	analyse("From: =?UTF-8?B?SsO2cmc=?= <j@remote.test>\r\n"
	        "Subject: =?ISO-8859-1?Q?caf=E9_ol=E9?=\r\n\r\nHello http://Example.TEST/a?b world\r\n", &m);
	assert_string_equal(mime_header(&m, "subject"), "caf\xc3\xa9 ol\xc3\xa9");
	assert_string_equal(mime_header(&m, "From"), "J\xc3\xb6rg <j@remote.test>");
	assert_non_null(strstr(m.text.data, "Hello http://Example.TEST/a?b world"));
	assert_int_equal(m.n_urls, 1);
	assert_string_equal(m.hosts[0], "example.test");
	mime_msg_clear(&m);
}

/* Links in text end where a reader's eye says: a ']' ends one, but for
 * the one that closes an IPv6 host. */
static void
test_url_scan_brackets(void **state)
{
	(void)state;
	struct mime_msg m;
	analyse("Subject: x\r\n\r\n[see http://a.test/x] and http://[2001:db8::1]:8080/y]z\r\n", &m);
	assert_int_equal(m.n_urls, 2);
	assert_string_equal(m.urls[0], "http://a.test/x");
	assert_string_equal(m.urls[1], "http://[2001:db8::1]:8080/y");
	assert_string_equal(m.hosts[1], "[2001:db8::1]");
	mime_msg_clear(&m);
	/* after a user name too; a '[' in the path is no host's */
	analyse("Subject: x\r\n\r\nsee http://u@[2001:DB8::1]/x and http://a.test/[b]\r\n", &m);
	assert_int_equal(m.n_urls, 2);
	assert_string_equal(m.urls[0], "http://u@[2001:DB8::1]/x");
	assert_string_equal(m.hosts[0], "[2001:db8::1]");
	assert_string_equal(m.urls[1], "http://a.test/[b");
	mime_msg_clear(&m);
	/* a link longer than 2 KB in an href: its host after a long user name */
	char html[4200];
	int n = snprintf(html, sizeof(html), "Content-Type: text/html\r\n\r\n<a href=\"http://");
	memset(html + n, 'u', 3000);
	n += 3000;
	n += snprintf(html + n, sizeof(html) - (size_t)n, "@evil.test/\">x</a>\r\n");
	analyse(html, &m);
	assert_int_equal(m.n_hosts, 1);
	assert_string_equal(m.hosts[0], "evil.test");
	assert_int_equal(strlen(m.urls[0]), 2048); /* what is kept of the link */
	mime_msg_clear(&m);
}

static void
test_encodings_and_charsets(void **state)
{
	(void)state;
	struct mime_msg m;
	analyse("Content-Type: multipart/alternative; boundary=XX\r\n\r\n"
	        "--XX\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
	        "Content-Transfer-Encoding: quoted-printable\r\n\r\nna=EFve caf=\r\ne\r\n"
	        "--XX\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	        "PHA+Q2xpY2sgPGEgaHJlZj0iaHR0cDovL2V2aWwudGVzdC94Ij5oZXJlPC9hPiZhbXA7IG1vcmU8L3A+\r\n"
	        "--XX--\r\n", &m);
	assert_non_null(strstr(m.text.data, "na\xc3\xafve cafe"));
	assert_non_null(strstr(m.text.data, "Click here& more"));
	assert_true(m.flags & MIME_F_HTML);
	assert_false(m.flags & MIME_F_HTML_ONLY);
	assert_int_equal(m.n_hosts, 1);
	assert_string_equal(m.hosts[0], "evil.test");
	assert_int_equal(m.n_parts, 3);
	assert_string_equal(m.parts[0].type, "multipart/alternative");
	mime_msg_clear(&m);
}

static void
test_attachment_and_rfc822(void **state)
{
	(void)state;
	struct mime_msg m;
	analyse("Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
	        "--B\r\nContent-Type: application/octet-stream; name=\"x.exe\"\r\n"
	        "Content-Disposition: attachment; filename=\"x.exe\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	        "TVqQAAMAAAAEAAAA\r\n"
	        "--B\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner subject\r\n\r\ninner text\r\n"
	        "--B--\r\n", &m);
	assert_non_null(strstr(m.text.data, "body"));
	assert_non_null(strstr(m.text.data, "inner subject"));
	assert_non_null(strstr(m.text.data, "inner text"));
	assert_null(strstr(m.text.data, "TVqQ"));
	bool found = false;
	for (size_t i = 0; i < m.n_parts; i++)
		if (m.parts[i].filename && strcmp(m.parts[i].filename, "x.exe") == 0 && m.parts[i].attachment)
			found = true;
	assert_true(found);
	mime_msg_clear(&m);
}

/* Hostile input: bounded time and memory, flags instead of failures. */
static void
test_hostile(void **state)
{
	(void)state;
	struct mime_msg m;
	/* unterminated boundary */
	analyse("Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n"
	        "never closed\r\n", &m);
	assert_non_null(strstr(m.text.data, "never closed"));
	mime_msg_clear(&m);

	/* 500 nested multiparts */
	size_t cap = 1 << 20, o = 0;
	char *big = malloc(cap);
	for (int i = 0; i < 500; i++)
		o += (size_t)snprintf(big + o, cap - o,
		                      "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i);
	o += (size_t)snprintf(big + o, cap - o, "Content-Type: text/plain\r\n\r\ndeep\r\n");
	mime_analyse(big, o, &lim, &m);
	assert_true(m.flags & MIME_F_TOO_DEEP);
	assert_true(m.n_parts <= lim.max_parts);
	mime_msg_clear(&m);

	/* a megabyte header line and NUL bytes and broken base64 */
	o = (size_t)snprintf(big, cap, "X-Long: ");
	memset(big + o, 'a', 900000);
	o += 900000;
	o += (size_t)snprintf(big + o, cap - o,
	                      "\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!@@@@not base64====\r\n");
	mime_analyse(big, o, &lim, &m);
	mime_msg_clear(&m);
	static const char nul[] = "Subject: nul\r\n\r\nab\0cd\xff\xfe\r\n";
	memcpy(big, nul, sizeof(nul) - 1);
	mime_analyse(big, sizeof(nul) - 1, &lim, &m);
	assert_true(m.flags & MIME_F_NUL);
	assert_true(m.flags & MIME_F_BAD_UTF8);
	assert_non_null(strstr(m.text.data, "ab cd\xef\xbf\xbd\xef\xbf\xbd"));
	mime_msg_clear(&m);

	/* unknown charset: read as Latin-1 */
	analyse("Content-Type: text/plain; charset=x-no-such-charset\r\n\r\ncaf\xe9\r\n", &m);
	assert_true(m.flags & MIME_F_CHARSET);
	assert_non_null(strstr(m.text.data, "caf\xc3\xa9"));
	mime_msg_clear(&m);

	/* the prefix limit */
	struct mime_limits small = lim;
	small.max_bytes = 100;
	memset(big, 'z', 5000);
	memcpy(big, "Subject: x\r\n\r\n", 14);
	mime_analyse(big, 5000, &small, &m);
	assert_true(m.flags & MIME_F_TRUNCATED);
	assert_true(m.text.len <= 100);
	mime_msg_clear(&m);

	/* not a message at all */
	analyse("\x01\x02\x03 garbage", &m);
	mime_msg_clear(&m);
	mime_analyse("", 0, &lim, &m);
	mime_msg_clear(&m);
	free(big);
}

static void
html_url(const char *u, size_t n, void *arg)
{
	char *out = arg;
	strncat(out, u, n);
	strcat(out, "|");
}

static void
test_html(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 1 << 16);
	char urls[512] = "";
	const char *h = "<html><head><style>p{x}</style><script>evil()</script></head><body>"
	                "<p>Hi&nbsp;there &amp; &#169; &#x20AC; &bogus;</p><!-- hidden -->"
	                "<a href='http://one.test/'>one</a><img src=\"https://two.test/i.png\">"
	                "<a href=\"&#104;ttp://three.test/?a=1&amp;b=2\">3</a>"
	                "<br>line&lt;2&gt; a < b</body></html>";
	html_to_text(h, strlen(h), &b, html_url, urls);
	/* &nbsp; is U+00A0, as written; links keep no text of their own */
	assert_string_equal(b.data, "Hi\xc2\xa0there & \xc2\xa9 \xe2\x82\xac &bogus;\none3\nline<2> a < b");
	/* entities in links are decoded: that is how links hide from filters */
	assert_string_equal(urls, "http://one.test/|https://two.test/i.png|http://three.test/?a=1&b=2|");
	buf_clear(&b);
	/* unterminated constructs */
	buf_init(&b, 1 << 16);
	buf_reset(&b);
	html_to_text("V<b></b>iagra <i>now</i>", 24, &b, NULL, NULL);
	assert_string_equal(b.data, "Viagra now");
	html_to_text("<script>never closed", 20, &b, NULL, NULL);
	html_to_text("<!-- never closed", 17, &b, NULL, NULL);
	html_to_text("<a href=\"x", 10, &b, NULL, NULL);
	buf_clear(&b);
}

static void
test_url_host(void **state)
{
	(void)state;
	char h[URL_HOST_MAX + 1];
	static const struct {
		const char *url, *host;
	} cases[] = {
		{"http://Example.TEST/path", "example.test"},
		{"https://bank.test@evil.test/login", "evil.test"},
		{"http://evil.test:8080/x", "evil.test"},
		{"www.shop.test/x", "www.shop.test"},
		{"//cdn.test/x.js", "cdn.test"},
		{"http://[2001:db8::1]/x", "[2001:db8::1]"},
		{"http://host.test./", "host.test"},
		{"mailto:a@b.test", NULL},
		/* as a browser reads them: any run of slashes and backslashes
		 * after the scheme, percent-escapes in the host decoded */
		{"http:///evil.test/x", "evil.test"},
		{"http:/\\evil.test", "evil.test"},
		{"HTTPS:\\\\evil.test", "evil.test"},
		{"http://evil%2Etest/", "evil.test"},
		{"http://%65vil.test/", "evil.test"},
		{"http://evil.test%2e/", "evil.test"},
		{"http://good%2fevil.test/", NULL}, /* a decoded '/' is no host */
		{"http://a%40evil.test/", NULL},
		{"http://evil%", "evil%"},          /* no escape: taken as it is */
		{"http:evil.test", "evil.test"}, /* no slashes: a browser opens it all the same */
		{"https:evil.test/x", "evil.test"},
		{"http://", NULL},
		/* the authority ends at / ? # \ alone: a quote, a space or a '<'
		 * before the last '@' belong to the user name */
		{"http://bank.test'@evil.test/", "evil.test"},
		{"http://bank.test @evil.test/", "evil.test"},
		{"http://bank.test\"@evil.test/", "evil.test"},
		{"http://bank.test<@evil.test/", "evil.test"},
		{"http://bank.test evil.test/", NULL}, /* a space in a host: refused */
		{"http://evil<.test/", NULL},
		{" http://evil.test/ \x01", "evil.test"}, /* trimmed at both ends */
		{"///", NULL},
		{"ht\r\ntp://ev\til.test/", "evil.test"}, /* tabs and line ends dropped */
		{"\x01 http://evil.test", "evil.test"},     /* leading controls and spaces */
		{"http://evil\xe3\x80\x82test/", "evil.test"}, /* the dots IDNA maps: U+3002, */
		{"http://evil\xef\xbc\x8etest/", "evil.test"}, /* U+FF0E, */
		{"http://evil%EF%BD%A1test/", "evil.test"},       /* U+FF61, escaped too */
		/* internationalised names in their ASCII form, as UTS #46 maps them */
		{"http://ex\xc3\xa4mple.test/", "xn--exmple-cua.test"},
		{"http://EX\xc3\x84MPLE.test/", "xn--exmple-cua.test"},         /* capital A-umlaut */
		{"http://ex%C3%A4mple.test/", "xn--exmple-cua.test"},             /* escaped */
		{"http://\xef\xbd\x85\xef\xbd\x96il.test/", "evil.test"},         /* fullwidth e, v */
		{"http://ev\xc2\xadil.test/", "evil.test"},                       /* soft hyphen */
		{"http://ev\xe2\x80\x8bil.test/", "evil.test"},                   /* zero-width space */
		{"http://xn--exmple-cua.test/", "xn--exmple-cua.test"},
		{"http://\xe2\x98\x83.test/", "\xe2\x98\x83.test"}, /* refused by IDNA2008: as written */
		/* a name IDNA2008 refuses as a whole: each label mapped on its
		 * own, so a refused label in front hides no listed domain */
		{"http://\xe2\x98\x83.\xef\xbc\xa5\xef\xbc\xb6\xef\xbc\xa9\xef\xbc\xac.test/",
		 "\xe2\x98\x83.evil.test"},                                     /* ☃.ＥＶＩＬ.test */
		{"http://\xe2\x98\x83.b\xc3\xbc" "cher.test/", "\xe2\x98\x83.xn--bcher-kva.test"}, /* ☃.bücher */
		{"http://-x.\xef\xbd\x85vil.test/", "-x.evil.test"},          /* a hyphen rule */
		/* a mapping into what no host has: no host (a browser refuses it) */
		{"http://evil.test\xef\xbc\x8f.allowed.test/", NULL},         /* fullwidth solidus */
		{"http://x\xef\xbc\x9e\xe3\x80\x80y.test/", NULL},              /* '＞' and U+3000 */
		{"http://\xff\xfe.test/", "\xff\xfe.test"},             /* no UTF-8: as written */
		/* an address in any spelling a browser opens, in one form */
		{"http://0x7f.1/", "127.0.0.1"},
		{"http://2130706433/", "127.0.0.1"},
		{"http://0177.0.0.01/", "127.0.0.1"},
		{"http://0X7F.0x0.0.1/", "127.0.0.1"},
		{"http://192.168.257/", "192.168.1.1"},
		{"http://0x/", "0.0.0.0"},
		{"http://\xef\xbc\x91\xef\xbc\x92\xef\xbc\x97.0.0.1/", "127.0.0.1"}, /* fullwidth 127 */
		{"http://1.2.3.4.5/", "1.2.3.4.5"},       /* no address: as written */
		{"http://256.1.1.1/", "256.1.1.1"},
		{"http://1.2.3.256/", "1.2.3.256"},
		{"http://1.2.65536/", "1.2.65536"},
		{"http://08.1.1.1/", "08.1.1.1"},         /* 8 is no octal digit */
		{"http://www.example.123/", "www.example.123"},
		{"http://4294967296/", "4294967296"},
		{"http://[2001:DB8:0:0::1]/", "[2001:db8::1]"},
		{"http://[::ffff:7f00:1]/", "[::ffff:127.0.0.1]"},
		{"http://[nonsense]/", "[nonsense]"},
	};
	/* a tab in a long link: the copy without it is as long as the link
	 * (it used to stop at 1,024 bytes, before the host) */
	char lng[1300];
	memcpy(lng, "http://", 7);
	memset(lng + 7, 'a', 1100);
	memcpy(lng + 1107, "\t@evil.test/", 13);
	assert_true(url_host(lng, 1120, h));
	assert_string_equal(h, "evil.test");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool ok = url_host(cases[i].url, strlen(cases[i].url), h);
		if (cases[i].host == NULL)
			assert_false(ok);
		else {
			assert_true(ok);
			assert_string_equal(h, cases[i].host);
		}
	}
}

/* What a sender used to hide from the scan, each found in review on
 * 2026-11-29 and shown by a GMime reader in full: every case must give the
 * text, the headers and the link hosts the reader shows. */
static void
test_hiding_places(void **state)
{
	(void)state;
	struct mime_msg m;
	struct buf b;
	buf_init(&b, 1 << 20);
	/* 4 KB of parameters before boundary=: the cap came before unfolding */
	buf_appends(&b, "Content-Type: multipart/mixed");
	for (int i = 0; i < 5; i++) {
		buf_appends(&b, ";\r\n x-p=\"");
		for (int k = 0; k < 900; k++)
			buf_appendc(&b, 'A');
		buf_appends(&b, "\"");
	}
	buf_appends(&b, ";\r\n boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\ncheap pills\r\n--b--\r\n");
	analyse(b.data, &m);
	assert_non_null(strstr(m.text.data, "cheap pills"));
	mime_msg_clear(&m);
	/* a folded Content-Transfer-Encoding with a long indent */
	buf_reset(&b);
	buf_appends(&b, "Content-Type: text/plain\r\nContent-Transfer-Encoding:\r\n");
	for (int k = 0; k < 70; k++)
		buf_appendc(&b, ' ');
	buf_appends(&b, "base64\r\n\r\nY2hlYXAgcGlsbHM=\r\n");
	analyse(b.data, &m);
	assert_string_equal(m.text.data, "cheap pills");
	mime_msg_clear(&m);
	/* 200 filler headers before From, Content-Type and the encoding: they
	 * are read all the same, and the filler is flagged */
	buf_reset(&b);
	for (int i = 0; i < 200; i++) {
		char line[32];
		snprintf(line, sizeof(line), "X-Pad-%d: x\r\n\tfold\r\n", i);
		buf_appends(&b, line);
	}
	buf_appends(&b, "From: spammer@evil.test\r\nSubject: pills\r\nContent-Type: text/plain\r\n"
	                "Content-Transfer-Encoding: base64\r\n\r\nY2hlYXAgcGlsbHM=\r\n");
	analyse(b.data, &m);
	assert_string_equal(mime_header(&m, "From"), "spammer@evil.test");
	assert_string_equal(mime_header(&m, "Subject"), "pills");
	assert_string_equal(m.text.data, "cheap pills");
	assert_true(m.flags & MIME_F_TOO_MANY_HEADERS);
	assert_string_equal(mime_header(&m, "X-Pad-199"), "x fold"); /* its own fold only */
	mime_msg_clear(&m);
	/* 200 copies of one link before another: each host is found */
	buf_reset(&b);
	buf_appends(&b, "Content-Type: text/html\r\n\r\n");
	for (int i = 0; i < 250; i++)
		buf_appends(&b, "<img src=\"http://a.test/p.gif\" width=0>");
	for (int i = 0; i < 210; i++) {
		char l[64];
		snprintf(l, sizeof(l), "<img src=\"http://x%d.test/\">", i);
		buf_appends(&b, l);
	}
	buf_appends(&b, "<a href=\"http://evil.test/buy\">buy</a>\r\n");
	analyse(b.data, &m);
	bool evil = false;
	for (size_t i = 0; i < m.n_hosts; i++)
		evil = evil || strcmp(m.hosts[i], "evil.test") == 0;
	assert_true(evil);
	assert_string_equal(m.urls[0], "http://a.test/p.gif");
	assert_string_equal(m.urls[1], "http://x0.test/"); /* copies listed once */
	mime_msg_clear(&m);
	/* a line that starts with the delimiter is no delimiter ("--bx" for
	 * boundary "b"); a close delimiter is one whatever follows it */
	analyse("Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
	        "Hello.\r\n--bx\r\nContent-Type: application/octet-stream\r\n\r\ncheap pills\r\n"
	        "--b--</BODY>\r\nepilogue\r\n", &m);
	assert_non_null(strstr(m.text.data, "cheap pills"));
	assert_null(strstr(m.text.data, "epilogue"));
	assert_false(m.flags & MIME_F_MALFORMED);
	mime_msg_clear(&m);
	/* nested boundaries, the inner starting with the outer */
	analyse("Content-Type: multipart/related; boundary=\"=_P\"\r\n\r\n--=_P\r\n"
	        "Content-Type: multipart/alternative; boundary=\"=_PAA\"\r\n\r\n--=_PAA\r\n"
	        "Content-Type: text/plain\r\n\r\none\r\n--=_PAA\r\nContent-Type: text/html\r\n\r\n<b>two</b>\r\n"
	        "--=_PAA--\r\n--=_P--\r\n", &m);
	assert_int_equal(m.n_parts, 4);
	assert_string_equal(m.parts[3].type, "text/html");
	mime_msg_clear(&m);
	/* two Content-Types: flagged (readers differ on which counts) */
	analyse("Content-Type: application/octet-stream\r\nContent-Type: text/plain\r\n\r\nx\r\n", &m);
	assert_true(m.flags & MIME_F_DUP_CONTENT);
	mime_msg_clear(&m);
	analyse("Content-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n\r\nx\r\n", &m);
	assert_false(m.flags & MIME_F_DUP_CONTENT);
	mime_msg_clear(&m);
	/* "From : x" first is a header (obsolete syntax), not an mbox line */
	analyse("From : spammer@evil.test\r\nSubject: hello\r\n\r\nhi\r\n", &m);
	assert_string_equal(mime_header(&m, "From"), "spammer@evil.test");
	mime_msg_clear(&m);
	analyse("From spammer@evil.test Mon Dec  2 23:55:10 2002\r\nSubject: hello\r\n\r\nhi\r\n", &m);
	assert_null(mime_header(&m, "From"));
	assert_string_equal(mime_header(&m, "Subject"), "hello");
	mime_msg_clear(&m);
	/* a header value cut at its cap ends on a whole character */
	buf_reset(&b);
	buf_appends(&b, "Subject: a");
	for (int i = 0; i < 5000; i++)
		buf_appends(&b, "\xc3\xa9");
	buf_appends(&b, "\r\n\r\nx\r\n");
	analyse(b.data, &m);
	const char *subj = mime_header(&m, "Subject");
	assert_true(mx_utf8_valid(subj, strlen(subj)));
	assert_true(strlen(subj) >= 8000);
	mime_msg_clear(&m);
	buf_clear(&b);
}

static void
test_headers_rewrite(void **state)
{
	(void)state;
	const char *in = "From: a@b.test\r\nX-Spam-Status: No, forged\r\n\tcontinued\r\n"
	                 "Subject: hello\r\nx-spam-score: -100\r\n\r\n";
	char *out = headers_rewrite(in, strlen(in), "[SPAM] ", NULL);
	assert_string_equal(out, "From: a@b.test\r\nSubject: [SPAM] hello\r\n\r\n");
	free(out);
	out = headers_rewrite(in, strlen(in), NULL, NULL);
	assert_string_equal(out, "From: a@b.test\r\nSubject: hello\r\n\r\n");
	free(out);
	/* every Subject gets the prefix, "Subject :" included (a reader may
	 * show the last, and trims the space before the colon); a first line
	 * that continues no header is dropped, so it cannot continue ours */
	const char *two = " X-Spam-Status: No\r\nSubject : cheap\r\nFrom: a@b.test\r\nSubject: pills\r\n\r\n";
	out = headers_rewrite(two, strlen(two), "[SPAM] ", NULL);
	assert_string_equal(out, "Subject: [SPAM] cheap\r\nFrom: a@b.test\r\nSubject: [SPAM] pills\r\n\r\n");
	free(out);
	const char *notsubj = "Subjects: x\r\n\r\n";
	out = headers_rewrite(notsubj, strlen(notsubj), "[SPAM] ", NULL);
	assert_string_equal(out, "Subjects: x\r\nSubject: [SPAM] \r\n\r\n");
	free(out);
	/* symbols past the names kept are scored, and the header says so */
	struct scan_result r = {.score = 25, .action = SCAN_REJECT, .n_sym = 1, .n_sym_dropped = 3};
	strcpy(r.sym[0].name, "W00");
	out = headers_verdict(&r, "mx.test");
	assert_non_null(strstr(out, "X-Spam-Symbols: W00,+3 more\r\n"));
	free(out);
	const char *clean = "From: a@b.test\r\n\r\n";
	assert_null(headers_rewrite(clean, strlen(clean), NULL, NULL));
	out = headers_rewrite(clean, strlen(clean), "[SPAM]", NULL);
	assert_string_equal(out, "From: a@b.test\r\nSubject: [SPAM]\r\n\r\n");
	free(out);
	/* a message without the empty line is all header block: its forged
	 * verdict goes too, and a Subject added goes at the end */
	const char *nobody = "From: a@b.test\r\nX-Spam-Status: No, forged\r\n";
	out = headers_rewrite(nobody, strlen(nobody), NULL, NULL);
	assert_string_equal(out, "From: a@b.test\r\n");
	free(out);
	out = headers_rewrite(nobody, strlen(nobody), "[SPAM]", NULL);
	assert_string_equal(out, "From: a@b.test\r\nSubject: [SPAM]\r\n");
	free(out);
	out = headers_rewrite("", 0, "[SPAM]", NULL);
	assert_string_equal(out, "Subject: [SPAM]\r\n");
	free(out);
}

/* The text cap never cuts a character in two: the rules match the text
 * as UTF-8 without checking it (found by tests/fuzz/fuzz_mime). Every
 * cut from 1 to 6 bytes past a character boundary, for 2-, 3- and 4-byte
 * characters, in a plain part (converted from Latin-1 or kept as UTF-8)
 * and an HTML one. */
static void
test_text_cap_keeps_utf8(void **state)
{
	(void)state;
	static const char *const bodies[] = {
	    "Content-Type: text/plain; charset=utf-8\r\n\r\n\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\r\n",
	    "Content-Type: text/plain; charset=iso-8859-1\r\n\r\n\xe9\xe9\xe9\xe9\xe9\xe9\r\n",
	    "Content-Type: text/plain; charset=utf-8\r\n\r\n\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac\r\n",
	    "Content-Type: text/html; charset=utf-8\r\n\r\n<p>\xf0\x9f\x98\x80\xf0\x9f\x98\x80</p>\r\n",
	};
	for (size_t b = 0; b < sizeof(bodies) / sizeof(bodies[0]); b++) {
		for (size_t cap = 1; cap <= 7; cap++) {
			struct mime_limits l = lim;
			l.max_text = cap;
			struct mime_msg m;
			mime_analyse(bodies[b], strlen(bodies[b]), &l, &m);
			if (!mx_utf8_valid(m.text.data ? m.text.data : "", m.text.len))
				fail_msg("body %zu, cap %zu: text is not UTF-8", b, cap);
			assert_true(m.text.len <= cap);
			mime_msg_clear(&m);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_and_headers), cmocka_unit_test(test_encodings_and_charsets),
		cmocka_unit_test(test_attachment_and_rfc822), cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_html),              cmocka_unit_test(test_url_host), cmocka_unit_test(test_url_scan_brackets),
		cmocka_unit_test(test_hiding_places),
		cmocka_unit_test(test_headers_rewrite),     cmocka_unit_test(test_text_cap_keeps_utf8),
	};
	return cmocka_run_group_tests_name("mime", tests, setup, NULL);
}
