/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	log - one line per event, key=value, to stderr or syslog
 * DESCRIPTION
 *	Every call produces exactly one line.  Lines start with the session id
 *	when the caller passes one in the format.  Client-supplied text must be
 *	passed through log_escape() first: it is never a format string and
 *	never reaches the log with control characters in it.
 *	Thread-safe: each line is written with one write(2).
 */
#ifndef MX_LOG_H
#define MX_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum log_level {
	LOG_LVL_DEBUG = 0,
	LOG_LVL_INFO = 1,
	LOG_LVL_WARN = 2,
	LOG_LVL_ERR = 3,
};

typedef void (*log_sink_cb)(enum log_level level, const char *line, void *arg);

/* Start logging to stderr, or to syslog(3) with facility "mail". */
void log_init(const char *ident, bool use_syslog);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "debug", "info", "warn", "err"; returns -1 when unknown. */
int log_level_parse(const char *name, enum log_level *out);
/* Tests: receive every line instead of stderr (NULL restores stderr). */
void log_set_sink(log_sink_cb cb, void *arg);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* fatal appends strerror(errno); both exit(1). */
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Copies src (srclen bytes) into dst as printable ASCII: control bytes,
 * DEL, bytes >= 0x80, '"' and '\\' become \xNN.  Always NUL-terminates;
 * output longer than dstlen is cut and ends in "...".  Returns dst.
 */
char *log_escape(char *dst, size_t dstlen, const char *src, size_t srclen);

/* Rate limiter for repeated warnings (backend outages): true at most once
 * per interval seconds.  Thread-safe. */
struct log_ratelimit {
	time_t last;
	unsigned suppressed;
};
bool log_ratelimit_ok(struct log_ratelimit *rl, time_t interval, unsigned *suppressed);

#define mx_assert(x)                                                                  \
	do {                                                                          \
		if (!(x))                                                             \
			fatalx("assertion failed: %s (%s:%d)", #x, __FILE__, __LINE__); \
	} while (0)

#endif
