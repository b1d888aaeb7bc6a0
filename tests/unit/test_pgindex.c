// SPDX-License-Identifier: MIT
/* pg_index_apply/find: overlay arithmetic, punch ranges, and a per-page model. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "imgstack/pgindex.h"
#include "imgstack/punch.h"

#define PG PAGE_SIZE
#define MAX_PUNCH 4096

struct punch_log {
	size_t nr;
	struct punch_range r[MAX_PUNCH];
	int fail_at;	/* return -EIO on this call (1-based), 0: never */
};

static int log_punch(void *arg, uint32_t pid, uint32_t round, uint64_t off, uint64_t len)
{
	struct punch_log *l = arg;

	cr_assert_lt(l->nr, MAX_PUNCH);
	l->r[l->nr++] = (struct punch_range){ pid, round, off, len };
	if (l->fail_at && (int)l->nr == l->fail_at)
		return -EIO;
	return 0;
}

static struct pg_extent ext(uint64_t pg, uint64_t n, uint32_t round, uint64_t off_pg)
{
	return (struct pg_extent){ pg * PG, n, round, off_pg * PG };
}

static void set_index(struct pg_index *idx, const struct pg_extent *e, size_t nr)
{
	idx->pid = 7;
	idx->nr = idx->cap = nr;
	idx->ext = malloc((nr ? nr : 1) * sizeof(*e));
	cr_assert(idx->ext);
	memcpy(idx->ext, e, nr * sizeof(*e));
}

static void expect_index(const struct pg_index *idx, const struct pg_extent *e, size_t nr)
{
	size_t i;

	cr_assert_eq(idx->nr, nr, "index has %zu extents, expected %zu", idx->nr, nr);
	for (i = 0; i < nr; i++) {
		cr_expect_eq(idx->ext[i].vaddr, e[i].vaddr, "ext %zu vaddr", i);
		cr_expect_eq(idx->ext[i].nr_pages, e[i].nr_pages, "ext %zu nr_pages", i);
		cr_expect_eq(idx->ext[i].round, e[i].round, "ext %zu round", i);
		cr_expect_eq(idx->ext[i].file_off, e[i].file_off, "ext %zu file_off", i);
	}
}

static void expect_punch(const struct punch_log *l, size_t i, uint32_t round, uint64_t off_pg,
			 uint64_t n)
{
	cr_assert_lt(i, l->nr, "missing punch %zu", i);
	cr_expect_eq(l->r[i].pid, 7);
	cr_expect_eq(l->r[i].round, round, "punch %zu round %u", i, l->r[i].round);
	cr_expect_eq(l->r[i].off, off_pg * PG, "punch %zu off %#llx", i,
		     (unsigned long long)l->r[i].off);
	cr_expect_eq(l->r[i].len, n * PG, "punch %zu len %#llx", i,
		     (unsigned long long)l->r[i].len);
}

Test(pgindex, empty_index_takes_updates)
{
	struct pg_index idx = { .pid = 7 };
	struct pg_extent u[] = { ext(0, 4, 1, 0), ext(10, 2, 0, 0) };
	struct punch_log l = { 0 };

	cr_assert_eq(pg_index_apply(&idx, u, 2, log_punch, &l), 0);
	expect_index(&idx, u, 2);
	cr_expect_eq(l.nr, 0);
	cr_expect_eq(idx.pid, 7);
	pg_index_free(&idx);
}

/*
 * One pg_index_apply case: OLD is the index before, U the update, WANT the
 * index after, PUNCH (round, offset in pages, pages) the calls expected, in
 * order. The arrays end at the first entry of 0 pages. NO_LOG: apply without
 * a punch callback.
 */
struct apply_case {
	struct pg_extent old[4], u[4], want[4];
	struct {
		uint32_t round;
		uint64_t off_pg, n;
	} punch[4];
	bool no_log;
};

