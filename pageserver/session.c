// SPDX-License-Identifier: MIT
/*
 * Page server sessions on the libuv loop: accept, TLS through memory BIOs,
 * framing, the per-session state machine and flow control. Stack writes
 * are queued to session_work.c; the restore to session_restore.c.
 */
#include <errno.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pageserver/session.h"
#include "transport/tls.h"

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* --- lifetime --- */

void session_get(struct session *s)
{
	s->refs++;
}

static int open_stack(struct session *s);

/* A session waiting for this one's migration id may open it now. */
static void wake_waiter(struct session *gone)
{
	struct session *s;

	if (!gone->id[0])
		return;
	for (s = gone->srv->sessions; s; s = s->next) {
		if (s->wait_id && !s->closing && !strcmp(s->id, gone->id)) {
			s->wait_id = false;
			open_stack(s);
			return;
		}
	}
}

static void session_free(struct session *s)
{
	struct server *srv = s->srv;
	unsigned int i;

	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->nr_sessions--;
	wake_waiter(s);
	if (srv->once)
		srv->exit_code = s->failed || !(s->completed || s->rounds_done) ? 1 : 0;
	if (srv->once || srv->stopping)
		server_stop(srv, "--once: the session is over");
	if (s->ssl)
		SSL_free(s->ssl);	/* frees both BIOs */
	else if (s->rbio)
		BIO_free(s->rbio);
	if (s->fbuf) {
		srv->file_bytes -= s->fsize;
		free(s->fbuf);
	}
	for (i = 0; i < s->nr_free; i++)
		free(s->pool[i]);
	free(s->rx);
	free(s->scratch);
	free(s);
}

void session_put(struct session *s)
{
	if (--s->refs == 0)
		session_free(s);
}

static void on_handle_closed(uv_handle_t *h)
{
	session_put(h->data);
}

/*
 * End the session's connection. Work in flight finishes; then the stack
 * is closed (an open round aborted) by a teardown item.
 */
void session_drop(struct session *s, bool failed, const char *why)
{
	struct ps_work *w;

	if (s->closing)
		return;
	s->closing = true;
	s->failed |= failed;
	if (failed)
		sess_err(s, "dropped: %s", why);
	else
		sess_info(s, "closed: %s", why);
	uv_read_stop((uv_stream_t *)&s->tcp);
	s->reading = false;
	uv_timer_stop(&s->timer);
	uv_close((uv_handle_t *)&s->timer, on_handle_closed);
	uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
	session_restore_abort(s);
	session_queue_discard(s);
	w = work_new(W_TEARDOWN);
	if (w)
		session_queue(s, w);
	else
		sess_err(s, "out of memory: stack of %s left open", s->id);
}

static int sess_proto(struct session *s, const char *fmt, const char *arg)
{
	char why[256];

	snprintf(why, sizeof(why), fmt, arg);
	session_drop(s, true, why);
	return -EPROTO;
}

/* --- buffers --- */

static void round_fail(struct session *s, int err, const char *what);

