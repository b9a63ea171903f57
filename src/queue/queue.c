/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	queue - writer threads, the manager thread, retries, DSNs, control
 * DESCRIPTION
 *	Writers: a pool of threads takes submission jobs, writes each message
 *	with spool_write() (data and folder flushed), and wakes the submitting
 *	worker through an event on its loop.  Concurrent flushes let the
 *	filesystem journal commit many messages at once.
 *	Manager: one thread and event loop.  Every queued message is a struct
 *	qent: WAIT (a timer until its next attempt), READY (waiting for a
 *	free slot at its target), ACTIVE (being delivered), HELD.  An attempt
 *	walks the targets in MX order; a target that cannot be used at all is
 *	skipped and the next one tried; once a target answered, each
 *	recipient's reply decides for it: delivered, failed for good (DSN),
 *	or still pending (retry on the schedule, until the lifetime ends).
 *	Duplicates: a message is delivered again after a crash between the
 *	downstream's 250 and the removal of its spool file (or the flushing of
 *	its state file, for messages with several recipients).  Nothing that
 *	was acknowledged is ever lost.
 * LIMITS
 *	queue.concurrency deliveries per target; 64 targets per route.
 */
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "blob.h"
#include "clock.h"
#include "delivery.h"
#include "dns.h"
#include "dsn.h"
#include "evbase.h"
#include "fsutil.h"
#include "id.h"
#include "log.h"
#include "smtpc.h"
#include "spool.h"
#include "stats.h"
#include "str.h"
#include "strmap.h"
#include "xalloc.h"

#define QUEUE_TARGETS_MAX 64
#define QUEUE_CTL_LINE 512

enum qent_state { QE_WAIT, QE_READY, QE_ACTIVE, QE_HELD };

struct qtarget;

struct qent {
	struct spool_entry e;
	struct queue *q;
	enum qent_state state;
	struct event *timer;
	struct qent *wnext; /* in a target's wait list */
	struct qtarget *waiting; /* the target whose wait list holds it */
	bool deleted;       /* deleted while active */
	/* the attempt in progress */
	struct queue_routes routes;
	bool have_routes;
	struct upstream_set *targets;
	struct upstream_set *resolved; /* targets from DNS, owned */
	size_t order[QUEUE_TARGETS_MAX];
	size_t n_order, pos;
	struct qtarget *qt;
	struct envelope env;
	size_t *map; /* env recipient -> entry recipient */
	char last[300];
	bool progress; /* a recipient was settled in this attempt */
	bool route_failed; /* DNS said the destination takes no mail */
	bool dsn_only;     /* nothing pending: this attempt only retries the DSN */
	char dsn_reason[300], dsn_status[16]; /* of a DSN that could not be queued */
};

struct qtarget {
	unsigned active;
	struct qent *head, *tail;
};

struct qjob {
	struct queue *q;
	struct envelope *env;
	bool nodsn;
	struct event_base *base; /* the submitter's loop, where done fires */
	struct event *done;
	queue_done_cb cb;
	void *arg;
	int err;
	struct qjob *next;          /* the waiting list */
	struct qjob *oprev, *onext; /* taken by a writer, until done fired */
	bool running;               /* a writer is on it */
};

struct queue {
	int lock_fd; /* flock on DIR/lock: one gateway a spool */
	char dir[4096];
	char hostname[256];
	struct queue_opts o;
	/* writers */
	pthread_t *writers;
	unsigned n_writers;
	pthread_mutex_t jlock;
	pthread_cond_t jcond;
	pthread_cond_t jdone;  /* a writer finished a job */
	struct qjob *out;      /* jobs taken by a writer whose done has not run */
	struct qjob *jhead, *jtail;
	bool stopping;
	/* manager */
	pthread_t manager;
	struct event_base *base;
	struct event *inbox_ev, *stop_ev;
	pthread_mutex_t ilock;
	char **inbox;
	size_t n_inbox, cap_inbox;
	struct strmap *entries;
	struct strmap *targets;
	struct smtpc_pool *pool;
	struct dns *dns;
	struct evconnlistener *ctl;
	_Atomic uint64_t bytes, count;
	uint64_t delivered, bounced, expired;
	/* free space, checked at most once a second */
	pthread_mutex_t slock;
	uint64_t space_ms;
	uint64_t free_bytes;
};

static void queue_attempt(struct qent *qe);
static void queue_try_target(struct qent *qe);
static void queue_settle(struct qent *qe);
static void queue_resolved(enum dns_status st, struct upstream_set *set, const char *why, void *arg);

/* ---- writers ------------------------------------------------------------ */

static void
queue_job_unlink_out(struct queue *q, struct qjob *j)
{
	if (j->oprev)
		j->oprev->onext = j->onext;
	else if (q->out == j)
		q->out = j->onext;
	if (j->onext)
		j->onext->oprev = j->oprev;
	j->oprev = j->onext = NULL;
}

static void
queue_job_done(evutil_socket_t fd, short what, void *arg)
{
	struct qjob *j = arg;
	(void)fd;
	(void)what;
	pthread_mutex_lock(&j->q->jlock);
	queue_job_unlink_out(j->q, j);
	pthread_mutex_unlock(&j->q->jlock);
	event_free(j->done);
	j->cb(j->err, j->env->id, j->arg);
	free(j);
}

static void
queue_inbox_push(struct queue *q, const char *id)
{
	pthread_mutex_lock(&q->ilock);
	q->inbox = xgrow(q->inbox, &q->cap_inbox, q->n_inbox + 1, sizeof(char *));
	q->inbox[q->n_inbox++] = xstrdup(id);
	pthread_mutex_unlock(&q->ilock);
	event_active(q->inbox_ev, EV_READ, 0);
}

static void *
queue_writer_main(void *arg)
{
	struct queue *q = arg;
	for (;;) {
		pthread_mutex_lock(&q->jlock);
		while (q->jhead == NULL && !q->stopping)
			pthread_cond_wait(&q->jcond, &q->jlock);
		struct qjob *j = q->jhead;
		if (j == NULL) {
			pthread_mutex_unlock(&q->jlock);
			return NULL;
		}
		q->jhead = j->next;
		if (q->jhead == NULL)
			q->jtail = NULL;
		j->running = true;
		j->onext = q->out;
		if (q->out)
			q->out->oprev = j;
		q->out = j;
		pthread_mutex_unlock(&q->jlock);
		j->err = spool_write(q->dir, j->env, SPOOL_ROUTE_DOWNSTREAM, j->nodsn) < 0 ? errno : 0;
		if (j->err == 0) {
			atomic_fetch_add(&q->bytes, envelope_size(j->env));
			atomic_fetch_add(&q->count, 1);
			queue_inbox_push(q, j->env->id);
		}
		/* under the lock: queue_worker_end() either sees it running and
		 * waits, or sees it finished before its loop's base goes */
		pthread_mutex_lock(&q->jlock);
		j->running = false;
		event_active(j->done, EV_READ, 0);
		pthread_cond_broadcast(&q->jdone);
		pthread_mutex_unlock(&q->jlock);
	}
}

