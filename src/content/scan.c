/* SPDX-License-Identifier: MIT */
#include "scan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "xalloc.h"

#define GTUBE "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
#define CLASSIFIER_CLIP 30.0

struct scanner {
	const struct mx_config *cfg;
	struct rules *rules;
	struct classifier *cls;
	struct mime_limits lim;
};

struct scanner *
scanner_new(const struct mx_config *cfg, struct rules *rules, struct classifier *cls)
{
	struct scanner *s = xcalloc(1, sizeof(*s));
	s->cfg = cfg;
	s->rules = rules;
	s->cls = cls;
	mime_limits_default(&s->lim);
	s->lim.max_bytes = (size_t)cfg->scan_limit;
	return s;
}

void
scanner_free(struct scanner *s)
{
	if (s == NULL)
		return;
	rules_free(s->rules);
	free(s);
}

const struct mime_limits *
scanner_limits(const struct scanner *s)
{
	return &s->lim;
}

static void
scan_add(const char *name, double score, void *arg)
{
	struct scan_result *r = arg;
	/* the score always counts: past SCAN_SYMBOLS_MAX only the name is
	 * left out (of the headers and the log), so that a sender who fires
	 * many cheap rules cannot push the lists, scored last, out */
	r->score += score;
	if (r->n_sym >= SCAN_SYMBOLS_MAX) {
		r->n_sym_dropped++;
		return;
	}
	struct scan_symbol *sy = &r->sym[r->n_sym++];
	mx_strlcpy(sy->name, name, sizeof(sy->name));
	sy->score = score;
}

static double
scan_sym(const struct scanner *s, const char *name, double dflt)
{
	return rules_symbol_score(s->rules, name, dflt);
}

void
scanner_scan(const struct scanner *s, const char *data, size_t len, const char *mail_from,
             const struct sockaddr *client, struct scan_result *out, struct mime_msg *msgout)
{
	memset(out, 0, sizeof(*out));
	out->classifier_probability = -1;
	struct mime_msg m;
	mime_analyse(data, len, &s->lim, &m);
	out->mime_flags = m.flags;

	/* in the message as sent, or in its decoded text: a mail program may
	 * send the test string base64 or quoted-printable encoded */
	if (mx_memmem2(m.raw, m.raw_len, GTUBE, sizeof(GTUBE) - 1) != NULL ||
	    (m.text.len > 0 && mx_memmem2(m.text.data, m.text.len, GTUBE, sizeof(GTUBE) - 1) != NULL))
		scan_add("GTUBE", scan_sym(s, "GTUBE", 1000), out);
	if (m.flags & MIME_F_TOO_DEEP)
		scan_add("MIME_TOO_DEEP", scan_sym(s, "MIME_TOO_DEEP", 3), out);
	if (m.flags & MIME_F_TOO_MANY)
		scan_add("MIME_TOO_MANY_PARTS", scan_sym(s, "MIME_TOO_MANY_PARTS", 3), out);
	if (m.flags & MIME_F_TOO_MANY_HEADERS)
		scan_add("MIME_TOO_MANY_HEADERS", scan_sym(s, "MIME_TOO_MANY_HEADERS", 1), out);
	if (m.flags & MIME_F_DUP_CONTENT)
		scan_add("MIME_DUPLICATE_CONTENT", scan_sym(s, "MIME_DUPLICATE_CONTENT", 2), out);
	if (m.flags & MIME_F_NO_PARSE)
		scan_add("MIME_UNPARSEABLE", scan_sym(s, "MIME_UNPARSEABLE", 1), out);

	if (s->cls != NULL && s->cfg->classifier_enabled) {
		double p = classifier_classify(s->cls, &m);
		out->classifier_probability = p;
		if (p >= 0) {
			double pp = p < 1e-15 ? 1e-15 : p > 1 - 1e-15 ? 1 - 1e-15 : p;
			double lo = log(pp / (1 - pp));
			if (lo > CLASSIFIER_CLIP)
				lo = CLASSIFIER_CLIP;
			if (lo < -CLASSIFIER_CLIP)
				lo = -CLASSIFIER_CLIP;
			scan_add("CLASSIFIER", lo * scan_sym(s, "CLASSIFIER", 1.0), out);
		}
	}
	if (s->rules != NULL) {
		struct rules_input in = {&m, mail_from, client};
		rules_run(s->rules, &in, scan_add, out);
	}
	out->spam_probability = 1.0 / (1.0 + exp(-out->score));
	const struct mx_config *c = s->cfg;
	if (out->score >= c->reject_score)
		out->action = SCAN_REJECT;
	else if (c->tempfail_score != 0 && out->score >= c->tempfail_score)
		out->action = SCAN_TEMPFAIL;
	else if (out->score >= c->tag_score)
		out->action = SCAN_TAG;
	else
		out->action = SCAN_ACCEPT;
	if (msgout != NULL)
		*msgout = m;
	else
		mime_msg_clear(&m);
}

const char *
scan_action_name(enum scan_action a)
{
	static const char *const n[] = {"accept", "tag", "tempfail", "reject"};
	return n[a];
}

void
scan_symbols_str(const struct scan_result *r, char *buf, size_t len)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < r->n_sym && o + 1 < len; i++) {
		int n = snprintf(buf + o, len - o, "%s%s(%.2f)", i ? "," : "", r->sym[i].name,
		                 r->sym[i].score);
		if (n < 0)
			break;
		o += (size_t)n;
	}
	if (r->n_sym_dropped > 0 && o + 1 < len)
		snprintf(buf + o, len - o, ",+%zu more", r->n_sym_dropped);
}