static int pool_init(struct session *s)
{
	unsigned int i;

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
static void flush_batch(struct session *s)
{
	struct ps_work *w;

	if (!s->rx_batched)
		return;
	w = work_new(W_PAGES);
	if (!w) {
		s->rx_base = s->rx_batched = 0;
		round_fail(s, -ENOMEM, "page server");
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

int session_send_msg(struct session *s, uint32_t type, const ProtobufCMessage *msg)
{
	uint8_t buf[FRAME_HDR + FRAME_CTL_MAX];
	ssize_t n = frame_put_msg(buf, sizeof(buf), type, msg);

	if (n < 0)
		return n;
	if (s->closing)
		return -ENOTCONN;
	if (!s->ssl)
		return sock_write(s, buf, n);
	if (SSL_write(s->ssl, buf, n) != n)
		return -EIO;	/* memory BIO: only a broken session fails */
	return flush_tls(s);
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
	if (pool_init(s))
		return sess_proto(s, "%s", "out of memory");
	s->state = S_HELLO;
	return 1;
}

static bool session_blocked(const struct session *s)
{
	if (s->state == S_OPENING || s->state == S_COMMITTING || s->state == S_RESTORING)
		return true;
	return s->state != S_HANDSHAKE && !s->rx;
}

static void update_reading(struct session *s)
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
	default:
		session_drop(s, true, "peer closed the connection before the session began");
	}
}

static int session_dispatch(struct session *s);

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
		if (ret <= 0 || session_dispatch(s))
			break;
	}
	/* Input ran dry: do not keep the disk waiting for a fuller batch. */
	if (!s->closing && s->rx && !s->rx_len)
		flush_batch(s);
	if (!s->closing) {
		flush_tls(s);
		update_reading(s);
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

/* --- frames --- */

#define NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

static bool id_valid(const char *id)
{
	size_t n = strlen(id);

	return n >= 1 && n <= 64 && strspn(id, NAME_CHARS) == n;
}

/* Another session holding @id, or NULL. */
static struct session *id_owner(struct server *srv, const struct session *self, const char *id)
{
	struct session *s;

	for (s = srv->sessions; s; s = s->next)
		if (s != self && !strcmp(s->id, id))
			return s;
	return NULL;
}

static int refuse_hello(struct session *s, const char *why)
{
	HelloReply hr = HELLO_REPLY__INIT;

	hr.ok = false;
	hr.migration_id = s->id;
	hr.error = (char *)why;
	session_send_msg(s, FRAME_HELLO_REPLY, &hr.base);
	session_drop(s, true, why);
	return -EPROTO;
}

static int open_stack(struct session *s)
{
	struct ps_work *w = work_new(W_OPEN);

	if (!w)
		return refuse_hello(s, "out of memory");
	snprintf(w->name, sizeof(w->name), "%s", s->id);
	session_queue(s, w);
	return 0;
}

static int on_hello(struct session *s, const struct frame *f)
{
	struct session *owner;
	char why[200];
	const char *reason;
	Hello *h;

	if (f->type != FRAME_HELLO)
		return sess_proto(s, "expected hello, got %s", frame_type_name(f->type));
	h = frame_unpack_msg(f, &hello__descriptor, &reason);
	if (!h)
		return sess_proto(s, "bad hello: %s", reason);
	uv_timer_stop(&s->timer);
	if (h->version != WIRE_VERSION) {
		snprintf(why, sizeof(why), "protocol version %u not supported (this page server "
			 "speaks %u)", h->version, WIRE_VERSION);
		goto refuse;
	}
	if (h->migration_id && !id_valid(h->migration_id)) {
		snprintf(why, sizeof(why), "bad migration id (want [A-Za-z0-9._-]{1,64})");
		goto refuse;
	}
	owner = h->migration_id ? id_owner(s->srv, s, h->migration_id) : NULL;
	if (owner && (!owner->closing || owner->wait_id)) {
		snprintf(why, sizeof(why), "migration %s is busy: another session writes it",
			 h->migration_id);
		goto refuse;
	}
	snprintf(s->id, sizeof(s->id), "%s", h->migration_id ? h->migration_id : "");
	sess_info(s, "hello from %s, root pid %u, %s%s", h->source_host ? h->source_host : "?",
		  h->root_pid, h->migration_id ? "resuming " : "new migration", s->id);
	hello__free_unpacked(h, NULL);
	s->state = S_OPENING;
	/* The last session of this id is still closing its stack: open after it. */
	if (owner) {
		sess_info(s, "waiting for session %lu to let go of %s", owner->sid, s->id);
		s->wait_id = true;
		return 0;
	}
	return open_stack(s);
refuse:
	hello__free_unpacked(h, NULL);
	return refuse_hello(s, why);
}

static void opened(struct session *s, struct ps_work *w)
{
	HelloReply hr = HELLO_REPLY__INIT;
	char why[200];

	if (w->err) {
		snprintf(why, sizeof(why), "cannot open migration %s: %s",
			 s->id[0] ? s->id : "(new)", strerror(-w->err));
		refuse_hello(s, why);
		return;
	}
	snprintf(s->id, sizeof(s->id), "%s", stack_writer_id(s->sw));
	s->next_round = stack_writer_next_round(s->sw);
	hr.ok = true;
	hr.migration_id = s->id;
	hr.next_round = s->next_round;
	sess_info(s, "migration %s in %s, next round %u", s->id, stack_writer_dir(s->sw),
		  s->next_round);
	s->state = S_IDLE;
	if (session_send_msg(s, FRAME_HELLO_REPLY, &hr.base))
		session_drop(s, true, "cannot send hello_reply");
}

static int on_round_begin(struct session *s, const struct frame *f)
{
	const char *reason;
	struct ps_work *w;
	RoundBegin *rb;
	char why[100];

	if (f->type != FRAME_ROUND_BEGIN)
		return sess_proto(s, "expected round_begin, got %s", frame_type_name(f->type));
	rb = frame_unpack_msg(f, &round_begin__descriptor, &reason);
	if (!rb)
		return sess_proto(s, "bad round_begin: %s", reason);
	if (rb->round != s->next_round) {
		snprintf(why, sizeof(why), "round_begin %u, expected %u", rb->round, s->next_round);
		round_begin__free_unpacked(rb, NULL);
		return sess_proto(s, "%s", why);
	}
	s->round = rb->round;
	s->final = rb->final;
	round_begin__free_unpacked(rb, NULL);
	w = work_new(W_BEGIN);
	if (!w)
		return sess_proto(s, "%s", "out of memory");
	w->round = s->round;
	w->final = s->final;
	s->round_err = 0;
	s->round_msg[0] = 0;
	s->pages_rcvd = 0;
	s->round_t0 = uv_hrtime();
	s->state = S_ROUND;
	sess_info(s, "%s round %u begins", s->final ? "final" : "pre-copy", s->round);
	session_queue(s, w);
	return 0;
}

/* First failure of a round wins; the rest of the round is read and dropped. */
static void round_fail(struct session *s, int err, const char *what)
{
	if (s->round_err)
		return;
	s->round_err = err;
	snprintf(s->round_msg, sizeof(s->round_msg), "%.140s: %s", what, strerror(-err));
	sess_err(s, "round %u failed: %s", s->round, s->round_msg);
}

static int on_pages(struct session *s, const struct frame *f)
{
	struct page_batch pb;
	const char *reason;

	if (page_batch_parse(f->payload, f->len, &pb, &reason))
		return sess_proto(s, "bad page batch: %s", reason);
	s->pages_rcvd += pb.nr_pages;
	if (s->round_err)
		return 0;
	/* Keep the frame where it is; the batch goes out when the next might not fit. */
	s->rx_base += FRAME_HDR + f->len;
	s->rx_len = 0;
	s->rx_batched++;
	if (RXBUF_SIZE - s->rx_base <= FRAME_MAX)
		flush_batch(s);
	return 0;
}

static bool fname_valid(const char *name)
{
	size_t n = strlen(name);

	return n >= 1 && n <= 255 && strcmp(name, ".") && strcmp(name, "..") &&
	       strspn(name, NAME_CHARS) == n;
}

static void file_done(struct session *s)
{
	struct ps_work *w;

	s->state = S_ROUND;
	if (s->fdiscard || s->round_err)
		goto drop;
	w = work_new(W_FILE);
	if (!w) {
		round_fail(s, -ENOMEM, s->fname);
		goto drop;
	}
	snprintf(w->name, sizeof(w->name), "%s", s->fname);
	w->buf = s->fbuf;
	w->len = s->fsize;
	s->fbuf = NULL;
	flush_batch(s);		/* frame order: pages sent before the file first */
	session_queue(s, w);
	return;
drop:
	if (s->fbuf)
		s->srv->file_bytes -= s->fsize;
	free(s->fbuf);
	s->fbuf = NULL;
}

static int on_file_head(struct session *s, const struct frame *f)
{
	const char *reason;
	FileHead *fh;

	fh = frame_unpack_msg(f, &file_head__descriptor, &reason);
	if (!fh)
		return sess_proto(s, "bad file_head: %s", reason);
	snprintf(s->fname, sizeof(s->fname), "%s", fh->name);
	s->fsize = fh->size;
	file_head__free_unpacked(fh, NULL);
	if (s->fsize > FILE_MAX)
		return sess_proto(s, "file %.100s larger than the wire allows", s->fname);
	s->fgot = 0;
	s->fdiscard = !!s->round_err;
	if (!fname_valid(s->fname)) {
		round_fail(s, -EINVAL, "bad image file name");
		s->fdiscard = true;
	} else if (!s->fdiscard && s->srv->file_bytes + s->fsize > FILE_BUDGET) {
		round_fail(s, -ENOMEM, "page server file memory budget");
		s->fdiscard = true;
	} else if (!s->fdiscard && s->fsize) {
		s->fbuf = malloc(s->fsize);
		if (!s->fbuf) {
			round_fail(s, -ENOMEM, s->fname);
			s->fdiscard = true;
		} else {
			s->srv->file_bytes += s->fsize;
		}
	}
	s->state = S_FILE;
	if (!s->fsize)
		file_done(s);
	return 0;
}

static int on_file_data(struct session *s, const struct frame *f)
{
	if (f->type != FRAME_FILE_DATA)
		return sess_proto(s, "expected file_data, got %s", frame_type_name(f->type));
	if (f->len > s->fsize - s->fgot)
		return sess_proto(s, "file %.100s: data runs past its size", s->fname);
	if (s->fbuf)
		memcpy(s->fbuf + s->fgot, f->payload, f->len);
	s->fgot += f->len;
	if (s->fgot == s->fsize)
		file_done(s);
	return 0;
}

static int on_round_end(struct session *s, const struct frame *f)
{
	const char *reason;
	struct ps_work *w;
	RoundEnd *re;
	char why[160];
	uint64_t sent;
	uint32_t round;

	re = frame_unpack_msg(f, &round_end__descriptor, &reason);
	if (!re)
		return sess_proto(s, "bad round_end: %s", reason);
	round = re->round;
	sent = re->pages_sent;
	round_end__free_unpacked(re, NULL);
	if (round != s->round) {
		snprintf(why, sizeof(why), "round_end %u in round %u", round, s->round);
		return sess_proto(s, "%s", why);
	}
	if (sent != s->pages_rcvd) {
		snprintf(why, sizeof(why), "%llu pages received, %llu sent",
			 (unsigned long long)s->pages_rcvd, (unsigned long long)sent);
		round_fail(s, -EPROTO, why);
	}
	w = work_new(W_COMMIT);
	if (!w)
		return sess_proto(s, "%s", "out of memory");
	w->round = round;
	s->state = S_COMMITTING;
	flush_batch(s);
	session_queue(s, w);
	return 0;
}

static int on_round_frame(struct session *s, const struct frame *f)
{
	switch (f->type) {
	case FRAME_PAGES:
		return on_pages(s, f);
	case FRAME_FILE_HEAD:
		return on_file_head(s, f);
	case FRAME_ROUND_END:
		return on_round_end(s, f);
	}
	return sess_proto(s, "unexpected %s inside a round", frame_type_name(f->type));
}

static int session_dispatch(struct session *s)
{
	struct frame f = { .type = s->rx_type, .len = s->rx_flen,
			   .payload = s->rx + s->rx_base + FRAME_HDR };
	int ret;

	sess_debug(s, "frame %s, %u bytes", frame_type_name(f.type), f.len);
	switch (s->state) {
	case S_HELLO:
		ret = on_hello(s, &f);
		break;
	case S_IDLE:
		ret = on_round_begin(s, &f);
		break;
	case S_ROUND:
		ret = on_round_frame(s, &f);
		break;
	case S_FILE:
		ret = on_file_data(s, &f);
		break;
	default:
		ret = sess_proto(s, "unexpected %s", frame_type_name(f.type));
	}
	/* A page frame joined the batch, or the frame was used up. */
	if (s->rx)
		s->rx_len = 0;
	return ret;
}

/* --- work results --- */

static void send_ack(struct session *s, struct ps_work *w, bool ok)
{
	RoundAck ack = ROUND_ACK__INIT;

	ack.round = s->round;
	ack.ok = ok;
	ack.error = ok ? NULL : s->round_msg;
	ack.has_pages_stored = ack.has_pages_zero = ok;
	ack.has_bytes_written = ack.has_bytes_punched = ok;
	ack.pages_stored = w->st.pages_present;
	ack.pages_zero = w->st.pages_zero;
	ack.bytes_written = w->st.bytes_written;
	ack.bytes_punched = w->st.bytes_punched;
	ack.has_prefilled_round = s->child && !s->stream_broken;
	ack.prefilled_round = s->prefilled;
	if (session_send_msg(s, FRAME_ROUND_ACK, &ack.base))
		session_drop(s, true, "cannot send round_ack");
}

static void committed(struct session *s, struct ps_work *w)
{
	bool ok = !w->abort && !w->err;

	if (!ok && !s->round_err)
		round_fail(s, w->err, "commit");
	if (ok) {
		sess_info(s, "round %u of %s committed in %llu ms: %llu pages stored, %llu zero, "
			  "%llu bytes written, %llu punched", s->round, s->id,
			  (unsigned long long)(uv_hrtime() - s->round_t0) / 1000000,
			  (unsigned long long)w->st.pages_present,
			  (unsigned long long)w->st.pages_zero,
			  (unsigned long long)w->st.bytes_written,
			  (unsigned long long)w->st.bytes_punched);
		s->next_round = s->round + 1;
		s->rounds_done++;
	} else {
		s->failed = true;
	}
	s->state = S_IDLE;
	send_ack(s, w, ok);
	if (!ok || s->closing)
		return;
	if (s->final) {
		s->state = S_RESTORING;
		session_restore_start(s);
	} else {
		session_restore_round(s);
	}
}

void session_work_done(struct session *s, struct ps_work *w)
{
	switch (w->kind) {
	case W_OPEN:
		opened(s, w);
		break;
	case W_PAGES:
		if (w->garbage) {
			session_drop(s, true, "bad page batch: corrupt lz4 data");
			break;
		}
		/* fall through */
	case W_BEGIN:
		if (w->err)
			round_fail(s, w->err, w->kind == W_BEGIN ? "begin round" : "store pages");
		break;
	case W_FILE:
		if (w->err)
			round_fail(s, w->err, w->name);
		break;
	case W_COMMIT:
		committed(s, w);
		break;
	case W_TEARDOWN:
		break;
	}
}

/* --- accept --- */

static void peer_name(uv_tcp_t *tcp, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	int n = sizeof(ss);
	char host[64] = "?";
	int port = 0;

	if (!uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &n)) {
		if (ss.ss_family == AF_INET6) {
			uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof(host));
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		} else {
			uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof(host));
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		}
	}
	snprintf(buf, len, "%s:%d", host, port);
}

