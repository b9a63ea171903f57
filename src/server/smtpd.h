/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	smtpd - inbound ESMTP sessions: the protocol and nothing else
 * DESCRIPTION
 *	One struct smtpd_ctx per worker thread (one event base); sessions live
 *	on it.  A session owns its bufferevent and, from MAIL on, one
 *	envelope.  Input stays in the bufferevent's evbuffer; command lines
 *	are capped at 512 octets before the end of line is searched for.
 *	Freeing is deferred: smtpd_close() marks the session, and it is freed
 *	once its output is flushed and no hook is pending.
 * LIMITS
 *	Input is read at most SMTPD_INPUT_MAX ahead; replies are queued at most
 *	SMTPD_OUTPUT_MAX before the session stops reading (a client that
 *	pipelines without reading cannot grow our buffers).
 */
#ifndef MX_SMTPD_H
#define MX_SMTPD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "config.h"
#include "smtpd_hooks.h"

#define SMTPD_INPUT_MAX (64 * 1024)
#define SMTPD_OUTPUT_MAX (64 * 1024)

struct smtpd_ctx;
struct smtpd_session;

/* hooks and hook_arg are borrowed for the ctx's lifetime. */
struct smtpd_ctx *smtpd_ctx_new(struct event_base *base, const struct smtpd_hooks *hooks);
/*
 * Closes every session.  A session whose hook is pending is offered to the
 * cancel hook; one still pending after that stays (closed) until its answer
 * comes, and the ctx is freed with the last such session.
 */
void smtpd_ctx_free(struct smtpd_ctx *ctx);
/* Number of live sessions on this ctx. */
unsigned smtpd_ctx_count(const struct smtpd_ctx *ctx);
/*
 * Graceful shutdown: idle sessions get 421 4.3.2 now; sessions in a
 * transaction finish it and get 421 at their next command.  Calls done()
 * when the last session is gone.
 */
void smtpd_ctx_drain(struct smtpd_ctx *ctx, void (*done)(void *arg), void *arg);
/* Closes every session now (shutdown deadline). */
void smtpd_ctx_close_all(struct smtpd_ctx *ctx);

/*
 * Starts a session on an accepted socket (takes the fd).  cfg and tls are
 * referenced for the session's lifetime (tls may be NULL: no STARTTLS).
 * hook_data is passed back through smtpd_session_hook_data().
 */
struct smtpd_session *smtpd_session_start(struct smtpd_ctx *ctx, int fd, const struct sockaddr *peer,
                                          socklen_t peerlen, struct mx_config *cfg, SSL_CTX *tls,
                                          void *hook_data);
/* Delivers the answer of a pending hook (see smtpd_hooks.h). */
void smtpd_resume(struct smtpd_session *s, const struct smtpd_verdict *v);

/* Accessors for hooks. */
const char *smtpd_session_id(const struct smtpd_session *s);
const char *smtpd_session_client_ip(const struct smtpd_session *s);
const struct sockaddr *smtpd_session_peer(const struct smtpd_session *s);
const char *smtpd_session_helo(const struct smtpd_session *s);
const struct mx_config *smtpd_session_config(const struct smtpd_session *s);
void *smtpd_session_hook_data(const struct smtpd_session *s);
struct event_base *smtpd_session_base(const struct smtpd_session *s);
bool smtpd_session_tls(const struct smtpd_session *s);
/* The sender of the current transaction ("" for <>), or NULL outside one. */
const char *smtpd_session_sender(const struct smtpd_session *s);

#endif
