/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	spool - the queue on disk: one immutable file per message, one small
 *	state file beside it
 * DESCRIPTION
 *	DIR/q/ID.msg holds a text envelope, then the message exactly as it
 *	will be sent (trace and verdict headers included, CRLF, not
 *	dot-stuffed).  It is written in DIR/tmp/, flushed (fdatasync),
 *	renamed into DIR/q/ and the folder flushed before the client hears
 *	250: an acknowledged message survives a crash or a power cut.
 *	DIR/q/ID.st holds what changes (attempts, next attempt, recipients
 *	done, hold); it is replaced atomically by rename (and the folder
 *	flushed, when asked to sync).  A missing state file means "nothing
 *	tried yet".  State lines: "attempts N", "next UNIXTIME", "hold 0|1",
 *	"last TEXT", and per recipient index I: "done I" (delivered),
 *	"fail I" (failed for good), "fail I" plus "dsn I" (failed and
 *	reported: a DSN was queued, or none was due; never reported again
 *	after a restart).  Files in DIR/tmp/ are debris of a
 *	crash before 250 and are removed at start.
 *	Envelope lines: "mxguard-queue 1", "id ID", "arrival UNIXTIME",
 *	"from ADDR", "rcpt ADDR" (one each), "route downstream|bounce",
 *	and last "dsn" or "nodsn" (never bounce: the filter judged it spam,
 *	or it is a bounce itself); the message follows that line.
 */
#ifndef MX_SPOOL_H
#define MX_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "envelope.h"

#define SPOOL_RCPT_MAX 100000

enum spool_route { SPOOL_ROUTE_DOWNSTREAM, SPOOL_ROUTE_BOUNCE };

/* One queued message as the queue manager holds it. */
/* spool_entry.done[i] */
enum {
	SPOOL_PENDING = 0,
	SPOOL_DELIVERED = 1,
	SPOOL_FAILED = 2,   /* failed for good, not yet reported */
	SPOOL_REPORTED = 3, /* failed for good, DSN queued (or none due) */
};

struct spool_entry {
	char id[40];
	time_t arrival;
	char *from;
	char **rcpt;
	uint8_t *done; /* per recipient: SPOOL_PENDING ... SPOOL_REPORTED */
	/* per recipient that failed and is not reported yet: "STATUS
	 * DIAGNOSTIC" (5.1.1 550 5.1.1 <bob@...>: no such user), kept in the
	 * state so that a DSN sent after a restart still says why; or NULL */
	char **why;
	size_t n_rcpt;
	enum spool_route route;
	bool nodsn;
	bool smtputf8; /* the client's MAIL FROM said SMTPUTF8 */
	bool hold;
	unsigned attempts;
	time_t next;
	char last[300]; /* last outcome, for `queue show` */
	size_t size;     /* message bytes */
	size_t data_off; /* where the message starts in the .msg file */
};

/* Creates DIR, DIR/q, DIR/tmp; removes DIR/tmp debris. 0 or -1 + err. */
int spool_prepare(const char *dir, char *err, size_t errlen);
/*
 * Writes env durably (flushed file and folder) as a new queued message.
 * Blocking: call it from a spool thread, not an event loop.  Returns 0,
 * or -1 with errno (ENOSPC ...); nothing is left behind on failure.
 */
int spool_write(const char *dir, const struct envelope *env, enum spool_route route, bool nodsn);
/* Sets recipient i's failure (spool_entry.why) from an SMTP reply or
 * another diagnostic, with the 5.x.x enhanced status it carries, else
 * dflt. */
void spool_set_why(struct spool_entry *e, size_t i, const char *diagnostic, const char *dflt);
/* Reads DIR/q/ID.msg's envelope and ID.st's state. 0 or -1. */
int spool_load(const char *dir, const char *id, struct spool_entry *e);
void spool_entry_clear(struct spool_entry *e);
/* Replaces ID.st atomically; when sync, the file and the folder are
 * flushed.  0, or -1 with errno. */
int spool_save_state(const char *dir, const struct spool_entry *e, bool sync);
/* Removes the message (both files). */
int spool_remove(const char *dir, const char *id);
/* Calls cb for every queued id (ID of each ID.msg), unsorted. */
int spool_scan(const char *dir, int (*cb)(const char *id, void *arg), void *arg);
/* Path of the message file, for reading the message back. */
void spool_msg_path(const char *dir, const char *id, char *buf, size_t len);
/* Bytes in DIR/q and free bytes on its filesystem. */
int spool_usage(const char *dir, uint64_t *used, uint64_t *free_bytes);

#endif
