/* SPDX-License-Identifier: MIT */
#include "connlimit.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"
#include "strmap.h"
#include "xalloc.h"

struct connlimit {
	pthread_mutex_t lock;
	struct strmap *per_ip; /* key -> (void *)(uintptr_t)count */
	int total;
};

struct connlimit *
connlimit_new(void)
{
	struct connlimit *cl = xcalloc(1, sizeof(*cl));
	pthread_mutex_init(&cl->lock, NULL);
	cl->per_ip = strmap_new();
	return cl;
}

void
connlimit_free(struct connlimit *cl)
{
	if (cl == NULL)
		return;
	strmap_free(cl->per_ip);
	pthread_mutex_destroy(&cl->lock);
	free(cl);
}

enum connlimit_rc
connlimit_acquire(struct connlimit *cl, const struct sockaddr *sa, int max_total, int max_per_ip)
{
	char key[NETADDR_STRLEN];
	netaddr_client_key(sa, key, sizeof(key));
	size_t kl = strlen(key);
	enum connlimit_rc rc = CONNLIMIT_OK;
	pthread_mutex_lock(&cl->lock);
	void *v = NULL;
	strmap_get(cl->per_ip, key, kl, &v);
	uintptr_t n = (uintptr_t)v;
	if (cl->total >= max_total)
		rc = CONNLIMIT_TOTAL;
	else if ((int)n >= max_per_ip)
		rc = CONNLIMIT_PER_IP;
	else {
		cl->total++;
		strmap_put(cl->per_ip, key, kl, (void *)(n + 1));
	}
	pthread_mutex_unlock(&cl->lock);
	return rc;
}

void
connlimit_release(struct connlimit *cl, const struct sockaddr *sa)
{
	char key[NETADDR_STRLEN];
	netaddr_client_key(sa, key, sizeof(key));
	size_t kl = strlen(key);
	pthread_mutex_lock(&cl->lock);
	void *v = NULL;
	if (strmap_get(cl->per_ip, key, kl, &v)) {
		uintptr_t n = (uintptr_t)v;
		if (n <= 1)
			strmap_del(cl->per_ip, key, kl);
		else
			strmap_put(cl->per_ip, key, kl, (void *)(n - 1));
	}
	cl->total--;
	pthread_mutex_unlock(&cl->lock);
}

int
connlimit_total(struct connlimit *cl)
{
	pthread_mutex_lock(&cl->lock);
	int t = cl->total;
	pthread_mutex_unlock(&cl->lock);
	return t;
}
