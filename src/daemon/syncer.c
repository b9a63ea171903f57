/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	syncer - the background thread that keeps the directory replica
 * DESCRIPTION
 *	Each round takes the current runtime, asks its recipient map to sync
 *	when due (rcpt_map_replica_sync), and sleeps until the next sync is
 *	due, a kick (reload) or stop.  Without a replica it sleeps until a
 *	reload.
 */
#include "syncer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "runtime.h"
#include "xalloc.h"

#define SYNCER_IDLE_MS (3600LL * 1000)

struct syncer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_bool stop;
	bool kicked;
};

static void *
syncer_main(void *arg)
{
	struct syncer *s = arg;
	while (!atomic_load(&s->stop)) {
		long long wait_ms = SYNCER_IDLE_MS;
		struct runtime *rt = runtime_current();
		if (rt != NULL) {
			long long next = rcpt_map_replica_sync(rt->rcpt, &s->stop);
			if (next >= 0)
				wait_ms = next < 50 ? 50 : next;
			runtime_unref(rt);
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += wait_ms / 1000;
		ts.tv_nsec += (wait_ms % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&s->mu);
		while (!s->kicked && !atomic_load(&s->stop))
			if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0)
				break;
		s->kicked = false;
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

struct syncer *
syncer_start(void)
{
	struct syncer *s = xcalloc(1, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&s->stop, false);
	if (pthread_create(&s->thread, NULL, syncer_main, s) != 0)
		fatal("pthread_create");
	return s;
}

void
syncer_kick(struct syncer *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->kicked = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

void
syncer_stop(struct syncer *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	atomic_store(&s->stop, true);
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
