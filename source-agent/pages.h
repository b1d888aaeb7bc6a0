/* SPDX-License-Identifier: MIT */
#ifndef FERRY_PAGES_H
#define FERRY_PAGES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "source-agent/dirty.h"
#include "transport/sink.h"

struct copy_stats {
	uint64_t pages_data;	/* pages sent with data */
	uint64_t pages_zero;	/* sent as addresses only */
	uint64_t pages_gone;	/* unmapped by the target meanwhile (sent as zero) */
	uint64_t pages_remote;	/* post-copy: left at the source (REMOTE) */
};

struct pc_set;
struct vma_list;

/*
 * Read every range of @ds from @pid's memory and hand it to @sink. Pages
 * that turn out all-zero go as addresses only. PROT_NONE pages are read
 * through /proc/PID/mem. @frozen: the final round, where a page that
 * cannot be read is an error, not a page unmapped meanwhile.
 */
int pages_copy(pid_t pid, const struct dirty_set *ds, struct sink *sink, bool frozen,
	       struct copy_stats *st);
/*
 * The final round with post-copy (frozen): data pages inside the VMAs of
 * @vl the destination can serve on first touch (pc_vma_ok) go as REMOTE
 * and into @pcs; the rest as pages_copy does. @pcs NULL: pages_copy.
 */
int pages_copy_pc(pid_t pid, const struct dirty_set *ds, struct sink *sink, bool frozen,
		  const struct vma_list *vl, struct pc_set *pcs, struct copy_stats *st);
/* Exactly @nr pages at @start (PROT_NONE ones through @mem_fd): 0, or -errno. */
int pages_read(pid_t pid, int mem_fd, uint64_t start, size_t nr, uint8_t *buf);

#endif
