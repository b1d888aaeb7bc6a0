// SPDX-License-Identifier: MIT
/* Character devices: opened by path again; one missing here is /dev/null instead. */
#include <errno.h>
#include <fcntl.h>

#include "common/log.h"
#include "dest-agent/restore.h"

static int chr_open(const struct fd_open *o, const FdEntry *f, uint64_t key)
{
	int fd = open(f->path, fd_open_flags(f));

	(void)o;
	(void)key;
	if (fd < 0) {
		pr_warn("fd %u: %s cannot be opened here (%m): /dev/null instead", f->fd, f->path);
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	}
	return fd < 0 ? -errno : fd;
}

const struct fd_restore_ops chr_restore_ops = {
	.type = FD_TYPE__FD_CHR,
	.name = "character device",
	.open = chr_open,
};
