// SPDX-License-Identifier: MIT
/*
 * Remote sink: rounds go to a page server. The caller's thread splits out
 * zero pages and compresses into a small ring of transmit buffers; a
 * sender thread encrypts and writes them, so reading/compressing and
 * TLS/TCP run on two cores. Memory is the ring, nothing more: when every
 * buffer is queued the caller waits for the sender.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "transport/conn.h"
#include "transport/frame.h"
#include "transport/sink.h"

#define NR_TX		4
#define TX_SUBMIT	(256u << 10)	/* hand a buffer over once it holds this much */
#define TX_CAP		(TX_SUBMIT + FRAME_MAX)

struct txbuf {
	uint8_t *data;
	size_t len;
};

struct sink_remote {
	struct sink sink;
	struct conn conn;

	pthread_t tx_thread;
	bool tx_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct txbuf tx[NR_TX];
	/* Ring: the sender takes tx_head, the caller fills tx_tail. */
	unsigned int tx_head, tx_tail, nr_ready;
	int tx_err;
	bool tx_stop;

	bool in_round, final, final_done;
	uint32_t round;
	uint64_t pages_sent;
	uint8_t rx[FRAME_HDR + FRAME_CTL_MAX];
	struct pc_source *pc;	/* post-copy: page requests are answered from it */
	uint8_t *pc_buf;	/* PB_MAX_DATA: the pages being sent */
};

#define to_remote(s) ((struct sink_remote *)(s))

static void *tx_main(void *arg)
{
	struct sink_remote *sr = arg;
	struct txbuf *b;
	int err;

	pthread_mutex_lock(&sr->lock);
	for (;;) {
		while (!sr->nr_ready && !sr->tx_stop)
			pthread_cond_wait(&sr->cond, &sr->lock);
		if (!sr->nr_ready)
			break;
		b = &sr->tx[sr->tx_head];
		err = sr->tx_err;
		pthread_mutex_unlock(&sr->lock);
		/* After an error, drain without writing so the caller never waits forever. */
		if (!err)
			err = conn_write(&sr->conn, b->data, b->len);
		pthread_mutex_lock(&sr->lock);
		b->len = 0;
		if (err && !sr->tx_err)
			sr->tx_err = err;
		sr->tx_head = (sr->tx_head + 1) % NR_TX;
		sr->nr_ready--;
		pthread_cond_broadcast(&sr->cond);
	}
	pthread_mutex_unlock(&sr->lock);
	return NULL;
}

static int tx_error(struct sink_remote *sr, int err)
{
	snprintf(sr->sink.error, sizeof(sr->sink.error), "%s", sr->conn.error[0] ?
		 sr->conn.error : strerror(-err));
	return err;
}

/* Queue the buffer being filled; wait until the next slot is free. */
static int tx_submit(struct sink_remote *sr)
{
	int err;

	pthread_mutex_lock(&sr->lock);
	if (sr->tx[sr->tx_tail].len) {
		sr->tx_tail = (sr->tx_tail + 1) % NR_TX;
		sr->nr_ready++;
		pthread_cond_broadcast(&sr->cond);
	}
	while (sr->nr_ready == NR_TX)
		pthread_cond_wait(&sr->cond, &sr->lock);
	err = sr->tx_err;
	pthread_mutex_unlock(&sr->lock);
	return err ? tx_error(sr, err) : 0;
}

/* Everything queued is written (or failed). */
static int tx_flush(struct sink_remote *sr)
{
	int err = tx_submit(sr);

	if (err)
		return err;
	pthread_mutex_lock(&sr->lock);
	while (sr->nr_ready)
		pthread_cond_wait(&sr->cond, &sr->lock);
	err = sr->tx_err;
	pthread_mutex_unlock(&sr->lock);
	return err ? tx_error(sr, err) : 0;
}

/* Room for @need more bytes in the buffer being filled. */
static uint8_t *tx_reserve(struct sink_remote *sr, size_t need, int *err)
{
	struct txbuf *b = &sr->tx[sr->tx_tail];

	*err = 0;
	if (b->len + need > TX_CAP) {
		*err = tx_submit(sr);
		if (*err)
			return NULL;
		b = &sr->tx[sr->tx_tail];
	}
	return b->data + b->len;
}

