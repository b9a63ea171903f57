/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	rules - regex, meta and list rules over a parsed message
 * DESCRIPTION
 *	Loading: each line becomes a struct rule; meta expressions are
 *	compiled to a small postfix program over rule indexes, after every
 *	name is known (forward references are allowed; cycles are errors).
 *	Running: regex rules first (each header/body/uri/raw rule matched at
 *	most once), then metas in dependency order, then the lists.
 * LIMITS
 *	4096 rules, 200 lines of meta program each, regex match limit
 *	100,000 steps (PCRE2_ERROR_MATCHLIMIT counts as no match).
 */
#include "rules.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "idna.h"
#include "log.h"
#include "netaddr.h"
#include "smtp_parse.h"
#include "str.h"
#include "strmap.h"
#include "url.h"
#include "xalloc.h"

#define RULES_MAX 4096
#define RULES_LINE_MAX 4096
#define META_PROG_MAX 200
#define RULES_MATCH_LIMIT 100000
#define RULES_ADDR_MAX 320 /* longer is no address (RFC 5321: 256 with <>) */

enum rule_kind { RK_HEADER, RK_BODY, RK_URI, RK_RAW, RK_META };

enum meta_op { MO_PUSH, MO_NOT, MO_AND, MO_OR };

struct meta_ins {
	enum meta_op op;
	int rule;
};

struct rule {
	enum rule_kind kind;
	char *name;
	char *header; /* RK_HEADER: header name, or "ALL" */
	double score;
	char *desc;
	pcre2_code *re;
	struct meta_ins *prog;
	size_t prog_len;
	char *meta_src;
	int line;
};

struct rules {
	struct rule *r;
	size_t n;
	int *meta_order; /* metas in evaluation order */
	size_t n_meta;
	struct strmap *scores; /* `score NAME N` lines: name -> double* */
	struct strmap *allow_from, *deny_from, *allow_host, *deny_host;
	struct netaddr_cidr *allow_net, *deny_net;
	size_t n_allow_net, n_deny_net;
	pcre2_match_context *mctx;
};

/* ---- parsing ------------------------------------------------------------------- */

struct rules_parse {
	struct rules *rs;
	const char *path;
	int line;
	struct config_errors *errs;
};

static char *
rules_word(char **p)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
	if (**p == '\0')
		return NULL;
	char *w = *p;
	while (**p && **p != ' ' && **p != '\t')
		(*p)++;
	if (**p)
		*(*p)++ = '\0';
	return w;
}

static bool
rules_name_ok(const char *n)
{
	if (*n == '\0' || strlen(n) > 64 || (*n >= '0' && *n <= '9'))
		return false;
	for (const char *p = n; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      (*p >= 'a' && *p <= 'z')))
			return false;
	return true;
}

static bool
rules_score(const char *s, double *out)
{
	char *end;
	if (s == NULL)
		return false;
	*out = strtod(s, &end);
	return *end == '\0' && end != s && *out > -10000 && *out < 10000;
}

/* /regex/flags at *p; compiles it. */
static pcre2_code *
rules_regex(struct rules_parse *ps, char **p, bool utf)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
	if (**p != '/') {
		config_error(ps->errs, "%s:%d: expected /regex/ here", ps->path, ps->line);
		return NULL;
	}
	char *start = ++(*p);
	char *o = start;
	while (**p && **p != '/') {
		if (**p == '\\' && (*p)[1] == '/') {
			*o++ = '/';
			*p += 2;
			continue;
		}
		if (**p == '\\' && (*p)[1]) {
			*o++ = *(*p)++;
		}
		*o++ = *(*p)++;
	}
	if (**p != '/') {
		config_error(ps->errs, "%s:%d: regex not closed with /", ps->path, ps->line);
		return NULL;
	}
	size_t len = (size_t)(o - start);
	(*p)++;
	uint32_t opts = utf ? PCRE2_UTF | PCRE2_UCP : 0;
	while (**p && **p != ' ' && **p != '\t') {
		switch (*(*p)++) {
		case 'i': opts |= PCRE2_CASELESS; break;
		case 'm': opts |= PCRE2_MULTILINE; break;
		case 's': opts |= PCRE2_DOTALL; break;
		case 'x': opts |= PCRE2_EXTENDED; break;
		default:
			config_error(ps->errs, "%s:%d: unknown regex flag '%c' (known: i m s x)", ps->path,
			             ps->line, (*p)[-1]);
			return NULL;
		}
	}
	int ec;
	PCRE2_SIZE eo;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)start, len, opts, &ec, &eo, NULL);
	if (re == NULL) {
		char msg[200];
		pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof(msg));
		config_error(ps->errs, "%s:%d: bad regex at offset %zu: %s", ps->path, ps->line,
		             (size_t)eo, msg);
		return NULL;
	}
	pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
	return re;
}

