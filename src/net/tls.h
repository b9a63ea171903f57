/* SPDX-License-Identifier: MIT */
/*
 * NAME
 *	tls - OpenSSL contexts for the server (STARTTLS) and client sides
 * DESCRIPTION
 *	Contexts are built when the configuration is loaded, so a bad
 *	certificate is a configuration error, not a failure at the first
 *	STARTTLS.  A reload builds new contexts; sessions keep the old one.
 */
#ifndef MX_TLS_H
#define MX_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* cert and key are PEM files. Returns NULL with err filled. */
SSL_CTX *tls_server_ctx_new(const char *cert, const char *key, const char *min_proto,
                            const char *ciphers, char *err, size_t errlen);
/* Opportunistic client context: no verification (RFC 7435). */
SSL_CTX *tls_client_ctx_new(char *err, size_t errlen);
void tls_ctx_free(SSL_CTX *ctx);
/* "TLSv1.3" and the cipher name of an established connection. */
void tls_describe(SSL *ssl, const char **version, const char **cipher);

#endif
