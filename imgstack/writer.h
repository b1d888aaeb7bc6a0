/* SPDX-License-Identifier: MIT */
/*
 * The write side of an image stack (layout: imgstack/view.h). A round is
 * written into DIR/<id>/.tmp-<k>/ and renamed to <k>/ on commit (after
 * fsync), so an interrupted round leaves the stack as it was. The writer
 * keeps a page index (per pid: which round holds each page) so that the
 * source only sends what changed.
 *
 * Used by the page server (pages off the wire) and by `migrate
 * --images-dir` (local checkpoint, transport/sink_local.c).
 */
#ifndef FERRY_WRITER_H
#define FERRY_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
	/* entries of the round's pagemaps: its own runs and the PARENT runs between them */
	uint64_t pagemap_entries;
	/* auto-dedup: extents of the page indexes copied at the commit (0 in a final round) */
	uint64_t index_extents;
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
/*
 * Post-copy: nr pages of @pid still at the source (PE_REMOTE in the round's
 * pagemap, no data). Only a final round may hold them (-EINVAL otherwise).
 */
int stack_add_remote(struct stack_writer *sw, uint32_t pid, uint64_t vaddr, uint64_t nr_pages);
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

#endif
