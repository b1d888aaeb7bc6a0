// SPDX-License-Identifier: MIT
/*
 * Page server, the session I/O layer: socket bytes into the read BIO, TLS
 * (or plain bytes) out of it, frames assembled in the receive buffers, page
 * frames batched for the disk, and messages written back through TLS.
 * Whole frames go to session_dispatch() (session.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pageserver/session.h"
#include "transport/tls.h"

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* --- buffers --- */

/* Before hello: room for one control frame only (strangers cost little). */
int session_pending_rx(struct session *s)
{
	s->rx = malloc(PENDING_RX);
	s->rx_base = s->rx_len = 0;
	return s->rx ? 0 : -ENOMEM;
}

/* At hello: the receive buffers of a real session replace the small one. */
int session_pool_init(struct session *s)
{
	unsigned int i;

	free(s->rx);
	s->rx = NULL;
	s->rx_base = s->rx_len = 0;
	for (i = 0; i < NR_RXBUF; i++) {
		s->pool[i] = malloc(RXBUF_SIZE);
		if (!s->pool[i])
			return -ENOMEM;
		s->nr_free++;
	}
	s->scratch = malloc(PB_MAX_DATA);
	if (!s->scratch)
		return -ENOMEM;
	s->rx = s->pool[--s->nr_free];
	return 0;
}

void session_pool_put(struct session *s, uint8_t *buf)
{
	if (!s->rx) {
		s->rx = buf;
		s->rx_base = s->rx_len = 0;
	} else {
		s->pool[s->nr_free++] = buf;
	}
}

/*
 * Hand the batched page frames to the disk as one work item (one thread
 * pool round trip for many small frames); continue in a fresh buffer.
 * The frame at rx_base, if any, must be consumed already.
 */
void session_flush_batch(struct session *s)
{
	struct ps_work *w;

	if (!s->rx_batched)
		return;
	w = work_new(W_PAGES);
	if (!w) {
		s->rx_base = s->rx_batched = 0;
		session_round_fail(s, -ENOMEM, "page server");
		return;
	}
	w->buf = s->rx;
	w->len = s->rx_base;
	s->rx = s->nr_free ? s->pool[--s->nr_free] : NULL;
	s->rx_base = s->rx_len = 0;
	s->rx_batched = 0;
	session_queue(s, w);
}

/* --- output --- */

struct wreq {
	uv_write_t req;
	struct session *s;
	char data[];
};

static void on_written(uv_write_t *req, int status)
{
	struct wreq *wr = (struct wreq *)req;
	struct session *s = wr->s;

	free(wr);
	if (status < 0 && !s->closing)
		session_drop(s, true, uv_strerror(status));
}

static int sock_write(struct session *s, const void *data, size_t len)
{
	struct wreq *wr;
	uv_buf_t b;
	int ret;

	if (s->closing)
		return -ENOTCONN;
	wr = malloc(sizeof(*wr) + len);
	if (!wr)
		return -ENOMEM;
	wr->s = s;
	memcpy(wr->data, data, len);
	b = uv_buf_init(wr->data, len);
	ret = uv_write(&wr->req, (uv_stream_t *)&s->tcp, &b, 1, on_written);
	if (ret) {
		free(wr);
		return ret;
	}
	return 0;
}

/* Send what TLS produced (handshake records, alerts, application data). */
static int flush_tls(struct session *s)
{
	char buf[16 << 10];
	int n, ret;

	if (!s->wbio)
		return 0;
	while ((n = BIO_read(s->wbio, buf, sizeof(buf))) > 0) {
		ret = sock_write(s, buf, n);
		if (ret)
			return ret;
	}
	return 0;
}

static int session_send(struct session *s, const uint8_t *buf, size_t n)
{
	if (s->closing)
		return -ENOTCONN;
	s->last_tx = uv_now(s->srv->loop);
	if (!s->ssl)
		return sock_write(s, buf, n);
	if (SSL_write(s->ssl, buf, n) != (int)n)
		return -EIO;	/* memory BIO: only a broken session fails */
	return flush_tls(s);
}

int session_send_msg(struct session *s, uint32_t type, const ProtobufCMessage *msg)
{
	uint8_t buf[FRAME_HDR + FRAME_CTL_MAX];
	ssize_t n = frame_put_msg(buf, sizeof(buf), type, msg);

	if (n < 0)
		return n;
	return session_send(s, buf, n);
}

int session_send_ping(struct session *s)
{
	uint8_t buf[FRAME_HDR];

	return session_send(s, buf, frame_put_header(buf, FRAME_PING, 0));
}

/* --- input --- */

/* Up to len plaintext bytes: count, 0 if none buffered, -errno. */
static int session_read(struct session *s, void *buf, size_t len)
{
	char why[200];
	int n, err;

	if (!s->ssl) {
		n = BIO_read(s->rbio, buf, len);
		return n > 0 ? n : 0;
	}
	n = SSL_read(s->ssl, buf, len);
	if (n > 0)
		return n;
	err = SSL_get_error(s->ssl, n);
	if (err == SSL_ERROR_WANT_READ)
		return 0;
	if (err == SSL_ERROR_ZERO_RETURN)
		return -ECONNRESET;
	flush_tls(s);
	sess_proto(s, "TLS error: %s", tls_strerror(s->ssl, n, why, sizeof(why)));
	return -EPROTO;
}

