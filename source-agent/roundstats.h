/* SPDX-License-Identifier: MIT */
#ifndef FERRY_ROUNDSTATS_H
#define FERRY_ROUNDSTATS_H

#include <stdint.h>

#include "source-agent/migrate.h"

/* stats.img of round @r: the source's figures, kept in the stack. 0 or -errno. */
int dump_round_stats(struct sink *sink, const struct round_report *r);

#endif
