/* SPDX-License-Identifier: MIT */
/*
 * Blocking client connection: TCP with keepalive and a user timeout (a
 * dead peer is noticed), TLS on top unless insecure. Used by the remote
 * sink and by test tools. Every read and write has a deadline: a peer that
 * sends nothing at all (not even a ping) for PEER_TIMEOUT_MS, or takes
 * nothing for as long, fails the call with -ETIMEDOUT.
 */
#ifndef FERRY_CONN_H
#define FERRY_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

#include "transport/frame.h"
#include "transport/tls.h"

#define PEER_TIMEOUT_MS		20000	/* the page server pings every 5 s while it works */

struct conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;		/* NULL: plain TCP (--insecure) */
	char peer[128];
	char error[256];	/* why the last call failed */
};

/* Connect and (unless tls->insecure) complete the TLS handshake. 0 or -errno. */
int conn_open(struct conn *c, const char *host, const char *port, const struct tls_opts *tls);
/* Write all of buf: 0 or -errno. */
int conn_write(struct conn *c, const void *buf, size_t len);
/* Read exactly len bytes: 0, -ECONNRESET on EOF, or -errno. */
int conn_read(struct conn *c, void *buf, size_t len);
/*
 * Read one frame whose payload fits in cap - FRAME_HDR bytes (control
 * frames): 0 with f->payload inside buf, or -errno (-EPROTO on a bad frame,
 * -ETIMEDOUT after PEER_TIMEOUT_MS of silence). Pings are skipped.
 */
int conn_read_frame(struct conn *c, uint8_t *buf, size_t cap, struct frame *f);
/* Send a ping (keepalive): 0 or -errno. */
int conn_ping(struct conn *c);
/* Send close_notify if TLS, then close. Safe on a zeroed or closed conn. */
void conn_close(struct conn *c);

#endif
