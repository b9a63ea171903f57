/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	delivery - "take this transaction downstream" behind one interface
 * DESCRIPTION
 *	delivery_submit() hands an envelope to the configured downstream and
 *	reports one outcome: the reply the SMTP client must get.  The proxy
 *	mode (before-queue) answers 250 only after a downstream said 250;
 *	an unreachable or deferring downstream gives 451 4.4.x; a refusal is
 *	passed on as 5xx.  Targets are tried in MX order (delivery.c).  The
 *	durable queue will be a second implementation of this interface.
 *	One struct delivery per worker thread (it owns the connection pool).
 */
#ifndef MX_DELIVERY_H
#define MX_DELIVERY_H

#include <event2/event.h>

#include "config.h"
#include "envelope.h"
#include "upstream.h"

struct delivery;

struct delivery_outcome {
	int code;
	char enh[16];
	char text[400];
	char log[500]; /* key=value pairs for the message's log line */
};

typedef void (*delivery_done_cb)(const struct delivery_outcome *o, void *arg);

enum delivery_rc { DELIVERY_DONE, DELIVERY_PENDING };

struct delivery *delivery_new(struct event_base *base);
void delivery_free(struct delivery *d);
/* The worker's client pool for downstream SMTP/LMTP: the worker cancels
 * what is in flight at a forced stop. */
struct smtpc_pool;
struct smtpc_pool *delivery_pool(struct delivery *d);
/*
 * Delivers env (which must stay valid until the outcome).  Returns
 * DELIVERY_DONE with *out filled, or DELIVERY_PENDING and calls cb later
 * from the event loop.  cfg and ups are borrowed until then.
 */
enum delivery_rc delivery_submit(struct delivery *d, const struct mx_config *cfg,
                                 struct upstream_set *ups, struct envelope *env,
                                 struct delivery_outcome *out, delivery_done_cb cb, void *arg);

/* deliver_file.c: writes env atomically into dir. 0 or -1 with errno. */
int deliver_file_write(const char *dir, const struct envelope *env, char *path_out, size_t len);
/* Creates dir if missing and checks it is writable. 0 or -1 with err. */
int deliver_file_prepare(const char *dir, char *err, size_t errlen);

#endif
