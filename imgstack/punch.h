/* SPDX-License-Identifier: MIT */
/*
 * Punching replaced data out of older rounds' pages files: the ranges are
 * collected, then run sorted and merged, here or on a background thread.
 */
#ifndef FERRY_PUNCH_H
#define FERRY_PUNCH_H

#include <stddef.h>
#include <stdint.h>

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

#endif
