// SPDX-License-Identifier: MIT
/*
 * `restore`: recreate a process from an image stack.
 *
 * Plain: from a final round, everything at once. Streaming (--stream, run
 * by the page server during a migration): the process is created at the
 * first pre-copy round, its anonymous memory filled round by round while
 * the source still runs, and at the final round only what changed since
 * the last round and the rest of the state are left to do: that is what
 * keeps the downtime small. Any trouble while streaming falls back to a
 * plain restore at the final round.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "dest-agent/restore.h"
#include "proto/image.h"
#include "proto/restore_ctl.h"

/* What a round says about one process (pre-copy rounds: pe and mm only). */
struct proc_images {
	PstreeEntry *pe;
	ProcCore *core;
	MmEntry *mm;
	FilesEntry *files;
};

/* ... and about the tree, parents before children. */
struct tree_images {
	struct proc_images *p;
	size_t nr;
};

static void tree_images_free(struct tree_images *ti)
{
	size_t i;

	for (i = 0; i < ti->nr; i++) {
		struct proc_images *p = &ti->p[i];

		if (p->pe)
			protobuf_c_message_free_unpacked(&p->pe->base, NULL);
		if (p->core)
			protobuf_c_message_free_unpacked(&p->core->base, NULL);
		if (p->mm)
			protobuf_c_message_free_unpacked(&p->mm->base, NULL);
		if (p->files)
			protobuf_c_message_free_unpacked(&p->files->base, NULL);
	}
	free(ti->p);
	memset(ti, 0, sizeof(*ti));
}

static int find_proc(const struct tree_images *ti, uint32_t pid)
{
	size_t i;

	for (i = 0; i < ti->nr; i++)
		if (ti->p[i].pe->pid == pid)
			return i;
	return -1;
}

/* pstree.img: the root first, every parent before its children. */
static int load_pstree(int dirfd, struct tree_images *ti)
{
	struct img_reader r;
	PstreeEntry *pe;
	size_t len;
	void *data;
	int ret;

	ret = img_load_file(dirfd, "pstree.img", &data, &len);
	if (ret) {
		pr_err("pstree.img: %s", strerror(-ret));
		return ret;
	}
	ret = img_reader_init(&r, "pstree.img", data, len);
	while (!ret && (ret = img_read_msg(&r, &pstree_entry__descriptor, (void **)&pe)) == 1) {
		struct proc_images *n = realloc(ti->p, (ti->nr + 1) * sizeof(*n));

		ret = 0;
		if (!n) {
			protobuf_c_message_free_unpacked(&pe->base, NULL);
			ret = -ENOMEM;
			break;
		}
		ti->p = n;
		memset(&ti->p[ti->nr], 0, sizeof(ti->p[0]));
		ti->p[ti->nr++].pe = pe;
		if (find_proc(ti, pe->pid) != (int)ti->nr - 1 || !pe->n_threads ||
		    pe->threads[0] != pe->pid ||
		    (ti->nr > 1 && (pe->ppid == pe->pid || find_proc(ti, pe->ppid) < 0))) {
			pr_err("pstree.img: pid %u is repeated, without threads, or before its parent",
			       pe->pid);
			ret = -EINVAL;
		}
	}
	if (!ret && !ti->nr) {
		pr_err("pstree.img is empty");
		ret = -EINVAL;
	}
	free(data);
	return ret < 0 ? ret : 0;
}

static int check_inventory(int dirfd, bool want_final)
{
	InventoryEntry *inv;
	int ret;

	ret = img_load_one(dirfd, "inventory.img", &inventory_entry__descriptor, (void **)&inv);
	if (ret)
		return ret;
	if (want_final && !inv->final) {
		pr_err("round %u is a pre-copy round: only a final round can be restored", inv->round);
		ret = -EINVAL;
	} else if (inv->page_size != PAGE_SIZE) {
		pr_err("images of page size %u", inv->page_size);
		ret = -EINVAL;
	}
	protobuf_c_message_free_unpacked(&inv->base, NULL);
	return ret;
}

static int load_one(int dirfd, const char *fmt, uint32_t pid,
		    const ProtobufCMessageDescriptor *d, void **msg)
{
	char name[64];

	snprintf(name, sizeof(name), fmt, pid);
	return img_load_one(dirfd, name, d, msg);
}

static int load_proc(int dirfd, struct proc_images *p, bool final)
{
	uint32_t pid = p->pe->pid;
	int ret;

	ret = load_one(dirfd, "mm-%u.img", pid, &mm_entry__descriptor, (void **)&p->mm);
	if (ret || !final)
		return ret;
	ret = load_one(dirfd, "core-%u.img", pid, &proc_core__descriptor, (void **)&p->core);
	if (!ret)
		ret = load_one(dirfd, "files-%u.img", pid, &files_entry__descriptor,
			       (void **)&p->files);
	if (!ret && (p->core->n_threads != p->pe->n_threads || !p->core->creds ||
		     p->core->threads[0]->tid != pid)) {
		pr_err("core-%u.img: threads do not match pstree.img", pid);
		ret = -EINVAL;
	}
	if (!ret)
		ret = rst_check_files(p->mm, p->files);
	return ret;
}

/* Everything a round says about the tree: a final round all of it, a pre-copy round the layout. */
static int load_tree(int dirfd, bool final, struct tree_images *ti)
{
	size_t i;
	int ret;

	memset(ti, 0, sizeof(*ti));
	ret = check_inventory(dirfd, final);
	if (!ret)
		ret = load_pstree(dirfd, ti);
	for (i = 0; !ret && i < ti->nr; i++)
		ret = load_proc(dirfd, &ti->p[i], final);
	if (ret)
		tree_images_free(ti);
	return ret;
}

/*
 * The anonymous layout of @mm over what is mapped (rp->prefilled): *@want
 * its ranges, *@fresh the new ones; ops unmap what went and map @fresh.
 */
static int anon_layout(const struct rst_process *rp, const MmEntry *mm, struct ops *o,
		       struct ranges *want, struct ranges *fresh)
{
	struct ranges gone = { 0 };
	size_t i;
	int ret;

	memset(fresh, 0, sizeof(*fresh));
	ret = prefill_ranges(mm, want);
	if (ret)
		return ret;
	ret = ranges_sub(&rp->prefilled, want, &gone);
	if (!ret)
		ret = ranges_sub(want, &rp->prefilled, fresh);
	for (i = 0; !ret && i < gone.nr; i++)
		ret = ops_add(o, RST_OP_UNMAP, gone.r[i].start, gone.r[i].end - gone.r[i].start);
	for (i = 0; !ret && i < fresh->nr; i++) {
		ret = ops_add(o, RST_OP_MAP, fresh->r[i].start, fresh->r[i].end - fresh->r[i].start);
		if (!ret) {
			o->op[o->nr - 1].prot = PROT_READ | PROT_WRITE;
			o->op[o->nr - 1].flags = MAP_PRIVATE | MAP_ANONYMOUS;
		}
	}
	ranges_free(&gone);
	if (ret) {
		ranges_free(want);
		ranges_free(fresh);
	}
	return ret;
}

