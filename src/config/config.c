/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	config - the configuration: libconfig file -> immutable struct
 * DESCRIPTION
 *	Three passes: libconfig parses the syntax; a walk of the tree rejects
 *	keys the schema does not know (suggesting the nearest known key);
 *	then each schema row is read, converted, bounds-checked or defaulted.
 *	Cross-key checks come last.  All errors are collected, so one run of
 *	check-config shows every problem.
 */
#include "config.h"

#include <libconfig.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_schema.h"
#include "idna.h"
#include "status.h"
#include "log.h"
#include "netaddr.h"
#include "str.h"
#include "xalloc.h"

#define CFG_PATH_MAX 256

static void config_free(struct mx_config *c);

void
config_error(struct config_errors *errs, const char *fmt, ...)
{
	if (errs->n >= CONFIG_MAX_ERRORS) {
		errs->dropped++;
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	char *m = NULL;
	if (vasprintf(&m, fmt, ap) < 0)
		fatalx("out of memory");
	va_end(ap);
	errs->msg[errs->n++] = m;
}

void
config_errors_clear(struct config_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		free(errs->msg[i]);
	errs->n = 0;
	errs->dropped = 0;
}

static const struct cfg_key *
config_schema_find(const char *path)
{
	for (size_t i = 0; i < config_schema_len; i++)
		if (strcmp(config_schema[i].path, path) == 0)
			return &config_schema[i];
	return NULL;
}

const char *const *
config_key_names(void)
{
	static const char *names[256];
	static size_t n;
	if (n == 0) {
		for (size_t i = 0; i < config_schema_len && n + 1 < MX_ARRAY_LEN(names); i++)
			names[n++] = config_schema[i].path;
		names[n] = NULL;
	}
	return names;
}

/* ---- units ---------------------------------------------------------- */

static int
config_parse_unit(const char *s, long long *out, const char *const *units,
                  const long long *mult, long long base)
{
	char *end;
	while (*s == ' ')
		s++;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || end == s)
		return -1;
	while (*end == ' ')
		end++;
	long long m = base;
	if (*end != '\0') {
		size_t i;
		for (i = 0; units[i] != NULL; i++)
			if (mx_str_caseeq(end, units[i]))
				break;
		if (units[i] == NULL)
			return -1;
		m = mult[i];
	}
	if (v > (unsigned long long)LLONG_MAX / (unsigned long long)m)
		return -1;
	*out = (long long)v * m;
	return 0;
}

int
config_parse_duration(const char *s, long long *ms)
{
	static const char *const u[] = {"ms", "s", "m", "h", "d", NULL};
	static const long long m[] = {1, 1000, 60000, 3600000, 86400000};
	return config_parse_unit(s, ms, u, m, 1000);
}

int
config_parse_size(const char *s, long long *bytes)
{
	static const char *const u[] = {"k", "kb", "m", "mb", "g", "gb", NULL};
	static const long long m[] = {1LL << 10, 1LL << 10, 1LL << 20, 1LL << 20, 1LL << 30, 1LL << 30};
	return config_parse_unit(s, bytes, u, m, 1);
}

/* ---- unknown keys ----------------------------------------------------- */

static size_t
config_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 63 || lb > 63)
		return 99;
	size_t d[64][64];
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			size_t c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
			size_t x = d[i - 1][j] + 1, y = d[i][j - 1] + 1;
			d[i][j] = MX_MIN(c, MX_MIN(x, y));
		}
	return d[la][lb];
}

static const char *
config_suggest(const char *path)
{
	const char *best = NULL;
	size_t bd = 4;
	for (size_t i = 0; i < config_schema_len; i++) {
		size_t d = config_distance(path, config_schema[i].path);
		if (d < bd) {
			bd = d;
			best = config_schema[i].path;
		}
	}
	return best;
}

static const char *
config_file_of(const config_setting_t *s, const char *fallback)
{
	const char *f = config_setting_source_file(s);
	return f != NULL ? f : fallback;
}

