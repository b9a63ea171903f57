/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	dns - asynchronous lookups on an event loop (c-ares)
 * DESCRIPTION
 *	c-ares tells us which sockets it uses (the socket-state callback);
 *	each gets an event on our loop, and one timer runs ares_timeout().
 *	An MX resolution is a small job: the MX query, then one getaddrinfo
 *	per host in parallel; the targets are assembled when the last
 *	address lookup answers.
 */
#include "dns.h"

#include <arpa/inet.h>
#include <ares.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "str.h"
#include "xalloc.h"

#define DNS_SOCKS 16
#define DNS_MX_MAX 16
#define DNS_ADDRS 8

struct dns_sock {
	ares_socket_t fd;
	struct event *ev;
};

struct dns {
	struct event_base *base;
	ares_channel ch;
	struct dns_sock socks[DNS_SOCKS];
	struct event *timer;
	struct event *defer; /* answers that must not run inside the call */
};

static pthread_once_t dns_once = PTHREAD_ONCE_INIT;

static void
dns_init_lib(void)
{
	ares_library_init(ARES_LIB_INIT_ALL);
}

static void dns_arm_timer(struct dns *d);

static void
dns_io(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;
	ares_process_fd(d->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
	                (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	dns_arm_timer(d);
}

static void
dns_tick(evutil_socket_t fd, short what, void *arg)
{
	struct dns *d = arg;
	(void)fd;
	(void)what;
	ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_arm_timer(d);
}

static void
dns_arm_timer(struct dns *d)
{
	struct timeval max = {1, 0}, tv;
	struct timeval *t = ares_timeout(d->ch, &max, &tv);
	evtimer_add(d->timer, t);
}

static void
dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns *d = data;
	struct dns_sock *s = NULL, *free_slot = NULL;
	for (int i = 0; i < DNS_SOCKS; i++) {
		if (d->socks[i].ev != NULL && d->socks[i].fd == fd)
			s = &d->socks[i];
		else if (d->socks[i].ev == NULL && free_slot == NULL)
			free_slot = &d->socks[i];
	}
	if (s != NULL) {
		event_free(s->ev);
		s->ev = NULL;
	}
	if (!readable && !writable)
		return;
	if (s == NULL)
		s = free_slot;
	if (s == NULL) {
		log_err("dns: more than %d sockets", DNS_SOCKS);
		return;
	}
	s->fd = fd;
	s->ev = event_new(d->base, fd, (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0) | EV_PERSIST,
	                  dns_io, d);
	event_add(s->ev, NULL);
}

struct dns *
dns_new(struct event_base *base, const char *resolver, long long timeout_ms, char *err,
        size_t errlen)
{
	pthread_once(&dns_once, dns_init_lib);
	struct dns *d = xcalloc(1, sizeof(*d));
	d->base = base;
	struct ares_options o;
	memset(&o, 0, sizeof(o));
	o.sock_state_cb = dns_sock_state;
	o.sock_state_cb_data = d;
	o.timeout = (int)(timeout_ms > 0 ? timeout_ms : 5000);
	o.tries = 2;
	int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
	int rc = ares_init_options(&d->ch, &o, mask);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
		free(d);
		return NULL;
	}
	if (resolver != NULL) {
		rc = ares_set_servers_ports_csv(d->ch, resolver);
		if (rc != ARES_SUCCESS) {
			snprintf(err, errlen, "resolver \"%s\": %s", resolver, ares_strerror(rc));
			ares_destroy(d->ch);
			free(d);
			return NULL;
		}
	}
	d->timer = evtimer_new(base, dns_tick, d);
	return d;
}

void
dns_free(struct dns *d)
{
	if (d == NULL)
		return;
	ares_destroy(d->ch); /* answers every pending query with ARES_EDESTRUCTION */
	for (int i = 0; i < DNS_SOCKS; i++)
		if (d->socks[i].ev)
			event_free(d->socks[i].ev);
	event_free(d->timer);
	free(d);
}

/* ---- MX resolution -------------------------------------------------------- */

struct dns_mxhost {
	char name[256];
	int pref;
	struct sockaddr_storage addr[DNS_ADDRS];
	socklen_t addrlen[DNS_ADDRS];
	int naddr;
	int status; /* ares status of the address lookup */
};

struct dns_job {
	struct dns *d;
	char domain[256];
	int port;
	dns_targets_cb cb;
	void *arg;
	struct dns_mxhost hosts[DNS_MX_MAX];
	int nhosts, pending;
	bool temp;
	struct event *defer;
	enum dns_status status;
	struct upstream_set *set;
	char why[200];
};

static void
dns_job_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct dns_job *j = arg;
	(void)fd;
	(void)what;
	event_free(j->defer);
	j->cb(j->status, j->set, j->why, j->arg);
	free(j);
}

/* Answers from the loop, never from inside dns_mx_targets(). */
static void
dns_job_finish(struct dns_job *j, enum dns_status st, const char *why)
{
	j->status = st;
	mx_strlcpy(j->why, why ? why : "", sizeof(j->why));
	j->defer = evtimer_new(j->d->base, dns_job_deliver, j);
	struct timeval tv = {0, 0};
	evtimer_add(j->defer, &tv);
}

static int
dns_cmp_pref(const void *a, const void *b)
{
	const struct dns_mxhost *x = a, *y = b;
	return x->pref - y->pref;
}

