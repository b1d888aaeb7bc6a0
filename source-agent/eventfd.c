// SPDX-License-Identifier: MIT
/* eventfd: its count and whether it is a semaphore, from its fdinfo. */
#include <errno.h>
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
	const char *p;
	char *info;
	int ret;

	e->type = FD_TYPE__FD_EVENTFD;
	e->path = d->path;
	ret = fdinfo_read_all(d, &info);
	if (ret)
		goto out;
	p = strstr(info, "eventfd-count:");
	if (!p) {
		ret = -EINVAL;
		goto out;
	}
	e->has_counter = 1;
	e->counter = strtoull(p + 14, NULL, 16);
	p = strstr(info, "eventfd-semaphore:");
	if (p) {
		e->has_semaphore = 1;
		e->semaphore = strtoul(p + 18, NULL, 10);
	}
out:
	free(info);
	return ret;
}

const struct fd_dump_ops eventfd_dump_ops = {
	.type = FD_TYPE__FD_EVENTFD,
	.name = "eventfd",
	.match = eventfd_match,
	.dump = eventfd_dump,
};
