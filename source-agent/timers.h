/* SPDX-License-Identifier: MIT */
#ifndef FERRY_TIMERS_H
#define FERRY_TIMERS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "images.pb-c.h"

struct parasite_ctl;

/* Nanoseconds of a time left or interval (never negative). */
static inline uint64_t timespec_ns(const struct timespec *t)
{
	return t->tv_sec * 1000000000ULL + t->tv_nsec;
}

/* The POSIX timers of a process, as they go into core-<pid>.img. */
struct posix_timers {
	PosixTimerEntry *e;
	PosixTimerEntry **p;
	size_t nr;
};

/*
 * Read @pid's timers (/proc/PID/timers) and, by timer_gettime and
 * timer_getoverrun injected into the frozen process, their time left and
 * interval. Refuses (-EOPNOTSUPP, named) what timers_check refuses.
 */
int timers_collect(pid_t pid, struct parasite_ctl *ctl, struct posix_timers *pt);
void timers_free(struct posix_timers *pt);

#endif
