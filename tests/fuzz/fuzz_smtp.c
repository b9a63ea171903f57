/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: SMTP command lines as smtpd_cmd.c parses them (verb,
 * path with the MAIL and RCPT flags, ESMTP parameters, HELO argument).
 * Input: command lines separated by LF.  Beyond "no crash", it checks the
 * properties that keep the gateway from being an open relay: an accepted
 * forward-path has no routing characters in its local part, no control
 * characters, and fits RFC 5321's limits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_addr(const struct smtp_addr *a, unsigned flags)
{
	size_t ll = strlen(a->local), dl = strlen(a->domain), al = strlen(a->addr);
	if (ll > SMTP_LOCAL_MAX || dl > SMTP_DOMAIN_MAX || al > SMTP_PATH_MAX)
		abort();
	for (const char *p = a->addr; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			abort();
	if (a->null) {
		if (!(flags & SMTP_PATH_NULL_OK) || al != 0)
			abort();
		return;
	}
	if (a->postmaster)
		return;
	if (dl == 0 || ll == 0)
		abort();
	if (!(flags & SMTP_PATH_UTF8_OK))
		for (const char *p = a->addr; *p; p++)
			if ((unsigned char)*p >= 0x80)
				abort();
	if (flags & SMTP_PATH_ROUTING) {
		/* the local part the downstream will see may not route
		 * elsewhere: no %, ! or @ in it, quoted or not */
		if (strpbrk(a->local, "%!@") != NULL)
			abort();
		/* and the domain is the one the address ends with */
		if (strchr(a->domain, '@') != NULL)
			abort();
	}
}

static void
one_line(const char *line, size_t len)
{
	struct smtp_cmd c;
	smtp_parse_command(line, len, &c);
	if (c.arg_len > len || (c.arg_len > 0 && (c.arg < line || c.arg + c.arg_len > line + len)))
		abort();
	char bad[64] = "";
	if (c.verb == SMTP_VERB_HELO || c.verb == SMTP_VERB_EHLO) {
		(void)smtp_helo_valid(c.arg, c.arg_len);
		return;
	}
	unsigned flags;
	size_t skip;
	if (c.verb == SMTP_VERB_MAIL) {
		flags = SMTP_PATH_NULL_OK | SMTP_PATH_UTF8_OK;
		skip = 5; /* FROM: */
	} else if (c.verb == SMTP_VERB_RCPT) {
		flags = SMTP_PATH_ROUTING | SMTP_PATH_POSTMASTER | (len & 1 ? SMTP_PATH_UTF8_OK : 0);
		skip = 3; /* TO: */
	} else {
		return;
	}
	if (c.arg_len < skip)
		return;
	struct smtp_addr a;
	const char *rest = NULL;
	size_t rest_len = 0;
	enum smtp_addr_err e = smtp_parse_path(c.arg + skip, c.arg_len - skip, flags, &a, &rest, &rest_len);
	(void)smtp_addr_err_str(e);
	if (e != SMTP_ADDR_OK)
		return;
	check_addr(&a, flags);
	if (rest_len > c.arg_len || rest < c.arg || rest + rest_len > c.arg + c.arg_len)
		abort();
	if (c.verb == SMTP_VERB_MAIL) {
		struct smtp_mail_params pm;
		(void)smtp_parse_mail_params(rest, rest_len, &pm, bad, sizeof(bad));
	} else {
		(void)smtp_parse_rcpt_params(rest, rest_len, bad, sizeof(bad));
	}
	if (strlen(bad) >= sizeof(bad))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* each line in a buffer of its own, so ASan sees any read past it */
	const char *p = (const char *)data, *end = p + size;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		char *line = malloc(n ? n : 1);
		memcpy(line, p, n);
		one_line(line, n);
		free(line);
		p = nl ? nl + 1 : end;
	}
	return 0;
}