/* Where a round's ops change kind: for a fill cut short (restore_stream with --lazy-fill). */
struct fill_marks {
	size_t n_layout;	/* ops[0..n_layout): unmap and map */
	size_t n_kept;		/* ..n_kept: the memory kept; after: what was mapped fresh */
	struct ranges fresh;
};

/*
 * Bring the anonymous memory in line with the view's top round: unmap what
 * went, map what came (fresh, zero) and fill it from the whole stack; where
 * memory stays, only what the top round changed if the round before it is
 * in (the cost of one round, not of the stack), else everything again.
 */
static int sync_memory(struct rst_process *rp, const MmEntry *mm, const struct stack_view *sv,
		       struct ops *o, bool *delta_out, struct fill_marks *fm)
{
	struct ranges want, fresh, kept = { 0 };
	bool delta = rp->applied_round && rp->applied_round == sv->settled_round &&
		     sv->top_round == sv->settled_round + 1 && !rp->partial_round;
	int ret;

	*delta_out = delta &= !rp->inherited;
	ret = anon_layout(rp, mm, o, &want, &fresh);
	if (ret)
		return ret;
	ret = ranges_sub(&want, &fresh, &kept);
	fm->n_layout = o->nr;
	/*
	 * Over pages it may share with a parent or child (its parent's not
	 * filled over yet, or a whole refill after a child was forked: a round
	 * cut short or skipped), only what differs is written, so the rest
	 * stays shared; a delta writes only pages this process changed.
	 */
	if (!ret && (rp->inherited || (!delta && rp->cow_shared)))
		ret = ops_view_fill_inherited(o, sv, rp->want_pid, &kept);
	else if (!ret)
		ret = ops_view_fill(o, sv, rp->want_pid, &kept, delta, RST_OP_DISCARD);
	fm->n_kept = o->nr;
	/* fresh anonymous memory reads as zero already */
	if (!ret)
		ret = ops_view_fill(o, sv, rp->want_pid, &fresh, false, 0);
	ranges_free(&kept);
	if (ret) {
		ranges_free(&fresh);
		ranges_free(&want);
		return ret;
	}
	fm->fresh = fresh;
	ranges_free(&rp->prefilled);
	rp->prefilled = want;
	return 0;
}

/* Is @addr inside @rs? *@until: where that answer ends. */
static bool ranges_at(const struct ranges *rs, uint64_t addr, uint64_t *until)
{
	size_t lo = 0, hi = rs->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rs->r[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < rs->nr && rs->r[lo].start <= addr) {
		*until = rs->r[lo].end;
		return true;
	}
	*until = lo < rs->nr ? rs->r[lo].start : UINT64_MAX;
	return false;
}

struct lazy_walk {
	const struct rst_process *rp;
	const struct ranges *fresh;	/* mapped fresh at the final: nothing in */
	struct ops *o;
	struct ranges *left;
	struct ranges *remote;		/* post-copy: REMOTE pages (to come from the source) */
};

#define CONTENT_NONE	UINT32_MAX

/*
 * The round whose content page @addr holds now (CONTENT_NONE: missing),
 * and up to where that holds (*@until).
 */
static uint32_t content_round(const struct lazy_walk *w, uint64_t addr, uint64_t *until)
{
	const struct rst_process *rp = w->rp;
	uint64_t u;

	if (ranges_at(w->fresh, addr, until))
		return CONTENT_NONE;
	if (!rp->partial_round)
		return rp->applied_round ? rp->applied_round : CONTENT_NONE;
	/* a round cut short: in below its marks, the older content above */
	if (ranges_at(&rp->partial_fresh, addr, &u)) {
		if (u < *until)
			*until = u;
		if (addr < rp->partial_fresh_upto) {
			*until = *until < rp->partial_fresh_upto ? *until : rp->partial_fresh_upto;
			return rp->partial_round;
		}
		return CONTENT_NONE;
	}
	if (u < *until)
		*until = u;
	if (addr < rp->partial_kept_upto) {
		*until = *until < rp->partial_kept_upto ? *until : rp->partial_kept_upto;
		return rp->partial_round;
	}
	return rp->applied_round ? rp->applied_round : CONTENT_NONE;
}

/*
 * One run of the final view: what is in memory already with the right
 * content stays; a stale page is discarded (missing: registered, it is
 * filled before the process sees it) and, if it holds data, left to fill.
 */
static int lazy_ext(void *arg, const struct pg_extent *e)
{
	struct lazy_walk *w = arg;
	uint64_t a = e->vaddr, end = pg_ext_end(e);
	int ret = 0;

	while (!ret && a < end) {
		uint64_t until;
		uint32_t c = content_round(w, a, &until);
		uint64_t b = until < end ? until : end;
		bool remote = e->round == PG_ROUND_REMOTE;
		/* a data page is right if no later round than what is in wrote it */
		bool right = !remote && c != CONTENT_NONE && e->round && e->round <= c;

		if (c != CONTENT_NONE && !right)
			ret = ops_add(w->o, RST_OP_DISCARD, a, b - a);
		if (!ret && e->round && !right)
			ret = ranges_add(remote ? w->remote : w->left, a, b);
		a = b;
	}
	return ret;
}

/*
 * The final's anonymous memory with --lazy-fill: the layout of round N,
 * stale pages discarded; *@left gets the pages still to copy (the caller
 * registers *@reg and serves them on first touch).
 */
static int lazy_memory(struct rst_process *rp, const MmEntry *mm, const struct stack_view *sv,
		       struct ops *o, struct ranges *left, struct ranges *remote,
		       struct ranges *reg)
{
	struct ranges want, fresh;
	struct lazy_walk w = { rp, &fresh, o, left, remote };
	size_t i;
	int ret;

	memset(left, 0, sizeof(*left));
	memset(remote, 0, sizeof(*remote));
	ret = anon_layout(rp, mm, o, &want, &fresh);
	if (ret)
		return ret;
	for (i = 0; !ret && i < want.nr; i++)
		ret = stack_view_walk(sv, rp->want_pid, want.r[i].start, want.r[i].end, false,
				      lazy_ext, &w);
	ranges_free(&fresh);
	if (ret) {
		ranges_free(left);
		ranges_free(remote);
		ranges_free(&want);
		return ret;
	}
	ranges_free(&rp->prefilled);
	ranges_free(&rp->partial_fresh);
	rp->partial_round = 0;
	*reg = want;
	rp->prefilled = (struct ranges){ 0 };
	return ranges_sub(&want, &(struct ranges){ 0 }, &rp->prefilled);
}

/* The processes being restored, in tree order (the root first). */
struct rst_tree {
	struct rst_process *rp;
	size_t nr;
	/* the stack up to the last round seen; --stream moves it up round by round */
	struct stack_view sv;
	/* the last fill and layout: memory ops sent, and whether only the top's changes were */
	size_t fill_ops, layout_ops;
	bool fill_delta;
	uint64_t syscalls_before;	/* the blobs' system calls before the last fill */
	struct lazy *lazy;		/* --lazy-fill: what is left is served on first touch */
	uint64_t lazy_pages;		/* pages left to it at the final */
	uint64_t remote_pages;		/* post-copy: of those, REMOTE ones */
	bool remote_ok;			/* post-copy: the view takes REMOTE pages */
};

/*
 * restore --stream's commands (stdin): read between the chunks of a
 * prefill too, so that a "final" cuts it short (--lazy-fill).
 */
