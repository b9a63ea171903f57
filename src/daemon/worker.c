/* SPDX-License-Identifier: MIT */
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connlimit.h"
#include "evbase.h"
#include "log.h"
#include "netaddr.h"
#include "smtp_reply.h"
#include "queue.h"
#include "smtpc.h"
#include "stats.h"
#include "xalloc.h"


static void
worker_refuse(int fd, const struct sockaddr *sa, enum smtp_reply_id id)
{
	const struct smtp_reply *r = smtp_reply_get(id);
	char line[200], ip[64];
	int n = snprintf(line, sizeof(line), "%d %s %s\r\n", r->code, r->enh, r->text);
	ssize_t w = write(fd, line, (size_t)n); /* best effort; the socket is fresh */
	(void)w;
	close(fd);
	netaddr_ip_str(sa, ip, sizeof(ip));
	stats_inc(STAT_SMTP_CONNECT_REFUSED);
	log_info("- refuse client=%s reply=\"%d %s %s\"", ip, r->code, r->enh, r->text);
}

static void
worker_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
              void *arg)
{
	struct worker *w = arg;
	(void)l;
	struct runtime *rt = runtime_current();
	if (rt == NULL) {
		close(fd);
		return;
	}
	enum connlimit_rc lr =
	    connlimit_acquire(w->ww.connlimit, sa, rt->cfg->max_connections, rt->cfg->max_conn_per_ip);
	if (lr != CONNLIMIT_OK) {
		worker_refuse(fd, sa, lr == CONNLIMIT_TOTAL ? REPLY_TOO_MANY_CONN : REPLY_TOO_MANY_CONN_IP);
		runtime_unref(rt);
		return;
	}
	struct wiring_session *ws = xcalloc(1, sizeof(*ws));
	ws->rt = rt; /* the session's reference */
	ws->w = &w->ww;
	memcpy(&ws->peer, sa, (size_t)salen);
	smtpd_session_start(w->smtpd, fd, sa, (socklen_t)salen, rt->cfg, rt->tls, ws);
}

static void
worker_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	(void)fd;
	(void)what;
	for (size_t i = 0; i < w->n_listeners; i++)
		if (w->listeners[i])
			evconnlistener_enable(w->listeners[i]);
}

static void
worker_accept_error(struct evconnlistener *l, void *arg)
{
	static struct log_ratelimit rl;
	int e = EVUTIL_SOCKET_ERROR();
	if (log_ratelimit_ok(&rl, 10, NULL))
		log_warn("accept: %s", evutil_socket_error_to_string(e));
	/* EMFILE and friends: the pending connection stays, and the socket
	 * stays readable: retried at once, the loop spun at 100 % CPU (found
	 * in review, 2026-11-29). A pause of 100 ms lets sessions end first */
	struct worker *w = arg;
	evconnlistener_disable(l);
	struct timeval pause = {0, 100000};
	evtimer_add(w->accept_pause, &pause);
}

static void
worker_finish(void *arg)
{
	struct worker *w = arg;
	atomic_store(&w->done, 1);
	event_base_loopexit(w->base, NULL);
}

static void
worker_stop_listening(struct worker *w)
{
	evtimer_del(w->accept_pause);
	for (size_t i = 0; i < w->n_listeners; i++) {
		if (w->listeners[i]) {
			evconnlistener_free(w->listeners[i]);
			w->listeners[i] = NULL;
		}
	}
}

static void
worker_ctl(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	(void)fd;
	(void)what;
	int cmd = atomic_exchange(&w->cmd, 0);
	if (cmd & WORKER_STOP) {
		worker_stop_listening(w);
		smtpd_ctx_close_all(w->smtpd);
		worker_finish(w);
		return;
	}
	if (cmd & WORKER_DRAIN) {
		worker_stop_listening(w);
		smtpd_ctx_drain(w->smtpd, worker_finish, w);
	}
}

struct worker *
worker_new(int index, const int *fds, size_t n_fds, struct connlimit *cl, struct queue *queue,
           struct store *store)
{
	struct worker *w = xcalloc(1, sizeof(*w));
	w->index = index;
	w->base = evbase_new();
	if (w->base == NULL)
		fatalx("evbase_new failed");
	w->ww.base = w->base;
	w->ww.delivery = delivery_new(w->base);
	w->ww.connlimit = cl;
	w->ww.queue = queue;
	w->ww.harvest = store ? harvest_worker_new(w->base, store) : NULL;
	w->smtpd = smtpd_ctx_new(w->base, &wiring_hooks);
	w->ctl = event_new(w->base, -1, EV_PERSIST, worker_ctl, w);
	w->accept_pause = evtimer_new(w->base, worker_accept_resume, w);
	event_add(w->ctl, NULL);
	w->listeners = xcalloc(n_fds, sizeof(*w->listeners));
	w->n_listeners = n_fds;
	for (size_t i = 0; i < n_fds; i++) {
		/* backlog 0: the socket listens already (daemon_listen_socket,
		 * 4096); -1 would make libevent listen() again with 128, and a
		 * burst of connections would overflow the accept queue: the
		 * kernel then drops the handshake's last ACK, and a client that
		 * waits for the greeting may wait for good */
		w->listeners[i] = evconnlistener_new(w->base, worker_accept, w, LEV_OPT_CLOSE_ON_FREE,
		                                     0, fds[i]);
		if (w->listeners[i] == NULL)
			fatalx("evconnlistener_new failed");
		evconnlistener_set_error_cb(w->listeners[i], worker_accept_error);
	}
	return w;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	/* runs until worker_finish(): the control event (no fd) is not
	 * counted as one, and a loop left with nothing else used to return
	 * unseen, so that a stop waited for it for good */
	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	atomic_store(&w->done, 1);
	return NULL;
}

int
worker_start(struct worker *w)
{
	return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

void
worker_post(struct worker *w, enum worker_cmd cmd)
{
	atomic_fetch_or(&w->cmd, (int)cmd);
	event_active(w->ctl, EV_READ, 0);
}

void
worker_join_free(struct worker *w)
{
	pthread_join(w->thread, NULL);
	worker_stop_listening(w);
	free(w->listeners);
	/* sessions cut off by a forced stop may still wait for a hook: their
	 * directory lookups are dropped here (and answered by
	 * smtpd_ctx_free's cancel hook), their relayed messages answered
	 * 451 by the client pool, before the sessions and the ctx go */
	rcpt_worker_end(w->base); /* its directory connections */
	smtpc_pool_cancel(delivery_pool(w->ww.delivery));
	queue_worker_end(w->ww.queue, w->base); /* spool writes of its sessions */
	smtpd_ctx_free(w->smtpd);
	harvest_worker_free(w->ww.harvest);
	delivery_free(w->ww.delivery);
	event_free(w->ctl);
	event_free(w->accept_pause);
	event_base_free(w->base);
	free(w);
}