static int tx_commit(struct sink_remote *sr, size_t n)
{
	struct txbuf *b = &sr->tx[sr->tx_tail];

	b->len += n;
	sr->sink.stats.wire_bytes += n;
	return b->len >= TX_SUBMIT ? tx_submit(sr) : 0;
}

static int send_msg(struct sink_remote *sr, uint32_t type, const ProtobufCMessage *msg)
{
	uint8_t *p;
	ssize_t n;
	int err;

	p = tx_reserve(sr, FRAME_HDR + FRAME_CTL_MAX, &err);
	if (!p)
		return err;
	n = frame_put_msg(p, FRAME_HDR + FRAME_CTL_MAX, type, msg);
	if (n < 0)
		return n;
	return tx_commit(sr, n);
}

static int send_pages(struct sink_remote *sr, uint32_t pid, uint64_t vaddr, uint32_t nr,
		      const void *data)
{
	size_t need = FRAME_HDR + PB_HDR + (data ? nr * WIRE_PAGE_SIZE : 0);
	uint8_t *p;
	ssize_t n;
	int err;

	p = tx_reserve(sr, need, &err);
	if (!p)
		return err;
	n = frame_put_pages(p, need, pid, vaddr, nr, data);
	if (n < 0)
		return n;
	return tx_commit(sr, n);
}

static int pc_answer(struct sink_remote *sr, const struct frame *f);

/*
 * Read one control frame of the expected type and unpack it. Post-copy:
 * page requests that come first are answered (the verdict may wait on them).
 */
static int recv_msg(struct sink_remote *sr, uint32_t type, const ProtobufCMessageDescriptor *d,
		    void **msg)
{
	struct frame f;
	const char *why;
	int ret;

	for (;;) {
		ret = conn_read_frame(&sr->conn, sr->rx, sizeof(sr->rx), &f);
		if (ret)
			return tx_error(sr, ret);
		if (f.type != FRAME_PAGE_REQUEST || !sr->pc || type == FRAME_PAGE_REQUEST)
			break;
		ret = pc_answer(sr, &f);
		if (ret)
			return ret;
	}
	if (f.type != type) {
		snprintf(sr->sink.error, sizeof(sr->sink.error),
			 "page server sent %s, expected %s", frame_type_name(f.type),
			 frame_type_name(type));
		pr_info("%s", sr->sink.error);
		return -EPROTO;
	}
	*msg = frame_unpack_msg(&f, d, &why);
	if (!*msg) {
		snprintf(sr->sink.error, sizeof(sr->sink.error), "bad %s from page server: %s",
			 frame_type_name(type), why);
		pr_info("%s", sr->sink.error);
		return -EPROTO;
	}
	return 0;
}

/* Send control message MSG, flush, and read the reply of type RTYPE. */
static int request(struct sink_remote *sr, uint32_t type, const ProtobufCMessage *msg,
		   uint32_t rtype, const ProtobufCMessageDescriptor *d, void **reply)
{
	int ret = send_msg(sr, type, msg);

	if (!ret)
		ret = tx_flush(sr);
	if (!ret)
		ret = recv_msg(sr, rtype, d, reply);
	return ret;
}

static int remote_round_begin(struct sink *s, uint32_t round, bool final)
{
	struct sink_remote *sr = to_remote(s);
	RoundBegin rb = ROUND_BEGIN__INIT;

	if (sr->in_round || sr->final_done)
		return -EINVAL;
	rb.round = round;
	rb.final = final;
	sr->round = round;
	sr->final = final;
	sr->pages_sent = 0;
	sr->in_round = true;
	return send_msg(sr, FRAME_ROUND_BEGIN, &rb.base);
}

