/* SPDX-License-Identifier: MIT */
#include "daemon.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>

#include "classifier.h"
#include "connlimit.h"
#include "evbase.h"
#include "log.h"
#include "netaddr.h"
#include "queue.h"
#include "runtime.h"
#include "stats.h"
#include "store.h"
#include "syncer.h"
#include "str.h"
#include "worker.h"
#include "xalloc.h"

struct daemon {
	const char *path;
	struct store *store;
	struct classifier *cls;
	struct queue *queue;
	struct syncer *syncer; /* directory replica */
	struct event_base *base;
	struct worker **workers;
	int n_workers;
	struct connlimit *connlimit;
	struct event *sig_hup, *sig_term, *sig_int, *sig_usr1, *deadline, *poll, *sweep;
	struct store_sweep sweeps[3]; /* places in the prefixes daemon_sweep() walks */
	struct evhttp *http;
	bool stopping;
	int exit_code;
};

/* The entries that expire (the answer cache, the harvest counters and
 * blocks) are removed once expired: their keys are the addresses and
 * clients senders choose, and a store nobody sweeps fills (at the default
 * 4 GB after some 25 million unknown recipients). Every second, up to
 * 20,000 entries of each prefix are looked at, in one write transaction
 * each, which commits only when it removed some. */
static void
daemon_sweep(evutil_socket_t fd, short what, void *arg)
{
	static const char *const prefixes[] = {"rc:", "hv:", "hb:"};
	struct daemon *d = arg;
	(void)fd;
	(void)what;
	if (d->stopping || d->store == NULL)
		return;
	long removed = 0;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		long n = store_sweep(d->store, prefixes[i], &d->sweeps[i], 20000);
		if (n > 0)
			removed += n;
	}
	if (removed > 0) {
		stats_add(STAT_STORE_EXPIRED, (uint64_t)removed);
		log_debug("store: %ld expired entries removed", removed);
	}
}

static void
daemon_log_errors(struct config_errors *errs, const char *prefix)
{
	for (size_t i = 0; i < errs->n; i++)
		log_err("%s%s", prefix, errs->msg[i]);
	if (errs->dropped)
		log_err("%s(%zu more errors)", prefix, errs->dropped);
}

static void
daemon_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* One listening socket; SO_REUSEPORT so every worker has its own. */
static int
daemon_listen_socket(const struct netaddr *na, char *err, size_t errlen)
{
	int fd = socket(na->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (na->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&na->ss, na->len) < 0 || listen(fd, 4096) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void
daemon_reload(struct daemon *d)
{
	struct config_errors errs = {0};
	log_info("reload: reading %s", d->path);
	struct runtime *rt = runtime_build(d->path, &errs, d->cls, d->store);
	if (rt == NULL) {
		daemon_log_errors(&errs, "reload: ");
		log_err("reload: refused; the running configuration stays in force");
		stats_inc(STAT_CONFIG_RELOAD_FAIL);
		config_errors_clear(&errs);
		return;
	}
	struct runtime *old = runtime_current();
	const struct mx_config *a = old->cfg, *b = rt->cfg;
	bool listen_changed = a->n_listen != b->n_listen || a->workers != b->workers;
	for (size_t i = 0; !listen_changed && i < a->n_listen; i++)
		listen_changed = strcmp(a->listen[i], b->listen[i]) != 0;
	if (listen_changed)
		log_warn("reload: 'listen' and 'workers' changes take effect at the next restart");
	if (strcmp(a->store_path, b->store_path) != 0)
		log_warn("reload: 'store.path' changes take effect at the next restart");
	if (strcmp(a->delivery_mode, b->delivery_mode) != 0 || strcmp(a->queue_path, b->queue_path) != 0)
		log_warn("reload: 'delivery' and 'queue.path' changes take effect at the next restart");
	runtime_unref(old);
	enum log_level lvl;
	if (log_level_parse(b->log_level, &lvl) == 0)
		log_set_level(lvl);
	runtime_publish(rt);
	char desc[1024];
	struct runtime *cur = runtime_current();
	runtime_describe(cur, desc, sizeof(desc));
	runtime_unref(cur);
	stats_inc(STAT_CONFIG_RELOAD);
	log_info("reload: done %s", desc);
	syncer_kick(d->syncer);
}

static void
daemon_log_stats(void)
{
	char line[2048];
	size_t o = 0;
	for (int i = 0; i < STAT__COUNT && o < sizeof(line) - 64; i++)
		o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%s=%llu", i ? " " : "",
		                      stats_name((enum stat_id)i),
		                      (unsigned long long)stats_get((enum stat_id)i));
	log_info("stats %s", line);
}

static void
daemon_check_done(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	(void)fd;
	(void)what;
	for (int i = 0; i < d->n_workers; i++)
		if (!atomic_load(&d->workers[i]->done))
			return;
	event_base_loopexit(d->base, NULL);
}

static void
daemon_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;
	(void)fd;
	(void)what;
	log_warn("shutdown: deadline reached; closing the remaining sessions");
	for (int i = 0; i < d->n_workers; i++)
		worker_post(d->workers[i], WORKER_STOP);
}

