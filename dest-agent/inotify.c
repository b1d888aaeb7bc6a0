// SPDX-License-Identifier: MIT
/*
 * inotify instances: a new one, its watches added again by path with their
 * masks. Watch numbers are handed out increasing from the last one given
 * (the kernel allocates them cyclically), so a number the source skipped is
 * skipped here by adding and removing a watch on a throwaway memfd; the
 * IN_IGNORED events that leaves are read out before the process gets it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "dest-agent/restore.h"
#include "proto/image.h"

/* Read out every queued event (the IN_IGNORED of the skipping watches). */
static int inotify_drain(int fd)
{
	char buf[4096] __attribute__((aligned(8)));
	int n = 0;

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	if (errno != EAGAIN)
		return -errno;
	if (ioctl(fd, FIONREAD, &n) || n)
		return n ? -EBUSY : -errno;
	return 0;
}

/* The watch numbers below @wd not given yet are given and taken back; *next: the next one. */
static int inotify_skip_to(int fd, const char *dummy, int wd, int *next)
{
	int w;

	while (*next < wd) {
		w = inotify_add_watch(fd, dummy, IN_ACCESS);
		if (w < 0 || inotify_rm_watch(fd, w))
			return -errno;
		if (w < *next || w >= wd)
			return -ERANGE;	/* not the kernel's order we count on */
		*next = w + 1;
		if (!(w % 1024) && inotify_drain(fd))
			return -EIO;
	}
	return 0;
}

static int inotify_watches(int fd, const FdEntry *f)
{
	char dummy[64];
	int dfd, next = 1, w, ret = 0;
	size_t i;

	dfd = memfd_create("ferry-inotify", MFD_CLOEXEC);
	if (dfd < 0)
		return -errno;
	snprintf(dummy, sizeof(dummy), "/proc/self/fd/%d", dfd);
	for (i = 0; i < f->n_watches && !ret; i++) {
		const InotifyWatch *iw = f->watches[i];

		if ((int)iw->wd < next || iw->wd > INOTIFY_WD_MAX ||
		    (iw->mask & ~INOTIFY_MASK_CARRIED) || !iw->path) {
			pr_err("fd %u: inotify watch %u (mask %#x) is out of order or bad", f->fd,
			       iw->wd, iw->mask);
			ret = -EINVAL;
			break;
		}
		ret = inotify_skip_to(fd, dummy, iw->wd, &next);
		if (ret)
			break;
		/* the path names the very inode the source watched: no symlink followed */
		w = inotify_add_watch(fd, iw->path, iw->mask | IN_DONT_FOLLOW);
		if (w != (int)iw->wd) {
			ret = w < 0 ? -errno : -ERANGE;
			pr_err("cannot watch %s again as inotify watch %u%s: %s", iw->path, iw->wd,
			       w < 0 ? "" : " (another number came)", strerror(-ret));
			break;
		}
		next = w + 1;
	}
	close(dfd);
	if (!ret)
		ret = inotify_drain(fd);
	return ret;
}

static int inotify_open(const struct fd_open *o, const FdEntry *f, uint64_t key)
{
	int fd, ret;

	(void)o;
	(void)key;
	fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd < 0)
		return -errno;
	ret = inotify_watches(fd, f);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;	/* fd_setup sets its saved O_NONBLOCK */
}

const struct fd_restore_ops inotify_restore_ops = {
	.type = FD_TYPE__FD_INOTIFY,
	.name = "inotify",
	.open = inotify_open,
};
