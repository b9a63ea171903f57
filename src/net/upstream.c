/* SPDX-License-Identifier: MIT */
#include "upstream.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/un.h>

#include "netaddr.h"
#include "str.h"
#include "xalloc.h"

static void
upstream_add(struct upstream_set *s, size_t *cap, const struct upstream_target *t)
{
	s->t = xgrow(s->t, cap, s->n + 1, sizeof(*s->t));
	memcpy(&s->t[s->n], t, sizeof(*t));
	atomic_init(&s->t[s->n].dead_until, 0);
	s->n++;
}

/* Parses one target; may add several (a name with several addresses). */
static int
upstream_parse(struct upstream_set *s, size_t *cap, const struct config_downstream *d,
               const char *file, struct config_errors *errs)
{
	struct upstream_target t;
	memset(&t, 0, sizeof(t));
	t.priority = d->priority;
	const char *spec = d->target;
	mx_strlcpy(t.name, spec, sizeof(t.name));
	if (strncmp(spec, "file:", 5) == 0) {
		t.proto = UPSTREAM_FILE;
		if (spec[5] == '\0' || mx_strlcpy(t.dir, spec + 5, sizeof(t.dir)) < 0) {
			config_error(errs, "%s:%d: downstream \"%s\": file: needs a directory", file,
			             d->line, spec);
			return -1;
		}
		upstream_add(s, cap, &t);
		return 0;
	}
	if (strncmp(spec, "mx:", 3) == 0) {
		t.proto = UPSTREAM_MX;
		const char *dom = spec + 3, *colon = strchr(dom, ':');
		unsigned long long port = 25;
		if (colon != NULL && (mx_parse_u64(colon + 1, strlen(colon + 1), &port) < 0 || port == 0 ||
		                      port > 65535)) {
			config_error(errs, "%s:%d: downstream \"%s\": bad port", file, d->line, spec);
			return -1;
		}
		size_t dl = colon ? (size_t)(colon - dom) : strlen(dom);
		if (dl == 0 || mx_strlcpyn(t.dir, dom, dl, sizeof(t.dir)) < 0) {
			config_error(errs, "%s:%d: downstream \"%s\": mx: needs a domain", file, d->line, spec);
			return -1;
		}
		t.port = (int)port;
		upstream_add(s, cap, &t);
		return 0;
	}
	t.proto = strncmp(spec, "lmtp:", 5) == 0 ? UPSTREAM_LMTP : UPSTREAM_SMTP;
	const char *rest = spec + 5;
	if (t.proto == UPSTREAM_LMTP && rest[0] == '/') {
		struct sockaddr_un *sun = (struct sockaddr_un *)&t.addr;
		sun->sun_family = AF_UNIX;
		if (mx_strlcpy(sun->sun_path, rest, sizeof(sun->sun_path)) < 0) {
			config_error(errs, "%s:%d: downstream \"%s\": socket path too long", file, d->line,
			             spec);
			return -1;
		}
		t.addrlen = sizeof(*sun);
		upstream_add(s, cap, &t);
		return 0;
	}
	struct netaddr na;
	if (netaddr_parse(rest, &na) == 0) {
		if (netaddr_port((struct sockaddr *)&na.ss) == 0) {
			config_error(errs, "%s:%d: downstream \"%s\": bad port", file, d->line, spec);
			return -1;
		}
		memcpy(&t.addr, &na.ss, na.len);
		t.addrlen = na.len;
		upstream_add(s, cap, &t);
		return 0;
	}
	/* HOST:PORT with a name: resolve now */
	const char *colon = strrchr(rest, ':');
	char host[256];
	if (colon == NULL || colon == rest ||
	    mx_strlcpyn(host, rest, (size_t)(colon - rest), sizeof(host)) < 0) {
		config_error(errs, "%s:%d: downstream \"%s\": expected HOST:PORT after %.5s", file,
		             d->line, spec, spec);
		return -1;
	}
	unsigned long long port;
	if (mx_parse_u64(colon + 1, strlen(colon + 1), &port) < 0 || port == 0 || port > 65535) {
		config_error(errs, "%s:%d: downstream \"%s\": bad port", file, d->line, spec);
		return -1;
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC}, *res, *ai;
	int rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0) {
		config_error(errs, "%s:%d: downstream \"%s\": cannot resolve %s: %s", file, d->line,
		             spec, host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if ((size_t)ai->ai_addrlen > sizeof(t.addr))
			continue;
		memcpy(&t.addr, ai->ai_addr, ai->ai_addrlen);
		t.addrlen = ai->ai_addrlen;
		char a[NETADDR_STRLEN];
		netaddr_str(ai->ai_addr, a, sizeof(a));
		snprintf(t.name, sizeof(t.name), "%.5s%s(%s)", spec, host, a);
		upstream_add(s, cap, &t);
	}
	freeaddrinfo(res);
	return 0;
}

struct upstream_set *
upstream_set_build(const struct mx_config *cfg, struct config_errors *errs)
{
	struct upstream_set *s = xcalloc(1, sizeof(*s));
	size_t cap = 0, before = errs->n;
	for (size_t i = 0; i < cfg->n_down; i++)
		upstream_parse(s, &cap, &cfg->down[i], cfg->path, errs);
	if (errs->n != before || s->n == 0) {
		if (errs->n == before)
			config_error(errs, "%s: no usable downstream", cfg->path);
		upstream_set_free(s);
		return NULL;
	}
	return s;
}

void
upstream_set_free(struct upstream_set *s)
{
	if (s == NULL)
		return;
	free(s->t);
	free(s);
}

static uint32_t
upstream_random(void)
{
	static _Thread_local uint64_t state;
	if (state == 0) {
		if (getrandom(&state, sizeof(state), 0) != sizeof(state) || state == 0)
			state = 0x2545f4914f6cdd1dull ^ (uint64_t)(uintptr_t)&state;
	}
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return (uint32_t)(state >> 16);
}

size_t
upstream_order(struct upstream_set *s, size_t *order, size_t max, uint64_t now_ms)
{
	size_t n = s->n < max ? s->n : max;
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	/* shuffle, then stable-sort by (dead, priority): equal keys stay random */
	for (size_t i = n; i > 1; i--) {
		size_t j = upstream_random() % i;
		size_t tmp = order[i - 1];
		order[i - 1] = order[j];
		order[j] = tmp;
	}
	for (size_t i = 1; i < n; i++) {
		size_t x = order[i];
		long kx = (atomic_load(&s->t[x].dead_until) > now_ms ? 1L << 20 : 0) + s->t[x].priority;
		size_t j = i;
		while (j > 0) {
			size_t y = order[j - 1];
			long ky = (atomic_load(&s->t[y].dead_until) > now_ms ? 1L << 20 : 0) +
			          s->t[y].priority;
			if (ky <= kx)
				break;
			order[j] = y;
			j--;
		}
		order[j] = x;
	}
	return n;
}

void
upstream_mark_dead(struct upstream_target *t, uint64_t until_ms)
{
	atomic_store(&t->dead_until, until_ms);
}

void
upstream_mark_alive(struct upstream_target *t)
{
	atomic_store(&t->dead_until, 0);
}
