/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	id - unique session ids for log lines and trace headers
 */
#ifndef MX_ID_H
#define MX_ID_H

#include <stdint.h>

#define MX_ID_STRLEN 17

/* A 64-bit id, random base plus a counter: unique within the process and
 * very unlikely to repeat across restarts or gateways. Thread-safe. */
uint64_t mx_id_next(void);
/* 16 lowercase hex digits. */
void mx_id_str(uint64_t id, char out[MX_ID_STRLEN]);

#endif
