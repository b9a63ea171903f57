/* SPDX-License-Identifier: MIT */
#include "domains.h"

#include <stdlib.h>
#include <string.h>

#include "strmap.h"
#include "xalloc.h"

struct domain_set {
	struct strmap *map;
	bool subdomains;
};

struct domain_set *
domain_set_build(const struct mx_config *cfg)
{
	struct domain_set *d = xcalloc(1, sizeof(*d));
	d->map = strmap_new();
	d->subdomains = cfg->subdomains;
	for (size_t i = 0; i < cfg->n_domains; i++)
		strmap_put(d->map, cfg->domains[i], strlen(cfg->domains[i]), NULL);
	return d;
}

void
domain_set_free(struct domain_set *d)
{
	if (d == NULL)
		return;
	strmap_free(d->map);
	free(d);
}

bool
domain_set_match(const struct domain_set *d, const char *domain)
{
	if (strmap_get(d->map, domain, strlen(domain), NULL))
		return true;
	if (!d->subdomains)
		return false;
	for (const char *p = strchr(domain, '.'); p != NULL; p = strchr(p + 1, '.'))
		if (p[1] != '\0' && strmap_get(d->map, p + 1, strlen(p + 1), NULL))
			return true;
	return false;
}
