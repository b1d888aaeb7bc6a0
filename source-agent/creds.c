// SPDX-License-Identifier: MIT
/*
 * Credentials: the restorer gives every thread the process's uids, gids
 * and groups (those of /proc/PID/status), at most RST_MAX_GROUPS groups. A
 * thread whose own differ (a raw setresuid in one thread), or more groups,
 * would come back changed: refused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "restorer/restorer.h"
#include "source-agent/preflight.h"
#include "source-agent/proc.h"

/* The Uid:, Gid: and Groups: lines of a status file, NUL-separated into @out. */
static int id_lines(const char *path, char *out, size_t len, size_t *nr_groups)
{
	static const char *const keys[] = { "\nUid:", "\nGid:", "\nGroups:" };
	char buf[8192];
	size_t i, n = 0;

	*nr_groups = 0;
	memset(out, 0, len);
	if (read_small_file(path, buf, sizeof(buf)) < 0)
		return -errno;
	for (i = 0; i < ARRAY_SIZE(keys); i++) {
		const char *p = strstr(buf, keys[i]), *e;
		size_t l;

		if (!p)
			return -EINVAL;
		p += strlen(keys[i]);
		e = strchr(p, '\n');
		if (!e)
			e = p + strlen(p);
		l = e - p;
		if (n + l + 1 > len)
			return -E2BIG;
		memcpy(out + n, p, l);
		out[n + l] = 0;
		n += l + 1;
		for (; i == 2 && p < e; (*nr_groups)++) {
			char *end;

			strtoul(p, &end, 10);
			if (end == p)
				break;
			p = end;
		}
	}
	return 0;
}

int creds_check(pid_t pid)
{
	char path[96], lead[4096], mine[4096];
	size_t nr, i, groups, g;
	pid_t *tids;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	ret = id_lines(path, lead, sizeof(lead), &groups);
	if (ret)
		return ret == -ENOENT ? -ESRCH : ret;
	if (groups > RST_MAX_GROUPS) {
		pr_err("pid %d: %zu supplementary groups: ferry restores at most %d", pid, groups,
		       RST_MAX_GROUPS);
		return -EOPNOTSUPP;
	}
	ret = proc_read_threads(pid, &tids, &nr);
	if (ret)
		return ret;
	for (i = 0; i < nr && !ret; i++) {
		if (tids[i] == pid)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tids[i]);
		if (id_lines(path, mine, sizeof(mine), &g))
			continue;	/* the thread is gone */
		if (memcmp(lead, mine, sizeof(lead))) {
			pr_err("pid %d: thread %d has credentials of its own (uids, gids or groups "
			       "differ from the process's): ferry cannot move that yet", pid, tids[i]);
			ret = -EOPNOTSUPP;
		}
	}
	free(tids);
	return ret;
}
