/* SPDX-License-Identifier: MIT */
#include "stats.h"

#include <stdatomic.h>

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
}
