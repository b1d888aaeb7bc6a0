// SPDX-License-Identifier: MIT
/*
 * POSIX timers (timer_create): /proc/PID/timers gives each timer's id,
 * signal and sigev_value, how it notifies (and which thread) and its
 * clock; timer_gettime and timer_getoverrun injected into the frozen
 * process give the time left and the interval. The restore makes each
 * one again with its id (dest-agent/timers.c). Clocks whose time does not
 * carry are refused by name.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/parasite.h"
#include "source-agent/preflight.h"
#include "source-agent/timers.h"

#define TIMERS_BUF	(256 << 10)

/* One timer as /proc/PID/timers shows it. */
struct ptimer {
	int32_t id, clockid, signo;
	uint32_t notify, tid;
	uint64_t sival;
};

static const char *clock_name(int32_t c)
{
	switch (c) {
	case CLOCK_PROCESS_CPUTIME_ID:
	case CLOCK_THREAD_CPUTIME_ID:
		return "a CPU-time clock";
	case CLOCK_REALTIME_ALARM:
	case CLOCK_BOOTTIME_ALARM:
		return "an alarm clock";
	case CLOCK_TAI:
		return "CLOCK_TAI";
	}
	return c < 0 ? "a CPU-time clock" : "an unknown clock";
}

/*
 * What carries: time left on CLOCK_REALTIME, MONOTONIC and BOOTTIME (the
 * relative time is what two hosts share). A CPU-time clock does not: the
 * process's CPU clock starts again near 0 at the destination, a thread's
 * is the creating thread's, which /proc does not say, and another
 * process's is named by its pid.
 */
static bool clock_carries(int32_t c)
{
	return c == CLOCK_REALTIME || c == CLOCK_MONOTONIC || c == CLOCK_BOOTTIME;
}

/* "notify: signal/tid.123": SIGEV_* value and thread; -EINVAL if not understood. */
static int parse_notify(const char *s, uint32_t *notify, uint32_t *tid)
{
	static const struct { const char *name; uint32_t v; } kinds[] = {
		{ "signal/", SIGEV_SIGNAL }, { "none/", SIGEV_NONE }, { "thread/", SIGEV_THREAD },
	};
	size_t i, l;
	char *end;
	long n;

	for (i = 0; i < ARRAY_SIZE(kinds); i++) {
		l = strlen(kinds[i].name);
		if (strncmp(s, kinds[i].name, l))
			continue;
		s += l;
		*notify = kinds[i].v;
		if (!strncmp(s, "tid.", 4))
			*notify |= SIGEV_THREAD_ID;
		else if (strncmp(s, "pid.", 4))
			return -EINVAL;
		n = strtol(s + 4, &end, 10);
		if (end == s + 4 || n <= 0 || *end != '\n')
			return -EINVAL;
		*tid = n;
		return 0;
	}
	return -EINVAL;
}

/* One "ID: ...\nsignal: ...\nnotify: ...\nClockID: ...\n" block at @p. */
static int parse_timer(const char *p, struct ptimer *t)
{
	unsigned long long sival;
	const char *s;
	int n;

	memset(t, 0, sizeof(*t));
	if (sscanf(p, "ID: %d\nsignal: %d/%llx\n%n", &t->id, &t->signo, &sival, &n) != 3)
		return -EINVAL;
	t->sival = sival;
	s = p + n;
	if (strncmp(s, "notify: ", 8) || parse_notify(s + 8, &t->notify, &t->tid))
		return -EINVAL;
	s = strstr(s, "\nClockID: ");
	if (!s || sscanf(s, "\nClockID: %d", &t->clockid) != 1)
		return -EINVAL;
	return 0;
}

