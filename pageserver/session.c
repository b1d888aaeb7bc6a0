// SPDX-License-Identifier: MIT
/*
 * Page server, the frame handlers: the per-session state machine (hello,
 * rounds, files) and what the stack work items report back. Frames come
 * from session_io.c; stack writes are queued to session_work.c; the
 * restore to session_restore.c; accepting and lifetime are in server.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pageserver/session.h"

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

int session_open_stack(struct session *s)
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

	/* f->payload lives in the pending buffer: session_take_slot() frees it. */
	if (f->type != FRAME_HELLO)
		return sess_proto(s, "expected hello, got %s", frame_type_name(f->type));
	h = frame_unpack_msg(f, &hello__descriptor, &reason);
	if (!h)
		return sess_proto(s, "bad hello: %s", reason);
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
	if (session_take_slot(s, why, sizeof(why)))
		goto refuse;
	snprintf(s->id, sizeof(s->id), "%s", h->migration_id ? h->migration_id : "");
	/* only a streaming restore can take REMOTE pages (it runs with --postcopy-fd) */
	s->postcopy = h->has_postcopy && h->postcopy && !s->srv->no_restore && !s->srv->no_stream;
	sess_info(s, "hello from %s, root pid %u, %s%s%s", h->source_host ? h->source_host : "?",
		  h->root_pid, h->migration_id ? "resuming " : "new migration", s->id,
		  h->has_postcopy && h->postcopy ? s->postcopy ? ", post-copy" :
		  ", post-copy refused (--no-restore or --no-stream)" : "");
	hello__free_unpacked(h, NULL);
	s->state = S_OPENING;
	/* The last session of this id is still closing its stack: open after it. */
	if (owner) {
		sess_info(s, "waiting for session %lu to let go of %s", owner->sid, s->id);
		s->wait_id = true;
		return 0;
	}
	return session_open_stack(s);
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
	hr.has_postcopy = s->postcopy;
	hr.postcopy = s->postcopy;
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
void session_round_fail(struct session *s, int err, const char *what)
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
	if (pb.codec == CODEC_REMOTE && !(s->postcopy && s->final))
		return sess_proto(s, "%s", "REMOTE pages outside a post-copy final round");
	s->pages_rcvd += pb.nr_pages;
	if (s->round_err)
		return 0;
	/* Keep the frame where it is; the batch goes out when the next might not fit. */
	s->rx_base += FRAME_HDR + f->len;
	s->rx_len = 0;
	s->rx_batched++;
	if (RXBUF_SIZE - s->rx_base <= FRAME_MAX)
		session_flush_batch(s);
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
		session_round_fail(s, -ENOMEM, s->fname);
		goto drop;
	}
	snprintf(w->name, sizeof(w->name), "%s", s->fname);
	w->buf = s->fbuf;
	w->len = s->fsize;
	s->fbuf = NULL;
	session_flush_batch(s);		/* frame order: pages sent before the file first */
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
		session_round_fail(s, -EINVAL, "bad image file name");
		s->fdiscard = true;
	} else if (!s->fdiscard && s->srv->file_bytes + s->fsize > FILE_BUDGET) {
		session_round_fail(s, -ENOMEM, "page server file memory budget");
		s->fdiscard = true;
	} else if (!s->fdiscard && s->fsize) {
		s->fbuf = malloc(s->fsize);
		if (!s->fbuf) {
			session_round_fail(s, -ENOMEM, s->fname);
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
		session_round_fail(s, -EPROTO, why);
	}
	w = work_new(W_COMMIT);
	if (!w)
		return sess_proto(s, "%s", "out of memory");
	w->round = round;
	s->state = S_COMMITTING;
	session_flush_batch(s);
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

int session_dispatch(struct session *s)
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
	case S_HELD:
		if (f.type == FRAME_PAGES && session_pc_relaying(s)) {
			ret = session_restore_relay(s, &f);
			break;
		}
		if (f.type != FRAME_COMMIT)
			return sess_proto(s, "unexpected %s (want commit)", frame_type_name(f.type));
		ret = session_restore_commit(s);
		break;
	case S_DONE:
		/* post-copy: what the source pushed before it read postcopy_done */
		if (f.type == FRAME_PAGES && s->postcopy && s->completed) {
			ret = 0;
			break;
		}
		return sess_proto(s, "unexpected %s", frame_type_name(f.type));
	case S_RESTORING:
	case S_POSTCOPY:
		if (f.type != FRAME_PAGES || !session_pc_relaying(s))
			return sess_proto(s, "unexpected %s (post-copy: want pages)",
					  frame_type_name(f.type));
		ret = session_restore_relay(s, &f);
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
	ack.has_lazy_fill = ack.has_prefilled_round;
	ack.lazy_fill = !s->srv->no_lazy_fill;
	if (session_send_msg(s, FRAME_ROUND_ACK, &ack.base))
		session_drop(s, true, "cannot send round_ack");
}

static void committed(struct session *s, struct ps_work *w)
{
	bool ok = !w->abort && !w->err;

	if (!ok && !s->round_err)
		session_round_fail(s, w->err, "commit");
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
			session_round_fail(s, w->err, w->kind == W_BEGIN ? "begin round" : "store pages");
		break;
	case W_FILE:
		if (w->err)
			session_round_fail(s, w->err, w->name);
		break;
	case W_COMMIT:
		committed(s, w);
		break;
	case W_TEARDOWN:
		break;
	}
}
