/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	rcpt_dl - the directory client libraries, loaded when configured
 * DESCRIPTION
 *	libldap, libpq and libmariadb bring some twenty libraries with them
 *	(GnuTLS, Kerberos, SASL, ...) whose loading and constructors cost
 *	every mxguard process about 2.5 ms at start, including each `scan`
 *	and `learn` and every check-config, though most sites use one of
 *	the three directories or none. Each backend's functions are looked
 *	up here, by dlopen() of the library the build was made against, the
 *	first time a configuration names that backend.
 */
#include "rcpt_dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t rcpt_dl_lock = PTHREAD_MUTEX_INITIALIZER;

static int
rcpt_dl_try(struct rcpt_dl *d)
{
	void *h = NULL;
	const char *first = NULL;
	char dlerr[160] = "";
	for (const char *const *s = d->sonames; *s != NULL && h == NULL; s++) {
		h = dlopen(*s, RTLD_NOW | RTLD_LOCAL);
		if (h == NULL && first == NULL) {
			first = *s;
			const char *e = dlerror();
			snprintf(dlerr, sizeof(dlerr), "%s", e != NULL ? e : "not found");
		}
	}
	if (h == NULL) {
		snprintf(d->err, sizeof(d->err), "%s support needs %s (Debian package %s): %s", d->what,
		         first != NULL ? first : "its client library", d->package, dlerr);
		return -1;
	}
	for (size_t i = 0; i < d->n; i++) {
		void *sym = dlsym(h, d->names[i]);
		if (sym == NULL) {
			snprintf(d->err, sizeof(d->err), "%s support: the client library has no %s (%s too old?)",
			         d->what, d->names[i], d->package);
			return -1; /* the handle stays: other symbols may be in use nowhere yet */
		}
		/* POSIX: a function's address fits a void * */
		memcpy(d->ptrs[i], &sym, sizeof(sym));
	}
	return 0;
}

int
rcpt_dl_load(struct rcpt_dl *d, const char **why)
{
	pthread_mutex_lock(&rcpt_dl_lock);
	if (d->state == 0)
		d->state = rcpt_dl_try(d) == 0 ? 1 : -1;
	int rc = d->state > 0 ? 0 : -1;
	pthread_mutex_unlock(&rcpt_dl_lock);
	*why = d->err;
	return rc;
}