void
queue_submit(struct queue *q, struct event_base *base, struct envelope *env, bool nodsn,
             queue_done_cb cb, void *arg)
{
	struct qjob *j = xcalloc(1, sizeof(*j));
	j->q = q;
	j->env = env;
	j->nodsn = nodsn;
	j->cb = cb;
	j->arg = arg;
	j->base = base;
	j->done = event_new(base, -1, 0, queue_job_done, j);
	pthread_mutex_lock(&q->jlock);
	if (q->jtail)
		q->jtail->next = j;
	else
		q->jhead = j;
	q->jtail = j;
	pthread_cond_signal(&q->jcond);
	pthread_mutex_unlock(&q->jlock);
}

/*
 * base's loop has stopped for good (a worker at a forced stop): its jobs
 * would call back into a loop that never runs again, or, from a writer,
 * into a freed base.  Jobs not started are answered ECANCELED (nothing
 * written: the client, cut off, never heard 250); a write under way is
 * waited for; finished ones are answered with their result.  Here, on
 * the caller's thread, before base is freed.
 */
void
queue_worker_end(struct queue *q, struct event_base *base)
{
	if (q == NULL)
		return;
	struct qjob *todo = NULL, **tail = &todo;
	pthread_mutex_lock(&q->jlock);
	for (struct qjob **pp = &q->jhead, *prev = NULL; *pp != NULL;) {
		struct qjob *j = *pp;
		if (j->base != base) {
			prev = j;
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		if (q->jtail == j)
			q->jtail = prev;
		j->err = ECANCELED;
		j->next = NULL;
		*tail = j;
		tail = &j->next;
	}
	for (;;) {
		bool waiting = false;
		for (struct qjob *j = q->out; j != NULL; j = j->onext)
			waiting |= j->base == base && j->running;
		if (!waiting)
			break;
		pthread_cond_wait(&q->jdone, &q->jlock);
	}
	for (struct qjob *j = q->out, *nx; j != NULL; j = nx) {
		nx = j->onext;
		if (j->base != base)
			continue;
		queue_job_unlink_out(q, j);
		j->next = NULL;
		*tail = j;
		tail = &j->next;
	}
	pthread_mutex_unlock(&q->jlock);
	for (struct qjob *j = todo, *nx; j != NULL; j = nx) {
		nx = j->next;
		event_free(j->done);
		j->cb(j->err, j->env->id, j->arg);
		free(j);
	}
}

bool
queue_has_room(struct queue *q, const struct mx_config *cfg, size_t size, char *why, size_t len)
{
	uint64_t now = mx_clock_mono_ms();
	pthread_mutex_lock(&q->slock);
	if (now - q->space_ms >= 1000 || q->space_ms == 0) {
		char p[4200];
		struct statvfs v;
		snprintf(p, sizeof(p), "%s/q", q->dir);
		q->free_bytes = statvfs(p, &v) == 0 ? (uint64_t)v.f_bavail * v.f_frsize : 0;
		q->space_ms = now;
	}
	uint64_t free_bytes = q->free_bytes;
	pthread_mutex_unlock(&q->slock);
	if (free_bytes < (uint64_t)cfg->queue_min_free + size) {
		snprintf(why, len, "spool filesystem has %llu bytes free (queue.min_free %lld)",
		         (unsigned long long)free_bytes, cfg->queue_min_free);
		return false;
	}
	uint64_t used = atomic_load(&q->bytes);
	if (used + size > (uint64_t)cfg->queue_max_size) {
		snprintf(why, len, "spool holds %llu bytes (queue.max_size %lld)", (unsigned long long)used,
		         cfg->queue_max_size);
		return false;
	}
	return true;
}

/* ---- entries ---------------------------------------------------------------- */

static void
queue_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	queue_attempt(arg);
}

static struct qent *
queue_ent_new(struct queue *q, struct spool_entry *e)
{
	struct qent *qe = xcalloc(1, sizeof(*qe));
	qe->e = *e;
	qe->q = q;
	qe->timer = evtimer_new(q->base, queue_timer_cb, qe);
	qe->state = e->hold ? QE_HELD : QE_WAIT;
	strmap_put(q->entries, qe->e.id, strlen(qe->e.id), qe);
	return qe;
}

static void
queue_ent_free(struct qent *qe)
{
	struct queue *q = qe->q;
	strmap_del(q->entries, qe->e.id, strlen(qe->e.id));
	event_free(qe->timer);
	envelope_clear(&qe->env);
	spool_entry_clear(&qe->e);
	free(qe->map);
	free(qe);
}

static void
queue_schedule(struct qent *qe, time_t when)
{
	if (qe->e.hold) {
		/* held while an attempt ran: the attempt ended, no next one
		 * until release */
		evtimer_del(qe->timer);
		qe->state = QE_HELD;
		return;
	}
	time_t now = mx_clock_wall();
	long long d = when > now ? (long long)(when - now) : 0;
	struct timeval tv = {d, 0};
	qe->state = QE_WAIT;
	evtimer_add(qe->timer, &tv);
}

static size_t
queue_pending(const struct spool_entry *e)
{
	size_t n = 0;
	for (size_t i = 0; i < e->n_rcpt; i++)
		n += e->done[i] == SPOOL_PENDING;
	return n;
}

/* Removes a finished message from disk and memory. */
static void
queue_remove(struct qent *qe)
{
	struct queue *q = qe->q;
	if (spool_remove(q->dir, qe->e.id) < 0)
		log_err("queue id=%s: cannot remove its spool files: %s; it will be read back (and "
		        "delivered again) at the next start", qe->e.id, strerror(errno));
	atomic_fetch_sub(&q->bytes, qe->e.size);
	atomic_fetch_sub(&q->count, 1);
	queue_ent_free(qe);
}

/* ---- DSN -------------------------------------------------------------------- */