static void
config_check_unknown(const config_setting_t *group, const char *prefix, const char *file,
                     struct config_errors *errs)
{
	int n = config_setting_length(group);
	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
		const char *name = config_setting_name(s);
		if (name == NULL)
			continue;
		char path[CFG_PATH_MAX];
		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", name);
		const struct cfg_key *k = config_schema_find(path);
		if (k == NULL) {
			const char *sug = config_suggest(path);
			config_error(errs, "%s:%d: unknown key '%s'%s%s%s", config_file_of(s, file),
			             config_setting_source_line(s), path, sug ? " (did you mean '" : "",
			             sug ? sug : "", sug ? "'?)" : "");
			continue;
		}
		if (k->type == CT_GROUP) {
			if (!config_setting_is_group(s)) {
				config_error(errs, "%s:%d: '%s' must be a group { ... }",
				             config_file_of(s, file), config_setting_source_line(s), path);
				continue;
			}
			config_check_unknown(s, path, file, errs);
		}
	}
}

/* ---- values ----------------------------------------------------------- */

static bool
config_choice_ok(const char *choices, const char *v)
{
	size_t vl = strlen(v);
	const char *p = choices;
	while (*p) {
		const char *bar = strchr(p, '|');
		size_t l = bar ? (size_t)(bar - p) : strlen(p);
		if (l == vl && strncmp(p, v, l) == 0)
			return true;
		if (bar == NULL)
			break;
		p = bar + 1;
	}
	return false;
}

/* Reads a size or duration: integer or string with unit. */
static int
config_read_scaled(const config_setting_t *s, const struct cfg_key *k, long long *out,
                   const char **why)
{
	int t = config_setting_type(s);
	if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
		long long v = config_setting_get_int64(s);
		if (v < 0) {
			*why = "must not be negative";
			return -1;
		}
		if (k->type == CT_DURATION) {
			if (v > LLONG_MAX / 1000) {
				*why = "is too large";
				return -1;
			}
			v *= 1000;
		}
		*out = v;
		return 0;
	}
	if (t == CONFIG_TYPE_STRING) {
		const char *str = config_setting_get_string(s);
		int rc = k->type == CT_DURATION ? config_parse_duration(str, out)
		                                : config_parse_size(str, out);
		if (rc < 0) {
			*why = k->type == CT_DURATION ? "is not a duration (like 30, \"30s\", \"5m\", \"500ms\")"
			                              : "is not a size (like 1048576, \"64k\", \"25M\", \"1G\")";
			return -1;
		}
		return 0;
	}
	*why = k->type == CT_DURATION ? "must be a duration" : "must be a size";
	return -1;
}

