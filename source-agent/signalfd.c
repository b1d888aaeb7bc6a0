// SPDX-License-Identifier: MIT
/* signalfd: the signals it takes, from its fdinfo (in the entry's counter). */
#include <stdlib.h>
#include <string.h>

#include "source-agent/files.h"

static bool signalfd_match(const struct fd_dump *d)
{
	return !strcmp(d->path, "anon_inode:[signalfd]");
}

static int signalfd_dump(struct fd_dump *d)
{
	FdEntry *e = &d->e;
	char *info;
	int ret;

	e->type = FD_TYPE__FD_SIGNALFD;
	e->path = d->path;
	ret = fdinfo_read_all(d, &info);
	if (!ret)
		ret = fdinfo_u64(info, "sigmask:", 16, &e->counter);
	if (!ret)
		e->has_counter = 1;
	free(info);
	return ret;
}

const struct fd_dump_ops signalfd_dump_ops = {
	.type = FD_TYPE__FD_SIGNALFD,
	.name = "signalfd",
	.match = signalfd_match,
	.dump = signalfd_dump,
};