static int session_tls_init(struct session *s)
{
	if (!s->srv->ssl_ctx) {
		s->rbio = BIO_new(BIO_s_mem());
		if (!s->rbio || pool_init(s))
			return -ENOMEM;
		s->state = S_HELLO;
		return 0;
	}
	s->ssl = SSL_new(s->srv->ssl_ctx);
	s->rbio = BIO_new(BIO_s_mem());
	s->wbio = BIO_new(BIO_s_mem());
	if (!s->ssl || !s->rbio || !s->wbio) {
		BIO_free(s->rbio);
		BIO_free(s->wbio);
		s->rbio = s->wbio = NULL;
		return -ENOMEM;
	}
	SSL_set_bio(s->ssl, s->rbio, s->wbio);
	SSL_set_accept_state(s->ssl);
	s->state = S_HANDSHAKE;
	return 0;
}

static void on_timeout(uv_timer_t *t)
{
	session_drop(t->data, true, "no hello within the handshake timeout");
}

static void on_refused_closed(uv_handle_t *h)
{
	free(h);
}

static void refuse_conn(struct server *srv, const char *why)
{
	uv_tcp_t *tcp = malloc(sizeof(*tcp));
	char peer[80];

	if (!tcp)
		return;
	uv_tcp_init(srv->loop, tcp);
	if (!uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)tcp)) {
		peer_name(tcp, peer, sizeof(peer));
		pr_warn("refusing connection from %s: %s", peer, why);
	}
	uv_close((uv_handle_t *)tcp, on_refused_closed);
}

