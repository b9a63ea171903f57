/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	config_schema - the table of every configuration key
 * DESCRIPTION
 *	One row per key: dotted path, type, where it lands in struct
 *	mx_config, default, bounds.  config.c walks it; docs/configuration.md
 *	documents every row (a unit test checks that).
 */
#ifndef MX_CONFIG_SCHEMA_H
#define MX_CONFIG_SCHEMA_H

#include <stddef.h>

enum cfg_type {
	CT_GROUP,      /* a { } group; its children are rows with its prefix */
	CT_STRING,     /* char * */
	CT_STRINGS,    /* char ** plus size_t count at count_off */
	CT_BOOL,       /* bool */
	CT_INT,        /* int, bounded by min/max */
	CT_SIZE,       /* long long bytes, integer or "25M" */
	CT_DURATION,   /* long long ms, integer seconds or "30s" */
	CT_DOUBLE,     /* double, bounded by min/max */
	CT_DOWNSTREAM, /* special: string, array of strings or list of groups */
};

struct cfg_key {
	const char *path;
	enum cfg_type type;
	size_t off;
	size_t count_off;
	const char *def; /* default as it would be written in the file; NULL: none */
	long long min, max;
	const char *choices; /* CT_STRING: "a|b|c" allowed values, or NULL */
	int required;
};

extern const struct cfg_key config_schema[];
extern const size_t config_schema_len;

#endif
