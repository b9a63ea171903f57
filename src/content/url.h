/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	url - URLs found in text, and their hosts
 * DESCRIPTION
 *	url_host() takes the host out of a URL the way a browser would
 *	(scheme, userinfo and port dropped; "http://bank.test@evil.test/"
 *	is evil.test; slashes and backslashes after the scheme in any mix;
 *	percent-escapes decoded), lowercased, trailing dot removed.  url_scan() finds
 *	http://, https:// and www. URLs in plain text.
 */
#ifndef MX_URL_H
#define MX_URL_H

#include <stdbool.h>
#include <stddef.h>

#define URL_HOST_MAX 255

/* Returns true and fills host when url has one. */
bool url_host(const char *url, size_t len, char host[URL_HOST_MAX + 1]);
typedef void (*url_found_cb)(const char *url, size_t len, void *arg);
void url_scan(const char *text, size_t n, url_found_cb cb, void *arg);

#endif
