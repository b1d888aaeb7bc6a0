// SPDX-License-Identifier: MIT
/* OpenSSL contexts: TLS 1.3 only, peer certificate required and checked against our CA. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "common/log.h"
#include "transport/tls.h"

/* AES-128-GCM first: fastest with AES-NI, the wire is bulk data. */
#define TLS_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

int tls_opts_check(const struct tls_opts *o, char *err, size_t len)
{
	bool any = o->ca || o->cert || o->key;

	if (o->insecure && any) {
		snprintf(err, len, "--insecure conflicts with --tls-ca/--tls-cert/--tls-key");
		return -EINVAL;
	}
	if (!o->insecure && !(o->ca && o->cert && o->key)) {
		snprintf(err, len, "TLS needs --tls-ca, --tls-cert and --tls-key "
			 "(or --insecure for plain TCP)");
		return -EINVAL;
	}
	return 0;
}

/* The first queued OpenSSL error in words (the root cause); the rest at debug level. */
static const char *ssl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_get_error(), more;
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	if (e && ERR_SYSTEM_ERROR(e))
		r = strerror(ERR_GET_REASON(e));
	snprintf(buf, len, "%s", r ? r : "unknown OpenSSL error");
	while ((more = ERR_get_error())) {
		char detail[256];

		ERR_error_string_n(more, detail, sizeof(detail));
		pr_debug("OpenSSL: %s", detail);
	}
	return buf;
}

static int ctx_load(SSL_CTX *ctx, const struct tls_opts *o, bool server, char *err, size_t len)
{
	char why[160];

	if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1) {
		snprintf(err, len, "cannot load certificate %.80s: %s", o->cert,
			 ssl_reason(why, sizeof(why)));
		return -EINVAL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, len, "cannot load private key %.80s: %s", o->key,
			 ssl_reason(why, sizeof(why)));
		return -EINVAL;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, len, "private key %.80s does not match certificate %.80s", o->key,
			 o->cert);
		ERR_clear_error();
		return -EINVAL;
	}
	if (SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1) {
		snprintf(err, len, "cannot load CA %.80s: %s", o->ca, ssl_reason(why, sizeof(why)));
		return -EINVAL;
	}
	if (server) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca);

		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
	}
	return 0;
}

SSL_CTX *tls_ctx_new(const struct tls_opts *o, bool server, char *err, size_t len)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	char why[160];

	if (!ctx) {
		snprintf(err, len, "cannot set up TLS: %s", ssl_reason(why, sizeof(why)));
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, TLS_SUITES) != 1) {
		snprintf(err, len, "cannot set up TLS 1.3: %s", ssl_reason(why, sizeof(why)));
		goto fail;
	}
	if (ctx_load(ctx, o, server, err, len))
		goto fail;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	/* One connection per migration step: resumption buys nothing. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (server) {
		SSL_CTX_set_num_tickets(ctx, 0);
		SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static const char *ssl_err_name(int err)
{
	switch (err) {
	case SSL_ERROR_ZERO_RETURN:
		return "peer closed the TLS session";
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return "TLS would block";
	case SSL_ERROR_SYSCALL:
		return "connection closed or reset";
	}
	return "TLS error";
}

const char *tls_strerror(SSL *ssl, int ret, char *buf, size_t len)
{
	int err = ssl ? SSL_get_error(ssl, ret) : SSL_ERROR_SSL;
	unsigned long e = ERR_get_error();
	const char *reason;
	long vr;
	int n;

	/* The first error is the root cause; drop the rest. */
	ERR_clear_error();
	if (err == SSL_ERROR_SYSCALL && !e && errno)
		n = snprintf(buf, len, "%s (%s)", ssl_err_name(err), strerror(errno));
	else if (e && (reason = ERR_reason_error_string(e)))
		n = snprintf(buf, len, "%s", reason);
	else
		n = snprintf(buf, len, "%s", ssl_err_name(err));
	vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	if (vr != X509_V_OK && n >= 0 && (size_t)n < len)
		snprintf(buf + n, len - n, " (peer certificate: %s)",
			 X509_verify_cert_error_string(vr));
	return buf;
}

void tls_peer_subject(SSL *ssl, char *buf, size_t len)
{
	X509 *peer = SSL_get1_peer_certificate(ssl);

	snprintf(buf, len, "-");
	if (!peer)
		return;
	X509_NAME_oneline(X509_get_subject_name(peer), buf, len);
	X509_free(peer);
}
