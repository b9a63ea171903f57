/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	runtime - everything built from one configuration file
 * DESCRIPTION
 *	A runtime is the configuration plus what is derived from it: the
 *	hosted domains, the recipient map, the downstream targets, the TLS
 *	context.  It is built completely before it is used (so a bad file,
 *	certificate or recipients list is refused whole), then published.
 *	Sessions hold a reference to the runtime they started with; a reload
 *	publishes a new one and the old one goes when its last session ends.
 */
#ifndef MX_RUNTIME_H
#define MX_RUNTIME_H

#include <stdatomic.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "config.h"
#include "domains.h"
#include "harvest.h"
#include "rcpt.h"
#include "scan.h"
#include "store.h"
#include "upstream.h"

struct runtime {
	_Atomic int refs;
	uint64_t generation;
	struct mx_config *cfg;
	struct domain_set *domains;
	struct rcpt_map *rcpt;
	struct upstream_set *ups;
	struct upstream_set *bounce; /* queue.bounce, or NULL: the sender's MX */
	SSL_CTX *tls; /* NULL: no STARTTLS */
	struct scanner *scanner; /* content filter: rules + the shared classifier */
	struct store *store;     /* the daemon's (borrowed; NULL in check-config) */
	struct harvest *harvest; /* dictionary-attack defence; NULL: off */
};

/* Loads path and builds everything; NULL with every error in errs.  cls
 * (the daemon's classifier) and store (recipient cache and replica,
 * harvest counts) outlive runtimes; either may be NULL. */
struct runtime *runtime_build(const char *path, struct config_errors *errs, struct classifier *cls,
                              struct store *store);
struct runtime *runtime_ref(struct runtime *rt);
void runtime_unref(struct runtime *rt);

/* The published runtime, shared by all threads. */
void runtime_publish(struct runtime *rt); /* takes the caller's reference */
struct runtime *runtime_current(void);    /* returns a new reference */
/* One line describing rt for the log. */
void runtime_describe(const struct runtime *rt, char *buf, size_t len);

#endif
