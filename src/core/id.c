/* SPDX-License-Identifier: MIT */
#include "id.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>

static _Atomic uint64_t id_counter;
static pthread_once_t id_once = PTHREAD_ONCE_INIT;

static void
id_init(void)
{
	uint64_t r;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint64_t)time(NULL) << 20;
	atomic_store(&id_counter, r);
}

uint64_t
mx_id_next(void)
{
	pthread_once(&id_once, id_init);
	/* Odd stride: a permutation of the 64-bit space, ids look unrelated. */
	return atomic_fetch_add(&id_counter, 0x9e3779b97f4a7c15ull);
}

void
mx_id_str(uint64_t id, char out[MX_ID_STRLEN])
{
	snprintf(out, MX_ID_STRLEN, "%016llx", (unsigned long long)id);
}
