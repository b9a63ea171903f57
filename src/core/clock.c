/* SPDX-License-Identifier: MIT */
#include "clock.h"

#include <stdatomic.h>

static _Atomic uint64_t fake_mono;
static _Atomic long long fake_wall;

uint64_t
mx_clock_mono_ms(void)
{
	uint64_t f = atomic_load(&fake_mono);
	if (f != 0)
		return f;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

time_t
mx_clock_wall(void)
{
	long long f = atomic_load(&fake_wall);
	if (f != 0)
		return (time_t)f;
	return time(NULL);
}

void
mx_clock_fake(uint64_t mono_ms, time_t wall)
{
	atomic_store(&fake_mono, mono_ms);
	atomic_store(&fake_wall, (long long)wall);
}
