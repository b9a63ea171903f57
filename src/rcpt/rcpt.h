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
 */
#ifndef MX_RCPT_H
#define MX_RCPT_H

#include <stdbool.h>

#include <event2/event.h>

#include "config.h"
#include "smtp_parse.h"
#include "status.h"

struct rcpt_map;

typedef void (*rcpt_done_cb)(enum mx_lookup result, void *arg);

/* A backend answers one key ("user@dom", "@dom"); sync or async. */
struct rcpt_backend_ops {
	const char *name;
	bool async; /* false: lookup always answers at once (cb unused) */
	/* Returns FOUND/NOTFOUND/TEMPFAIL now, or MX_PENDING and calls cb later
	 * (never from inside this call). */
	enum mx_lookup (*lookup)(void *be, struct event_base *base, const char *key,
	                         rcpt_done_cb cb, void *arg);
	void (*free)(void *be);
};

/* Builds the map; NULL with errs ("file:line: ...") on error. */
struct rcpt_map *rcpt_map_build(const struct mx_config *cfg, struct config_errors *errs);
void rcpt_map_free(struct rcpt_map *m);
/* Human summary for the log: "file etc/recipients (12 entries)". */
const char *rcpt_map_describe(const struct rcpt_map *m);

/*
 * Looks up a parsed recipient.  Returns the answer, or MX_PENDING and
 * calls cb(result, arg) later from the event loop of base.
 */
enum mx_lookup rcpt_lookup(struct rcpt_map *m, struct event_base *base, const struct smtp_addr *a,
                           rcpt_done_cb cb, void *arg);

/* Backends (rcpt_file.c, ...). */
void *rcpt_file_open(const char *path, const struct mx_config *cfg, struct config_errors *errs,
                     char *describe, size_t dlen);
extern const struct rcpt_backend_ops rcpt_file_ops;

#endif
