/* SPDX-License-Identifier: MIT */
#include "dsn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "id.h"
#include "received.h"
#include "xalloc.h"

char *
dsn_build(const struct dsn_info *d, time_t now)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (f == NULL)
		return NULL;
	char date[64], arrival[64], idstr[MX_ID_STRLEN], boundary[64];
	received_date(now, date, sizeof(date));
	received_date(d->arrival, arrival, sizeof(arrival));
	mx_id_str(mx_id_next(), idstr);
	snprintf(boundary, sizeof(boundary), "=_mxguard_dsn_%s", idstr);
	fprintf(f,
	        "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n"
	        "To: <%s>\r\n"
	        "Subject: Undelivered Mail Returned to Sender\r\n"
	        "Date: %s\r\n"
	        "Message-ID: <%s.dsn@%s>\r\n"
	        "Auto-Submitted: auto-replied\r\n"
	        "MIME-Version: 1.0\r\n"
	        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	        "\tboundary=\"%s\"\r\n"
	        "\r\n"
	        "This is a MIME-encapsulated message.\r\n"
	        "\r\n"
	        "--%s\r\n"
	        "Content-Type: text/plain; charset=us-ascii\r\n"
	        "\r\n"
	        "This is the mail system at host %s.\r\n"
	        "\r\n"
	        "Your message could not be delivered to one or more recipients:\r\n"
	        "%s\r\n"
	        "\r\n",
	        d->hostname, d->sender, date, idstr, d->hostname, boundary, boundary, d->hostname,
	        d->reason);
	for (size_t i = 0; i < d->n_rcpts; i++)
		fprintf(f, "<%s>: %s\r\n", d->rcpts[i].addr,
		        d->rcpts[i].diagnostic ? d->rcpts[i].diagnostic : d->rcpts[i].status);
	fprintf(f,
	        "\r\n--%s\r\n"
	        "Content-Type: message/delivery-status\r\n"
	        "\r\n"
	        "Reporting-MTA: dns; %s\r\n"
	        "X-Mxguard-Queue-ID: %s\r\n"
	        "Arrival-Date: %s\r\n",
	        boundary, d->hostname, d->orig_id, arrival);
	for (size_t i = 0; i < d->n_rcpts; i++) {
		fprintf(f, "\r\nFinal-Recipient: rfc822; %s\r\nAction: failed\r\nStatus: %s\r\n",
		        d->rcpts[i].addr, d->rcpts[i].status);
		if (d->rcpts[i].diagnostic)
			fprintf(f, "Diagnostic-Code: smtp; %s\r\n", d->rcpts[i].diagnostic);
	}
	fprintf(f, "\r\n--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n", boundary);
	/* a text part: a NUL byte of the original goes as a space (the DSN
	 * is handled as a string from here on) */
	for (size_t i = 0; d->orig_headers != NULL && i < d->orig_headers_len; i++)
		fputc(d->orig_headers[i] != '\0' ? d->orig_headers[i] : ' ', f);
	fprintf(f, "\r\n--%s--\r\n", boundary);
	fclose(f);
	return out;
}
