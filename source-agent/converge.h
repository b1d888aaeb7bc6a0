/* SPDX-License-Identifier: MIT */
/*
 * When to freeze, and how to get there: the downtime prediction of the
 * pre-copy loop (--downtime-limit) and auto-converge, the throttle that
 * slows a target whose dirty rate outruns the link (docs/architecture.md,
 * "When to freeze, auto-converge").
 */
#ifndef FERRY_CONVERGE_H
#define FERRY_CONVERGE_H

#include <stdbool.h>
#include <stdint.h>

#include "source-agent/tree.h"

/* Defaults and QEMU-style throttle steps (README, migrate --help). */
#define DOWNTIME_LIMIT_MS_DEFAULT	300
#define THROTTLE_INITIAL_PCT		20
#define THROTTLE_STEP_PCT		10
#define THROTTLE_MAX_PCT		99
#define THROTTLE_PERIOD_US		100000ULL

/*
 * The part of the downtime not made of pages, before this run measured any
 * of it: the final dump (parasite, files, sockets), the destination's final
 * restore step and the hand-over round trips. 1 GiB memwork over TLS on
 * loopback spent 20-35 ms frozen besides its last pages (docs/benchmarks.md).
 */
#define FINAL_STATE_US_DEFAULT		25000ULL

/* What the pre-copy loop learned so far (one per migration). */
struct converge {
	uint64_t limit_us;		/* 0: no limit, the old shrink rule alone */
	bool auto_converge;
	unsigned int throttle_pct;	/* applied from the next round on */
	uint64_t prev_scan_at, prev_sent;
	bool outrun;			/* the last round: dirty > half the round before's sent */
	/* recent pre-copy rounds: pages sent, time spent sending them */
	uint64_t hist_pages[3], hist_us[3], hist_wire[3];
	unsigned int hist_n;
	uint64_t scan_us, state_us;	/* the last scan, the cheapest round end */
	/* the destination's streaming restore: pages and end time of each round */
	uint64_t *round_pages, *round_end;
	uint32_t round_cap;
	int64_t prefilled;		/* last round filled, -1: none reported */
	uint64_t prefilled_at;		/* when it last advanced */
	double fill_pps;		/* measured fill rate, 0: not yet */
	bool lazy_fill;			/* the destination fills after the freeze: lag not in total_us */
};

/* The prediction made after one pre-copy round (also in its report). */
struct converge_pred {
	bool valid;			/* round 1: no dirty rate yet */
	uint64_t pages;			/* pages the final round is expected to carry */
	uint64_t xfer_us, lag_us, fixed_us;
	uint64_t tcp_bytes, tcp_us;	/* TCP connections' queues, sent in the final round */
	uint64_t total_us;		/* xfer + lag + fixed + tcp (lag only without the lazy fill) */
	double wire_mib_s;		/* wire bandwidth of recent rounds */
	uint32_t lag_rounds;		/* rounds before the last not filled yet */
};

void converge_init(struct converge *c, uint64_t limit_ms, bool auto_converge);
void converge_free(struct converge *c);

/*
 * After pre-copy round @round: the dirty pages its scan found at @scan_at
 * (µs) after @scanned pages, @sent pages in @send_us (@wire bytes), its
 * frozen scan and end (@scan_us, @state_us), and the destination's last
 * filled round (@prefilled, -1: none). Fills @p.
 */
void converge_round(struct converge *c, uint32_t round, uint64_t scan_at, uint64_t scanned,
		    uint64_t dirty, uint64_t sent, uint64_t send_us, uint64_t wire,
		    uint64_t scan_us, uint64_t state_us, int64_t prefilled,
		    struct converge_pred *p);

/*
 * The send and receive queues of the TCP connections that travel (@bytes,
 * read after the round) go in the final round: their time at the measured
 * wire bandwidth is added to a valid prediction @p.
 */
void converge_add_tcp(struct converge_pred *p, uint64_t bytes);
/*
 * Raise the throttle one step (20%, then +10% up to 99%) if the last
 * round's dirty set was more than half of what the round before it sent
 * (QEMU's throttle-trigger-threshold). Returns true if it was raised.
 */
bool converge_throttle_up(struct converge *c);
/* The last round's dirty set was more than half of what the round before sent. */
bool converge_outrun(const struct converge *c);

/*
 * Run @fn(@arg) in a helper thread while this thread (the tracer) stops
 * every seized thread of @t for the first @pct% of each 100 ms period
 * (counted from @origin, µs, so the cycle goes on across rounds) and
 * resumes it for the rest. @fn must not use ptrace (only the tracer thread
 * may). Every thread runs again when this returns, whatever happened.
 * @pct 0: just @fn(@arg). Returns @fn's result.
 */
int throttle_run(struct tree *t, unsigned int pct, uint64_t origin, int (*fn)(void *), void *arg);

#endif