/* The domain of addr (in a buffer of cap bytes) in its A-label form where
 * it is internationalised, as smtp_parse_path() gives a sender's:
 * "bob@exämple.test" is bob@xn--exmple-cua.test. */
static bool
rules_addr_idna(char *addr, size_t cap)
{
	char *at = strrchr(addr, '@');
	if (at == NULL)
		return true;
	char *dom = at[1] == '.' ? at + 2 : at + 1; /* "@.domain": and its subdomains */
	return mx_idna_alabel(dom, dom, cap - (size_t)(dom - addr)) != MX_IDNA_FORBIDDEN;
}

static void
rules_list_add(struct rules_parse *ps, const char *kind, char *p)
{
	struct rules *rs = ps->rs;
	char *w;
	int n = 0;
	while ((w = rules_word(&p)) != NULL) {
		n++;
		mx_str_lower(w);
		if (strstr(kind, "network") != NULL) {
			struct netaddr_cidr c;
			if (netaddr_cidr_parse(w, &c) < 0) {
				config_error(ps->errs, "%s:%d: \"%s\" is not a network", ps->path, ps->line, w);
				continue;
			}
			bool allow = kind[0] == 'a';
			struct netaddr_cidr **arr = allow ? &rs->allow_net : &rs->deny_net;
			size_t *cnt = allow ? &rs->n_allow_net : &rs->n_deny_net;
			*arr = xrealloc(*arr, (*cnt + 1) * sizeof(**arr));
			(*arr)[(*cnt)++] = c;
			continue;
		}
		struct strmap *m = strcmp(kind, "allow_from") == 0   ? rs->allow_from
		                   : strcmp(kind, "deny_from") == 0  ? rs->deny_from
		                   : strcmp(kind, "allow_urlhost") == 0 ? rs->allow_host
		                                                        : rs->deny_host;
		if (strstr(kind, "from") && strchr(w, '@') == NULL) {
			config_error(ps->errs, "%s:%d: \"%s\": expected user@domain or @domain", ps->path,
			             ps->line, w);
			continue;
		}
		char norm[RULES_ADDR_MAX + 1];
		if (strstr(kind, "from") != NULL) {
			mx_strlcpy(norm, w, sizeof(norm));
			if (!rules_addr_idna(norm, sizeof(norm))) {
				config_error(ps->errs, "%s:%d: \"%s\": its domain is no domain name (its IDNA "
				             "mapping holds characters no domain name has)", ps->path, ps->line, w);
				continue;
			}
			w = norm;
		} else if (url_host_name(w, strlen(w), norm)) {
			w = norm; /* as url_host() gives a link's host */
		} else {
			config_error(ps->errs, "%s:%d: \"%s\" is no host name a link can have", ps->path,
			             ps->line, w);
			continue;
		}
		strmap_put(m, w, strlen(w), NULL);
	}
	if (n == 0)
		config_error(ps->errs, "%s:%d: %s needs at least one value", ps->path, ps->line, kind);
}

