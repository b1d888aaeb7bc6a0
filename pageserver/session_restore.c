// SPDX-License-Identifier: MIT
/*
 * Restoring what a session received, without blocking the loop (uv_spawn):
 *
 * - streaming (default): after the first committed round, `restore --stream
 *   DIR/<id>` makes the process and fills its memory; each later committed
 *   round is named on its stdin ("round K"), the final one as "final N"
 *   (then it restores and exits). A session that ends before its final
 *   round says "abort": the prepared process is dropped.
 * - plain: `restore --images-dir DIR/<id>/<N>` after the final round, when
 *   nothing is streaming (--no-stream, the final round is the session's
 *   first, or the stream restore died early).
 *
 * Both get --status-fd 3, a pipe on which they report "prefilled K" and
 * "failed REASON" (proto/restore_ctl.h, docs/restore-protocol.md). Their
 * stderr is only copied into the log.
 *
 * Both also get --hold (docs/handover.md): the restored tree is kept stopped
 * ("held" -> restore_result{ok, held} to the source) until the source's
 * COMMIT ("resume" -> "resumed", exit 0 -> restore_result{ok, resumed}).
 * The source gone before COMMIT: "abort", the restore kills the tree.
 *
 * Post-copy (migrate --postcopy, docs/handover.md): the restore also gets
 * --postcopy-fd 4, a pipe on which the REMOTE pages come as the source's
 * page frames, relayed as they are (session_restore_relay). Its "fetch"
 * lines become page_request frames to the source (from the final on: the
 * source answers them frozen, before and after COMMIT); its "filling" after
 * "resumed" becomes restore_result{ok, resumed, postcopy} (the source keeps
 * its copy frozen and pushes the rest), "postcopy-done" becomes
 * postcopy_done{ok} (the source may go). The source gone during post-copy:
 * the pipe is closed, the restore fails, its guard kills the tree.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pageserver/session.h"
#include "proto/restore_ctl.h"

#define ABORT_KILL_MS	10000	/* an aborted stream restore that does not exit */
#define STATUS_FD	3	/* the child's end of the status pipe */
#define PC_FD		4	/* post-copy: the child's end of the page pipe */

struct rchild {
	struct session *s;
	uv_process_t proc;
	uv_pipe_t in, err, st;
	uv_pipe_t pc;		/* post-copy: page frames to its --postcopy-fd */
	uv_timer_t timer;
	int handles;		/* open handles: freed at 0 */
	bool streaming;		/* --stream, stdin open */
	bool final;		/* its exit is the restore result */
	bool exited, err_eof, st_eof, lingered, reported;
	bool held;		/* reported "held": its tree waits for resume */
	bool resumed;		/* reported "resumed": its tree runs */
	bool committed;		/* "resume" written */
	bool filling;		/* reported "filling": restored, its exit ends the lazy fill */
	bool has_pc;		/* pc is a pipe (post-copy session) */
	bool pc_done;		/* reported "postcopy-done" */
	uint64_t pc_pages, pc_faults;
	int64_t status;
	int signal;
	uint64_t t0, us;
	struct rctl_line err_line, st_line;
	char failed[256];	/* restore_result's error, from "failed REASON" */
};

static void child_closed(uv_handle_t *h)
{
	struct rchild *c = h->data;
	struct session *s = c->s;

	if (--c->handles)
		return;
	free(c);
	session_put(s);
}

static void child_close(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, child_closed);
}

/*
 * restore_result: the verdict (@held false), or ok+held: waiting for commit,
 * or ok+resumed+@postcopy: it runs, the REMOTE pages are still to come.
 */