static int remote_add_pages(struct sink *s, uint32_t pid, uint64_t vaddr, uint64_t nr_pages,
			    const void *data)
{
	struct sink_remote *sr = to_remote(s);
	uint64_t i = 0;
	uint32_t n;
	int ret;

	if (!sr->in_round || vaddr % WIRE_PAGE_SIZE || !pid)
		return -EINVAL;
	if (data)
		s->stats.raw_bytes += nr_pages * WIRE_PAGE_SIZE;
	/* The caller found the zero pages already (sink.h): data goes as data. */
	while (i < nr_pages) {
		n = nr_pages - i < PB_MAX_PAGES ? nr_pages - i : PB_MAX_PAGES;
		ret = send_pages(sr, pid, vaddr + i * WIRE_PAGE_SIZE, n,
				 data ? (const uint8_t *)data + i * WIRE_PAGE_SIZE : NULL);
		if (ret)
			return ret;
		i += n;
	}
	sr->pages_sent += nr_pages;
	return 0;
}

static int remote_add_file(struct sink *s, const char *name, const void *data, size_t len)
{
	struct sink_remote *sr = to_remote(s);
	FileHead fh = FILE_HEAD__INIT;
	size_t off, n;
	uint8_t *p;
	int ret;

	if (!sr->in_round || !*name || strlen(name) > 255)
		return -EINVAL;
	if (len > FILE_MAX) {
		snprintf(s->error, sizeof(s->error), "%.100s: %zu bytes, the wire takes at most %u",
			 name, len, FILE_MAX);
		return -EFBIG;
	}
	fh.name = (char *)name;
	fh.size = len;
	ret = send_msg(sr, FRAME_FILE_HEAD, &fh.base);
	for (off = 0; !ret && off < len; off += n) {
		n = len - off < FILE_CHUNK ? len - off : FILE_CHUNK;
		p = tx_reserve(sr, FRAME_HDR + n, &ret);
		if (!p)
			break;
		frame_put_header(p, FRAME_FILE_DATA, n);
		memcpy(p + FRAME_HDR, (const uint8_t *)data + off, n);
		ret = tx_commit(sr, FRAME_HDR + n);
	}
	return ret;
}

static int check_ack(struct sink_remote *sr, const RoundAck *ack, struct round_stats *st)
{
	if (ack->round != sr->round) {
		snprintf(sr->sink.error, sizeof(sr->sink.error),
			 "page server acked round %u, expected %u", ack->round, sr->round);
		pr_info("%s", sr->sink.error);
		return -EPROTO;
	}
	if (!ack->ok) {
		snprintf(sr->sink.error, sizeof(sr->sink.error), "page server: round %u failed: %s",
			 ack->round, ack->error ? ack->error : "no reason given");
		pr_info("%s", sr->sink.error);
		return -EREMOTEIO;	/* the other end's failure (its disk...), not ours */
	}
	sr->sink.prefilled_round = ack->has_prefilled_round ? (int64_t)ack->prefilled_round : -1;
	sr->sink.lazy_fill = ack->has_lazy_fill && ack->lazy_fill;
	if (st) {
		memset(st, 0, sizeof(*st));
		st->round = ack->round;
		st->pages_present = ack->pages_stored;
		st->pages_zero = ack->pages_zero;
		st->bytes_written = ack->bytes_written;
		st->bytes_punched = ack->bytes_punched;
	}
	return 0;
}

static int remote_round_end(struct sink *s, struct round_stats *st)
{
	struct sink_remote *sr = to_remote(s);
	RoundEnd re = ROUND_END__INIT;
	RoundAck *ack;
	int ret;

	if (!sr->in_round)
		return -EINVAL;
	sr->in_round = false;
	re.round = sr->round;
	re.pages_sent = sr->pages_sent;
	ret = request(sr, FRAME_ROUND_END, &re.base, FRAME_ROUND_ACK, &round_ack__descriptor,
		      (void **)&ack);
	if (ret)
		return ret;
	ret = check_ack(sr, ack, st);
	round_ack__free_unpacked(ack, NULL);
	if (ret)
		return ret;
	s->next_round = sr->round + 1;
	sr->final_done = sr->final;
	return 0;
}