static void
dns_job_assemble(struct dns_job *j)
{
	struct upstream_set *s = xcalloc(1, sizeof(*s));
	size_t total = 0;
	for (int i = 0; i < j->nhosts; i++)
		total += (size_t)j->hosts[i].naddr;
	if (total == 0) {
		free(s);
		bool temp = j->temp;
		for (int i = 0; i < j->nhosts; i++)
			temp = temp || (j->hosts[i].status != ARES_ENOTFOUND &&
			                j->hosts[i].status != ARES_ENODATA && j->hosts[i].status != ARES_SUCCESS);
		char why[200];
		snprintf(why, sizeof(why), "no address for the mail hosts of %s", j->domain);
		dns_job_finish(j, temp ? DNS_TEMPFAIL : DNS_NOTFOUND, why);
		return;
	}
	s->t = xcalloc(total, sizeof(*s->t));
	for (int i = 0; i < j->nhosts; i++) {
		struct dns_mxhost *h = &j->hosts[i];
		for (int k = 0; k < h->naddr; k++) {
			struct upstream_target *t = &s->t[s->n++];
			t->proto = UPSTREAM_SMTP;
			t->priority = h->pref;
			memcpy(&t->addr, &h->addr[k], h->addrlen[k]);
			t->addrlen = h->addrlen[k];
			char ip[INET6_ADDRSTRLEN] = "?";
			const struct sockaddr *sa = (const struct sockaddr *)&h->addr[k];
			inet_ntop(sa->sa_family,
			          sa->sa_family == AF_INET ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
			                                   : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr,
			          ip, sizeof(ip));
			snprintf(t->name, sizeof(t->name), "mx:%s(%s[%s]:%d)", j->domain, h->name, ip, j->port);
			atomic_init(&t->dead_until, 0);
		}
	}
	j->set = s;
	dns_job_finish(j, DNS_OK, NULL);
}

struct dns_addr_ctx {
	struct dns_job *j;
	int i;
};

static void
dns_addr_cb(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct dns_addr_ctx *c = arg;
	struct dns_job *j = c->j;
	struct dns_mxhost *h = &j->hosts[c->i];
	free(c);
	if (status == ARES_EDESTRUCTION) {
		if (res)
			ares_freeaddrinfo(res);
		if (--j->pending == 0)
			free(j);
		return;
	}
	h->status = status;
	if (status == ARES_SUCCESS && res != NULL) {
		for (struct ares_addrinfo_node *n = res->nodes; n && h->naddr < DNS_ADDRS; n = n->ai_next) {
			if ((size_t)n->ai_addrlen > sizeof(h->addr[0]))
				continue;
			memcpy(&h->addr[h->naddr], n->ai_addr, n->ai_addrlen);
			if (n->ai_family == AF_INET)
				((struct sockaddr_in *)&h->addr[h->naddr])->sin_port = htons((uint16_t)j->port);
			else
				((struct sockaddr_in6 *)&h->addr[h->naddr])->sin6_port = htons((uint16_t)j->port);
			h->addrlen[h->naddr] = n->ai_addrlen;
			h->naddr++;
		}
	}
	(void)timeouts;
	if (res != NULL)
		ares_freeaddrinfo(res);
	if (--j->pending == 0)
		dns_job_assemble(j);
}

static void
dns_lookup_hosts(struct dns_job *j)
{
	qsort(j->hosts, (size_t)j->nhosts, sizeof(j->hosts[0]), dns_cmp_pref);
	j->pending = j->nhosts;
	struct ares_addrinfo_hints hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int n = j->nhosts;
	for (int i = 0; i < n; i++) {
		struct dns_addr_ctx *c = xmalloc(sizeof(*c));
		c->j = j;
		c->i = i;
		ares_getaddrinfo(j->d->ch, j->hosts[i].name, NULL, &hints, dns_addr_cb, c);
	}
	dns_arm_timer(j->d);
}

static void
dns_mx_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct dns_job *j = arg;
	(void)timeouts;
	if (status == ARES_EDESTRUCTION) {
		free(j);
		return;
	}
	if (status == ARES_ENOTFOUND) { /* NXDOMAIN */
		dns_job_finish(j, DNS_NOTFOUND, "the domain does not exist");
		return;
	}
	struct ares_mx_reply *mx = NULL;
	if (status == ARES_SUCCESS && ares_parse_mx_reply(abuf, alen, &mx) == ARES_SUCCESS) {
		for (struct ares_mx_reply *m = mx; m != NULL && j->nhosts < DNS_MX_MAX; m = m->next) {
			if (m->host[0] == '\0' || strcmp(m->host, ".") == 0) {
				/* RFC 7505 null MX */
				ares_free_data(mx);
				dns_job_finish(j, DNS_NOTFOUND, "the domain accepts no mail (null MX)");
				return;
			}
			mx_strlcpy(j->hosts[j->nhosts].name, m->host, sizeof(j->hosts[0].name));
			j->hosts[j->nhosts].pref = m->priority;
			j->nhosts++;
		}
		ares_free_data(mx);
	} else if (status != ARES_ENODATA && status != ARES_SUCCESS) {
		char why[200];
		snprintf(why, sizeof(why), "MX lookup for %s: %s", j->domain, ares_strerror(status));
		dns_job_finish(j, DNS_TEMPFAIL, why);
		return;
	}
	if (j->nhosts == 0) { /* no MX: the domain itself is its mail host */
		mx_strlcpy(j->hosts[0].name, j->domain, sizeof(j->hosts[0].name));
		j->hosts[0].pref = 0;
		j->nhosts = 1;
	}
	dns_lookup_hosts(j);
}

void
dns_mx_targets(struct dns *d, const char *domain, int port, dns_targets_cb cb, void *arg)
{
	struct dns_job *j = xcalloc(1, sizeof(*j));
	j->d = d;
	mx_strlcpy(j->domain, domain, sizeof(j->domain));
	j->port = port;
	j->cb = cb;
	j->arg = arg;
	ares_query(d->ch, domain, 1 /* C_IN */, 15 /* T_MX */, dns_mx_cb, j);
	dns_arm_timer(d);
}