static void send_result_pc(struct session *s, bool ok, const char *error, uint64_t us,
			   bool held, bool resumed, bool postcopy)
{
	RestoreResult rr = RESTORE_RESULT__INIT;

	if (!held && !postcopy) {
		s->completed = ok;
		s->failed |= !ok;
	}
	if (s->closing)
		return;
	rr.ok = ok;
	rr.error = (char *)error;
	rr.has_restore_us = true;
	rr.restore_us = us;
	rr.has_held = held;
	rr.held = held;
	rr.has_resumed = resumed;
	rr.resumed = resumed;
	rr.has_postcopy = postcopy;
	rr.postcopy = postcopy;
	s->state = held ? S_HELD : postcopy ? S_POSTCOPY : S_DONE;
	if (session_send_msg(s, FRAME_RESTORE_RESULT, &rr.base)) {
		session_drop(s, true, "cannot send restore_result");
		return;
	}
	session_pump(s);
}

static void send_result_ex(struct session *s, bool ok, const char *error, uint64_t us,
			   bool held, bool resumed)
{
	send_result_pc(s, ok, error, us, held, resumed, false);
}

static void send_result(struct session *s, bool ok, const char *error, uint64_t us)
{
	send_result_ex(s, ok, error, us, false, false);
}

/* postcopy_done: the end of post-copy, every REMOTE page in (@ok) or never. */
static void send_pc_done(struct session *s, const struct rchild *c, bool ok, const char *error)
{
	PostcopyDone pd = POSTCOPY_DONE__INIT;

	s->completed = ok;
	s->failed |= !ok;
	if (s->closing || s->state != S_POSTCOPY)
		return;
	s->state = S_DONE;
	pd.ok = ok;
	pd.error = (char *)error;
	pd.has_pages = pd.has_faults = true;
	pd.pages = c->pc_pages;
	pd.faults = c->pc_faults;
	if (session_send_msg(s, FRAME_POSTCOPY_DONE, &pd.base)) {
		session_drop(s, true, "cannot send postcopy_done");
		return;
	}
	session_pump(s);
}

/* A thread of the restored tree waits on pages only the source holds: ask it. */
static void send_request(struct session *s, const struct rctl_status *st)
{
	PageRequest rq = PAGE_REQUEST__INIT;

	if (s->closing)
		return;
	rq.pid = st->pid;
	rq.vaddr = st->vaddr;
	rq.nr_pages = st->nr;
	s->pc_requests++;
	if (session_send_msg(s, FRAME_PAGE_REQUEST, &rq.base)) {
		session_drop(s, true, "cannot send page_request");
		return;
	}
	session_pump(s);
}

bool session_pc_relaying(const struct session *s)
{
	return s->postcopy && s->final && s->child && s->child->has_pc &&
	       (s->state == S_RESTORING || s->state == S_HELD || s->state == S_POSTCOPY);
}

