/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	worker - one thread, one event base, its own listeners and sessions
 * DESCRIPTION
 *	Each worker accepts on its own SO_REUSEPORT sockets (the kernel
 *	spreads connections), runs its sessions and its downstream pool.
 *	Workers share only the published runtime, the connection counts and
 *	the counters.  The main thread talks to a worker through
 *	worker_post(): drain (finish transactions, then stop) or stop now.
 */
#ifndef MX_WORKER_H
#define MX_WORKER_H

#include <pthread.h>
#include <stdatomic.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "wiring.h"

enum worker_cmd { WORKER_DRAIN = 1, WORKER_STOP = 2 };

struct worker {
	int index;
	pthread_t thread;
	struct event_base *base;
	struct evconnlistener **listeners;
	size_t n_listeners;
	struct smtpd_ctx *smtpd;
	struct wiring_worker ww;
	struct event *ctl;
	struct event *accept_pause; /* listeners paused after an accept error */
	_Atomic int cmd;
	_Atomic int done;
	void (*on_done)(struct worker *w); /* called in the worker thread */
};

/* fds: this worker's listening sockets (taken); store: the daemon's, for
 * the harvest counts (borrowed, may be NULL). */
struct worker *worker_new(int index, const int *fds, size_t n_fds, struct connlimit *cl,
                          struct queue *queue, struct store *store);
int worker_start(struct worker *w);
void worker_post(struct worker *w, enum worker_cmd cmd);
void worker_join_free(struct worker *w);

#endif