static size_t nr_ext(const struct pg_extent *e, size_t max)
{
	size_t nr = 0;

	while (nr < max && e[nr].nr_pages)
		nr++;
	return nr;
}

static void run_apply(const struct apply_case *c)
{
	struct pg_index idx;
	struct punch_log l = { 0 };
	size_t nr_punch = 0, i;

	while (nr_punch < ARRAY_SIZE(c->punch) && c->punch[nr_punch].n)
		nr_punch++;
	set_index(&idx, c->old, nr_ext(c->old, ARRAY_SIZE(c->old)));
	cr_assert_eq(pg_index_apply(&idx, c->u, nr_ext(c->u, ARRAY_SIZE(c->u)),
				    c->no_log ? NULL : log_punch, c->no_log ? NULL : &l), 0);
	expect_index(&idx, c->want, nr_ext(c->want, ARRAY_SIZE(c->want)));
	cr_assert_eq(l.nr, nr_punch);
	for (i = 0; i < nr_punch; i++)
		expect_punch(&l, i, c->punch[i].round, c->punch[i].off_pg, c->punch[i].n);
	pg_index_free(&idx);
}

Test(pgindex, split_at_both_ends)
{
	run_apply(&(struct apply_case){
		.old = { ext(0, 10, 1, 0) },
		.u = { ext(3, 2, 2, 0) },
		.want = { ext(0, 3, 1, 0), ext(3, 2, 2, 0), ext(5, 5, 1, 5) },
		.punch = { { 1, 3, 2 } },
	});
}

Test(pgindex, split_spanning_two_extents)
{
	/* round 1 pages arrived out of order: offsets do not follow vaddr */
	run_apply(&(struct apply_case){
		.old = { ext(0, 4, 1, 4), ext(4, 4, 1, 0) },
		.u = { ext(2, 4, 3, 0) },
		.want = { ext(0, 2, 1, 4), ext(2, 4, 3, 0), ext(6, 2, 1, 2) },
		.punch = { { 1, 6, 2 }, { 1, 0, 2 } },
	});
}

Test(pgindex, full_cover_merges_punches)
{
	/* two runs contiguous in round 1's file: one call; the zero run: none */
	run_apply(&(struct apply_case){
		.old = { ext(2, 2, 1, 0), ext(6, 2, 1, 2), ext(9, 1, 0, 0) },
		.u = { ext(0, 12, 2, 0) },
		.want = { ext(0, 12, 2, 0) },
		.punch = { { 1, 0, 4 } },
	});
}

Test(pgindex, exact_cover_and_gaps)
{
	run_apply(&(struct apply_case){
		.old = { ext(0, 2, 1, 0), ext(4, 2, 1, 2) },
		.u = { ext(0, 2, 2, 0), ext(2, 2, 2, 8), ext(6, 1, 2, 2) },
		.want = { ext(0, 2, 2, 0), ext(2, 2, 2, 8), ext(4, 2, 1, 2), ext(6, 1, 2, 2) },
		.punch = { { 1, 0, 2 } },
	});
}

Test(pgindex, adjacent_runs_merge)
{
	run_apply(&(struct apply_case){
		.old = { ext(0, 2, 2, 0), ext(8, 2, 0, 0) },
		.u = { ext(2, 2, 2, 2), ext(4, 4, 0, 0), ext(10, 1, 2, 9) },
		.want = { ext(0, 4, 2, 0), ext(4, 6, 0, 0), ext(10, 1, 2, 9) },
		.no_log = true,
	});
}

Test(pgindex, file_gap_does_not_merge)
{
	run_apply(&(struct apply_case){
		.old = { ext(0, 2, 2, 0) },
		.u = { ext(2, 2, 2, 3) },
		.want = { ext(0, 2, 2, 0), ext(2, 2, 2, 3) },
		.no_log = true,
	});
}

