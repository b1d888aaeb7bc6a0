// SPDX-License-Identifier: MIT
/*
 * File locks and leases (POSIX, flock, OFD): refused until they travel. The
 * kernel lists those an fd holds in its fdinfo ("lock:" lines).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/files.h"

static const struct {
	const char *tag, *what;
} lock_kinds[] = {
	{ "POSIX", "a POSIX lock" },
	{ "FLOCK", "a FLOCK lock" },
	{ "OFDLCK", "an OFD lock" },
	{ "LEASE", "a lease" },
	{ "DELEG", "a delegation" },
};

int locks_fd_check(pid_t pid, int fd)
{
	char path[64], buf[8192], tag[16] = "", *p;
	const char *what = "a lock";
	size_t i;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	n = read_small_file(path, buf, sizeof(buf));
	if (n < 0)
		return n;
	p = strstr(buf, "\nlock:");
	if (!p)
		return 0;
	/* "lock:\t1: POSIX  ADVISORY  WRITE 1234 fe:00:567 100 149" */
	sscanf(p + 6, " %*d: %15s", tag);
	for (i = 0; i < ARRAY_SIZE(lock_kinds); i++)
		if (!strcmp(tag, lock_kinds[i].tag))
			what = lock_kinds[i].what;
	pr_err("pid %d: fd %d holds %s: ferry cannot move file locks and leases yet", pid, fd,
	       what);
	return -EOPNOTSUPP;
}
