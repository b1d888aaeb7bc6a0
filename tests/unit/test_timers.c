// SPDX-License-Identifier: MIT
/*
 * POSIX timers at the restore (dest-agent/timers.c): hostile timer entries
 * refused, a valid one laid out as saved, and which queued siginfo is a
 * timer's own (taken out of the re-queue, the timer marked pending).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "dest-agent/restore.h"

#define TID_MAIN	100
#define TID_OTHER	101

/* A process with two threads, @t as its only timer, the queues given. */
struct fixture {
	ProcCore core;
	ThreadCore tc[2], *tcp[2];
	PosixTimerEntry t, *tp;
	SiginfoEntry si[4], *shared[4], *own[4];
	uint8_t raw[4][128];
};

static void setup_core(struct fixture *f)
{
	size_t i;

	memset(f, 0, sizeof(*f));
	proc_core__init(&f->core);
	f->core.pid = TID_MAIN;
	for (i = 0; i < 2; i++) {
		thread_core__init(&f->tc[i]);
		f->tc[i].tid = i ? TID_OTHER : TID_MAIN;
		f->tcp[i] = &f->tc[i];
	}
	f->core.threads = f->tcp;
	f->core.n_threads = 2;
	posix_timer_entry__init(&f->t);
	f->t.id = 3;
	f->t.clockid = CLOCK_MONOTONIC;
	f->t.notify = SIGEV_SIGNAL;
	f->t.signo = SIGRTMIN + 2;
	f->t.sival = 0x1234;
	f->t.value_ns = 5000000;
	f->t.interval_ns = 20000000;
	f->tp = &f->t;
	f->core.posix_timers = &f->tp;
	f->core.n_posix_timers = 1;
}

/* Siginfo @i: signal @signo, code @code, timer id @id. */
static SiginfoEntry *mk_si(struct fixture *f, int i, int signo, int code, int id, bool shared)
{
	int32_t v[5] = { signo, 0, code, 0, id };

	memset(f->raw[i], 0, 128);
	memcpy(f->raw[i], v, sizeof(v));
	siginfo_entry__init(&f->si[i]);
	f->si[i].raw.data = f->raw[i];
	f->si[i].raw.len = 128;
	f->si[i].shared = shared;
	return &f->si[i];
}

Test(timers, valid_entry_laid_out)
{
	struct fixture f;
	struct rst_timer out;

	setup_core(&f);
	cr_assert_eq(timers_payload_size(&f.core), sizeof(struct rst_timer));
	cr_assert_eq(timers_layout(&f.core, &out), 0);
	cr_assert_eq(out.id, 3);
	cr_assert_eq(out.clockid, CLOCK_MONOTONIC);
	cr_assert_eq(out.notify, SIGEV_SIGNAL);
	cr_assert_eq(out.signo, SIGRTMIN + 2);
	cr_assert_eq(out.sival, 0x1234);
	cr_assert_eq(out.value_ns, 5000000);
	cr_assert_eq(out.interval_ns, 20000000);
	cr_assert_eq(out.pending, 0);
}

Test(timers, hostile_entries_refused)
{
	static const struct { const char *what; int field; int64_t v; } bad[] = {
		{ "negative id", 0, -1 },
		{ "CPU-time clock", 1, CLOCK_PROCESS_CPUTIME_ID },
		{ "alarm clock", 1, CLOCK_REALTIME_ALARM },
		{ "unknown clock", 1, 99 },
		{ "unknown notify", 2, 3 },
		{ "notify bits", 2, 0x100 },
		{ "signal 0", 3, 0 },
		{ "signal 65", 3, 65 },
		{ "thread of another process", 4, 999 },
		{ "thread id missing", 4, -1 },
		{ "value out of range", 5, -1 },
		{ "interval out of range", 6, -1 },
	};
	struct rst_timer out;
	struct fixture f;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setup_core(&f);
		switch (bad[i].field) {
		case 0: f.t.id = bad[i].v; break;
		case 1: f.t.clockid = bad[i].v; break;
		case 2: f.t.notify = bad[i].v; break;
		case 3: f.t.signo = bad[i].v; break;
		case 4:
			f.t.notify = SIGEV_SIGNAL | SIGEV_THREAD_ID;
			f.t.has_tid = bad[i].v >= 0;
			f.t.tid = bad[i].v;
			break;
		case 5: f.t.value_ns = (uint64_t)bad[i].v; break;
		case 6: f.t.interval_ns = (uint64_t)bad[i].v; break;
		}
		cr_expect_neq(timers_layout(&f.core, &out), 0, "%s accepted", bad[i].what);
	}
	/* SIGEV_NONE never signals: any signal number is its own business */
	setup_core(&f);
	f.t.notify = SIGEV_NONE;
	f.t.signo = 0;
	cr_assert_eq(timers_layout(&f.core, &out), 0);
}