Test(pgindex, zero_extents_never_punched)
{
	struct pg_index idx;
	struct pg_extent old[] = { ext(0, 4, 0, 0), ext(4, 4, 1, 0) };
	struct pg_extent u[] = { ext(0, 8, 0, 0) };
	struct pg_extent u2[] = { ext(0, 8, 3, 0) };
	struct punch_log l = { 0 };

	set_index(&idx, old, 2);
	cr_assert_eq(pg_index_apply(&idx, u, 1, log_punch, &l), 0);
	expect_index(&idx, u, 1);
	/* zero over zero: nothing; zero over data: the data goes */
	cr_assert_eq(l.nr, 1);
	expect_punch(&l, 0, 1, 0, 4);
	cr_assert_eq(pg_index_apply(&idx, u2, 1, log_punch, &l), 0);
	expect_index(&idx, u2, 1);
	cr_expect_eq(l.nr, 1);
	pg_index_free(&idx);
}

Test(pgindex, bad_updates_rejected)
{
	struct pg_index idx;
	struct pg_extent old[] = { ext(0, 4, 1, 0) };
	struct pg_extent unsorted[] = { ext(4, 1, 2, 0), ext(0, 1, 2, 1) };
	struct pg_extent overlap[] = { ext(0, 2, 2, 0), ext(1, 1, 2, 2) };
	struct pg_extent empty[] = { ext(0, 0, 2, 0) };
	struct pg_extent unaligned[] = { { 100, 1, 2, 0 } };
	struct pg_extent bad_off[] = { { 0, 1, 2, 100 } };
	struct pg_extent wraps[] = { { UINT64_MAX - PG + 1, 1, 2, 0 } };
	struct punch_log l = { 0 };

	set_index(&idx, old, 1);
	cr_expect_eq(pg_index_apply(&idx, unsorted, 2, log_punch, &l), -EINVAL);
	cr_expect_eq(pg_index_apply(&idx, overlap, 2, log_punch, &l), -EINVAL);
	cr_expect_eq(pg_index_apply(&idx, empty, 1, log_punch, &l), -EINVAL);
	cr_expect_eq(pg_index_apply(&idx, unaligned, 1, log_punch, &l), -EINVAL);
	cr_expect_eq(pg_index_apply(&idx, bad_off, 1, log_punch, &l), -EINVAL);
	cr_expect_eq(pg_index_apply(&idx, wraps, 1, log_punch, &l), -EINVAL);
	cr_expect_eq(l.nr, 0);
	expect_index(&idx, old, 1);
	pg_index_free(&idx);
}

Test(pgindex, punch_error_keeps_index)
{
	struct pg_index idx;
	struct pg_extent old[] = { ext(0, 2, 1, 0), ext(4, 2, 1, 8) };
	struct pg_extent u[] = { ext(0, 8, 2, 0) };
	struct punch_log l = { .fail_at = 1 };

	set_index(&idx, old, 2);
	cr_assert_eq(pg_index_apply(&idx, u, 1, log_punch, &l), -EIO);
	expect_index(&idx, old, 2);
	pg_index_free(&idx);
}

Test(pgindex, overlay_keeps_old)
{
	struct pg_index idx, out;
	struct pg_extent old[] = { ext(0, 4, 1, 0) };
	struct pg_extent u[] = { ext(1, 1, 2, 0) };
	struct pg_extent want[] = { ext(0, 1, 1, 0), ext(1, 1, 2, 0), ext(2, 2, 1, 2) };

	set_index(&idx, old, 1);
	cr_assert_eq(pg_index_overlay(&idx, u, 1, NULL, NULL, &out), 0);
	expect_index(&idx, old, 1);
	expect_index(&out, want, 3);
	cr_expect_eq(out.pid, 7);
	pg_index_free(&out);
	pg_index_free(&idx);
}