static void
daemon_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	(void)what;
	if (sig == SIGHUP) {
		if (!d->stopping)
			daemon_reload(d);
		return;
	}
	if (sig == SIGUSR1) {
		daemon_log_stats();
		return;
	}
	if (d->stopping) {
		log_warn("shutdown: second signal; closing now");
		for (int i = 0; i < d->n_workers; i++)
			worker_post(d->workers[i], WORKER_STOP);
		return;
	}
	d->stopping = true;
	struct runtime *rt = runtime_current();
	long long ms = rt->cfg->t_shutdown;
	runtime_unref(rt);
	log_info("shutdown: %s received; finishing transactions in flight (up to %lld s)",
	         sig == SIGTERM ? "SIGTERM" : "SIGINT", ms / 1000);
	for (int i = 0; i < d->n_workers; i++)
		worker_post(d->workers[i], WORKER_DRAIN);
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	d->deadline = evtimer_new(d->base, daemon_deadline, d);
	evtimer_add(d->deadline, &tv);
	struct timeval poll = {0, 50000};
	d->poll = event_new(d->base, -1, EV_PERSIST, daemon_check_done, d);
	event_add(d->poll, &poll);
}

/* ---- admin endpoint --------------------------------------------------------- */

static void
daemon_http_metrics(struct evhttp_request *req, void *arg)
{
	struct daemon *d = arg;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL) {
		evhttp_send_error(req, 500, "out of memory");
		return;
	}
	stats_write_prometheus(f);
	fprintf(f, "# HELP mxguard_sessions Open SMTP sessions\n# TYPE mxguard_sessions gauge\n"
	           "mxguard_sessions %d\n", connlimit_total(d->connlimit));
	uint64_t used, limit;
	if (d->store != NULL && store_usage(d->store, &used, &limit) == 0)
		fprintf(f, "# HELP mxguard_store_used_bytes Bytes the store's data take\n"
		           "# TYPE mxguard_store_used_bytes gauge\nmxguard_store_used_bytes %llu\n"
		           "# HELP mxguard_store_limit_bytes The most the store may take (store.size)\n"
		           "# TYPE mxguard_store_limit_bytes gauge\nmxguard_store_limit_bytes %llu\n",
		        (unsigned long long)used, (unsigned long long)limit);
	/* the model the gateway scores with: alert when it is missing or old */
	struct classifier_stats cs;
	if (d->cls != NULL && classifier_stats(d->cls, &cs) == 0) {
		fprintf(f, "# HELP mxguard_classifier_ready 1 when the classifier has a model to score with\n"
		           "# TYPE mxguard_classifier_ready gauge\nmxguard_classifier_ready %d\n",
		        cs.trained ? 1 : 0);
		if (cs.trained)
			fprintf(f,
			        "# HELP mxguard_classifier_examples Examples the model was trained on\n"
			        "# TYPE mxguard_classifier_examples gauge\n"
			        "mxguard_classifier_examples{class=\"spam\"} %llu\n"
			        "mxguard_classifier_examples{class=\"ham\"} %llu\n"
			        "# HELP mxguard_classifier_model_version Bumped by each retrain\n"
			        "# TYPE mxguard_classifier_model_version gauge\nmxguard_classifier_model_version %llu\n"
			        "# HELP mxguard_classifier_trained_timestamp_seconds When the model was trained (Unix time)\n"
			        "# TYPE mxguard_classifier_trained_timestamp_seconds gauge\n"
			        "mxguard_classifier_trained_timestamp_seconds %lld\n",
			        (unsigned long long)cs.spam, (unsigned long long)cs.ham,
			        (unsigned long long)cs.model_version, (long long)cs.trained_at);
	}
	fclose(f);
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, buf, len);
	free(buf);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	                  "text/plain; version=0.0.4");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void