static void session_link(struct server *srv, struct session *s)
{
	s->srv = srv;
	s->sid = ++srv->next_sid;
	s->next = srv->sessions;
	if (s->next)
		s->next->prev = s;
	srv->sessions = s;
	srv->nr_sessions++;
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct server *srv = listener->data;
	struct session *s;

	if (status < 0) {
		pr_err("accept: %s", uv_strerror(status));
		return;
	}
	if (srv->nr_sessions >= MAX_SESSIONS) {
		refuse_conn(srv, "too many sessions");
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		refuse_conn(srv, "out of memory");
		return;
	}
	session_link(srv, s);
	uv_tcp_init(srv->loop, &s->tcp);
	uv_timer_init(srv->loop, &s->timer);
	s->tcp.data = s->timer.data = s;
	s->refs = 2;	/* tcp + timer */
	if (uv_accept(listener, (uv_stream_t *)&s->tcp)) {
		session_drop(s, true, "accept failed");
		return;
	}
	peer_name(&s->tcp, s->peer, sizeof(s->peer));
	sess_info(s, "connected");
	uv_tcp_nodelay(&s->tcp, 1);
	uv_tcp_keepalive(&s->tcp, 1, 10);
	if (session_tls_init(s)) {
		session_drop(s, true, "out of memory");
		return;
	}
	uv_timer_start(&s->timer, on_timeout, HANDSHAKE_TIMEOUT_MS, 0);
	/* --once serves exactly one session: stop listening now. */
	if (srv->once && srv->listening) {
		srv->listening = false;
		uv_close((uv_handle_t *)&srv->listener, NULL);
	}
	update_reading(s);
}

