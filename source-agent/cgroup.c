// SPDX-License-Identifier: MIT
/*
 * cgroup membership: each process's lines of /proc/PID/cgroup (one per
 * hierarchy, "ID:CONTROLLERS:PATH") go in pstree.img every round; the
 * restore puts the process into the same paths (dest-agent/cgroup.c).
 * Every thread must be where its process is: threads in cgroups of their
 * own (threaded cgroups of v2, a v1 "tasks" file) are refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/cgroup.h"
#include "source-agent/preflight.h"
#include "source-agent/proc.h"

#define CGROUP_FILE_MAX 8192

static int cgroup_file(pid_t pid, pid_t tid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/cgroup", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	n = read_small_file(path, buf, len);
	if (n < 0)
		return n;
	if ((size_t)n >= len - 1)
		return -E2BIG;
	return 0;
}

/* The first line where @a and @b differ, in @out (for the message). */
static void first_diff(const char *a, const char *b, char *out, size_t len)
{
	size_t i = 0, start = 0;

	while (a[i] && a[i] == b[i]) {
		if (a[i] == '\n')
			start = i + 1;
		i++;
	}
	snprintf(out, len, "%.*s", (int)strcspn(b + start, "\n"), b + start);
}

int cgroup_check(pid_t pid)
{
	char *lead, *mine, line[256];
	size_t nr = 0, i;
	pid_t *tids = NULL;
	int ret;

	lead = malloc(CGROUP_FILE_MAX);
	mine = malloc(CGROUP_FILE_MAX);
	ret = lead && mine ? 0 : -ENOMEM;
	if (!ret)
		ret = cgroup_file(pid, 0, lead, CGROUP_FILE_MAX);
	if (ret == -ENOENT)
		ret = -ESRCH;	/* gone */
	if (!ret)
		ret = proc_read_threads(pid, &tids, &nr);
	for (i = 0; i < nr && !ret; i++) {
		if (tids[i] == pid || cgroup_file(pid, tids[i], mine, CGROUP_FILE_MAX))
			continue;	/* the leader, or a thread gone */
		if (strcmp(lead, mine)) {
			first_diff(lead, mine, line, sizeof(line));
			pr_err("pid %d: thread %d is in a cgroup of its own (%s; a threaded "
			       "cgroup): ferry cannot move that yet", pid, tids[i], line);
			ret = -EOPNOTSUPP;
		}
	}
	if (ret == -E2BIG) {
		pr_err("pid %d: its /proc cgroup file is larger than %d bytes", pid,
		       CGROUP_FILE_MAX);
		ret = -EOPNOTSUPP;
	}
	free(tids);
	free(lead);
	free(mine);
	return ret;
}

int cgroup_read(pid_t pid, struct cgroup_lines *cl)
{
	char *p, *nl;
	int ret;

	memset(cl, 0, sizeof(*cl));
	cl->buf = malloc(CGROUP_FILE_MAX);
	if (!cl->buf)
		return -ENOMEM;
	ret = cgroup_file(pid, 0, cl->buf, CGROUP_FILE_MAX);
	for (p = cl->buf; !ret && *p; p = nl + 1) {
		nl = strchr(p, '\n');
		if (!nl)
			break;
		*nl = 0;
		if (cl->nr == CGROUP_MAX_LINES) {
			ret = -E2BIG;
			break;
		}
		cl->line[cl->nr++] = p;
	}
	if (ret)
		cgroup_lines_free(cl);
	return ret;
}

void cgroup_lines_free(struct cgroup_lines *cl)
{
	free(cl->buf);
	memset(cl, 0, sizeof(*cl));
}
