// SPDX-License-Identifier: MIT
/* signalfd: a new one taking the saved signals (the entry's counter is its mask). */
#include <errno.h>
#include <signal.h>
#include <sys/signalfd.h>

#include "dest-agent/restore.h"

static int signalfd_open(const struct fd_open *o, const FdEntry *f, uint64_t key)
{
	sigset_t mask;
	int fd, sig;

	(void)o;
	(void)key;
	sigemptyset(&mask);
	for (sig = 1; sig <= 64; sig++)
		if (f->counter >> (sig - 1) & 1)
			sigaddset(&mask, sig);
	fd = signalfd(-1, &mask, SFD_CLOEXEC);
	return fd < 0 ? -errno : fd_set_nonblock(fd, f);
}

const struct fd_restore_ops signalfd_restore_ops = {
	.type = FD_TYPE__FD_SIGNALFD,
	.name = "signalfd",
	.open = signalfd_open,
};
