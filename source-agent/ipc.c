// SPDX-License-Identifier: MIT
/*
 * System V semaphores and message queues live in the IPC namespace, not in
 * the process, and ferry cannot move them yet. A target in an IPC namespace
 * of its own is refused if that namespace holds any (read from a child that
 * joined it: /proc/sysvipc shows the reader's namespace). In migrate's own
 * namespace (the host's, shared with unrelated programs) those the process
 * used are refused: a semaphore it last operated on (GETPID), a queue it
 * last sent to or received from. So is every object no live process has
 * used (a set created and held but never operated on, or whose last user
 * is gone) and that was created or changed (ctime) after the process
 * started: the kernel keeps no creator pid for them, so ferry cannot tell
 * that the process does not hold its id. One older than the process, that
 * it never used, is another program's (a host's stale set must not refuse
 * every migration); the process could still know its id, as it could know
 * any object of the host's.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/preflight.h"
#include "source-agent/proc.h"

#define IDS_MAX 200

/* Is there a live process @u (a last user of an object)? */
static bool user_alive(long u)
{
	char path[32];

	snprintf(path, sizeof(path), "/proc/%ld", u);
	return u > 0 && !access(path, F_OK);
}

/*
 * Is the object with last users @u (@nr of them, 0: none) @pid's, as far as
 * can be told: @pid used it, or no live process did and it is @young (made
 * or changed since @pid started).
 */
static bool ipc_maybe_ours(const long *u, int nr, pid_t pid, bool young)
{
	bool others = false;
	int i;

	for (i = 0; i < nr; i++) {
		if (u[i] == pid)
			return true;
		others |= u[i] && user_alive(u[i]);
	}
	return !others && young;
}

/* The same for semaphore set @id (@nsems of them): their last users (GETPID). */
static bool sem_maybe_ours(long id, int nsems, pid_t pid, bool young)
{
	long u[64];
	int i, nr = 0;

	for (i = 0; i < nsems; i++) {
		long v = semctl(id, i, GETPID);

		if (v == pid)
			return true;
		if (v > 0 && nr < (int)ARRAY_SIZE(u))
			u[nr++] = v;
	}
	return ipc_maybe_ours(u, nr, pid, young);
}

/*
 * The ids (second column) of /proc/sysvipc/@what ("sem" or "msg") in @ids,
 * "" if none: all of them (@pid 0), or those @pid used or may hold (one no
 * live process used, made or changed since @pid started at @since).
 */
static int sysvipc_ids(const char *what, pid_t pid, int64_t since, char *ids, size_t len)
{
	char path[64], buf[16384], *line, *nl;
	size_t n = 0;
	int nr = 0;
	long key, id, nsems, lspid = 0, lrpid = 0;
	long long ctime = 0;
	bool sem = !strcmp(what, "sem"), used;

	*ids = 0;
	snprintf(path, sizeof(path), "/proc/sysvipc/%s", what);
	if (read_small_file(path, buf, sizeof(buf)) < 0)
		return 0;	/* no SysV IPC in this kernel */
	line = strchr(buf, '\n');	/* the header */
	for (; line && *++line; line = nl) {
		nl = strchr(line, '\n');
		/*
		 * sem: key semid perms nsems uid gid cuid cgid otime ctime;
		 * msg: key msqid perms cbytes qnum lspid lrpid uid gid cuid cgid
		 * stime rtime ctime
		 */
		if (sem ? sscanf(line, "%ld %ld %*o %ld %*d %*d %*d %*d %*d %lld",
				 &key, &id, &nsems, &ctime) < 4 :
			  sscanf(line, "%ld %ld %*o %*u %*u %ld %ld %*d %*d %*d %*d %*d %*d %lld",
				 &key, &id, &lspid, &lrpid, &ctime) < 5)
			break;
		if (sem) {
			used = !pid || sem_maybe_ours(id, nsems, pid, ctime >= since);
		} else {
			long u[2] = { lspid, lrpid };

			used = !pid || ipc_maybe_ours(u, 2, pid, ctime >= since);
		}
		if (used && n + 24 < len)
			n += snprintf(ids + n, len - n, "%s%ld", nr ? ", " : "", id);
		nr += used;
		if (!nl)
			break;
	}
	return nr;
}

/*
 * Both lists for @pid: those it used in migrate's namespace (*own false),
 * or all of its own namespace's (*own true).
 */
static int ipc_read(pid_t pid, char *sem, char *msg, bool *own)
{
	struct stat mine, its;
	char path[64], buf[2 * IDS_MAX + 2];
	int p[2], nsfd, status;
	ssize_t n;
	pid_t c;

	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", pid);
	if (stat(path, &its) || stat("/proc/self/ns/ipc", &mine))
		return -errno;
	*own = its.st_ino != mine.st_ino || its.st_dev != mine.st_dev;
	if (!*own) {
		int64_t since = proc_start_time(pid);

		if (since < 0)
			return since;
		/*
		 * since is rounded down (btime and the ticks both): a set whose
		 * ctime (rounded down too) is below it was made before the start
		 */
		sysvipc_ids("sem", pid, since, sem, IDS_MAX);
		sysvipc_ids("msg", pid, since, msg, IDS_MAX);
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
		sysvipc_ids("sem", 0, 0, buf, IDS_MAX);
		n = strlen(buf);
		buf[n++] = '\n';
		sysvipc_ids("msg", 0, 0, buf + n, IDS_MAX);
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
	const char *whose, *hint;
	bool own = false;
	int ret;

	ret = ipc_read(pid, sem, msg, &own);
	if (ret == -ENOENT)
		return ret;	/* gone */
	if (ret) {
		pr_err("pid %d: cannot read its IPC namespace's SysV objects: %s", pid,
		       strerror(-ret));
		return ret;
	}
	whose = own ? "its IPC namespace holds" : "uses or may hold";
	hint = own ? "" : " (one no live process has used, made since it started, may be its)";
	if (*sem)
		pr_err("pid %d: %s SysV semaphore sets (id %s): ferry cannot move SysV semaphores "
		       "yet%s", pid, whose, sem, hint);
	else if (*msg)
		pr_err("pid %d: %s SysV message queues (id %s): ferry cannot move SysV message "
		       "queues yet%s", pid, whose, msg, hint);
	return *sem || *msg ? -EOPNOTSUPP : 0;
}
