/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	status - return conventions shared by every module
 * DESCRIPTION
 *	Plain operations return int: 0 on success, -1 on failure.
 *	Lookups return enum mx_lookup.  MX_TEMPFAIL ("the directory could not
 *	answer") is never treated as MX_NOTFOUND; smtp/smtp_reply.c is the one
 *	place that maps it to 451 4.4.3.
 */
#ifndef MX_STATUS_H
#define MX_STATUS_H

enum mx_lookup {
	MX_FOUND = 0,
	MX_NOTFOUND = 1,
	MX_TEMPFAIL = 2,
	MX_PENDING = 3, /* asynchronous: the callback will deliver the answer */
};

#define MX_ERR_LEN 512

#define MX_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MX_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MX_MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
