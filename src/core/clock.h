/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	clock - monotonic and wall time behind functions tests can replace
 */
#ifndef MX_CLOCK_H
#define MX_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on a monotonic clock. */
uint64_t mx_clock_mono_ms(void);
/* Seconds since the epoch. */
time_t mx_clock_wall(void);
/* Tests: fix both clocks (ms and s); 0 returns to the real clocks. */
void mx_clock_fake(uint64_t mono_ms, time_t wall);

#endif