#define CMDQ_MAX	64

struct cmdq {
	struct { enum rctl_cmd cmd; uint32_t k; } q[CMDQ_MAX];
	size_t nr;
	struct rctl_line line;
	bool eof;
};

/* One command: 1, 0 none ready (@block false), -1 end of input. */
static int cmdq_read(struct cmdq *cq, bool block, enum rctl_cmd *cmd, uint32_t *k)
{
	for (;;) {
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
		enum rctl_feed got;
		int ch;

		if (cq->eof)
			return -1;
		/* stdin is unbuffered (main.c): poll sees every byte not read yet */
		if (!block && poll(&pfd, 1, 0) <= 0)
			return 0;
		ch = getc(stdin);
		if (ch == EOF) {
			cq->eof = true;
			return -1;
		}
		got = rctl_line_feed(&cq->line, ch);
		if (got == RCTL_MORE)
			continue;
		if (got == RCTL_BAD || rctl_parse_cmd(cq->line.buf, cmd, k)) {
			pr_err("unknown command: %s%s", cq->line.buf, got == RCTL_BAD ? "..." : "");
			continue;
		}
		return 1;
	}
}

static bool cmdq_has_end(const struct cmdq *cq)
{
	size_t i;

	for (i = 0; i < cq->nr; i++)
		if (cq->q[i].cmd == RCTL_FINAL || cq->q[i].cmd == RCTL_ABORT)
			return true;
	return false;
}

/*
 * Is a final (or the end) waiting? Rounds read meanwhile are queued. Nothing
 * is read past a final: what follows it (abort, resume) is hold_wait's.
 */
static bool cmdq_final_waits(struct cmdq *cq)
{
	enum rctl_cmd cmd;
	uint32_t k;
	int got;

	while (!cmdq_has_end(cq) && cq->nr < CMDQ_MAX &&
	       (got = cmdq_read(cq, false, &cmd, &k)) != 0) {
		cq->q[cq->nr].cmd = got < 0 ? RCTL_ABORT : cmd;
		cq->q[cq->nr++].k = k;
	}
	return cmdq_has_end(cq);
}

static int cmdq_next(struct cmdq *cq, enum rctl_cmd *cmd, uint32_t *k)
{
	if (!cq->nr)
		return cmdq_read(cq, true, cmd, k);
	*cmd = cq->q[0].cmd;
	*k = cq->q[0].k;
	memmove(cq->q, cq->q + 1, --cq->nr * sizeof(cq->q[0]));
	return 1;
}

static void rst_view_drop(struct rst_tree *rt)
{
	if (rt->sv.top_dir)
		stack_view_close(&rt->sv);
}

/*
 * The view at round @round (@round_dir): one round up from the last if it
 * can (what that round changed, nothing more), else opened whole.
 */
static int rst_view_at(struct rst_tree *rt, const char *round_dir, uint32_t round)
{
	int ret;

	if (rt->sv.top_dir && round && rt->sv.top_round == round)
		return 0;	/* there already (the final looked for REMOTE pages) */
	if (rt->sv.top_dir && round && rt->sv.top_round + 1 == round) {
		rt->sv.remote_ok = rt->remote_ok;
		ret = stack_view_advance(&rt->sv, round_dir);
		if (!ret)
			return 0;
		pr_warn("round %u: cannot follow the stack round by round (%s): reading it whole",
			round, strerror(-ret));
	}
	rst_view_drop(rt);
	return stack_view_open_remote(round_dir, rt->remote_ok, &rt->sv);
}

static void rst_tree_kill(struct rst_tree *rt)
{
	size_t i;

	for (i = rt->nr; i-- > 0;)
		rp_kill(&rt->rp[i]);	/* the root last: it owns the PID namespace's init */
	free(rt->rp);
	rt->rp = NULL;
	rt->nr = 0;
}

/* Same processes, same order? Then what was prepared can be finished. */
/*
 * Are the processes made so far the first ones of @ti? The rest (a fill cut
 * short before they were forked) are made on the way by rst_tree_fill.
 */
static bool rst_tree_matches(const struct rst_tree *rt, const struct tree_images *ti)
{
	size_t i;

	if (rt->nr > ti->nr)
		return false;
	for (i = 0; i < rt->nr; i++)
		if (rt->rp[i].want_pid != (pid_t)ti->p[i].pe->pid)
			return false;
	return true;
}

static bool blob_collides(const struct rst_tree *rt, const struct tree_images *ti)
{
	size_t i;

	for (i = 0; i < ti->nr; i++)
		if (rp_region_collides(&rt->rp[0], ti->p[i].mm))
			return true;
	return false;
}

/*
 * Process @i of the tree: the root from here, every other forked by its
 * parent's blob once the parent's memory is filled, so that the child
 * keeps what it has of it (shared copy-on-write, as on the source).
 */
/* A session leader's controlling terminal (a pty made now), for its fork: *@fd or -1. */
static int fork_ctty(const PstreeEntry *pe, int *fd)
{
	*fd = -1;
	if (!pe->has_ctty || !pe->ctty || pe->sid != pe->pid)
		return 0;
	*fd = tty_ctty_fd(pe->ctty - 1, pe->has_ctty_winsize ? pe->ctty_winsize.data : NULL,
			  pe->ctty_winsize.len);
	if (*fd >= 0)
		return 0;
	pr_err("pid %u: cannot make its controlling terminal /dev/pts/%u: %s", pe->pid,
	       pe->ctty - 1, strerror(-*fd));
	return *fd;
}

static int rst_tree_add(struct rst_tree *rt, const struct tree_images *ti, size_t i, bool pidns)
{
	const PstreeEntry *pe = ti->p[i].pe;
	struct ranges from, keep = { 0 };
	const MmEntry **mms;
	int ret, ctty_fd = -1;
	size_t k;

	/* a session's other processes inherit its leader's terminal from their parents */
	if (!i && pe->has_ctty && pe->ctty) {
		pr_err("pid %u: the tree's root with a controlling terminal", pe->pid);
		return -EINVAL;
	}
	if (i) {
		int pi = find_proc(ti, pe->ppid);
		struct rst_process *parent = &rt->rp[pi];

		/* only what the parent has mapped here now */
		ret = inherit_ranges(ti->p[pi].mm, ti->p[i].mm, &from);
		if (!ret)
			ret = ranges_and(&from, &parent->prefilled, &keep);
		if (!ret)
			ret = fork_ctty(pe, &ctty_fd);
		if (!ret)
			ret = rp_fork(parent, &rt->rp[i], pe->pid, ti->p[i].mm, pe->sid == pe->pid,
				      ctty_fd, &keep);
		if (!ret)
			rt->rp[i].ctty = ctty_fd >= 0 ? pe->ctty : 0;
		if (ctty_fd >= 0)
			close(ctty_fd);
		ranges_free(&from);
		ranges_free(&keep);
	} else {
		free(rt->rp);
		rt->rp = calloc(ti->nr, sizeof(*rt->rp));
		mms = calloc(ti->nr, sizeof(*mms));
		if (!rt->rp || !mms) {
			free(mms);
			return -ENOMEM;
		}
		for (k = 0; k < ti->nr; k++)
			mms[k] = ti->p[k].mm;
		ret = rp_create(&rt->rp[0], pe->pid, mms, ti->nr, pidns);
		free(mms);
	}
	if (ret)
		return ret;
	rt->nr++;
	/* before its memory is filled: charged to its own cgroup */
	return cgroup_enter(rt->rp[i].pid, pe);
}

