// SPDX-License-Identifier: MIT
/* The restore's op lists and address ranges (dest-agent/ops.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/util.h"
#include "dest-agent/restore.h"
#include "tests/unit/unit.h"

#define PG	PAGE_SIZE
#define BASE	0x7f0000000000ULL
#define UPAGES	64		/* the universe of the random range tests */

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint64_t rnd(void)
{
	return xorshift64(&rng);
}

/* ---- ranges ---- */

/* Sorted, disjoint, not touching, none empty. */
static void check_ranges_shape(const struct ranges *rs)
{
	size_t i;

	for (i = 0; i < rs->nr; i++) {
		cr_assert_lt(rs->r[i].start, rs->r[i].end, "range %zu empty", i);
		if (i)
			cr_assert_lt(rs->r[i - 1].end, rs->r[i].start,
				     "ranges %zu and %zu touch or overlap", i - 1, i);
	}
	cr_assert_leq(rs->nr, rs->cap);
}

/* Page i of the universe is bit i. */
static uint64_t ranges_mask(const struct ranges *rs)
{
	uint64_t m = 0, a;
	size_t i;

	for (i = 0; i < rs->nr; i++) {
		cr_assert_geq(rs->r[i].start, BASE);
		cr_assert_leq(rs->r[i].end, BASE + UPAGES * PG);
		cr_assert_eq(rs->r[i].start % PG, 0);
		cr_assert_eq(rs->r[i].end % PG, 0);
		for (a = rs->r[i].start; a < rs->r[i].end; a += PG)
			m |= 1ULL << ((a - BASE) / PG);
	}
	return m;
}

/* Ranges from a mask, added in runs of random lengths (touching runs must merge). */
static void mask_ranges(uint64_t m, struct ranges *rs)
{
	unsigned int i = 0, j;

	memset(rs, 0, sizeof(*rs));
	while (i < UPAGES) {
		if (!(m >> i & 1)) {
			i++;
			continue;
		}
		j = i + 1;
		while (j < UPAGES && (m >> j & 1) && rnd() % 4)
			j++;
		cr_assert_eq(ranges_add(rs, BASE + i * PG, BASE + j * PG), 0);
		i = j;
	}
}

/* A minus B is nothing. */
static void expect_sub_empty(const struct ranges *a, const struct ranges *b)
{
	struct ranges out;

	cr_assert_eq(ranges_sub(a, b, &out), 0);
	cr_expect_eq(out.nr, 0);
	ranges_free(&out);
}

Test(ranges, empty_ranges_ignored)
{
	struct ranges rs = { 0 };

	cr_expect_eq(ranges_add(&rs, BASE, BASE), 0);
	cr_expect_eq(ranges_add(&rs, BASE + PG, BASE), 0);
	cr_expect_eq(rs.nr, 0);
	cr_expect_eq(ranges_add(&rs, BASE, BASE + PG), 0);
	/* an empty one below the last one is no error either */
	cr_expect_eq(ranges_add(&rs, 0, 0), 0);
	cr_expect_eq(rs.nr, 1);
	ranges_free(&rs);
	cr_expect_null(rs.r);
	cr_expect_eq(rs.nr, 0);
	cr_expect_eq(rs.cap, 0);
}

Test(ranges, touching_ranges_merge)
{
	struct ranges rs = { 0 };

	cr_assert_eq(ranges_add(&rs, BASE, BASE + PG), 0);
	cr_assert_eq(ranges_add(&rs, BASE + PG, BASE + 3 * PG), 0);
	cr_assert_eq(ranges_add(&rs, BASE + 3 * PG, BASE + 4 * PG), 0);
	cr_assert_eq(rs.nr, 1);
	cr_expect_eq(rs.r[0].start, BASE);
	cr_expect_eq(rs.r[0].end, BASE + 4 * PG);
	/* a gap of one byte is a gap */
	cr_assert_eq(ranges_add(&rs, BASE + 4 * PG + 1, BASE + 5 * PG), 0);
	cr_assert_eq(rs.nr, 2);
	cr_expect_eq(rs.r[1].start, BASE + 4 * PG + 1);
	cr_expect_eq(rs.r[1].end, BASE + 5 * PG);
	check_ranges_shape(&rs);
	ranges_free(&rs);
}

Test(ranges, out_of_order_rejected)
{
	struct ranges rs = { 0 };

	cr_assert_eq(ranges_add(&rs, BASE + 10 * PG, BASE + 20 * PG), 0);
	cr_expect_eq(ranges_add(&rs, BASE, BASE + PG), -EINVAL, "below");
	cr_expect_eq(ranges_add(&rs, BASE, BASE + 30 * PG), -EINVAL, "covering");
	cr_expect_eq(ranges_add(&rs, BASE + 15 * PG, BASE + 25 * PG), -EINVAL, "overlapping");
	cr_expect_eq(ranges_add(&rs, BASE + 10 * PG, BASE + 11 * PG), -EINVAL, "same start");
	cr_expect_eq(ranges_add(&rs, BASE + 20 * PG - 1, BASE + 21 * PG), -EINVAL, "one byte in");
	/* nothing changed */
	cr_assert_eq(rs.nr, 1);
	cr_expect_eq(rs.r[0].start, BASE + 10 * PG);
	cr_expect_eq(rs.r[0].end, BASE + 20 * PG);
	ranges_free(&rs);
}

