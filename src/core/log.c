/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	log - one line per event, key=value, to stderr or syslog
 * LIMITS
 *	A line is cut at LOG_LINE_MAX bytes.
 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static const char *log_ident = "mxguard";
static bool log_syslog;
static _Atomic int log_min = LOG_LVL_INFO;
static log_sink_cb log_sink;
static void *log_sink_arg;
static pthread_mutex_t log_rl_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const log_names[] = {"debug", "info", "warn", "err"};

static void log_vemit(enum log_level level, const char *suffix, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

void
log_init(const char *ident, bool use_syslog)
{
	log_ident = ident;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_set_level(enum log_level level)
{
	atomic_store(&log_min, (int)level);
}

enum log_level
log_get_level(void)
{
	return (enum log_level)atomic_load(&log_min);
}

int
log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++) {
		if (strcmp(name, log_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void
log_set_sink(log_sink_cb cb, void *arg)
{
	log_sink = cb;
	log_sink_arg = arg;
}

static void
log_vemit(enum log_level level, const char *suffix, const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX];
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	if (suffix != NULL)
		snprintf(msg + n, sizeof(msg) - (size_t)n, "%s", suffix);

	if (log_sink != NULL) {
		log_sink(level, msg, log_sink_arg);
		return;
	}
	if (log_syslog) {
		static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
		syslog(prio[level], "%s: %s", log_names[level], msg);
		return;
	}
	char line[LOG_LINE_MAX + 128];
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	int len = snprintf(line, sizeof(line),
	                   "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d]: %s: %s\n",
	                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	                   tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000), log_ident,
	                   (int)getpid(), log_names[level], msg);
	if (len < 0)
		return;
	if ((size_t)len >= sizeof(line)) {
		len = sizeof(line) - 1;
		line[len - 1] = '\n';
	}
	ssize_t w = write(STDERR_FILENO, line, (size_t)len);
	(void)w;
}

#define LOG_FN(name, lvl)                                  \
	void name(const char *fmt, ...)                    \
	{                                                  \
		if ((int)(lvl) < atomic_load(&log_min))    \
			return;                            \
		va_list ap;                                \
		va_start(ap, fmt);                         \
		log_vemit(lvl, NULL, fmt, ap);             \
		va_end(ap);                                \
	}

LOG_FN(log_debug, LOG_LVL_DEBUG)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_warn, LOG_LVL_WARN)
LOG_FN(log_err, LOG_LVL_ERR)

void
fatal(const char *fmt, ...)
{
	char suffix[256];
	snprintf(suffix, sizeof(suffix), ": %s", strerror(errno));
	va_list ap;
	va_start(ap, fmt);
	log_vemit(LOG_LVL_ERR, suffix, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vemit(LOG_LVL_ERR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}

char *
log_escape(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (dstlen == 0)
		return dst;
	for (size_t i = 0; i < srclen; i++) {
		unsigned char c = (unsigned char)src[i];
		size_t need = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? 4 : 1;
		if (o + need + 1 > dstlen) {
			if (dstlen >= 4) {
				size_t at = o + 4 <= dstlen ? o : dstlen - 4;
				memcpy(dst + at, "...", 3);
				dst[at + 3] = '\0';
			} else {
				dst[0] = '\0';
			}
			return dst;
		}
		if (need == 4) {
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		} else {
			dst[o++] = (char)c;
		}
	}
	dst[o] = '\0';
	return dst;
}

bool
log_ratelimit_ok(struct log_ratelimit *rl, time_t interval, unsigned *suppressed)
{
	time_t now = time(NULL);
	bool ok = false;
	pthread_mutex_lock(&log_rl_lock);
	if (rl->last == 0 || now - rl->last >= interval) {
		ok = true;
		if (suppressed != NULL)
			*suppressed = rl->suppressed;
		rl->suppressed = 0;
		rl->last = now;
	} else {
		rl->suppressed++;
	}
	pthread_mutex_unlock(&log_rl_lock);
	return ok;
}