/* 1 when rx holds one whole frame, 0 if more bytes are needed, -errno. */
static int session_fill(struct session *s)
{
	size_t need = s->rx_len < FRAME_HDR ? FRAME_HDR : FRAME_HDR + s->rx_flen;
	uint8_t *f = s->rx + s->rx_base;
	char why[200];
	const char *reason;
	int n;

	while (s->rx_len < need) {
		n = session_read(s, f + s->rx_len, need - s->rx_len);
		if (n <= 0)
			return n;
		s->rx_len += n;
		if (s->rx_len != FRAME_HDR)
			continue;
		if (frame_check_header(f, &s->rx_type, &s->rx_flen, &reason)) {
			snprintf(why, sizeof(why), "bad frame: %s (type %u, length %u)", reason,
				 get_le32(f), get_le32(f + 4));
			return sess_proto(s, "%s", why);
		}
		/* Before hello the buffer holds one control frame: nothing else fits. */
		if (s->pending && s->rx_type != FRAME_HELLO && s->rx_type != FRAME_PING)
			return sess_proto(s, "expected hello, got %s", frame_type_name(s->rx_type));
		need = FRAME_HDR + s->rx_flen;
	}
	return 1;
}

static int session_handshake(struct session *s)
{
	char why[256];
	int ret = SSL_do_handshake(s->ssl);

	flush_tls(s);
	if (ret != 1) {
		if (SSL_get_error(s->ssl, ret) == SSL_ERROR_WANT_READ)
			return 0;
		snprintf(why, sizeof(why), "TLS handshake failed: ");
		tls_strerror(s->ssl, ret, why + strlen(why), sizeof(why) - strlen(why));
		return sess_proto(s, "%s", why);
	}
	tls_peer_subject(s->ssl, why, sizeof(why));
	sess_info(s, "TLS 1.3 (%s), client certificate %s", SSL_get_cipher(s->ssl), why);
	if (session_pending_rx(s))
		return sess_proto(s, "%s", "out of memory");
	s->state = S_HELLO;
	return 1;
}

bool session_working(const struct session *s)
{
	return s->state == S_OPENING || s->state == S_COMMITTING || s->state == S_RESTORING ||
	       s->state == S_HELD || s->state == S_POSTCOPY;
}

static bool session_blocked(const struct session *s)
{
	/* post-copy pages go to the restore's pipe: it sets the pace */
	if (session_pc_relaying(s))
		return s->pc_queued >= PC_QUEUE_MAX;
	if (s->state == S_HELD)
		return false;	/* waiting for commit (or EOF: the restore discards) */
	if (session_working(s))
		return true;
	return s->state != S_HANDSHAKE && !s->rx;
}

void session_update_reading(struct session *s)
{
	bool want = !s->closing && !session_blocked(s);

	if (want && !s->reading)
		uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
	else if (!want && s->reading)
		uv_read_stop((uv_stream_t *)&s->tcp);
	s->reading = want;
}

static void session_eof(struct session *s)
{
	char why[128];

	switch (s->state) {
	case S_IDLE:
		session_drop(s, !s->rounds_done, "peer closed the connection");
		break;
	case S_DONE:
		session_drop(s, false, "peer closed the connection");
		break;
	case S_ROUND:
	case S_FILE:
		snprintf(why, sizeof(why), "peer vanished in the middle of round %u", s->round);
		session_drop(s, true, why);
		break;
	case S_HELD:
		session_drop(s, true, "peer closed the connection before commit: the held "
			     "restore is discarded");
		break;
	case S_RESTORING:
	case S_POSTCOPY:
		if (session_pc_relaying(s)) {
			session_drop(s, true, "the source closed the connection during post-copy: "
				     "pages only it holds can no longer come");
			break;
		}
		/* fall through */
	default:
		session_drop(s, true, "peer closed the connection before the session began");
	}
}

void session_pump(struct session *s)
{
	int ret;

	while (!s->closing && !session_blocked(s)) {
		if (s->state == S_HANDSHAKE) {
			if (session_handshake(s) <= 0)
				break;
			continue;
		}
		ret = session_fill(s);
		if (ret == -ECONNRESET)
			session_eof(s);
		if (ret <= 0)
			break;
		s->last_rx = uv_now(s->srv->loop);	/* any frame restarts the idle deadline */
		if (s->rx_type == FRAME_PING) {
			s->rx_len = 0;
			continue;
		}
		if (session_dispatch(s))
			break;
	}
	/* Input ran dry: do not keep the disk waiting for a fuller batch. */
	if (!s->closing && s->rx && !s->rx_len)
		session_flush_batch(s);
	if (!s->closing) {
		flush_tls(s);
		session_update_reading(s);
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct session *s = h->data;

	(void)suggested;
	*buf = uv_buf_init(s->srv->inbuf, sizeof(s->srv->inbuf));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct session *s = stream->data;

	if (s->closing)
		return;
	if (nread > 0) {
		if (BIO_write(s->rbio, buf->base, nread) != nread) {
			session_drop(s, true, "out of memory");
			return;
		}
		session_pump(s);
	} else if (nread == UV_EOF) {
		session_eof(s);
	} else if (nread < 0) {
		session_drop(s, true, uv_strerror(nread));
	}
}
