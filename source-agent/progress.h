/* SPDX-License-Identifier: MIT */
#ifndef FERRY_PROGRESS_H
#define FERRY_PROGRESS_H

#include <stdint.h>

#include "transport/sink.h"

/*
 * A live one-line display of each round on stderr (pages sent of those
 * expected, MiB/s, the time left in the round, the predicted downtime),
 * when stderr is a terminal and no -v or --log-file log is kept; nothing
 * otherwise. It watches the pages
 * going into @s (its ops are wrapped), so the round loop only says what it
 * expects. Standard output (round lines, --json) is not touched.
 */
void progress_attach(struct sink *s);
/*
 * The current round will send about @pages pages with data; @pred_us: the
 * downtime predicted after the round before (0: none yet), shown beside.
 */
void progress_expect(uint64_t pages, uint64_t pred_us);

#endif
