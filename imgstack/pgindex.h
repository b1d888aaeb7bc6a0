/* SPDX-License-Identifier: MIT */
/*
 * Page index: per pid, which round of an image stack holds each page, as
 * sorted extents. Used by both sides of imgstack/ (view, writer).
 */
#ifndef FERRY_PGINDEX_H
#define FERRY_PGINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

/*
 * A REMOTE run (post-copy, PE_REMOTE): its data is still at the source, in
 * no round. Its file_off is its address, so that runs that touch merge.
 */
#define PG_ROUND_REMOTE	UINT32_MAX

/* Where a run of pages lives: round 0 means zero pages (no data). */
struct pg_extent {
	uint64_t vaddr;
	uint64_t nr_pages;
	uint32_t round;
	uint64_t file_off;	/* offset in that round's pages-<pid>.img */
};

/* First byte past the run (PAGE_SIZE pages). */
static inline uint64_t pg_ext_end(const struct pg_extent *e)
{
	return e->vaddr + e->nr_pages * PAGE_SIZE;
}

/* @b carries on where @a ends: same round, next page, next file offset (zero runs: any). */
static inline bool pg_ext_continues(const struct pg_extent *a, const struct pg_extent *b)
{
	if (a->round != b->round || pg_ext_end(a) != b->vaddr)
		return false;
	return !a->round || a->file_off + a->nr_pages * PAGE_SIZE == b->file_off;
}

/* The part of @e inside [start, end) (they must overlap) in @out. */
static inline void pg_ext_clip(const struct pg_extent *e, uint64_t start, uint64_t end,
			       struct pg_extent *out)
{
	uint64_t s = e->vaddr > start ? e->vaddr : start;
	uint64_t x = pg_ext_end(e) < end ? pg_ext_end(e) : end;

	*out = *e;
	out->vaddr = s;
	out->nr_pages = (x - s) / PAGE_SIZE;
	if (e->round)
		out->file_off += s - e->vaddr;
}

struct pg_index {
	uint32_t pid;
	struct pg_extent *ext;	/* sorted by vaddr, not overlapping, adjacent runs merged */
	size_t nr, cap;
};

/* Called for every byte range of an older round's pages file a newer extent replaces. */
typedef int (*pg_punch_fn)(void *arg, uint32_t pid, uint32_t round, uint64_t file_off, uint64_t len);

/*
 * Overlay sorted, non-overlapping extents @upd onto @idx (newer wins). For
 * each replaced piece that held data (round != 0), @punch is called (may be NULL).
 */
int pg_index_apply(struct pg_index *idx, const struct pg_extent *upd, size_t nr_upd,
		   pg_punch_fn punch, void *arg);
/*
 * Same overlay, but into a new index @out (pid copied), @old untouched: lets a
 * round build its index before it is durable. On error nothing is kept.
 */
int pg_index_overlay(const struct pg_index *old, const struct pg_extent *upd, size_t nr_upd,
		     pg_punch_fn punch, void *arg, struct pg_index *out);
/*
 * What pg_index_overlay(@idx, @upd) would report to @punch, without building
 * the new index: a binary search and a step per replaced piece for each
 * update, O(nr_upd log n + pieces).
 */
int pg_index_replaced(const struct pg_index *idx, const struct pg_extent *upd, size_t nr_upd,
		      pg_punch_fn punch, void *arg);
/*
 * The pages sorted, disjoint extents @e cover, as zero runs with the adjacent
 * ones joined, into @out (emptied first; its pid is left as it is).
 */
int pg_index_cover(const struct pg_extent *e, size_t nr, struct pg_index *out);
/* Position of the first extent ending above @vaddr (idx->nr: none): O(log n). */
size_t pg_index_lower(const struct pg_index *idx, uint64_t vaddr);
/* Find the extent covering vaddr, or NULL. */
const struct pg_extent *pg_index_find(const struct pg_index *idx, uint64_t vaddr);
void pg_index_free(struct pg_index *idx);
/* A run of pages as a walk reports it (clipped to the range asked). */
typedef int (*pg_walk_fn)(void *arg, const struct pg_extent *e);
/*
 * @fn for every extent piece inside [start, end) (page aligned), in address order; stops
 * at its first non-zero return. O(log n + pieces).
 */
int pg_index_walk(const struct pg_index *idx, uint64_t start, uint64_t end, pg_walk_fn fn,
		  void *arg);
/* Append @e (no merging): 0 or -ENOMEM. */
int pg_index_push(struct pg_index *v, const struct pg_extent *e);
/* qsort comparison of extents by vaddr. */
int pg_ext_cmp_vaddr(const void *a, const void *b);
/*
 * Index of @pid in an array sorted by pid whose elements (of @size) start
 * with their uint32_t pid (struct pg_index does), or the slot to insert it at.
 */
size_t pg_pid_slot(const void *arr, size_t nr, size_t size, uint32_t pid, bool *found);

#endif