static int recv_restore_result(struct sink_remote *sr, struct restore_report *rep)
{
	struct sink *s = &sr->sink;
	RestoreResult *rr;
	int ret;

	ret = recv_msg(sr, FRAME_RESTORE_RESULT, &restore_result__descriptor, (void **)&rr);
	if (ret)
		return ret;
	rep->ok = rr->ok;
	rep->held = rr->ok && rr->has_held && rr->held;
	rep->resumed = rr->ok && rr->has_resumed && rr->resumed;
	rep->postcopy = rep->resumed && rr->has_postcopy && rr->postcopy;
	snprintf(rep->error, sizeof(rep->error), "%s", rr->error ? rr->error : "");
	rep->restore_us = rr->restore_us;
	if (!rr->ok)
		snprintf(s->error, sizeof(s->error), "restore failed at the destination: %.200s",
			 rep->error[0] ? rep->error : "no reason given");
	restore_result__free_unpacked(rr, NULL);
	return 0;
}

static int remote_wait_restore(struct sink *s, struct restore_report *rep)
{
	struct sink_remote *sr = to_remote(s);

	if (!sr->final_done)
		return -EINVAL;
	return recv_restore_result(sr, rep);
}

static int remote_alive(struct sink *s)
{
	struct sink_remote *sr = to_remote(s);
	struct pollfd pfd = { .fd = sr->conn.fd, .events = POLLRDHUP };

	if (poll(&pfd, 1, 0) < 0)
		return -errno;
	if (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) {
		snprintf(s->error, sizeof(s->error), "page server closed the connection");
		return -ENOTCONN;
	}
	return 0;
}

static int remote_commit(struct sink *s, struct restore_report *rep)
{
	struct sink_remote *sr = to_remote(s);
	uint8_t *p;
	int ret;

	memset(rep, 0, sizeof(*rep));
	p = tx_reserve(sr, FRAME_HDR, &ret);
	if (!p)
		return ret;
	ret = tx_commit(sr, frame_put_header(p, FRAME_COMMIT, 0));
	if (!ret)
		ret = tx_flush(sr);
	if (ret)
		return tx_error(sr, ret);
	/* pings keep the read deadline alive while the destination resumes */
	ret = recv_restore_result(sr, rep);
	if (!ret && rep->ok && !rep->resumed) {
		snprintf(s->error, sizeof(s->error), "page server confirmed the commit without "
			 "saying the tree runs");
		return -EPROTO;
	}
	return ret;
}

/* --- post-copy (docs/handover.md) --- */

static int remote_add_remote(struct sink *s, uint32_t pid, uint64_t vaddr, uint64_t nr_pages)
{
	struct sink_remote *sr = to_remote(s);
	uint64_t i;
	int ret;

	if (!sr->in_round || !sr->final || !s->postcopy || vaddr % WIRE_PAGE_SIZE || !pid)
		return -EINVAL;
	for (i = 0; i < nr_pages; i += PB_MAX_PAGES) {
		uint32_t n = nr_pages - i < PB_MAX_PAGES ? nr_pages - i : PB_MAX_PAGES;
		uint8_t *p = tx_reserve(sr, FRAME_HDR + PB_HDR, &ret);
		ssize_t len;

		if (!p)
			return ret;
		len = frame_put_remote(p, FRAME_HDR + PB_HDR, pid, vaddr + i * WIRE_PAGE_SIZE, n);
		if (len < 0)
			return len;
		ret = tx_commit(sr, len);
		if (ret)
			return ret;
	}
	sr->pages_sent += nr_pages;
	return 0;
}

static void remote_postcopy_source(struct sink *s, struct pc_source *src)
{
	to_remote(s)->pc = src;
}

/* @nr pages in pc_buf go out, zero runs as such. */
static int pc_send(struct sink_remote *sr, uint32_t pid, uint64_t vaddr, uint32_t nr)
{
	uint32_t i = 0, j;
	int ret;

	while (i < nr) {
		bool zero = page_is_zero(sr->pc_buf + i * WIRE_PAGE_SIZE);

		for (j = i + 1; j < nr && page_is_zero(sr->pc_buf + j * WIRE_PAGE_SIZE) == zero; j++)
			;
		ret = send_pages(sr, pid, vaddr + i * WIRE_PAGE_SIZE, j - i,
				 zero ? NULL : sr->pc_buf + i * WIRE_PAGE_SIZE);
		if (ret)
			return ret;
		i = j;
	}
	return 0;
}

