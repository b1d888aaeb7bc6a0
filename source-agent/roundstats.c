// SPDX-License-Identifier: MIT
/*
 * stats.img: what this side measured in a round, kept in the stack with the
 * round's other images (ferry-show summary shows it). Sent just before the
 * round ends, so the round's own commit and, in the final round, the wait
 * for the restore are not in it.
 */
#include "common/util.h"
#include "proto/image.h"
#include "source-agent/dump.h"
#include "source-agent/roundstats.h"

int dump_round_stats(struct sink *sink, const struct round_report *r)
{
	RoundStatsEntry st = ROUND_STATS_ENTRY__INIT;
	uint64_t now = now_us(), t0 = r->start_us;

	st.round = r->round;
	st.final = r->final;
	st.has_pages_scanned = st.has_pages_dirty = st.has_pages_sent = st.has_pages_zero = 1;
	st.pages_scanned = r->scanned;
	st.pages_dirty = r->dirty;
	st.pages_sent = r->sent;
	st.pages_zero = r->zero;
	st.has_wire_bytes = st.has_scan_us = st.has_frozen_us = st.has_send_us = 1;
	st.wire_bytes = sink->stats.wire_bytes - r->wire0;
	st.scan_us = r->scan_us;
	/* the final round is frozen from its start until the verdict: so far, then */
	st.frozen_us = r->final ? now - t0 : r->frozen_us;
	st.send_us = now - t0;
	return sink_add_msg(sink, "stats.img", &st.base);
}
