/* SPDX-License-Identifier: MIT */
#ifndef FERRY_ANONFD_H
#define FERRY_ANONFD_H

#include <sys/types.h>

#include "images.pb-c.h"

/* An anonymous-inode fd being dumped, and what its entry points to. */
struct anonfd {
	FdEntry *e;
	EpollTfd *tfd;
	EpollTfd **ptr;
	char *info;		/* its fdinfo */
};

/* epoll, eventfd or signalfd: fill a->e; anything else is refused. */
int dump_anonfd(pid_t pid, int fd, const char *link, struct anonfd *a);
void anonfd_free(struct anonfd *a);

#endif