static void
rules_line(struct rules_parse *ps, char *line)
{
	struct rules *rs = ps->rs;
	char *p = line;
	char *kind = rules_word(&p);
	if (kind == NULL || kind[0] == '#')
		return;
	if (strcmp(kind, "allow_from") == 0 || strcmp(kind, "deny_from") == 0 ||
	    strcmp(kind, "allow_network") == 0 || strcmp(kind, "deny_network") == 0 ||
	    strcmp(kind, "allow_urlhost") == 0 || strcmp(kind, "deny_urlhost") == 0) {
		rules_list_add(ps, kind, p);
		return;
	}
	if (strcmp(kind, "score") == 0) {
		char *name = rules_word(&p), *sc = rules_word(&p);
		double v;
		if (name == NULL || !rules_name_ok(name) || !rules_score(sc, &v) || rules_word(&p)) {
			config_error(ps->errs, "%s:%d: expected: score NAME NUMBER", ps->path, ps->line);
			return;
		}
		double *d = xmalloc(sizeof(*d));
		*d = v;
		free(strmap_put(rs->scores, name, strlen(name), d));
		return;
	}
	enum rule_kind k;
	if (strcmp(kind, "header") == 0)
		k = RK_HEADER;
	else if (strcmp(kind, "body") == 0)
		k = RK_BODY;
	else if (strcmp(kind, "uri") == 0)
		k = RK_URI;
	else if (strcmp(kind, "raw") == 0)
		k = RK_RAW;
	else if (strcmp(kind, "meta") == 0)
		k = RK_META;
	else {
		config_error(ps->errs, "%s:%d: unknown rule type '%s' (header, body, uri, raw, meta, "
		             "score, allow_from, deny_from, allow_network, deny_network, allow_urlhost, "
		             "deny_urlhost)", ps->path, ps->line, kind);
		return;
	}
	char *name = rules_word(&p);
	if (name == NULL || !rules_name_ok(name)) {
		config_error(ps->errs, "%s:%d: rule name must be letters, digits and _ (at most 64)",
		             ps->path, ps->line);
		return;
	}
	if (rs->n >= RULES_MAX) {
		config_error(ps->errs, "%s:%d: more than %d rules", ps->path, ps->line, RULES_MAX);
		return;
	}
	struct rule r = {.kind = k, .line = ps->line};
	if (k == RK_HEADER) {
		char *h = rules_word(&p);
		if (h == NULL) {
			config_error(ps->errs, "%s:%d: header rule needs a header name", ps->path, ps->line);
			return;
		}
		r.header = xstrdup(h);
	}
	char *rest;
	if (k == RK_META) {
		/* the expression runs up to the first word that is a number (rule
		 * names start with a letter or _, so none is one) */
		while (*p == ' ' || *p == '\t')
			p++;
		char *q = p;
		for (;;) {
			while (*q == ' ' || *q == '\t')
				q++;
			if (*q == '\0')
				break;
			char *we = q;
			while (*we && *we != ' ' && *we != '\t')
				we++;
			char saved = *we;
			*we = '\0';
			double tmp;
			bool num = rules_score(q, &tmp);
			*we = saved;
			if (num)
				break;
			q = we;
		}
		if (*q == '\0' || q == p) {
			config_error(ps->errs, "%s:%d: meta rule needs an expression and a score", ps->path,
			             ps->line);
			free(r.header);
			return;
		}
		r.meta_src = xstrndup(p, (size_t)(q - p));
		rest = q;
	} else {
		r.re = rules_regex(ps, &p, k != RK_RAW);
		if (r.re == NULL) {
			free(r.header);
			return;
		}
		rest = p;
	}
	char *sc = rules_word(&rest);
	if (!rules_score(sc, &r.score)) {
		config_error(ps->errs, "%s:%d: rule %s needs a numeric score", ps->path, ps->line, name);
		pcre2_code_free(r.re);
		free(r.header);
		free(r.meta_src);
		return;
	}
	while (*rest == ' ' || *rest == '\t')
		rest++;
	size_t dl = strlen(rest);
	if (dl >= 2 && rest[0] == '"' && rest[dl - 1] == '"') {
		rest[dl - 1] = '\0';
		rest++;
	}
	r.desc = xstrdup(rest);
	r.name = xstrdup(name);
	for (size_t i = 0; i < rs->n; i++)
		if (strcmp(rs->r[i].name, name) == 0)
			config_error(ps->errs, "%s:%d: rule %s already defined at line %d", ps->path,
			             ps->line, name, rs->r[i].line);
	rs->r = xrealloc(rs->r, (rs->n + 1) * sizeof(*rs->r));
	rs->r[rs->n++] = r;
}

/* ---- meta expressions: recursive descent to postfix -------------------------- */

struct meta_parse {
	struct rules_parse *ps;
	struct rule *r;
	const char *p;
	bool err;
};

static int
rules_find(const struct rules *rs, const char *name, size_t len)
{
	for (size_t i = 0; i < rs->n; i++)
		if (strlen(rs->r[i].name) == len && strncmp(rs->r[i].name, name, len) == 0)
			return (int)i;
	return -1;
}

