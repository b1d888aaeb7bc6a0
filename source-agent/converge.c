// SPDX-License-Identifier: MIT
/*
 * Downtime prediction and auto-converge for the pre-copy loop.
 *
 * Freezing now would cost: the pages dirtied since the last scan, sent at
 * the bandwidth of recent rounds (page data over the time from the end of
 * the scan to the round's ack); the destination's lag (rounds before the
 * last that its streaming restore has not filled in yet, at the fill rate
 * it showed); and the fixed part of the final round (the last scan and the
 * cheapest round end measured in this run, plus a constant for the final
 * dump, the final restore step and the hand-over).
 *
 * The throttle is a duty cycle through the ptrace seize the migration
 * holds anyway: every thread is interrupted for throttle% of each 100 ms
 * and resumed for the rest, while a helper thread copies the round's pages
 * (only the tracer thread may stop and resume tracees). It needs no cgroup
 * and so cannot change the target's cgroup membership, and it cannot
 * outlive us: if migrate dies, the kernel detaches the tracees and they run.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/ptrace.h"
#include "common/util.h"
#include "source-agent/converge.h"
#include "source-agent/migrate.h"

void converge_init(struct converge *c, uint64_t limit_ms, bool auto_converge)
{
	memset(c, 0, sizeof(*c));
	c->limit_us = limit_ms * 1000;
	c->auto_converge = auto_converge;
	c->prefilled = -1;
}

void converge_free(struct converge *c)
{
	free(c->round_pages);
	free(c->round_end);
	c->round_pages = c->round_end = NULL;
	c->round_cap = 0;
}

/* Remember what round @round sent and when it ended (for the lag). */
static void note_round(struct converge *c, uint32_t round, uint64_t sent, uint64_t now)
{
	if (round >= c->round_cap) {
		uint32_t cap = round + 64;
		uint64_t *p = realloc(c->round_pages, cap * sizeof(*p));
		uint64_t *e = p ? realloc(c->round_end, cap * sizeof(*e)) : NULL;

		if (p)
			c->round_pages = p;
		if (!e)
			return;		/* no lag estimate for it: counted as filled */
		c->round_end = e;
		memset(p + c->round_cap, 0, (cap - c->round_cap) * sizeof(*p));
		memset(e + c->round_cap, 0, (cap - c->round_cap) * sizeof(*e));
		c->round_cap = cap;
	}
	c->round_pages[round] = sent;
	c->round_end[round] = now;
}

static uint64_t pages_between(const struct converge *c, int64_t from, int64_t to)
{
	uint64_t n = 0;
	int64_t i;

	for (i = from < 0 ? 0 : from; i <= to && i < (int64_t)c->round_cap; i++)
		n += c->round_pages[i];
	return n;
}

/*
 * The destination's fill rate, from the prefilled round it reports with
 * each round's ack: pages of the rounds it finished since the last report,
 * over the time since it could start on them.
 */
static void note_prefilled(struct converge *c, int64_t prefilled, uint64_t now)
{
	uint64_t since, pages;

	if (prefilled <= c->prefilled)
		return;
	since = c->prefilled_at;
	if (c->prefilled + 1 < (int64_t)c->round_cap && c->round_end[c->prefilled + 1] > since)
		since = c->round_end[c->prefilled + 1];
	pages = pages_between(c, c->prefilled + 1, prefilled);
	if (since && now > since && pages) {
		double pps = pages * 1e6 / (now - since);

		c->fill_pps = c->fill_pps ? (c->fill_pps + pps) / 2 : pps;
	}
	c->prefilled = prefilled;
	c->prefilled_at = now;
}

/* Time the destination still needs for the rounds up to @round. */
static uint64_t lag_us(const struct converge *c, uint32_t round, double link_pps, uint64_t now,
		       uint32_t *lag_rounds)
{
	uint64_t pages, oldest, began;
	double pps = c->fill_pps ? c->fill_pps : link_pps;

	/*
	 * The last round is filled while the final one is scanned, dumped and
	 * sent (it is what the old rule allowed): only older ones are a lag.
	 */
	*lag_rounds = 0;
	if (c->prefilled < 0 || c->prefilled + 1 >= (int64_t)round ||
	    c->prefilled + 1 >= (int64_t)c->round_cap)
		return 0;	/* no streaming restore, or nothing behind (or known) */
	*lag_rounds = round - 1 - c->prefilled;
	pages = pages_between(c, c->prefilled + 1, round - 1);
	/* filling the oldest round for longer than the rate says: it is slower */
	oldest = pages_between(c, c->prefilled + 1, c->prefilled + 1);
	began = c->round_end[c->prefilled + 1];
	if (c->prefilled_at > began)
		began = c->prefilled_at;
	if (began && now > began && oldest && oldest * 1e6 / pps < now - began)
		pps = oldest * 1e6 / (now - began);
	return pps > 0 ? (uint64_t)(pages * 1e6 / pps) : 0;
}

void converge_round(struct converge *c, uint32_t round, uint64_t scan_at, uint64_t scanned,
		    uint64_t dirty, uint64_t sent, uint64_t send_us, uint64_t wire,
		    uint64_t scan_us, uint64_t state_us, int64_t prefilled,
		    struct converge_pred *p)
{
	uint64_t now = now_us(), pages = 0, us = 0, wb = 0, interval, since;
	double pps;
	unsigned int i, slot;

	memset(p, 0, sizeof(*p));
	c->outrun = c->prev_sent && dirty * 2 > c->prev_sent;
	c->prev_sent = sent;
	slot = c->hist_n++ % 3;
	c->hist_pages[slot] = sent;
	/* the end of a round waits for its pages to leave: part of the transfer */
	c->hist_us[slot] = send_us + state_us;
	c->hist_wire[slot] = wire;
	c->scan_us = scan_us;
	/* what a round's end costs without pages to flush: its smallest */
	if (!c->state_us || state_us < c->state_us)
		c->state_us = state_us;
	note_round(c, round, sent, now);
	note_prefilled(c, prefilled, now);