Test(pgindex, find)
{
	struct pg_index idx;
	struct pg_extent old[] = { ext(2, 2, 1, 0), ext(4, 1, 0, 0), ext(10, 3, 2, 0) };

	set_index(&idx, old, 3);
	cr_expect_null(pg_index_find(&idx, 0));
	cr_expect_null(pg_index_find(&idx, 2 * PG - 1));
	cr_expect_eq(pg_index_find(&idx, 2 * PG), &idx.ext[0]);
	cr_expect_eq(pg_index_find(&idx, 4 * PG - 1), &idx.ext[0]);
	cr_expect_eq(pg_index_find(&idx, 4 * PG), &idx.ext[1]);
	cr_expect_null(pg_index_find(&idx, 5 * PG));
	cr_expect_eq(pg_index_find(&idx, 12 * PG + PG - 1), &idx.ext[2]);
	cr_expect_null(pg_index_find(&idx, 13 * PG));
	cr_expect_null(pg_index_find(&idx, UINT64_MAX));
	pg_index_free(&idx);
	cr_expect_null(pg_index_find(&idx, 0));
}

/* --- randomized against a per-page model --- */

#define SPACE 256

struct model_page {
	bool tracked;
	uint32_t round;
	uint64_t off;
};

static void check_invariants(const struct pg_index *idx)
{
	size_t i;

	for (i = 0; i < idx->nr; i++) {
		const struct pg_extent *e = &idx->ext[i], *p = i ? &idx->ext[i - 1] : NULL;

		cr_assert_gt(e->nr_pages, 0);
		if (!p)
			continue;
		cr_assert_geq(e->vaddr, p->vaddr + p->nr_pages * PG, "overlap at %zu", i);
		cr_assert(!(p->round == e->round && p->vaddr + p->nr_pages * PG == e->vaddr &&
			    (!e->round || p->file_off + p->nr_pages * PG == e->file_off)),
			  "unmerged runs at %zu", i);
	}
}

static void check_model(const struct pg_index *idx, const struct model_page *m)
{
	uint64_t pg;

	for (pg = 0; pg < SPACE; pg++) {
		const struct pg_extent *e = pg_index_find(idx, pg * PG);

		if (!m[pg].tracked) {
			cr_assert_null(e, "page %llu should be untracked", (unsigned long long)pg);
			continue;
		}
		cr_assert_not_null(e, "page %llu missing", (unsigned long long)pg);
		cr_assert_eq(e->round, m[pg].round, "page %llu round", (unsigned long long)pg);
		if (e->round)
			cr_assert_eq(e->file_off + (pg * PG - e->vaddr), m[pg].off,
				     "page %llu offset", (unsigned long long)pg);
	}
}

/* pg_index_cover: the tracked pages exactly, as zero runs never adjacent. */
static void check_cover(const struct pg_index *idx, const struct model_page *m)
{
	struct pg_index cov = { 0 };
	uint64_t pg;
	size_t i;

	cr_assert_eq(pg_index_cover(idx->ext, idx->nr, &cov), 0);
	for (i = 0; i < cov.nr; i++) {
		cr_assert_eq(cov.ext[i].round, 0);
		if (i)
			cr_assert_gt(cov.ext[i].vaddr, pg_ext_end(&cov.ext[i - 1]));
	}
	for (pg = 0; pg < SPACE; pg++)
		cr_assert_eq(pg_index_find(&cov, pg * PG) != NULL, m[pg].tracked,
			     "page %llu", (unsigned long long)pg);
	pg_index_free(&cov);
}

/* Random disjoint runs; data runs get file offsets in a shuffled order. */
static size_t random_round(uint32_t round, struct pg_extent *u)
{
	size_t nr = 0, i, order[SPACE];
	uint64_t pg = rand() % 8, off = 0;

	while (pg < SPACE) {
		uint64_t n = 1 + rand() % 12;

		if (pg + n > SPACE)
			n = SPACE - pg;
		u[nr++] = (struct pg_extent){ pg * PG, n, rand() % 5 ? round : 0, 0 };
		pg += n + rand() % 16;
	}
	for (i = 0; i < nr; i++)
		order[i] = i;
	for (i = nr; i > 1; i--) {
		size_t j = rand() % i, t = order[i - 1];

		order[i - 1] = order[j];
		order[j] = t;
	}
	for (i = 0; i < nr; i++) {
		struct pg_extent *e = &u[order[i]];

		if (!e->round)
			continue;
		e->file_off = off;
		off += e->nr_pages * PG;
	}
	return nr;
}

