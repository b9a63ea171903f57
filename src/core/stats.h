/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	stats - process-wide counters with dotted names
 * DESCRIPTION
 *	Lock-free (relaxed atomics); read by the metrics endpoint and the
 *	shutdown summary.  The gauge of open sessions is here too.
 */
#ifndef MX_STATS_H
#define MX_STATS_H

#include <stdint.h>
#include <stdio.h>

enum stat_id {
#define STAT(id, name, help) STAT_##id,
#include "stats.def"
#undef STAT
	STAT__COUNT
};

void stats_add(enum stat_id id, uint64_t n);
static inline void
stats_inc(enum stat_id id)
{
	stats_add(id, 1);
}
uint64_t stats_get(enum stat_id id);
const char *stats_name(enum stat_id id);
const char *stats_help(enum stat_id id);
/* Writes all counters in Prometheus text format, the content filter's
 * (below) included. */
void stats_write_prometheus(FILE *f);

/* The content filter's counters: how often each symbol fired (by name;
 * the first 1,024 names seen, the rest together as "*") and a histogram
 * of the scores, both for graphs and for tuning rules and thresholds. */
#define STATS_SYMBOL_NAME_MAX 64
void stats_symbol_hit(const char *name);
uint64_t stats_symbol_get(const char *name); /* "*": the ones not counted by name */
void stats_score_observe(double score);
/* stats_write_prometheus() writes them as mxguard_content_symbol_total
 * {symbol="NAME"} and the histogram mxguard_content_score. */

#endif
