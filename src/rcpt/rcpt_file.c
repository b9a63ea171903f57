/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	rcpt_file - recipients from a flat file
 * DESCRIPTION
 *	One address a line; "@domain" accepts every local part of the domain
 *	(catch-all); '#' starts a comment; blank lines are ignored.  Entries
 *	are lowercased.  A malformed line makes the whole file invalid (the
 *	reload is refused and the old map stays), reported as file:line.
 * LIMITS
 *	Lines of up to 1024 bytes (RCPT_FILE_LINE_MAX), without NUL bytes;
 *	addresses obey the RFC 5321 lengths.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "log.h"
#include "rcpt.h"
#include "str.h"
#include "strmap.h"
#include "xalloc.h"

#define RCPT_FILE_LINE_MAX 1024

static enum mx_lookup
rcpt_file_lookup(void *be, struct event_base *base, const char *key, rcpt_done_cb cb, void *arg)
{
	return strmap_get(be, key, strlen(key), NULL) ? MX_FOUND : MX_NOTFOUND;
}

static void
rcpt_file_free(void *be)
{
	strmap_free(be);
}

const struct rcpt_backend_ops rcpt_file_ops = {
	.name = "file",
	.async = false,
	.lookup = rcpt_file_lookup,
	.free = rcpt_file_free,
};

/* entry parsed as RCPT TO's address would be (a catch-all "@domain" as
 * "x@domain"); false when it is none. */
static bool
rcpt_file_parse(const char *entry, struct smtp_addr *a)
{
	char path[SMTP_PATH_MAX + 4];
	const char *rest;
	size_t rl;
	snprintf(path, sizeof(path), "<%s%s>", entry[0] == '@' ? "x" : "", entry);
	return smtp_parse_path(path, strlen(path), SMTP_PATH_UTF8_OK, a, &rest, &rl) == SMTP_ADDR_OK && rl == 0;
}

/* Checks one entry (in a buffer of cap bytes); returns NULL if fine, else
 * what is wrong.  An address is rewritten in place to the canonical form
 * RCPT TO addresses are looked up by ("john"@x as john@x, "x\.y"@x as
 * x.y@x, a U-label domain in its A-label form: j@exämple.test as
 * j@xn--exmple-cua.test), so that the entry matches however the file
 * wrote it. */
static const char *
rcpt_file_check(char *entry, size_t cap, const struct mx_config *cfg, bool *foreign)
{
	char *at = strrchr(entry, '@');
	*foreign = false;
	if (at == NULL)
		return "not an address (expected user@domain or @domain)";
	const char *domain = at + 1;
	if (*domain == '\0')
		return "no domain after '@'";
	struct smtp_addr a;
	if (at != entry) {
		if (!rcpt_file_parse(entry, &a))
			return "malformed address";
		if (mx_strlcpy(entry, a.addr, cap) < 0)
			return "address too long"; /* an A-label longer than the line */
		mx_str_lower(entry);
		at = strrchr(entry, '@');
		domain = at + 1;
	} else if (!mx_str_ascii(domain) && rcpt_file_parse(entry, &a)) {
		/* a catch-all for a U-label domain: its A-label (one the parser
		 * refuses stays as written, and never matches) */
		if (mx_strlcpy(entry + 1, a.domain, cap - 1) < 0)
			return "domain too long";
	}
	for (const char *p = domain; *p; p++)
		if (*p == ' ' || *p == '@' || (unsigned char)*p < 0x20)
			return "malformed domain";
	bool ours = false;
	for (size_t i = 0; i < cfg->n_domains && !ours; i++) {
		size_t dl = strlen(domain), hl = strlen(cfg->domains[i]);
		ours = strcmp(domain, cfg->domains[i]) == 0 ||
		       (cfg->subdomains && dl > hl && domain[dl - hl - 1] == '.' &&
		        strcmp(domain + dl - hl, cfg->domains[i]) == 0);
	}
	*foreign = !ours;
	return NULL;
}

void *
rcpt_file_open(const char *path, const struct mx_config *cfg, struct config_errors *errs,
               char *describe, size_t dlen)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		config_error(errs, "%s: recipients.file \"%s\": cannot open: %m", cfg->path, path);
		return NULL;
	}
	struct strmap *map = strmap_new();
	char line[RCPT_FILE_LINE_MAX + 1];
	int lineno = 0, foreign = 0;
	size_t before = errs->n;
	bool too_long, nul;
	while (fsutil_read_line(f, line, RCPT_FILE_LINE_MAX, &too_long, &nul)) {
		lineno++;
		if (nul || too_long) {
			config_error(errs, "%s:%d: %s", path, lineno,
			             nul ? "NUL byte" : "line too long (1024 bytes at most)");
			continue;
		}
		char *hash = strchr(line, '#');
		if (hash != NULL)
			*hash = '\0';
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		char *e = p + strlen(p);
		while (e > p && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
		if (*p == '\0')
			continue;
		if (strpbrk(p, " \t") != NULL) {
			config_error(errs, "%s:%d: one address per line", path, lineno);
			continue;
		}
		mx_str_lower(p);
		bool is_foreign;
		const char *why = rcpt_file_check(p, sizeof(line) - (size_t)(p - line), cfg, &is_foreign);
		if (why != NULL) {
			char esc[160];
			log_escape(esc, sizeof(esc), p, strlen(p));
			config_error(errs, "%s:%d: \"%s\": %s", path, lineno, esc, why);
			continue;
		}
		if (is_foreign && foreign++ < 5)
			log_warn("%s:%d: \"%s\" is not in a hosted domain; it can never match", path,
			         lineno, p);
		strmap_put(map, p, strlen(p), NULL);
	}
	bool ioerr = ferror(f) != 0;
	fclose(f);
	if (ioerr)
		config_error(errs, "%s: read error", path);
	if (errs->n != before) {
		strmap_free(map);
		return NULL;
	}
	snprintf(describe, dlen, "file %s (%zu entries)", path, strmap_count(map));
	return map;
}