static void
config_read_key(struct mx_config *c, const struct cfg_key *k, const config_setting_t *s,
                const char *file, struct config_errors *errs)
{
	char *base = (char *)c;
	const char *why = NULL;
	int line = config_setting_source_line(s);
	file = config_file_of(s, file);

	switch (k->type) {
	case CT_GROUP:
	case CT_DOWNSTREAM:
		return;
	case CT_STRING: {
		if (config_setting_type(s) != CONFIG_TYPE_STRING) {
			why = "must be a string";
			break;
		}
		const char *v = config_setting_get_string(s);
		size_t len = strlen(v);
		if (k->choices != NULL && !config_choice_ok(k->choices, v)) {
			config_error(errs, "%s:%d: '%s' is \"%s\"; allowed: %s", file, line, k->path, v,
			             k->choices);
			return;
		}
		if ((k->min > 0 && (long long)len < k->min) || (k->max > 0 && (long long)len > k->max)) {
			config_error(errs, "%s:%d: '%s' must be %lld to %lld characters long", file, line,
			             k->path, k->min, k->max);
			return;
		}
		char **dst = (char **)(base + k->off);
		free(*dst);
		*dst = xstrdup(v);
		return;
	}
	case CT_STRINGS: {
		int t = config_setting_type(s);
		char ***dst = (char ***)(base + k->off);
		size_t *cnt = (size_t *)(base + k->count_off);
		if (t == CONFIG_TYPE_STRING) { /* a single string is a list of one */
			*dst = xcalloc(1, sizeof(char *));
			(*dst)[0] = xstrdup(config_setting_get_string(s));
			*cnt = 1;
			return;
		}
		if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
			why = "must be a list of strings, like [\"a\", \"b\"]";
			break;
		}
		int n = config_setting_length(s);
		if (n < k->min || n > k->max) {
			config_error(errs, "%s:%d: '%s' must have %lld to %lld entries", file, line, k->path,
			             k->min, k->max);
			return;
		}
		*dst = xcalloc((size_t)n + 1, sizeof(char *));
		*cnt = 0;
		for (int i = 0; i < n; i++) {
			const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
			if (config_setting_type(e) != CONFIG_TYPE_STRING) {
				config_error(errs, "%s:%d: '%s' entry %d must be a string", file, line,
				             k->path, i + 1);
				continue;
			}
			(*dst)[(*cnt)++] = xstrdup(config_setting_get_string(e));
		}
		return;
	}
	case CT_BOOL:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
			why = "must be true or false";
			break;
		}
		*(bool *)(base + k->off) = config_setting_get_bool(s) != 0;
		return;
	case CT_INT: {
		int t = config_setting_type(s);
		if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
			why = "must be an integer";
			break;
		}
		long long v = config_setting_get_int64(s);
		if (v < k->min || v > k->max) {
			config_error(errs, "%s:%d: '%s' is %lld; it must be between %lld and %lld", file,
			             line, k->path, v, k->min, k->max);
			return;
		}
		*(int *)(base + k->off) = (int)v;
		return;
	}
	case CT_DOUBLE: {
		int t = config_setting_type(s);
		if (t != CONFIG_TYPE_FLOAT && t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
			why = "must be a number";
			break;
		}
		double v = t == CONFIG_TYPE_FLOAT ? config_setting_get_float(s)
		                                  : (double)config_setting_get_int64(s);
		if (v < (double)k->min || v > (double)k->max) {
			config_error(errs, "%s:%d: '%s' is %g; it must be between %lld and %lld", file, line,
			             k->path, v, k->min, k->max);
			return;
		}
		*(double *)(base + k->off) = v;
		return;
	}
	case CT_SIZE:
	case CT_DURATION: {
		long long v;
		if (config_read_scaled(s, k, &v, &why) < 0)
			break;
		if (v < k->min || v > k->max) {
			if (k->type == CT_DURATION)
				config_error(errs, "%s:%d: '%s' must be between %lldms and %lldms", file,
				             line, k->path, k->min, k->max);
			else
				config_error(errs, "%s:%d: '%s' is %lld bytes; it must be between %lld and %lld",
				             file, line, k->path, v, k->min, k->max);
			return;
		}
		*(long long *)(base + k->off) = v;
		return;
	}
	}
	config_error(errs, "%s:%d: '%s' %s", file, line, k->path, why);
}

/* Applies a default written in file syntax by parsing it as a file. */
static void
config_read_default(struct mx_config *c, const struct cfg_key *k, struct config_errors *errs)
{
	config_t tmp;
	char text[256];
	snprintf(text, sizeof(text), "v = %s;", k->def);
	config_init(&tmp);
	if (config_read_string(&tmp, text) != CONFIG_TRUE)
		fatalx("config: bad built-in default for %s", k->path);
	config_read_key(c, k, config_lookup(&tmp, "v"), "<default>", errs);
	config_destroy(&tmp);
}