static uint64_t rst_tree_syscalls(const struct rst_tree *rt)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < rt->nr; i++)
		n += rt->rp[i].blob_syscalls;
	return n;
}

/* The rest of one process's layout (file mappings, stack, shared memory) from the whole stack. */
static int rst_layout(struct rst_process *rp, const struct stack_view *sv, const MmEntry *mm,
		      const struct shm_table *shm, size_t *nr_ops)
{
	struct ops o = { 0 };
	int ret;

	ret = ops_final_layout(&o, sv, rp->want_pid, mm, shm);
	*nr_ops += o.nr;
	if (!ret)
		ret = rp_memory(rp, &o);
	ops_free(&o);
	return ret;
}

#define PREFILL_CHUNK	(16UL << 20)	/* bytes of pages between two looks at stdin */

/*
 * Test hook (docs/testing.md): FERRY_TEST_PREFILL_DELAY_MS after every
 * prefill chunk, as a slow host would take; a command on stdin ends the
 * wait (with @cq: it may cut the round short).
 */
static void test_prefill_delay(struct cmdq *cq)
{
	const char *v = getenv("FERRY_TEST_PREFILL_DELAY_MS");
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	int n = v ? atoi(v) : 0;

	uint64_t end = now_us() + n * 1000ULL, now;

	if (n <= 0 || n > 10000)
		return;
	while ((now = now_us()) < end) {
		int left = (end - now + 999) / 1000;

		if (!cq || cq->nr == CMDQ_MAX) {
			usleep(left * 1000);
			break;
		}
		poll(&pfd, 1, left);
		if (cmdq_final_waits(cq))
			break;
	}
}

/*
 * A round's ops in chunks: the layout first, then PREFILL_CHUNK of pages
 * at a time. With @cq (--lazy-fill), a final waiting cuts it short: 1,
 * what is in is noted in @rp (partial_*).
 */
static int rp_memory_chunked(struct rst_process *rp, const struct ops *o,
			     const struct fill_marks *fm, struct cmdq *cq)
{
	size_t i = 0, j, k;
	int ret = 0;

	while (!ret && i < o->nr) {
		struct ops part = *o;
		uint64_t bytes = 0;

		for (j = i; j < o->nr && (j < fm->n_layout || bytes < PREFILL_CHUNK); j++)
			bytes += o->op[j].type == RST_OP_READ || o->op[j].type == RST_OP_READ_CMP ?
				 o->op[j].len : 0;
		part.op = o->op + i;
		part.nr = j - i;
		ret = rp_memory(rp, &part);
		for (k = i; !ret && k < j; k++) {
			uint64_t end = o->op[k].addr + o->op[k].len;

			if (k >= fm->n_layout && k < fm->n_kept)
				rp->partial_kept_upto = end;
			else if (k >= fm->n_kept)
				rp->partial_fresh_upto = end;
		}
		i = j;
		if (!ret && o->nr > fm->n_layout)
			test_prefill_delay(cq);
		if (!ret && i < o->nr && cq && cmdq_final_waits(cq))
			return 1;
	}
	return ret;
}

/*
 * Anonymous memory of every process up to round @round_dir (@round: its
 * number, 0 unknown). With @cq (--lazy-fill, pre-copy rounds), a final
 * waiting cuts it short: 1.
 */
static int rst_tree_fill(struct rst_tree *rt, const struct tree_images *ti, const char *round_dir,
			 uint32_t round, bool pidns, struct cmdq *cq)
{
	size_t i;
	int ret;

	ret = rst_view_at(rt, round_dir, round);
	rt->fill_ops = 0;
	rt->fill_delta = true;
	rt->syscalls_before = rst_tree_syscalls(rt);
	for (i = 0; i < ti->nr && !ret; i++) {
		struct rst_process *rp;
		struct fill_marks fm = { 0 };
		struct ops o = { 0 };
		bool delta;

		if (i == rt->nr)
			ret = rst_tree_add(rt, ti, i, pidns);
		if (ret)
			break;
		rp = &rt->rp[i];
		ret = sync_memory(rp, ti->p[i].mm, &rt->sv, &o, &delta, &fm);
		rt->fill_ops += o.nr;
		rt->fill_delta &= delta;
		if (!ret) {
			/* marks of a cut being made now: the layout is in from here */
			ranges_free(&rp->partial_fresh);
			rp->partial_fresh = fm.fresh;
			fm.fresh = (struct ranges){ 0 };
			rp->partial_round = round;
			rp->partial_kept_upto = rp->partial_fresh_upto = 0;
			ret = rp_memory_chunked(rp, &o, &fm, cq);
		}
		if (!ret) {
			rp->applied_round = rt->sv.top_round;
			rp->partial_round = 0;
			ranges_free(&rp->partial_fresh);
			rp->inherited = false;
		}
		ranges_free(&fm.fresh);
		ops_free(&o);
	}
	return ret;
}

/*
 * Can the final leave pages to the lazy fill? Not while a process is still
 * to be made (a fill cut short in its first round) or holds memory it
 * inherited but was not filled over yet (which pages are right there is
 * known only to a whole READ_CMP pass): those are filled before the tree runs.
 */
static bool rst_tree_lazy_ok(const struct rst_tree *rt, const struct tree_images *ti)
{
	size_t i;

	if (rt->nr != ti->nr)
		return false;
	for (i = 0; i < rt->nr; i++)
		if (rt->rp[i].inherited)
			return false;
	return true;
}

/* Is the tree behind the final round @round (something of an older round not in)? */
static bool rst_tree_behind(const struct rst_tree *rt, uint32_t round)
{
	size_t i;

	for (i = 0; i < rt->nr; i++)
		if (rt->rp[i].partial_round || rt->rp[i].applied_round + 1 < round)
			return true;
	return false;
}

/* Test hook (docs/testing.md): FERRY_TEST_NO_UFFD=1 asks for features no kernel has. */
static bool test_no_uffd(void)
{
	const char *v = getenv("FERRY_TEST_NO_UFFD");

	return v && !strcmp(v, "1");
}

/* MADV_WIPEONFORK / DONTFORK memory of @mm: a child forked during the fill has none of it. */
static int nofork_ranges(const MmEntry *mm, struct ranges *out)
{
	uint32_t bits = VMA_ADVICE__VMA_ADVICE_WIPEONFORK | VMA_ADVICE__VMA_ADVICE_DONTFORK;
	size_t i;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < mm->n_vmas && !ret; i++)
		if (mm->vmas[i]->has_advice && (mm->vmas[i]->advice & bits))
			ret = ranges_add(out, mm->vmas[i]->start, mm->vmas[i]->end);
	return ret;
}

/*
 * The final with --lazy-fill, behind the prefill: stale pages discarded,
 * the rest of the layout, then the missing pages registered for first
 * touch and the fill started (rt->lazy). The process does not run yet.
 */
