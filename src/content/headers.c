/* SPDX-License-Identifier: MIT */
#include "headers.h"

#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "str.h"
#include "xalloc.h"

char *
headers_rewrite(const char *block, size_t len, const char *prefix, size_t *out_len)
{
	struct buf out;
	buf_init(&out, len + 1024);
	bool changed = false, skipping = false, have_subject = false, ended = false, first = true;
	size_t i = 0;
	const char *eol = "\r\n";
	while (i < len) {
		const char *nl = memchr(block + i, '\n', len - i);
		size_t end = nl ? (size_t)(nl - block) + 1 : len;
		const char *line = block + i;
		size_t ll = end - i;
		if (ll >= 2 && line[ll - 2] == '\r')
			eol = "\r\n";
		else if (ll >= 1 && line[ll - 1] == '\n')
			eol = "\n";
		bool blank = ll <= 2 && (line[0] == '\n' || line[0] == '\r');
		bool cont = !blank && (line[0] == ' ' || line[0] == '\t');
		if (blank) { /* the end of the header block */
			if (prefix != NULL && !have_subject) {
				buf_appends(&out, "Subject: ");
				buf_appends(&out, prefix);
				buf_appends(&out, eol);
				changed = true;
			}
			buf_append(&out, line, len - i);
			i = len;
			ended = true;
			break;
		}
		if (!cont)
			skipping = mx_str_caseprefix(line, ll, "X-Spam-");
		/* a continuation line first continues no header of the message:
		 * kept, it would continue the last of ours put in front of it */
		if (skipping || (cont && first)) {
			changed = true;
			i = end;
			continue;
		}
		first = false;
		/* every Subject (a reader may show the last), its name as a
		 * reader takes it: "Subject :" with space before the colon too */
		size_t nm = 7;
		bool subject = !cont && prefix != NULL && mx_str_caseprefix(line, ll, "Subject");
		while (subject && nm < ll && (line[nm] == ' ' || line[nm] == '\t'))
			nm++;
		if (subject && nm < ll && line[nm] == ':') {
			have_subject = true;
			size_t v = nm + 1;
			while (v < ll && (line[v] == ' ' || line[v] == '\t'))
				v++;
			buf_append(&out, "Subject: ", 9);
			buf_appends(&out, prefix);
			buf_append(&out, line + v, ll - v);
			changed = true;
			i = end;
			continue;
		}
		buf_append(&out, line, ll);
		i = end;
	}
	if (!ended && prefix != NULL && !have_subject) {
		/* a message that is all header block (no empty line, no body):
		 * the Subject goes at its end */
		if (len > 0 && block[len - 1] != '\n')
			buf_appends(&out, eol);
		buf_appends(&out, "Subject: ");
		buf_appends(&out, prefix);
		buf_appends(&out, eol);
		changed = true;
	}
	if (!changed) {
		buf_clear(&out);
		return NULL;
	}
	if (out_len != NULL)
		*out_len = out.len;
	return out.data ? out.data : xstrdup("");
}

char *
headers_verdict(const struct scan_result *r, const char *hostname)
{
	char syms[1024];
	size_t o = 0;
	syms[0] = '\0';
	for (size_t i = 0; i < r->n_sym && o + 1 < sizeof(syms); i++) {
		int n = snprintf(syms + o, sizeof(syms) - o, "%s%s", i ? "," : "", r->sym[i].name);
		if (n < 0)
			break;
		o += (size_t)n;
	}
	if (r->n_sym_dropped > 0 && o + 1 < sizeof(syms)) /* fired past the names kept, and scored */
		snprintf(syms + o, sizeof(syms) - o, ",+%zu more", r->n_sym_dropped);
	bool spam = r->action != SCAN_ACCEPT;
	return xasprintf("X-Spam-Score: %.2f\r\n"
	                 "X-Spam-Status: %s, score=%.2f probability=%.4f action=%s scanner=%s\r\n"
	                 "X-Spam-Symbols: %s\r\n",
	                 r->score, spam ? "Yes" : "No", r->score, r->spam_probability,
	                 scan_action_name(r->action), hostname, *syms ? syms : "none");
}
