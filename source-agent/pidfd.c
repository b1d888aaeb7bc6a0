// SPDX-License-Identifier: MIT
/*
 * pidfds: a pidfd names a process; restored processes keep their PIDs, so
 * a pidfd of a process of the tree is opened again on the same PID. Its
 * process is read from the fdinfo ("Pid:" in our namespace, for the check
 * that it is in the tree; the last "NSpid:" field, the tree's own, for the
 * restore). A pidfd of a process outside the tree, of one that exited, or
 * of a thread that is not its process's leader is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/files.h"

static bool pidfd_match(const struct fd_dump *d)
{
	return !strcmp(d->path, "anon_inode:[pidfd]");
}

/* The innermost of the NSpid: fields (the pid in the process's own namespace). */
static int fdinfo_nspid(const char *info, pid_t *pid)
{
	const char *p = strstr(info, "NSpid:");
	char *end;
	long v = -1;

	if (!p)
		return -EINVAL;
	for (p += 6; *p && *p != '\n'; p = end) {
		long n = strtol(p, &end, 10);

		if (end == p)
			break;
		v = n;
	}
	if (v <= 0)
		return -EINVAL;
	*pid = v;
	return 0;
}

/* Its process in our namespace (*@pid) and in its own (*@nspid). */
static int pidfd_target(struct fd_dump *d, pid_t *pid, pid_t *nspid)
{
	char *info = NULL, path[64], buf[4096];
	uint64_t v;
	int ret;

	ret = fdinfo_read_all(d, &info);
	if (!ret)
		ret = fdinfo_u64(info, "\nPid:", 10, &v);
	if (!ret && (int64_t)v <= 0) {
		pr_err("pid %d: fd %d is a pidfd of a process that has exited (or of another pid "
		       "namespace): ferry cannot move it", d->pid, d->fd);
		ret = -EOPNOTSUPP;
	}
	if (!ret)
		ret = fdinfo_nspid(info, nspid);
	free(info);
	if (ret)
		return ret;
	*pid = v;
	/* a thread's pidfd (PIDFD_THREAD): only a leader's, whose TID is its PID */
	snprintf(path, sizeof(path), "/proc/%d/status", *pid);
	if (read_small_file(path, buf, sizeof(buf)) < 0)
		return -errno;
	if (!strstr(buf, "\nTgid:") || strtol(strstr(buf, "\nTgid:") + 6, NULL, 10) != *pid) {
		pr_err("pid %d: fd %d is a pidfd of thread %d, not a process: ferry cannot move "
		       "it yet", d->pid, d->fd, *pid);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* Whether its process is in the tree is known once every fd of the tree is seen. */
static int pidfd_check(struct fd_dump *d)
{
	pid_t pid, nspid;
	int ret = pidfd_target(d, &pid, &nspid);

	return ret ? ret : file_ids_add_pidfd(d->ids, d->pid, d->fd, pid);
}

static int pidfd_dump(struct fd_dump *d)
{
	pid_t pid, nspid;
	int ret = pidfd_target(d, &pid, &nspid);

	if (ret)
		return ret;
	d->e.type = FD_TYPE__FD_PIDFD;
	d->e.path = d->path;
	d->e.has_target = 1;
	d->e.target = nspid;
	return 0;
}

const struct fd_dump_ops pidfd_dump_ops = {
	.type = FD_TYPE__FD_PIDFD,
	.name = "pidfd",
	.match = pidfd_match,
	.check = pidfd_check,
	.dump = pidfd_dump,
};