/* Made in id order whatever the image's order (/proc lists the newest first). */
Test(timers, laid_out_in_id_order)
{
	PosixTimerEntry t2, *tp[2];
	struct rst_timer out[2];
	struct fixture f;

	setup_core(&f);
	f.t.id = 7;
	t2 = f.t;
	t2.id = 3;
	t2.sival = 0x33;
	tp[0] = &f.t;
	tp[1] = &t2;
	f.core.posix_timers = tp;
	f.core.n_posix_timers = 2;
	cr_assert_eq(timers_layout(&f.core, out), 0);
	cr_assert_eq(out[0].id, 3);
	cr_assert_eq(out[0].sival, 0x33);
	cr_assert_eq(out[1].id, 7);
}

Test(timers, too_many_timers_refused)
{
	struct rst_timer out;
	struct fixture f;

	setup_core(&f);
	f.core.n_posix_timers = 5000;
	cr_assert_eq(timers_layout(&f.core, &out), -E2BIG);
}

/* A process-directed timer: its own signal is the first SI_TIMER of its id and signal in the shared queue. */
Test(timers, own_signal_in_the_shared_queue)
{
	struct rst_timer out;
	struct fixture f;

	setup_core(&f);
	f.shared[0] = mk_si(&f, 0, SIGRTMIN + 2, SI_QUEUE, 3, true);	/* sigqueue(), not the timer */
	f.shared[1] = mk_si(&f, 1, SIGRTMIN + 1, SI_TIMER, 3, true);	/* another signal */
	f.shared[2] = mk_si(&f, 2, SIGRTMIN + 2, SI_TIMER, 3, true);	/* the timer's own */
	f.shared[3] = mk_si(&f, 3, SIGRTMIN + 2, SI_TIMER, 3, true);	/* a copy: queued again */
	f.core.shared_pending = f.shared;
	f.core.n_shared_pending = 4;
	cr_assert_not(timers_own_siginfo(&f.core, f.shared[0]));
	cr_assert_not(timers_own_siginfo(&f.core, f.shared[1]));
	cr_assert(timers_own_siginfo(&f.core, f.shared[2]));
	cr_assert_not(timers_own_siginfo(&f.core, f.shared[3]));
	cr_assert_eq(timers_layout(&f.core, &out), 0);
	cr_assert_eq(out.pending, 1);
}

/* A SIGEV_THREAD_ID timer: only its thread's queue holds its own signal. */
Test(timers, own_signal_in_its_thread_queue)
{
	struct rst_timer out;
	struct fixture f;

	setup_core(&f);
	f.t.notify = SIGEV_SIGNAL | SIGEV_THREAD_ID;
	f.t.has_tid = 1;
	f.t.tid = TID_OTHER;
	f.shared[0] = mk_si(&f, 0, SIGRTMIN + 2, SI_TIMER, 3, true);
	f.core.shared_pending = f.shared;
	f.core.n_shared_pending = 1;
	cr_assert_not(timers_own_siginfo(&f.core, f.shared[0]));
	cr_assert_eq(timers_layout(&f.core, &out), 0);
	cr_assert_eq(out.pending, 0);
	f.own[0] = mk_si(&f, 1, SIGRTMIN + 2, SI_TIMER, 3, false);
	f.tc[1].pending = f.own;
	f.tc[1].n_pending = 1;
	cr_assert(timers_own_siginfo(&f.core, f.own[0]));
	cr_assert_eq(timers_layout(&f.core, &out), 0);
	cr_assert_eq(out.pending, 1);
	cr_assert_eq(out.tid, TID_OTHER);
	/* a truncated siginfo is nobody's */
	f.si[1].raw.len = 64;
	cr_assert_not(timers_own_siginfo(&f.core, f.own[0]));
}
