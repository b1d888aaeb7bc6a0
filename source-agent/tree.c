// SPDX-License-Identifier: MIT
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/core.h"
#include "source-agent/parasite.h"
#include "source-agent/proc.h"
#include "source-agent/seccomp.h"
#include "source-agent/tree.h"

static bool tree_has(const struct tree *t, pid_t pid)
{
	size_t i;

	for (i = 0; i < t->nr; i++)
		if (t->p[i].pid == pid)
			return true;
	return false;
}

static int tree_add(struct tree *t, pid_t pid)
{
	struct tree_proc *n = realloc(t->p, (t->nr + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	t->p = n;
	memset(&t->p[t->nr], 0, sizeof(t->p[t->nr]));
	t->p[t->nr].pid = pid;
	t->p[t->nr].ts.pid = pid;
	t->p[t->nr].dt.uffd = t->p[t->nr].dt.pagemap_fd = -1;
	t->nr++;
	return 0;
}

static void proc_untrack(struct tree_proc *p)
{
	if (p->tracking)
		dirty_close(&p->dt);
	p->tracking = false;
}

static void tree_drop(struct tree *t, size_t i)
{
	proc_untrack(&t->p[i]);
	threads_detach(&t->p[i].ts);
	memmove(&t->p[i], &t->p[i + 1], (t->nr - i - 1) * sizeof(t->p[0]));
	t->nr--;
}

/*
 * Stopped process, not tracked yet: its parasite makes the userfaultfd. The
 * root's parent stays behind: what that refuses is found now, before round 1,
 * like a seccomp filter ferry cannot carry, and keyrings of its own.
 */
static int proc_track(struct tree_proc *p, enum dirty_backend backend, bool root)
{
	struct parasite_ctl *ctl;
	int ret, cret;

	/* a filter notifying a listener: needs ptrace to be seen */
	ret = seccomp_check_seized(&p->ts);
	if (!ret)
		ret = parasite_infect(p->pid, &ctl);
	if (ret)
		return ret;
	ret = core_seized_check(ctl, &p->ts, root);
	if (!ret)
		ret = dirty_open(&p->dt, p->pid, ctl, backend);
	cret = parasite_cure(ctl);
	if (!ret)
		p->tracking = true;
	return ret ? ret : cret;
}

static int add_new_children(struct tree *t, size_t i)
{
	pid_t *kids;
	size_t nr, k;
	int ret;

	ret = proc_read_children(t->p[i].pid, &kids, &nr);
	if (ret)
		return ret;
	for (k = 0; k < nr && !ret; k++)
		if (!tree_has(t, kids[k]))
			ret = tree_add(t, kids[k]);
	free(kids);
	return ret;
}

/*
 * The signal that stopped a job-control stopped process: the last field of
 * /proc/PID/stat (its exit_code) until a tracer stops it in its own way
 * (and 0 after a tracer detached): 0 if unknown.
 */
static int stop_signal(pid_t pid)
{
	char path[64], buf[1024], *p;
	long sig;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return 0;
	p = strrchr(buf, ' ');
	sig = p ? strtol(p + 1, NULL, 10) : 0;
	return sig > 0 && sig < 65 ? sig : 0;
}

int tree_freeze(struct tree *t)
{
	size_t i;
	int ret;

	if (!t->nr && (ret = tree_add(t, t->root)))
		return ret;
	/* Parents come before children: once a parent is stopped its children list is final. */
	for (i = 0; i < t->nr;) {
		struct tree_proc *p = &t->p[i];

		if (!p->ts.nr) {
			struct proc_stat ps;

			/* seen before we seize it: ptrace-stopped it looks stopped anyway */
			p->stopped = !proc_read_stat(p->pid, &ps) && ps.state == 'T';
			/* as first seen: a session's rounds seize it again after detaching */
			if (!p->stopped)
				p->stop_signal = 0;
			else if (!p->stop_signal)
				p->stop_signal = stop_signal(p->pid);
		}
		/* a stopped process we did not resume is still in its ptrace stop */
		ret = p->stopped && p->ts.nr ? 0 : threads_freeze(&p->ts);
		if (ret == -ESRCH && i) {
			pr_info("pid %d left the tree", p->pid);
			tree_drop(t, i);
			continue;
		}
		if (ret == -EPERM && i) {
			pr_err("pid %d (child of the tree) cannot be seized: a zombie or a "
			       "traced process is not supported yet", p->pid);
			return -EOPNOTSUPP;
		}
		if (!ret && !p->tracking)
			ret = proc_track(p, t->backend, i == 0);
		if (!ret)
			ret = add_new_children(t, i);
		if (ret)
			return ret;
		i++;
	}
	return tree_exec_check(t);
}

/*
 * Did @p execute a new program since it was seized? Its old mm is gone (the
 * pagemap fd opened on it reads nothing, or ESRCH) while it lives on.
 */
static bool proc_execed(const struct tree_proc *p)
{
	uint64_t e;
	ssize_t n;

	if (!p->tracking || p->dt.pagemap_fd < 0)
		return false;
	n = pread(p->dt.pagemap_fd, &e, sizeof(e), 0);
	if (n > 0 || (n < 0 && errno != ESRCH))
		return false;
	return !proc_gone(p->pid);
}

int tree_exec_check(struct tree *t)
{
	size_t i;

	if (t->execed)
		return -ENOEXEC;
	for (i = 0; i < t->nr; i++) {
		if (!proc_execed(&t->p[i]))
			continue;
		t->execed = true;
		/* what failed before (a scan, a copy) failed because of this */
		log_reset_reason();
		pr_err("pid %d executed a new program (exec) during the migration: it is not the "
		       "program being moved any more; migration abandoned, the new program runs on",
		       t->p[i].pid);
		return -ENOEXEC;
	}
	return 0;
}

int tree_resume(struct tree *t)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < t->nr; i++) {
		/* a job-control stopped process waits for SIGCONT, not for us */
		int r = t->p[i].stopped ? 0 : threads_resume(&t->p[i].ts);

		if (r && !ret)
			ret = r;
	}
	return ret;
}

void tree_detach(struct tree *t)
{
	size_t i;

	for (i = 0; i < t->nr; i++)
		threads_detach(&t->p[i].ts);
}

void tree_kill(struct tree *t)
{
	size_t i;

	for (i = 0; i < t->nr; i++)
		kill(t->p[i].pid, SIGKILL);
	/* children first: a traced child's exit is ours to collect */
	for (i = t->nr; i-- > 0;) {
		proc_untrack(&t->p[i]);
		threads_kill(&t->p[i].ts);
	}
	free(t->p);
	t->p = NULL;
	t->nr = 0;
}

void tree_release(struct tree *t)
{
	size_t i;

	for (i = 0; i < t->nr; i++) {
		proc_untrack(&t->p[i]);
		threads_detach(&t->p[i].ts);
	}
	free(t->p);
	t->p = NULL;
	t->nr = 0;
}

const struct thread_set *tree_threads(const struct tree *t, size_t i)
{
	return &t->p[i].ts;
}
