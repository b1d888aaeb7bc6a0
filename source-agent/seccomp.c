// SPDX-License-Identifier: MIT
/* Seccomp: a filter (or strict mode) in force on any thread is refused. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/preflight.h"
#include "source-agent/proc.h"

/* The Seccomp: field of a status file, 0 if none (kernel without seccomp). */
static long seccomp_mode(const char *path)
{
	char buf[4096], *p;

	if (read_small_file(path, buf, sizeof(buf)) < 0)
		return 0;	/* thread gone */
	p = strstr(buf, "\nSeccomp:");
	return p ? strtol(p + 9, NULL, 10) : 0;
}

int seccomp_check(pid_t pid)
{
	char path[96];
	pid_t *tids;
	size_t nr, i;
	long mode;
	int ret;

	ret = proc_read_threads(pid, &tids, &nr);
	if (ret)
		return ret;
	for (i = 0; i < nr; i++) {
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tids[i]);
		mode = seccomp_mode(path);
		if (!mode)
			continue;
		if (tids[i] == pid)
			pr_err("pid %d: seccomp (mode %ld) is in force: ferry cannot move it yet",
			       pid, mode);
		else
			pr_err("pid %d: thread %d: seccomp (mode %ld) is in force: ferry cannot "
			       "move it yet", pid, tids[i], mode);
		ret = -EOPNOTSUPP;
		break;
	}
	free(tids);
	return ret;
}