static int bind_addr(const char *host, const char *port, struct sockaddr_storage *ss)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *res;
	int ret;

	ret = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (ret) {
		pr_err("cannot resolve %s: %s", host, gai_strerror(ret));
		return -EINVAL;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

int server_listen(struct server *srv, const char *host, const char *port)
{
	struct sockaddr_storage ss;
	int ret;

	if (!*host)
		host = "0.0.0.0";
	ret = bind_addr(host, port, &ss);
	if (ret)
		return ret;
	uv_tcp_init(srv->loop, &srv->listener);
	srv->listener.data = srv;
	srv->listening = true;
	ret = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0);
	if (!ret)
		ret = uv_listen((uv_stream_t *)&srv->listener, 16, on_connection);
	if (ret) {
		pr_err("cannot listen on %s:%s: %s", host, port, uv_strerror(ret));
		return ret;
	}
	pr_info("listening on %s:%s (%s), images in %s", host, port,
		srv->ssl_ctx ? "TLS 1.3, client certificates required" : "INSECURE plain TCP",
		srv->images_dir);
	return 0;
}

/* Stop listening, end every session, let the loop run dry. */
void server_stop(struct server *srv, const char *why)
{
	struct session *s;

	if (!srv->stopping)
		pr_info("stopping: %s", why);
	srv->stopping = true;
	if (srv->listening) {
		srv->listening = false;
		uv_close((uv_handle_t *)&srv->listener, NULL);
	}
	for (s = srv->sessions; s; s = s->next)
		session_drop(s, s->state != S_IDLE && s->state != S_DONE, why);
	if (!srv->nr_sessions) {
		if (!uv_is_closing((uv_handle_t *)&srv->sig_int))
			uv_close((uv_handle_t *)&srv->sig_int, NULL);
		if (!uv_is_closing((uv_handle_t *)&srv->sig_term))
			uv_close((uv_handle_t *)&srv->sig_term, NULL);
	}
}
