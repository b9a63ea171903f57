/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	hash - 64-bit mixing
 * DESCRIPTION
 *	mx_mix64() is SplitMix64's finaliser: every input bit moves about
 *	half the output bits, so it turns a weak hash (FNV-1a) or a counter
 *	into a well-spread one. mx_splitmix64() is the whole step
 *	(golden-ratio increment, then the finaliser), a bijection.
 */
#ifndef MX_HASH_H
#define MX_HASH_H

#include <stdint.h>

static inline uint64_t
mx_mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static inline uint64_t
mx_splitmix64(uint64_t x)
{
	return mx_mix64(x + 0x9E3779B97F4A7C15ull);
}

#endif