daemon_http_health(struct evhttp_request *req, void *arg)
{
	struct daemon *d = arg;
	struct evbuffer *b = evbuffer_new();
	evbuffer_add_printf(b, "%s\n", d->stopping ? "stopping" : "ok");
	evhttp_send_reply(req, d->stopping ? 503 : 200, d->stopping ? "Stopping" : "OK", b);
	evbuffer_free(b);
}

static int
daemon_admin_start(struct daemon *d, const char *listen)
{
	struct netaddr na;
	char err[200];
	if (netaddr_parse(listen, &na) < 0) {
		log_err("admin.listen \"%s\": expected IP:PORT", listen);
		return -1;
	}
	int fd = daemon_listen_socket(&na, err, sizeof(err));
	if (fd < 0) {
		log_err("admin.listen %s: %s", listen, err);
		return -1;
	}
	d->http = evhttp_new(d->base);
	if (evhttp_accept_socket(d->http, fd) < 0) {
		close(fd);
		return -1;
	}
	/* a scrape is a small GET: anything bigger, slower or longer is cut
	 * off (no limits used to let one client buffer 512 MB of body, spend
	 * 19 s of CPU on a 64 MB header line, or hold connections idle for
	 * good, on the main loop) */
	evhttp_set_allowed_methods(d->http, EVHTTP_REQ_GET);
	evhttp_set_max_headers_size(d->http, 16 * 1024);
	evhttp_set_max_body_size(d->http, 0);
	evhttp_set_timeout(d->http, 10);
	evhttp_set_cb(d->http, "/metrics", daemon_http_metrics, d);
	evhttp_set_cb(d->http, "/health", daemon_http_health, d);
	log_info("admin endpoint on http://%s/ (/metrics, /health)", listen);
	return 0;
}

/* ---- queue routes: the current runtime, lent for one delivery attempt ------ */

static int
daemon_queue_acquire(void *arg, struct queue_routes *out)
{
	(void)arg;
	struct runtime *rt = runtime_current();
	if (rt == NULL)
		return -1;
	out->cfg = rt->cfg;
	out->downstream = rt->ups;
	out->bounce = rt->bounce;
	out->token = rt;
	return 0;
}

static void
daemon_queue_release(void *arg, void *token)
{
	(void)arg;
	runtime_unref(token);
}

/* ---- serve ------------------------------------------------------------------ */

