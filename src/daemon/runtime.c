/* SPDX-License-Identifier: MIT */
#include "runtime.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery.h"
#include "log.h"
#include "tls.h"
#include "xalloc.h"

static pthread_mutex_t runtime_lock = PTHREAD_MUTEX_INITIALIZER;
static struct runtime *runtime_cur;
static uint64_t runtime_gen;

static void
runtime_free(struct runtime *rt)
{
	if (rt == NULL)
		return;
	scanner_free(rt->scanner);
	harvest_free(rt->harvest);
	rcpt_map_free(rt->rcpt);
	domain_set_free(rt->domains);
	upstream_set_free(rt->ups);
	upstream_set_free(rt->bounce);
	if (rt->tls)
		tls_ctx_free(rt->tls);
	config_unref(rt->cfg);
	free(rt);
}

struct runtime *
runtime_build(const char *path, struct config_errors *errs, struct classifier *cls,
              struct store *store)
{
	size_t before = errs->n;
	struct mx_config *cfg = config_load(path, errs);
	if (cfg == NULL)
		return NULL;
	struct runtime *rt = xcalloc(1, sizeof(*rt));
	atomic_init(&rt->refs, 1);
	rt->cfg = cfg;
	rt->domains = domain_set_build(cfg);
	rt->store = store;
	rt->rcpt = rcpt_map_build(cfg, store, errs);
	rt->harvest = harvest_build(cfg, errs);
	rt->ups = upstream_set_build(cfg, errs);
	if (rt->ups != NULL) {
		for (size_t i = 0; i < rt->ups->n; i++) {
			if (rt->ups->t[i].proto != UPSTREAM_FILE)
				continue;
			char err[300];
			if (deliver_file_prepare(rt->ups->t[i].dir, err, sizeof(err)) < 0)
				config_error(errs, "%s: downstream %s: %s", cfg->path, rt->ups->t[i].name, err);
		}
	}
	if (cfg->queue_bounce != NULL) {
		struct config_downstream bd = {cfg->queue_bounce, 0, 0};
		struct mx_config tmp = *cfg;
		tmp.down = &bd;
		tmp.n_down = 1;
		rt->bounce = upstream_set_build(&tmp, errs);
	}
	if (cfg->tls_cert != NULL) {
		char err[512];
		rt->tls = tls_server_ctx_new(cfg->tls_cert, cfg->tls_key, cfg->tls_protocols,
		                             cfg->tls_ciphers, err, sizeof(err));
		if (rt->tls == NULL)
			config_error(errs, "%s: tls: %s", cfg->path, err);
	}
	struct rules *rules = rules_load(cfg->rules_path, errs);
	if (rules != NULL)
		rt->scanner = scanner_new(cfg, rules, cls);
	if (errs->n != before) {
		runtime_free(rt);
		return NULL;
	}
	return rt;
}

struct runtime *
runtime_ref(struct runtime *rt)
{
	atomic_fetch_add(&rt->refs, 1);
	return rt;
}

void
runtime_unref(struct runtime *rt)
{
	if (rt != NULL && atomic_fetch_sub(&rt->refs, 1) == 1)
		runtime_free(rt);
}

void
runtime_publish(struct runtime *rt)
{
	pthread_mutex_lock(&runtime_lock);
	struct runtime *old = runtime_cur;
	if (rt != NULL)
		rt->generation = ++runtime_gen;
	runtime_cur = rt;
	pthread_mutex_unlock(&runtime_lock);
	runtime_unref(old);
}

struct runtime *
runtime_current(void)
{
	pthread_mutex_lock(&runtime_lock);
	struct runtime *rt = runtime_cur ? runtime_ref(runtime_cur) : NULL;
	pthread_mutex_unlock(&runtime_lock);
	return rt;
}

void
runtime_describe(const struct runtime *rt, char *buf, size_t len)
{
	const struct mx_config *c = rt->cfg;
	char down[400] = "";
	size_t o = 0;
	for (size_t i = 0; i < rt->ups->n && o < sizeof(down) - 1; i++)
		o += (size_t)snprintf(down + o, sizeof(down) - o, "%s%s(prio %d)", i ? "," : "",
		                      rt->ups->t[i].name, rt->ups->t[i].priority);
	snprintf(buf, len, "config=%s generation=%llu domains=%zu recipients=\"%s\" downstream=%s tls=%s "
	         "content=%s harvest=%s",
	         c->path, (unsigned long long)rt->generation, c->n_domains, rcpt_map_describe(rt->rcpt),
	         down, rt->tls ? "yes" : "no", c->content_enabled ? "on" : "off",
	         rt->harvest ? "on" : "off");
}