/* The original header block, for the DSN's third part. */
static char *
queue_orig_headers(struct queue *q, const struct spool_entry *e, size_t *len)
{
	char path[4200];
	spool_msg_path(q->dir, e->id, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	*len = 0;
	if (fd < 0)
		return NULL;
	char *buf = xmalloc(65537);
	ssize_t n = pread(fd, buf, 65536, (off_t)e->data_off);
	close(fd);
	if (n <= 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	/* the block without its empty line; all that was read if it is
	 * longer (a NUL in it must not make the body look like headers) */
	size_t block = mx_header_block_len(buf, (size_t)n);
	*len = block > 0 ? block - 2 : (size_t)n;
	return buf;
}

/*
 * Reports the recipients that failed for good and are not yet reported:
 * queues one DSN to the sender (none for spam, bounces, or <>), then marks
 * them reported.  0, or -1 when the DSN could not be queued: they stay
 * failed-unreported and the message is kept to try again.
 */
static int
queue_bounce(struct qent *qe, const char *reason, const char *dflt_status)
{
	struct queue *q = qe->q;
	struct spool_entry *e = &qe->e;
	size_t n = 0;
	for (size_t i = 0; i < e->n_rcpt; i++)
		n += e->done[i] == SPOOL_FAILED;
	if (n == 0)
		return 0;
	if (e->nodsn || e->from[0] == '\0') {
		log_info("queue id=%s no DSN for %zu failed recipient%s (%s)", e->id, n, n == 1 ? "" : "s",
		         e->from[0] ? "spam or bounce" : "null sender");
		goto mark;
	}
	struct dsn_rcpt *dr = xcalloc(n, sizeof(*dr));
	char (*status)[16] = xcalloc(n, 16);
	size_t k = 0;
	for (size_t i = 0; i < e->n_rcpt; i++) {
		if (e->done[i] != SPOOL_FAILED)
			continue;
		dr[k].addr = e->rcpt[i];
		/* why it failed, set when it did ("STATUS DIAGNOSTIC") and kept
		 * in the state, so that a DSN sent after a restart says it too */
		const char *why = e->why != NULL ? e->why[i] : NULL;
		const char *sp = why != NULL ? strchr(why, ' ') : NULL;
		if (sp != NULL) {
			mx_strlcpyn(status[k], why, (size_t)(sp - why), 16);
			dr[k].diagnostic = sp + 1;
		} else {
			mx_strlcpy(status[k], dflt_status, 16);
			dr[k].diagnostic = reason;
		}
		dr[k].status = status[k];
		k++;
	}
	size_t hlen;
	char *hdrs = queue_orig_headers(q, e, &hlen);
	struct dsn_info di = {
		.hostname = q->hostname, .sender = e->from, .orig_id = e->id, .arrival = e->arrival,
		.reason = reason, .rcpts = dr, .n_rcpts = k, .orig_headers = hdrs, .orig_headers_len = hlen,
	};
	char *msg = dsn_build(&di, mx_clock_wall());
	free(hdrs);
	free(dr);
	free(status);
	if (msg == NULL) {
		log_err("queue id=%s cannot build the DSN to <%s>: out of memory; kept to try again",
		        e->id, e->from);
		return -1;
	}
	struct envelope env;
	envelope_init(&env);
	mx_id_str(mx_id_next(), env.id);
	env.arrival = mx_clock_wall();
	env.mail_from[0] = '\0';
	envelope_add_rcpt(&env, e->from);
	size_t mlen = strlen(msg);
	env.body = blob_new(mlen + 1, q->dir);
	int rc = blob_append(env.body, msg, mlen);
	free(msg);
	if (rc == 0)
		rc = spool_write(q->dir, &env, SPOOL_ROUTE_BOUNCE, true);
	if (rc < 0) {
		log_err("queue id=%s cannot queue the DSN to <%s>: %s; kept to try again", e->id, e->from,
		        strerror(errno));
		envelope_clear(&env);
		return -1;
	}
	atomic_fetch_add(&q->bytes, envelope_size(&env));
	atomic_fetch_add(&q->count, 1);
	log_info("queue id=%s dsn=%s to=<%s> failed=%zu", e->id, env.id, e->from, k);
	stats_inc(STAT_QUEUE_DSN);
	struct spool_entry se;
	if (spool_load(q->dir, env.id, &se) == 0)
		queue_attempt(queue_ent_new(q, &se));
	else /* it is on disk: the next start delivers it */
		log_err("queue id=%s cannot be read back from the spool", env.id);
	envelope_clear(&env);
mark:
	for (size_t i = 0; i < e->n_rcpt; i++)
		if (e->done[i] == SPOOL_FAILED)
			e->done[i] = SPOOL_REPORTED;
	return 0;
}

/* ---- attempts ------------------------------------------------------------------ */

static struct qtarget *
queue_target(struct queue *q, const char *name)
{
	void *v;
	if (strmap_get(q->targets, name, strlen(name), &v))
		return v;
	struct qtarget *t = xcalloc(1, sizeof(*t));
	strmap_put(q->targets, name, strlen(name), t);
	return t;
}

static void
queue_release_routes(struct qent *qe)
{
	upstream_set_free(qe->resolved);
	qe->resolved = NULL;
	if (qe->have_routes) {
		qe->q->o.release(qe->q->o.arg, qe->routes.token);
		qe->have_routes = false;
	}
}

static void
queue_attempt(struct qent *qe)
{
	struct queue *q = qe->q;
	if (qe->state == QE_ACTIVE || qe->state == QE_READY)
		return;
	evtimer_del(qe->timer);
	if (q->o.acquire(q->o.arg, &qe->routes) < 0) {
		queue_schedule(qe, mx_clock_wall() + 60);
		return;
	}
	qe->have_routes = true;
	qe->last[0] = '\0';
	qe->progress = false;
	qe->route_failed = false;
	qe->pos = 0;
	qe->n_order = 0;
	/* every recipient settled, but the DSN could not be queued: try that again */
	qe->dsn_only = queue_pending(&qe->e) == 0;
	if (qe->dsn_only) {
		mx_strlcpy(qe->last, qe->e.last, sizeof(qe->last));
		queue_settle(qe);
		return;
	}
	/* bounces go to the sender's mail hosts unless queue.bounce says where */
	const char *domain = NULL;
	int port = 25;
	if (qe->e.route == SPOOL_ROUTE_BOUNCE) {
		qe->targets = qe->routes.bounce;
		if (qe->targets == NULL) {
			const char *at = strrchr(qe->e.rcpt[0], '@');
			domain = at ? at + 1 : "";
			port = qe->routes.cfg->queue_mx_port;
		}
	} else {
		qe->targets = qe->routes.downstream;
		if (qe->targets->n == 1 && qe->targets->t[0].proto == UPSTREAM_MX) {
			domain = qe->targets->t[0].dir;
			port = qe->targets->t[0].port;
		}
	}
	if (domain != NULL) {
		qe->state = QE_ACTIVE; /* resolving */
		dns_mx_targets(q->dns, domain, port, queue_resolved, qe);
		return;
	}
	qe->n_order = upstream_order(qe->targets, qe->order, QUEUE_TARGETS_MAX, mx_clock_mono_ms());
	queue_try_target(qe);
}

static void
queue_resolved(enum dns_status st, struct upstream_set *set, const char *why, void *arg)
{
	struct qent *qe = arg;
	qe->state = QE_WAIT;
	if (qe->deleted) {
		upstream_set_free(set);
		queue_release_routes(qe);
		queue_remove(qe);
		return;
	}
	if (st != DNS_OK) {
		mx_strlcpy(qe->last, why, sizeof(qe->last));
		if (st == DNS_NOTFOUND) { /* no such destination: a permanent failure */
			for (size_t i = 0; i < qe->e.n_rcpt; i++)
				if (qe->e.done[i] == SPOOL_PENDING) {
					qe->e.done[i] = SPOOL_FAILED;
					spool_set_why(&qe->e, i, why, "5.4.4");
				}
			qe->route_failed = true;
			qe->progress = true;
		}
		queue_settle(qe);
		return;
	}
	qe->resolved = set;
	qe->targets = set;
	qe->n_order = upstream_order(set, qe->order, QUEUE_TARGETS_MAX, mx_clock_mono_ms());
	queue_try_target(qe);
}

static void queue_delivered(const struct smtpc_result *r, void *arg);

/* Builds the envelope of the pending recipients over the spool file. */
static int
queue_open_env(struct qent *qe)
{
	struct queue *q = qe->q;
	struct spool_entry *e = &qe->e;
	char path[4200];
	spool_msg_path(q->dir, e->id, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	envelope_clear(&qe->env);
	mx_strlcpy(qe->env.id, e->id, sizeof(qe->env.id));
	mx_strlcpy(qe->env.mail_from, e->from, sizeof(qe->env.mail_from));
	qe->env.arrival = e->arrival;
	free(qe->map);
	qe->map = xcalloc(e->n_rcpt, sizeof(size_t));
	for (size_t i = 0; i < e->n_rcpt; i++) {
		if (e->done[i] != SPOOL_PENDING)
			continue;
		qe->map[qe->env.n_rcpt] = i;
		envelope_add_rcpt(&qe->env, e->rcpt[i]);
	}
	/* SMTPUTF8 as the client asked (spool files written before it was
	 * kept: when the sender or a recipient is not ASCII) */
	qe->env.params.smtputf8 = e->smtputf8 || !mx_str_ascii(e->from);
	for (size_t i = 0; i < e->n_rcpt && !qe->env.params.smtputf8; i++)
		qe->env.params.smtputf8 = !mx_str_ascii(e->rcpt[i]);
	qe->env.body = blob_from_fd(fd, e->data_off, e->size);
	qe->env.body_8bit = true; /* unknown after the fact: say BODY=8BITMIME when offered */
	return 0;
}

static void
queue_try_target(struct qent *qe)
{
	struct queue *q = qe->q;
	const struct mx_config *cfg = qe->routes.cfg;
	while (qe->pos < qe->n_order) {
		struct upstream_target *t = &qe->targets->t[qe->order[qe->pos]];
		if (t->proto == UPSTREAM_FILE) {
			if (queue_open_env(qe) < 0) {
				snprintf(qe->last, sizeof(qe->last), "cannot read spool file: %s", strerror(errno));
				break;
			}
			char path[4200];
			if (deliver_file_write(t->dir, &qe->env, path, sizeof(path)) == 0) {
				for (size_t j = 0; j < qe->env.n_rcpt; j++)
					qe->e.done[qe->map[j]] = SPOOL_DELIVERED;
				qe->progress = true;
				snprintf(qe->last, sizeof(qe->last), "file %s", path);
			} else {
				snprintf(qe->last, sizeof(qe->last), "file %s: %s", t->dir, strerror(errno));
			}
			break;
		}
		struct qtarget *qt = queue_target(q, t->name);
		if (qt->active >= (unsigned)cfg->queue_concurrency) {
			/* wait for a slot at this target, in arrival order */
			qe->state = QE_READY;
			qe->wnext = NULL;
			qe->waiting = qt;
			if (qt->tail)
				qt->tail->wnext = qe;
			else
				qt->head = qe;
			qt->tail = qe;
			return;
		}
		if (queue_open_env(qe) < 0) {
			snprintf(qe->last, sizeof(qe->last), "cannot read spool file: %s", strerror(errno));
			break;
		}
		qt->active++;
		qe->qt = qt;
		qe->state = QE_ACTIVE;
		struct smtpc_target st = {.lmtp = t->proto == UPSTREAM_LMTP, .addrlen = t->addrlen,
		                          .name = t->name};
		memcpy(&st.addr, &t->addr, t->addrlen);
		struct smtpc_opts so = {
			.helo = cfg->down_helo ? cfg->down_helo : cfg->hostname,
			.t_connect = cfg->t_down_connect,
			.t_reply = cfg->t_down_reply,
			.t_data = cfg->t_down_data,
			.t_idle = cfg->t_down_idle,
			.tls = smtpc_tls_policy(cfg->down_tls),
			.partial = true,
		};
		smtpc_send(q->pool, &st, &so, &qe->env, queue_delivered, qe);
		return;
	}
	queue_settle(qe);
}

/* A slot at qt is free: start the next message waiting for it, and the
 * next after that while slots stay free (one woken that cannot use it,
 * its spool file unreadable say, must not leave the others waiting until
 * some other delivery to the target ends). */
static void
queue_wake_target(struct qtarget *qt)
{
	unsigned guard = 0;
	while (qt->head != NULL && guard++ < 1000) {
		unsigned before = qt->active;
		struct qent *w = qt->head;
		qt->head = w->wnext;
		if (qt->head == NULL)
			qt->tail = NULL;
		w->waiting = NULL;
		w->state = QE_WAIT;
		queue_try_target(w); /* w may be gone after this */
		if (qt->active > before)
			return; /* it took the slot */
	}
}

static void
queue_delivered(const struct smtpc_result *r, void *arg)
{
	struct qent *qe = arg;
	struct qtarget *qt = qe->qt;
	struct upstream_target *t = &qe->targets->t[qe->order[qe->pos]];
	qt->active--;
	qe->qt = NULL;
	blob_free(qe->env.body);
	qe->env.body = NULL;
	char dtext[300];
	log_escape(dtext, sizeof(dtext), r->text, strlen(r->text));
	snprintf(qe->last, sizeof(qe->last), "%s: %d%s%s %s", t->name, r->code, *r->enh ? " " : "",
	         r->enh, dtext);
	if (qe->deleted) {
		queue_release_routes(qe);
		queue_remove(qe);
		queue_wake_target(qt);
		return;
	}
	if (r->status == SMTPC_CONNFAIL) {
		upstream_mark_dead(t, mx_clock_mono_ms() + (uint64_t)qe->routes.cfg->t_down_retry);
		snprintf(qe->last, sizeof(qe->last), "%s at %s: %s", t->name, r->stage, dtext);
		qe->pos++;
		queue_wake_target(qt);
		queue_try_target(qe);
		return;
	}
	upstream_mark_alive(t);
	/* refused at MAIL, or at the DATA command: the transaction's reply
	 * decides for every recipient, not what came back for each (after a
	 * refused MAIL, Postfix answers each RCPT "503 5.5.1 need MAIL
	 * command", which used to bounce the message for good on a 451 at
	 * MAIL; a 554 to DATA left them pending for the queue's lifetime) */
	bool at_mail = r->status != SMTPC_OK && r->stage != NULL && strcmp(r->stage, "mail") == 0;
	bool at_data = r->status != SMTPC_OK && r->stage != NULL && strcmp(r->stage, "data") == 0;
	char why[sizeof(qe->last)];
	snprintf(why, sizeof(why), "%d%s%s %s", r->code, *r->enh ? " " : "", r->enh, dtext);
	for (size_t j = 0; j < qe->env.n_rcpt; j++) {
		size_t i = qe->map[j];
		int cls = qe->env.rcpt[j].code / 100;
		const char *own = qe->env.rcpt[j].reply[0] ? qe->env.rcpt[j].reply : "550 refused";
		const char *failed = NULL;
		if (at_mail || at_data) /* 4xx: all stay pending */
			failed = r->status == SMTPC_PERM && (at_mail || cls == 2) ? why
			         : at_data && cls == 5 ? own /* refused at RCPT: its own reply */
			                               : NULL;
		else if (cls == 2 && r->status == SMTPC_OK) {
			qe->e.done[i] = SPOOL_DELIVERED;
			qe->progress = true;
		} else if (cls == 5)
			failed = own;
		if (failed != NULL) {
			qe->e.done[i] = SPOOL_FAILED;
			spool_set_why(&qe->e, i, failed, "5.0.0");
			qe->progress = true;
		}
	}
	queue_settle(qe);
	queue_wake_target(qt);
}

static long long
queue_retry_delay(const struct mx_config *cfg, unsigned attempts)
{
	size_t n = cfg->n_queue_retry;
	if (n == 0)
		return 300;
	long long ms = 0;
	size_t i = attempts == 0 ? 0 : (attempts - 1 < n ? attempts - 1 : n - 1);
	if (config_parse_duration(cfg->queue_retry[i], &ms) < 0)
		ms = 300000;
	return ms / 1000 > 0 ? ms / 1000 : 1;
}

static void
queue_settle(struct qent *qe)
{
	struct queue *q = qe->q;
	struct spool_entry *e = &qe->e;
	const struct mx_config *cfg = qe->routes.cfg;
	time_t now = mx_clock_wall();
	e->attempts++;
	size_t delivered = 0, failed = 0;
	for (size_t i = 0; i < e->n_rcpt; i++) {
		delivered += e->done[i] == SPOOL_DELIVERED;
		failed += e->done[i] == SPOOL_FAILED;
	}
	size_t pending = queue_pending(e);
	mx_strlcpy(e->last, qe->last, sizeof(e->last));
	const char *reason = NULL, *status = NULL;
	if (pending > 0 && now - e->arrival >= cfg->queue_lifetime / 1000) {
		reason = "The message could not be delivered within the queue lifetime.";
		for (size_t i = 0; i < e->n_rcpt; i++) {
			if (e->done[i] != SPOOL_PENDING)
				continue;
			e->done[i] = SPOOL_FAILED;
			/* its last try's reply, if it had one, says more */
			const char *reply = reason;
			for (size_t j = 0; qe->map && j < qe->env.n_rcpt; j++)
				if (qe->map[j] == i && qe->env.rcpt[j].reply[0] && qe->env.rcpt[j].code / 100 != 2)
					reply = qe->env.rcpt[j].reply; /* an RCPT 250 says nothing */
			spool_set_why(e, i, reply, "5.4.7");
		}
		log_info("queue id=%s expired after %u attempts, %lld s; last: %s", e->id, e->attempts,
		         (long long)(now - e->arrival), qe->last);
		q->expired++;
		stats_inc(STAT_QUEUE_EXPIRED);
		status = "5.4.7";
		pending = 0;
	} else if (failed > 0 && qe->dsn_only) {
		/* the reason of the first try; after a restart it is not known */
		reason = qe->dsn_reason[0] ? qe->dsn_reason : "The message could not be delivered.";
		status = qe->dsn_status[0] ? qe->dsn_status : "5.0.0";
	} else if (failed > 0) {
		q->bounced++;
		reason = qe->route_failed ? qe->last : "The mailbox server refused the message for good.";
		status = "5.4.4";
	}
	bool reported = false;
	if (reason != NULL) {
		if (queue_bounce(qe, reason, status) == 0) {
			reported = true;
			qe->dsn_reason[0] = qe->dsn_status[0] = '\0';
		} else if (reason != qe->dsn_reason) {
			mx_strlcpy(qe->dsn_reason, reason, sizeof(qe->dsn_reason));
			mx_strlcpy(qe->dsn_status, status, sizeof(qe->dsn_status));
		}
	}
	/* a failed recipient whose DSN could not be queued keeps the message */
	if (pending == 0 && (reason == NULL || reported)) {
		log_info("queue id=%s result=%s delivered=%zu failed=%zu attempts=%u last=\"%s\"", e->id,
		         failed || delivered == 0 ? "bounced" : "delivered", delivered, failed, e->attempts,
		         qe->last);
		if (delivered)
			q->delivered++;
		stats_add(STAT_QUEUE_DELIVERED, delivered ? 1 : 0);
		queue_release_routes(qe);
		queue_remove(qe);
		return;
	}
	long long delay = queue_retry_delay(cfg, e->attempts);
	e->next = now + delay;
	log_info("queue id=%s result=deferred delivered=%zu failed=%zu pending=%zu attempts=%u "
	         "next=+%llds last=\"%s\"",
	         e->id, delivered, failed, pending, e->attempts, delay, qe->last);
	stats_inc(STAT_QUEUE_DEFERRED);
	/* flushed when recipients were settled or reported: fewer duplicates
	 * (deliveries, DSNs) after a crash */
	if (spool_save_state(q->dir, e, qe->progress || reported) < 0)
		log_err("queue id=%s cannot save its state: %s", e->id, strerror(errno));
	queue_release_routes(qe);
	queue_schedule(qe, e->next);
}

/* ---- manager thread --------------------------------------------------------- */

static void
queue_inbox_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;
	(void)fd;
	(void)what;
	pthread_mutex_lock(&q->ilock);
	char **ids = q->inbox;
	size_t n = q->n_inbox;
	q->inbox = NULL;
	q->n_inbox = q->cap_inbox = 0;
	pthread_mutex_unlock(&q->ilock);
	for (size_t i = 0; i < n; i++) {
		struct spool_entry se;
		if (spool_load(q->dir, ids[i], &se) == 0)
			queue_attempt(queue_ent_new(q, &se));
		else
			log_err("queue id=%s cannot be read back from the spool", ids[i]);
		free(ids[i]);
	}
	free(ids);
}

static void
queue_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;
	(void)fd;
	(void)what;
	event_base_loopbreak(q->base);
}

static void *
queue_manager_main(void *arg)
{
	struct queue *q = arg;
	event_base_dispatch(q->base);
	return NULL;
}

struct queue_load {
	struct queue *q;
	size_t n;
};

static int
queue_load_one(const char *id, void *arg)
{
	struct queue_load *l = arg;
	struct spool_entry se;
	if (spool_load(l->q->dir, id, &se) < 0) {
		log_err("queue: %s/q/%s.msg is damaged; left in place", l->q->dir, id);
		return 0;
	}
	atomic_fetch_add(&l->q->bytes, se.size);
	atomic_fetch_add(&l->q->count, 1);
	struct qent *qe = queue_ent_new(l->q, &se);
	/* a retry time more than a day off was set by a clock that ran ahead
	 * (corrected since; retry delays are minutes to hours): try now
	 * rather than sit until that date, past the queue's lifetime */
	time_t now = mx_clock_wall();
	if (se.next > now + 86400)
		se.next = now;
	if (qe->state == QE_WAIT)
		queue_schedule(qe, se.next);
	l->n++;
	return 0;
}

/* ---- control ------------------------------------------------------------ */

static int queue_ctl_exec(struct queue *q, const char *cmd, const char *arg, FILE *out);

static void
queue_ctl_read(struct bufferevent *bev, void *arg)
{
	struct queue *q = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;
	char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
	if (line == NULL) {
		if (evbuffer_get_length(in) > QUEUE_CTL_LINE)
			bufferevent_free(bev);
		return;
	}
	char *sp = strchr(line, ' ');
	if (sp)
		*sp = '\0';
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc = queue_ctl_exec(q, line, sp ? sp + 1 : NULL, f);
	fprintf(f, "%s\n", rc == 0 ? ".ok" : ".error");
	fclose(f);
	free(line);
	evbuffer_add(bufferevent_get_output(bev), buf, len);
	free(buf);
	bufferevent_disable(bev, EV_READ);
}

static void
queue_ctl_write(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (!(bufferevent_get_enabled(bev) & EV_READ))
		bufferevent_free(bev);
}

static void
queue_ctl_event(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	(void)arg;
	bufferevent_free(bev);
}

static void
queue_ctl_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                 void *arg)
{
	struct queue *q = arg;
	(void)l;
	(void)sa;
	(void)len;
	struct bufferevent *bev = bufferevent_socket_new(q->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(bev, queue_ctl_read, queue_ctl_write, queue_ctl_event, q);
	struct timeval tv = {10, 0};
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static const char *
queue_state_name(const struct qent *qe)
{
	static const char *const n[] = {"deferred", "waiting", "active", "held"};
	if (qe->state == QE_WAIT && qe->e.attempts == 0)
		return "new";
	return n[qe->state];
}

struct queue_list {
	FILE *out;
	time_t now;
	size_t n, held, deferred;
	uint64_t bytes;
	time_t oldest;
};

static void
queue_print_entry(FILE *out, const struct spool_entry *e, const char *state, time_t now)
{
	fprintf(out, "%s %zu %lld %s %u %lld <%s>", e->id, e->size, (long long)(now - e->arrival),
	        state, e->attempts, e->next > now ? (long long)(e->next - now) : 0LL, e->from);
	for (size_t i = 0; i < e->n_rcpt; i++)
		if (e->done[i] == SPOOL_PENDING)
			fprintf(out, " <%s>", e->rcpt[i]);
	fputc('\n', out);
}

static int
queue_list_one(const char *k, size_t kl, void *v, void *arg)
{
	(void)k;
	(void)kl;
	struct qent *qe = v;
	struct queue_list *l = arg;
	if (l->out)
		queue_print_entry(l->out, &qe->e, queue_state_name(qe), l->now);
	l->n++;
	l->bytes += qe->e.size;
	l->held += qe->state == QE_HELD;
	l->deferred += qe->state == QE_WAIT && qe->e.attempts > 0;
	if (l->oldest == 0 || qe->e.arrival < l->oldest)
		l->oldest = qe->e.arrival;
	return 0;
}

static void
queue_show(FILE *out, const struct spool_entry *e, const char *state)
{
	fprintf(out, "id: %s\nstate: %s\narrival: %lld\nsize: %zu\nfrom: <%s>\nattempts: %u\nnext: %lld\n",
	        e->id, state, (long long)e->arrival, e->size, e->from, e->attempts, (long long)e->next);
	for (size_t i = 0; i < e->n_rcpt; i++)
		fprintf(out, "rcpt: <%s> %s\n", e->rcpt[i],
		        e->done[i] == SPOOL_PENDING ? "pending" : e->done[i] == SPOOL_DELIVERED ? "delivered" : "failed");
	if (e->last[0])
		fprintf(out, "last: %s\n", e->last);
}

static int
queue_flush_one(const char *k, size_t kl, void *v, void *arg)
{
	(void)k;
	(void)kl;
	struct qent *qe = v;
	size_t *n = arg;
	if (qe->state == QE_WAIT) {
		evtimer_del(qe->timer);
		struct timeval tv = {0, 0};
		evtimer_add(qe->timer, &tv);
		(*n)++;
	}
	return 0;
}

static int
queue_ctl_exec(struct queue *q, const char *cmd, const char *arg, FILE *out)
{
	time_t now = mx_clock_wall();
	if (strcmp(cmd, "list") == 0 || strcmp(cmd, "stats") == 0) {
		struct queue_list l = {.out = strcmp(cmd, "list") == 0 ? out : NULL, .now = now};
		strmap_foreach(q->entries, queue_list_one, &l);
		if (l.out == NULL)
			fprintf(out, "messages %zu\nbytes %llu\nheld %zu\ndeferred %zu\noldest_age %lld\n"
			             "delivered %llu\nbounced %llu\nexpired %llu\n",
			        l.n, (unsigned long long)l.bytes, l.held, l.deferred,
			        l.oldest ? (long long)(now - l.oldest) : 0LL, (unsigned long long)q->delivered,
			        (unsigned long long)q->bounced, (unsigned long long)q->expired);
		return 0;
	}
	if (strcmp(cmd, "flush") == 0) {
		size_t n = 0;
		strmap_foreach(q->entries, queue_flush_one, &n);
		fprintf(out, "flushed %zu\n", n);
		return 0;
	}
	void *v = NULL;
	if (arg == NULL || !strmap_get(q->entries, arg, strlen(arg), &v)) {
		fprintf(out, "no such message: %s\n", arg ? arg : "(none)");
		return -1;
	}
	struct qent *qe = v;
	if (strcmp(cmd, "show") == 0) {
		queue_show(out, &qe->e, queue_state_name(qe));
		return 0;
	}
	if (strcmp(cmd, "delete") == 0) {
		if (qe->state == QE_ACTIVE) {
			log_info("queue id=%s deleted by the administrator", qe->e.id);
			qe->deleted = true; /* removed when the attempt returns */
		} else {
			/* the files first: a message whose files stay would be read
			 * back, and delivered, at the next start; it stays listed */
			if (spool_remove(qe->q->dir, qe->e.id) < 0) {
				fprintf(out, "could not delete %s: %s\n", arg, strerror(errno));
				return 1;
			}
			log_info("queue id=%s deleted by the administrator", qe->e.id);
			if (qe->state == QE_READY && qe->waiting != NULL) {
				struct qtarget *qt = qe->waiting;
				struct qent **pp = &qt->head, *prev = NULL;
				while (*pp && *pp != qe) {
					prev = *pp;
					pp = &(*pp)->wnext;
				}
				if (*pp) {
					*pp = qe->wnext;
					if (qt->tail == qe)
						qt->tail = prev;
				}
			}
			queue_release_routes(qe);
			queue_remove(qe);
		}
		fprintf(out, "deleted %s\n", arg);
		return 0;
	}
	if (strcmp(cmd, "hold") == 0 || strcmp(cmd, "release") == 0) {
		/* saved first: a hold that would not survive a restart is refused */
		bool was = qe->e.hold;
		qe->e.hold = cmd[0] == 'h';
		if (spool_save_state(q->dir, &qe->e, true) < 0) {
			int e = errno;
			qe->e.hold = was;
			log_err("queue id=%s cannot save its state for %s: %s", qe->e.id, cmd, strerror(e));
			fprintf(out, "cannot %s %s: saving its state failed: %s\n", cmd, arg, strerror(e));
			return -1;
		}
	}
	if (strcmp(cmd, "hold") == 0) {
		if (qe->state == QE_WAIT) {
			evtimer_del(qe->timer);
			qe->state = QE_HELD;
		}
		fprintf(out, "held %s\n", arg);
		return 0;
	}
	if (strcmp(cmd, "release") == 0) {
		if (qe->state == QE_HELD) {
			qe->state = QE_WAIT;
			queue_attempt(qe);
		}
		fprintf(out, "released %s\n", arg);
		return 0;
	}
	fprintf(out, "unknown command: %s\n", cmd);
	return -1;
}

/* ---- start/stop -------------------------------------------------------------- */

/* The spool's lock, held for the life of the gateway: a second one on
 * the same spool (an overlapping restart, a copy of the configuration)
 * would deliver every message twice, empty the first one's tmp/ under
 * its writers and take over its control socket. -1 when taken. */
static int
queue_lock(const char *dir, char *err, size_t errlen)
{
	if (fsutil_mkdirs(dir, 0750, err, errlen) < 0)
		return -1;
	char p[4200];
	snprintf(p, sizeof(p), "%s/lock", dir);
	int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", p, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			snprintf(err, errlen, "the queue %s is in use by another mxguard (it holds %s)", dir, p);
		else
			snprintf(err, errlen, "cannot lock %s: %s", p, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

struct queue *
queue_start(const struct queue_opts *o, char *err, size_t errlen)
{
	int lock_fd = queue_lock(o->dir, err, errlen);
	if (lock_fd < 0)
		return NULL;
	if (spool_prepare(o->dir, err, errlen) < 0) {
		close(lock_fd);
		return NULL;
	}
	struct queue *q = xcalloc(1, sizeof(*q));
	q->lock_fd = lock_fd;
	mx_strlcpy(q->dir, o->dir, sizeof(q->dir));
	mx_strlcpy(q->hostname, o->hostname ? o->hostname : "localhost", sizeof(q->hostname));
	q->o = *o;
	q->o.dir = q->dir;
	pthread_mutex_init(&q->jlock, NULL);
	pthread_cond_init(&q->jdone, NULL);
	pthread_cond_init(&q->jcond, NULL);
	pthread_mutex_init(&q->ilock, NULL);
	pthread_mutex_init(&q->slock, NULL);
	q->base = evbase_new();
	q->entries = strmap_new();
	q->targets = strmap_new();
	q->pool = smtpc_pool_new(q->base);
	q->dns = dns_new(q->base, o->resolver, o->dns_timeout_ms, err, errlen);
	if (q->dns == NULL) {
		smtpc_pool_free(q->pool);
		strmap_free(q->entries);
		strmap_free(q->targets);
		event_base_free(q->base);
		close(q->lock_fd);
		free(q);
		return NULL;
	}
	q->inbox_ev = event_new(q->base, -1, EV_PERSIST, queue_inbox_cb, q);
	event_add(q->inbox_ev, NULL);
	q->stop_ev = event_new(q->base, -1, 0, queue_stop_cb, q);

	/* the control socket */
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/control", q->dir) >=
	    (int)sizeof(sun.sun_path)) {
		snprintf(err, errlen, "queue.path too long for a control socket");
		goto fail;
	}
	unlink(sun.sun_path);
	mode_t old = umask(077);
	q->ctl = evconnlistener_new_bind(q->base, queue_ctl_accept, q, LEV_OPT_CLOSE_ON_FREE, 16,
	                                 (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (q->ctl == NULL) {
		snprintf(err, errlen, "cannot listen on %s: %s", sun.sun_path, strerror(errno));
		goto fail;
	}

	struct queue_load l = {q, 0};
	spool_scan(q->dir, queue_load_one, &l);
	if (l.n)
		log_info("queue: %zu message%s read back from %s", l.n, l.n == 1 ? "" : "s", q->dir);
	q->n_writers = o->writers ? o->writers : 4;
	q->writers = xcalloc(q->n_writers, sizeof(pthread_t));
	for (unsigned i = 0; i < q->n_writers; i++)
		if (pthread_create(&q->writers[i], NULL, queue_writer_main, q) != 0)
			fatal("pthread_create");
	if (pthread_create(&q->manager, NULL, queue_manager_main, q) != 0)
		fatal("pthread_create");
	return q;
fail:
	dns_free(q->dns);
	smtpc_pool_free(q->pool);
	event_free(q->inbox_ev);
	event_free(q->stop_ev);
	strmap_free(q->entries);
	strmap_free(q->targets);
	event_base_free(q->base);
	close(q->lock_fd);
	free(q);
	return NULL;
}

static int
queue_free_ent(const char *k, size_t kl, void *v, void *arg)
{
	(void)k;
	(void)kl;
	(void)arg;
	struct qent *qe = v;
	queue_release_routes(qe);
	event_free(qe->timer);
	envelope_clear(&qe->env);
	spool_entry_clear(&qe->e);
	free(qe->map);
	free(qe);
	return 0;
}

void
queue_stop(struct queue *q)
{
	if (q == NULL)
		return;
	pthread_mutex_lock(&q->jlock);
	q->stopping = true;
	pthread_cond_broadcast(&q->jcond);
	pthread_mutex_unlock(&q->jlock);
	for (unsigned i = 0; i < q->n_writers; i++)
		pthread_join(q->writers[i], NULL);
	event_active(q->stop_ev, EV_READ, 0);
	pthread_join(q->manager, NULL);
	char path[4200];
	snprintf(path, sizeof(path), "%s/control", q->dir);
	unlink(path);
	evconnlistener_free(q->ctl);
	dns_free(q->dns);
	smtpc_pool_free(q->pool);
	strmap_foreach(q->entries, queue_free_ent, NULL);
	strmap_free(q->entries);
	strmap_free_values(q->targets);
	for (size_t i = 0; i < q->n_inbox; i++)
		free(q->inbox[i]);
	free(q->inbox);
	event_free(q->inbox_ev);
	event_free(q->stop_ev);
	event_base_free(q->base);
	free(q->writers);
	pthread_mutex_destroy(&q->jlock);
	pthread_cond_destroy(&q->jcond);
	pthread_cond_destroy(&q->jdone);
	pthread_mutex_destroy(&q->ilock);
	pthread_mutex_destroy(&q->slock);
	close(q->lock_fd); /* last: the spool is free for another gateway */
	free(q);
}

/* ---- clients ---------------------------------------------------------------- */

int
queue_client_ctl(const char *dir, const char *cmd, const char *arg, FILE *out)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/control", dir);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(fd);
		return -1;
	}
	char line[QUEUE_CTL_LINE];
	int n = snprintf(line, sizeof(line), "%s%s%s\n", cmd, arg ? " " : "", arg ? arg : "");
	if (n < 0 || (size_t)n >= sizeof(line)) { /* no message id is that long */
		fprintf(out, "no such message: %.40s...\n", arg ? arg : "");
		close(fd);
		return 1;
	}
	if (write(fd, line, (size_t)n) != n) {
		fprintf(out, "cannot send the command to the running gateway: %s\n", strerror(errno));
		close(fd);
		return 1;
	}
	/* the gateway listens from here on: an error is reported, never a
	 * reason to fall back to working on its spool files (-1) */
	FILE *f = fdopen(fd, "r");
	if (f == NULL) {
		fprintf(out, "cannot read the answer of the running gateway: %s\n", strerror(errno));
		close(fd);
		return 1;
	}
	char buf[4096];
	int rc = 1;
	while (fgets(buf, sizeof(buf), f) != NULL) {
		if (strcmp(buf, ".ok\n") == 0) {
			rc = 0;
			break;
		}
		if (strcmp(buf, ".error\n") == 0) {
			rc = 1;
			break;
		}
		fputs(buf, out);
	}
	fclose(f);
	return rc;
}

static int queue_offline_run(const char *dir, const char *cmd, const char *arg, FILE *out);

struct queue_offline {
	const char *dir;
	FILE *out;
	struct queue_list l;
};

static int
queue_offline_one(const char *id, void *arg)
{
	struct queue_offline *o = arg;
	struct spool_entry e;
	if (spool_load(o->dir, id, &e) < 0)
		return 0;
	if (o->out)
		queue_print_entry(o->out, &e, e.hold ? "held" : e.attempts ? "deferred" : "new", o->l.now);
	o->l.n++;
	o->l.bytes += e.size;
	o->l.held += e.hold;
	o->l.deferred += !e.hold && e.attempts > 0;
	if (o->l.oldest == 0 || e.arrival < o->l.oldest)
		o->l.oldest = e.arrival;
	spool_entry_clear(&e);
	return 0;
}

int
queue_offline_ctl(const char *dir, const char *cmd, const char *arg, FILE *out)
{
	/* a gateway that holds the spool but cannot be reached (its control
	 * socket removed, or not ours to open) is not worked around: its
	 * files are not edited behind its back */
	char lp[4200];
	snprintf(lp, sizeof(lp), "%s/lock", dir);
	int lfd = open(lp, O_RDONLY | O_CLOEXEC);
	if (lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
		fprintf(out, "a gateway runs on %s but its control socket %s/control cannot be reached\n",
		        dir, dir);
		close(lfd);
		return 1;
	}
	int rc = queue_offline_run(dir, cmd, arg, out);
	if (lfd >= 0)
		close(lfd);
	return rc;
}

static int
queue_offline_run(const char *dir, const char *cmd, const char *arg, FILE *out)
{
	time_t now = time(NULL);
	if (strcmp(cmd, "list") == 0 || strcmp(cmd, "stats") == 0) {
		struct queue_offline o = {dir, strcmp(cmd, "list") == 0 ? out : NULL, {.now = now}};
		if (spool_scan(dir, queue_offline_one, &o) < 0) {
			fprintf(out, "no queue in %s\n", dir);
			return 1;
		}
		if (o.out == NULL)
			fprintf(out, "messages %zu\nbytes %llu\nheld %zu\ndeferred %zu\noldest_age %lld\n",
			        o.l.n, (unsigned long long)o.l.bytes, o.l.held, o.l.deferred,
			        o.l.oldest ? (long long)(now - o.l.oldest) : 0LL);
		return 0;
	}
	if (strcmp(cmd, "flush") == 0) {
		fprintf(out, "mxguard is not running: nothing to flush into\n");
		return 1;
	}
	struct spool_entry e;
	if (arg == NULL || strchr(arg, '/') != NULL || spool_load(dir, arg, &e) < 0) {
		fprintf(out, "no such message: %s\n", arg ? arg : "(none)");
		return 1;
	}
	int rc = 0;
	if (strcmp(cmd, "show") == 0) {
		queue_show(out, &e, e.hold ? "held" : e.attempts ? "deferred" : "new");
	} else if (strcmp(cmd, "delete") == 0) {
		rc = spool_remove(dir, arg) < 0;
		if (rc)
			fprintf(out, "could not delete %s: %s\n", arg, strerror(errno));
		else
			fprintf(out, "deleted %s\n", arg);
	} else if (strcmp(cmd, "hold") == 0 || strcmp(cmd, "release") == 0) {
		e.hold = cmd[0] == 'h';
		rc = spool_save_state(dir, &e, true) < 0;
		if (rc)
			fprintf(out, "could not %s %s: %s\n", cmd, arg, strerror(errno));
		else
			fprintf(out, "%s %s\n", e.hold ? "held" : "released", arg);
	} else {
		fprintf(out, "unknown command: %s\n", cmd);
		rc = 2;
	}
	spool_entry_clear(&e);
	return rc;
}