Test(ranges, grow_past_the_first_allocation)
{
	struct ranges rs = { 0 };
	uint64_t i, n = 1000;

	for (i = 0; i < n; i++)
		cr_assert_eq(ranges_add(&rs, BASE + 2 * i * PG, BASE + (2 * i + 1) * PG), 0);
	cr_assert_eq(rs.nr, n);
	for (i = 0; i < n; i++) {
		cr_assert_eq(rs.r[i].start, BASE + 2 * i * PG);
		cr_assert_eq(rs.r[i].end, BASE + (2 * i + 1) * PG);
	}
	check_ranges_shape(&rs);
	ranges_free(&rs);
}

Test(ranges, extremes_of_the_address_space)
{
	struct ranges a = { 0 }, b = { 0 }, out;

	cr_assert_eq(ranges_add(&a, 0, UINT64_MAX), 0);
	cr_assert_eq(ranges_add(&b, 0, PG), 0);
	cr_assert_eq(ranges_add(&b, UINT64_MAX - PG, UINT64_MAX), 0);
	cr_assert_eq(ranges_sub(&a, &b, &out), 0);
	cr_assert_eq(out.nr, 1);
	cr_expect_eq(out.r[0].start, PG);
	cr_expect_eq(out.r[0].end, UINT64_MAX - PG);
	ranges_free(&out);
	expect_sub_empty(&b, &a);
	ranges_free(&a);
	ranges_free(&b);
}

Test(ranges, sub_by_hand)
{
	struct ranges a = { 0 }, b = { 0 }, none = { 0 }, out;

	/* a: [0,10) [20,30) [40,50)   b: [5,22) [25,26) [29,45)   in pages */
	cr_assert_eq(ranges_add(&a, BASE, BASE + 10 * PG), 0);
	cr_assert_eq(ranges_add(&a, BASE + 20 * PG, BASE + 30 * PG), 0);
	cr_assert_eq(ranges_add(&a, BASE + 40 * PG, BASE + 50 * PG), 0);
	cr_assert_eq(ranges_add(&b, BASE + 5 * PG, BASE + 22 * PG), 0);
	cr_assert_eq(ranges_add(&b, BASE + 25 * PG, BASE + 26 * PG), 0);
	cr_assert_eq(ranges_add(&b, BASE + 29 * PG, BASE + 45 * PG), 0);
	cr_assert_eq(ranges_sub(&a, &b, &out), 0);
	/* [0,5) [22,25) [26,29) [45,50) */
	cr_assert_eq(out.nr, 4);
	cr_expect_eq(out.r[0].start, BASE);
	cr_expect_eq(out.r[0].end, BASE + 5 * PG);
	cr_expect_eq(out.r[1].start, BASE + 22 * PG);
	cr_expect_eq(out.r[1].end, BASE + 25 * PG);
	cr_expect_eq(out.r[2].start, BASE + 26 * PG);
	cr_expect_eq(out.r[2].end, BASE + 29 * PG);
	cr_expect_eq(out.r[3].start, BASE + 45 * PG);
	cr_expect_eq(out.r[3].end, BASE + 50 * PG);
	ranges_free(&out);

	/* minus nothing: a copy; nothing minus anything: nothing */
	cr_assert_eq(ranges_sub(&a, &none, &out), 0);
	cr_assert_eq(out.nr, a.nr);
	cr_expect_eq(memcmp(out.r, a.r, a.nr * sizeof(*a.r)), 0);
	ranges_free(&out);
	expect_sub_empty(&none, &b);
	/* a minus itself */
	expect_sub_empty(&a, &a);
	ranges_free(&a);
	ranges_free(&b);
}

Test(ranges, sub_against_brute_force)
{
	uint64_t am, bm, want, got;
	struct ranges a, b, out;
	int i;

	for (i = 0; i < 10000; i++) {
		/* sparse, dense and in-between sets */
		switch (i % 4) {
		case 0:
			am = rnd();
			bm = rnd();
			break;
		case 1:
			am = rnd() | rnd();
			bm = rnd() & rnd();
			break;
		case 2:
			am = rnd() & rnd();
			bm = rnd() | rnd() | rnd();
			break;
		default:
			am = i % 64 == 3 ? 0 : i % 64 == 7 ? ~0ULL : rnd();
			bm = i % 32 == 11 ? 0 : i % 32 == 15 ? ~0ULL : am ^ (1ULL << (rnd() % 64));
			break;
		}
		want = am & ~bm;
		mask_ranges(am, &a);
		mask_ranges(bm, &b);
		check_ranges_shape(&a);
		check_ranges_shape(&b);
		cr_assert_eq(ranges_mask(&a), am);
		cr_assert_eq(ranges_mask(&b), bm);
		cr_assert_eq(ranges_sub(&a, &b, &out), 0);
		check_ranges_shape(&out);
		got = ranges_mask(&out);
		cr_assert_eq(got, want, "case %d: a %#llx - b %#llx = %#llx, want %#llx", i,
			     (unsigned long long)am, (unsigned long long)bm,
			     (unsigned long long)got, (unsigned long long)want);
		ranges_free(&a);
		ranges_free(&b);
		ranges_free(&out);
	}
}

