// SPDX-License-Identifier: MIT
/* Image stacks in a temp dir: round trips, auto and offline dedup, hostile stacks, ENOSPC. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "imgstack/dedup.h"
#include "imgstack/view.h"
#include "imgstack/writer.h"
#include "proto/image.h"
#include "tests/unit/unit.h"

#define PG	PAGE_SIZE
#define NPG	64
#define BASE	0x10000000ULL
#define ROUNDS	3
static const uint32_t pids[2] = { 100, 200 };

/* --- temp dirs --- */

static char tmp_root[PATH_MAX];

static void make_tmp(void)
{
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/ferry-stack-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp_root));
}

static void remove_tmp(void)
{
	char p[PATH_MAX + 8];

	/* the ENOSPC test's tmpfs, should it have failed before unmounting */
	snprintf(p, sizeof(p), "%s/small", tmp_root);
	umount2(p, MNT_DETACH);
	rm_tree(tmp_root);
}

static void pathf(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pathf(char *buf, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
}

static bool exists(const char *path)
{
	struct stat st;

	return !lstat(path, &st);
}

/* --- the workload and its per-page model --- */

static void fill(void *buf, uint32_t pid, uint32_t round, uint64_t pg)
{
	uint64_t *w = buf;
	size_t i;

	for (i = 0; i < PG / 8; i++)
		w[i] = (uint64_t)pid << 40 | (uint64_t)round << 32 | pg << 12 | i;
}

enum { UNTRACKED, ZERO, DATA };

struct mpage {
	int state;
	uint32_t round;
};

struct model {
	struct mpage pg[ROUNDS + 2][2][NPG];	/* [after round k] */
	uint64_t next_off[2];
	uint64_t off[ROUNDS + 2][2][NPG];	/* where round k wrote the page */
	bool written[ROUNDS + 2][2][NPG];
	bool replaced[ROUNDS + 2][2][NPG];	/* round k's copy is overridden */
	uint64_t replaced_bytes;
};

struct op {
	uint32_t round;
	int slot;
	uint32_t first, n;
	bool data;
};

static const struct op script[] = {
	/* round 1: pid 100 in shuffled chunks, one zero run */
	{ 1, 0, 16, 8, true }, { 1, 0, 0, 8, true }, { 1, 0, 40, 8, true },
	{ 1, 0, 8, 8, true }, { 1, 0, 24, 16, true }, { 1, 0, 48, 8, false },
	/* round 2: rewrites, data turned to zero, new pages, a second pid */
	{ 2, 0, 16, 8, true }, { 2, 0, 8, 8, true }, { 2, 0, 30, 4, false },
	{ 2, 0, 56, 4, true }, { 2, 1, 0, 4, true },
	/* round 3: rewrites across round 1/2 runs, zero turned to data */
	{ 3, 0, 20, 8, true }, { 3, 0, 44, 8, true },
	/* round 4 (resume test): one more rewrite */
	{ 4, 0, 0, 2, true }, { 4, 1, 2, 1, true },
};

/* pid 200 first appears in round 2. */
static bool pid_in_round(int slot, uint32_t k)
{
	return slot == 0 || k >= 2;
}

static void send_op(struct stack_writer *sw, struct model *m, const struct op *o)
{
	static char buf[16 * PG];
	uint32_t i;

	cr_assert_leq(o->n, 16);
	for (i = 0; i < o->n; i++) {
		uint32_t pg = o->first + i;
		struct mpage *p = &m->pg[o->round][o->slot][pg];

		if (p->state == DATA) {
			m->replaced[p->round][o->slot][pg] = true;
			m->replaced_bytes += PG;
		}
		p->state = o->data ? DATA : ZERO;
		p->round = o->data ? o->round : 0;
		if (!o->data)
			continue;
		fill(buf + i * PG, pids[o->slot], o->round, pg);
		m->written[o->round][o->slot][pg] = true;
		m->off[o->round][o->slot][pg] = m->next_off[o->slot];
		m->next_off[o->slot] += PG;
	}
	cr_assert_eq(stack_add_pages(sw, pids[o->slot], BASE + o->first * PG, o->n,
				     o->data ? buf : NULL), 0);
}

static void run_round(struct stack_writer *sw, struct model *m, uint32_t k,
		      struct round_stats *st)
{
	size_t i;

	cr_assert_eq(stack_writer_next_round(sw), k);
	memcpy(m->pg[k], m->pg[k - 1], sizeof(m->pg[k]));
	memset(m->next_off, 0, sizeof(m->next_off));
	cr_assert_eq(stack_round_begin(sw, k, k == ROUNDS), 0);
	for (i = 0; i < ARRAY_SIZE(script); i++)
		if (script[i].round == k)
			send_op(sw, m, &script[i]);
	cr_assert_eq(stack_add_file(sw, "core-100.img", "core", 4), 0);
	cr_assert_eq(stack_round_commit(sw, st), 0);
	cr_assert_eq(st->round, k);
}

static struct stack_writer *run_stack(const char *id, bool auto_dedup, struct model *m,
				      uint64_t *punched)
{
	struct stack_writer *sw;
	struct round_stats st;
	uint32_t k;

	memset(m, 0, sizeof(*m));
	*punched = 0;
	cr_assert_eq(stack_writer_open(tmp_root, id, auto_dedup, &sw), 0);
	for (k = 1; k <= ROUNDS; k++) {
		run_round(sw, m, k, &st);
		*punched += st.bytes_punched;
	}
	return sw;
}

/* Every page the model tracks after round @k reads back from the view of round @k. */
static void check_view(const char *top, const struct model *m, uint32_t k)
{
	static char want[PG], got[PG];
	struct stack_view v;
	int slot;
	uint32_t pg;

	cr_assert_eq(stack_view_open(top, &v), 0, "cannot open view of %s", top);
	cr_assert_eq(v.top_round, k);
	for (slot = 0; slot < 2; slot++) {
		const struct pg_index *idx = stack_view_index(&v, pids[slot]);

		for (pg = 0; pg < NPG; pg++) {
			const struct mpage *p = &m->pg[k][slot][pg];
			const struct pg_extent *e = idx ? pg_index_find(idx, BASE + pg * PG) : NULL;
			uint64_t off;
			int fd;

			if (p->state == UNTRACKED) {
				cr_expect_null(e, "pid %u page %u tracked", pids[slot], pg);
				continue;
			}
			cr_assert_not_null(e, "pid %u page %u missing", pids[slot], pg);
			cr_assert_eq(e->round, p->round, "pid %u page %u: round %u, want %u",
				     pids[slot], pg, e->round, p->round);
			if (p->state == ZERO)
				continue;
			fd = stack_view_pages_fd(&v, pids[slot], e->round);
			cr_assert_geq(fd, 0);
			off = e->file_off + (BASE + pg * PG - e->vaddr);
			cr_assert_eq(pread_full(fd, got, PG, off), 0);
			fill(want, pids[slot], p->round, pg);
			cr_assert_eq(memcmp(got, want, PG), 0, "pid %u page %u: wrong bytes",
				     pids[slot], pg);
		}
	}
	cr_expect_null(stack_view_index(&v, 12345));
	stack_view_close(&v);
}

static blkcnt_t blocks(const char *id, uint32_t round, uint32_t pid)
{
	char p[PATH_MAX];
	struct stat st;

	pathf(p, "%s/%s/%u/pages-%u.img", tmp_root, id, round, pid);
	cr_assert_eq(stat(p, &st), 0, "%s", p);
	return st.st_blocks;
}

/* Overridden copies read back as zeros, the others as written. */
static void check_punched(const char *id, const struct model *m, bool punched)
{
	static char want[PG], got[PG], zero[PG];
	char p[PATH_MAX];
	uint32_t k, pg;
	int slot, fd;

	for (k = 1; k <= ROUNDS; k++) {
		for (slot = 0; slot < 2; slot++) {
			pathf(p, "%s/%s/%u/pages-%u.img", tmp_root, id, k, pids[slot]);
			if (!pid_in_round(slot, k))
				continue;
			fd = open(p, O_RDONLY);
			cr_assert_geq(fd, 0, "%s", p);
			for (pg = 0; pg < NPG; pg++) {
				if (!m->written[k][slot][pg])
					continue;
				cr_assert_eq(pread_full(fd, got, PG, m->off[k][slot][pg]), 0);
				fill(want, pids[slot], k, pg);
				if (punched && m->replaced[k][slot][pg])
					cr_assert_eq(memcmp(got, zero, PG), 0,
						     "round %u pid %u page %u not punched", k,
						     pids[slot], pg);
				else
					cr_assert_eq(memcmp(got, want, PG), 0,
						     "round %u pid %u page %u damaged", k,
						     pids[slot], pg);
			}
			close(fd);
		}
	}
}

TestSuite(stack, .init = make_tmp, .fini = remove_tmp);

Test(stack, round_trip)
{
	struct stack_writer *sw;
	struct model m;
	uint64_t punched;
	char p[PATH_MAX], link[64];
	uint32_t k;
	ssize_t n;

	sw = run_stack("mig-1", false, &m, &punched);
	cr_expect_eq(punched, 0);
	pathf(p, "%s/mig-1", tmp_root);
	cr_expect_str_eq(stack_writer_dir(sw), p);
	cr_expect_str_eq(stack_writer_id(sw), "mig-1");
	cr_expect_eq(stack_writer_next_round(sw), ROUNDS + 1);
	stack_writer_close(sw);

	for (k = 1; k <= ROUNDS; k++) {
		pathf(p, "%s/mig-1/%u/parent", tmp_root, k);
		if (k == 1) {
			cr_expect(!exists(p));
		} else {
			n = readlink(p, link, sizeof(link) - 1);
			cr_assert_gt(n, 0);
			link[n] = '\0';
			cr_expect_eq(atoi(link + 3), (int)k - 1);
			cr_expect_eq(strncmp(link, "../", 3), 0);
		}
		pathf(p, "%s/mig-1/%u/core-100.img", tmp_root, k);
		cr_expect(exists(p));
		/* a pid without pages this round still has its pagemap and pages file */
		pathf(p, "%s/mig-1/%u/pages-100.img", tmp_root, k);
		cr_expect(exists(p));
		/* every earlier state is still a valid stack top */
		pathf(p, "%s/mig-1/%u", tmp_root, k);
		check_view(p, &m, k);
	}
	pathf(p, "%s/mig-1/3/pagemap-200.img", tmp_root);
	cr_expect(exists(p));
	pathf(p, "%s/mig-1/.tmp-3", tmp_root);
	cr_expect(!exists(p));
}

Test(stack, top_pagemap_flags)
{
	struct stack_writer *sw;
	struct pagemap pm;
	struct model m;
	uint64_t punched;
	char p[PATH_MAX];
	int dfd;

	sw = run_stack("flags", false, &m, &punched);
	stack_writer_close(sw);
	pathf(p, "%s/flags/3", tmp_root);
	dfd = open(p, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(dfd, 0);
	cr_assert_eq(pagemap_load(dfd, 100, &pm), 0);
	/*
	 * The stack: 0-7 r1, 8-19 r2, 20-27 r3, 28-29 r1, 30-33 zero (r2),
	 * 34-43 r1, 44-51 r3, 52-55 zero (r1), 56-59 r2. Round 3's pagemap
	 * holds its own runs; the rest, older zero runs too, is PARENT.
	 */
	cr_assert_eq(pm.nr, 5);
	cr_expect_eq(pm.ext[0].vaddr, BASE);
	cr_expect_eq(pm.ext[0].nr_pages, 20);
	cr_expect_eq(pm.ext[0].flags, PE_FLAGS__PE_PARENT);
	cr_expect_eq(pm.ext[1].vaddr, BASE + 20 * PG);
	cr_expect_eq(pm.ext[1].nr_pages, 8);
	cr_expect_eq(pm.ext[1].flags, PE_FLAGS__PE_PRESENT);
	cr_expect_eq(pm.ext[1].off, 0);
	cr_expect_eq(pm.ext[2].nr_pages, 16);
	cr_expect_eq(pm.ext[2].flags, PE_FLAGS__PE_PARENT);
	cr_expect_eq(pm.ext[3].vaddr, BASE + 44 * PG);
	cr_expect_eq(pm.ext[3].nr_pages, 8);
	cr_expect_eq(pm.ext[3].flags, PE_FLAGS__PE_PRESENT);
	cr_expect_eq(pm.ext[3].off, 8 * PG);
	cr_expect_eq(pm.ext[4].vaddr, BASE + 52 * PG);
	cr_expect_eq(pm.ext[4].nr_pages, 8);
	cr_expect_eq(pm.ext[4].flags, PE_FLAGS__PE_PARENT);
	pagemap_free(&pm);
	/* pid 200 had no pages in round 3: all PARENT */
	cr_assert_eq(pagemap_load(dfd, 200, &pm), 0);
	cr_assert_eq(pm.nr, 1);
	cr_expect_eq(pm.ext[0].flags, PE_FLAGS__PE_PARENT);
	pagemap_free(&pm);
	close(dfd);
	(void)m;
}

Test(stack, auto_dedup_punches_older_rounds)
{
	struct stack_writer *sw;
	struct model m, m2;
	uint64_t punched, punched2;
	char p[PATH_MAX];

	sw = run_stack("plain", false, &m2, &punched2);
	stack_writer_close(sw);
	sw = run_stack("auto", true, &m, &punched);
	stack_writer_close(sw);

	cr_expect_eq(punched, m.replaced_bytes, "punched %llu, want %llu",
		     (unsigned long long)punched, (unsigned long long)m.replaced_bytes);
	cr_expect_gt(m.replaced_bytes, 0);
	cr_expect_lt(blocks("auto", 1, 100), blocks("plain", 1, 100));
	cr_expect_lt(blocks("auto", 2, 100), blocks("plain", 2, 100));
	cr_expect_eq(blocks("auto", 3, 100), blocks("plain", 3, 100));
	check_punched("auto", &m, true);
	check_punched("plain", &m2, false);
	pathf(p, "%s/auto/%u", tmp_root, ROUNDS);
	check_view(p, &m, ROUNDS);
}

Test(stack, offline_dedup_equals_auto)
{
	struct stack_writer *sw;
	struct model m, m2;
	uint64_t punched, auto_punched, again;
	char p[PATH_MAX];
	uint32_t k;
	int slot;

	sw = run_stack("auto", true, &m2, &auto_punched);
	stack_writer_close(sw);
	sw = run_stack("off", false, &m, &punched);
	/* the writer's lock keeps dedup off a live stack */
	pathf(p, "%s/off", tmp_root);
	cr_expect_eq(stack_dedup(p, &punched), -EBUSY);
	stack_writer_close(sw);

	cr_assert_eq(stack_dedup(p, &punched), 0);
	cr_expect_eq(punched, auto_punched);
	for (k = 1; k <= ROUNDS; k++)
		for (slot = 0; slot < 2; slot++)
			if (pid_in_round(slot, k))
				cr_expect_eq(blocks("off", k, pids[slot]),
					     blocks("auto", k, pids[slot]), "round %u pid %u", k,
					     pids[slot]);
	check_punched("off", &m, true);
	pathf(p, "%s/off/%u", tmp_root, ROUNDS);
	check_view(p, &m, ROUNDS);
	/* idempotent: nothing left to free */
	pathf(p, "%s/off", tmp_root);
	cr_assert_eq(stack_dedup(p, &again), 0);
	cr_expect_eq(again, 0);
	/* and nothing to do on a stack auto-dedup already handled */
	pathf(p, "%s/auto", tmp_root);
	cr_assert_eq(stack_dedup(p, &again), 0);
	cr_expect_eq(again, 0);
}

Test(stack, resume_after_reopen)
{
	struct stack_writer *sw;
	struct round_stats st;
	struct model m;
	uint64_t punched;
	char p[PATH_MAX];

	sw = run_stack("res", true, &m, &punched);
	cr_expect_eq(stack_writer_open(tmp_root, "res", false, &(struct stack_writer *){ 0 }),
		     -EBUSY);
	stack_writer_close(sw);
	/* a crash mid-round leaves a tmp dir behind */
	pathf(p, "%s/res/.tmp-4", tmp_root);
	cr_assert_eq(mkdir(p, 0700), 0);
	pathf(p, "%s/res/.tmp-4/pages-100.img", tmp_root);
	cr_assert_eq(close(open(p, O_CREAT | O_WRONLY, 0600)), 0);

	cr_assert_eq(stack_writer_open(tmp_root, "res", true, &sw), 0);
	pathf(p, "%s/res/.tmp-4", tmp_root);
	cr_expect(!exists(p));
	cr_assert_eq(stack_writer_next_round(sw), ROUNDS + 1);
	run_round(sw, &m, ROUNDS + 1, &st);
	cr_expect_eq(st.bytes_punched, 3 * PG);
	stack_writer_close(sw);
	pathf(p, "%s/res/%u", tmp_root, ROUNDS + 1);
	check_view(p, &m, ROUNDS + 1);
}

Test(stack, abort_and_bad_rounds)
{
	struct stack_writer *sw;
	struct round_stats st;
	struct model m;
	uint64_t punched;
	char p[PATH_MAX], page[PG] = { 1 };

	sw = run_stack("ab", false, &m, &punched);
	cr_expect_eq(stack_round_begin(sw, 7, false), -EINVAL);
	cr_expect_eq(stack_add_pages(sw, 100, BASE, 1, page), -EINVAL);	/* no round */
	cr_expect_eq(stack_round_commit(sw, &st), -EINVAL);

	cr_assert_eq(stack_round_begin(sw, 4, false), 0);
	cr_expect_eq(stack_round_begin(sw, 4, false), -EBUSY);
	cr_assert_eq(stack_add_pages(sw, 100, BASE, 1, page), 0);
	pathf(p, "%s/ab/.tmp-4", tmp_root);
	cr_expect(exists(p));
	stack_round_abort(sw);
	cr_expect(!exists(p));
	pathf(p, "%s/ab/4", tmp_root);
	cr_expect(!exists(p));
	cr_expect_eq(stack_writer_next_round(sw), 4);

	/* bad runs and names are refused without spoiling the round */
	cr_assert_eq(stack_round_begin(sw, 4, false), 0);
	cr_expect_eq(stack_add_pages(sw, 100, BASE + 1, 1, page), -EINVAL);
	cr_expect_eq(stack_add_pages(sw, 100, BASE, 0, page), -EINVAL);
	cr_expect_eq(stack_add_pages(sw, 100, TASK_SIZE_MAX, 1, page), -EINVAL);
	cr_expect_eq(stack_add_file(sw, "parent", "x", 1), -EINVAL);
	cr_expect_eq(stack_add_file(sw, "pagemap-100.img", "x", 1), -EINVAL);
	cr_expect_eq(stack_add_file(sw, "pages-1.img", "x", 1), -EINVAL);
	cr_expect_eq(stack_add_file(sw, "../x", "x", 1), -EINVAL);
	cr_expect_eq(stack_add_file(sw, "", "x", 1), -EINVAL);
	cr_expect_eq(stack_add_file(sw, "..", "x", 1), -EINVAL);
	cr_expect_eq(stack_add_file(sw, "mm-100.img", "x", 1), 0);
	cr_expect_eq(stack_add_file(sw, "mm-100.img", "x", 1), -EEXIST);

	/* a page sent twice fails the round, which leaves nothing behind */
	cr_assert_eq(stack_add_pages(sw, 100, BASE + PG, 2, NULL), 0);
	cr_assert_eq(stack_add_pages(sw, 100, BASE + 2 * PG, 1, page), 0);
	cr_expect_eq(stack_round_commit(sw, &st), -EINVAL);
	pathf(p, "%s/ab/.tmp-4", tmp_root);
	cr_expect(!exists(p));
	cr_expect_eq(stack_writer_next_round(sw), 4);
	stack_writer_close(sw);
	pathf(p, "%s/ab/%u", tmp_root, ROUNDS);
	check_view(p, &m, ROUNDS);
}

Test(stack, ids)
{
	struct stack_writer *sw;
	char long_id[70];

	memset(long_id, 'a', 65);
	long_id[65] = '\0';
	cr_expect_eq(stack_writer_open(tmp_root, "../x", false, &sw), -EINVAL);
	cr_expect_eq(stack_writer_open(tmp_root, "a/b", false, &sw), -EINVAL);
	cr_expect_eq(stack_writer_open(tmp_root, "", false, &sw), -EINVAL);
	cr_expect_eq(stack_writer_open(tmp_root, "..", false, &sw), -EINVAL);
	cr_expect_eq(stack_writer_open(tmp_root, long_id, false, &sw), -EINVAL);
	long_id[64] = '\0';
	cr_assert_eq(stack_writer_open(tmp_root, long_id, false, &sw), 0);
	stack_writer_close(sw);

	cr_assert_eq(stack_writer_open(tmp_root, NULL, false, &sw), 0);
	cr_expect_gt(strlen(stack_writer_id(sw)), 0);
	cr_expect_eq(strspn(stack_writer_id(sw), "0123456789abcdef-"), strlen(stack_writer_id(sw)));
	cr_expect_eq(stack_writer_next_round(sw), 1);
	cr_expect(exists(stack_writer_dir(sw)));
	stack_writer_close(sw);
}

Test(stack, huge_zero_run_splits_pagemap)
{
	const uint64_t n = (1ULL << 31) + 5;	/* over pagemap_entry's 32 bits */
	struct stack_writer *sw;
	struct round_stats st;
	struct stack_view v;
	struct pagemap pm;
	char p[PATH_MAX];
	int dfd;

	cr_assert_eq(stack_writer_open(tmp_root, "huge", false, &sw), 0);
	cr_assert_eq(stack_round_begin(sw, 1, true), 0);
	cr_assert_eq(stack_add_pages(sw, 9, BASE, n, NULL), 0);
	cr_assert_eq(stack_round_commit(sw, &st), 0);
	cr_expect_eq(st.pages_zero, n);
	stack_writer_close(sw);

	pathf(p, "%s/huge/1", tmp_root);
	dfd = open(p, O_RDONLY | O_DIRECTORY);
	cr_assert_eq(pagemap_load(dfd, 9, &pm), 0);
	cr_assert_eq(pm.nr, 2);
	cr_expect_eq(pm.ext[0].nr_pages + pm.ext[1].nr_pages, n);
	pagemap_free(&pm);
	close(dfd);
	cr_assert_eq(stack_view_open(p, &v), 0);
	cr_assert_eq(v.idx[0].nr, 1);
	cr_expect_eq(v.idx[0].ext[0].nr_pages, n);
	cr_expect_eq(v.idx[0].ext[0].round, 0);
	stack_view_close(&v);
}

/* --- hostile stacks --- */

static void make_plain(const char *id)
{
	struct model m;
	uint64_t punched;

	stack_writer_close(run_stack(id, false, &m, &punched));
}

static int view_rc(const char *id, uint32_t k)
{
	struct stack_view v;
	char p[PATH_MAX];
	int ret;

	pathf(p, "%s/%s/%u", tmp_root, id, k);
	ret = stack_view_open(p, &v);
	if (!ret)
		stack_view_close(&v);
	return ret;
}

static void truncate_by(const char *id, uint32_t k, const char *name, off_t cut)
{
	char p[PATH_MAX];
	struct stat st;

	pathf(p, "%s/%s/%u/%s", tmp_root, id, k, name);
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(truncate(p, st.st_size - cut), 0);
}

Test(stack, truncated_pagemap_rejected)
{
	make_plain("t1");
	truncate_by("t1", 3, "pagemap-100.img", 3);
	cr_expect_eq(view_rc("t1", 3), -EINVAL);

	/* an older round's pagemap the top needs */
	make_plain("t2");
	truncate_by("t2", 1, "pagemap-100.img", 1);
	cr_expect_eq(view_rc("t2", 3), -EINVAL);
	cr_expect_eq(view_rc("t2", 2), -EINVAL);

	/* PRESENT data cut off the pages file */
	make_plain("t3");
	truncate_by("t3", 2, "pages-100.img", PG);
	cr_expect_eq(view_rc("t3", 3), -EINVAL);
}

Test(stack, missing_parent_rejected)
{
	char p[PATH_MAX], q[PATH_MAX];

	make_plain("p1");
	pathf(p, "%s/p1/3/parent", tmp_root);
	cr_assert_eq(unlink(p), 0);
	cr_expect_eq(view_rc("p1", 3), -EINVAL);

	make_plain("p2");
	pathf(p, "%s/p2/2", tmp_root);
	pathf(q, "%s/p2/gone", tmp_root);
	cr_assert_eq(rename(p, q), 0);
	cr_expect_eq(view_rc("p2", 3), -EINVAL);

	/* a parent link that loops */
	make_plain("p3");
	pathf(p, "%s/p3/2/parent", tmp_root);
	cr_assert_eq(unlink(p), 0);
	cr_assert_eq(symlink("../2", p), 0);
	cr_expect_eq(view_rc("p3", 2), -EINVAL);

	/* a pid whose PARENT pages have no pagemap below */
	make_plain("p4");
	pathf(p, "%s/p4/2/pagemap-200.img", tmp_root);
	cr_assert_eq(unlink(p), 0);
	cr_expect_eq(view_rc("p4", 3), -EINVAL);
}

/* Write a hand-made pagemap for pid 5 into DIR/h/<k>/. */
static void put_pagemap(uint32_t k, const struct pm_ext *e, size_t nr, size_t pages)
{
	struct pagemap pm = { .pid = 5, .nr = nr, .ext = (struct pm_ext *)e };
	struct img_buf b;
	char p[PATH_MAX], page[PG] = { 9 };
	int dfd, fd;
	size_t i;

	pathf(p, "%s/h/%u", tmp_root, k);
	mkdir(p, 0700);
	if (k > 1) {
		pathf(p, "%s/h/%u/parent", tmp_root, k);
		cr_assert_eq(symlink(k == 2 ? "../1" : "../2", p), 0);
	}
	pathf(p, "%s/h/%u", tmp_root, k);
	dfd = open(p, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(dfd, 0);
	cr_assert_eq(pagemap_build(&pm, pages * PG, &b), 0);
	cr_assert_eq(img_write_file(dfd, "pagemap-5.img", b.data, b.len), 0);
	img_buf_free(&b);
	fd = openat(dfd, "pages-5.img", O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	for (i = 0; i < pages; i++)
		cr_assert_eq(write_full(fd, page, PG), 0);
	close(fd);
	close(dfd);
}

Test(stack, parent_hole_rejected)
{
	const struct pm_ext r1[] = { { BASE, 2, PE_FLAGS__PE_PRESENT, 0 },
				     { BASE + 3 * PG, 1, PE_FLAGS__PE_ZERO, 0 } };
	const struct pm_ext r2_ok[] = { { BASE, 2, PE_FLAGS__PE_PARENT, 0 },
					{ BASE + 3 * PG, 1, PE_FLAGS__PE_PARENT, 0 } };
	const struct pm_ext r2_hole[] = { { BASE, 4, PE_FLAGS__PE_PARENT, 0 } };
	const struct pm_ext r1_parent[] = { { BASE, 1, PE_FLAGS__PE_PARENT, 0 } };
	struct stack_view v;
	char p[PATH_MAX];

	pathf(p, "%s/h", tmp_root);
	cr_assert_eq(mkdir(p, 0700), 0);
	put_pagemap(1, r1, 2, 2);
	put_pagemap(2, r2_ok, 2, 0);
	pathf(p, "%s/h/2", tmp_root);
	cr_assert_eq(stack_view_open(p, &v), 0);
	cr_expect_eq(v.idx[0].nr, 2);
	stack_view_close(&v);

	/* page 2 is PARENT in round 2, nowhere in round 1 */
	remove_tmp();
	make_tmp();
	pathf(p, "%s/h", tmp_root);
	cr_assert_eq(mkdir(p, 0700), 0);
	put_pagemap(1, r1, 2, 2);
	put_pagemap(2, r2_hole, 1, 0);
	cr_expect_eq(view_rc("h", 2), -EINVAL);

	/* PARENT in the bottom round */
	remove_tmp();
	make_tmp();
	pathf(p, "%s/h", tmp_root);
	cr_assert_eq(mkdir(p, 0700), 0);
	put_pagemap(1, r1_parent, 1, 0);
	cr_expect_eq(view_rc("h", 1), -EINVAL);
}

/* --- a full disk --- */

static bool mount_small_tmpfs(const char *dir)
{
	if (geteuid() != 0 || unshare(CLONE_NEWNS))
		return false;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return false;
	return !mount("ferry-test", dir, "tmpfs", 0, "size=256k");
}

Test(stack, enospc_fails_round_cleanly)
{
	static char data[16 * PG];
	struct stack_writer *sw;
	struct round_stats st;
	char p[PATH_MAX];
	int i, fd, ret = 0;

	pathf(p, "%s/small", tmp_root);
	cr_assert_eq(mkdir(p, 0700), 0);
	if (!mount_small_tmpfs(p))
		cr_skip_test("needs root and a private mount namespace for a small tmpfs");
	memset(data, 0x5a, sizeof(data));

	/* no auto-dedup: its background punches would free space behind the filler's back */
	cr_assert_eq(stack_writer_open(p, "full", false, &sw), 0);
	cr_assert_eq(stack_round_begin(sw, 1, false), 0);
	cr_assert_eq(stack_add_pages(sw, 1, BASE, 16, data), 0);
	cr_assert_eq(stack_round_commit(sw, &st), 0);

	cr_assert_eq(stack_round_begin(sw, 2, false), 0);
	for (i = 0; i < 64 && !ret; i++)
		ret = stack_add_pages(sw, 1, BASE + i * 16 * PG, 16, data);
	cr_assert_eq(ret, -ENOSPC);
	/* the round is spoiled: later calls say so, commit cleans up */
	cr_expect_eq(stack_add_pages(sw, 1, BASE + 4096 * PG, 1, data), -ENOSPC);
	cr_expect_eq(stack_round_commit(sw, &st), -ENOSPC);
	pathf(p, "%s/small/full/.tmp-2", tmp_root);
	cr_expect(!exists(p));
	pathf(p, "%s/small/full/2", tmp_root);
	cr_expect(!exists(p));
	cr_expect_eq(stack_writer_next_round(sw), 2);

	/* the stack is as after round 1 and takes the next round */
	cr_assert_eq(stack_round_begin(sw, 2, false), 0);
	cr_assert_eq(stack_add_pages(sw, 1, BASE, 2, data), 0);
	cr_assert_eq(stack_round_commit(sw, &st), 0);

	/* the disk fills up between the pages and the commit's pagemap */
	cr_assert_eq(stack_round_begin(sw, 3, false), 0);
	cr_assert_eq(stack_add_pages(sw, 1, BASE + 2 * PG, 1, data), 0);
	pathf(p, "%s/small/filler", tmp_root);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(fd, 0);
	while (write(fd, data, sizeof(data)) > 0)
		;
	cr_assert_eq(errno, ENOSPC);
	close(fd);
	cr_expect_eq(stack_round_commit(sw, &st), -ENOSPC);
	pathf(p, "%s/small/full/.tmp-3", tmp_root);
	cr_expect(!exists(p));
	cr_expect_eq(stack_writer_next_round(sw), 3);
	pathf(p, "%s/small/filler", tmp_root);
	cr_assert_eq(unlink(p), 0);
	cr_assert_eq(stack_round_begin(sw, 3, false), 0);
	cr_assert_eq(stack_add_pages(sw, 1, BASE + 2 * PG, 1, data), 0);
	cr_assert_eq(stack_round_commit(sw, &st), 0);
	stack_writer_close(sw);
	cr_expect_eq(view_rc("small/full", 3), 0);
}

/* --- following a stack round by round (restore --stream) --- */

#define ADV_PIDS	3
#define ADV_NPG		1024
#define ADV_ROUNDS	12
static const uint32_t adv_pids[ADV_PIDS] = { 300, 400, 500 };

struct adv_page {
	uint32_t round;		/* 0: zero (if tracked) */
	uint64_t off;
	bool tracked;
};

/* pid 400 comes in round 4, pid 500 in round 7. */
static uint32_t adv_first_round(int slot)
{
	return slot == 0 ? 1 : slot == 1 ? 4 : 7;
}

/* Scattered runs of 1-3 pages over the space, a few zero, sent in a shuffled order. */
static void adv_round(struct stack_writer *sw, struct adv_page m[ADV_PIDS][ADV_NPG], uint32_t k,
		      uint64_t *rng)
{
	static char buf[3 * PG];
	uint64_t off[ADV_PIDS] = { 0 };
	uint32_t first[ADV_NPG], n[ADV_NPG], order[ADV_NPG];
	struct round_stats st;
	int slot;

	cr_assert_eq(stack_round_begin(sw, k, false), 0);
	for (slot = 0; slot < ADV_PIDS; slot++) {
		uint32_t pg = 0, nr = 0, i, j;

		if (k < adv_first_round(slot))
			continue;
		/* the first round of a pid: everything; later: ~5% scattered */
		while (pg < ADV_NPG) {
			uint32_t len = k == adv_first_round(slot) ? 3 : 1 + xorshift64(rng) % 3;

			if (pg + len > ADV_NPG)
				len = ADV_NPG - pg;
			first[nr] = pg;
			n[nr++] = len;
			pg += len + (k == adv_first_round(slot) ? 0 : xorshift64(rng) % 40);
		}
		for (i = 0; i < nr; i++)
			order[i] = i;
		for (i = nr; i > 1; i--) {
			uint32_t t;

			j = xorshift64(rng) % i;
			t = order[i - 1];
			order[i - 1] = order[j];
			order[j] = t;
		}
		for (i = 0; i < nr; i++) {
			uint32_t f = first[order[i]], c = n[order[i]], p;
			bool zero = xorshift64(rng) % 8 == 0;

			for (p = 0; p < c; p++) {
				struct adv_page *mp = &m[slot][f + p];

				mp->tracked = true;
				mp->round = zero ? 0 : k;
				mp->off = zero ? 0 : off[slot] + p * PG;
				fill(buf + p * PG, adv_pids[slot], k, f + p);
			}
			if (!zero)
				off[slot] += c * PG;
			cr_assert_eq(stack_add_pages(sw, adv_pids[slot], BASE + f * PG, c,
						     zero ? NULL : buf), 0);
		}
	}
	cr_assert_eq(stack_round_commit(sw, &st), 0);
}

struct adv_collect {
	struct adv_page *pg;	/* ADV_NPG */
	uint32_t runs;
};

static int adv_collect_ext(void *arg, const struct pg_extent *e)
{
	struct adv_collect *c = arg;
	uint64_t i;

	c->runs++;
	cr_assert_geq(e->vaddr, BASE);
	cr_assert_leq(pg_ext_end(e), BASE + ADV_NPG * PG);
	for (i = 0; i < e->nr_pages; i++) {
		struct adv_page *p = &c->pg[(e->vaddr - BASE) / PG + i];

		cr_assert(!p->tracked, "page reported twice");
		*p = (struct adv_page){ e->round, e->round ? e->file_off + i * PG : 0, true };
	}
	return 0;
}

/* The view as a walk sees it, page by page, between @s and @e pages. */
static void adv_walk(const struct stack_view *v, uint32_t pid, uint32_t s, uint32_t e,
		     bool top_only, struct adv_page *out)
{
	struct adv_collect c = { out, 0 };

	memset(out, 0, ADV_NPG * sizeof(*out));
	cr_assert_eq(stack_view_walk(v, pid, BASE + s * PG, BASE + e * PG, top_only,
				     adv_collect_ext, &c), 0);
}

static void adv_check(struct stack_view *adv, struct adv_page m[ADV_PIDS][ADV_NPG],
		      struct adv_page before[ADV_PIDS][ADV_NPG], uint32_t k)
{
	static struct adv_page got[ADV_NPG], full[ADV_NPG];
	static char want[PG], data[PG];
	struct stack_view v;
	char p[PATH_MAX];
	int slot;
	uint32_t pg;

	pathf(p, "%s/adv/%u", tmp_root, k);
	cr_assert_eq(stack_view_open(p, &v), 0);
	cr_assert_eq(adv->top_round, k);
	cr_assert_eq(adv->nr_pids, v.nr_pids);
	for (slot = 0; slot < ADV_PIDS; slot++) {
		uint32_t pid = adv_pids[slot];

		adv_walk(&v, pid, 0, ADV_NPG, false, full);
		adv_walk(adv, pid, 0, ADV_NPG, false, got);
		for (pg = 0; pg < ADV_NPG; pg++) {
			cr_assert_eq(got[pg].tracked, m[slot][pg].tracked, "round %u pid %u page %u",
				     k, pid, pg);
			cr_assert_eq(full[pg].tracked, m[slot][pg].tracked);
			if (!m[slot][pg].tracked)
				continue;
			cr_assert_eq(got[pg].round, m[slot][pg].round, "round %u pid %u page %u",
				     k, pid, pg);
			cr_assert_eq(full[pg].round, m[slot][pg].round);
			cr_assert_eq(got[pg].off, m[slot][pg].off);
			cr_assert_eq(full[pg].off, m[slot][pg].off);
			if (!got[pg].round)
				continue;
			cr_assert_eq(pread_full(stack_view_pages_fd(adv, pid, got[pg].round), data,
						PG, got[pg].off), 0);
			fill(want, pid, got[pg].round, pg);
			cr_assert_eq(memcmp(data, want, PG), 0, "pid %u page %u: wrong bytes",
				     pid, pg);
		}
		/* a window: clipped runs */
		adv_walk(adv, pid, 100, 333, false, got);
		for (pg = 0; pg < ADV_NPG; pg++)
			cr_assert_eq(got[pg].tracked, pg >= 100 && pg < 333 && m[slot][pg].tracked);
		/* what the round changed: its data, and zero over what was not zero */
		if (adv->settled_round + 1 != k)
			continue;
		adv_walk(adv, pid, 0, ADV_NPG, true, got);
		for (pg = 0; pg < ADV_NPG; pg++) {
			const struct adv_page *now = &m[slot][pg], *was = &before[slot][pg];
			bool changed = now->tracked &&
				       (now->round == k || (!now->round && (!was->tracked ||
									    was->round)));

			cr_assert_eq(got[pg].tracked, changed, "round %u pid %u page %u: change",
				     k, pid, pg);
		}
	}
	stack_view_close(&v);
}

Test(stack, advance_equals_open)
{
	static struct adv_page m[ADV_PIDS][ADV_NPG], before[ADV_PIDS][ADV_NPG];
	struct stack_writer *sw;
	struct stack_view adv = { 0 };
	uint64_t rng = 0x5eed;
	char p[PATH_MAX];
	uint32_t k;

	cr_assert_eq(stack_writer_open(tmp_root, "adv", false, &sw), 0);
	for (k = 1; k <= ADV_ROUNDS; k++) {
		memcpy(before, m, sizeof(m));
		adv_round(sw, m, k, &rng);
		pathf(p, "%s/adv/%u", tmp_root, k);
		if (k == 1)
			cr_assert_eq(stack_view_open(p, &adv), 0);
		else
			cr_assert_eq(stack_view_advance(&adv, p), 0, "advance to round %u", k);
		cr_assert_eq(adv.settled_round, k == 1 ? 1 : k - 1);
		/* pending changes: the whole index is only for settled views */
		if (k > 1)
			cr_expect_null(stack_view_index(&adv, adv_pids[0]));
		adv_check(&adv, m, before, k);
		/* every third round left pending: advance settles it itself */
		if (k % 3) {
			cr_assert_eq(stack_view_settle(&adv), 0);
			cr_assert_not_null(stack_view_index(&adv, adv_pids[0]));
			adv_check(&adv, m, before, k);
		}
	}
	stack_writer_close(sw);
	/* not the round above the top: refused */
	pathf(p, "%s/adv/%u", tmp_root, ADV_ROUNDS - 1);
	cr_expect_eq(stack_view_advance(&adv, p), -EINVAL);
	stack_view_close(&adv);
}

/*
 * REMOTE pages (post-copy) have no data in the stack: a view refuses them
 * by name, in the top round, behind a PARENT, and when advancing onto
 * them; never read as zero.
 */
/* An empty DIR/h for put_pagemap. */
static void fresh_h(void)
{
	char p[PATH_MAX];

	remove_tmp();
	make_tmp();
	pathf(p, "%s/h", tmp_root);
	cr_assert_eq(mkdir(p, 0700), 0);
}

Test(stack, remote_pages_refused)
{
	const struct pm_ext r1[] = { { BASE, 2, PE_FLAGS__PE_PRESENT, 0 },
				     { BASE + 3 * PG, 1, PE_FLAGS__PE_ZERO, 0 } };
	const struct pm_ext r1_remote[] = { { BASE, 2, PE_FLAGS__PE_PRESENT, 0 },
					    { BASE + 3 * PG, 1, PE_FLAGS__PE_REMOTE, 0 } };
	const struct pm_ext r2_remote[] = { { BASE, 2, PE_FLAGS__PE_PARENT, 0 },
					    { BASE + 3 * PG, 1, PE_FLAGS__PE_REMOTE, 0 } };
	const struct pm_ext r2_parent[] = { { BASE, 2, PE_FLAGS__PE_PARENT, 0 },
					    { BASE + 3 * PG, 1, PE_FLAGS__PE_PARENT, 0 } };
	struct stack_view v;
	char p[PATH_MAX];

	fresh_h();
	put_pagemap(1, r1_remote, 2, 2);
	cr_expect_eq(view_rc("h", 1), -EINVAL, "REMOTE in the top round");
	put_pagemap(2, r2_parent, 2, 0);
	cr_expect_eq(view_rc("h", 2), -EINVAL, "PARENT resolved to REMOTE");

	fresh_h();
	put_pagemap(1, r1, 2, 2);
	put_pagemap(2, r2_remote, 2, 0);
	cr_expect_eq(view_rc("h", 2), -EINVAL, "REMOTE above a good round");
	pathf(p, "%s/h/1", tmp_root);
	cr_assert_eq(stack_view_open(p, &v), 0);
	pathf(p, "%s/h/2", tmp_root);
	cr_expect_eq(stack_view_advance(&v, p), -EINVAL, "advance onto REMOTE");
	stack_view_close(&v);
}

/* Post-copy: the writer records REMOTE runs of a final round; a view asked to takes them. */
static int remote_collect(void *arg, const struct pg_extent *e)
{
	struct pg_index *out = arg;

	return pg_index_push(out, e);
}

Test(stack, remote_runs_written_and_viewed)
{
	static uint8_t data[4 * PG];
	struct pg_index got = { 0 };
	struct stack_writer *sw;
	struct round_stats st;
	struct stack_view v;
	struct pagemap pm;
	char p[PATH_MAX];
	int dfd;

	memset(data, 7, sizeof(data));
	cr_assert_eq(stack_writer_open(tmp_root, "pc", false, &sw), 0);
	cr_assert_eq(stack_round_begin(sw, 1, false), 0);
	cr_assert_eq(stack_add_pages(sw, 5, BASE, 4, data), 0);
	/* not in a pre-copy round */
	cr_assert_eq(stack_add_remote(sw, 5, BASE + 8 * PG, 1), -EINVAL);
	cr_assert_eq(stack_round_commit(sw, &st), 0);
	cr_assert_eq(stack_round_begin(sw, 2, true), 0);
	cr_assert_eq(stack_add_pages(sw, 5, BASE, 1, data), 0);
	cr_assert_eq(stack_add_remote(sw, 5, BASE + PG, 2), 0);
	cr_assert_eq(stack_add_remote(sw, 5, BASE + 3 * PG, 1), 0);	/* merges */
	cr_assert_eq(stack_add_remote(sw, 5, BASE + 8 * PG, 0), -EINVAL);
	cr_assert_eq(stack_add_remote(sw, 5, BASE + 1, 1), -EINVAL);
	cr_assert_eq(stack_round_commit(sw, &st), 0);
	stack_writer_close(sw);

	pathf(p, "%s/pc/2", tmp_root);
	dfd = open(p, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(dfd, 0);
	cr_assert_eq(pagemap_load(dfd, 5, &pm), 0);
	close(dfd);
	cr_assert_eq(pm.nr, 2);
	cr_expect_eq(pm.ext[0].flags, PE_FLAGS__PE_PRESENT);
	cr_expect_eq(pm.ext[1].vaddr, BASE + PG);
	cr_expect_eq(pm.ext[1].nr_pages, 3);
	cr_expect_eq(pm.ext[1].flags, PE_FLAGS__PE_REMOTE);
	pagemap_free(&pm);

	/* refused by a plain view; taken (the top round only) by a post-copy one */
	cr_expect_eq(view_rc("pc", 2), -EINVAL);
	cr_assert_eq(stack_view_open_remote(p, true, &v), 0);
	cr_assert_eq(stack_view_walk(&v, 5, BASE, BASE + 4 * PG, false, remote_collect, &got), 0);
	cr_assert_eq(got.nr, 2);
	cr_expect_eq(got.ext[0].round, 2);
	cr_expect_eq(got.ext[1].vaddr, BASE + PG);
	cr_expect_eq(got.ext[1].nr_pages, 3);
	cr_expect_eq(got.ext[1].round, PG_ROUND_REMOTE);
	/* no pages file to read them from */
	cr_expect_lt(stack_view_pages_fd(&v, 5, PG_ROUND_REMOTE), 0);
	stack_view_close(&v);
	pg_index_free(&got);

	/* the same through an advance from round 1 */
	pathf(p, "%s/pc/1", tmp_root);
	cr_assert_eq(stack_view_open_remote(p, true, &v), 0);
	pathf(p, "%s/pc/2", tmp_root);
	cr_assert_eq(stack_view_advance(&v, p), 0);
	cr_assert_eq(stack_view_walk(&v, 5, BASE, BASE + 4 * PG, false, remote_collect, &got), 0);
	cr_assert_eq(got.nr, 2);
	cr_expect_eq(got.ext[1].round, PG_ROUND_REMOTE);
	cr_expect_eq(got.ext[1].nr_pages, 3);
	stack_view_close(&v);
	pg_index_free(&got);
}

/* What a full open refuses, an advance refuses too. */
Test(stack, advance_refuses_what_open_refuses)
{
	const struct pm_ext r1[] = { { BASE, 2, PE_FLAGS__PE_PRESENT, 0 },
				     { BASE + 3 * PG, 1, PE_FLAGS__PE_ZERO, 0 } };
	const struct pm_ext r2_hole[] = { { BASE, 4, PE_FLAGS__PE_PARENT, 0 } };
	const struct pm_ext r2_drops[] = { { BASE, 2, PE_FLAGS__PE_PARENT, 0 } };
	const struct pm_ext r2_ok[] = { { BASE, 1, PE_FLAGS__PE_PARENT, 0 },
					{ BASE + PG, 1, PE_FLAGS__PE_ZERO, 0 },
					{ BASE + 3 * PG, 2, PE_FLAGS__PE_PRESENT, 0 } };
	const struct pm_ext *cases[] = { r2_hole, r2_drops, r2_ok };
	const size_t nr[] = { 1, 1, 3 }, pages[] = { 0, 0, 2 };
	size_t c;

	for (c = 0; c < ARRAY_SIZE(cases); c++) {
		struct stack_view v;
		char p[PATH_MAX];

		remove_tmp();
		make_tmp();
		pathf(p, "%s/h", tmp_root);
		cr_assert_eq(mkdir(p, 0700), 0);
		put_pagemap(1, r1, 2, 2);
		pathf(p, "%s/h/1", tmp_root);
		cr_assert_eq(stack_view_open(p, &v), 0);
		put_pagemap(2, cases[c], nr[c], pages[c]);
		pathf(p, "%s/h/2", tmp_root);
		if (c < 2) {
			/* a PARENT page round 1 does not hold; a page round 1 tracked, gone */
			cr_expect_eq(stack_view_advance(&v, p), -EINVAL, "case %zu", c);
			stack_view_close(&v);
			continue;
		}
		cr_assert_eq(stack_view_advance(&v, p), 0);
		/* changes: page 1 data -> zero, page 3 zero -> data, page 4 new */
		cr_expect_eq(v.top[0].nr, 2);
		cr_expect_eq(v.top[0].ext[0].vaddr, BASE + PG);
		cr_expect_eq(v.top[0].ext[0].round, 0);
		cr_expect_eq(v.top[0].ext[1].vaddr, BASE + 3 * PG);
		cr_expect_eq(v.top[0].ext[1].nr_pages, 2);
		cr_expect_eq(v.top[0].ext[1].round, 2);
		stack_view_close(&v);
	}
}

/*
 * strdup of this program (the view's calls come here): fails call number
 * strdup_fail_at (1-based, counted from when it was set), 0: never.
 */
static int strdup_fail_at, strdup_calls;

char *strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p;

	if (strdup_fail_at && ++strdup_calls == strdup_fail_at)
		return NULL;
	p = malloc(n);
	return p ? memcpy(p, s, n) : NULL;
}

static int open_fds(void)
{
	char p[64];
	int n = 0, fd;

	for (fd = 0; fd < 1024; fd++) {
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		n += !access(p, F_OK);
	}
	return n;
}

/*
 * An advance whose every strdup fails in turn (out of memory): -ENOMEM, the
 * view still at round 1 with its top_dir (the restore closes a view only
 * when top_dir is set: NULL leaked every round fd and index), and closing
 * it leaves no fd open. With none failing, it advances. An open failing so
 * leaves nothing open.
 */
Test(stack, advance_out_of_memory_keeps_the_view)
{
	const struct pm_ext r1[] = { { BASE, 2, PE_FLAGS__PE_PRESENT, 0 } };
	const struct pm_ext r2[] = { { BASE, 1, PE_FLAGS__PE_PARENT, 0 },
				     { BASE + PG, 1, PE_FLAGS__PE_PRESENT, 0 } };
	char p1[PATH_MAX], p2[PATH_MAX];
	int fds0, fail;

	pathf(p1, "%s/h", tmp_root);
	cr_assert_eq(mkdir(p1, 0700), 0);
	put_pagemap(1, r1, 1, 2);
	put_pagemap(2, r2, 2, 1);
	pathf(p1, "%s/h/1", tmp_root);
	pathf(p2, "%s/h/2", tmp_root);
	fds0 = open_fds();
	for (fail = 1;; fail++) {
		struct stack_view v;
		int ret;

		cr_assert_eq(stack_view_open(p1, &v), 0);
		strdup_calls = 0;
		strdup_fail_at = fail;
		ret = stack_view_advance(&v, p2);
		strdup_fail_at = 0;
		if (!ret) {
			cr_expect_eq(v.top_round, 2);
			cr_expect_str_eq(v.top_dir, p2);
			stack_view_close(&v);
			break;
		}
		cr_expect_eq(ret, -ENOMEM, "strdup %d failing", fail);
		cr_assert_not_null(v.top_dir, "strdup %d failing: top_dir lost", fail);
		cr_expect_str_eq(v.top_dir, p1);
		cr_expect_eq(v.top_round, 1);
		stack_view_close(&v);
		cr_expect_eq(open_fds(), fds0, "strdup %d failing: fds left open", fail);
	}
	cr_expect_gt(fail, 1, "the advance calls no strdup");
	/* an open failing so: nothing left open, the view zeroed */
	for (fail = 1;; fail++) {
		struct stack_view v;
		int ret;

		strdup_calls = 0;
		strdup_fail_at = fail;
		ret = stack_view_open(p2, &v);
		strdup_fail_at = 0;
		if (!ret) {
			stack_view_close(&v);
			break;
		}
		cr_expect_eq(ret, -ENOMEM, "open, strdup %d failing", fail);
		cr_expect_null(v.top_dir);
		cr_expect_eq(open_fds(), fds0, "open, strdup %d failing: fds left open", fail);
	}
	cr_expect_gt(fail, 1, "the open calls no strdup");
	cr_expect_eq(open_fds(), fds0);
}

/* Commit round @k of @n single pages (data) at @pg[]; the round's stats in @st. */
static void cost_round(struct stack_writer *sw, uint32_t k, bool final, const uint32_t *pg,
		       size_t n, struct round_stats *st)
{
	static char buf[PG];
	size_t i;

	cr_assert_eq(stack_round_begin(sw, k, final), 0);
	for (i = 0; i < n; i++) {
		memset(buf, (int)(k * 16 + i + 1), PG);
		cr_assert_eq(stack_add_pages(sw, 100, BASE + (uint64_t)pg[i] * PG, 1, buf), 0);
	}
	cr_assert_eq(stack_round_commit(sw, st), 0);
}

/*
 * A round's commit costs that round, not the stack: over 40000 extents
 * (data and zero pages alternating), a round of 3 pages writes a pagemap of
 * its 3 runs and the PARENT runs between them; auto-dedup copies the index
 * only in a pre-copy round, not in the final one, and a round after a final
 * one (the indexes rebuilt from the stack) still punches exactly what it
 * replaces. The stack reads back right after each.
 */
Test(stack, commit_costs_the_round)
{
	static const uint32_t r2[] = { 10, 20000, 39998 }, r3[] = { 12, 20, 39990 }, r4[] = { 20 };
	enum { N = 40000 };
	struct stack_writer *sw;
	struct stack_view v;
	struct round_stats st;
	const struct pg_extent *e;
	char p[PATH_MAX], *buf;
	uint32_t i;

	buf = calloc(2, PG);
	cr_assert_not_null(buf);
	memset(buf, 0x5a, PG);
	cr_assert_eq(stack_writer_open(tmp_root, "cost", true, &sw), 0);
	cr_assert_eq(stack_round_begin(sw, 1, false), 0);
	for (i = 0; i < N; i++)
		cr_assert_eq(stack_add_pages(sw, 100, BASE + (uint64_t)i * PG, 1,
					     i % 2 ? NULL : buf), 0);
	cr_assert_eq(stack_round_commit(sw, &st), 0);
	cr_expect_eq(st.pagemap_entries, N);
	cr_expect_eq(st.index_extents, 0);

	/* pre-copy: 3 runs and the 4 PARENT runs around them; the index is copied */
	cost_round(sw, 2, false, r2, 3, &st);
	cr_expect_eq(st.pagemap_entries, 3 + 4);
	cr_expect_eq(st.index_extents, N);
	cr_expect_eq(st.bytes_punched, 3 * PG);
	/* final: the same cost for the pagemap, nothing for the index */
	cost_round(sw, 3, true, r3, 3, &st);
	cr_expect_eq(st.pagemap_entries, 3 + 4);
	cr_expect_eq(st.index_extents, 0);
	cr_expect_eq(st.bytes_punched, 3 * PG);
	/* after the final round: page 20 of round 3 is what is replaced */
	cost_round(sw, 4, false, r4, 1, &st);
	cr_expect_eq(st.pagemap_entries, 3);
	cr_expect_eq(st.bytes_punched, PG);
	stack_writer_close(sw);

	pathf(p, "%s/cost/4", tmp_root);
	cr_assert_eq(stack_view_open(p, &v), 0);
	for (i = 0; i < N; i++) {
		uint32_t want = i % 2 ? 0 : 1;

		if (i == 10 || i == 20000 || i == 39998)
			want = 2;
		if (i == 12 || i == 39990)
			want = 3;
		if (i == 20)
			want = 4;
		e = pg_index_find(stack_view_index(&v, 100), BASE + (uint64_t)i * PG);
		cr_assert_not_null(e, "page %u untracked", i);
		cr_assert_eq(e->round, want, "page %u in round %u, want %u", i, e->round, want);
	}
	stack_view_close(&v);
	free(buf);
}
