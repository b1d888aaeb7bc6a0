// SPDX-License-Identifier: MIT
/* Blocking TCP (+ TLS) client connection. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "common/log.h"
#include "transport/conn.h"
#include "transport/tls.h"

#define CONNECT_TIMEOUT_MS	10000
#define USER_TIMEOUT_MS		30000

/* The reason goes to c->error for the caller to report; the log gets it as info. */
static void conn_fail(struct conn *c, const char *fmt, const char *detail)
{
	snprintf(c->error, sizeof(c->error), fmt, c->peer, detail);
	pr_info("%s", c->error);
}

/*
 * A peer whose kernel still acknowledges but which says nothing (stopped,
 * wedged) is noticed by the send/receive deadlines; a vanished one also by
 * TCP keepalive and the user timeout.
 */
static void set_sock_opts(int fd)
{
	int one = 1, idle = 10, intvl = 5, cnt = 3, uto = USER_TIMEOUT_MS;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof(uto));
}

/*
 * The socket is non-blocking: wait until it can be read (or written) for at
 * most PEER_TIMEOUT_MS. Not SO_RCVTIMEO/SO_SNDTIMEO: a send that timed out
 * after copying a few bytes returns them as progress, and the next one
 * waits the whole time again (OpenSSL retries the rest of a record).
 */
static int conn_wait(struct conn *c, bool rd)
{
	struct pollfd p = { .fd = c->fd, .events = rd ? POLLIN : POLLOUT };
	int n;

	do
		n = poll(&p, 1, PEER_TIMEOUT_MS);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n > 0)
		return 0;
	snprintf(c->error, sizeof(c->error),
		 "no word from %s for %u s (page server stopped or link down)", c->peer,
		 PEER_TIMEOUT_MS / 1000);
	pr_info("%s", c->error);
	return -ETIMEDOUT;
}

/*
 * A failed SSL call that only has to wait: 0 once it may be retried,
 * -ETIMEDOUT, or 1 if it really failed.
 */
static int tls_wait(struct conn *c, int ret)
{
	switch (SSL_get_error(c->ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return conn_wait(c, true);
	case SSL_ERROR_WANT_WRITE:
		return conn_wait(c, false);
	}
	/*
	 * OpenSSL's socket BIO reports a non-blocking socket's EAGAIN as WANT_*:
	 * an SSL_ERROR_SYSCALL is a real failure (EOF leaves errno untouched, so
	 * a stale EAGAIN must not send us back to wait forever).
	 */
	return 1;
}

static int connect_timeout(int fd, const struct sockaddr *sa, socklen_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int err = 0, flags = fcntl(fd, F_GETFL);
	socklen_t elen = sizeof(err);

	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	if (connect(fd, sa, len) < 0) {
		if (errno != EINPROGRESS)
			return -errno;
		if (poll(&p, 1, CONNECT_TIMEOUT_MS) <= 0)
			return -ETIMEDOUT;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			return -errno;
		if (err)
			return -err;
	}
	return 0;	/* stays non-blocking: every wait is a poll with a deadline */
}

static int tcp_connect(struct conn *c, const char *host, const char *port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res, *ai;
	int ret, fd;

	snprintf(c->peer, sizeof(c->peer), "%s:%s", host, port);
	ret = getaddrinfo(host, port, &hints, &res);
	if (ret) {
		conn_fail(c, "cannot resolve %s: %s", gai_strerror(ret));
		return -EHOSTUNREACH;
	}
	ret = -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			ret = -errno;
			continue;
		}
		ret = connect_timeout(fd, ai->ai_addr, ai->ai_addrlen);
		if (!ret) {
			c->fd = fd;
			break;
		}
		close(fd);
	}
	freeaddrinfo(res);
	if (ret) {
		conn_fail(c, "cannot connect to %s: %s", strerror(-ret));
		return ret;
	}
	set_sock_opts(c->fd);
	return 0;
}

