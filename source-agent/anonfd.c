// SPDX-License-Identifier: MIT
/*
 * Anonymous-inode fds an event loop is made of: epoll (its interest list
 * from fdinfo "tfd:" lines), eventfd (its count), signalfd (its mask).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/anonfd.h"

#define FDINFO_MAX (1 << 20)

static int fdinfo(pid_t pid, int fd, char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	n = read_small_file(path, buf, len);
	if (n < 0)
		return n;
	if ((size_t)n == len - 1)
		return -EFBIG;	/* an interest list this long is not read whole */
	return 0;
}

static int dump_epoll(pid_t pid, int fd, struct anonfd *a)
{
	const char *p;
	size_t n = 0;
	int ret;

	ret = fdinfo(pid, fd, a->info, FDINFO_MAX);
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
	a->e->epoll = a->ptr;
	a->e->n_epoll = n;
	return 0;
}

static int dump_counter(pid_t pid, int fd, struct anonfd *a, const char *key, int base)
{
	const char *p;
	int ret;

	ret = fdinfo(pid, fd, a->info, FDINFO_MAX);
	if (ret)
		return ret;
	p = strstr(a->info, key);
	if (!p)
		return -EINVAL;
	a->e->has_counter = 1;
	a->e->counter = strtoull(p + strlen(key), NULL, base);
	p = strstr(a->info, "eventfd-semaphore:");
	if (p) {
		a->e->has_semaphore = 1;
		a->e->semaphore = strtoul(p + 18, NULL, 10);
	}
	return 0;
}

int dump_anonfd(pid_t pid, int fd, const char *link, struct anonfd *a)
{
	a->info = malloc(FDINFO_MAX);
	if (!a->info)
		return -ENOMEM;
	if (!strcmp(link, "anon_inode:[eventpoll]")) {
		a->e->type = FD_TYPE__FD_EPOLL;
		return dump_epoll(pid, fd, a);
	}
	if (!strcmp(link, "anon_inode:[eventfd]")) {
		a->e->type = FD_TYPE__FD_EVENTFD;
		return dump_counter(pid, fd, a, "eventfd-count:", 16);
	}
	if (!strcmp(link, "anon_inode:[signalfd]")) {
		a->e->type = FD_TYPE__FD_SIGNALFD;
		return dump_counter(pid, fd, a, "sigmask:", 16);
	}
	pr_err("pid %d: fd %d (%s) is of a kind ferry cannot move yet", pid, fd, link);
	return -EOPNOTSUPP;
}

void anonfd_free(struct anonfd *a)
{
	free(a->info);
	free(a->tfd);
	free(a->ptr);
}