/* downstream: "target" | ["t1", "t2"] | ( { target = "t"; priority = 10; }, ... ) */
static void
config_read_downstream(struct mx_config *c, const config_setting_t *s, const char *file,
                       struct config_errors *errs)
{
	file = config_file_of(s, file);
	int t = config_setting_type(s);
	if (t == CONFIG_TYPE_STRING) {
		c->down = xcalloc(1, sizeof(*c->down));
		c->down[0].target = xstrdup(config_setting_get_string(s));
		c->down[0].line = config_setting_source_line(s);
		c->n_down = 1;
		return;
	}
	if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST) {
		config_error(errs, "%s:%d: 'downstream' must be a string, a list of strings, or a "
		             "list of { target = \"...\"; priority = N; } groups",
		             file, config_setting_source_line(s));
		return;
	}
	int n = config_setting_length(s);
	if (n < 1 || n > 64) {
		config_error(errs, "%s:%d: 'downstream' must have 1 to 64 entries", file,
		             config_setting_source_line(s));
		return;
	}
	c->down = xcalloc((size_t)n, sizeof(*c->down));
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		int line = config_setting_source_line(e);
		if (line == 0)
			line = config_setting_source_line(s);
		struct config_downstream *d = &c->down[c->n_down];
		d->line = line;
		if (config_setting_type(e) == CONFIG_TYPE_STRING) {
			d->target = xstrdup(config_setting_get_string(e));
			c->n_down++;
			continue;
		}
		if (!config_setting_is_group(e)) {
			config_error(errs, "%s:%d: 'downstream' entry %d must be a string or a group",
			             file, line, i + 1);
			continue;
		}
		const char *target = NULL;
		int prio = 0;
		for (int j = 0; j < config_setting_length(e); j++) {
			const config_setting_t *f = config_setting_get_elem(e, (unsigned)j);
			const char *name = config_setting_name(f);
			int fl = config_setting_source_line(f);
			if (strcmp(name, "target") == 0 && config_setting_type(f) == CONFIG_TYPE_STRING) {
				target = config_setting_get_string(f);
			} else if (strcmp(name, "priority") == 0 &&
			           config_setting_type(f) == CONFIG_TYPE_INT) {
				prio = config_setting_get_int(f);
				if (prio < 0 || prio > 65535)
					config_error(errs, "%s:%d: 'downstream.priority' must be 0 to 65535",
					             file, fl);
			} else {
				config_error(errs, "%s:%d: unknown or mistyped key 'downstream.%s' (known: "
				             "target = \"...\"; priority = N;)",
				             file, fl, name);
			}
		}
		if (target == NULL) {
			config_error(errs, "%s:%d: 'downstream' entry %d has no target", file, line, i + 1);
			continue;
		}
		d->target = xstrdup(target);
		d->priority = prio;
		c->n_down++;
	}
}

/* ---- cross-key checks ------------------------------------------------ */

