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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imgstack/pgindex.h"

/*
 * Resolve the stack whose top is round directory @round_dir: one index per
 * pid found in its pagemaps (PARENT entries followed down the parent links).
 * Rejects a broken chain (missing parent, PARENT pages no round holds).
 */
struct view_span;
struct stack_view {
	char *top_dir;
	uint32_t top_round;
	uint32_t settled_round;		/* idx holds rounds 1..settled_round */
	size_t nr_pids;
	struct pg_index *idx;		/* nr_pids entries */
	/*
	 * [pid slot]: what top_round changed over settled_round (its PRESENT
	 * runs, and ZERO runs over what was not zero), not merged into idx
	 * yet (stack_view_advance). Empty when settled_round == top_round.
	 */
	struct pg_index *top;
	struct view_cover { struct view_span *s; size_t nr; } *cover;	/* [slot] tracked ranges */
	int *round_dirfd;		/* [round] -> dir fd, 1..top_round */
	char **round_path;		/* [round] -> its absolute path, 1..top_round */
	int *pages_fd;			/* [pid slot * (top_round + 1) + round], on demand */
	/*
	 * Post-copy (restore --postcopy-fd): REMOTE pages of the top round are
	 * runs of round PG_ROUND_REMOTE; without it any REMOTE page is refused.
	 */
	bool remote_ok;
};
int stack_view_open(const char *round_dir, struct stack_view *v);
/* The same, taking REMOTE pages of the top round if @remote_ok (kept for advances). */
int stack_view_open_remote(const char *round_dir, bool remote_ok, struct stack_view *v);
/* Does the view hold REMOTE pages (post-copy)? */
bool stack_view_has_remote(const struct stack_view *v);
/*
 * Move the view up to @round_dir, the round above its top (its parent link
 * must lead to the top): merges what is pending (stack_view_settle), then
 * loads only the new round's pagemaps. Costs what that round changed, not
 * the stack: a streaming restore follows a migration with it. On error
 * the view is unusable (close it); top_dir stays set from open to close.
 */
int stack_view_advance(struct stack_view *v, const char *round_dir);
/* Merge the top's changes into idx (O(index)): when nothing waits on it. */
int stack_view_settle(struct stack_view *v);
/*
 * @fn for every run of @pid's pages inside [start, end), in address order,
 * as the top round sees them (round 0: zero pages); untracked pages are
 * skipped. @top_only: only what the top round changed (nothing after
 * stack_view_open or stack_view_settle). O(log n + runs reported).
 */
int stack_view_walk(const struct stack_view *v, uint32_t pid, uint64_t start, uint64_t end,
		    bool top_only, pg_walk_fn fn, void *arg);
/* fd of pages-<pid>.img in @round (owned by the view, do not close). */
int stack_view_pages_fd(struct stack_view *v, uint32_t pid, uint32_t round);
/* Absolute path of pages-<pid>.img in @round: 0 or -ENOENT, -ENAMETOOLONG. */
int stack_view_pages_path(const struct stack_view *v, uint32_t pid, uint32_t round, char *buf,
			  size_t len);
/* The whole index of @pid (NULL: unknown pid, or top changes pending: use the walk). */
const struct pg_index *stack_view_index(const struct stack_view *v, uint32_t pid);
void stack_view_close(struct stack_view *v);

/* Highest complete round <k>/ in DIR/<id> (0: none yet). */
int stack_find_top(int stack_dirfd, uint32_t *top);

#endif
