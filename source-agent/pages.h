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
};

/*
 * Read every range of @ds from @pid's memory and hand it to @sink. Pages
 * that turn out all-zero go as addresses only. PROT_NONE pages are read
 * through /proc/PID/mem. @frozen: the final round, where a page that
 * cannot be read is an error, not a page unmapped meanwhile.
 */
int pages_copy(pid_t pid, const struct dirty_set *ds, struct sink *sink, bool frozen,
	       struct copy_stats *st);

#endif
