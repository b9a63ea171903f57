/* SPDX-License-Identifier: MIT */
#include "received.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

void
received_date(time_t t, char *buf, size_t len)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const mons[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(buf, len, "%s, %d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
	         mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Copies the HELO name keeping only characters that cannot break the header
 * or the comment syntax. */
static void
received_clean(const char *in, char *out, size_t len)
{
	size_t o = 0;
	for (; *in && o + 1 < len; in++) {
		unsigned char c = (unsigned char)*in;
		out[o++] = (c > 32 && c < 127 && c != '(' && c != ')' && c != '\\' && c != ';') ? (char)c
		                                                                              : '_';
	}
	out[o] = '\0';
}

char *
received_build(const struct received_info *ri)
{
	char helo[300], date[64], tls[200] = "";
	received_clean(ri->helo && *ri->helo ? ri->helo : "unknown", helo, sizeof(helo));
	received_date(ri->when, date, sizeof(date));
	const char *proto = ri->utf8 ? (ri->tls ? "UTF8SMTPS" : "UTF8SMTP")
	                             : ri->esmtp ? (ri->tls ? "ESMTPS" : "ESMTP") : "SMTP";
	if (ri->tls && ri->tls_version != NULL)
		snprintf(tls, sizeof(tls), "\r\n\t(using %s with cipher %s)", ri->tls_version,
		         ri->tls_cipher ? ri->tls_cipher : "unknown");
	char forpart[300] = "";
	if (ri->for_rcpt != NULL)
		snprintf(forpart, sizeof(forpart), "\r\n\tfor <%s>", ri->for_rcpt);
	return xasprintf("Received: from %s ([%s])\r\n\tby %s (mxguard) with %s id %s%s%s;\r\n\t%s\r\n",
	                 helo, ri->client_ip, ri->by, proto, ri->id, tls, forpart, date);
}
