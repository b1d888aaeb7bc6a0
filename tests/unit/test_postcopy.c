// SPDX-License-Identifier: MIT
/*
 * Post-copy at the source (source-agent/postcopy.c): which memory may stay
 * REMOTE, the set of REMOTE runs, what a page request may read (only those
 * runs, whatever the page server asks), and the push order.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "source-agent/postcopy.h"
#include "transport/frame.h"

#define PG PAGE_SIZE

Test(postcopy, which_memory_stays_remote)
{
	static const struct { uint32_t kind; bool shared; uint32_t vmflags; bool ok; } t[] = {
		{ VMA_KIND__VMA_ANON, false, 0, true },
		{ VMA_KIND__VMA_HEAP, false, 0, true },
		{ VMA_KIND__VMA_ANON, false, VMF_HUGEPAGE | VMF_DONTFORK, true },
		{ VMA_KIND__VMA_STACK, false, 0, false },	/* not registered at the destination */
		{ VMA_KIND__VMA_FILE, false, 0, false },
		{ VMA_KIND__VMA_MEMFD, false, 0, false },
		{ VMA_KIND__VMA_ANON, true, 0, false },		/* shared anonymous memory */
		{ VMA_KIND__VMA_ANON, false, VMF_DROPPABLE, false },
		{ VMA_KIND__VMA_ANON, false, VMF_LOCKED, false },	/* mlock would fault it all in */
		{ VMA_KIND__VMA_HEAP, false, VMF_LOCKONFAULT, false },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct vma v = { .start = 0x10000, .end = 0x20000, .kind = t[i].kind,
				 .shared = t[i].shared, .vmflags = t[i].vmflags };

		cr_expect_eq(pc_vma_ok(&v), t[i].ok, "case %zu", i);
	}
}

Test(postcopy, runs_merge_in_order_only)
{
	struct pc_set set = { 0 };

	cr_assert_eq(pc_set_add(&set, 7, 0x10000, 0x12000), 0);
	cr_assert_eq(pc_set_add(&set, 7, 0x12000, 0x13000), 0);	/* touches: merged */
	cr_assert_eq(pc_set_add(&set, 7, 0x20000, 0x21000), 0);
	cr_assert_eq(pc_set_add(&set, 9, 0x10000, 0x11000), 0);	/* another pid */
	cr_assert_eq(pc_set_add(&set, 7, 0x20000, 0x20000), 0);	/* empty: nothing */
	cr_assert_eq(pc_set_add(&set, 7, 0x18000, 0x19000), -EINVAL, "out of address order");
	cr_assert_eq(pc_set_add(&set, 7, 0x20800, 0x22000), -EINVAL, "overlapping");
	cr_assert_eq(set.nr, 2);
	cr_assert_eq(set.p[0].nr, 2);
	cr_assert_eq(set.p[0].r[0].start, 0x10000);
	cr_assert_eq(set.p[0].r[0].end, 0x13000);
	cr_assert_eq(set.pages, 3 + 1 + 1);
	pc_set_free(&set);
	cr_assert_null(set.p);
}

/* A page request reads REMOTE pages of ours only: whatever else is asked is a protocol error. */
Test(postcopy, requests_read_remote_pages_only)
{
	size_t len = 8 * PG;
	uint8_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint8_t buf[4 * PG];
	uint64_t a = (uint64_t)mem;
	struct pc_set set = { 0 };
	pid_t me = getpid();
	size_t i;

	cr_assert_neq(mem, MAP_FAILED);
	for (i = 0; i < len; i++)
		mem[i] = i / PG + 1;
	cr_assert_eq(pc_set_add(&set, me, a + PG, a + 4 * PG), 0);
	cr_assert_eq(pc_set_add(&set, me, a + 6 * PG, a + 7 * PG), 0);
	pc_set_source(&set);

	cr_assert_eq(set.src.read(set.src.arg, me, a + PG, 3, buf), 0);
	cr_assert_eq(buf[0], 2);
	cr_assert_eq(buf[2 * PG + 5], 4);
	cr_assert_eq(set.src.read(set.src.arg, me, a + 6 * PG, 1, buf), 0);
	cr_assert_eq(buf[PG - 1], 7);
	/* not REMOTE: before, after, across a gap, another pid, no pages, wrapping */
	cr_assert_eq(set.src.read(set.src.arg, me, a, 1, buf), -EPROTO);
	cr_assert_eq(set.src.read(set.src.arg, me, a + 3 * PG, 2, buf), -EPROTO);
	cr_assert_eq(set.src.read(set.src.arg, me, a + 4 * PG, 1, buf), -EPROTO);
	cr_assert_eq(set.src.read(set.src.arg, me, a + 2 * PG, 4, buf), -EPROTO);
	cr_assert_eq(set.src.read(set.src.arg, me + 1, a + PG, 1, buf), -EPROTO);
	cr_assert_eq(set.src.read(set.src.arg, me, a + PG, 0, buf), -EPROTO);
	cr_assert_eq(set.src.read(set.src.arg, me, UINT64_MAX & ~(uint64_t)(PG - 1), 2, buf),
		     -EPROTO);
	pc_set_free(&set);
	munmap(mem, len);
}

/* Every REMOTE page is pushed once, in address order, in batches of at most 256 pages. */
Test(postcopy, push_walks_every_run_once)
{
	struct pc_set set = { 0 };
	uint64_t vaddr, seen = 0, last_end = 0;
	uint32_t pid, nr, last_pid = 0;
	int ret, batches = 0;

	cr_assert_eq(pc_set_add(&set, 5, 0x100000, 0x100000 + 600 * PG), 0);
	cr_assert_eq(pc_set_add(&set, 5, 0x900000, 0x900000 + PG), 0);
	cr_assert_eq(pc_set_add(&set, 6, 0x200000, 0x200000 + 3 * PG), 0);
	pc_set_source(&set);
	while ((ret = set.src.next(set.src.arg, &pid, &vaddr, &nr)) == 1) {
		cr_assert(nr >= 1 && nr <= PB_MAX_PAGES);
		if (pid == last_pid)
			cr_assert_geq(vaddr, last_end, "in address order");
		last_pid = pid;
		last_end = vaddr + nr * PG;
		seen += nr;
		batches++;
	}
	cr_assert_eq(ret, 0);
	cr_assert_eq(seen, set.pages);
	cr_assert_eq(batches, 3 + 1 + 1);	/* 256 + 256 + 88, 1, 3 */
	cr_assert_eq(set.src.next(set.src.arg, &pid, &vaddr, &nr), 0, "done stays done");
	pc_set_free(&set);
}
