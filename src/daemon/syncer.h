/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	syncer - the background thread that keeps the directory replica
 * DESCRIPTION
 *	When the published configuration keeps a local replica of the
 *	recipient directory (recipients.ldap.replica), this thread runs its
 *	full syncs: at start, then every interval (sooner after a failure),
 *	and at once after a reload.  Syncs block on the network, which is why
 *	they have a thread of their own and never run on a worker.
 */
#ifndef MX_SYNCER_H
#define MX_SYNCER_H

struct syncer;

struct syncer *syncer_start(void);
/* The configuration changed: look again now. */
void syncer_kick(struct syncer *s);
/* Stops and joins (a sync in progress stops at its next result page). */
void syncer_stop(struct syncer *s);

#endif
