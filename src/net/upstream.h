/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	upstream - downstream targets: parsing, MX-style ordering, health
 * DESCRIPTION
 *	A target is smtp:HOST:PORT, lmtp:HOST:PORT, lmtp:/unix/socket,
 *	file:DIR or mx:DOMAIN[:PORT] (resolved at each delivery, queue only).  Host names are resolved when the configuration is loaded
 *	(and again on SIGHUP); a name with several addresses gives several
 *	targets of the same priority.  Ordering follows a sending MTA's MX
 *	rules: lowest priority first, random among equals; a target that
 *	failed is skipped for a while (retry time) unless all have failed.
 *	Health marks are atomics: every worker thread shares them.
 */
#ifndef MX_UPSTREAM_H
#define MX_UPSTREAM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"

enum upstream_proto { UPSTREAM_SMTP, UPSTREAM_LMTP, UPSTREAM_FILE, UPSTREAM_MX };

struct upstream_target {
	enum upstream_proto proto;
	char name[300]; /* as configured, plus the address when resolved */
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char dir[4096]; /* UPSTREAM_FILE: the folder; UPSTREAM_MX: the domain */
	int port;       /* UPSTREAM_MX: where the mail hosts listen */
	int priority;
	_Atomic uint64_t dead_until; /* monotonic ms; 0 = healthy */
};

struct upstream_set {
	struct upstream_target *t;
	size_t n;
};

/* Builds the set from the config; resolves names. NULL with errs on error. */
struct upstream_set *upstream_set_build(const struct mx_config *cfg, struct config_errors *errs);
void upstream_set_free(struct upstream_set *s);
/*
 * Writes target indexes into order[] in the order to try them: priority,
 * random among equal priorities, targets marked dead moved to the end.
 * Returns the count.
 */
size_t upstream_order(struct upstream_set *s, size_t *order, size_t max, uint64_t now_ms);
void upstream_mark_dead(struct upstream_target *t, uint64_t until_ms);
void upstream_mark_alive(struct upstream_target *t);

#endif
