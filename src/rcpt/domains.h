/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	domains - the hosted domains: is this recipient domain ours?
 * DESCRIPTION
 *	Everything not ours is a relay attempt (554 5.7.1).  Subdomains are
 *	ours only when the configuration says so.  Immutable after build.
 */
#ifndef MX_DOMAINS_H
#define MX_DOMAINS_H

#include <stdbool.h>

#include "config.h"

struct domain_set;

struct domain_set *domain_set_build(const struct mx_config *cfg);
void domain_set_free(struct domain_set *d);
/* domain must be lowercase (smtp_parse_path gives it so). */
bool domain_set_match(const struct domain_set *d, const char *domain);

#endif
