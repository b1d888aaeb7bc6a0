// SPDX-License-Identifier: MIT
/*
 * pidfds: opened again on the same process of the tree (pidfd_open), once
 * every process of the tree exists; O_NONBLOCK (PIDFD_NONBLOCK) and O_EXCL
 * (PIDFD_THREAD) as saved.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "dest-agent/restore.h"

static int pidfd_open_fd(const struct fd_open *o, const FdEntry *f, uint64_t key)
{
	pid_t pid;
	int fd;

	(void)key;
	if (!f->has_target || !o->task) {
		pr_err("fd %u: a pidfd without its process in the images", f->fd);
		return -EINVAL;
	}
	pid = o->task(o->task_arg, f->target);
	if (pid <= 0) {
		pr_err("fd %u: a pidfd of pid %u, which is not in the restored tree", f->fd,
		       f->target);
		return -ESRCH;
	}
	fd = syscall(SYS_pidfd_open, pid, f->flags & (O_NONBLOCK | O_EXCL));
	if (fd < 0) {
		pr_perror("cannot open a pidfd of pid %u again", f->target);
		return -errno;
	}
	if (fcntl(fd, F_SETFD, FD_CLOEXEC)) {
		close(fd);
		return -errno;
	}
	return fd;
}

const struct fd_restore_ops pidfd_restore_ops = {
	.type = FD_TYPE__FD_PIDFD,
	.name = "pidfd",
	.open = pidfd_open_fd,
};