	for (i = 0; i < 3 && i < c->hist_n; i++) {
		pages += c->hist_pages[i];
		us += c->hist_us[i];
		wb += c->hist_wire[i];
	}
	interval = c->prev_scan_at ? scan_at - c->prev_scan_at : 0;
	c->prev_scan_at = scan_at;
	if (!us || !pages || !interval)
		return;		/* round 1 (of this run): no dirty rate yet */
	pps = pages * 1e6 / us;
	p->wire_mib_s = wb / 1048576.0 / (us / 1e6);
	/* the pages dirtied since this round's scan, at the rate it found */
	since = now > scan_at ? now - scan_at : 0;
	p->pages = (uint64_t)((double)dirty * since / interval);
	if (p->pages > scanned)
		p->pages = scanned;
	p->xfer_us = (uint64_t)(p->pages * 1e6 / pps);
	p->lag_us = lag_us(c, round, pps, now, &p->lag_rounds);
	p->fixed_us = c->scan_us + c->state_us + FINAL_STATE_US_DEFAULT;
	/* with the lazy fill the process runs before the lag is made up */
	p->total_us = p->xfer_us + (c->lazy_fill ? 0 : p->lag_us) + p->fixed_us;
	p->valid = true;
}

void converge_add_tcp(struct converge_pred *p, uint64_t bytes)
{
	p->tcp_bytes = bytes;
	if (!p->valid || p->wire_mib_s <= 0)
		return;
	p->tcp_us = (uint64_t)(bytes / (p->wire_mib_s * 1048576.0) * 1e6);
	p->total_us += p->tcp_us;
}

bool converge_outrun(const struct converge *c)
{
	return c->outrun;
}

bool converge_throttle_up(struct converge *c)
{
	if (!c->auto_converge || !c->outrun || c->throttle_pct >= THROTTLE_MAX_PCT)
		return false;
	if (!c->throttle_pct)
		c->throttle_pct = THROTTLE_INITIAL_PCT;
	else
		c->throttle_pct += THROTTLE_STEP_PCT;
	if (c->throttle_pct > THROTTLE_MAX_PCT)
		c->throttle_pct = THROTTLE_MAX_PCT;
	return true;
}

/* --- the duty cycle ------------------------------------------------------ */

struct throttle_job {
	int (*fn)(void *);
	void *arg;
	int ret;
	int done[2];		/* the helper writes a byte when fn returned */
};

static void *throttle_helper(void *a)
{
	struct throttle_job *j = a;
	char c = 1;

	j->ret = j->fn(j->arg);
	while (write(j->done[1], &c, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

/*
 * Stop (or resume) every seized thread of the tree, except processes
 * stopped by job control (they wait for SIGCONT, not for us). A thread
 * that exited meanwhile is skipped: the next round's freeze drops it.
 */
static int tree_pause(struct tree *t, bool stop)
{
	size_t i, k;
	int ret = 0;

	for (i = 0; i < t->nr; i++) {
		const struct thread_set *ts = &t->p[i].ts;

		if (t->p[i].stopped)
			continue;
		for (k = 0; k < ts->nr; k++) {
			int r = stop ? tracee_interrupt(ts->tids[k]) : tracee_resume(ts->tids[k]);

			if (r && r != -ESRCH && !ret)
				ret = r;
		}
	}
	return ret;
}

int throttle_run(struct tree *t, unsigned int pct, uint64_t origin, int (*fn)(void *), void *arg)
{
	struct throttle_job j = { .fn = fn, .arg = arg };
	uint64_t stop_us = THROTTLE_PERIOD_US * pct / 100;
	bool stopped = false, cycling = true;
	sigset_t block, old;
	pthread_t th;
	int ret;

	if (!pct || !t->nr)
		return fn(arg);
	if (pipe2(j.done, O_CLOEXEC))
		return fn(arg);
	/* stop signals go to this thread, which ends the cycle at once */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	ret = pthread_create(&th, NULL, throttle_helper, &j);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		close(j.done[0]);
		close(j.done[1]);
		return fn(arg);
	}
	for (;;) {
		struct pollfd pfd = { .fd = j.done[0], .events = POLLIN };
		uint64_t now = now_us(), pos = (now - origin) % THROTTLE_PERIOD_US;
		bool want = pos < stop_us;
		int timeout = -1;

		if (cycling && migrate_stop_requested())
			cycling = false;
		if (!cycling)
			want = false;
		if (want != stopped) {
			ret = tree_pause(t, want);
			if (ret) {
				pr_warn("throttle: cannot %s the target (%s): throttle off for this round",
					want ? "stop" : "resume", strerror(-ret));
				cycling = false;
				if (want)
					tree_pause(t, false);	/* the threads it did stop */
				want = false;
			}
			stopped = want;
		}
		if (cycling) {
			/* until the phase ends: the stop's end, or the next period's start */
			int64_t left;

			pos = (now_us() - origin) % THROTTLE_PERIOD_US;
			left = (int64_t)(stopped ? stop_us : THROTTLE_PERIOD_US) - (int64_t)pos;
			if (!stopped && pos < stop_us)
				left = 0;	/* a stop phase began meanwhile */
			timeout = left > 0 ? (int)((left + 999) / 1000) : 0;
		}
		if (poll(&pfd, 1, timeout) > 0)
			break;
	}
	/* whatever happened, it runs again before we return */
	if (stopped)
		tree_pause(t, false);
	pthread_join(th, NULL);
	close(j.done[0]);
	close(j.done[1]);
	return j.ret;
}
