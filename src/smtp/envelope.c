/* SPDX-License-Identifier: MIT */
#include "envelope.h"

#include <stdlib.h>
#include <string.h>

#include "blob.h"
#include "str.h"
#include "xalloc.h"

void
envelope_init(struct envelope *e)
{
	memset(e, 0, sizeof(*e));
}

void
envelope_clear(struct envelope *e)
{
	free(e->rcpt);
	free(e->received);
	free(e->headers);
	blob_free(e->body);
	envelope_init(e);
}

void
envelope_add_rcpt(struct envelope *e, const char *addr)
{
	e->rcpt = xgrow(e->rcpt, &e->cap_rcpt, e->n_rcpt + 1, sizeof(*e->rcpt));
	struct envelope_rcpt *r = &e->rcpt[e->n_rcpt++];
	memset(r, 0, sizeof(*r));
	mx_strlcpy(r->addr, addr, sizeof(r->addr));
}

bool
envelope_has_rcpt(const struct envelope *e, const char *addr)
{
	for (size_t i = 0; i < e->n_rcpt; i++)
		if (strcmp(e->rcpt[i].addr, addr) == 0)
			return true;
	return false;
}

void
envelope_set_headers(struct envelope *e, char *headers, size_t len, size_t skip)
{
	free(e->headers);
	e->headers = headers;
	e->headers_len = headers != NULL ? len : 0;
	e->body_skip = skip;
}

size_t
envelope_size(const struct envelope *e)
{
	size_t body = e->body ? blob_len(e->body) : 0;
	return (e->received ? strlen(e->received) : 0) + e->headers_len +
	       (body > e->body_skip ? body - e->body_skip : 0);
}
