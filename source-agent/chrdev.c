// SPDX-License-Identifier: MIT
/* Character devices: opened again by path (and device number) at the destination. */
#include <sys/stat.h>

#include "source-agent/files.h"

static bool chr_match(const struct fd_dump *d)
{
	return S_ISCHR(d->st.st_mode);
}

static int chr_dump(struct fd_dump *d)
{
	FdEntry *e = &d->e;

	e->type = FD_TYPE__FD_CHR;
	e->path = d->path;
	e->has_rdev = 1;
	e->rdev = d->st.st_rdev;
	return 0;
}

const struct fd_dump_ops chr_dump_ops = {
	.type = FD_TYPE__FD_CHR,
	.name = "character device",
	.match = chr_match,
	.check = tty_fd_check,
	.dump = chr_dump,
};
