/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	rcpt - "does this mailbox exist?" behind one interface
 * DESCRIPTION
 *	A recipient map is built from the configuration and shared read-only
 *	by every worker.  A lookup tries, in order, the whole address, the
 *	address without its +extension (delimiter configurable) and the
 *	catch-all @domain, stopping at the first FOUND or TEMPFAIL.  Keys are
 *	lowercased: domains are case-insensitive by RFC, local parts by
 *	practice (as Postfix's tables).
 *	Answers are tri-state: MX_TEMPFAIL (the directory could not answer)
 *	is never MX_NOTFOUND.
 *	Sources: the file (in memory, synchronous), and directories that
 *	answer later on the worker's event loop: LDAP, PostgreSQL, MySQL /
 *	MariaDB, an SMTP callout to the mailbox server.  For directories the
 *	map keeps a cache of answers in the store ("rc:" keys; positive and
 *	negative TTLs; TEMPFAIL is never cached) and, for LDAP, an optional
 *	local replica of every valid address ("rr:" keys) that answers without
 *	a network round trip and while the directory is down.
 *	Connections belong to the worker thread that uses them (one set per
 *	event base, shared by the maps of successive reloads when the
 *	directory settings did not change); rcpt_worker_end() closes them.
 */
#ifndef MX_RCPT_H
#define MX_RCPT_H

#include <stdatomic.h>
#include <stdbool.h>

#include <event2/event.h>

#include "config.h"
#include "smtp_parse.h"
#include "status.h"
#include "store.h"

struct rcpt_map;

typedef void (*rcpt_done_cb)(enum mx_lookup result, void *arg);

/* A backend answers one key ("user@dom", "@dom"); sync or async. */
struct rcpt_backend_ops {
	const char *name;
	bool async; /* false: lookup always answers at once (cb unused) */
	/* true: only the whole address is asked (the callout: the mailbox
	 * server applies its own extension and catch-all rules) */
	bool whole_address;
	/* Returns FOUND/NOTFOUND/TEMPFAIL now, or MX_PENDING and calls cb later
	 * from the event loop of base (never from inside this call). */
	enum mx_lookup (*lookup)(void *be, struct event_base *base, const char *key,
	                         rcpt_done_cb cb, void *arg);
	void (*free)(void *be);
};

/*
 * Builds the map; NULL with errs ("file:line: ...") on error.  store
 * (borrowed, may be NULL: no cache, no replica) must outlive the map.
 * Builds only: no connection is opened here (check-config uses it).
 */
struct rcpt_map *rcpt_map_build(const struct mx_config *cfg, struct store *store,
                                struct config_errors *errs);
void rcpt_map_free(struct rcpt_map *m);
/* Human summary for the log: "file etc/recipients (12 entries)". */
const char *rcpt_map_describe(const struct rcpt_map *m);

/*
 * Looks up a parsed recipient.  Returns the answer, or MX_PENDING and
 * calls cb(result, arg) later from the event loop of base (the calling
 * thread's).  Never calls cb from inside this call.
 */
enum mx_lookup rcpt_lookup(struct rcpt_map *m, struct event_base *base, const struct smtp_addr *a,
                           rcpt_done_cb cb, void *arg);

/*
 * The worker running base has left its loop: close its directory
 * connections, write cached answers still queued.  Lookups still pending
 * are dropped without their callback.  Call before event_base_free().
 */
void rcpt_worker_end(struct event_base *base);

/*
 * Replica (recipients.ldap.replica): when a full sync is due, runs it
 * (blocking: meant for a background thread) and swaps the new address
 * list into the store in one transaction.  Returns milliseconds until the
 * next sync is due, or -1 when m keeps no replica.  *stop is checked
 * between result pages.
 */
long long rcpt_map_replica_sync(struct rcpt_map *m, const atomic_bool *stop);

/* Backends (rcpt_file.c, rcpt_ldap.c, ...): open fills describe. */
void *rcpt_file_open(const char *path, const struct mx_config *cfg, struct config_errors *errs,
                     char *describe, size_t dlen);
extern const struct rcpt_backend_ops rcpt_file_ops;
void *rcpt_ldap_open(const struct mx_config *cfg, struct config_errors *errs, char *describe,
                     size_t dlen);
extern const struct rcpt_backend_ops rcpt_ldap_ops;
void *rcpt_pgsql_open(const struct mx_config *cfg, struct config_errors *errs, char *describe,
                      size_t dlen);
extern const struct rcpt_backend_ops rcpt_pgsql_ops;
void *rcpt_mysql_open(const struct mx_config *cfg, struct config_errors *errs, char *describe,
                      size_t dlen);
extern const struct rcpt_backend_ops rcpt_mysql_ops;
void *rcpt_callout_open(const struct mx_config *cfg, struct config_errors *errs, char *describe,
                        size_t dlen);
extern const struct rcpt_backend_ops rcpt_callout_ops;

#endif