/* A status line: progress (the source waits for it before freezing) or the verdict. */
static void take_status(struct rchild *c, enum rctl_feed got)
{
	struct rctl_status st;

	if (got == RCTL_BAD || rctl_parse_status(c->st_line.buf, &st)) {
		sess_warn(c->s, "restore: unexpected status line ignored: %.100s%s",
			  c->st_line.buf, got == RCTL_BAD ? "..." : "");
		return;
	}
	sess_debug(c->s, "restore status: %s", c->st_line.buf);
	switch (st.kind) {
	case RCTL_PREFILLED:
		c->s->prefilled = st.round;
		break;
	case RCTL_UNFILLED:
		/* no more prefills: round_ack says so, the source stops waiting */
		if (c->s->child == c)
			c->s->stream_broken = true;
		break;
	case RCTL_HELD:
		if (!c->final || c->held || c->s->state != S_RESTORING)
			break;
		c->held = true;
		sess_info(c->s, "restored %s from round %u, held: waiting for the source's commit",
			  c->s->id, c->s->round);
		send_result_ex(c->s, true, NULL, (uv_hrtime() - c->t0) / 1000, true, false);
		break;
	case RCTL_RESUMED:
		c->resumed = true;
		break;
	case RCTL_FILLING:
		/*
		 * It runs here: the verdict goes now (the source is killed), the
		 * lazy fill's end is only logged (child_finish). Post-copy: the
		 * source stays frozen until postcopy-done.
		 */
		if (!c->final || !c->resumed || c->filling || c->s->state != S_RESTORING)
			break;
		c->filling = true;
		sess_info(c->s, "restored %s from round %u in %llu us; the %s goes on", c->s->id,
			  c->s->round, (unsigned long long)((uv_hrtime() - c->t0) / 1000),
			  c->has_pc ? "post-copy" : "lazy fill");
		send_result_pc(c->s, true, NULL, (uv_hrtime() - c->t0) / 1000, false, true,
			       c->has_pc);
		if (c->has_pc && c->pc_done)
			send_pc_done(c->s, c, true, NULL);
		break;
	case RCTL_FETCH:
		if (!c->has_pc || !c->final || !session_pc_relaying(c->s)) {
			sess_warn(c->s, "restore: a fetch out of post-copy ignored: %.100s",
				  c->st_line.buf);
			break;
		}
		send_request(c->s, &st);
		break;
	case RCTL_POSTCOPY_DONE:
		if (!c->has_pc || !c->final || c->pc_done)
			break;
		c->pc_done = true;
		c->pc_pages = st.pages;
		c->pc_faults = st.faults;
		sess_info(c->s, "post-copy of %s complete: %llu pages came from the source (%llu "
			  "requests, %llu pages relayed), %llu faults waited for them", c->s->id,
			  (unsigned long long)st.pages, (unsigned long long)c->s->pc_requests,
			  (unsigned long long)c->s->pc_relayed, (unsigned long long)st.faults);
		if (c->s->state == S_POSTCOPY)
			send_pc_done(c->s, c, true, NULL);
		break;
	case RCTL_FAILED:
		snprintf(c->failed, sizeof(c->failed), "restore: failed: %.238s", st.reason);
		break;
	}
}

static void child_why(const struct rchild *c, char *why, size_t len)
{
	if (c->failed[0])
		snprintf(why, len, "%s", c->failed);
	else if (c->signal)
		snprintf(why, len, "restore killed by signal %d", c->signal);
	else
		snprintf(why, len, "restore exited with status %lld", (long long)c->status);
}

/* A stream restore ended before the final round: the final one restores plainly. */
static void stream_lost(struct session *s, struct rchild *c)
{
	char why[300];

	child_why(c, why, sizeof(why));
	if (s->state != S_DONE && !s->closing)
		sess_warn(s, "stream restore ended early (%s): the final round restores from disk",
			  why);
	else
		sess_info(s, "stream restore ended (%s)", why);
	s->stream_broken = true;
}

/* The exit and the end of both pipes (or the linger) are in. */
static void child_finish(struct rchild *c)
{
	struct session *s = c->s;
	char why[300];
	bool ok;

	if (c->reported || !c->exited || !((c->err_eof && c->st_eof) || c->lingered))
		return;
	c->reported = true;
	if (!c->err_line.done && c->err_line.len)	/* a last line without its '\n' */
		sess_info(s, "restore: %.*s", (int)c->err_line.len, c->err_line.buf);
	child_close((uv_handle_t *)&c->err);
	child_close((uv_handle_t *)&c->st);
	child_close((uv_handle_t *)&c->timer);
	if (s->child == c)
		s->child = NULL;
	if (!c->final) {
		stream_lost(s, c);
		return;
	}
	ok = !c->status && !c->signal;
	if (c->filling && s->state == S_POSTCOPY) {
		/* it ran, and will never have the pages only the frozen source holds */
		child_why(c, why, sizeof(why));
		sess_err(s, "post-copy of %s FAILED after the process ran (%s): the restored tree "
			 "is killed; the source stays frozen (docs/handover.md)", s->id,
			 ok ? "restore ended before every page was in" : why);
		send_pc_done(s, c, false, ok ? "restore ended before every page was in" : why);
		return;
	}
	if (c->filling) {
		/* restored and reported already; the source is gone */
		child_why(c, why, sizeof(why));
		if (ok)
			sess_info(s, "lazy fill of %s complete in %llu us", s->id,
				  (unsigned long long)c->us);
		else
			sess_err(s, "lazy fill of %s FAILED after the process ran (%s): the restored "
				 "tree is killed, the process is lost (docs/handover.md)", s->id, why);
		return;
	}
	if (c->signal && c->held && !c->resumed)
		session_netaddr_drop(s);	/* it could not take the address off itself */
	if (ok) {
		sess_info(s, "restored %s from round %u in %llu us", s->id, s->round,
			  (unsigned long long)c->us);
	} else {
		child_why(c, why, sizeof(why));
		sess_err(s, "restore of %s failed: %s", s->id, why);
	}
	send_result_ex(s, ok, ok ? NULL : why, c->us, false, ok && c->held);
}