static bool
config_domain_ok(const char *d)
{
	size_t len = strlen(d), label = 0;
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = d[i];
		if (ch == '.') {
			if (label == 0 || d[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		          (ch >= '0' && ch <= '9') || (ch == '-' && label > 0);
		if (!ok || ++label > 63)
			return false;
	}
	return label > 0 && d[len - 1] != '-';
}

static int
config_line_of(config_t *cf, const char *path)
{
	const config_setting_t *s = config_lookup(cf, path);
	return s ? config_setting_source_line(s) : 0;
}

/* recipients: exactly one source; what each directory needs; harvest. */
static void
config_check_recipients(struct mx_config *c, config_t *cf, const char *file,
                        struct config_errors *errs)
{
	static const char *const sources[] = {"file", "ldap", "pgsql", "mysql", "callout"};
	int n = 0;
	for (size_t i = 0; i < MX_ARRAY_LEN(sources); i++) {
		char path[64];
		snprintf(path, sizeof(path), "recipients.%s", sources[i]);
		if (config_lookup(cf, path) == NULL)
			continue;
		if (n++ == 0)
			c->rcpt_source = sources[i];
		else
			config_error(errs, "%s:%d: 'recipients' names both %s and %s; configure exactly "
			             "one source", file, config_line_of(cf, path), c->rcpt_source,
			             sources[i]);
	}
	int line = config_line_of(cf, "recipients");
	if (n == 0)
		config_error(errs, "%s:%d: 'recipients' names no source; set recipients.file (or ldap, "
		             "pgsql, mysql, callout)", file, line);
	const char *src = c->rcpt_source ? c->rcpt_source : "";
	if (strcmp(src, "ldap") == 0) {
		if (c->n_ldap_uris == 0)
			config_error(errs, "%s:%d: 'recipients.ldap' needs uris", file,
			             config_line_of(cf, "recipients.ldap"));
		for (size_t i = 0; i < c->n_ldap_uris; i++)
			if (strncmp(c->ldap_uris[i], "ldap://", 7) != 0 &&
			    strncmp(c->ldap_uris[i], "ldaps://", 8) != 0)
				config_error(errs, "%s:%d: 'recipients.ldap.uris' entry \"%s\": expected "
				             "ldap://HOST[:PORT] or ldaps://HOST[:PORT]", file,
				             config_line_of(cf, "recipients.ldap.uris"), c->ldap_uris[i]);
		if ((c->ldap_bind_dn == NULL) != (c->ldap_bind_password == NULL))
			config_error(errs, "%s:%d: 'recipients.ldap' needs both bind_dn and bind_password "
			             "(or neither: anonymous)", file, config_line_of(cf, "recipients.ldap"));
		c->ldap_replica = config_lookup(cf, "recipients.ldap.replica") != NULL;
	} else if (strcmp(src, "pgsql") == 0 || strcmp(src, "mysql") == 0) {
		bool pg = strcmp(src, "pgsql") == 0;
		if ((pg ? c->pgsql_query : c->mysql_query) == NULL)
			config_error(errs, "%s:%d: 'recipients.%s' needs a query", file,
			             config_line_of(cf, pg ? "recipients.pgsql" : "recipients.mysql"),
			             c->rcpt_source);
		if (!pg && (c->mysql_user == NULL || c->mysql_database == NULL))
			config_error(errs, "%s:%d: 'recipients.mysql' needs user and database", file,
			             config_line_of(cf, "recipients.mysql"));
	}
	c->harvest = config_lookup(cf, "harvest") != NULL;
	if (c->harvest_block_code != 421 && c->harvest_block_code != 554)
		config_error(errs, "%s:%d: 'harvest.block_code' must be 421 or 554", file,
		             config_line_of(cf, "harvest.block_code"));
	if (c->harvest && c->harvest_block_after < c->harvest_tarpit_after)
		config_error(errs, "%s:%d: 'harvest.block_after' (%d) is below 'harvest.tarpit_after' "
		             "(%d)", file, config_line_of(cf, "harvest"), c->harvest_block_after,
		             c->harvest_tarpit_after);
}

static void
config_check(struct mx_config *c, config_t *cf, const char *file, struct config_errors *errs)
{
	for (size_t i = 0; i < c->n_domains; i++) {
		mx_str_lower(c->domains[i]);
		/* exämple.test as xn--exmple-cua.test, the form RCPT TO's domain
		 * takes (smtp_parse_path); one libidn2 refuses is reported below */
		char al[256];
		enum mx_idna ir = mx_idna_alabel(c->domains[i], al, sizeof(al));
		if (ir == MX_IDNA_FORBIDDEN) {
			config_error(errs, "%s:%d: 'domains' entry \"%s\" is not a domain name (its "
			             "IDNA mapping holds characters no domain name has)", file,
			             config_line_of(cf, "domains"), c->domains[i]);
			continue;
		}
		if (ir == MX_IDNA_CONVERTED) {
			free(c->domains[i]);
			c->domains[i] = xstrdup(al);
		}
		if (!config_domain_ok(c->domains[i]))
			config_error(errs, "%s:%d: 'domains' entry \"%s\" is not a domain name", file,
			             config_line_of(cf, "domains"), c->domains[i]);
	}
	config_check_recipients(c, cf, file, errs);
	if ((c->tls_cert == NULL) != (c->tls_key == NULL))
		config_error(errs, "%s:%d: 'tls' needs both cert and key", file,
		             config_line_of(cf, "tls"));
	for (size_t i = 0; i < c->n_down; i++) {
		const char *t = c->down[i].target;
		if (strncmp(t, "smtp:", 5) != 0 && strncmp(t, "lmtp:", 5) != 0 &&
		    strncmp(t, "file:", 5) != 0 && strncmp(t, "mx:", 3) != 0)
			config_error(errs, "%s:%d: downstream \"%s\": expected smtp:HOST:PORT, "
			             "lmtp:HOST:PORT, lmtp:/socket/path, mx:DOMAIN or file:DIR",
			             file, c->down[i].line, t);
		if (strncmp(t, "mx:", 3) == 0 && (c->n_down > 1 || strcmp(c->delivery_mode, "queue") != 0))
			config_error(errs, "%s:%d: downstream \"%s\": mx: works with delivery = \"queue\" "
			             "and as the only downstream", file, c->down[i].line, t);
		if (strncmp(t, "file:", 5) == 0 && c->n_down > 1)
			config_error(errs, "%s:%d: downstream \"%s\": file: cannot be combined with "
			             "other downstreams", file, c->down[i].line, t);
	}
	for (size_t i = 0; i < c->n_queue_retry; i++) {
		long long ms;
		if (config_parse_duration(c->queue_retry[i], &ms) < 0 || ms < 1000)
			config_error(errs, "%s:%d: 'queue.retry' entry \"%s\" is not a duration of at least 1s",
			             file, config_line_of(cf, "queue.retry"), c->queue_retry[i]);
	}
	if (c->queue_bounce != NULL && strncmp(c->queue_bounce, "smtp:", 5) != 0 &&
	    strncmp(c->queue_bounce, "lmtp:", 5) != 0)
		config_error(errs, "%s:%d: 'queue.bounce' must be smtp:HOST:PORT or lmtp:HOST:PORT", file,
		             config_line_of(cf, "queue.bounce"));
	if (c->tag_score > c->reject_score)
		config_error(errs, "%s:%d: 'content.tag_score' (%g) is above 'content.reject_score' (%g)",
		             file, config_line_of(cf, "content"), c->tag_score, c->reject_score);
	if (c->tempfail_score != 0 && c->tempfail_score > c->reject_score)
		config_error(errs, "%s:%d: 'content.tempfail_score' (%g) is above 'content.reject_score' "
		             "(%g)", file, config_line_of(cf, "content"), c->tempfail_score, c->reject_score);
	if (c->rcpt_delimiter != NULL && strpbrk(c->rcpt_delimiter, "@ \t\"<>") != NULL)
		config_error(errs, "%s:%d: 'recipients.delimiter' must not contain @, space, quotes "
		             "or angle brackets", file, config_line_of(cf, "recipients.delimiter"));
	/* the addresses serve will bind: said here with the line, so that
	 * check-config refuses what serve would (it passed them) */
	for (size_t i = 0; i < c->n_listen; i++) {
		struct netaddr na;
		if (netaddr_parse(c->listen[i], &na) < 0)
			config_error(errs, "%s:%d: 'listen' entry \"%s\": expected IP:PORT or [IPv6]:PORT",
			             file, config_line_of(cf, "listen"), c->listen[i]);
	}
	if (c->admin_listen != NULL) {
		struct netaddr na;
		if (netaddr_parse(c->admin_listen, &na) < 0)
			config_error(errs, "%s:%d: 'admin.listen' \"%s\": expected IP:PORT or [IPv6]:PORT",
			             file, config_line_of(cf, "admin.listen"), c->admin_listen);
	}
	/* text that goes out in replies and headers as it is written: a line
	 * break in it would add a reply line or a header of its own */
	const struct {
		const char *key, *val;
	} texts[] = {{"hostname", c->hostname}, {"banner", c->banner}, {"downstream_helo", c->down_helo},
	             {"content.subject_prefix", c->subject_prefix}};
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		const char *v = texts[i].val;
		for (const char *p = v; p != NULL && *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f) {
				config_error(errs, "%s:%d: '%s' must not contain control characters (a line "
				             "break would start a reply line or a header of its own)",
				             file, config_line_of(cf, texts[i].key), texts[i].key);
				break;
			}
	}
	if (c->hostname == NULL) {
		char h[256];
		if (gethostname(h, sizeof(h) - 1) != 0)
			mx_strlcpy(h, "localhost", sizeof(h));
		h[sizeof(h) - 1] = '\0';
		c->hostname = xstrdup(h);
	}
}

/* ---- public ------------------------------------------------------------ */

struct mx_config *
config_load(const char *path, struct config_errors *errs)
{
	config_t cf;
	config_init(&cf);
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash != NULL) {
		*slash = '\0';
		config_set_include_dir(&cf, dir);
	}
	size_t before = errs->n;
	if (config_read_file(&cf, path) != CONFIG_TRUE) {
		if (config_error_type(&cf) == CONFIG_ERR_FILE_IO)
			config_error(errs, "%s: cannot read file", path);
		else
			config_error(errs, "%s:%d: %s", config_error_file(&cf) ? config_error_file(&cf) : path,
			             config_error_line(&cf), config_error_text(&cf));
		config_destroy(&cf);
		free(dir);
		return NULL;
	}
	free(dir);

	struct mx_config *c = xcalloc(1, sizeof(*c));
	atomic_init(&c->refs, 1);
	c->path = xstrdup(path);

	config_check_unknown(config_root_setting(&cf), "", path, errs);
	for (size_t i = 0; i < config_schema_len; i++) {
		const struct cfg_key *k = &config_schema[i];
		const config_setting_t *s = config_lookup(&cf, k->path);
		if (s == NULL) {
			if (k->required)
				config_error(errs, "%s: required key '%s' is missing", path, k->path);
			else if (k->def != NULL)
				config_read_default(c, k, errs);
			continue;
		}
		if (k->type == CT_DOWNSTREAM)
			config_read_downstream(c, s, path, errs);
		else
			config_read_key(c, k, s, path, errs);
	}
	if (errs->n == before)
		config_check(c, &cf, path, errs);
	config_destroy(&cf);
	if (errs->n != before) {
		config_free(c);
		return NULL;
	}
	return c;
}

