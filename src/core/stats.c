/* SPDX-License-Identifier: MIT */
#include "stats.h"

#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic uint64_t stats_values[STAT__COUNT];

static const char *const stats_names[] = {
#define STAT(id, name, help) name,
#include "stats.def"
#undef STAT
};
static const char *const stats_helps[] = {
#define STAT(id, name, help) help,
#include "stats.def"
#undef STAT
};

void
stats_add(enum stat_id id, uint64_t n)
{
	atomic_fetch_add_explicit(&stats_values[id], n, memory_order_relaxed);
}

uint64_t
stats_get(enum stat_id id)
{
	return atomic_load_explicit(&stats_values[id], memory_order_relaxed);
}

const char *
stats_name(enum stat_id id)
{
	return stats_names[id];
}

const char *
stats_help(enum stat_id id)
{
	return stats_helps[id];
}

static void stats_write_content_prometheus(FILE *f);

void
stats_write_prometheus(FILE *f)
{
	for (int i = 0; i < STAT__COUNT; i++) {
		char name[128];
		size_t o = 0;
		for (const char *p = "mxguard_"; *p; p++)
			name[o++] = *p;
		for (const char *p = stats_names[i]; *p && o < sizeof(name) - 8; p++)
			name[o++] = *p == '.' ? '_' : *p;
		name[o] = '\0';
		fprintf(f, "# HELP %s_total %s\n# TYPE %s_total counter\n%s_total %llu\n", name,
		        stats_helps[i], name, name, (unsigned long long)stats_get((enum stat_id)i));
	}
	stats_write_content_prometheus(f);
}

/* ---- the content filter's symbols and scores ----------------------------------- */

/* The symbols seen, in an open-addressed table that only grows: a slot is
 * empty (0), being written (1) or holds a name (2).  No lock and no heap:
 * a worker that finds its name counts it with one atomic add. */
#define STATS_SYMBOLS 1024 /* a power of two */
struct stats_symbol {
	_Atomic int state;
	char name[STATS_SYMBOL_NAME_MAX + 1];
	_Atomic uint64_t hits;
};
static struct stats_symbol stats_symbols[STATS_SYMBOLS];
static _Atomic uint64_t stats_symbols_other; /* names past the table, or too long */

void
stats_symbol_hit(const char *name)
{
	size_t len = strnlen(name, STATS_SYMBOL_NAME_MAX + 1);
	if (len == 0 || len > STATS_SYMBOL_NAME_MAX) {
		atomic_fetch_add_explicit(&stats_symbols_other, 1, memory_order_relaxed);
		return;
	}
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)name[i]) * 16777619u;
	for (size_t probe = 0; probe < STATS_SYMBOLS; probe++) {
		struct stats_symbol *s = &stats_symbols[(h + probe) & (STATS_SYMBOLS - 1)];
		int st = atomic_load_explicit(&s->state, memory_order_acquire);
		if (st == 0) {
			if (atomic_compare_exchange_strong_explicit(&s->state, &st, 1, memory_order_acquire,
			                                            memory_order_acquire)) {
				memcpy(s->name, name, len);
				s->name[len] = '\0';
				atomic_fetch_add_explicit(&s->hits, 1, memory_order_relaxed);
				atomic_store_explicit(&s->state, 2, memory_order_release);
				return;
			}
		}
		while (st == 1) { /* another worker is writing the name: a few stores */
			sched_yield();
			st = atomic_load_explicit(&s->state, memory_order_acquire);
		}
		if (strcmp(s->name, name) == 0) {
			atomic_fetch_add_explicit(&s->hits, 1, memory_order_relaxed);
			return;
		}
	}
	atomic_fetch_add_explicit(&stats_symbols_other, 1, memory_order_relaxed);
}

