/* SPDX-License-Identifier: MIT */
/*
 * Dirty memory tracking, three backends chosen at run time:
 *  - uffd-wp: userfaultfd write-protect in async mode + PAGEMAP_SCAN
 *    (PAGE_IS_WRITTEN, PM_SCAN_WP_MATCHING: read and re-protect in one call);
 *  - soft-dirty: PAGE_IS_SOFT_DIRTY + clear_refs 4, where the kernel has it;
 *  - none: every round sends every present page again.
 * A scan runs with the target stopped; its result is the list of ranges to
 * copy (the copy may run with the target running: what it writes meanwhile
 * is caught by the next scan).
 */
#ifndef FERRY_DIRTY_H
#define FERRY_DIRTY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "source-agent/proc.h"

enum dirty_backend { DIRTY_UFFD_WP, DIRTY_SOFT_DIRTY, DIRTY_NONE };

struct parasite_ctl;

/* A run of pages to send: data (copy from the target) or zero (address only). */
struct dirty_range {
	uint64_t start, end;
	bool zero;
};

struct dirty_set {
	struct dirty_range *r;
	size_t nr, cap;
	uint64_t pages_data, pages_zero;
};

struct dirty_tracker {
	pid_t pid;
	enum dirty_backend backend;
	int uffd;
	int pagemap_fd;
	bool armed;
	struct vma_list known;		/* dumpable VMAs as of the last scan */
	struct vma_list untracked;	/* of those, what uffd-wp cannot register: sent whole */
	uint64_t scan_pages;		/* pages covered by the last scan */
};

const char *dirty_backend_name(enum dirty_backend b);
/* Probe what this kernel offers (for `check`), without a target. */
int dirty_probe(bool *uffd_wp_async, bool *pagemap_scan, bool *soft_dirty);

/* @ctl: an infected target, needed to create the userfaultfd (uffd-wp backend). */
int dirty_open(struct dirty_tracker *dt, pid_t pid, struct parasite_ctl *ctl,
	       enum dirty_backend want);
/* Target stopped: register new VMAs, collect what changed since the last scan. */
int dirty_scan(struct dirty_tracker *dt, const struct vma_list *vl, struct dirty_set *ds);
/*
 * Add the anonymous pages that are not in memory as zero runs (pages the
 * target dropped are zero now), where the backend does not report them
 * itself (all but uffd-wp). Needs no stopped target: a page that comes back
 * after this scan is written, so the next scan sends it.
 */
int dirty_scan_holes(struct dirty_tracker *dt, const struct vma_list *vl, struct dirty_set *ds);
/* Append a run (merged with the last one when they touch and agree). */
int dirty_set_add(struct dirty_set *ds, uint64_t start, uint64_t end, bool zero);
/* PAGE_IS_GUARD where PAGEMAP_SCAN knows it (6.14 on), else 0. */
uint64_t pagemap_guard_bit(void);
/* The guard regions (MADV_GUARD_INSTALL) of @v, into @ds (as zero runs). */
int dirty_scan_guards(int pagemap_fd, const struct vma *v, struct dirty_set *ds);
void dirty_set_free(struct dirty_set *ds);
void dirty_close(struct dirty_tracker *dt);

#endif
