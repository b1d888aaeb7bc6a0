// SPDX-License-Identifier: MIT
/* eventfd: a new one with the saved count (and semaphore mode). */
#include <errno.h>
#include <sys/eventfd.h>

#include "dest-agent/restore.h"

static int eventfd_open(const struct fd_open *o, const FdEntry *f, uint64_t key)
{
	int fd = eventfd(f->counter, EFD_CLOEXEC | (f->semaphore ? EFD_SEMAPHORE : 0));

	(void)o;
	(void)key;
	return fd < 0 ? -errno : fd_set_nonblock(fd, f);
}

const struct fd_restore_ops eventfd_restore_ops = {
	.type = FD_TYPE__FD_EVENTFD,
	.name = "eventfd",
	.open = eventfd_open,
};
