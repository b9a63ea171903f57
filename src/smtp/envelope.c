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

size_t
envelope_size(const struct envelope *e)
{
	return (e->received ? strlen(e->received) : 0) + (e->body ? blob_len(e->body) : 0);
}
