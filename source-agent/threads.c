// SPDX-License-Identifier: MIT
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/log.h"
#include "common/ptrace.h"
#include "source-agent/proc.h"
#include "source-agent/threads.h"

#define FREEZE_PASSES 16

static bool has_tid(const struct thread_set *ts, pid_t tid)
{
	size_t i;

	for (i = 0; i < ts->nr; i++)
		if (ts->tids[i] == tid)
			return true;
	return false;
}

static int add_tid(struct thread_set *ts, pid_t tid)
{
	pid_t *n = realloc(ts->tids, (ts->nr + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	ts->tids = n;
	ts->tids[ts->nr++] = tid;
	return 0;
}

static void drop_tid(struct thread_set *ts, size_t i)
{
	int status;

	waitpid(ts->tids[i], &status, __WALL | WNOHANG);	/* reap a traced thread that exited */
	memmove(&ts->tids[i], &ts->tids[i + 1], (ts->nr - i - 1) * sizeof(pid_t));
	ts->nr--;
}

/* Seize what is new in /proc/PID/task; returns how many were new. */
static int seize_new_threads(struct thread_set *ts)
{
	pid_t *tids;
	size_t n, i;
	int ret, added = 0;

	ret = proc_read_threads(ts->pid, &tids, &n);
	if (ret)
		return ret;
	for (i = 0; i < n && ret >= 0; i++) {
		if (has_tid(ts, tids[i]))
			continue;
		ret = tracee_seize(tids[i]);
		if (ret == -ESRCH) {	/* exited meanwhile */
			ret = 0;
			continue;
		}
		if (!ret)
			ret = add_tid(ts, tids[i]);
		added++;
	}
	free(tids);
	return ret < 0 ? ret : added;
}

int threads_freeze(struct thread_set *ts)
{
	size_t i;
	int ret, pass;

	/* The leader first: if it is gone the process is gone. */
	if (!ts->nr) {
		ret = tracee_seize(ts->pid);
		if (ret)
			return ret;
		ret = add_tid(ts, ts->pid);
		if (ret)
			return ret;
	} else {
		ret = tracee_interrupt(ts->pid);
		if (ret)
			return ret;
	}
	for (i = 1; i < ts->nr;) {
		ret = tracee_interrupt(ts->tids[i]);
		if (ret == -ESRCH) {
			drop_tid(ts, i);
			continue;
		}
		if (ret)
			return ret;
		i++;
	}
	for (pass = 0; pass < FREEZE_PASSES; pass++) {
		ret = seize_new_threads(ts);
		if (ret <= 0)
			return ret;
	}
	pr_err("pid %d keeps creating threads: cannot freeze it", ts->pid);
	return -EAGAIN;
}

int threads_resume(struct thread_set *ts)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < ts->nr; i++) {
		int r = tracee_resume(ts->tids[i]);

		if (r && r != -ESRCH && !ret)
			ret = r;
	}
	return ret;
}

void threads_detach(struct thread_set *ts)
{
	size_t i;

	for (i = 0; i < ts->nr; i++)
		tracee_detach(ts->tids[i]);
	free(ts->tids);
	ts->tids = NULL;
	ts->nr = 0;
}

/*
 * SIGKILL the process and collect its traced threads: until we wait for
 * them they stay zombies, and the leader is not reported before the rest.
 */
void threads_kill(struct thread_set *ts)
{
	size_t i;
	int status;

	kill(ts->pid, SIGKILL);
	for (i = ts->nr; i-- > 0;)
		tracee_reap(ts->tids[i], &status);
	threads_free(ts);
}

void threads_free(struct thread_set *ts)
{
	free(ts->tids);
	ts->tids = NULL;
	ts->nr = 0;
}
