/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	smtpd_int - session internals shared by smtpd.c, smtpd_cmd.c and
 *	smtpd_reply.c; nothing outside server/ includes this.
 */
#ifndef MX_SMTPD_INT_H
#define MX_SMTPD_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "envelope.h"
#include "id.h"
#include "smtp_data.h"
#include "smtp_parse.h"
#include "smtp_reply.h"
#include "smtpd.h"

enum smtpd_state {
	SMTPD_S_GREET_WAIT, /* greeting delay running; any input is pregreet */
	SMTPD_S_CMD,        /* reading commands */
	SMTPD_S_DATA,       /* reading the message */
	SMTPD_S_TLS,        /* STARTTLS handshake in progress */
	SMTPD_S_CLOSING,    /* flushing the last reply */
	SMTPD_S_CLOSED,     /* I/O gone; waiting for refs to drop */
};

/* What a pending hook will resume into. */
enum smtpd_pending {
	SMTPD_P_NONE,
	SMTPD_P_CONNECT,
	SMTPD_P_MAIL,
	SMTPD_P_DATA,
	SMTPD_P_RCPT,
	SMTPD_P_MESSAGE,
};

struct smtpd_ctx {
	struct event_base *base;
	const struct smtpd_hooks *hooks;
	struct smtpd_session *head; /* doubly linked list of live sessions */
	unsigned count;
	bool draining;
	bool freed; /* smtpd_ctx_free() ran: the last session frees the ctx */
	void (*drain_done)(void *arg);
	void *drain_arg;
};

struct smtpd_session {
	struct smtpd_ctx *ctx;
	struct smtpd_session *prev, *next;
	struct bufferevent *bev;
	struct event *timer; /* greeting delay, command deadline, tarpit */
	struct event *full_ev; /* under TLS: polls until a client that did not
	                        * read its replies has taken enough of them */
	struct mx_config *cfg;
	SSL_CTX *tls_ctx;
	void *hook_data;
	int refs;

	enum smtpd_state state;
	enum smtpd_pending pending;
	bool esmtp, tls, helo_seen, skip_line, output_full, quit_sent;
	bool drain_notice; /* 421 shutdown pending at next command */
	bool in_process; /* inside smtpd_process(): no re-entry */
	/* the client shut its sending side (EOF) with a command still being
	 * answered or still unread: it is answered, then the session ends */
	bool read_eof;
	struct sockaddr_storage peer;
	socklen_t peerlen;
	char client_ip[64];
	char id[MX_ID_STRLEN];
	char helo[SMTP_DOMAIN_MAX + 1];
	const char *close_reason;
	enum smtp_verb cur_verb;
	char cur_arg[96]; /* escaped, for reject log lines */

	unsigned errors, unknown_rcpts, n_msgs;
	unsigned cmd_count[SMTP_VERB__COUNT];
	uint64_t start_ms, close_ms;

	/* transaction: from MAIL on */
	struct envelope *env;
	struct smtp_data data;
	struct smtp_addr pending_rcpt; /* RCPT waiting for a hook */
	uint64_t data_start_ms;
};

/* smtpd_reply.c: the one writer of replies */
void smtpd_reply(struct smtpd_session *s, enum smtp_reply_id id);
void smtpd_reply_text(struct smtpd_session *s, enum smtp_reply_id id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void smtpd_reply_raw(struct smtpd_session *s, int code, const char *enh, const char *text);
void smtpd_reply_verdict(struct smtpd_session *s, const struct smtpd_verdict *v);
void smtpd_reply_ehlo(struct smtpd_session *s);
void smtpd_reply_greeting(struct smtpd_session *s);

/* smtpd_cmd.c */
void smtpd_cmd_dispatch(struct smtpd_session *s, char *line, size_t len);
void smtpd_cmd_resume(struct smtpd_session *s, enum smtpd_pending p, const struct smtpd_verdict *v);

/* smtpd.c */
void smtpd_close(struct smtpd_session *s, const char *reason);
void smtpd_tx_reset(struct smtpd_session *s);
void smtpd_start_data(struct smtpd_session *s);
void smtpd_start_tls(struct smtpd_session *s);
void smtpd_arm_command_timer(struct smtpd_session *s);
void smtpd_log_reject(struct smtpd_session *s, int code, const char *enh, const char *text);
void smtpd_log_message(struct smtpd_session *s, const char *result, int code, const char *enh,
                       const char *text, const char *extra);
bool smtpd_count_error(struct smtpd_session *s);

#endif