static int rst_tree_lazy(struct rst_tree *rt, const struct tree_images *ti, const char *round_dir,
			 uint32_t round, const struct shm_table *shm, const struct restore_opts *ro)
{
	struct lazy_proc *lp = calloc(rt->nr, sizeof(*lp));
	struct ranges *left = calloc(rt->nr, sizeof(*left)), *reg = calloc(rt->nr, sizeof(*reg));
	struct ranges *nofork = calloc(rt->nr, sizeof(*nofork));
	struct ranges *remote = calloc(rt->nr, sizeof(*remote));
	size_t i, n = 0;
	int ret;

	ret = lp && left && reg && nofork && remote ? rst_view_at(rt, round_dir, round) : -ENOMEM;
	rt->fill_ops = 0;
	rt->fill_delta = false;
	rt->layout_ops = 0;
	rt->lazy_pages = 0;
	rt->remote_pages = 0;
	rt->syscalls_before = rst_tree_syscalls(rt);
	for (i = 0; i < rt->nr && !ret; i++) {
		struct ops o = { 0 };

		ret = lazy_memory(&rt->rp[i], ti->p[i].mm, &rt->sv, &o, &left[i], &remote[i],
				  &reg[i]);
		rt->fill_ops += o.nr;
		if (!ret)
			ret = rp_memory(&rt->rp[i], &o);
		if (!ret)
			rt->rp[i].applied_round = rt->sv.top_round;
		ops_free(&o);
	}
	for (i = 0; i < rt->nr && !ret; i++)
		ret = rst_layout(&rt->rp[i], &rt->sv, ti->p[i].mm, shm, &rt->layout_ops);
	/* last: the registration sees no memory op of ours as the process's own */
	for (i = 0; i < rt->nr && !ret; i++) {
		size_t k;

		if (!left[i].nr && !remote[i].nr)
			continue;
		for (k = 0; k < left[i].nr; k++)
			rt->lazy_pages += (left[i].r[k].end - left[i].r[k].start) / PAGE_SIZE;
		for (k = 0; k < remote[i].nr; k++)
			rt->remote_pages += (remote[i].r[k].end - remote[i].r[k].start) / PAGE_SIZE;
		ret = nofork_ranges(ti->p[i].mm, &nofork[i]);
		if (!ret)
			ret = rp_uffd(&rt->rp[i], &reg[i], test_no_uffd() ? ~0U : LAZY_UFFD_FEATURES,
				      &lp[n].uffd);
		if (ret == -EOPNOTSUPP && remote[i].nr) {
			/* nothing could wait for them: the migration fails, the source runs on */
			pr_err("post-copy: pid %u: no userfaultfd here, so its pages still at the "
			       "source cannot be served on first touch", rt->rp[i].want_pid);
			break;
		}
		if (ret == -EOPNOTSUPP) {
			/* no userfaultfd here (a seccomp filter, an old kernel): fill it now */
			struct ops o = { 0 };

			fprintf(stderr, "restore: warning: pid %u: no userfaultfd: the pages left are "
				"filled before it runs\n", rt->rp[i].want_pid);
			ret = ops_view_fill(&o, &rt->sv, rt->rp[i].want_pid, &left[i], false, 0);
			rt->fill_ops += o.nr;
			if (!ret)
				ret = rp_memory(&rt->rp[i], &o);
			ops_free(&o);
			ranges_free(&left[i]);
			if (!ret)
				continue;
		}
		if (ret)
			break;
		lp[n].pid = rt->rp[i].want_pid;
		lp[n].host_pid = rt->rp[i].pid;
		lp[n].left = &left[i];
		lp[n].remote = &remote[i];
		lp[n].nofork = &nofork[i];
		n++;
	}
	if (ret)
		for (i = 0; i < n; i++)
			close(lp[i].uffd);
	else if (n)
		ret = lazy_start(&rt->lazy, &rt->sv, lp, n, ro->postcopy_fd,
				 ro->postcopy_fd >= 0 ? ro->status_fd : -1);
	if (!ret)
		pr_info("lazy fill: %llu pages left to fill after the process runs, %llu more to "
			"come from the source", (unsigned long long)rt->lazy_pages,
			(unsigned long long)rt->remote_pages);
	for (i = 0; i < rt->nr && left && reg && nofork && remote; i++) {
		ranges_free(&left[i]);
		ranges_free(&reg[i]);
		ranges_free(&nofork[i]);
		ranges_free(&remote[i]);
	}
	free(lp);
	free(left);
	free(reg);
	free(nofork);
	free(remote);
	return ret;
}

/* Its own group if it leads one, a group of the tree, or the root's. */
static pid_t wanted_pgid(const struct tree_images *ti, size_t i)
{
	const PstreeEntry *pe = ti->p[i].pe;

	if (!i || (pe->sid == pe->pid && pe->pgid == pe->pid))
		return 0;	/* made so by setsid() */
	return find_proc(ti, pe->pgid) >= 0 ? (pid_t)pe->pgid : 0;
}

/*
 * Group leaders before their members (setpgid needs the group to exist),
 * otherwise tree order: @order gets the indexes.
 */
static void final_order(const struct tree_images *ti, size_t *order)
{
	size_t i, k = 0;

	for (i = 0; i < ti->nr; i++)
		if (ti->p[i].pe->pgid == ti->p[i].pe->pid)
			order[k++] = i;
	for (i = 0; i < ti->nr; i++)
		if (ti->p[i].pe->pgid != ti->p[i].pe->pid)
			order[k++] = i;
}

/* The last number of /proc/@tid/status's NSpid: its id in its own PID namespace. */
static pid_t ns_tid(pid_t tid)
{
	char path[64], buf[4096], *p, *last = NULL;

	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	if (read_small_file(path, buf, sizeof(buf)) < 0)
		return -1;
	p = strstr(buf, "\nNSpid:");
	if (!p)
		return tid;
	for (p += 7; *p && *p != '\n'; p++)
		if (*p != ' ' && *p != '\t' && (p[-1] == ' ' || p[-1] == '\t' || p[-1] == ':'))
			last = p;
	return last ? (pid_t)strtol(last, NULL, 10) : -1;
}

/* The task of the tree saved as @saved, as seen from here (--pidns: another number). */
static pid_t tree_task(void *arg, pid_t saved)
{
	const struct rst_tree *rt = arg;
	size_t i, j;

	for (i = 0; i < rt->nr; i++)
		for (j = 0; j < rt->rp[i].nr_tids; j++)
			if (ns_tid(rt->rp[i].tids[j]) == saved)
				return rt->rp[i].tids[j];
	return -1;
}

/* A saved pid's process (its threads may not exist yet), or -1. */
static pid_t tree_proc(void *arg, pid_t saved)
{
	const struct rst_tree *rt = arg;
	size_t i;

	for (i = 0; i < rt->nr; i++)
		if (rt->rp[i].pid > 0 && ns_tid(rt->rp[i].pid) == saved)
			return rt->rp[i].pid;
	return -1;
}

/* ppid, pgrp, session of @pid from /proc/PID/stat. */
static int stat_ids(pid_t pid, pid_t *ppid, pid_t *pgrp, pid_t *sid)
{
	char path[64], buf[1024], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %d %d %d", ppid, pgrp, sid) != 3)
		return -1;
	return 0;
}