static void
meta_emit(struct meta_parse *mp, enum meta_op op, int rule)
{
	if (mp->r->prog_len >= META_PROG_MAX) {
		if (!mp->err)
			config_error(mp->ps->errs, "%s:%d: meta expression too long", mp->ps->path,
			             mp->r->line);
		mp->err = true;
		return;
	}
	mp->r->prog = xrealloc(mp->r->prog, (mp->r->prog_len + 1) * sizeof(*mp->r->prog));
	mp->r->prog[mp->r->prog_len++] = (struct meta_ins){op, rule};
}

static void
meta_skip(struct meta_parse *mp)
{
	while (*mp->p == ' ' || *mp->p == '\t')
		mp->p++;
}

static void meta_or(struct meta_parse *mp, int depth);

static void
meta_unary(struct meta_parse *mp, int depth)
{
	meta_skip(mp);
	if (mp->err)
		return;
	if (depth > 50) { /* an error, never a half-compiled program */
		config_error(mp->ps->errs, "%s:%d: meta %s: nested more than 50 deep", mp->ps->path,
		             mp->r->line, mp->r->name);
		mp->err = true;
		return;
	}
	if (*mp->p == '!') {
		mp->p++;
		meta_unary(mp, depth + 1);
		meta_emit(mp, MO_NOT, 0);
		return;
	}
	if (*mp->p == '(') {
		mp->p++;
		meta_or(mp, depth + 1);
		meta_skip(mp);
		if (*mp->p != ')') {
			if (!mp->err)
				config_error(mp->ps->errs, "%s:%d: meta %s: missing )", mp->ps->path,
				             mp->r->line, mp->r->name);
			mp->err = true;
			return;
		}
		mp->p++;
		return;
	}
	const char *s = mp->p;
	while ((*mp->p >= 'A' && *mp->p <= 'Z') || (*mp->p >= 'a' && *mp->p <= 'z') ||
	       (*mp->p >= '0' && *mp->p <= '9') || *mp->p == '_')
		mp->p++;
	size_t len = (size_t)(mp->p - s);
	int idx = len ? rules_find(mp->ps->rs, s, len) : -1;
	if (idx < 0) {
		if (!mp->err)
			config_error(mp->ps->errs, "%s:%d: meta %s: %s '%.*s'", mp->ps->path, mp->r->line,
			             mp->r->name, len ? "unknown rule" : "expected a rule name near",
			             len ? (int)len : 10, len ? s : mp->p);
		mp->err = true;
		return;
	}
	meta_emit(mp, MO_PUSH, idx);
}

static void
meta_and(struct meta_parse *mp, int depth)
{
	meta_unary(mp, depth);
	for (;;) {
		meta_skip(mp);
		if (mp->err || mp->p[0] != '&' || mp->p[1] != '&')
			return;
		mp->p += 2;
		meta_unary(mp, depth);
		meta_emit(mp, MO_AND, 0);
	}
}

static void
meta_or(struct meta_parse *mp, int depth)
{
	meta_and(mp, depth);
	for (;;) {
		meta_skip(mp);
		if (mp->err || mp->p[0] != '|' || mp->p[1] != '|')
			return;
		mp->p += 2;
		meta_and(mp, depth);
		meta_emit(mp, MO_OR, 0);
	}
}

/* Orders metas so each comes after the metas it uses; errors on cycles. */
static void
rules_order_metas(struct rules_parse *ps)
{
	struct rules *rs = ps->rs;
	int *state = xcalloc(rs->n, sizeof(int)); /* 0 new, 1 visiting, 2 done */
	rs->meta_order = xcalloc(rs->n, sizeof(int));
	int *stack = xcalloc(rs->n + 1, sizeof(int));
	size_t *pos = xcalloc(rs->n + 1, sizeof(size_t));
	for (size_t i = 0; i < rs->n; i++) {
		if (rs->r[i].kind != RK_META || state[i] != 0)
			continue;
		size_t sp = 0;
		stack[sp] = (int)i;
		pos[sp] = 0;
		state[i] = 1;
		while (true) {
			struct rule *r = &rs->r[stack[sp]];
			if (pos[sp] < r->prog_len) {
				struct meta_ins *ins = &r->prog[pos[sp]++];
				if (ins->op != MO_PUSH || rs->r[ins->rule].kind != RK_META)
					continue;
				if (state[ins->rule] == 1) {
					config_error(ps->errs, "%s:%d: meta %s is part of a cycle", ps->path, r->line,
					             r->name);
					goto out;
				}
				if (state[ins->rule] == 0) {
					state[ins->rule] = 1;
					stack[++sp] = ins->rule;
					pos[sp] = 0;
				}
				continue;
			}
			state[stack[sp]] = 2;
			rs->meta_order[rs->n_meta++] = stack[sp];
			if (sp == 0)
				break;
			sp--;
		}
	}
out:
	free(state);
	free(stack);
	free(pos);
}

