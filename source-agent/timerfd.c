// SPDX-License-Identifier: MIT
/*
 * timerfd: its clock, settime flags, time left, interval and the
 * expirations not read yet. fdinfo gives the clock, flags and ticks, but
 * the time left of a periodic timer that expired and was not read is
 * shown as 0 (the kernel moves it on only at a read or timerfd_gettime),
 * so the time left is timerfd_gettime on our copy of the fd: that moves
 * it on too, adding what it passed to the ticks, which the program cannot
 * tell from before.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/files.h"
#include "source-agent/proc.h"
#include "source-agent/timers.h"

static bool timerfd_match(const struct fd_dump *d)
{
	return !strcmp(d->path, "anon_inode:[timerfd]");
}

/* "it_value: (3, 990857)" */
static int fdinfo_ts(const char *info, const char *key, uint64_t *ns)
{
	const char *p = strstr(info, key);
	long long s, n;

	if (!p || sscanf(p + strlen(key), " (%lld, %lld)", &s, &n) != 2 || s < 0 || n < 0)
		return -EINVAL;
	*ns = s * 1000000000ULL + n;
	return 0;
}

/*
 * Ticks and time left that belong together: an expiry between the two
 * reads shows as time left growing (or a one-shot reaching 0): read again.
 */
static int timerfd_read(struct fd_dump *d, int fd, TimerfdEntry *t)
{
	struct fd_dump self = { .pid = getpid(), .fd = fd };
	struct itimerspec g1, g2;
	struct timespec now;
	uint64_t v;
	char *info;
	int ret, i;

	for (i = 0; i < 100; i++) {
		if (timerfd_gettime(fd, &g1))
			return -errno;
		ret = fdinfo_read_all(&self, &info);
		if (ret)
			return ret;
		if (timerfd_gettime(fd, &g2) || clock_gettime(CLOCK_REALTIME, &now)) {
			free(info);
			return -errno;
		}
		ret = fdinfo_u64(info, "clockid:", 10, &v);
		t->clockid = v;
		if (!ret)
			ret = fdinfo_u64(info, "ticks:", 10, &t->ticks);
		if (!ret)
			ret = fdinfo_u64(info, "settime flags:", 8, &v);
		t->settime_flags = v;
		if (!ret)	/* the format ferry understands, though the values are gettime's */
			ret = fdinfo_ts(info, "it_interval:", &v);
		free(info);
		if (ret) {
			pr_err("pid %d: fd %d: cannot parse the timerfd's fdinfo", d->pid, d->fd);
			return -EOPNOTSUPP;
		}
		if (timespec_ns(&g2.it_value) > timespec_ns(&g1.it_value) ||
		    (timespec_ns(&g1.it_value) && !timespec_ns(&g2.it_value)))
			continue;
		t->value_ns = timespec_ns(&g2.it_value);
		t->interval_ns = timespec_ns(&g2.it_interval);
		/* an absolute wall-clock time stays one: both hosts share that clock */
		if ((t->settime_flags & TFD_TIMER_ABSTIME) && t->value_ns &&
		    (t->clockid == CLOCK_REALTIME || t->clockid == CLOCK_REALTIME_ALARM)) {
			t->has_abs_ns = 1;
			t->abs_ns = timespec_ns(&now) + t->value_ns;
		}
		return 0;
	}
	pr_err("pid %d: fd %d: the timerfd expires faster than it can be read", d->pid, d->fd);
	return -EOPNOTSUPP;
}

static int timerfd_dump(struct fd_dump *d)
{
	TimerfdEntry *t;
	int fd, ret;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	timerfd_entry__init(t);
	d->priv = t;
	d->e.type = FD_TYPE__FD_TIMERFD;
	d->e.path = d->path;
	d->e.timerfd = t;
	fd = proc_take_fd(d->pid, d->fd);
	if (fd < 0)
		return fd;
	ret = timerfd_read(d, fd, t);
	close(fd);
	return ret;
}

static void timerfd_free(struct fd_dump *d)
{
	free(d->priv);
	d->priv = NULL;
}

const struct fd_dump_ops timerfd_dump_ops = {
	.type = FD_TYPE__FD_TIMERFD,
	.name = "timerfd",
	.match = timerfd_match,
	.dump = timerfd_dump,
	.free = timerfd_free,
};
