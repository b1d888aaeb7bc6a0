// SPDX-License-Identifier: MIT
/* epoll: its interest list, from the fdinfo "tfd:" lines (fd numbers as added). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "common/log.h"
#include "source-agent/files.h"

/* The interest list the entry points to, alive until files-<pid>.img is sent. */
struct epoll_store {
	char *info;
	EpollTfd *tfd;
	EpollTfd **ptr;
};

static bool epoll_match(const struct fd_dump *d)
{
	return !strcmp(d->path, "anon_inode:[eventpoll]");
}

/* The "tfd:" line at or after *@p: 1 (*@p past its start), 0: no more, -EINVAL. */
static int tfd_next(const char **p, EpollTfd *t)
{
	unsigned int tfd, events;
	uint64_t data;

	*p = strstr(*p, "tfd:");
	if (!*p)
		return 0;
	if (sscanf(*p, "tfd: %u events: %x data: %" SCNx64, &tfd, &events, &data) != 3)
		return -EINVAL;
	(*p)++;
	epoll_tfd__init(t);
	t->fd = tfd;
	t->events = events;
	t->data = data;
	return 1;
}

/* Is the @toff-th file @d watches under number @tfd the file @d->pid has open at @tfd? */
static long tfd_same(const struct fd_dump *d, uint32_t tfd, uint32_t toff)
{
	struct kcmp_epoll_slot slot = { .efd = d->fd, .tfd = tfd, .toff = toff };

	return syscall(SYS_kcmp, d->pid, d->pid, KCMP_EPOLL_TFD, tfd, &slot);
}

/*
 * The restore adds every watch again under the fd number it was added
 * with, to the file the process has open there. A watch lives as long as
 * its file, not its fd: a file added, then moved to another number (dup,
 * close) or closed here while open elsewhere, is still watched, and the
 * number may now name another file (or two watched files share it). Such
 * a watch would be lost or put on the wrong file: refused.
 */
static int epoll_check(struct fd_dump *d)
{
	char *info = NULL;
	const char *p;
	EpollTfd t;
	long r;
	int ret;

	ret = fdinfo_read_all(d, &info);
	if (ret) {
		free(info);
		/* closed meanwhile (the preflight's tree runs): nothing to check */
		return ret == -ENOENT ? 0 : ret;
	}
	for (p = info; !ret && (ret = tfd_next(&p, &t)) > 0;) {
		ret = 0;
		r = tfd_same(d, t.fd, 0);
		if (r < 0 && errno == ENOENT)
			continue;	/* removed meanwhile (the tree runs in the preflight) */
		if (r < 0 && errno != EBADF) {
			ret = -errno;
			pr_err("pid %d: fd %d: cannot compare an epoll's watch with kcmp: %s",
			       d->pid, d->fd, strerror(-ret));
			break;
		}
		if (r || tfd_same(d, t.fd, 1) >= 0) {
			pr_err("pid %d: fd %d is an epoll watching a file under fd number %u, "
			       "which %s: ferry cannot move that yet", d->pid, d->fd, t.fd,
			       r < 0 ? "the process no longer has open (moved or closed since)" :
			       r ? "names another file now" : "names two watched files");
			ret = -EOPNOTSUPP;
		}
	}
	free(info);
	return ret;
}

static int epoll_dump(struct fd_dump *d)
{
	struct epoll_store *a = calloc(1, sizeof(*a));
	const char *p;
	size_t n = 0;
	int ret;

	if (!a)
		return -ENOMEM;
	d->priv = a;
	d->e.type = FD_TYPE__FD_EPOLL;
	d->e.path = d->path;
	ret = fdinfo_read_all(d, &a->info);
	if (ret)
		return ret;
	for (p = a->info; (p = strstr(p, "tfd:")); p++)
		n++;
	a->tfd = calloc(n + 1, sizeof(*a->tfd));
	a->ptr = calloc(n + 1, sizeof(*a->ptr));
	if (!a->tfd || !a->ptr)
		return -ENOMEM;
	for (p = a->info, n = 0; (ret = tfd_next(&p, &a->tfd[n])) > 0; n++)
		a->ptr[n] = &a->tfd[n];
	if (ret)
		return ret;
	d->e.epoll = a->ptr;
	d->e.n_epoll = n;
	return 0;
}

static void epoll_free(struct fd_dump *d)
{
	struct epoll_store *a = d->priv;

	if (a) {
		free(a->info);
		free(a->tfd);
		free(a->ptr);
	}
	free(a);
}

const struct fd_dump_ops epoll_dump_ops = {
	.type = FD_TYPE__FD_EPOLL,
	.name = "epoll",
	.match = epoll_match,
	.check = epoll_check,
	.dump = epoll_dump,
	.free = epoll_free,
};