/* a & b: what a forked child keeps of its parent's memory. */
Test(ranges, and_against_brute_force)
{
	uint64_t am, bm, got;
	struct ranges a, b, out;
	int i;

	for (i = 0; i < 10000; i++) {
		am = i % 3 ? rnd() : rnd() | rnd();
		bm = i % 5 == 1 ? 0 : i % 5 == 2 ? ~0ULL : i % 5 == 3 ? am : rnd();
		mask_ranges(am, &a);
		mask_ranges(bm, &b);
		cr_assert_eq(ranges_and(&a, &b, &out), 0);
		check_ranges_shape(&out);
		got = ranges_mask(&out);
		cr_assert_eq(got, am & bm, "case %d: a %#llx & b %#llx = %#llx", i,
			     (unsigned long long)am, (unsigned long long)bm,
			     (unsigned long long)got);
		ranges_free(&a);
		ranges_free(&b);
		ranges_free(&out);
	}
}

/* Byte granular, ranges not page aligned: still exact set difference. */
Test(ranges, sub_unaligned_against_brute_force)
{
	uint64_t am, bm, want, got, x;
	struct ranges a, b, out;
	unsigned int bit, j;
	size_t k;
	int i;

	for (i = 0; i < 3000; i++) {
		am = rnd() & rnd();
		bm = rnd() | rnd();
		want = am & ~bm;
		for (j = 0; j < 2; j++) {
			struct ranges *rs = j ? &b : &a;
			uint64_t m = j ? bm : am;

			memset(rs, 0, sizeof(*rs));
			for (bit = 0; bit < 64; bit++)
				if (m >> bit & 1)
					cr_assert_eq(ranges_add(rs, 1000 + bit, 1001 + bit), 0);
		}
		cr_assert_eq(ranges_sub(&a, &b, &out), 0);
		check_ranges_shape(&out);
		got = 0;
		for (k = 0; k < out.nr; k++)
			for (x = out.r[k].start; x < out.r[k].end; x++)
				got |= 1ULL << (x - 1000);
		cr_assert_eq(got, want, "case %d", i);
		ranges_free(&a);
		ranges_free(&b);
		ranges_free(&out);
	}
}

/* ---- ops ---- */

static const char *op_path(const struct ops *o, size_t i)
{
	cr_assert_lt(i, o->nr);
	if (!o->op[i].path)
		return NULL;
	cr_assert_leq(o->op[i].path, o->str_len, "op %zu: path offset out of the strings", i);
	return o->str + o->op[i].path - 1;
}

Test(ops, adjacent_discards_and_zeros_merge)
{
	struct ops o = { 0 };

	cr_assert_eq(ops_add(&o, RST_OP_DISCARD, BASE, PG), 0);
	cr_assert_eq(ops_add(&o, RST_OP_DISCARD, BASE + PG, 2 * PG), 0);
	cr_assert_eq(ops_add(&o, RST_OP_DISCARD, BASE + 3 * PG, PG), 0);
	cr_assert_eq(o.nr, 1);
	cr_expect_eq(o.op[0].addr, BASE);
	cr_expect_eq(o.op[0].len, 4 * PG);

	/* another type right after: a new op, and a new run of that type */
	cr_assert_eq(ops_add(&o, RST_OP_ZERO, BASE + 4 * PG, PG), 0);
	cr_assert_eq(ops_add(&o, RST_OP_ZERO, BASE + 5 * PG, 3 * PG), 0);
	cr_assert_eq(o.nr, 2);
	cr_expect_eq(o.op[1].type, RST_OP_ZERO);
	cr_expect_eq(o.op[1].addr, BASE + 4 * PG);
	cr_expect_eq(o.op[1].len, 4 * PG);

	/* a discard after the zero run does not reach back to the first one */
	cr_assert_eq(ops_add(&o, RST_OP_DISCARD, BASE + 8 * PG, PG), 0);
	cr_assert_eq(o.nr, 3);
	cr_expect_eq(o.op[0].len, 4 * PG);
	cr_expect_eq(o.op[2].addr, BASE + 8 * PG);
	cr_expect_null(op_path(&o, 2));
	ops_free(&o);
	cr_expect_null(o.op);
	cr_expect_eq(o.nr, 0);
}

Test(ops, gaps_and_backward_steps_do_not_merge)
{
	struct ops o = { 0 };

	cr_assert_eq(ops_add(&o, RST_OP_ZERO, BASE, PG), 0);
	cr_assert_eq(ops_add(&o, RST_OP_ZERO, BASE + 2 * PG, PG), 0);	/* gap */
	cr_assert_eq(ops_add(&o, RST_OP_ZERO, BASE + PG, PG), 0);	/* before */
	cr_assert_eq(ops_add(&o, RST_OP_ZERO, BASE + PG, PG), 0);	/* same range again */
	cr_assert_eq(ops_add(&o, RST_OP_ZERO, BASE + 2 * PG + 1, PG), 0);	/* one byte off */
	cr_assert_eq(o.nr, 5);
	cr_expect_eq(o.op[0].len, PG);
	cr_expect_eq(o.op[1].len, PG);
	ops_free(&o);
}

