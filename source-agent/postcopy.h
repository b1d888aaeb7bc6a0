/* SPDX-License-Identifier: MIT */
/*
 * Post-copy at the source (migrate --postcopy, docs/handover.md): the final
 * round sends the dirty pages of private anonymous memory as REMOTE (their
 * addresses only); the destination runs the tree at once and gets those
 * pages afterwards, on demand and pushed, read here from the frozen tree.
 */
#ifndef FERRY_POSTCOPY_H
#define FERRY_POSTCOPY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "source-agent/proc.h"
#include "transport/sink.h"

/* The REMOTE pages of one process: sorted, disjoint, merged runs. */
struct pc_proc {
	pid_t pid;
	int mem_fd;		/* /proc/PID/mem, -1: not opened yet */
	struct pc_run { uint64_t start, end; } *r;
	size_t nr, cap;
};

struct pc_set {
	struct pc_proc *p;
	size_t nr, cap;
	uint64_t pages;		/* REMOTE pages in all */
	size_t push_p, push_r;	/* the push: next process, run ... */
	uint64_t push_at;	/* ... and address in it */
	struct pc_source src;	/* what the sink reads them with */
};

/* Can the destination take the pages of @v REMOTE (served on first touch)? */
bool pc_vma_ok(const struct vma *v);
/* [start, end) of @pid is REMOTE (runs of one pid come in address order). */
int pc_set_add(struct pc_set *set, pid_t pid, uint64_t start, uint64_t end);
/* The set as the sink's pc_source (set->src). */
void pc_set_source(struct pc_set *set);
void pc_set_free(struct pc_set *set);

#endif