static int tls_connect(struct conn *c, const struct tls_opts *tls)
{
	char why[200];
	int ret;

	c->ctx = tls_ctx_new(tls, false, c->error, sizeof(c->error));
	if (!c->ctx) {
		pr_info("%s", c->error);
		return -EINVAL;
	}
	c->ssl = SSL_new(c->ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
		conn_fail(c, "%s: %s", "out of memory for TLS");
		return -ENOMEM;
	}
	while ((ret = SSL_connect(c->ssl)) != 1) {
		int w = tls_wait(c, ret);

		if (w > 0)
			break;
		if (w < 0)
			return w;
	}
	if (ret != 1) {
		conn_fail(c, "TLS handshake with %s failed: %s",
			  tls_strerror(c->ssl, ret, why, sizeof(why)));
		return -ECONNREFUSED;
	}
	tls_peer_subject(c->ssl, why, sizeof(why));
	pr_info("TLS 1.3 session with %s (%s), peer %s", c->peer, SSL_get_cipher(c->ssl), why);
	return 0;
}

int conn_open(struct conn *c, const char *host, const char *port, const struct tls_opts *tls)
{
	int ret;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	ret = tls_opts_check(tls, c->error, sizeof(c->error));
	if (ret)
		return ret;
	ret = tcp_connect(c, host, port);
	if (ret)
		return ret;
	if (tls->insecure) {
		pr_warn("INSECURE: talking to %s over plain TCP, unauthenticated and unencrypted",
			c->peer);
		return 0;
	}
	ret = tls_connect(c, tls);
	if (ret)
		conn_close(c);
	return ret;
}

static int plain_io(struct conn *c, void *buf, size_t len, bool wr)
{
	char *p = buf;

	while (len) {
		ssize_t n = wr ? send(c->fd, p, len, MSG_NOSIGNAL) : read(c->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			n = conn_wait(c, !wr);
			if (n)
				return n;
			continue;
		}
		if (n < 0) {
			conn_fail(c, "connection to %s: %s", strerror(errno));
			return -errno;
		}
		if (!n) {
			conn_fail(c, "connection to %s: %s", "closed by peer");
			return -ECONNRESET;
		}
		p += n;
		len -= n;
	}
	return 0;
}

static int tls_io(struct conn *c, void *buf, size_t len, bool wr)
{
	char why[200];
	size_t done;
	int ret;

	while (len) {
		ret = wr ? SSL_write_ex(c->ssl, buf, len, &done) :
			   SSL_read_ex(c->ssl, buf, len, &done);
		if (ret != 1) {
			int w = tls_wait(c, ret);

			if (w < 0)
				return w;
			if (!w)
				continue;
		}
		if (ret != 1) {
			conn_fail(c, "TLS session with %s failed: %s",
				  tls_strerror(c->ssl, ret, why, sizeof(why)));
			return -ECONNRESET;
		}
		buf = (char *)buf + done;
		len -= done;
	}
	return 0;
}

int conn_write(struct conn *c, const void *buf, size_t len)
{
	if (c->fd < 0)
		return -ENOTCONN;
	return c->ssl ? tls_io(c, (void *)buf, len, true) : plain_io(c, (void *)buf, len, true);
}

int conn_read(struct conn *c, void *buf, size_t len)
{
	if (c->fd < 0)
		return -ENOTCONN;
	return c->ssl ? tls_io(c, buf, len, false) : plain_io(c, buf, len, false);
}

int conn_read_frame(struct conn *c, uint8_t *buf, size_t cap, struct frame *f)
{
	const char *why;
	int ret;

	do {	/* a ping only proves the peer alive (and restarts the deadline) */
		ret = conn_read(c, buf, FRAME_HDR);
		if (ret)
			return ret;
		ret = frame_check_header(buf, &f->type, &f->len, &why);
	} while (!ret && f->type == FRAME_PING);
	if (!ret && f->len > cap - FRAME_HDR) {
		why = "frame too large for a control frame";
		ret = -EMSGSIZE;
	}
	if (ret) {
		conn_fail(c, "bad frame from %s: %s", why);
		return -EPROTO;
	}
	f->payload = buf + FRAME_HDR;
	return conn_read(c, buf + FRAME_HDR, f->len);
}

int conn_ping(struct conn *c)
{
	uint8_t hdr[FRAME_HDR];

	frame_put_header(hdr, FRAME_PING, 0);
	return conn_write(c, hdr, sizeof(hdr));
}

void conn_close(struct conn *c)
{
	if (c->ssl) {
		/* Best effort close_notify; the peer may be gone. */
		if (c->fd >= 0 && SSL_is_init_finished(c->ssl))
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->ctx) {
		SSL_CTX_free(c->ctx);
		c->ctx = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}