Test(pgindex, randomized_against_model)
{
	static struct model_page m[SPACE];
	static struct punch_log l, l2;
	static bool punched[64][SPACE * 2];
	struct pg_extent u[SPACE];
	struct pg_index idx = { .pid = 7 };
	uint32_t iter, round;

	srand(12345);
	for (iter = 0; iter < 40; iter++) {
		memset(m, 0, sizeof(m));
		memset(punched, 0, sizeof(punched));
		pg_index_free(&idx);
		idx.pid = 7;
		for (round = 1; round < 64; round++) {
			bool expect[64][SPACE * 2] = { { 0 } };
			size_t nr = random_round(round, u), i;
			uint64_t k;

			for (i = 0; i < nr; i++) {
				for (k = 0; k < u[i].nr_pages; k++) {
					struct model_page *p = &m[u[i].vaddr / PG + k];

					if (p->tracked && p->round)
						expect[p->round][p->off / PG] = true;
					p->tracked = true;
					p->round = u[i].round;
					p->off = u[i].round ? u[i].file_off + k * PG : 0;
				}
			}
			/* the walk without a new index reports what the overlay does */
			l2.nr = 0;
			cr_assert_eq(pg_index_replaced(&idx, u, nr, log_punch, &l2), 0);
			l.nr = 0;
			cr_assert_eq(pg_index_apply(&idx, u, nr, log_punch, &l), 0);
			cr_assert_eq(l2.nr, l.nr);
			cr_assert_eq(memcmp(l2.r, l.r, l.nr * sizeof(*l.r)), 0);
			check_invariants(&idx);
			check_model(&idx, m);
			check_cover(&idx, m);
			/* every replaced data page punched exactly once, nothing else */
			for (i = 0; i < l.nr; i++) {
				cr_assert_lt(l.r[i].round, round);
				cr_assert_gt(l.r[i].len, 0);
				for (k = 0; k < l.r[i].len / PG; k++) {
					uint64_t p = l.r[i].off / PG + k;

					cr_assert(expect[l.r[i].round][p], "unexpected punch");
					cr_assert(!punched[l.r[i].round][p], "double punch");
					punched[l.r[i].round][p] = true;
					expect[l.r[i].round][p] = false;
				}
				/* consecutive calls never continue each other */
				if (i)
					cr_assert(!(l.r[i].round == l.r[i - 1].round &&
						    l.r[i - 1].off + l.r[i - 1].len == l.r[i].off),
						  "unmerged punches");
			}
			for (k = 0; k < 64 * SPACE * 2; k++)
				cr_assert(!((bool *)expect)[k], "missing punch");
		}
	}
	pg_index_free(&idx);
}

/* --- millions of small extents (a hash table written over many rounds) --- */

#define BIG_PAGES	(2u << 20)	/* 8 GiB of address space */
#define BIG_ROUNDS	30
#define BIG_PER_ROUND	40000

static uint64_t big_rng = 0x9e3779b97f4a7c15ULL;