/* Each thread's JIT stack: PCRE2's default of 32 KB let a sender make a
 * plain rule fail ("no match") with a few thousand repeats of a group it
 * matches, (cheap\s)+ say; up to 1 MB (found in review, 2026-11-29). */
static pthread_key_t rules_jit_key;
static pthread_once_t rules_jit_once = PTHREAD_ONCE_INIT;

static void
rules_jit_free(void *p)
{
	pcre2_jit_stack_free(p);
}

static void
rules_jit_init(void)
{
	pthread_key_create(&rules_jit_key, rules_jit_free);
}

static pcre2_jit_stack *
rules_jit_stack(void *arg)
{
	(void)arg;
	pthread_once(&rules_jit_once, rules_jit_init);
	pcre2_jit_stack *st = pthread_getspecific(rules_jit_key);
	if (st == NULL) {
		st = pcre2_jit_stack_create(32 << 10, 1 << 20, NULL);
		pthread_setspecific(rules_jit_key, st); /* NULL: PCRE2's own 32 KB */
	}
	return st;
}

struct rules *
rules_load(const char *path, struct config_errors *errs)
{
	struct rules *rs = xcalloc(1, sizeof(*rs));
	rs->scores = strmap_new();
	rs->allow_from = strmap_new();
	rs->deny_from = strmap_new();
	rs->allow_host = strmap_new();
	rs->deny_host = strmap_new();
	rs->mctx = pcre2_match_context_create(NULL);
	pcre2_jit_stack_assign(rs->mctx, rules_jit_stack, NULL);
	pcre2_set_match_limit(rs->mctx, RULES_MATCH_LIMIT);
	pcre2_set_depth_limit(rs->mctx, 1000);
	if (path == NULL)
		return rs;
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		config_error(errs, "%s: cannot open rules file: %m", path);
		rules_free(rs);
		return NULL;
	}
	struct rules_parse ps = {rs, path, 0, errs};
	size_t before = errs->n;
	char line[RULES_LINE_MAX + 1];
	bool too_long, nul;
	while (fsutil_read_line(f, line, RULES_LINE_MAX, &too_long, &nul)) {
		ps.line++;
		if (nul || too_long) {
			config_error(errs, "%s:%d: %s", path, ps.line,
			             nul ? "NUL byte" : "line too long (4096 bytes at most)");
			continue;
		}
		size_t len = strlen(line);
		while (len > 0 && line[len - 1] == '\r')
			line[--len] = '\0';
		rules_line(&ps, line);
	}
	fclose(f);
	for (size_t i = 0; i < rs->n; i++) {
		struct rule *r = &rs->r[i];
		if (r->kind != RK_META)
			continue;
		ps.line = r->line;
		struct meta_parse mp = {&ps, r, r->meta_src, false};
		meta_or(&mp, 0);
		meta_skip(&mp);
		if (!mp.err && *mp.p != '\0') {
			config_error(errs, "%s:%d: meta %s: unexpected '%s'", path, r->line, r->name, mp.p);
			mp.err = true;
		}
	}
	if (errs->n == before)
		rules_order_metas(&ps);
	if (errs->n != before) {
		rules_free(rs);
		return NULL;
	}
	return rs;
}

void
rules_free(struct rules *rs)
{
	if (rs == NULL)
		return;
	for (size_t i = 0; i < rs->n; i++) {
		struct rule *r = &rs->r[i];
		free(r->name);
		free(r->header);
		free(r->desc);
		free(r->prog);
		free(r->meta_src);
		pcre2_code_free(r->re);
	}
	free(rs->r);
	free(rs->meta_order);
	strmap_free_values(rs->scores);
	strmap_free(rs->allow_from);
	strmap_free(rs->deny_from);
	strmap_free(rs->allow_host);
	strmap_free(rs->deny_host);
	free(rs->allow_net);
	free(rs->deny_net);
	pcre2_match_context_free(rs->mctx);
	free(rs);
}

size_t
rules_count(const struct rules *rs)
{
	return rs->n;
}

double
rules_symbol_score(const struct rules *rs, const char *name, double dflt)
{
	void *v;
	if (rs != NULL && strmap_get(rs->scores, name, strlen(name), &v))
		return *(double *)v;
	return dflt;
}