/* Every timer of @pid in *@out (free it); none without CONFIG_CHECKPOINT_RESTORE. */
static int timers_read(pid_t pid, struct ptimer **out, size_t *nr)
{
	char path[64], *buf, *p;
	size_t cap = 0;
	ssize_t n;
	int ret = 0;

	*out = NULL;
	*nr = 0;
	buf = malloc(TIMERS_BUF);
	if (!buf)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/proc/%d/timers", pid);
	n = read_whole_file(path, buf, TIMERS_BUF);
	if (n < 0) {
		ret = n == -ENOENT ? 0 : n;
		goto out;
	}
	if ((size_t)n >= TIMERS_BUF - 1) {
		pr_err("pid %d: holds more POSIX timers than ferry reads (%s over %d KiB)", pid,
		       path, TIMERS_BUF >> 10);
		ret = -EOPNOTSUPP;
		goto out;
	}
	for (p = buf; (p = strstr(p, "ID: ")); p += 4) {
		if (p != buf && p[-1] != '\n')
			continue;
		ret = grow_array(out, &cap, *nr, sizeof(**out));
		if (ret)
			goto out;
		if (parse_timer(p, &(*out)[*nr])) {
			pr_err("pid %d: cannot parse %s: ferry cannot move timers it cannot read",
			       pid, path);
			ret = -EOPNOTSUPP;
			goto out;
		}
		(*nr)++;
	}
out:
	free(buf);
	if (ret) {
		free(*out);
		*out = NULL;
		*nr = 0;
	}
	return ret;
}

/* A timer the restore cannot make the same: named and refused. */
static int timer_refused(pid_t pid, const struct ptimer *t)
{
	char path[64];

	if (!clock_carries(t->clockid)) {
		pr_err("pid %d: POSIX timer %d runs on %s (clock id %d): ferry cannot move "
		       "timers of that clock", pid, t->id, clock_name(t->clockid), t->clockid);
		return -EOPNOTSUPP;
	}
	if (t->notify & SIGEV_THREAD_ID) {
		snprintf(path, sizeof(path), "/proc/%d/task/%u", pid, t->tid);
		if (access(path, F_OK)) {
			pr_err("pid %d: POSIX timer %d signals thread %u, not one of its own", pid,
			       t->id, t->tid);
			return -EOPNOTSUPP;
		}
	} else if (t->tid != (uint32_t)pid) {
		pr_err("pid %d: POSIX timer %d notifies pid %u, not itself", pid, t->id, t->tid);
		return -EOPNOTSUPP;
	}
	if ((t->notify & ~SIGEV_THREAD_ID) != SIGEV_NONE && (t->signo < 1 || t->signo > 64)) {
		pr_err("pid %d: POSIX timer %d has signal %d", pid, t->id, t->signo);
		return -EOPNOTSUPP;
	}
	return 0;
}

int timers_check(pid_t pid)
{
	struct ptimer *t;
	size_t nr, i;
	int ret;

	ret = timers_read(pid, &t, &nr);
	for (i = 0; !ret && i < nr; i++)
		ret = timer_refused(pid, &t[i]);
	free(t);
	return ret;
}

int timers_collect(pid_t pid, struct parasite_ctl *ctl, struct posix_timers *pt)
{
	struct ptimer *t;
	size_t nr, i;
	int ret;

	memset(pt, 0, sizeof(*pt));
	ret = timers_read(pid, &t, &nr);
	if (ret || !nr)
		goto out;
	pt->e = calloc(nr, sizeof(*pt->e));
	pt->p = calloc(nr, sizeof(*pt->p));
	if (!pt->e || !pt->p) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < nr; i++) {
		PosixTimerEntry *e = &pt->e[i];
		struct itimerspec its;
		int overrun = 0;

		ret = timer_refused(pid, &t[i]);
		if (!ret)
			ret = parasite_timer_get(ctl, t[i].id, &its, &overrun);
		if (ret) {
			if (ret != -EOPNOTSUPP)
				pr_err("pid %d: cannot read POSIX timer %d: %s", pid, t[i].id,
				       strerror(-ret));
			goto out;
		}
		posix_timer_entry__init(e);
		e->id = t[i].id;
		e->clockid = t[i].clockid;
		e->notify = t[i].notify;
		e->signo = t[i].signo;
		e->sival = t[i].sival;
		if (t[i].notify & SIGEV_THREAD_ID) {
			e->has_tid = 1;
			e->tid = t[i].tid;
		}
		e->value_ns = timespec_ns(&its.it_value);
		e->interval_ns = timespec_ns(&its.it_interval);
		e->has_overrun = 1;
		e->overrun = overrun;
		pt->p[i] = e;
		pt->nr++;
	}
out:
	free(t);
	if (ret)
		timers_free(pt);
	return ret;
}

void timers_free(struct posix_timers *pt)
{
	free(pt->e);
	free(pt->p);
	memset(pt, 0, sizeof(*pt));
}