Test(ops, other_types_never_merge)
{
	static const uint32_t types[] = {
		RST_OP_MAP, RST_OP_READ, RST_OP_PROTECT, RST_OP_UNMAP,
	};
	struct ops o = { 0 };
	size_t i;

	for (i = 0; i < ARRAY_SIZE(types); i++) {
		cr_assert_eq(ops_add(&o, types[i], BASE, PG), 0);
		cr_assert_eq(ops_add(&o, types[i], BASE + PG, PG), 0);
		cr_assert_eq(o.nr, 2, "type %u merged", types[i]);
		cr_expect_eq(o.op[0].len, PG);
		cr_expect_eq(o.op[1].addr, BASE + PG);
		ops_free(&o);
	}
}

Test(ops, grow_past_the_first_allocation)
{
	struct ops o = { 0 };
	uint64_t i, n = 3000;

	for (i = 0; i < n; i++)
		cr_assert_eq(ops_add(&o, i % 2 ? RST_OP_ZERO : RST_OP_DISCARD, BASE + i * PG, PG),
			     0);
	cr_assert_eq(o.nr, n);
	for (i = 0; i < n; i++) {
		cr_assert_eq(o.op[i].type, i % 2 ? RST_OP_ZERO : RST_OP_DISCARD);
		cr_assert_eq(o.op[i].addr, BASE + i * PG);
		cr_assert_eq(o.op[i].len, PG);
		cr_assert_eq(o.op[i].path, 0);
	}
	ops_free(&o);
}

Test(ops, reads_contiguous_in_memory_and_file_merge)
{
	static const char pages[] = "/var/lib/ferry/mig/3/pages-42.img";
	struct ops o = { 0 };
	uint64_t i;

	for (i = 0; i < 1000; i++)
		cr_assert_eq(ops_add_read(&o, RST_OP_READ, BASE + i * PG, PG, pages, 8 * PG + i * PG), 0);
	cr_assert_eq(o.nr, 1);
	cr_expect_eq(o.op[0].type, RST_OP_READ);
	cr_expect_eq(o.op[0].addr, BASE);
	cr_expect_eq(o.op[0].len, 1000 * PG);
	cr_expect_eq(o.op[0].off, 8 * PG);
	cr_expect_str_eq(op_path(&o, 0), pages);
	cr_expect_eq(o.str_len, sizeof(pages), "the path is stored once");
	ops_free(&o);
}

/* Compare-reads merge like reads, but never with a plain read (nor the other way). */
Test(ops, compare_reads_merge_only_with_their_kind)
{
	static const char pages[] = "/img/pages-7.img";
	struct ops o = { 0 };

	cr_assert_eq(ops_add_read(&o, RST_OP_READ_CMP, BASE, PG, pages, 0), 0);
	cr_assert_eq(ops_add_read(&o, RST_OP_READ_CMP, BASE + PG, 2 * PG, pages, PG), 0);
	cr_assert_eq(o.nr, 1);
	cr_expect_eq(o.op[0].type, RST_OP_READ_CMP);
	cr_expect_eq(o.op[0].len, 3 * PG);
	cr_assert_eq(ops_add_read(&o, RST_OP_READ, BASE + 3 * PG, PG, pages, 3 * PG), 0);
	cr_assert_eq(ops_add_read_ref(&o, RST_OP_READ_CMP, BASE + 4 * PG, PG, o.op[0].path,
				      4 * PG), 0);
	cr_assert_eq(o.nr, 3);
	cr_expect_eq(o.op[1].type, RST_OP_READ);
	cr_expect_eq(o.op[2].type, RST_OP_READ_CMP);
	cr_expect_eq(o.op[2].path, o.op[0].path);
	ops_free(&o);
}

Test(ops, reads_not_merged_across_gaps)
{
	static const char pages[] = "/img/pages-1.img";
	struct ops o = { 0 };

	cr_assert_eq(ops_add_read(&o, RST_OP_READ, BASE, PG, pages, 0), 0);
	/* contiguous in memory, not in the file */
	cr_assert_eq(ops_add_read(&o, RST_OP_READ, BASE + PG, PG, pages, 2 * PG), 0);
	/* contiguous in the file, not in memory */
	cr_assert_eq(ops_add_read(&o, RST_OP_READ, BASE + 3 * PG, PG, pages, 3 * PG), 0);
	/* backwards in the file */
	cr_assert_eq(ops_add_read(&o, RST_OP_READ, BASE + 4 * PG, PG, pages, 2 * PG), 0);
	/* then a run that continues the last one: merges with it only */
	cr_assert_eq(ops_add_read(&o, RST_OP_READ, BASE + 5 * PG, 2 * PG, pages, 3 * PG), 0);
	cr_assert_eq(o.nr, 4);
	cr_expect_eq(o.op[0].len, PG);
	cr_expect_eq(o.op[1].off, 2 * PG);
	cr_expect_eq(o.op[2].off, 3 * PG);
	cr_expect_eq(o.op[3].addr, BASE + 4 * PG);
	cr_expect_eq(o.op[3].len, 3 * PG);
	cr_expect_eq(o.op[3].off, 2 * PG);
	/* one path, stored once, shared by every op */
	cr_expect_eq(o.str_len, sizeof(pages));
	cr_expect_eq(o.op[0].path, o.op[1].path);
	cr_expect_eq(o.op[0].path, o.op[3].path);
	ops_free(&o);
}