static void on_linger(uv_timer_t *t)
{
	struct rchild *c = t->data;

	c->lingered = true;
	child_finish(c);
}

static void on_child_exit(uv_process_t *p, int64_t status, int signal)
{
	struct rchild *c = p->data;

	c->us = (uv_hrtime() - c->t0) / 1000;
	c->status = status;
	c->signal = signal;
	c->exited = true;
	child_close((uv_handle_t *)p);
	child_close((uv_handle_t *)&c->in);
	if (c->has_pc)
		child_close((uv_handle_t *)&c->pc);
	/* Restored processes may hold its pipes open: wait a little, not forever. */
	uv_timer_stop(&c->timer);
	if (!c->err_eof || !c->st_eof)
		uv_timer_start(&c->timer, on_linger, RESTORE_LINGER_MS, 0);
	child_finish(c);
}

static void on_pipe_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct rchild *c = h->data;

	(void)suggested;
	*buf = uv_buf_init(c->s->srv->inbuf, sizeof(c->s->srv->inbuf));
}

/* stderr and the status pipe: lines, then EOF. */
static void on_pipe_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct rchild *c = stream->data;
	bool is_st = stream == (uv_stream_t *)&c->st;
	struct rctl_line *l = is_st ? &c->st_line : &c->err_line;
	enum rctl_feed got;
	ssize_t i;

	for (i = 0; i < nread; i++) {
		got = rctl_line_feed(l, buf->base[i]);
		if (got == RCTL_MORE)
			continue;
		if (is_st)
			take_status(c, got);
		else if (l->buf[0])	/* for people only */
			sess_info(c->s, "restore: %s%s", l->buf, got == RCTL_BAD ? "..." : "");
	}
	if (nread < 0) {
		if (is_st)
			c->st_eof = true;
		else
			c->err_eof = true;
		uv_read_stop(stream);
		child_finish(c);
	}
}

static struct rchild *child_new(struct session *s)
{
	struct rchild *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->s = s;
	session_get(s);
	uv_pipe_init(s->srv->loop, &c->in, 0);
	uv_pipe_init(s->srv->loop, &c->err, 0);
	uv_pipe_init(s->srv->loop, &c->st, 0);
	uv_timer_init(s->srv->loop, &c->timer);
	c->proc.data = c->in.data = c->err.data = c->st.data = c->timer.data = c;
	c->handles = 5;
	if (s->postcopy) {
		uv_pipe_init(s->srv->loop, &c->pc, 0);
		c->pc.data = c;
		c->has_pc = true;
		c->handles++;
	}
	return c;
}