static int pc_fail(struct sink_remote *sr, int err, const char *what, const char *why)
{
	snprintf(sr->sink.error, sizeof(sr->sink.error), "post-copy: %s%s%s", what,
		 why ? ": " : "", why ? why : "");
	pr_info("%s", sr->sink.error);
	return err;
}

/* A thread there waits on one of these pages: they go now, before anything else. */
static int pc_answer(struct sink_remote *sr, const struct frame *f)
{
	struct pc_source *pc = sr->pc;
	const char *why = NULL;
	PageRequest *rq;
	uint32_t pid, nr;
	uint64_t vaddr;
	int ret;

	rq = frame_unpack_msg(f, &page_request__descriptor, &why);
	if (!rq)
		return pc_fail(sr, -EPROTO, "bad page_request from the page server", why);
	pid = rq->pid;
	vaddr = rq->vaddr;
	nr = rq->nr_pages;
	page_request__free_unpacked(rq, NULL);
	if (!pid || !nr || nr > PB_MAX_PAGES || vaddr % WIRE_PAGE_SIZE)
		return pc_fail(sr, -EPROTO, "bad page_request from the page server",
			       "out of bounds");
	ret = pc->read(pc->arg, pid, vaddr, nr, sr->pc_buf);
	if (ret == -EPROTO)
		return pc_fail(sr, ret, "the page server asked for pages that are not REMOTE", NULL);
	if (ret)
		return pc_fail(sr, ret, "cannot read the frozen source's pages", strerror(-ret));
	ret = pc_send(sr, pid, vaddr, nr);
	if (!ret)
		ret = tx_flush(sr);
	if (ret)
		return tx_error(sr, ret);
	pc->requests++;
	pc->pulled += nr;
	return 0;
}

/* Can a frame be read now (or within @ms)? 1, 0, or -errno. */
static int rx_wait(struct sink_remote *sr, int ms)
{
	struct pollfd pfd = { .fd = sr->conn.fd, .events = POLLIN };
	int n;

	if (sr->conn.ssl && SSL_pending(sr->conn.ssl) > 0)
		return 1;
	do
		n = poll(&pfd, 1, ms);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n > 0;
}

/* Any frame, pings too (conn_read_frame would wait past them). */
static int recv_any(struct sink_remote *sr, struct frame *f)
{
	const char *why = NULL;
	int ret;

	ret = conn_read(&sr->conn, sr->rx, FRAME_HDR);
	if (!ret && frame_check_header(sr->rx, &f->type, &f->len, &why))
		return pc_fail(sr, -EPROTO, "bad frame from the page server", why);
	if (!ret && f->len > sizeof(sr->rx) - FRAME_HDR)
		return pc_fail(sr, -EPROTO, "bad frame from the page server", "too large");
	f->payload = sr->rx + FRAME_HDR;
	if (!ret)
		ret = conn_read(&sr->conn, sr->rx + FRAME_HDR, f->len);
	return ret ? tx_error(sr, ret) : 0;
}

/* postcopy_done: 0 when every page is in there, -EREMOTEIO when it never will be. */
static int pc_done(struct sink_remote *sr, const struct frame *f)
{
	const char *why = NULL;
	PostcopyDone *pd;
	int ret = 0;

	pd = frame_unpack_msg(f, &postcopy_done__descriptor, &why);
	if (!pd)
		return pc_fail(sr, -EPROTO, "bad postcopy_done from the page server", why);
	sr->pc->dest_pages = pd->pages;
	sr->pc->dest_faults = pd->faults;
	if (!pd->ok)
		ret = pc_fail(sr, -EREMOTEIO, "the destination failed",
			      pd->error ? pd->error : "no reason given");
	postcopy_done__free_unpacked(pd, NULL);
	return ret;
}

/* What the page server says during post-copy: 1 done, 0 go on, -errno. */
static int pc_take(struct sink_remote *sr)
{
	struct frame f;
	int ret = recv_any(sr, &f);

	if (ret)
		return ret;
	switch (f.type) {
	case FRAME_PING:
		return 0;
	case FRAME_PAGE_REQUEST:
		return pc_answer(sr, &f);
	case FRAME_POSTCOPY_DONE:
		ret = pc_done(sr, &f);
		return ret ? ret : 1;
	}
	return pc_fail(sr, -EPROTO, "unexpected frame from the page server",
		       frame_type_name(f.type));
}