int
daemon_serve(const char *config_path, bool use_syslog)
{
	log_init("mxguard", use_syslog);
	signal(SIGPIPE, SIG_IGN);
	daemon_raise_nofile();
	if (evthread_use_pthreads() < 0)
		fatalx("evthread_use_pthreads failed");

	struct config_errors errs = {0};
	struct daemon d = {.path = config_path};
	/* a reload or a stats request while starting (a large recipients file
	 * takes a while) must not kill the process, as their default actions
	 * do: ignored until the loop's handlers are in place */
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	/* the store outlives reloads: open it from the file as it is now */
	struct mx_config *first = config_load(config_path, &errs);
	if (first != NULL) {
		char err[512];
		struct store_opts so = {first->store_path, (size_t)first->store_size, false};
		d.store = store_open(&so, err, sizeof(err));
		if (d.store == NULL)
			config_error(&errs, "%s: store: %s", config_path, err);
		else
			d.cls = classifier_open(d.store);
		config_unref(first);
	}
	struct runtime *rt = errs.n ? NULL : runtime_build(config_path, &errs, d.cls, d.store);
	if (rt == NULL) {
		daemon_log_errors(&errs, "");
		config_errors_clear(&errs);
		log_err("not started: fix the configuration (mxguard check-config %s)", config_path);
		return 1;
	}
	enum log_level lvl;
	if (log_level_parse(rt->cfg->log_level, &lvl) == 0)
		log_set_level(lvl);

	const struct mx_config *cfg = rt->cfg;
	d.n_workers = cfg->workers > 0 ? cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (d.n_workers < 1)
		d.n_workers = 1;

	/* sockets first: a port in use is reported before anything starts */
	size_t nl = cfg->n_listen;
	int *fds = xcalloc((size_t)d.n_workers * nl, sizeof(int));
	for (size_t i = 0; i < nl; i++) {
		struct netaddr na;
		if (netaddr_parse(cfg->listen[i], &na) < 0) {
			log_err("%s: listen \"%s\": expected IP:PORT or [IPv6]:PORT", cfg->path, cfg->listen[i]);
			return 1;
		}
		for (int w = 0; w < d.n_workers; w++) {
			char err[200];
			int fd = daemon_listen_socket(&na, err, sizeof(err));
			if (fd < 0) {
				log_err("cannot listen on %s: %s", cfg->listen[i], err);
				return 1;
			}
			fds[(size_t)w * nl + i] = fd;
		}
	}

	d.base = evbase_new();
	d.connlimit = connlimit_new();
	runtime_publish(rt);
	char desc[1024];
	rt = runtime_current();
	runtime_describe(rt, desc, sizeof(desc));
	if (cfg->admin_listen != NULL && daemon_admin_start(&d, cfg->admin_listen) < 0)
		return 1;
	runtime_unref(rt);

	if (strcmp(cfg->delivery_mode, "queue") == 0) {
		char err[512];
		struct queue_opts qo = {
			.dir = cfg->queue_path,
			.writers = (unsigned)cfg->queue_writers,
			.hostname = cfg->hostname,
			.resolver = cfg->dns_resolver,
			.dns_timeout_ms = cfg->dns_timeout,
			.acquire = daemon_queue_acquire,
			.release = daemon_queue_release,
		};
		d.queue = queue_start(&qo, err, sizeof(err));
		if (d.queue == NULL) {
			log_err("queue: %s", err);
			return 1;
		}
	}
	d.workers = xcalloc((size_t)d.n_workers, sizeof(*d.workers));
	for (int w = 0; w < d.n_workers; w++) {
		d.workers[w] = worker_new(w, fds + (size_t)w * nl, nl, d.connlimit, d.queue, d.store);
		if (worker_start(d.workers[w]) < 0)
			fatal("pthread_create");
	}
	free(fds);

	d.syncer = syncer_start();
	d.sig_hup = evsignal_new(d.base, SIGHUP, daemon_signal, &d);
	d.sig_term = evsignal_new(d.base, SIGTERM, daemon_signal, &d);
	d.sig_int = evsignal_new(d.base, SIGINT, daemon_signal, &d);
	d.sig_usr1 = evsignal_new(d.base, SIGUSR1, daemon_signal, &d);
	evsignal_add(d.sig_hup, NULL);
	evsignal_add(d.sig_term, NULL);
	evsignal_add(d.sig_int, NULL);
	evsignal_add(d.sig_usr1, NULL);
	if (d.store != NULL) {
		d.sweep = event_new(d.base, -1, EV_PERSIST, daemon_sweep, &d);
		struct timeval second = {1, 0};
		evtimer_add(d.sweep, &second);
	}

	struct runtime *cur = runtime_current();
	char listens[512] = "";
	size_t o = 0;
	for (size_t i = 0; i < cur->cfg->n_listen && o < sizeof(listens); i++)
		o += (size_t)snprintf(listens + o, sizeof(listens) - o, "%s%s", i ? "," : "",
		                      cur->cfg->listen[i]);
	runtime_unref(cur);
	log_info("mxguard %s started pid=%d workers=%d listen=%s %s", MX_VERSION, (int)getpid(),
	         d.n_workers, listens, desc);

	event_base_dispatch(d.base);

	for (int w = 0; w < d.n_workers; w++)
		worker_join_free(d.workers[w]);
	free(d.workers);
	queue_stop(d.queue); /* after the workers: their sessions may wait for it */
	syncer_stop(d.syncer);
	daemon_log_stats();
	log_info("mxguard stopped");
	event_free(d.sig_hup);
	event_free(d.sig_term);
	event_free(d.sig_int);
	event_free(d.sig_usr1);
	if (d.deadline)
		event_free(d.deadline);
	if (d.poll)
		event_free(d.poll);
	if (d.sweep)
		event_free(d.sweep);
	if (d.http)
		evhttp_free(d.http);
	event_base_free(d.base);
	connlimit_free(d.connlimit);
	runtime_publish(NULL);
	classifier_close(d.cls);
	store_close(d.store);
	libevent_global_shutdown();
	return 0;
}