/* ---- running ---------------------------------------------------------------- */

static bool
rules_match(const struct rules *rs, const struct rule *r, pcre2_match_data *md, const char *s,
            size_t n)
{
	int rc = pcre2_match(r->re, (PCRE2_SPTR)s, n, 0, r->kind == RK_RAW ? 0 : PCRE2_NO_UTF_CHECK,
	                     md, rs->mctx);
	return rc >= 0;
}

/* addr lower-cased in the form RCPT TO and MAIL FROM take it (quotes that
 * are not needed dropped: "bob"@x is bob@x), a trailing dot of its domain
 * dropped; false when it is no address. */
static bool
rules_addr_canon(const char *addr, char *out, size_t len)
{
	char path[RULES_ADDR_MAX + 3];
	struct smtp_addr a;
	const char *rest;
	size_t rl, n = strlen(addr);
	while (n > 0 && addr[n - 1] == '.')
		n--;
	if (n > RULES_ADDR_MAX)
		return false;
	snprintf(path, sizeof(path), "<%.*s>", (int)n, addr);
	if (smtp_parse_path(path, strlen(path), SMTP_PATH_UTF8_OK, &a, &rest, &rl) == SMTP_ADDR_OK && rl == 0 &&
	    a.addr[0] != '\0')
		mx_strlcpy(out, a.addr, len);
	else if (memchr(addr, '@', n) != NULL)
		mx_strlcpyn(out, addr, n, len);
	else
		return false;
	mx_str_lower(out);
	return true;
}

static bool
rules_addr_listed(const struct strmap *m, const char *addr)
{
	char a[RULES_ADDR_MAX + 1];
	if (addr == NULL || *addr == '\0' || strmap_count(m) == 0 || !rules_addr_canon(addr, a, sizeof(a)))
		return false;
	if (strmap_get(m, a, strlen(a), NULL))
		return true;
	const char *at = strrchr(a, '@');
	if (at == NULL)
		return false;
	if (strmap_get(m, at, strlen(at), NULL))
		return true;
	/* "@.example.test": that domain and every subdomain of it */
	char buf[RULES_ADDR_MAX + 3];
	for (const char *d = at + 1; d != NULL; d = strchr(d, '.'), d = d ? d + 1 : NULL) {
		int n = snprintf(buf, sizeof(buf), "@.%s", d);
		if (n > 2 && (size_t)n < sizeof(buf) && strmap_get(m, buf, (size_t)n, NULL))
			return true;
	}
	return false;
}

struct rules_from_check {
	const struct rules *rs;
	bool all_allowed, any_denied;
};

static void
rules_from_one(const char *addr, void *arg)
{
	struct rules_from_check *fc = arg;
	if (fc->all_allowed && !rules_addr_listed(fc->rs->allow_from, addr))
		fc->all_allowed = false;
	if (!fc->any_denied && rules_addr_listed(fc->rs->deny_from, addr))
		fc->any_denied = true;
}

static bool
rules_host_listed(const struct strmap *m, const char *host)
{
	for (const char *p = host; p != NULL; p = strchr(p, '.')) {
		if (*p == '.')
			p++;
		if (strmap_get(m, p, strlen(p), NULL))
			return true;
		if (strchr(p, '.') == NULL)
			break;
	}
	return false;
}

