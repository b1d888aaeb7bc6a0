// SPDX-License-Identifier: MIT
/*
 * The dirty scan's range collection (source-agent/dirty.c) on this very
 * process: a mapping with more PAGEMAP_SCAN regions than the kernel's batch
 * of 512 (and as many as, and more than, our vector of 4096) must come back
 * as sorted, disjoint ranges that say exactly which pages hold data, with
 * each backend. Round 1 of a scattered heap once reported the tail of such
 * a VMA twice (the kernel's walk_end, see scan_next in dirty.c).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/util.h"
#include "source-agent/dirty.h"
#include "source-agent/proc.h"

/* A private anonymous VMA of @npages, between two PROT_NONE guards (no merging). */
struct area {
	uint8_t *p;
	size_t npages;
	bool *data;	/* page i was written */
};

static void area_make(struct area *a, size_t npages, size_t period, size_t written)
{
	size_t i;

	a->npages = npages;
	a->p = mmap(NULL, (npages + 2) * PAGE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(a->p, MAP_FAILED);
	a->p += PAGE_SIZE;
	cr_assert_eq(mprotect(a->p, npages * PAGE_SIZE, PROT_READ | PROT_WRITE), 0);
	a->data = calloc(npages, sizeof(*a->data));
	cr_assert_not_null(a->data);
	/* runs of @written data pages, then holes: two regions per period */
	for (i = 0; i < npages; i++) {
		if (i % period < written) {
			a->p[i * PAGE_SIZE] = 1;
			a->data[i] = true;
		}
	}
}

static void area_free(struct area *a)
{
	munmap(a->p - PAGE_SIZE, (a->npages + 2) * PAGE_SIZE);
	free(a->data);
}

/* Our VMA list cut down to the area's VMA. */
static void area_vmas(const struct area *a, struct vma_list *vl)
{
	struct vma_list all;
	size_t i;

	cr_assert_eq(proc_read_vmas(getpid(), &all), 0);
	memset(vl, 0, sizeof(*vl));
	vl->v = calloc(1, sizeof(*vl->v));
	cr_assert_not_null(vl->v);
	for (i = 0; i < all.nr; i++)
		if (all.v[i].start == (uint64_t)a->p)
			vl->v[vl->nr++] = all.v[i];
	vma_list_free(&all);
	cr_assert_eq(vl->nr, 1, "the area is not one VMA of its own");
	cr_assert_eq(vl->v[0].end, (uint64_t)a->p + a->npages * PAGE_SIZE);
}

/*
 * @ds is sorted and disjoint, inside the area, and its data ranges are
 * exactly the pages @want says (holes, if reported, as zero).
 */
static void check_set(const struct area *a, const struct dirty_set *ds, const bool *want)
{
	uint64_t base = (uint64_t)a->p, prev = base, pages = 0, data = 0, addr;
	size_t i;

	for (i = 0; i < ds->nr; i++) {
		const struct dirty_range *r = &ds->r[i];

		cr_assert_geq(r->start, prev, "range %zu at page %llu overlaps the one before", i,
			      (unsigned long long)((r->start - base) / PAGE_SIZE));
		cr_assert_lt(r->start, r->end);
		cr_assert_leq(r->end, base + a->npages * PAGE_SIZE);
		for (addr = r->start; addr < r->end; addr += PAGE_SIZE)
			cr_assert_eq(want[(addr - base) / PAGE_SIZE], !r->zero,
				     "page %llu reported as %s",
				     (unsigned long long)((addr - base) / PAGE_SIZE),
				     r->zero ? "zero" : "data");
		pages += (r->end - r->start) / PAGE_SIZE;
		if (!r->zero)
			data += (r->end - r->start) / PAGE_SIZE;
		prev = r->end;
	}
	for (i = 0; i < a->npages; i++)
		data -= want[i];
	cr_assert_eq(data, 0, "data pages reported and written differ by %lld", (long long)data);
	cr_assert_eq(ds->pages_data + ds->pages_zero, pages);
}

static void tracker_open(struct dirty_tracker *dt, enum dirty_backend b)
{
	cr_assert_eq(dirty_open(dt, getpid(), NULL, DIRTY_NONE), 0);
	dt->backend = b;
	if (b != DIRTY_UFFD_WP)
		return;
	/* what the parasite makes in a target, made here in ourselves */
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED,
	};

	dt->uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (dt->uffd < 0 || ioctl(dt->uffd, UFFDIO_API, &api)) {
		dirty_close(dt);
		cr_skip_test("no userfaultfd with write-protect async here");
	}
}