struct mx_config *
config_defaults(void)
{
	struct config_errors errs = {0};
	struct mx_config *c = xcalloc(1, sizeof(*c));
	atomic_init(&c->refs, 1);
	c->path = xstrdup("(built-in defaults)");
	for (size_t i = 0; i < config_schema_len; i++)
		if (config_schema[i].def != NULL)
			config_read_default(c, &config_schema[i], &errs);
	mx_assert(errs.n == 0);
	c->hostname = xstrdup("localhost");
	return c;
}

struct mx_config *
config_ref(struct mx_config *c)
{
	atomic_fetch_add(&c->refs, 1);
	return c;
}

void
config_unref(struct mx_config *c)
{
	if (c != NULL && atomic_fetch_sub(&c->refs, 1) == 1)
		config_free(c);
}

static void
config_free(struct mx_config *c)
{
	char *base = (char *)c;
	for (size_t i = 0; i < config_schema_len; i++) {
		const struct cfg_key *k = &config_schema[i];
		if (k->type == CT_STRING) {
			free(*(char **)(base + k->off));
		} else if (k->type == CT_STRINGS) {
			char **v = *(char ***)(base + k->off);
			size_t n = *(size_t *)(base + k->count_off);
			for (size_t j = 0; v != NULL && j < n; j++)
				free(v[j]);
			free(v);
		}
	}
	for (size_t i = 0; i < c->n_down; i++)
		free(c->down[i].target);
	free(c->down);
	free(c->path);
	free(c);
}