/* As the kernel sees it: no member has a parent in another group of the same session. */
static bool pgrp_orphaned(pid_t pgid, pid_t sid)
{
	pid_t ppid, pg, s, ppg, ps, pp;
	struct dirent *de;
	bool orphaned = true;
	DIR *d;

	d = opendir("/proc");
	if (!d)
		return true;
	while (orphaned && (de = readdir(d))) {
		pid_t pid = strtol(de->d_name, NULL, 10);

		if (pid <= 0 || stat_ids(pid, &ppid, &pg, &s) || pg != pgid || ppid <= 0)
			continue;
		if (!stat_ids(ppid, &pp, &ppg, &ps) && ppg != pgid && ps == sid)
			orphaned = false;
	}
	closedir(d);
	return orphaned;
}

/*
 * A process stopped by job control is stopped again by the same signal. The
 * kernel drops SIGTSTP, SIGTTIN and SIGTTOU in an orphaned process group
 * (as a restored tree's root usually is): there only SIGSTOP stops it.
 */
static int stop_signal(pid_t pid, const PstreeEntry *pe, const ProcCore *core)
{
	int sig = pe->has_stop_signal ? (int)pe->stop_signal : SIGSTOP;
	size_t i;

	if (!pe->stopped)
		return 0;
	/* a handler of it now would run instead of stopping the process */
	for (i = 0; sig != SIGSTOP && i < core->n_sigactions; i++)
		if ((int)core->sigactions[i]->sig == sig && core->sigactions[i]->handler)
			sig = SIGSTOP;
	if (sig != SIGSTOP && pgrp_orphaned(getpgid(pid), getsid(pid))) {
		pr_info("pid %d: stopped by signal %d, but its process group is orphaned "
			"here: stopped by SIGSTOP", pe->pid, sig);
		sig = SIGSTOP;
	}
	return sig;
}

/* @files' fd of the pty /dev/pts/@index, or -1. */
static int pty_fd(const FilesEntry *files, uint32_t index)
{
	size_t i;

	for (i = 0; i < files->n_fds; i++)
		if (files->fds[i]->type == FD_TYPE__FD_TTY && files->fds[i]->tty &&
		    files->fds[i]->tty->index == index)
			return files->fds[i]->fd;
	return -1;
}

/*
 * Who sets the foreground group of each session leader's terminal (when
 * not the leader's own group, which it has since its fork): a process of
 * the session holding an fd of the terminal, at its FINAL after the
 * group's leader's (the group exists then). @fg_fd[k]: the fd process k
 * uses, -1: none.
 */
static int tty_fg_setters(const struct tree_images *ti, const size_t *order, int *fg_fd)
{
	size_t s, i, j;

	for (i = 0; i < ti->nr; i++)
		fg_fd[i] = -1;
	for (s = 0; s < ti->nr; s++) {
		const PstreeEntry *ls = ti->p[s].pe;

		if (!ls->ctty || ls->sid != ls->pid || !ls->has_tpgid || ls->tpgid == (int)ls->pid)
			continue;
		for (i = 0; i < ti->nr && ti->p[order[i]].pe->pid != (uint32_t)ls->tpgid; i++)
			;
		for (j = i; j < ti->nr; j++) {
			const PstreeEntry *pe = ti->p[order[j]].pe;
			int fd = pty_fd(ti->p[order[j]].files, ls->ctty - 1);

			if (pe->sid == ls->sid && pe->ctty == ls->ctty && fd >= 0) {
				fg_fd[order[j]] = fd;
				break;
			}
		}
		if (j >= ti->nr) {
			pr_err("pid %u: no process of its session can make group %d the foreground "
			       "one of its terminal /dev/pts/%u again", ls->pid, ls->tpgid,
			       ls->ctty - 1);
			return -EINVAL;
		}
	}
	return 0;
}

/* Each session leader has the terminal its fork gave it (its session's since). */
static int ctty_unchanged(const struct rst_tree *rt, const struct tree_images *ti)
{
	size_t k;

	for (k = 0; k < rt->nr; k++) {
		const PstreeEntry *pe = ti->p[k].pe;
		uint32_t want = pe->sid == pe->pid && pe->has_ctty ? pe->ctty : 0;

		if (rt->rp[k].ctty == want)
			continue;
		/* a pty index, -1: none */
		pr_err("pid %u: its controlling terminal changed during the migration (pty %d "
		       "when it was made here, now %d)", pe->pid, (int)rt->rp[k].ctty - 1,
		       (int)want - 1);
		return -EAGAIN;
	}
	return 0;
}

/* The foreground group process @k sets (tty_fg_setters), as its session leader saw it. */
static pid_t tty_fg_of(const struct tree_images *ti, size_t k)
{
	int s = find_proc(ti, ti->p[k].pe->sid);

	return s >= 0 ? ti->p[s].pe->tpgid : 0;
}

/* State of every process, each stopped just before its last step (nothing runs yet). */
static int rst_tree_final_start(struct rst_tree *rt, const struct tree_images *ti, int dirfd,
				const struct shm_table *shm, const struct ipc_sets *ipc,
				const size_t *order, struct open_files *of)
{
	int *fg_fd = calloc(ti->nr + 1, sizeof(*fg_fd));
	size_t i;
	int ret;

	if (!fg_fd)
		return -ENOMEM;
	ret = ctty_unchanged(rt, ti);
	if (!ret)
		ret = tty_fg_setters(ti, order, fg_fd);

	/* the queues' last senders and receivers are the tree's: all exist now */
	if (!ret)
		ret = ipc_msg_fill(ipc, rt->rp, rt->nr);
	if (!ret)	/* the segments' last attachers too, each attached by its layout */
		ret = ipc_shm_finish(shm, rt->rp, rt->nr);
	/* the TCP locks were made before (rst_tree_final): each fd finds its own */
	for (i = 0; i < rt->nr && !ret; i++) {
		size_t k = order[i];
		struct rst_final f = { .core = ti->p[k].core, .mm = ti->p[k].mm,
				       .files = ti->p[k].files, .pgid = wanted_pgid(ti, k),
				       .tty_fg_fd = fg_fd[k], .tty_fg = tty_fg_of(ti, k), .of = of };
		int *fds = NULL;

		/* where it is now (it may have moved since round 1), before its threads exist */
		ret = cgroup_enter(rt->rp[k].pid, ti->p[k].pe);
		if (!ret)	/* the semaphores it used last, before it may change creds */
			ret = ipc_sem_values(ipc, &rt->rp[k]);
		if (!ret)
			ret = rst_open_fds(of, f.files, dirfd, shm, tree_proc, rt, &fds);
		f.fds = fds;
		if (!ret)
			ret = rp_final_start(&rt->rp[k], &f);
		free(fds);
	}
	if (!ret)
		ret = rst_fds_ready(of, tree_task, rt);
	/* every process through its last fallible step: after this all go, or none */
	for (i = 0; i < rt->nr && !ret; i++)
		ret = rp_final_prepare(&rt->rp[order[i]]);
	free(fg_fd);
	return ret;
}

/* All go together: nothing here can fail half-way. */
static void rst_tree_final_finish(struct rst_tree *rt, const struct tree_images *ti,
				  const size_t *order)
{
	size_t i;

	for (i = 0; i < rt->nr; i++) {
		pid_t pid = rt->rp[order[i]].pid;

		/* it was stopped by job control: so it is again, waiting for its SIGCONT */
		rp_release(&rt->rp[order[i]], stop_signal(pid, ti->p[order[i]].pe,
							  ti->p[order[i]].core));
	}
}

