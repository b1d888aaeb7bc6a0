// SPDX-License-Identifier: MIT
/* eventfd: its count and whether it is a semaphore, from its fdinfo. */
#include <stdlib.h>
#include <string.h>

#include "source-agent/files.h"

static bool eventfd_match(const struct fd_dump *d)
{
	return !strcmp(d->path, "anon_inode:[eventfd]");
}

static int eventfd_dump(struct fd_dump *d)
{
	FdEntry *e = &d->e;
	uint64_t sem;
	char *info;
	int ret;

	e->type = FD_TYPE__FD_EVENTFD;
	e->path = d->path;
	ret = fdinfo_read_all(d, &info);
	if (!ret)
		ret = fdinfo_u64(info, "eventfd-count:", 16, &e->counter);
	if (!ret) {
		e->has_counter = 1;
		if (!fdinfo_u64(info, "eventfd-semaphore:", 10, &sem)) {
			e->has_semaphore = 1;
			e->semaphore = sem;
		}
	}
	free(info);
	return ret;
}

const struct fd_dump_ops eventfd_dump_ops = {
	.type = FD_TYPE__FD_EVENTFD,
	.name = "eventfd",
	.match = eventfd_match,
	.dump = eventfd_dump,
};
