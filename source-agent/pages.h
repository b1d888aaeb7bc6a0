/* SPDX-License-Identifier: MIT */
#ifndef FERRY_PAGES_H
#define FERRY_PAGES_H

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
 * that turn out all-zero go as addresses only.
 */
int pages_copy(pid_t pid, const struct dirty_set *ds, struct sink *sink, struct copy_stats *st);

#endif
