/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	delivery - dispatch to the delivery mode of the configuration
 */
#include "delivery.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "smtpc.h"
#include "str.h"
#include "xalloc.h"

struct delivery {
	struct event_base *base;
	struct smtpc_pool *pool;
};

enum delivery_rc deliver_proxy_submit(struct delivery *d, const struct mx_config *cfg,
                                      struct upstream_set *ups, struct envelope *env,
                                      struct delivery_outcome *out, delivery_done_cb cb, void *arg);

struct delivery *
delivery_new(struct event_base *base)
{
	struct delivery *d = xcalloc(1, sizeof(*d));
	d->base = base;
	d->pool = smtpc_pool_new(base);
	return d;
}

void
delivery_free(struct delivery *d)
{
	if (d == NULL)
		return;
	smtpc_pool_free(d->pool);
	free(d);
}

struct smtpc_pool *
delivery_pool(struct delivery *d)
{
	return d->pool;
}

enum delivery_rc
delivery_submit(struct delivery *d, const struct mx_config *cfg, struct upstream_set *ups,
                struct envelope *env, struct delivery_outcome *out, delivery_done_cb cb, void *arg)
{
	if (ups->n == 1 && ups->t[0].proto == UPSTREAM_FILE) {
		char path[4200];
		memset(out, 0, sizeof(*out));
		if (deliver_file_write(ups->t[0].dir, env, path, sizeof(path)) < 0) {
			int e = errno;
			log_err("%s cannot write message to %s: %s", env->id, ups->t[0].dir, strerror(e));
			out->code = e == ENOSPC || e == EDQUOT ? 452 : 451;
			mx_strlcpy(out->enh, e == ENOSPC || e == EDQUOT ? "4.3.1" : "4.3.0", sizeof(out->enh));
			mx_strlcpy(out->text, "Local error writing the message, try again later",
			           sizeof(out->text));
			snprintf(out->log, sizeof(out->log), "downstream=file error=\"%s\"", strerror(e));
			return DELIVERY_DONE;
		}
		out->code = 250;
		mx_strlcpy(out->enh, "2.0.0", sizeof(out->enh));
		snprintf(out->text, sizeof(out->text), "Ok: %s delivered", env->id);
		snprintf(out->log, sizeof(out->log), "downstream=file path=%s", path);
		return DELIVERY_DONE;
	}
	return deliver_proxy_submit(d, cfg, ups, env, out, cb, arg);
}