void
rules_run(const struct rules *rs, const struct rules_input *in, rules_hit_cb cb, void *arg)
{
	const struct mime_msg *m = in->msg;
	bool *hit = rs->n ? xcalloc(rs->n, sizeof(bool)) : NULL;
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	struct buf all;
	buf_init(&all, 256 << 10);
	bool all_built = false;
	for (size_t i = 0; i < rs->n; i++) {
		const struct rule *r = &rs->r[i];
		switch (r->kind) {
		case RK_HEADER:
			if (strcmp(r->header, "ALL") == 0) {
				if (!all_built) {
					for (size_t h = 0; h < m->n_hdrs; h++) {
						buf_appends(&all, m->hdrs[h].name);
						buf_append(&all, ": ", 2);
						buf_appends(&all, m->hdrs[h].value);
						buf_appendc(&all, '\n');
					}
					all_built = true;
				}
				hit[i] = rules_match(rs, r, md, all.data ? all.data : "", all.len);
				break;
			}
			for (size_t h = 0; h < m->n_hdrs && !hit[i]; h++)
				if (mx_str_caseeq(m->hdrs[h].name, r->header))
					hit[i] = rules_match(rs, r, md, m->hdrs[h].value, strlen(m->hdrs[h].value));
			break;
		case RK_BODY: {
			const char *subj = mime_header(m, "Subject");
			if (subj != NULL)
				hit[i] = rules_match(rs, r, md, subj, strlen(subj));
			if (!hit[i])
				hit[i] = rules_match(rs, r, md, m->text.data ? m->text.data : "", m->text.len);
			break;
		}
		case RK_URI:
			for (size_t u = 0; u < m->n_urls && !hit[i]; u++)
				hit[i] = rules_match(rs, r, md, m->urls[u], strlen(m->urls[u]));
			break;
		case RK_RAW:
			hit[i] = rules_match(rs, r, md, m->raw ? m->raw : "", m->raw_len);
			break;
		case RK_META:
			break;
		}
	}
	for (size_t k = 0; k < rs->n_meta; k++) {
		const struct rule *r = &rs->r[rs->meta_order[k]];
		bool st[META_PROG_MAX];
		size_t sp = 0;
		for (size_t j = 0; j < r->prog_len; j++) {
			const struct meta_ins *ins = &r->prog[j];
			switch (ins->op) {
			case MO_PUSH: st[sp++] = hit[ins->rule]; break;
			case MO_NOT: st[sp - 1] = !st[sp - 1]; break;
			case MO_AND: sp--; st[sp - 1] = st[sp - 1] && st[sp]; break;
			case MO_OR: sp--; st[sp - 1] = st[sp - 1] || st[sp]; break;
			}
		}
		hit[rs->meta_order[k]] = sp == 1 && st[0];
	}
	for (size_t i = 0; i < rs->n; i++)
		if (hit[i])
			cb(rs->r[i].name, rules_symbol_score(rs, rs->r[i].name, rs->r[i].score), arg);

	/* lists: the envelope sender, and the From: addresses as a mail
	 * reader shows them (comments, quotes, groups understood); a From:
	 * with several is allowed only when all are, and denied when one is */
	if (strmap_count(rs->allow_from) + strmap_count(rs->deny_from) > 0) {
		struct rules_from_check fc = {rs, true, false};
		/* every From: header (a reader such as GMime shows them all; a
		 * second one used to escape the lists, or share the first's
		 * allow) */
		size_t nf = 0;
		for (size_t i = 0; i < m->n_hdrs; i++)
			if (mx_str_caseeq(m->hdrs[i].name, "From") && m->hdrs[i].raw_value != NULL)
				nf += mime_addresses(m->hdrs[i].raw_value, rules_from_one, &fc);
		bool allow = nf > 0 && fc.all_allowed, deny = fc.any_denied;
		if (allow || rules_addr_listed(rs->allow_from, in->mail_from))
			cb("ALLOW_FROM", rules_symbol_score(rs, "ALLOW_FROM", -20), arg);
		if (deny || rules_addr_listed(rs->deny_from, in->mail_from))
			cb("DENY_FROM", rules_symbol_score(rs, "DENY_FROM", 20), arg);
	}
	if (in->client != NULL) {
		for (size_t i = 0; i < rs->n_allow_net; i++)
			if (netaddr_cidr_match(&rs->allow_net[i], in->client)) {
				cb("ALLOW_NETWORK", rules_symbol_score(rs, "ALLOW_NETWORK", -20), arg);
				break;
			}
		for (size_t i = 0; i < rs->n_deny_net; i++)
			if (netaddr_cidr_match(&rs->deny_net[i], in->client)) {
				cb("DENY_NETWORK", rules_symbol_score(rs, "DENY_NETWORK", 20), arg);
				break;
			}
	}
	bool ah = false, dh = false;
	for (size_t h = 0; h < m->n_hosts; h++) {
		ah = ah || rules_host_listed(rs->allow_host, m->hosts[h]);
		dh = dh || rules_host_listed(rs->deny_host, m->hosts[h]);
	}
	if (ah)
		cb("ALLOW_URLHOST", rules_symbol_score(rs, "ALLOW_URLHOST", -5), arg);
	if (dh)
		cb("DENY_URLHOST", rules_symbol_score(rs, "DENY_URLHOST", 20), arg);
	buf_clear(&all);
	pcre2_match_data_free(md);
	free(hit);
}
