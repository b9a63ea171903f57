/* SPDX-License-Identifier: MIT */
#ifndef MX_RCPT_DL_H
#define MX_RCPT_DL_H

#include <stddef.h>

/* A directory client library loaded when a configuration first names it
 * (rcpt_dl.c). Each backend lists its functions with an X-macro:
 *
 *	#define MY_SYMS(X) X(lib_open) X(lib_close)
 *	RCPT_DL_DECLARE(MY_SYMS)
 *	static struct rcpt_dl my_dl = RCPT_DL_INIT("PostgreSQL", "libpq5", sonames, MY_SYMS);
 *	#define lib_open (*dl_lib_open)
 *
 * and its calls stay as they are. */
struct rcpt_dl {
	const char *what;           /* "LDAP", for the error */
	const char *package;        /* the Debian package that has it */
	const char *const *sonames; /* tried in order, NULL-terminated */
	const char *const *names;   /* the symbols... */
	void *const *ptrs;          /* ...and where each goes (a pointer to a pointer) */
	size_t n;
	int state; /* 0 not tried, 1 loaded, -1 failed */
	char err[256];
};

#define RCPT_DL_PTR(f) static __typeof__(f) *dl_##f;
#define RCPT_DL_NAME(f) #f,
#define RCPT_DL_ADDR(f) (void *)&dl_##f,
#define RCPT_DL_DECLARE(SYMS)                                                                    \
	SYMS(RCPT_DL_PTR)                                                                        \
	static const char *const rcpt_dl_names[] = {SYMS(RCPT_DL_NAME)};                         \
	static void *const rcpt_dl_ptrs[] = {SYMS(RCPT_DL_ADDR)};
#define RCPT_DL_INIT(what, package, sonames)                                                    \
	{(what), (package), (sonames), rcpt_dl_names, rcpt_dl_ptrs,                              \
	 sizeof(rcpt_dl_names) / sizeof(rcpt_dl_names[0]), 0, ""}

/* Loads the library once (later calls give the first result): 0, or -1
 * with *why set to a message that names the library and the package. */
int rcpt_dl_load(struct rcpt_dl *d, const char **why);

#endif