Test(ops, reads_not_merged_across_files)
{
	static const char a[] = "/img/3/pages-1.img", b[] = "/img/2/pages-1.img";
	struct ops o = { 0 };

	cr_assert_eq(ops_add_read(&o, RST_OP_READ, BASE, PG, a, 0), 0);
	cr_assert_eq(ops_add_read(&o, RST_OP_READ, BASE + PG, PG, b, PG), 0);
	cr_assert_eq(ops_add_read(&o, RST_OP_READ, BASE + 2 * PG, PG, a, 2 * PG), 0);
	cr_assert_eq(o.nr, 3);
	cr_expect_str_eq(op_path(&o, 0), a);
	cr_expect_str_eq(op_path(&o, 1), b);
	cr_expect_str_eq(op_path(&o, 2), a);
	ops_free(&o);
}

Test(ops, reads_not_merged_across_other_ops)
{
	static const char pages[] = "/img/pages-1.img";
	struct ops o = { 0 };

	cr_assert_eq(ops_add_read(&o, RST_OP_READ, BASE, PG, pages, 0), 0);
	cr_assert_eq(ops_add(&o, RST_OP_ZERO, BASE + 10 * PG, PG), 0);
	/* continues the first read in memory and file, but the zero op is between */
	cr_assert_eq(ops_add_read(&o, RST_OP_READ, BASE + PG, PG, pages, PG), 0);
	cr_assert_eq(o.nr, 3);
	cr_expect_eq(o.op[0].len, PG);
	cr_expect_eq(o.op[1].type, RST_OP_ZERO);
	cr_expect_null(op_path(&o, 1));
	cr_expect_eq(o.op[2].type, RST_OP_READ);
	cr_expect_str_eq(op_path(&o, 2), pages);
	/* a zero op right after a read does not extend the read */
	cr_assert_eq(ops_add(&o, RST_OP_ZERO, BASE + 2 * PG, PG), 0);
	cr_expect_eq(o.nr, 4);
	cr_expect_eq(o.op[2].len, PG);
	ops_free(&o);
}

Test(ops, set_path_on_a_map)
{
	static const char lib[] = "/usr/lib/x86_64-linux-gnu/libc.so.6";
	struct ops o = { 0 };

	cr_assert_eq(ops_add(&o, RST_OP_MAP, BASE, PG), 0);
	cr_assert_eq(ops_set_path(&o, lib), 0);
	cr_assert_eq(ops_add(&o, RST_OP_MAP, BASE + PG, PG), 0);
	cr_assert_eq(ops_set_path(&o, lib), 0);
	cr_assert_eq(ops_add(&o, RST_OP_MAP, BASE + 2 * PG, PG), 0);
	cr_assert_eq(ops_set_path(&o, "/bin/true"), 0);
	cr_assert_eq(o.nr, 3);
	cr_expect_str_eq(op_path(&o, 0), lib);
	cr_expect_str_eq(op_path(&o, 1), lib);
	cr_expect_str_eq(op_path(&o, 2), "/bin/true");
	cr_expect_eq(o.str_len, sizeof(lib) + sizeof("/bin/true"));
	ops_free(&o);
}

Test(ops, long_and_many_paths_grow_the_strings)
{
	static char path[3000];
	struct ops o = { 0 };
	char want[64];
	size_t i;

	memset(path, 'p', sizeof(path) - 1);
	path[0] = '/';
	/* longer than the first string allocation on its own */
	for (i = 0; i < 5; i++) {
		cr_assert_eq(ops_add(&o, RST_OP_MAP, BASE + i * PG, PG), 0);
		path[1] = 'a' + i;
		cr_assert_eq(ops_set_path(&o, path), 0);
	}
	for (i = 0; i < 500; i++) {
		snprintf(want, sizeof(want), "/img/%zu/pages-1.img", i);
		cr_assert_eq(ops_add_read(&o, RST_OP_READ, BASE + (10 + i) * PG, PG, want, 0), 0);
	}
	for (i = 0; i < 5; i++) {
		path[1] = 'a' + i;
		cr_assert_str_eq(op_path(&o, i), path);
	}
	for (i = 0; i < 500; i++) {
		snprintf(want, sizeof(want), "/img/%zu/pages-1.img", i);
		cr_assert_str_eq(op_path(&o, 5 + i), want);
	}
	ops_free(&o);
}

