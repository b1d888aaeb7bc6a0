// SPDX-License-Identifier: MIT
/* The downtime prediction and the auto-converge steps (source-agent/converge.c). */
#include <criterion/criterion.h>

#include "common/util.h"
#include "source-agent/converge.h"

#define S 1000000ULL	/* µs */

/* A pre-copy round whose scan was @ago µs before now. */
static void round_at(struct converge *c, uint32_t round, uint64_t ago, uint64_t dirty,
		     uint64_t sent, int64_t prefilled, struct converge_pred *p)
{
	converge_round(c, round, now_us() - ago, 100000, dirty, sent, S / 2, sent * 4096,
		       2000, 3000, prefilled, p);
}

Test(converge, no_prediction_before_a_dirty_rate)
{
	struct converge c;
	struct converge_pred p;

	converge_init(&c, 300, true);
	round_at(&c, 1, 2 * S, 100000, 100000, -1, &p);
	cr_assert(!p.valid, "round 1 has no dirty rate to predict from");
	converge_free(&c);
}

Test(converge, prediction_parts)
{
	struct converge c;
	struct converge_pred p;
	double pps;

	converge_init(&c, 300, true);
	converge_round(&c, 1, now_us() - 2 * S, 100000, 100000, 100000, S / 2, 0, 2000, 9000, -1, &p);
	/* scanned 1 s after round 1's scan, and 1 s ago: about its dirty set again */
	round_at(&c, 2, S, 4000, 4000, -1, &p);
	cr_assert(p.valid);
	cr_assert(p.pages >= 3900 && p.pages <= 4400, "pages %llu", (unsigned long long)p.pages);
	/* 104000 pages sent in 2 x 0.5 s of copying + 9 ms and 3 ms of round ends */
	pps = 104000 * 1e6 / (S + 12000);
	cr_assert(p.xfer_us >= p.pages * 1e6 / pps - 1 && p.xfer_us <= p.pages * 1e6 / pps + 1);
	/* the last scan, the cheapest round end, the final state's constant */
	cr_assert_eq(p.fixed_us, 2000 + 3000 + FINAL_STATE_US_DEFAULT);
	cr_assert_eq(p.lag_us, 0, "no streaming restore reported: no lag");
	cr_assert_eq(p.total_us, p.xfer_us + p.lag_us + p.fixed_us);
	converge_free(&c);
}

Test(converge, tcp_queues_at_the_wire_bandwidth)
{
	struct converge c;
	struct converge_pred p, q;

	converge_init(&c, 300, true);
	round_at(&c, 1, 2 * S, 100000, 100000, -1, &p);
	converge_add_tcp(&p, 1 << 20);
	cr_assert(!p.valid && p.tcp_us == 0 && p.total_us == 0, "no bandwidth yet: nothing added");
	cr_assert_eq(p.tcp_bytes, 1 << 20);
	round_at(&c, 2, S, 4000, 4000, -1, &p);
	q = p;
	converge_add_tcp(&p, 8 << 20);
	cr_assert(p.valid && p.wire_mib_s > 0);
	/* 8 MiB at the wire's MiB/s */
	cr_assert(p.tcp_us >= 8 / p.wire_mib_s * 1e6 - 1 && p.tcp_us <= 8 / p.wire_mib_s * 1e6 + 1,
		  "tcp_us %llu at %.1f MiB/s", (unsigned long long)p.tcp_us, p.wire_mib_s);
	cr_assert_eq(p.total_us, q.total_us + p.tcp_us);
	cr_assert_eq(p.xfer_us, q.xfer_us, "the pages' part is unchanged");
	converge_free(&c);
}

Test(converge, lag_counts_rounds_before_the_last)
{
	struct converge c;
	struct converge_pred p;

	converge_init(&c, 300, true);
	round_at(&c, 1, 3 * S, 100000, 100000, 0, &p);
	round_at(&c, 2, 2 * S, 1000, 1000, 0, &p);
	round_at(&c, 3, S, 1000, 1000, 0, &p);
	cr_assert_eq(p.lag_rounds, 2, "rounds 1 and 2 not filled, 3 is the last");
	cr_assert(p.lag_us > 0);
	round_at(&c, 4, S / 2, 1000, 1000, 3, &p);
	cr_assert_eq(p.lag_rounds, 0, "all but the last filled");
	cr_assert_eq(p.lag_us, 0);
	converge_free(&c);
}

/* With the lazy fill the lag is reported but is not downtime. */
Test(converge, lazy_fill_leaves_the_lag_out)
{
	struct converge c;
	struct converge_pred p;

	converge_init(&c, 300, true);
	c.lazy_fill = true;
	round_at(&c, 1, 3 * S, 100000, 100000, 0, &p);
	round_at(&c, 2, 2 * S, 1000, 1000, 0, &p);
	round_at(&c, 3, S, 1000, 1000, 0, &p);
	cr_assert_eq(p.lag_rounds, 2);
	cr_assert(p.lag_us > 0, "still measured and reported");
	cr_assert_eq(p.total_us, p.xfer_us + p.fixed_us);
	c.lazy_fill = false;
	round_at(&c, 4, S / 2, 1000, 1000, 0, &p);
	cr_assert(p.lag_us > 0);
	cr_assert_eq(p.total_us, p.xfer_us + p.lag_us + p.fixed_us);
	converge_free(&c);
}

Test(converge, throttle_steps)
{
	struct converge c;
	struct converge_pred p;
	static const unsigned int steps[] = { 20, 30, 40, 50, 60, 70, 80, 90, 99, 99, 99 };
	uint32_t r;

	converge_init(&c, 300, true);
	round_at(&c, 1, 20 * S, 10000, 10000, -1, &p);
	round_at(&c, 2, 19 * S, 4000, 4000, -1, &p);
	cr_assert(!converge_outrun(&c), "4000 of 10000 sent: shrinking fast enough");
	cr_assert(!converge_throttle_up(&c));
	for (r = 0; r < sizeof(steps) / sizeof(steps[0]); r++) {
		round_at(&c, r + 3, (17 - r) * S, 4000, 4000, -1, &p);
		cr_assert(converge_outrun(&c));
		cr_assert_eq(converge_throttle_up(&c), r < 9, "round %u", r + 3);
		cr_assert_eq(c.throttle_pct, steps[r], "round %u: %u%%", r + 3, c.throttle_pct);
	}
	cr_assert_eq(c.throttle_pct, THROTTLE_MAX_PCT, "99%% at most");
	converge_free(&c);

	converge_init(&c, 300, false);
	round_at(&c, 1, 3 * S, 10000, 10000, -1, &p);
	round_at(&c, 2, 2 * S, 9000, 9000, -1, &p);
	cr_assert(converge_outrun(&c));
	cr_assert(!converge_throttle_up(&c), "--no-auto-converge");
	converge_free(&c);
}

static int called;

static int count_call(void *arg)
{
	(void)arg;
	return ++called;
}

Test(converge, throttle_without_threads_just_runs)
{
	struct tree t = { 0 };

	cr_assert_eq(throttle_run(&t, 50, 0, count_call, NULL), 1);
	cr_assert_eq(throttle_run(&t, 0, 0, count_call, NULL), 2);
}
