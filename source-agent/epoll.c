// SPDX-License-Identifier: MIT
/* epoll: its interest list, from the fdinfo "tfd:" lines (fd numbers as added). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	for (p = a->info, n = 0; (p = strstr(p, "tfd:")); p++) {
		unsigned int tfd, events;
		uint64_t data;

		if (sscanf(p, "tfd: %u events: %x data: %" SCNx64, &tfd, &events, &data) != 3)
			return -EINVAL;
		epoll_tfd__init(&a->tfd[n]);
		a->tfd[n].fd = tfd;
		a->tfd[n].events = events;
		a->tfd[n].data = data;
		a->ptr[n] = &a->tfd[n];
		n++;
	}
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
	.dump = epoll_dump,
	.free = epoll_free,
};
