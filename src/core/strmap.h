/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	strmap - string-keyed hash map, open addressing
 * DESCRIPTION
 *	Keys are copied; values are opaque pointers owned by the caller.
 *	The hash is seeded per process, so keys an attacker picks cannot be
 *	chosen to collide.  Not thread-safe; tables that are shared are
 *	read-only after they are built (the recipient map, the domain set).
 */
#ifndef MX_STRMAP_H
#define MX_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strmap;

struct strmap *strmap_new(void);
/* Frees the table and its keys; values are the caller's. */
void strmap_free(struct strmap *m);
/* free()s every value, then the table (values allocated with malloc). */
void strmap_free_values(struct strmap *m);
/* Inserts or replaces. Returns the previous value or NULL. */
void *strmap_put(struct strmap *m, const char *key, size_t keylen, void *val);
/* Returns true and sets *val when the key is present. */
bool strmap_get(const struct strmap *m, const char *key, size_t keylen, void **val);
bool strmap_del(struct strmap *m, const char *key, size_t keylen);
size_t strmap_count(const struct strmap *m);
/* Calls cb for every entry; stop iterating by returning non-zero. */
void strmap_foreach(const struct strmap *m,
                    int (*cb)(const char *key, size_t keylen, void *val, void *arg), void *arg);
/* The seeded hash, for callers that shard tables. */
uint64_t strmap_hash(const char *key, size_t keylen);

#endif