/* Every op's path in a payload placed at @addr: inside the string area, as expected. */
static void check_payload(const struct ops *o, const uint8_t *buf, size_t size, uint64_t addr,
			  const struct rst_op *want, const char *const *want_path)
{
	const struct rst_op *op = (const struct rst_op *)buf;
	uint64_t str_addr = addr + o->nr * sizeof(*op);
	size_t i;

	for (i = 0; i < o->nr; i++) {
		cr_expect_eq(op[i].type, want[i].type, "op %zu", i);
		cr_expect_eq(op[i].addr, want[i].addr, "op %zu", i);
		cr_expect_eq(op[i].len, want[i].len, "op %zu", i);
		cr_expect_eq(op[i].off, want[i].off, "op %zu", i);
		cr_expect_eq(op[i].prot, want[i].prot, "op %zu", i);
		if (!want_path[i]) {
			cr_expect_eq(op[i].path, 0, "op %zu has a path", i);
			continue;
		}
		cr_assert_geq(op[i].path, str_addr, "op %zu: path before the strings", i);
		cr_assert_lt(op[i].path, addr + size, "op %zu: path past the payload", i);
		cr_assert_leq(strlen(want_path[i]) + 1, addr + size - op[i].path);
		cr_expect_str_eq((const char *)buf + (op[i].path - addr), want_path[i], "op %zu",
				 i);
	}
}

Test(ops, payload_places_strings_after_the_ops)
{
	static const char lib[] = "/usr/lib/libfoo.so";
	static const char pages[] = "/img/7/pages-9.img";
	static const char *const want_path[] = { lib, pages, pages, NULL, pages, lib };
	const uint64_t addr = 0x7ffff7a00000ULL;
	struct rst_op want[6];
	const struct rst_op *op;
	struct ops o = { 0 };
	uint8_t *buf, *buf2;
	size_t size;

	cr_assert_eq(ops_add(&o, RST_OP_MAP, BASE, 16 * PG), 0);
	o.op[0].prot = 5;
	o.op[0].off = 3 * PG;
	cr_assert_eq(ops_set_path(&o, lib), 0);
	cr_assert_eq(ops_add_read(&o, RST_OP_READ, BASE + 16 * PG, 2 * PG, pages, 0), 0);
	cr_assert_eq(ops_add_read(&o, RST_OP_READ, BASE + 18 * PG, PG, pages, 5 * PG), 0);
	cr_assert_eq(ops_add(&o, RST_OP_DISCARD, BASE + 19 * PG, PG), 0);
	cr_assert_eq(ops_add_read(&o, RST_OP_READ, BASE + 20 * PG, PG, pages, 7 * PG), 0);
	cr_assert_eq(ops_add(&o, RST_OP_MAP, BASE + 21 * PG, PG), 0);
	cr_assert_eq(ops_set_path(&o, lib), 0);
	cr_assert_eq(o.nr, 6);
	/* the two consecutive reads share one copy of the path */
	cr_expect_eq(o.op[1].path, o.op[2].path);
	memcpy(want, o.op, sizeof(want));

	size = ops_payload_size(&o);
	cr_assert_eq(size, o.nr * sizeof(struct rst_op) + o.str_len);
	buf = malloc(size);
	buf2 = malloc(size);
	cr_assert(buf && buf2);
	memset(buf, 0xcc, size);
	ops_to_payload(&o, buf, addr);
	check_payload(&o, buf, size, addr, want, want_path);
	op = (const struct rst_op *)buf;
	cr_expect_eq(op[1].path, op[2].path, "a repeated path is one string");
	cr_expect_eq(op[1].path, addr + o.nr * sizeof(*op) + o.op[1].path - 1);
	/* the list itself keeps its offsets: a second payload elsewhere is right too */
	cr_expect_eq(memcmp(o.op, want, sizeof(want)), 0);
	ops_to_payload(&o, buf2, 0x1000);
	check_payload(&o, buf2, size, 0x1000, want, want_path);
	free(buf);
	free(buf2);
	ops_free(&o);
}

/* process.c sends the ops in slices, each followed by the whole string table. */
Test(ops, payload_of_a_slice)
{
	struct ops o = { 0 }, part;
	const char *want_path[40];
	struct rst_op want[40];
	char paths[40][32];
	const uint64_t addr = 0x500000;
	uint8_t *buf;
	size_t i, first;

	for (i = 0; i < 40; i++) {
		snprintf(paths[i], sizeof(paths[i]), "/img/%zu/pages-1.img", i / 3);
		cr_assert_eq(ops_add_read(&o, RST_OP_READ, BASE + 2 * i * PG, PG, paths[i], i * PG), 0);
	}
	cr_assert_eq(o.nr, 40);
	buf = malloc(ops_payload_size(&o));
	cr_assert_not_null(buf);
	for (first = 0; first < o.nr; first += 7) {
		part = o;
		part.op = o.op + first;
		part.nr = o.nr - first < 7 ? o.nr - first : 7;
		for (i = 0; i < part.nr; i++) {
			want[i] = part.op[i];
			want_path[i] = paths[first + i];
		}
		cr_assert_leq(ops_payload_size(&part), ops_payload_size(&o));
		ops_to_payload(&part, buf, addr);
		check_payload(&part, buf, ops_payload_size(&part), addr, want, want_path);
	}
	free(buf);
	ops_free(&o);
}

/* ---- what a forked child keeps of its parent's memory ---- */

static VmaEntry *vma(uint64_t start, uint64_t end, VmaKind kind, uint32_t flags)
{
	VmaEntry *v = calloc(1, sizeof(*v));

	cr_assert_not_null(v);
	*v = (VmaEntry)VMA_ENTRY__INIT;
	v->start = start;
	v->end = end;
	v->kind = kind;
	v->flags = flags;
	return v;
}