/* Run the restore command with @mode and @path; 0 or a libuv error. */
static int child_spawn(struct rchild *c, const char *mode, const char *path)
{
	struct server *srv = c->s->srv;
	uv_process_options_t opt = { 0 };
	uv_stdio_container_t io[PC_FD + 1];
	char fd[12], hold_s[12], pc_fd[12];
	bool lazy = !srv->no_lazy_fill && !strcmp(mode, "--stream");
	char *args[] = { srv->restore_cmd, (char *)mode, (char *)path, RCTL_STATUS_OPT, fd,
			 RCTL_HOLD_OPT, RCTL_HOLD_TIMEOUT_OPT, hold_s, NULL, NULL, NULL, NULL };
	int ret, n = 8;

	/* stdin: the rounds (--stream), and resume or abort (--hold, always) */
	io[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
	io[0].data.stream = (uv_stream_t *)&c->in;
	io[1].flags = UV_INHERIT_FD;	/* its stdout goes to our stderr */
	io[1].data.fd = 2;
	io[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	io[2].data.stream = (uv_stream_t *)&c->err;
	io[STATUS_FD].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	io[STATUS_FD].data.stream = (uv_stream_t *)&c->st;
	snprintf(fd, sizeof(fd), "%d", STATUS_FD);
	snprintf(hold_s, sizeof(hold_s), "%u", srv->hold_timeout_s);
	snprintf(pc_fd, sizeof(pc_fd), "%d", PC_FD);
	if (lazy)
		args[n++] = RCTL_LAZY_OPT;
	if (c->has_pc) {
		/* the REMOTE pages, as page frames (proto/restore_ctl.h) */
		io[PC_FD].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
		io[PC_FD].data.stream = (uv_stream_t *)&c->pc;
		args[n++] = RCTL_POSTCOPY_OPT;
		args[n++] = pc_fd;
	}
	opt.file = srv->restore_cmd;
	opt.args = args;
	opt.exit_cb = on_child_exit;
	opt.stdio = io;
	opt.stdio_count = c->has_pc ? PC_FD + 1 : STATUS_FD + 1;
	sess_info(c->s, "running %s %s %s %s %s %s %s %s%s%s%s", srv->restore_cmd, mode, path,
		  RCTL_STATUS_OPT, fd, RCTL_HOLD_OPT, RCTL_HOLD_TIMEOUT_OPT, hold_s,
		  lazy ? " " RCTL_LAZY_OPT : "", c->has_pc ? " " RCTL_POSTCOPY_OPT " " : "",
		  c->has_pc ? pc_fd : "");
	c->t0 = uv_hrtime();
	ret = uv_spawn(srv->loop, &c->proc, &opt);
	if (ret) {
		child_close((uv_handle_t *)&c->proc);
		child_close((uv_handle_t *)&c->in);
		child_close((uv_handle_t *)&c->err);
		child_close((uv_handle_t *)&c->st);
		child_close((uv_handle_t *)&c->timer);
		if (c->has_pc)
			child_close((uv_handle_t *)&c->pc);
		return ret;
	}
	uv_read_start((uv_stream_t *)&c->err, on_pipe_alloc, on_pipe_read);
	uv_read_start((uv_stream_t *)&c->st, on_pipe_alloc, on_pipe_read);
	return 0;
}

struct say_req {
	uv_write_t req;
	char line[RCTL_LINE_MAX];
};

static void on_said(uv_write_t *req, int status)
{
	(void)status;	/* a dead child is noticed by its exit */
	free(req);
}

/* One command on the stream restore's stdin. */
static void child_say(struct rchild *c, enum rctl_cmd cmd, uint32_t round)
{
	struct say_req *r = malloc(sizeof(*r));
	uv_buf_t b;
	int n;

	if (!r || uv_is_closing((uv_handle_t *)&c->in)) {
		free(r);
		return;
	}
	n = rctl_format_cmd(r->line, sizeof(r->line), cmd, round);
	if (n < 0) {
		free(r);
		return;
	}
	b = uv_buf_init(r->line, n);
	if (uv_write(&r->req, (uv_stream_t *)&c->in, &b, 1, on_said))
		free(r);
}

static void restore_plain(struct session *s)
{
	char dir[PATH_MAX + 80], why[PATH_MAX + 120];
	struct rchild *c = child_new(s);
	int ret;

	if (!c) {
		send_result(s, false, "page server out of memory", 0);
		return;
	}
	c->final = true;
	snprintf(dir, sizeof(dir), "%s/%s/%u", s->srv->images_dir, s->id, s->round);
	ret = child_spawn(c, "--images-dir", dir);
	if (ret) {
		snprintf(why, sizeof(why), "cannot run %s: %s", s->srv->restore_cmd,
			 uv_strerror(ret));
		sess_err(s, "%s", why);
		send_result(s, false, why, 0);
		return;
	}
	s->child = c;
}

static void stream_start(struct session *s)
{
	char dir[PATH_MAX + 80];
	struct rchild *c = child_new(s);
	int ret;

	s->stream_broken = true;	/* until it runs */
	if (!c)
		return;
	c->streaming = true;
	snprintf(dir, sizeof(dir), "%s/%s", s->srv->images_dir, s->id);
	ret = child_spawn(c, "--stream", dir);
	if (ret) {
		sess_warn(s, "cannot run %s --stream: %s; the final round restores from disk",
			  s->srv->restore_cmd, uv_strerror(ret));
		return;
	}
	s->stream_broken = false;
	s->child = c;
}

/* A pre-copy round is committed: let the stream restore prefill it. */
void session_restore_round(struct session *s)
{
	if (s->srv->no_restore || s->srv->no_stream || s->stream_broken)
		return;
	if (!s->child)
		stream_start(s);
	if (s->child)
		child_say(s->child, RCTL_ROUND, s->round);
}

/* The final round is committed: restore it and report. */
void session_restore_start(struct session *s)
{
	struct rchild *c = s->child;

	s->restore_t0 = uv_now(s->srv->loop);	/* --restore-timeout (server.c) */
	if (s->srv->no_restore) {
		send_result(s, true, "not restored (--no-restore)", 0);
		return;
	}
	if (!c || !c->streaming || c->exited) {
		restore_plain(s);
		return;
	}
	c->final = true;
	c->t0 = uv_hrtime();
	child_say(c, RCTL_FINAL, s->round);
}

void session_restore_expire(struct session *s)
{
	struct rchild *c = s->child;
	char why[100];

	snprintf(why, sizeof(why), "restore took longer than %u s", s->srv->restore_timeout_s);
	if (c && c->exited)
		return;		/* it has ended: its report is on the way (linger) */
	if (c && c->held && !c->committed) {
		/* a SIGKILL would leave its stopped tree to itself: it discards, then exits */
		sess_err(s, "%s: telling it to discard the held tree", why);
		snprintf(c->failed, sizeof(c->failed), "%s", why);
		child_say(c, RCTL_ABORT, 0);
		child_close((uv_handle_t *)&c->in);
		return;
	}
	sess_err(s, "%s: killing it", why);
	if (!c || !c->final) {
		send_result(s, false, why, 0);
		return;
	}
	/* Its exit reports the failure (child_finish), with this reason. */
	snprintf(c->failed, sizeof(c->failed), "%s", why);
	uv_process_kill(&c->proc, SIGKILL);
}

static void on_abort_timeout(uv_timer_t *t)
{
	struct rchild *c = t->data;

	sess_warn(c->s, "stream restore did not stop: killing it");
	uv_process_kill(&c->proc, SIGKILL);
}

/*
 * Test hook (docs/testing.md, test-only): FERRY_TEST_PAUSE_AT=@point logs
 * "paused at @point" and blocks the whole loop there (FERRY_TEST_PAUSE_S,
 * 1-30, default 3).
 */
static void test_pause(const char *point)
{
	const char *at = getenv("FERRY_TEST_PAUSE_AT"), *secs = getenv("FERRY_TEST_PAUSE_S");
	int n = secs ? atoi(secs) : 3;

	if (!at || strcmp(at, point))
		return;
	log_msg(LOG_WARN, "paused at %s", point);
	/* the whole pause: a signal (a child's SIGCHLD) must not cut it short */
	for (unsigned int left = n >= 1 && n <= 30 ? n : 3; left;)
		left = sleep(left);
}

/* COMMIT: the source holds its copy stopped for good; the held tree runs. */
int session_restore_commit(struct session *s)
{
	struct rchild *c = s->child;

	if (!c || !c->held || c->committed || c->exited)
		return sess_proto(s, "%s", "commit without a held restore");
	sess_info(s, "commit from the source: resuming the restored tree");
	test_pause("commit");
	c->committed = true;
	s->state = S_RESTORING;		/* its exit (or the restore deadline) reports */
	child_say(c, RCTL_RESUME, 0);
	test_pause("resume");
	return 0;
}

/*
 * The session ends before its final round: drop the prepared process. Or
 * while a restored tree is held without commit: discard it.
 */
void session_restore_abort(struct session *s)
{
	struct rchild *c = s->child;

	/* post-copy: no more pages can come; a restore still waiting for some fails */
	if (c && c->has_pc && !c->exited)
		child_close((uv_handle_t *)&c->pc);
	if (!c || c->exited || (c->final && (!c->held || c->committed)))
		return;
	if (c->final) {
		sess_warn(s, "no commit from the source: telling the restore to discard the held tree");
		child_say(c, RCTL_ABORT, 0);
		child_close((uv_handle_t *)&c->in);
		return;		/* its exit is logged; nothing to report to a gone source */
	}
	sess_info(s, "telling the stream restore to drop the prepared process");
	child_say(c, RCTL_ABORT, 0);
	child_close((uv_handle_t *)&c->in);
	uv_timer_start(&c->timer, on_abort_timeout, ABORT_KILL_MS, 0);
}

/* --- post-copy: the source's page frames to the restore's --postcopy-fd --- */

struct pc_req {
	uv_write_t req;
	struct session *s;
	size_t len;
	uint8_t data[];
};

static void on_relayed(uv_write_t *req, int status)
{
	struct pc_req *r = (struct pc_req *)req;
	struct session *s = r->s;

	(void)status;	/* a restore that stopped reading is noticed by its exit */
	s->pc_queued -= r->len;
	free(r);
	if (!s->closing && !s->reading && s->pc_queued < PC_QUEUE_MAX)
		session_pump(s);
}

int session_restore_relay(struct session *s, const struct frame *f)
{
	struct rchild *c = s->child;
	struct page_batch pb;
	const char *reason;
	struct pc_req *r;
	uv_buf_t b;

	/* a batch the restore can decode, no REMOTE one: checked here as on disk */
	if (page_batch_parse(f->payload, f->len, &pb, &reason))
		return sess_proto(s, "bad page batch: %s", reason);
	if (pb.codec == CODEC_REMOTE)
		return sess_proto(s, "%s", "REMOTE pages during post-copy");
	s->pc_relayed += pb.nr_pages;
	if (!c || c->exited || uv_is_closing((uv_handle_t *)&c->pc))
		return 0;	/* its end is reported by its exit */
	r = malloc(sizeof(*r) + FRAME_HDR + f->len);
	if (!r)
		return sess_proto(s, "%s", "out of memory");
	r->s = s;
	r->len = FRAME_HDR + f->len;
	frame_put_header(r->data, FRAME_PAGES, f->len);
	memcpy(r->data + FRAME_HDR, f->payload, f->len);
	b = uv_buf_init((char *)r->data, r->len);
	if (uv_write(&r->req, (uv_stream_t *)&c->pc, &b, 1, on_relayed)) {
		free(r);
		return 0;
	}
	s->pc_queued += r->len;
	return 0;
}
