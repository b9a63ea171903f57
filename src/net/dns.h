/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	dns - asynchronous lookups on an event loop (c-ares)
 * DESCRIPTION
 *	dns_mx_targets() turns a domain into delivery targets the way a
 *	sending MTA does (RFC 5321 section 5): its MX records by preference,
 *	each host's addresses; no MX means the domain itself; a null MX
 *	("." , RFC 7505) means the domain takes no mail.  The resolver can be
 *	pointed at any server (tests run their own).  One struct dns per event
 *	loop; answers come back on that loop.
 * LIMITS
 *	16 MX hosts, 8 addresses each.
 */
#ifndef MX_DNS_H
#define MX_DNS_H

#include <stdbool.h>

#include <event2/event.h>

#include "upstream.h"

struct dns;

enum dns_status {
	DNS_OK,
	DNS_NOTFOUND, /* the domain does not exist, or takes no mail (null MX) */
	DNS_TEMPFAIL, /* no answer now: try again later */
};

/* resolver: "IP:PORT" (or "IP", port 53), or NULL for /etc/resolv.conf. */
struct dns *dns_new(struct event_base *base, const char *resolver, long long timeout_ms,
                    char *err, size_t errlen);
void dns_free(struct dns *d);

/* status and, on DNS_OK, a new set (caller frees) of targets. */
typedef void (*dns_targets_cb)(enum dns_status status, struct upstream_set *set, const char *why,
                               void *arg);
/* Resolves domain's mail hosts into SMTP targets on port.  cb runs later
 * (never inside this call). */
void dns_mx_targets(struct dns *d, const char *domain, int port, dns_targets_cb cb, void *arg);

#endif