static void mm_free_vmas(MmEntry *mm)
{
	size_t i;

	for (i = 0; i < mm->n_vmas; i++)
		free(mm->vmas[i]);
}

Test(inherit, whole_child_vmas_within_one_parent_vma)
{
	const uint32_t anon = 0x22, shared = 0x21, other = 0x122;	/* PRIVATE|ANON, SHARED|ANON */
	VmaEntry *pv[] = {
		vma(0x10000, 0x90000, VMA_KIND__VMA_ANON, anon),
		vma(0x100000, 0x120000, VMA_KIND__VMA_HEAP, anon),
		vma(0x200000, 0x210000, VMA_KIND__VMA_ANON, shared),
		vma(0x300000, 0x310000, VMA_KIND__VMA_FILE, 0x2),
	};
	VmaEntry *cv[] = {
		vma(0x10000, 0x30000, VMA_KIND__VMA_ANON, anon),	/* kept: a shrunk piece */
		vma(0x30000, 0x40000, VMA_KIND__VMA_ANON, other),	/* other flags */
		vma(0x40000, 0x50000, VMA_KIND__VMA_ANON, anon),	/* kept: remapped inside */
		vma(0x80000, 0xa0000, VMA_KIND__VMA_ANON, anon),	/* reaches past the parent's */
		vma(0x100000, 0x130000, VMA_KIND__VMA_HEAP, anon),	/* grown heap: fresh */
		vma(0x200000, 0x210000, VMA_KIND__VMA_ANON, anon),	/* parent's is shared */
		vma(0x300000, 0x308000, VMA_KIND__VMA_ANON, anon),	/* parent's is a file */
		vma(0x400000, 0x410000, VMA_KIND__VMA_ANON, anon),	/* nothing there */
	};
	MmEntry p = MM_ENTRY__INIT, c = MM_ENTRY__INIT;
	struct ranges out;

	p.vmas = pv;
	p.n_vmas = ARRAY_SIZE(pv);
	c.vmas = cv;
	c.n_vmas = ARRAY_SIZE(cv);
	cr_assert_eq(inherit_ranges(&p, &c, &out), 0);
	cr_assert_eq(out.nr, 2);
	cr_expect_eq(out.r[0].start, 0x10000);
	cr_expect_eq(out.r[0].end, 0x30000);
	cr_expect_eq(out.r[1].start, 0x40000);
	cr_expect_eq(out.r[1].end, 0x50000);
	ranges_free(&out);
	/* no parent memory: nothing kept */
	p.n_vmas = 0;
	cr_assert_eq(inherit_ranges(&p, &c, &out), 0);
	cr_expect_eq(out.nr, 0);
	ranges_free(&out);
	p.n_vmas = ARRAY_SIZE(pv);
	mm_free_vmas(&p);
	mm_free_vmas(&c);
}

/* ---- the final layout's advice, guards and locks (ops_final_layout) ---- */

/*
 * One shared file VMA: it is mapped but never filled, so no stack view is
 * needed; what comes after its map is what these tests look at.
 */
static int layout_one(VmaEntry *v, MmEntry *mm, struct ops *o)
{
	static VmaEntry *vp[1];

	v->start = BASE;
	v->end = BASE + 4 * PG;
	v->prot = PROT_READ;
	v->flags = MAP_SHARED;
	v->kind = VMA_KIND__VMA_FILE;
	v->path = "/dev/null";
	vp[0] = v;
	mm->vmas = vp;
	mm->n_vmas = 1;
	memset(o, 0, sizeof(*o));
	return ops_final_layout(o, NULL, 1, mm, NULL);
}

Test(layout, advice_guards_locks_in_order)
{
	VmaEntry v = VMA_ENTRY__INIT;
	MmEntry mm = MM_ENTRY__INIT;
	uint64_t guards[] = { BASE + PG, BASE + 2 * PG, BASE + 3 * PG, BASE + 4 * PG };
	struct ops o;

	v.has_advice = 1;
	v.advice = VMA_ADVICE__VMA_ADVICE_DONTFORK | VMA_ADVICE__VMA_ADVICE_MLOCK |
		   VMA_ADVICE__VMA_ADVICE_MLOCK_ONFAULT;
	v.guards = guards;
	v.n_guards = 4;
	mm.has_ksm_merge_any = mm.ksm_merge_any = 1;
	mm.has_mlockall = 1;
	mm.mlockall = MCL_FUTURE | MCL_ONFAULT;
	if (access("/sys/kernel/mm/ksm", F_OK))
		cr_skip_test("no KSM on this kernel: the layout refuses merge_any");
	cr_assert_eq(layout_one(&v, &mm, &o), 0);
	cr_assert_eq(o.nr, 9);
	cr_assert_eq(o.op[0].type, RST_OP_MAP);
	cr_assert_eq(o.op[1].type, RST_OP_MERGE_ANY);
	cr_assert_eq(o.op[2].type, RST_OP_PROTECT);
	cr_assert_eq(o.op[3].type, RST_OP_ADVISE);
	cr_assert_eq(o.op[3].flags, MADV_DONTFORK);
	/* not mergeable in a merge-any process: made unmergeable again */
	cr_assert_eq(o.op[4].type, RST_OP_ADVISE);
	cr_assert_eq(o.op[4].flags, MADV_UNMERGEABLE);
	cr_assert_eq(o.op[5].flags, MADV_GUARD_INSTALL);
	cr_assert_eq(o.op[5].addr, BASE + PG);
	cr_assert_eq(o.op[5].len, PG);
	cr_assert_eq(o.op[6].flags, MADV_GUARD_INSTALL);
	cr_assert_eq(o.op[6].addr, BASE + 3 * PG);
	/* locked after its guards, over the whole VMA */
	cr_assert_eq(o.op[7].type, RST_OP_LOCK);
	cr_assert_eq(o.op[7].flags, MLOCK_ONFAULT);
	cr_assert_eq(o.op[7].len, 4 * PG);
	cr_assert_eq(o.op[8].type, RST_OP_MLOCKALL);
	cr_assert_eq(o.op[8].flags, MCL_FUTURE | MCL_ONFAULT);
	ops_free(&o);
}