static uint64_t big_next(void)
{
	big_rng ^= big_rng << 13;
	big_rng ^= big_rng >> 7;
	big_rng ^= big_rng << 17;
	return big_rng;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

struct big_walk {
	const uint8_t *round;
	const uint32_t *off;
	uint64_t pages, calls;
};

static int big_walk_ext(void *arg, const struct pg_extent *e)
{
	struct big_walk *w = arg;
	uint64_t i, pg = e->vaddr / PG;

	w->calls++;
	for (i = 0; i < e->nr_pages; i++) {
		cr_assert_eq(e->round, w->round[pg + i], "page %llu", (unsigned long long)(pg + i));
		cr_assert_eq(e->file_off / PG + i, w->off[pg + i]);
	}
	w->pages += e->nr_pages;
	return 0;
}

Test(pgindex, millions_of_scattered_extents, .timeout = 600)
{
	uint8_t *round = calloc(BIG_PAGES, 1);
	uint32_t *off = calloc(BIG_PAGES, sizeof(*off)), *pick = calloc(BIG_PER_ROUND, 4);
	struct pg_extent *u = calloc(BIG_PER_ROUND, sizeof(*u));
	struct pg_index idx = { .pid = 7 };
	struct pg_extent all = { 0, BIG_PAGES, 1, 0 };
	struct big_walk w;
	uint64_t t0, t_apply = 0, i;
	uint32_t r;
	size_t n;

	cr_assert(round && off && pick && u);
	for (i = 0; i < BIG_PAGES; i++) {
		round[i] = 1;
		off[i] = i;
	}
	cr_assert_eq(pg_index_apply(&idx, &all, 1, NULL, NULL), 0);
	for (r = 2; r <= BIG_ROUNDS; r++) {
		/* distinct random pages, sorted; file offsets in address order */
		for (i = 0; i < BIG_PER_ROUND; i++)
			pick[i] = big_next() % BIG_PAGES;
		qsort(pick, BIG_PER_ROUND, sizeof(*pick), cmp_u32);
		for (i = n = 0; i < BIG_PER_ROUND; i++) {
			if (n && pick[i] == u[n - 1].vaddr / PG)
				continue;
			u[n] = (struct pg_extent){ (uint64_t)pick[i] * PG, 1, r, n * PG };
			round[pick[i]] = r;
			off[pick[i]] = n;
			n++;
		}
		t0 = now_us();
		cr_assert_eq(pg_index_apply(&idx, u, n, NULL, NULL), 0);
		t_apply += now_us() - t0;
	}
	cr_log_info("%zu extents after %u rounds, applies took %llu ms in all", idx.nr, BIG_ROUNDS,
		    (unsigned long long)t_apply / 1000);
	cr_assert_gt(idx.nr, 1000000, "only %zu extents", idx.nr);
	check_invariants(&idx);
	/* random lookups against the model */
	for (i = 0; i < 500000; i++) {
		uint64_t pg = big_next() % BIG_PAGES;
		const struct pg_extent *e = pg_index_find(&idx, pg * PG + big_next() % PG);

		cr_assert_not_null(e);
		cr_assert_eq(e->round, round[pg], "page %llu", (unsigned long long)pg);
		cr_assert_eq(e->file_off / PG + (pg - e->vaddr / PG), off[pg]);
	}
	cr_assert_null(pg_index_find(&idx, (uint64_t)BIG_PAGES * PG));
	/* the whole index, and a window: a walk costs the extents it reports */
	w = (struct big_walk){ round, off, 0, 0 };
	cr_assert_eq(pg_index_walk(&idx, 0, (uint64_t)BIG_PAGES * PG, big_walk_ext, &w), 0);
	cr_assert_eq(w.pages, BIG_PAGES);
	cr_assert_eq(w.calls, idx.nr);
	w = (struct big_walk){ round, off, 0, 0 };
	cr_assert_eq(pg_index_walk(&idx, 1000 * PG, 1100 * PG, big_walk_ext, &w), 0);
	cr_assert_eq(w.pages, 100);
	cr_assert_leq(w.calls, 100);
	/* loose: 29 overlays of ~2M extents are a few memcpys each, not minutes */
	cr_expect_lt(t_apply, 60 * 1000000ULL, "applies took %llu ms",
		     (unsigned long long)t_apply / 1000);
	pg_index_free(&idx);
	free(round);
	free(off);
	free(pick);
	free(u);
}
