/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	evbase - the event bases mxguard runs its loops on
 * DESCRIPTION
 *	libevent's default clock on Linux is CLOCK_MONOTONIC_COARSE, which
 *	lags by up to a jiffy (4 ms at HZ=250): a timer set for 10 ms could
 *	fire after 6, and a tarpit or greeting delay must never be shorter
 *	than configured. These bases keep precise time (CLOCK_MONOTONIC, a
 *	vDSO call per loop pass).
 */
#ifndef MX_EVBASE_H
#define MX_EVBASE_H

struct event_base;

/* A new base with precise timers, or NULL. */
struct event_base *evbase_new(void);

#endif