/* A VMA attaching a SysV segment (RST_OP_SHMAT) is the whole segment, page-rounded, or refused. */
Test(layout, sysv_attach_is_the_whole_segment)
{
	static const struct {
		uint64_t pages;
		int ret;
	} cases[] = { { 4, 0 }, { 2, -EINVAL }, { 5, -EINVAL }, { 1, -EINVAL } };
	struct shm_slot slot = { .id = 3, .fd = -1, .sysv = 77, .size = 3 * PG + 5 };
	struct shm_table t = { .v = &slot, .nr = 1, .cap = 1 };
	VmaEntry v = VMA_ENTRY__INIT, *vp[1] = { &v };
	MmEntry mm = MM_ENTRY__INIT;
	struct ops o;
	size_t i;

	v.start = BASE;
	v.prot = PROT_READ | PROT_WRITE;
	v.flags = MAP_SHARED;
	v.kind = VMA_KIND__VMA_FILE;
	v.has_shmid = v.has_open_flags = 1;
	v.shmid = 3;
	v.open_flags = O_RDWR;
	mm.vmas = vp;
	mm.n_vmas = 1;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		v.end = BASE + cases[i].pages * PG;
		memset(&o, 0, sizeof(o));
		cr_expect_eq(ops_final_layout(&o, NULL, 1, &mm, &t), cases[i].ret,
			     "a VMA of %llu pages over a segment of 4", (unsigned long long)cases[i].pages);
		if (!cases[i].ret) {
			cr_assert_geq(o.nr, 1);
			cr_expect_eq(o.op[0].type, RST_OP_SHMAT);
			cr_expect_eq(o.op[0].off, 77);
			cr_expect_eq(o.op[0].len, 4 * PG);
		}
		ops_free(&o);
	}
}

Test(layout, hostile_guards_locks_and_advice_rejected)
{
	static const struct {
		uint64_t g[2];
		size_t n;
	} bad_guards[] = {
		{ { BASE, BASE + PG }, 1 },			/* odd count */
		{ { BASE + PG, BASE + PG }, 2 },		/* empty */
		{ { BASE + 2 * PG, BASE + PG }, 2 },		/* backwards */
		{ { BASE - PG, BASE + PG }, 2 },		/* before the VMA */
		{ { BASE + 3 * PG, BASE + 5 * PG }, 2 },	/* past its end */
		{ { BASE + 1, BASE + PG }, 2 },			/* not page-aligned */
	};
	VmaEntry v;
	MmEntry mm;
	struct ops o;
	size_t i;

	for (i = 0; i < sizeof(bad_guards) / sizeof(bad_guards[0]); i++) {
		uint64_t g[2] = { bad_guards[i].g[0], bad_guards[i].g[1] };

		vma_entry__init(&v);
		mm_entry__init(&mm);
		v.guards = g;
		v.n_guards = bad_guards[i].n;
		cr_assert_eq(layout_one(&v, &mm, &o), -EINVAL, "guards case %zu", i);
		ops_free(&o);
	}
	/* MLOCK_ONFAULT alone, an unknown advice bit */
	vma_entry__init(&v);
	mm_entry__init(&mm);
	v.has_advice = 1;
	v.advice = VMA_ADVICE__VMA_ADVICE_MLOCK_ONFAULT;
	cr_assert_eq(layout_one(&v, &mm, &o), -EINVAL);
	ops_free(&o);
	v.advice = 1u << 20;
	cr_assert_eq(layout_one(&v, &mm, &o), -EINVAL);
	ops_free(&o);
	/* mlockall: MCL_CURRENT, or no MCL_FUTURE, is not what a dump writes */
	vma_entry__init(&v);
	mm.has_mlockall = 1;
	mm.mlockall = MCL_CURRENT | MCL_FUTURE;
	cr_assert_eq(layout_one(&v, &mm, &o), -EINVAL);
	ops_free(&o);
	mm.mlockall = MCL_ONFAULT;
	cr_assert_eq(layout_one(&v, &mm, &o), -EINVAL);
	ops_free(&o);
}
