/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	smtpc - outbound SMTP/LMTP client with a per-worker connection pool
 * DESCRIPTION
 *	smtpc_send() runs one transaction (MAIL, RCPT..., DATA, body, ".")
 *	against one target, on a pooled connection when one is idle, else on
 *	a new one.  With PIPELINING the envelope and DATA leave in one write.
 *	The body is dot-stuffed on the way out; the Received: header goes
 *	first.
 *	Outcome classes:
 *	  SMTPC_OK        all recipients accepted the message
 *	  SMTPC_TEMP      the target deferred (4xx) for this message
 *	  SMTPC_PERM      the target refused (5xx) for this message
 *	  SMTPC_CONNFAIL  the target is unusable (connect, greeting, EHLO, 421,
 *	                  timeout, lost connection): try the next target.
 *	Nothing in the outcome depends on a reply the client did not get:
 *	a connection lost after the final "." is CONNFAIL, never OK.
 * LIMITS
 *	Replies: 100 lines, 2048 bytes a line.  Output buffered at most
 *	SMTPC_OUT_HIGH before the body producer waits.
 */
#ifndef MX_SMTPC_H
#define MX_SMTPC_H

#include <stdbool.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "envelope.h"

enum smtpc_status { SMTPC_OK, SMTPC_TEMP, SMTPC_PERM, SMTPC_CONNFAIL };

struct smtpc_result {
	bool tls;       /* the transaction ran over TLS */
	enum smtpc_status status;
	int code;       /* the deciding reply; 0 if none came */
	char enh[16];   /* its enhanced code, or "" */
	char text[400]; /* its text (lines joined with "; ") or what failed */
	const char *stage; /* "connect", "greeting", "ehlo", "mail", "rcpt", "data", "dot" */
	bool reused;       /* ran on a pooled connection */
};

typedef void (*smtpc_done_cb)(const struct smtpc_result *r, void *arg);

struct smtpc_target {
	bool lmtp;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	const char *name; /* for logs; copied */
};

struct smtpc_opts {
	const char *helo;
	long long t_connect, t_reply, t_data, t_idle; /* ms */
	/* partial: deliver to the recipients the target accepted even if it
	 * refused others (queue mode); the outcome of each is in
	 * env->rcpt[i].code/.reply and the result is OK when any was
	 * delivered.  Without it a transaction is all or nothing. */
	bool partial;
	/* STARTTLS when the target offers it (may), insist on it (encrypt), or
	 * never (none).  Encryption without certificate checks (RFC 7435). */
	enum smtpc_tls { SMTPC_TLS_MAY, SMTPC_TLS_ENCRYPT, SMTPC_TLS_NONE } tls;
};

struct smtpc_pool;

/* "may", "encrypt", "none" -> the policy (may when unknown). */
enum smtpc_tls smtpc_tls_policy(const char *name);

struct smtpc_pool *smtpc_pool_new(struct event_base *base);
/*
 * Closes every connection, idle or busy.  Transactions still in flight are
 * dropped without their callback (call smtpc_pool_cancel() first when their
 * owners wait for an answer).  Not from inside a callback of p.
 */
void smtpc_pool_free(struct smtpc_pool *p);
/*
 * Shutdown, once the event loop has stopped: every transaction in flight
 * is ended now, from inside this call, through its callback: its
 * connection is closed and it fails with SMTPC_TEMP (stage "shutdown"),
 * or, when its outcome was already decided, gets that outcome.  A callback
 * that sends again gets SMTPC_TEMP from this call too.  Idle connections
 * stay for smtpc_pool_free().  Not from inside a callback of p.
 */
void smtpc_pool_cancel(struct smtpc_pool *p);
/* Number of idle pooled connections (tests, metrics). */
unsigned smtpc_pool_idle(const struct smtpc_pool *p);

/*
 * Sends env to t.  env must stay valid and unchanged until cb runs; cb
 * always runs exactly once, from the event loop (never from inside this
 * call).  t and o are copied.
 */
void smtpc_send(struct smtpc_pool *p, const struct smtpc_target *t, const struct smtpc_opts *o,
                struct envelope *env, smtpc_done_cb cb, void *arg);

#endif
