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
#include "restorer/restorer.h"
#include "source-agent/preflight.h"
#include "source-agent/proc.h"

static bool same_ids(const CredsEntry *a, const CredsEntry *b)
{
	return a->uid == b->uid && a->euid == b->euid && a->suid == b->suid &&
	       a->fsuid == b->fsuid && a->gid == b->gid && a->egid == b->egid &&
	       a->sgid == b->sgid && a->fsgid == b->fsgid && a->n_groups == b->n_groups &&
	       !memcmp(a->groups, b->groups, a->n_groups * sizeof(*a->groups));
}

int creds_check(pid_t pid)
{
	uint32_t groups[RST_MAX_GROUPS], umask;
	CredsEntry lead = CREDS_ENTRY__INIT, mine = CREDS_ENTRY__INIT;
	size_t nr, i;
	pid_t *tids;
	int ret;

	ret = proc_read_creds(pid, &lead, &umask);
	if (ret)
		return ret == -ENOENT ? -ESRCH : ret;
	if (lead.n_groups > RST_MAX_GROUPS) {
		pr_err("pid %d: %zu supplementary groups: ferry restores at most %d", pid,
		       lead.n_groups, RST_MAX_GROUPS);
		return -EOPNOTSUPP;
	}
	/* proc_read_creds's groups live until its next call */
	memcpy(groups, lead.groups, lead.n_groups * sizeof(*groups));
	lead.groups = groups;
	ret = proc_read_threads(pid, &tids, &nr);
	if (ret)
		return ret;
	for (i = 0; i < nr && !ret; i++) {
		/* a thread's own status: /proc/TID/status */
		if (tids[i] == pid || proc_read_creds(tids[i], &mine, &umask))
			continue;	/* the leader, or a thread gone */
		if (!same_ids(&lead, &mine)) {
			pr_err("pid %d: thread %d has credentials of its own (uids, gids or groups "
			       "differ from the process's): ferry cannot move that yet", pid, tids[i]);
			ret = -EOPNOTSUPP;
		}
	}
	free(tids);
	return ret;
}
