/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	queue - store-and-forward delivery that never loses an accepted message
 * DESCRIPTION
 *	queue_submit() writes a message durably to the spool (spool.h) on a
 *	writer thread and then calls back on the submitter's event loop; only
 *	then may the client hear 250.  A manager thread with its own event
 *	loop delivers queued messages: to the downstream targets (MX rules,
 *	a concurrency limit per target, connection reuse), retrying on a
 *	back-off schedule up to a lifetime, and sends a delivery status
 *	notification to the sender for recipients that fail for good (never
 *	to the null sender, never for spam).  A control socket (DIR/control)
 *	serves `mxguard queue ...`.
 *	The manager borrows the current routes (configuration and resolved
 *	downstreams) from the daemon for each attempt, so a reload applies
 *	to queued mail too.
 */
#ifndef MX_QUEUE_H
#define MX_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "config.h"
#include "envelope.h"
#include "upstream.h"

struct queue;

/* What one delivery attempt uses, lent by the daemon. */
struct queue_routes {
	const struct mx_config *cfg;
	struct upstream_set *downstream;
	struct upstream_set *bounce; /* where DSNs go; NULL: MX of the sender's domain */
	void *token;                 /* handed back to release */
};

struct queue_opts {
	const char *dir;
	unsigned writers; /* spool writer threads */
	const char *hostname;
	const char *resolver; /* "IP:PORT" for MX lookups, or NULL: the system's */
	long long dns_timeout_ms;
	/* borrow and return the current routes (called on the manager thread) */
	int (*acquire)(void *arg, struct queue_routes *out);
	void (*release)(void *arg, void *token);
	void *arg;
};

/* Reads the spool back and starts the threads.  NULL with err. */
struct queue *queue_start(const struct queue_opts *o, char *err, size_t errlen);
/* Stops delivering and the threads (queued mail stays queued). */
void queue_stop(struct queue *q);

typedef void (*queue_done_cb)(int err, const char *id, void *arg);

/*
 * Writes env to the spool, then calls cb(0, id) (or cb(errno)) on base's
 * loop.  env must stay valid until then.  nodsn: never bounce it.
 */
void queue_submit(struct queue *q, struct event_base *base, struct envelope *env, bool nodsn,
                  queue_done_cb cb, void *arg);
/* base's loop has stopped for good: answers its jobs now, on the caller's
 * thread (ECANCELED for those not started; a write under way is waited
 * for), so none calls back into base once it is freed. */
void queue_worker_end(struct queue *q, struct event_base *base);

/* Is there room for a message of about size bytes (0: unknown)?  Checks
 * the free space of the spool's filesystem and the spool size limit.
 * Thread-safe.  On false, why says what is short. */
bool queue_has_room(struct queue *q, const struct mx_config *cfg, size_t size, char *why,
                    size_t len);

/* Offline and online control: "list", "show ID", "flush", "delete ID",
 * "hold ID", "release ID", "stats".  With the daemon running the CLI goes
 * through DIR/control; queue_offline_ctl() works on the files directly. */
int queue_offline_ctl(const char *dir, const char *cmd, const char *arg, FILE *out);
/* Sends one command to a running daemon; -1 when none listens. */
int queue_client_ctl(const char *dir, const char *cmd, const char *arg, FILE *out);

#endif
