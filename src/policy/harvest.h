/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	harvest - dictionary-attack defence: unknown recipients per client
 * DESCRIPTION
 *	Every unknown recipient a client asks for is counted under its client
 *	key (the IPv4 address, or the IPv6 /64: netaddr_client_key()) in a
 *	sliding window (harvest.window) that spans sessions and workers.
 *	Past harvest.tarpit_after in the window, the client's replies are
 *	delayed (harvest.tarpit_delay); past harvest.block_after it is
 *	blocked for harvest.block_time: refused at connect (421 or 554, by
 *	harvest.block_code), and the session that crossed the line is closed.
 *	Networks in harvest.allow are never counted.
 *	Counts and blocks live in the store (so gateways sharing one store
 *	share them): "hv:KEY" holds the window, "hb:KEY" a block ("SINCE UNTIL
 *	COUNT", expiring with the block).  Counts are written behind, every
 *	HARVEST_FLUSH_MS in one transaction (a commit is an fsync); until then
 *	they are kept in a table shared by the workers of the process, so the
 *	count is exact within the process and other processes see it within
 *	HARVEST_FLUSH_MS.  A block is written at once, with a log line and a
 *	counter.
 *	The window is HARVEST_SLOTS buckets of window/HARVEST_SLOTS seconds:
 *	a count is forgotten between window - window/16 and window after it
 *	was made.
 */
#ifndef MX_HARVEST_H
#define MX_HARVEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>

#include "config.h"
#include "netaddr.h"
#include "store.h"

#define HARVEST_SLOTS 16
#define HARVEST_FLUSH_MS 100

/* ---- the sliding window (pure; unit-tested) ---------------------------------- */

struct harvest_window {
	uint32_t width; /* seconds per slot */
	uint32_t slot[HARVEST_SLOTS];  /* time / width of the slot's counts */
	uint32_t count[HARVEST_SLOTS];
};

#define HARVEST_WINDOW_BYTES (4 + 8 * HARVEST_SLOTS)

void harvest_window_init(struct harvest_window *w, uint32_t window_s);
/* Counts n at time now. */
void harvest_window_add(struct harvest_window *w, time_t now, uint32_t n);
/* The counts of the last window_s seconds, as of now. */
uint32_t harvest_window_count(const struct harvest_window *w, time_t now);
/* Store encoding (little-endian).  decode: false when the bytes are not a
 * window of this width (another configuration): start afresh. */
void harvest_window_encode(const struct harvest_window *w, unsigned char out[HARVEST_WINDOW_BYTES]);
bool harvest_window_decode(struct harvest_window *w, const void *in, size_t len, uint32_t window_s);

/* ---- the policy ------------------------------------------------------------ */

struct harvest;        /* settings of one configuration; immutable */
struct harvest_worker; /* one worker's counts not yet written */

enum harvest_state { HARVEST_OK, HARVEST_TARPIT, HARVEST_BLOCKED };

/* What a session keeps about its client. */
struct harvest_client {
	char key[NETADDR_STRLEN];
	char ip[NETADDR_STRLEN];
	bool allowed;   /* in harvest.allow: never counted */
	uint32_t count; /* unknown recipients in the window, at the last look */
	time_t until;   /* blocked until (HARVEST_BLOCKED) */
};

/* NULL without error when cfg has no harvest group; NULL with errs when
 * harvest.allow has a bad network. */
struct harvest *harvest_build(const struct mx_config *cfg, struct config_errors *errs);
void harvest_free(struct harvest *h);
long long harvest_tarpit_ms(const struct harvest *h);
int harvest_block_code(const struct harvest *h);

/* s is borrowed and must outlive w; w's timer runs on base. */
struct harvest_worker *harvest_worker_new(struct event_base *base, struct store *s);
/* Writes the counts still queued. */
void harvest_worker_free(struct harvest_worker *w);

/* A new client: allowed?  blocked?  tarpitted?  Fills c. */
enum harvest_state harvest_connect(const struct harvest *h, struct harvest_worker *w,
                                   const struct sockaddr *sa, struct harvest_client *c);
/* The client asked for an unknown recipient: counts it and returns the
 * state now.  Crossing block_after writes the block (logged, counted). */
enum harvest_state harvest_unknown(const struct harvest *h, struct harvest_worker *w,
                                   struct harvest_client *c);
/* The state from what c knows (no store access). */
enum harvest_state harvest_state(const struct harvest *h, const struct harvest_client *c);

/* ---- blocks, for `mxguard blocks` -------------------------------------------- */

struct harvest_block {
	char key[NETADDR_STRLEN];
	time_t since, until;
	uint32_t count;
};

/* Calls cb for every block in force; 0 or -1. */
int harvest_block_list(struct store *s, void (*cb)(const struct harvest_block *b, void *arg),
                       void *arg);
/* Lifts the block of an address ("192.0.2.1", "2001:db8::1") or key
 * ("2001:db8::/64") and forgets its count.  1 lifted, 0 none, -1 error
 * (err filled). */
int harvest_block_remove(struct store *s, const char *addr, char *key, size_t keylen, char *err,
                         size_t errlen);

#endif
