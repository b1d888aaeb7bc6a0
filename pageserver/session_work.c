// SPDX-License-Identifier: MIT
/*
 * Stack operations of a session, run on libuv's thread pool so a slow disk
 * (or a commit's fsync) never stalls other sessions. One item runs at a
 * time per session and items run in frame order: the stack writer is used
 * by one thread at a time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pageserver/session.h"

struct ps_work *work_new(enum work_kind kind)
{
	struct ps_work *w = calloc(1, sizeof(*w));

	if (w)
		w->kind = kind;
	return w;
}

/* Give back what the item holds: its frame buffer or its file bytes. */
void work_free(struct session *s, struct ps_work *w)
{
	if (w->kind == W_PAGES && w->buf)
		session_pool_put(s, w->buf);
	if (w->kind == W_FILE) {
		s->srv->file_bytes -= w->len;
		free(w->buf);
	}
	free(w);
}

static int run_batch(struct session *s, struct ps_work *w, const struct frame *f)
{
	struct page_batch pb;
	const void *data;
	int ret;

	ret = page_batch_parse(f->payload, f->len, &pb, NULL);
	if (ret)
		return ret;
	switch (pb.codec) {
	case CODEC_REMOTE:
		/* checked on the loop: a post-copy final round */
		return stack_add_remote(s->sw, pb.pid, pb.vaddr, pb.nr_pages);
	case CODEC_ZERO:
		data = NULL;
		break;
	case CODEC_RAW:
		data = pb.data;
		break;
	default:
		ret = page_batch_decode(&pb, s->scratch, PB_MAX_DATA, NULL);
		if (ret) {
			w->garbage = true;
			return ret;
		}
		data = s->scratch;
	}
	return stack_add_pages(s->sw, pb.pid, pb.vaddr, pb.nr_pages, data);
}

/* The batch: page frames back to back, each checked already on the loop. */
static int run_pages(struct session *s, struct ps_work *w)
{
	struct frame f;
	size_t off;
	ssize_t n;
	int ret;

	for (off = 0; off < w->len; off += n) {
		n = frame_parse(w->buf + off, w->len - off, &f, NULL);
		if (n <= 0 || f.type != FRAME_PAGES)
			return -EBADMSG;
		ret = run_batch(s, w, &f);
		if (ret)
			return ret;
	}
	return 0;
}

static int run_commit(struct session *s, struct ps_work *w)
{
	int ret = 0;

	if (w->abort) {
		if (s->w_round_open)
			stack_round_abort(s->sw);
	} else {
		ret = stack_round_commit(s->sw, &w->st);
		/* A failed commit leaves a temporary round behind: drop it. */
		if (ret)
			stack_round_abort(s->sw);
	}
	s->w_round_open = false;
	return ret;
}

static void work_cb(uv_work_t *req)
{
	struct session *s = req->data;
	struct ps_work *w = s->cur;

	switch (w->kind) {
	case W_OPEN:
		w->err = stack_writer_open(s->srv->images_dir, w->name[0] ? w->name : NULL,
					   s->srv->auto_dedup, &s->sw);
		break;
	case W_BEGIN:
		w->err = stack_round_begin(s->sw, w->round, w->final);
		s->w_round_open = !w->err;
		break;
	case W_PAGES:
		w->err = run_pages(s, w);
		break;
	case W_FILE:
		w->err = stack_add_file(s->sw, w->name, w->buf, w->len);
		break;
	case W_COMMIT:
		w->err = run_commit(s, w);
		break;
	case W_TEARDOWN:
		w->abort = s->w_round_open;
		if (s->w_round_open)
			stack_round_abort(s->sw);
		s->w_round_open = false;
		if (s->sw)
			stack_writer_close(s->sw);
		s->sw = NULL;
		break;
	}
}

static void session_kick(struct session *s);

static void after_work_cb(uv_work_t *req, int status)
{
	struct session *s = req->data;
	struct ps_work *w = s->cur;

	s->cur = NULL;
	if (status && !w->err)
		w->err = status;	/* cancelled: never happens, we do not cancel */
	if (!s->closing)
		session_work_done(s, w);
	else if (w->kind == W_TEARDOWN && w->abort)
		sess_warn(s, "round %u of %s aborted: the stack stays as after round %u",
			  s->round, s->id, s->round - 1);
	work_free(s, w);
	session_kick(s);
	if (!s->closing)
		session_pump(s);
	session_put(s);
}

/*
 * Start the next item. Once a round has failed, its remaining pages and
 * files are dropped and its commit becomes an abort.
 */
static void session_kick(struct session *s)
{
	struct ps_work *w;

	while (!s->cur && s->q_head) {
		w = s->q_head;
		s->q_head = w->next;
		if (!s->q_head)
			s->q_tail = NULL;
		w->next = NULL;
		if (s->round_err && (w->kind == W_PAGES || w->kind == W_FILE)) {
			work_free(s, w);
			continue;
		}
		if (s->round_err && w->kind == W_COMMIT)
			w->abort = true;
		s->cur = w;
		s->work_req.data = s;
		session_get(s);
		uv_queue_work(s->srv->loop, &s->work_req, work_cb, after_work_cb);
	}
}

void session_queue(struct session *s, struct ps_work *w)
{
	if (s->q_tail)
		s->q_tail->next = w;
	else
		s->q_head = w;
	s->q_tail = w;
	session_kick(s);
}

/* Drop everything not started yet (the session is going away). */
void session_queue_discard(struct session *s)
{
	struct ps_work *w;

	while ((w = s->q_head)) {
		s->q_head = w->next;
		work_free(s, w);
	}
	s->q_tail = NULL;
}
