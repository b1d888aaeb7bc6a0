/* SPDX-License-Identifier: MIT */
/*
 * Image stacks: DIR/<migration-id>/<k>/ per round, k > 1 with parent -> ../k-1.
 * A round is written into DIR/<id>/.tmp-<k>/ and renamed to <k>/ on commit
 * (after fsync), so an interrupted round leaves the stack as it was.
 *
 * Every round's pagemap-<pid>.img describes the whole tracked memory of that
 * pid: pages sent in that round (PRESENT, at an offset in its own
 * pages-<pid>.img), pages whose data sits in an older round (PARENT), and
 * zero pages (ZERO). The writer keeps a page index (per pid: which round
 * holds each page) so that the source only sends what changed.
 *
 * Used by the page server (pages off the wire), by `migrate --images-dir`
 * (local checkpoint) and by `restore` (resolving the stack).
 */
#ifndef FERRY_STACK_H
#define FERRY_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

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
/* Find the extent covering vaddr, or NULL. */
const struct pg_extent *pg_index_find(const struct pg_index *idx, uint64_t vaddr);
void pg_index_free(struct pg_index *idx);

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

struct round_stats {
	uint32_t round;
	uint64_t pages_present;		/* written in this round */
	uint64_t pages_zero;
	uint64_t bytes_written;
	/*
	 * auto-dedup: older rounds' bytes replaced, punched by a background
	 * thread (stack_writer_close waits for it)
	 */
	uint64_t bytes_punched;
};

struct stack_writer;

/*
 * Create DIR/<id>/ (id NULL: a new unique id is made) or, if it exists and
 * holds complete rounds, resume it (the next round is top + 1). id is
 * [A-Za-z0-9._-]{1,64}; anything else is -EINVAL.
 */
int stack_writer_open(const char *images_dir, const char *id, bool auto_dedup,
		      struct stack_writer **out);
const char *stack_writer_id(const struct stack_writer *sw);
const char *stack_writer_dir(const struct stack_writer *sw);	/* DIR/<id> */
uint32_t stack_writer_next_round(const struct stack_writer *sw);

int stack_round_begin(struct stack_writer *sw, uint32_t round, bool final);
/* data == NULL: nr zero pages. Pages of one pid must not repeat within a round. */
int stack_add_pages(struct stack_writer *sw, uint32_t pid, uint64_t vaddr, uint64_t nr_pages,
		    const void *data);
/* A non-page image (core-*.img, mm-*.img, inventory.img...). Name: [A-Za-z0-9._-]+ */
int stack_add_file(struct stack_writer *sw, const char *name, const void *data, size_t len);
/*
 * Write pagemaps, fsync, rename into place, punch older copies if auto-dedup
 * (queued to a thread once the round is durable). On failure the round is
 * aborted already (a later stack_round_abort is harmless).
 */
int stack_round_commit(struct stack_writer *sw, struct round_stats *st);
/* Drop the temporary round directory. */
void stack_round_abort(struct stack_writer *sw);
void stack_writer_close(struct stack_writer *sw);

/* Highest complete round <k>/ in DIR/<id> (0: none yet). */
int stack_find_top(int stack_dirfd, uint32_t *top);

/*
 * Byte ranges of pages files to punch, collected (punch_list_add is a
 * pg_punch_fn) and run later, sorted and merged, once the round that
 * replaces them is durable. @bytes: data bytes freed (holes not counted).
 */
struct punch_range {
	uint32_t pid, round;
	uint64_t off, len;
};
struct punch_list {
	struct punch_range *r;
	size_t nr, cap;
};
int punch_list_add(void *list, uint32_t pid, uint32_t round, uint64_t file_off, uint64_t len);
int punch_list_run(struct punch_list *pl, int stack_dirfd, uint64_t *bytes);
void punch_list_free(struct punch_list *pl);

/*
 * A thread that runs punch lists in the background (auto-dedup keeps the
 * commit short). push takes @pl's ranges (leaves it empty); stop waits for
 * everything pushed, then gives the bytes freed and the first error.
 */
struct punch_queue;
int punch_queue_start(int stack_dirfd, struct punch_queue **out);
int punch_queue_push(struct punch_queue *q, struct punch_list *pl);
int punch_queue_stop(struct punch_queue *q, uint64_t *bytes);

/* Offline dedup of DIR/<id> (every round below the top is punched where a newer one covers it). */
int stack_dedup(const char *stack_dir, uint64_t *bytes_punched);

#endif
