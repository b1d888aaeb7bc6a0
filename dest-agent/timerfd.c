// SPDX-License-Identifier: MIT
/*
 * timerfd: a new one on the same clock, armed with the time it had left
 * (an absolute CLOCK_REALTIME* time stays absolute), and its unread
 * expirations put back with TFD_IOC_SET_TICKS. Arming resets the ticks,
 * and a time left that passed during the migration expires at once: the
 * expirations the kernel counted by now are read and added to the saved
 * ones, so none is lost or counted twice (but one that falls between that
 * read and the ioctl, microseconds, would be overwritten).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/log.h"
#include "dest-agent/restore.h"

#define TFD_MAX_NS (1ULL << 62)

static int timerfd_arm(int fd, const TimerfdEntry *t)
{
	uint64_t v = t->has_abs_ns ? t->abs_ns : t->value_ns, n = 0, ticks = t->ticks;
	struct itimerspec its = {
		{ t->interval_ns / 1000000000, t->interval_ns % 1000000000 },
		{ v / 1000000000, v % 1000000000 },
	};
	int flags = t->has_abs_ns ? t->settime_flags & (TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET)
				  : 0;

	if (v && timerfd_settime(fd, flags, &its, NULL))
		return -errno;
	if (read(fd, &n, sizeof(n)) == sizeof(n))
		ticks += n;
	else if (errno != EAGAIN)
		return -errno;
	if (ticks && ioctl(fd, FERRY_TFD_IOC_SET_TICKS, &ticks))
		return -errno;
	return 0;
}

static int timerfd_open(const struct fd_open *o, const FdEntry *f, uint64_t key)
{
	const TimerfdEntry *t = f->timerfd;
	int fd, ret;

	(void)o;
	(void)key;
	if (!t || t->value_ns > TFD_MAX_NS || t->interval_ns > TFD_MAX_NS ||
	    (t->has_abs_ns && t->abs_ns > TFD_MAX_NS)) {
		pr_err("fd %u: the timerfd in the image is not valid", f->fd);
		return -EINVAL;
	}
	fd = timerfd_create(t->clockid, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_err("fd %u: timerfd_create(clock %u): %s", f->fd, t->clockid, strerror(-ret));
		return ret;
	}
	ret = timerfd_arm(fd, t);
	if (ret) {
		pr_err("fd %u: cannot arm the timerfd again: %s", f->fd, strerror(-ret));
		close(fd);
		return ret;
	}
	return fd_set_nonblock(fd, f);
}

const struct fd_restore_ops timerfd_restore_ops = {
	.type = FD_TYPE__FD_TIMERFD,
	.name = "timerfd",
	.open = timerfd_open,
};