#define PC_PING_MS	5000

/*
 * Test hook (docs/testing.md): FERRY_TEST_PC_PUSH_DELAY_MS (1-1000) between
 * two pushed batches (requests are still answered at once), so that the
 * destination touches pages not pushed yet.
 */
static uint64_t test_push_delay_us(void)
{
	const char *v = getenv("FERRY_TEST_PC_PUSH_DELAY_MS");
	int n = v ? atoi(v) : 0;

	return n > 0 && n <= 1000 ? n * 1000ULL : 0;
}

static int remote_postcopy_run(struct sink *s)
{
	struct sink_remote *sr = to_remote(s);
	struct pc_source *pc = sr->pc;
	uint64_t last_rx = now_us(), last_tx = now_us(), delay = test_push_delay_us();
	bool pushing = true;
	int ret;

	if (!pc || !s->postcopy)
		return -EINVAL;
	for (;;) {
		uint64_t until = now_us() + (pushing ? delay : 1000000);

		/* requests first: whatever came meanwhile (or comes until the next push) */
		for (;;) {
			uint64_t now = now_us();

			ret = rx_wait(sr, until > now ? (int)((until - now + 999) / 1000) : 0);
			if (ret <= 0)
				break;
			last_rx = now_us();
			ret = pc_take(sr);
			if (ret)
				return ret > 0 ? 0 : ret;
		}
		if (ret < 0)
			return tx_error(sr, ret);
		if (pushing) {
			uint32_t pid, nr;
			uint64_t vaddr;

			ret = pc->next(pc->arg, &pid, &vaddr, &nr);
			if (ret < 0)
				return pc_fail(sr, ret, "cannot walk the REMOTE pages", strerror(-ret));
			pushing = ret;
			if (pushing)
				ret = pc->read(pc->arg, pid, vaddr, nr, sr->pc_buf);
			if (pushing && ret)
				return pc_fail(sr, ret, "cannot read the frozen source's pages",
					       strerror(-ret));
			if (pushing)
				ret = pc_send(sr, pid, vaddr, nr);
			/* written out before the next look for requests: one SSL user at a time */
			if (!ret)
				ret = tx_flush(sr);
			if (ret)
				return tx_error(sr, ret);
			pc->pushed += pushing ? nr : 0;
			last_tx = now_us();
			continue;
		}
		/* all pushed: the page server pings while it works; we ping too */
		if (now_us() - last_rx > PEER_TIMEOUT_MS * 1000ULL) {
			snprintf(sr->conn.error, sizeof(sr->conn.error), "no word from %s for %u s "
				 "(page server stopped or link down)", sr->conn.peer,
				 PEER_TIMEOUT_MS / 1000);
			return tx_error(sr, -ETIMEDOUT);
		}
		if (now_us() - last_tx > PC_PING_MS * 1000ULL) {
			ret = conn_ping(&sr->conn);
			if (ret)
				return tx_error(sr, ret);
			last_tx = now_us();
		}
	}
}

static int remote_keepalive(struct sink *s)
{
	struct sink_remote *sr = to_remote(s);
	int ret;

	if (sr->in_round)
		return -EINVAL;
	/* The sender thread is idle once flushed: the ping cannot interleave. */
	ret = tx_flush(sr);
	if (!ret)
		ret = conn_ping(&sr->conn);
	return ret ? tx_error(sr, ret) : 0;
}

static void remote_close(struct sink *s)
{
	struct sink_remote *sr = to_remote(s);
	unsigned int i;

	if (sr->tx_started) {
		/* Whole frames only: a vanished round is aborted cleanly on the far side. */
		tx_submit(sr);
		pthread_mutex_lock(&sr->lock);
		sr->tx_stop = true;
		pthread_cond_broadcast(&sr->cond);
		pthread_mutex_unlock(&sr->lock);
		pthread_join(sr->tx_thread, NULL);
	}
	conn_close(&sr->conn);
	for (i = 0; i < NR_TX; i++)
		free(sr->tx[i].data);
	free(sr->pc_buf);
	pthread_mutex_destroy(&sr->lock);
	pthread_cond_destroy(&sr->cond);
	free(sr);
}

