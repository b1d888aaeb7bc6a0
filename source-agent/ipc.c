// SPDX-License-Identifier: MIT
/*
 * System V semaphores and message queues live in the IPC namespace, not in
 * the process: ferry cannot tell which ones it uses, nor move them yet. A
 * namespace holding any is refused, naming them. /proc/sysvipc shows the
 * reader's namespace: a target in another one is read from a child that
 * joined it.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/preflight.h"

#define IDS_MAX 200

/* The ids (second column) of /proc/sysvipc/@what in @ids, "" if none. */
static int sysvipc_ids(const char *what, char *ids, size_t len)
{
	char path[64], buf[16384], *line, *nl;
	size_t n = 0;
	int nr = 0;
	long key, id;

	*ids = 0;
	snprintf(path, sizeof(path), "/proc/sysvipc/%s", what);
	if (read_small_file(path, buf, sizeof(buf)) < 0)
		return 0;	/* no SysV IPC in this kernel */
	line = strchr(buf, '\n');	/* the header */
	for (; line && *++line; line = nl) {
		nl = strchr(line, '\n');
		if (sscanf(line, "%ld %ld", &key, &id) != 2)
			break;
		if (n + 24 < len)
			n += snprintf(ids + n, len - n, "%s%ld", nr ? ", " : "", id);
		nr++;
		if (!nl)
			break;
	}
	return nr;
}

/* Both lists, read in @pid's IPC namespace: "sem ids\nmsg ids". */
static int ipc_read(pid_t pid, char *sem, char *msg)
{
	struct stat mine, its;
	char path[64], buf[2 * IDS_MAX + 2];
	int p[2], nsfd, status;
	ssize_t n;
	pid_t c;

	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", pid);
	if (stat(path, &its) || stat("/proc/self/ns/ipc", &mine))
		return -errno;
	if (its.st_ino == mine.st_ino && its.st_dev == mine.st_dev) {
		sysvipc_ids("sem", sem, IDS_MAX);
		sysvipc_ids("msg", msg, IDS_MAX);
		return 0;
	}
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return -errno;
	if (pipe2(p, O_CLOEXEC)) {
		close(nsfd);
		return -errno;
	}
	c = fork();
	if (c == 0) {
		close(p[0]);
		if (setns(nsfd, CLONE_NEWIPC))
			_exit(1);
		sysvipc_ids("sem", buf, IDS_MAX);
		n = strlen(buf);
		buf[n++] = '\n';
		sysvipc_ids("msg", buf + n, IDS_MAX);
		_exit(write_full(p[1], buf, strlen(buf) + 1) ? 1 : 0);
	}
	close(nsfd);
	close(p[1]);
	n = c < 0 ? -1 : read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	if (c > 0)
		waitpid(c, &status, 0);
	if (c < 0 || n <= 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return -EIO;
	buf[n] = 0;
	snprintf(sem, IDS_MAX, "%.*s", (int)strcspn(buf, "\n"), buf);
	snprintf(msg, IDS_MAX, "%s", strchr(buf, '\n') ? strchr(buf, '\n') + 1 : "");
	return 0;
}

int ipc_check(pid_t pid)
{
	char sem[IDS_MAX], msg[IDS_MAX];
	int ret;

	ret = ipc_read(pid, sem, msg);
	if (ret == -ENOENT)
		return ret;	/* gone */
	if (ret) {
		pr_err("pid %d: cannot read its IPC namespace's SysV objects: %s", pid,
		       strerror(-ret));
		return ret;
	}
	if (*sem)
		pr_err("pid %d: its IPC namespace holds SysV semaphore sets (id %s): ferry cannot "
		       "move SysV semaphores yet", pid, sem);
	else if (*msg)
		pr_err("pid %d: its IPC namespace holds SysV message queues (id %s): ferry cannot "
		       "move SysV message queues yet", pid, msg);
	return *sem || *msg ? -EOPNOTSUPP : 0;
}