/*
 * --hold (docs/handover.md): the tree is whole and stopped. Say "held" and
 * wait for "resume"; "abort", EOF or no word within the deadline discard it
 * (the caller kills what is not detached). stdin is unbuffered in this mode,
 * so poll() sees every byte not read yet.
 */
static int hold_wait(const struct restore_opts *o)
{
	struct rctl_status st = { .kind = RCTL_HELD };
	uint64_t deadline = now_us() + o->hold_timeout_s * 1000000ULL;
	struct rctl_line line = { 0 };
	struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
	enum rctl_feed got;
	enum rctl_cmd cmd;
	uint32_t k;
	char c;
	ssize_t n;
	int ret;

	signal(SIGPIPE, SIG_IGN);	/* a dead page server must not kill us before the tree */
	fprintf(stderr, "restore: held: waiting for resume\n");
	ret = rctl_send_status(o->status_fd, &st);
	if (ret) {
		pr_err("discarded: cannot report held: %s", strerror(-ret));
		return ret;
	}
	for (;;) {
		uint64_t now = now_us();

		if (now >= deadline) {
			pr_err("discarded: no resume within %u s", o->hold_timeout_s);
			return -ETIMEDOUT;
		}
		ret = poll(&pfd, 1, (deadline - now + 999) / 1000);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0) {
			pr_perror("discarded: poll");
			return -errno;
		}
		if (!ret)
			continue;
		n = read(STDIN_FILENO, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			pr_err("discarded: the page server went away (end of input)");
			return -ECANCELED;
		}
		got = rctl_line_feed(&line, c);
		if (got == RCTL_MORE)
			continue;
		if (got == RCTL_BAD || rctl_parse_cmd(line.buf, &cmd, &k) ||
		    (cmd != RCTL_RESUME && cmd != RCTL_ABORT)) {
			pr_err("unknown command while held: %s%s", line.buf,
			       got == RCTL_BAD ? "..." : "");
			continue;
		}
		if (cmd == RCTL_ABORT) {
			pr_err("discarded: aborted by the page server");
			return -ECANCELED;
		}
		return 0;
	}
}

/* Every process at its final point, then (after the hold) all go together. */
static int rst_tree_final(struct rst_tree *rt, const struct tree_images *ti, int dirfd,
			  const struct shm_table *shm, const struct ipc_sets *ipc,
			  const struct restore_opts *o)
{
	struct rctl_status st = { .kind = RCTL_RESUMED };
	struct open_files of = { 0 };
	struct rst_addr ra = { .nl = -1, .ann = -1 };
	size_t *order, i;
	int ret;

	order = calloc(ti->nr, sizeof(*order));
	if (!order)
		return -ENOMEM;
	final_order(ti, order);
	/*
	 * Every TCP lock of the tree (connections, held-back listeners) in one
	 * nft run, before the address can bring their packets here: a client's
	 * retransmission meeting neither a socket nor a lock would be reset.
	 */
	for (i = 0, ret = 0; i < ti->nr && !ret; i++)
		ret = tcp_lock_prepare(ti->p[i].files);
	if (!ret)
		ret = tcp_lock_commit();
	/* --move-address: before its sockets bind to the address, and before it runs */
	if (!ret)
		ret = rst_addr_arrive(&ra, dirfd);
	if (!ret)
		ret = rst_tree_final_start(rt, ti, dirfd, shm, ipc, order, &of);
	if (!ret && o->hold)
		ret = hold_wait(o);
	if (ret)
		rst_addr_leave(&ra);
	if (!ret) {
		rst_fds_resume(&of);	/* TCP connections leave repair mode */
		rst_tree_final_finish(rt, ti, order);
		rst_addr_done(&ra);
	}
	if (!ret && o->hold) {
		fprintf(stderr, "restore: resumed\n");
		rctl_send_status(o->status_fd, &st);
	}
	open_files_close(&of);
	tty_restore_end();
	free(order);
	return ret;
}

/* The System V objects of the images (dest-agent/ipc.c), their last users the tree's pids. */
static int rst_ipc_make(struct ipc_sets *ipc, const struct tree_images *ti, int dirfd)
{
	uint32_t *pids;
	size_t i;
	int ret;

	pids = calloc(ti->nr, sizeof(*pids));
	if (!pids)
		return -ENOMEM;
	for (i = 0; i < ti->nr; i++)
		pids[i] = ti->p[i].pe->pid;
	ret = ipc_restore(ipc, dirfd, pids, ti->nr);
	free(pids);
	return ret;
}

/*
 * The final round: what changed, the rest of the layout, then the state.
 * With --lazy-fill and the prefill behind, what is missing is filled after
 * the process runs (rt->lazy: restore_final waits for it).
 */
static int rst_tree_finish(struct rst_tree *rt, const struct tree_images *ti, const char *round_dir,
			   uint32_t round, int dirfd, const struct restore_opts *o)
{
	struct shm_table shm = { 0 };
	struct ipc_sets ipc = { 0 };
	bool remote;
	size_t i;
	int ret;

	ret = rst_ipc_make(&ipc, ti, dirfd);	/* before anything of the tree may name them */
	/* post-copy: only the lazy fill can wait for pages that are not here */
	if (!ret && rt->remote_ok)
		ret = rst_view_at(rt, round_dir, round);
	remote = !ret && rt->remote_ok && stack_view_has_remote(&rt->sv);
	if (remote && !rst_tree_lazy_ok(rt, ti)) {
		pr_err("post-copy: the tree was not prepared round by round (a process came after "
		       "the first round, or the streaming restore started over): its pages still at "
		       "the source cannot be served on first touch");
		ret = -EINVAL;
	}
	if (!ret && (o->lazy || remote) && rst_tree_lazy_ok(rt, ti) &&
	    (remote || rst_tree_behind(rt, round))) {
		ret = shm_restore(&shm, dirfd, &rt->sv);
		for (i = 0; i < rt->nr && !ret; i++)
			ret = ghost_files_restore(&shm, ti->p[i].mm, ti->p[i].files, dirfd);
		if (!ret)
			ret = rst_tree_lazy(rt, ti, round_dir, round, &shm, o);
	} else if (!ret) {
		ret = rst_tree_fill(rt, ti, round_dir, round, o->pidns, NULL);
		if (!ret)
			ret = shm_restore(&shm, dirfd, &rt->sv);
		for (i = 0; i < rt->nr && !ret; i++)
			ret = ghost_files_restore(&shm, ti->p[i].mm, ti->p[i].files, dirfd);
		rt->layout_ops = 0;
		for (i = 0; i < rt->nr && !ret; i++)
			ret = rst_layout(&rt->rp[i], &rt->sv, ti->p[i].mm, &shm, &rt->layout_ops);
	}
	if (!ret)
		ret = rst_tree_final(rt, ti, dirfd, &shm, &ipc, o);
	if (ret && rt->lazy) {
		lazy_end(rt->lazy, false);	/* the tree is discarded: nothing ran */
		rt->lazy = NULL;
	}
	if (!ret && rt->lazy) {
		/* the page server reports "restored" now: the process runs */
		fprintf(stderr, "restore: running; the lazy fill goes on\n");
		rctl_send_status(o->status_fd, &(struct rctl_status){ .kind = RCTL_FILLING });
	}
	if (ret)
		ipc_shm_undo(&shm);
	shm_table_close(&shm);
	ipc_sets_close(&ipc, ret);
	return ret;
}

