/* SPDX-License-Identifier: MIT */
/*
 * The read side of an image stack (docs/image-stack.md): DIR/<id>/<k>/ per
 * round, k > 1 with parent -> ../k-1. Every round's pagemap-<pid>.img
 * describes the whole tracked memory of that pid: pages sent in that round
 * (PRESENT, at an offset in its own pages-<pid>.img), pages whose data sits
 * in an older round (PARENT), and zero pages (ZERO).
 *
 * Used by `restore` (which links only this side: view.c, pgindex.c), by the
 * writer to resume a stack and by offline dedup.
 */
#ifndef FERRY_VIEW_H
#define FERRY_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "imgstack/pgindex.h"

/*
 * Resolve the stack whose top is round directory @round_dir: one index per
 * pid found in its pagemaps (PARENT entries followed down the parent links).
 * Rejects a broken chain (missing parent, PARENT pages no round holds).
 */
struct stack_view {
	char *top_dir;
	uint32_t top_round;
	size_t nr_pids;
	struct pg_index *idx;		/* nr_pids entries */
	int *round_dirfd;		/* [round] -> dir fd, 1..top_round */
	int *pages_fd;			/* [pid slot * (top_round + 1) + round], on demand */
};
int stack_view_open(const char *round_dir, struct stack_view *v);
/* fd of pages-<pid>.img in @round (owned by the view, do not close). */
int stack_view_pages_fd(struct stack_view *v, uint32_t pid, uint32_t round);
const struct pg_index *stack_view_index(const struct stack_view *v, uint32_t pid);
void stack_view_close(struct stack_view *v);

/* Highest complete round <k>/ in DIR/<id> (0: none yet). */
int stack_find_top(int stack_dirfd, uint32_t *top);

#endif
