/* SPDX-License-Identifier: MIT */
/*
 * TLS for both ends: TLS 1.3 only, mutual authentication against one CA
 * (the peer must present a certificate that CA signed). No default trust
 * store is loaded: only the ferry CA counts.
 */
#ifndef FERRY_TLS_H
#define FERRY_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/ssl.h>

/* Certificates for TLS (all three), or --insecure: plain TCP. */
struct tls_opts {
	const char *ca, *cert, *key;
	bool insecure;
};

/*
 * Options make sense: all three files, or --insecure alone. 0, or -EINVAL
 * with the reason in err (nothing is printed: the caller reports it).
 */
int tls_opts_check(const struct tls_opts *o, char *err, size_t len);

/* Context for a server or a client; NULL with the reason in err. */
SSL_CTX *tls_ctx_new(const struct tls_opts *o, bool server, char *err, size_t len);

/*
 * Why an SSL call that returned @ret failed, in words, for the log and for
 * error strings: the library's reason and, if the peer's certificate did
 * not verify, why. Empties OpenSSL's error queue.
 */
const char *tls_strerror(SSL *ssl, int ret, char *buf, size_t len);

/* Subject of the peer's certificate (or "-"). */
void tls_peer_subject(SSL *ssl, char *buf, size_t len);

#endif
