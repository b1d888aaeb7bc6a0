// SPDX-License-Identifier: MIT
/*
 * POSIX timers (source-agent/timers.c): each one checked and laid out for
 * the blob, which makes it again with its id once the threads exist and
 * arms it with the time it had left (restorer.c, restore_timers).
 *
 * A timer whose signal was still queued at the freeze: that queued siginfo
 * is the timer's own (SI_TIMER, its id and signal, in the queue it sends
 * to). It is not queued again as a plain signal: the blob makes the
 * kernel queue the timer's own again, so a later expiry while it waits
 * counts as an overrun, as at the source, instead of a second signal.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "dest-agent/restore.h"

#define RST_MAX_TIMERS	4096

/* siginfo_t on x86-64: signo, errno, code, then _timer: tid (the timer id), overrun, sigval. */
struct si_timer {
	int32_t signo, err, code, pad;
	int32_t timer_id, overrun;
	uint64_t sival;
};

static bool notify_valid(uint32_t n)
{
	return n == SIGEV_SIGNAL || n == SIGEV_NONE || n == SIGEV_THREAD ||
	       n == (SIGEV_SIGNAL | SIGEV_THREAD_ID);
}

static bool has_thread(const ProcCore *core, uint32_t tid)
{
	size_t i;

	for (i = 0; i < core->n_threads; i++)
		if (core->threads[i]->tid == tid)
			return true;
	return false;
}

static int timer_check(const ProcCore *core, const PosixTimerEntry *t)
{
	bool none = t->notify == SIGEV_NONE;

	if (t->id < 0 || (t->clockid != CLOCK_REALTIME && t->clockid != CLOCK_MONOTONIC &&
	    t->clockid != CLOCK_BOOTTIME))
		return -EINVAL;
	if (!notify_valid(t->notify) || (!none && (t->signo < 1 || t->signo > 64)))
		return -EINVAL;
	if ((t->notify & SIGEV_THREAD_ID) && (!t->has_tid || !has_thread(core, t->tid)))
		return -EINVAL;
	/* nanoseconds that fit a timespec and the blob's arithmetic */
	if (t->value_ns > (1ULL << 62) || t->interval_ns > (1ULL << 62))
		return -EINVAL;
	return 0;
}

static bool is_timer_signal(const PosixTimerEntry *t, const SiginfoEntry *e)
{
	struct si_timer si;

	if (e->raw.len != 128 || t->notify == SIGEV_NONE)
		return false;
	memcpy(&si, e->raw.data, sizeof(si));
	return si.code == SI_TIMER && si.timer_id == t->id && si.signo == t->signo;
}

/* The queue @t's signals go to: its thread's, or the process's. */
static void timer_queue(const ProcCore *core, const PosixTimerEntry *t, SiginfoEntry *const **q,
			size_t *n)
{
	size_t i;

	*q = core->shared_pending;
	*n = core->n_shared_pending;
	if (!(t->notify & SIGEV_THREAD_ID))
		return;
	for (i = 0; i < core->n_threads; i++)
		if (core->threads[i]->tid == t->tid) {
			*q = core->threads[i]->pending;
			*n = core->threads[i]->n_pending;
		}
}

/* The first queued signal of @t in its queue, or NULL. */
static const SiginfoEntry *timer_pending(const ProcCore *core, const PosixTimerEntry *t)
{
	SiginfoEntry *const *q;
	size_t n, i;

	timer_queue(core, t, &q, &n);
	for (i = 0; i < n; i++)
		if (is_timer_signal(t, q[i]))
			return q[i];
	return NULL;
}

static int ptr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(const void *const *)a, y = (uintptr_t)*(const void *const *)b;

	return (x > y) - (x < y);
}

/*
 * Each timer's own queued signal, found once and sorted (a hostile image's
 * many timers and signals cost timers x queue, not that times every signal).
 */
int timers_own_init(const ProcCore *core, struct timers_own *own)
{
	size_t i;

	memset(own, 0, sizeof(*own));
	if (core->n_posix_timers > RST_MAX_TIMERS)
		return -E2BIG;
	own->si = calloc(core->n_posix_timers + 1, sizeof(*own->si));
	if (!own->si)
		return -ENOMEM;
	for (i = 0; i < core->n_posix_timers; i++) {
		const SiginfoEntry *si = timer_pending(core, core->posix_timers[i]);

		if (si)
			own->si[own->n++] = si;
	}
	qsort(own->si, own->n, sizeof(*own->si), ptr_cmp);
	return 0;
}

bool timers_own_has(const struct timers_own *own, const SiginfoEntry *si)
{
	return own->n && bsearch(&si, own->si, own->n, sizeof(*own->si), ptr_cmp);
}

void timers_own_free(struct timers_own *own)
{
	free(own->si);
	memset(own, 0, sizeof(*own));
}

bool timers_own_siginfo(const ProcCore *core, const SiginfoEntry *si)
{
	struct timers_own own;
	bool ret;

	if (timers_own_init(core, &own))
		return false;
	ret = timers_own_has(&own, si);
	timers_own_free(&own);
	return ret;
}

static int timer_cmp(const void *a, const void *b)
{
	const struct rst_timer *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

size_t timers_payload_size(const ProcCore *core)
{
	return core->n_posix_timers * sizeof(struct rst_timer);
}

int timers_layout(const ProcCore *core, struct rst_timer *out)
{
	size_t i;
	int ret;

	if (core->n_posix_timers > RST_MAX_TIMERS)
		return -E2BIG;
	for (i = 0; i < core->n_posix_timers; i++) {
		const PosixTimerEntry *t = core->posix_timers[i];

		ret = timer_check(core, t);
		if (ret) {
			pr_err("pid %u: POSIX timer %d in the image is not valid", core->pid, t->id);
			return ret;
		}
		out[i] = (struct rst_timer){
			.id = t->id,
			.clockid = t->clockid,
			.notify = t->notify,
			.signo = t->signo,
			.sival = t->sival,
			.tid = t->has_tid ? t->tid : 0,
			.pending = timer_pending(core, t) != NULL,
			.value_ns = t->value_ns,
			.interval_ns = t->interval_ns,
		};
	}
	/*
	 * Made in id order (/proc lists the newest first): the kernel's next id
	 * follows the last one made, so a new timer gets the id after the
	 * highest, as at the source (unless the source had deleted its highest).
	 */
	qsort(out, core->n_posix_timers, sizeof(*out), timer_cmp);
	return 0;
}