/* One fresh scan of an area of @npages in runs of @written per @period. */
static void fresh_scan(enum dirty_backend b, size_t npages, size_t period, size_t written)
{
	struct dirty_tracker dt;
	struct dirty_set ds;
	struct vma_list vl;
	struct area a;

	area_make(&a, npages, period, written);
	area_vmas(&a, &vl);
	tracker_open(&dt, b);
	cr_assert_eq(dirty_scan(&dt, &vl, &ds), 0);
	check_set(&a, &ds, a.data);
	dirty_set_free(&ds);
	dirty_close(&dt);
	vma_list_free(&vl);
	area_free(&a);
}

/* 700 regions: more than a kernel batch (512), fewer than our vector (4096). */
Test(dirty, fresh_over_a_batch)
{
	fresh_scan(DIRTY_NONE, 1400, 2, 1);
	fresh_scan(DIRTY_SOFT_DIRTY, 1400, 2, 1);
	fresh_scan(DIRTY_UFFD_WP, 700, 2, 1);	/* holes are regions of their own here */
}

/* Exactly a full vector, and more than one. */
Test(dirty, fresh_full_vector)
{
	fresh_scan(DIRTY_NONE, 8192, 2, 1);
	fresh_scan(DIRTY_NONE, 8192 + 6, 2, 1);
	fresh_scan(DIRTY_NONE, 30000, 3, 2);
	fresh_scan(DIRTY_UFFD_WP, 4096, 2, 1);
	fresh_scan(DIRTY_UFFD_WP, 4096 + 3, 2, 1);
	fresh_scan(DIRTY_UFFD_WP, 20000, 5, 2);
}

/*
 * Scan @dt's area once, write every third page, scan again: the second scan
 * must report what was written (and, resending everything, what was there).
 */
static void second_round(struct dirty_tracker *dt, struct area *a)
{
	struct dirty_set ds;
	struct vma_list vl;
	bool *want;
	size_t i;

	area_vmas(a, &vl);
	cr_assert_eq(dirty_scan(dt, &vl, &ds), 0);
	dirty_set_free(&ds);
	want = calloc(a->npages, sizeof(*want));
	cr_assert_not_null(want);
	for (i = 0; i < a->npages; i++) {
		if (i % 3 == 0)
			a->p[i * PAGE_SIZE] = 2;
		want[i] = i % 3 == 0 || (dt->backend == DIRTY_NONE && a->data[i]);
	}
	cr_assert_eq(dirty_scan(dt, &vl, &ds), 0);
	check_set(a, &ds, want);
	dirty_set_free(&ds);
	free(want);
	vma_list_free(&vl);
}

/* With uffd-wp, a second scan reports exactly what was written since, once. */
Test(dirty, uffd_second_round)
{
	struct dirty_tracker dt;
	struct area a;

	area_make(&a, 6000, 2, 1);
	tracker_open(&dt, DIRTY_UFFD_WP);
	second_round(&dt, &a);
	dirty_close(&dt);
	area_free(&a);
}

/*
 * Whatever backend dirty_open settles on for soft-dirty (none, on a kernel
 * without the bits), a second scan reports every page written since.
 */
Test(dirty, soft_dirty_second_round)
{
	struct dirty_tracker dt;
	struct area a;

	area_make(&a, 3000, 2, 1);
	cr_assert_eq(dirty_open(&dt, getpid(), NULL, DIRTY_SOFT_DIRTY), 0);
	second_round(&dt, &a);
	dirty_close(&dt);
	area_free(&a);
}