uint64_t
stats_symbol_get(const char *name)
{
	if (strcmp(name, "*") == 0)
		return atomic_load_explicit(&stats_symbols_other, memory_order_relaxed);
	for (size_t i = 0; i < STATS_SYMBOLS; i++) {
		struct stats_symbol *s = &stats_symbols[i];
		if (atomic_load_explicit(&s->state, memory_order_acquire) == 2 && strcmp(s->name, name) == 0)
			return atomic_load_explicit(&s->hits, memory_order_relaxed);
	}
	return 0;
}

/* The score histogram's upper bounds (the last bucket is +Inf): fine
 * around the default thresholds (tag 3, reject 12) and the classifier's
 * range, coarse beyond. */
static const double stats_score_le[] = {-10, -5, -2, 0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30, 50, 100};
#define STATS_SCORE_BUCKETS (sizeof(stats_score_le) / sizeof(stats_score_le[0]) + 1)
static _Atomic uint64_t stats_score_count[STATS_SCORE_BUCKETS]; /* per bucket, not cumulative */
static _Atomic int64_t stats_score_milli;                         /* the sum, in thousandths */

void
stats_score_observe(double score)
{
	size_t b = 0;
	while (b + 1 < STATS_SCORE_BUCKETS && !(score <= stats_score_le[b]))
		b++; /* NaN ends in +Inf */
	atomic_fetch_add_explicit(&stats_score_count[b], 1, memory_order_relaxed);
	if (isfinite(score) && fabs(score) < 1e12)
		atomic_fetch_add_explicit(&stats_score_milli, (int64_t)llround(score * 1000.0),
		                          memory_order_relaxed);
}

static int
stats_symbol_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct stats_symbol *const *)a)->name,
	              (*(const struct stats_symbol *const *)b)->name);
}

static void
stats_write_content_prometheus(FILE *f)
{
	static const char sym[] = "mxguard_content_symbol_total";
	fprintf(f, "# HELP %s Scanned messages each symbol fired on (\"*\": symbols past the %d counted)\n"
	           "# TYPE %s counter\n",
	        sym, STATS_SYMBOLS, sym);
	struct stats_symbol *seen[STATS_SYMBOLS];
	size_t n = 0;
	for (size_t i = 0; i < STATS_SYMBOLS; i++)
		if (atomic_load_explicit(&stats_symbols[i].state, memory_order_acquire) == 2)
			seen[n++] = &stats_symbols[i];
	qsort(seen, n, sizeof(seen[0]), stats_symbol_cmp);
	for (size_t i = 0; i < n; i++) {
		/* a label value: the rules allow [A-Za-z0-9_] only, but escape
		 * what the exposition format would misread all the same */
		fprintf(f, "%s{symbol=\"", sym);
		for (const char *p = seen[i]->name; *p; p++)
			if (*p == '\\' || *p == '"')
				fprintf(f, "\\%c", *p);
			else if (*p == '\n')
				fputs("\\n", f);
			else
				fputc(*p, f);
		fprintf(f, "\"} %llu\n", (unsigned long long)atomic_load_explicit(&seen[i]->hits, memory_order_relaxed));
	}
	uint64_t other = atomic_load_explicit(&stats_symbols_other, memory_order_relaxed);
	if (other > 0)
		fprintf(f, "%s{symbol=\"*\"} %llu\n", sym, (unsigned long long)other);

	static const char hist[] = "mxguard_content_score";
	fprintf(f, "# HELP %s Scores of the messages the gateway scanned\n# TYPE %s histogram\n", hist, hist);
	uint64_t cum = 0;
	for (size_t b = 0; b < STATS_SCORE_BUCKETS; b++) {
		cum += atomic_load_explicit(&stats_score_count[b], memory_order_relaxed);
		if (b + 1 < STATS_SCORE_BUCKETS)
			fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", hist, stats_score_le[b], (unsigned long long)cum);
		else
			fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n", hist, (unsigned long long)cum);
	}
	fprintf(f, "%s_sum %.3f\n%s_count %llu\n", hist,
	        (double)atomic_load_explicit(&stats_score_milli, memory_order_relaxed) / 1000.0, hist,
	        (unsigned long long)cum);
}
