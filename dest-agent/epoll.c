// SPDX-License-Identifier: MIT
/*
 * epoll: made empty with the other fds; once all of the process's fds are
 * open, every file it watched is added again under the fd number it had.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "dest-agent/restore.h"

static int epoll_open(const struct fd_open *o, const FdEntry *f, uint64_t key)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);

	(void)o;
	(void)key;
	return fd < 0 ? -errno : fd_set_nonblock(fd, f);
}

static int fd_index(const FilesEntry *fe, uint32_t fd)
{
	size_t j;

	for (j = 0; j < fe->n_fds; j++)
		if (fe->fds[j]->fd == fd)
			return j;
	return -1;
}

/*
 * In a child of ours: the process's fds at their own numbers, then every
 * watch added again. An epoll remembers the fd number a file was added
 * with (fdinfo's "tfd:"), so it must be the process's own number.
 */
static int __attribute__((noreturn)) epoll_child(const FilesEntry *fe, const int *out, int high)
{
	size_t i, k;
	int *mine = calloc(fe->n_fds + 1, sizeof(int));

	if (!mine)
		_exit(1);
	for (i = 0; i < fe->n_fds; i++) {
		mine[i] = fcntl(out[i], F_DUPFD, high);
		if (mine[i] < 0)
			_exit(1);
	}
	/* epolls too: one may watch another (the kernel refuses loops) */
	for (i = 0; i < fe->n_fds; i++)
		if (dup2(mine[i], fe->fds[i]->fd) < 0)
			_exit(1);
	for (i = 0; i < fe->n_fds; i++) {
		const FdEntry *f = fe->fds[i];

		for (k = 0; f->type == FD_TYPE__FD_EPOLL && k < f->n_epoll; k++) {
			const EpollTfd *t = f->epoll[k];
			struct epoll_event ev = { .events = t->events, .data.u64 = t->data };
			int j = fd_index(fe, t->fd);

			/* a watched file is open (the dump refuses one moved since it was added) */
			if (j < 0)
				_exit(3);
			if (epoll_ctl(mine[i], EPOLL_CTL_ADD, t->fd, &ev) && errno != EEXIST)
				_exit(2);
		}
	}
	_exit(0);
}

/* Every file an epoll of this process watched, watched again (the process's fds are all open). */
static int epoll_refill(const FilesEntry *fe, const int *out)
{
	bool watches = false;
	int high = 0, status;
	size_t i;
	pid_t c;

	for (i = 0; i < fe->n_fds; i++) {
		watches |= fe->fds[i]->type == FD_TYPE__FD_EPOLL && fe->fds[i]->n_epoll;
		if ((int)fe->fds[i]->fd + 1 > high)
			high = fe->fds[i]->fd + 1;
	}
	if (!watches)
		return 0;
	c = fork();
	if (c < 0)
		return -errno;
	if (c == 0)
		epoll_child(fe, out, high + 64);
	if (waitpid(c, &status, 0) < 0)
		return -errno;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
		pr_err("an epoll watches a file under an fd number the process does not have");
		return -EINVAL;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		pr_err("cannot add the watches of an epoll again");
		return -EIO;
	}
	return 0;
}

const struct fd_restore_ops epoll_restore_ops = {
	.type = FD_TYPE__FD_EPOLL,
	.name = "epoll",
	.open = epoll_open,
	.all_open = epoll_refill,
};
