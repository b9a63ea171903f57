/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	wiring - fills the SMTP hooks with recipient checks and delivery
 * DESCRIPTION
 *	The only place that knows both the protocol (server/) and the
 *	decisions (rcpt/, delivery/, later policy/ and content/).  Each
 *	session carries a struct wiring_session as its hook data: the runtime
 *	it started with and its worker.
 */
#ifndef MX_WIRING_H
#define MX_WIRING_H

#include <sys/socket.h>

#include "delivery.h"
#include "harvest.h"
#include "runtime.h"
#include "smtpd.h"

struct connlimit;

struct queue;
struct wiring_hold;
struct wiring_rcpt_wait;

struct wiring_worker {
	struct event_base *base;
	struct delivery *delivery;
	struct connlimit *connlimit;
	struct queue *queue; /* the daemon's queue; NULL in proxy mode */
	struct harvest_worker *harvest; /* unknown-recipient counts not yet written */
};

struct wiring_session {
	struct runtime *rt;
	struct wiring_worker *w;
	struct sockaddr_storage peer;
	struct smtpd_session *s;
	char scanlog[1200]; /* the content verdict of the message in flight */
	bool nodsn;         /* the filter judged it spam: never bounce it */
	bool harvest;       /* the harvest defence watches this client */
	struct harvest_client hc;
	/* what a pending hook waits for, when it can be called off at
	 * shutdown (wiring_cancel) */
	struct wiring_hold *hold;           /* the tarpit's timer */
	struct wiring_rcpt_wait *rcpt_wait; /* a directory lookup */
};

extern const struct smtpd_hooks wiring_hooks;

#endif