static const struct sink_ops remote_ops = {
	.round_begin	= remote_round_begin,
	.add_pages	= remote_add_pages,
	.add_file	= remote_add_file,
	.round_end	= remote_round_end,
	.wait_restore	= remote_wait_restore,
	.keepalive	= remote_keepalive,
	.commit		= remote_commit,
	.alive		= remote_alive,
	.add_remote	= remote_add_remote,
	.postcopy_source = remote_postcopy_source,
	.postcopy_run	= remote_postcopy_run,
	.close		= remote_close,
};

static int remote_alloc(struct sink_remote **out)
{
	struct sink_remote *sr = calloc(1, sizeof(*sr));
	unsigned int i;

	if (!sr)
		return -ENOMEM;
	sr->sink.ops = &remote_ops;
	sr->sink.prefilled_round = -1;
	sr->conn.fd = -1;
	pthread_mutex_init(&sr->lock, NULL);
	pthread_cond_init(&sr->cond, NULL);
	*out = sr;
	for (i = 0; i < NR_TX; i++) {
		sr->tx[i].data = malloc(TX_CAP);
		if (!sr->tx[i].data)
			return -ENOMEM;
	}
	return 0;
}

static int say_hello(struct sink_remote *sr, const char *id, uint32_t root_pid, bool postcopy)
{
	Hello h = HELLO__INIT;
	HelloReply *hr;
	char host[256] = "";
	int ret;

	h.version = WIRE_VERSION;
	h.migration_id = (char *)id;
	h.root_pid = root_pid;
	h.has_postcopy = postcopy;
	h.postcopy = postcopy;
	if (!gethostname(host, sizeof(host) - 1))
		h.source_host = host;
	ret = request(sr, FRAME_HELLO, &h.base, FRAME_HELLO_REPLY, &hello_reply__descriptor,
		      (void **)&hr);
	if (ret)
		return ret;
	if (!hr->ok) {
		snprintf(sr->sink.error, sizeof(sr->sink.error), "page server refused: %s",
			 hr->error ? hr->error : "no reason given");
		pr_info("%s", sr->sink.error);
		ret = -ECONNREFUSED;
	} else {
		snprintf(sr->sink.migration_id, sizeof(sr->sink.migration_id), "%s",
			 hr->migration_id);
		sr->sink.next_round = hr->next_round;
		sr->sink.postcopy = postcopy && hr->has_postcopy && hr->postcopy;
	}
	hello_reply__free_unpacked(hr, NULL);
	return ret;
}

/* Why the last sink_*_open of this thread failed. */
static __thread char open_error[256];

const char *sink_open_error(void)
{
	return open_error;
}

void sink_set_open_error(const char *why)
{
	snprintf(open_error, sizeof(open_error), "%s", why);
}

int sink_remote_open(const char *host, const char *port, const struct tls_opts *tls,
		     const char *id, uint32_t root_pid, bool postcopy, struct sink **out)
{
	struct sink_remote *sr = NULL;
	int ret;

	signal(SIGPIPE, SIG_IGN);
	ret = remote_alloc(&sr);
	if (ret)
		goto fail;
	ret = conn_open(&sr->conn, host, port, tls);
	if (ret)
		goto fail;
	ret = -pthread_create(&sr->tx_thread, NULL, tx_main, sr);
	if (ret)
		goto fail;
	sr->tx_started = true;
	if (postcopy && !(sr->pc_buf = malloc(PB_MAX_DATA))) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = say_hello(sr, id, root_pid, postcopy);
	if (ret)
		goto fail;
	pr_info("migration %s: page server %s:%s, next round %u", sr->sink.migration_id, host,
		port, sr->sink.next_round);
	*out = &sr->sink;
	open_error[0] = 0;
	return 0;
fail:
	if (sr)
		snprintf(open_error, sizeof(open_error), "%s", sr->sink.error[0] ?
			 sr->sink.error : sr->conn.error[0] ? sr->conn.error : strerror(-ret));
	else
		snprintf(open_error, sizeof(open_error), "%s", strerror(-ret));
	if (sr)
		remote_close(&sr->sink);
	return ret;
}
