/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	url - URLs found in text, and their hosts
 * DESCRIPTION
 *	url_host() takes the host out of a URL the way a browser would
 *	(scheme, userinfo and port dropped; "http://bank.test@evil.test/"
 *	is evil.test; slashes and backslashes after the scheme in any mix;
 *	percent-escapes decoded), then url_host_name()'s form of it.
 *	url_host_name() gives a host name the form lists compare: lower
 *	case, trailing dots removed, an internationalised name mapped and
 *	converted to its ASCII (xn--) form as a browser does (UTS #46,
 *	libidn2); one libidn2 refuses stays as written; an IPv4 address in
 *	any spelling a browser opens ("0x7f.1", "2130706433") in dotted
 *	decimal, an IPv6 one in inet_ntop()'s form.  url_scan() finds
 *	http://, https:// and www. URLs in plain text.
 */
#ifndef MX_URL_H
#define MX_URL_H

#include <stdbool.h>
#include <stddef.h>

#define URL_HOST_MAX 255

/* Returns true and fills host when url has one. */
bool url_host(const char *url, size_t len, char host[URL_HOST_MAX + 1]);
/* name (len bytes, not NUL-terminated) into host; host may be name.
 * Returns false when nothing is left or the name is too long. */
bool url_host_name(const char *name, size_t len, char host[URL_HOST_MAX + 1]);
typedef void (*url_found_cb)(const char *url, size_t len, void *arg);
void url_scan(const char *text, size_t n, url_found_cb cb, void *arg);

#endif
