/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	smtpd_hooks - the questions the protocol asks, answered elsewhere
 * DESCRIPTION
 *	The SMTP session never decides policy and never talks to a directory
 *	or a downstream.  At each phase it calls a hook; daemon/wiring.c fills
 *	the table with recipient checks, filters and delivery.
 *	A hook answers at once (SMTPD_HOOK_DONE, verdict filled) or later
 *	(SMTPD_HOOK_PENDING): it then calls smtpd_resume() exactly once,
 *	never from inside the hook call itself.  While a hook is pending the
 *	session reads no input and cannot be freed; if the client went away
 *	meanwhile, smtpd_resume() just releases the session.  A hook that
 *	wants to hold its answer (a tarpit) returns PENDING and resumes from
 *	a timer on smtpd_session_base().
 */
#ifndef MX_SMTPD_HOOKS_H
#define MX_SMTPD_HOOKS_H

#include <stdbool.h>

#include "envelope.h"
#include "smtp_parse.h"
#include "smtp_reply.h"

struct smtpd_session;

enum smtpd_hook_rc { SMTPD_HOOK_DONE, SMTPD_HOOK_PENDING };

#define SMTPD_VERDICT_CUSTOM REPLY__COUNT

struct smtpd_verdict {
	enum smtp_reply_id reply; /* a named reply, or SMTPD_VERDICT_CUSTOM */
	int code;                 /* custom reply: code, enhanced code, text */
	char enh[16];
	char text[400];
	bool disconnect;   /* close the session after the reply */
	bool unknown_rcpt; /* counts towards limits.unknown_recipients */
	char log[600];     /* key=value pairs for the log line (action=..., ...) */
	const char *result; /* end of DATA: "queued" etc.; NULL: from the code */
};

struct smtpd_hooks {
	/* Connection accepted, before the greeting; a 4xx/5xx refuses it. */
	enum smtpd_hook_rc (*connect)(struct smtpd_session *s, struct smtpd_verdict *v);
	/* MAIL FROM accepted by syntax; may refuse (452 when out of storage,
	 * later sender checks).  NULL: always fine. */
	enum smtpd_hook_rc (*mail)(struct smtpd_session *s, const struct envelope *env,
	                           struct smtpd_verdict *v);
	/* DATA about to be accepted (354); may refuse.  NULL: always fine. */
	enum smtpd_hook_rc (*data)(struct smtpd_session *s, const struct envelope *env,
	                           struct smtpd_verdict *v);
	/* RCPT TO, syntax already checked: relay and recipient checks. */
	enum smtpd_hook_rc (*rcpt)(struct smtpd_session *s, const struct smtp_addr *rcpt,
	                           struct smtpd_verdict *v);
	/* End of DATA, message intact: filter and deliver. The envelope stays
	 * valid and unchanged until the verdict is given. */
	enum smtpd_hook_rc (*message)(struct smtpd_session *s, struct envelope *env,
	                              struct smtpd_verdict *v);
	/* The session is gone (connection closed); release what it held. */
	void (*close)(struct smtpd_session *s);
	/* smtpd_ctx_free() on a session whose hook is pending: the event loop
	 * will not run again.  Answer now (smtpd_resume() from inside this
	 * call is allowed here) when the operation can be called off so that
	 * its own callback never comes; else leave it: a later answer only
	 * releases the session, and the ctx goes with the last session.
	 * NULL: pending hooks are always answered later. */
	void (*cancel)(struct smtpd_session *s);
};

void smtpd_verdict_init(struct smtpd_verdict *v, enum smtp_reply_id reply);
/* Resets v to a custom reply: 451, "4.4.1", text; other fields cleared. */
void smtpd_verdict_custom(struct smtpd_verdict *v, int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