static uint32_t round_number(const char *round_dir)
{
	const char *base = strrchr(round_dir, '/');
	char *end;
	unsigned long n;

	base = base && base[1] ? base + 1 : round_dir;
	n = strtoul(base, &end, 10);
	return *end ? 0 : n;
}

static int restore_final(struct rst_tree *rt, const char *round_dir, const struct restore_opts *o)
{
	struct tree_images ti;
	uint64_t t0 = now_us();
	int dirfd, ret;

	dirfd = open(round_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		pr_perror("cannot open %s", round_dir);
		return -errno;
	}
	ret = load_tree(dirfd, true, &ti);
	if (!ret && rt->nr && (!rst_tree_matches(rt, &ti) || blob_collides(rt, &ti))) {
		pr_info("the final round's tree or layout differs from the prepared one: starting over");
		rst_tree_kill(rt);
	}
	if (!ret)
		ret = rst_tree_finish(rt, &ti, round_dir, round_number(round_dir), dirfd, o);
	if (!ret && ti.nr > 1)
		printf("restored a tree of %zu processes under pid %u\n", ti.nr, ti.p[0].pe->pid);
	/* what the final step cost in memory operations (docs/restore-protocol.md) */
	if (!ret)
		printf("final memory: %zu ops (%s), %zu ops for the rest of the layout, "
		       "%llu system calls in the restorer\n",
		       rt->fill_ops, rt->fill_delta ? "the final round's changes over the prefill" :
		       "anonymous memory from the whole stack", rt->layout_ops,
		       (unsigned long long)(rst_tree_syscalls(rt) - rt->syscalls_before));
	if (!ret)
		printf("restored pid %u in %.1f ms\n", ti.p[0].pe->pid, (now_us() - t0) / 1e3);
	if (!ret && rt->lazy)
		printf("lazy fill: %llu pages left when it ran\n", (unsigned long long)rt->lazy_pages);
	if (!ret && rt->lazy && o->postcopy_fd >= 0)
		printf("post-copy: %llu pages still at the source when it ran\n",
		       (unsigned long long)rt->remote_pages);
	fflush(stdout);
	if (rt->lazy) {
		/* it runs on our memory now: a stop request waits for the fill (handover.md) */
		signal(SIGTERM, SIG_IGN);
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGPIPE, SIG_IGN);	/* the page server may be gone */
		/* the view stays open until everything is in */
		ret = lazy_end(rt->lazy, true);
		rt->lazy = NULL;
		if (!ret)
			printf("lazy fill: complete %.1f ms after the final began\n",
			       (now_us() - t0) / 1e3);
		fflush(stdout);
	}
	rst_tree_kill(rt);	/* what is restored is detached already: only the rest dies */
	rst_view_drop(rt);
	if (ti.nr)
		tree_images_free(&ti);
	close(dirfd);
	return ret;
}

int restore_run(const struct restore_opts *o)
{
	struct rst_tree rt = { .remote_ok = o->postcopy_fd >= 0 };
	int ret;

	ret = rst_probe_xstate();
	if (!ret)
		ret = restore_final(&rt, o->images_dir, o);
	return ret;
}

/* ---- streaming ---- */

/* One pre-copy round: make the tree at the first one, fill what each round brought. */
static int stream_round(struct rst_tree *rt, const char *round_dir, uint32_t round, bool pidns,
			struct cmdq *cq)
{
	struct tree_images ti;
	int dirfd, ret;

	dirfd = open(round_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	ret = load_tree(dirfd, false, &ti);
	close(dirfd);
	if (ret)
		return ret;
	if (rt->nr && !rst_tree_matches(rt, &ti)) {
		pr_info("round %u: the tree changed", round);
		ret = -ECHILD;
	} else if (rt->nr && blob_collides(rt, &ti)) {
		pr_info("round %u: the restorer sits where a process now has memory", round);
		ret = -EADDRINUSE;
	}
	if (!ret)
		ret = rst_tree_fill(rt, &ti, round_dir, round, pidns, cq);
	tree_images_free(&ti);
	return ret;
}

/*
 * Commands on stdin, one per line (proto/restore_ctl.h): "round K" after
 * the page server committed pre-copy round K, "final N" for the final
 * round (then we exit with the verdict), "abort" (or EOF): the prepared
 * processes are killed. Progress goes to the status fd, if any.
 */
int restore_stream(const struct restore_opts *o)
{
	struct rst_tree rt = { .remote_ok = o->postcopy_fd >= 0 };
	struct rctl_status st = { .kind = RCTL_PREFILLED };
	struct cmdq cq = { 0 };
	char dir[PATH_MAX];
	enum rctl_cmd cmd;
	uint32_t k;
	bool broken = false;
	int ret;

	ret = rst_probe_xstate();
	if (ret)
		return ret;
	while (cmdq_next(&cq, &cmd, &k) > 0) {
		uint64_t t0 = now_us();

		if (cmd == RCTL_ABORT)
			break;
		snprintf(dir, sizeof(dir), "%s/%u", o->stack_dir, k);
		if (cmd == RCTL_FINAL)
			return restore_final(&rt, dir, o);
		if (broken)
			continue;
		/* --lazy-fill: a final waits already; it does not wait for this round */
		if (o->lazy && cmdq_final_waits(&cq)) {
			fprintf(stderr, "restore: round %u not prefilled: the final round is here\n", k);
			continue;
		}
		ret = stream_round(&rt, dir, k, o->pidns, o->lazy ? &cq : NULL);
		if (ret == 1) {
			fprintf(stderr, "restore: round %u cut short after %.1f ms: the final round "
				"is here\n", k, (now_us() - t0) / 1e3);
		} else if (ret) {
			pr_warn("round %u could not be prefilled (%s): the final round will "
				"restore everything", k, strerror(-ret));
			rst_tree_kill(&rt);
			rst_view_drop(&rt);
			broken = true;
			/* the source stops waiting for prefills it would never get */
			rctl_send_status(o->status_fd,
					 &(struct rctl_status){ .kind = RCTL_UNFILLED, .round = k });
		} else {
			/*
			 * Merged into the index before the source hears of it: it
			 * freezes only after "prefilled", so the final never waits
			 * for this and costs only what it changed over round k.
			 */
			if (stack_view_settle(&rt.sv))
				rst_view_drop(&rt);	/* the next round reads the stack whole */
			pr_info("round %u prefilled in %.1f ms", k, (now_us() - t0) / 1e3);
			/* for people; the page server reads the status fd */
			fprintf(stderr, "restore: prefilled round %u\n", k);
			/* the source waits for this before freezing */
			st.round = k;
			rctl_send_status(o->status_fd, &st);
		}
	}
	pr_info("migration abandoned: the prepared processes are dropped");
	rst_tree_kill(&rt);
	rst_view_drop(&rt);
	return -ECANCELED;
}
