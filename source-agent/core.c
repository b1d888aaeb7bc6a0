// SPDX-License-Identifier: MIT
/*
 * The per-process core (core-<pid>.img): creds, rlimits, sigactions,
 * itimers, cwd, root, umask, personality, queued signals, and each thread's
 * registers, xstate, sigmask, rseq, altstack, clear_child_tid and name.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/log.h"
#include "common/util.h"
#include "proto/image.h"
#include "source-agent/core.h"
#include "source-agent/dump.h"
#include "source-agent/parasite.h"
#include "source-agent/preflight.h"
#include "source-agent/seccomp.h"
#include "source-agent/sigqueue.h"

int parasite_collect(struct parasite_ctl *ctl, const struct thread_set *ts,
		     struct parasite_data *pd)
{
	size_t i;
	int ret;

	pd->ti = calloc(ts->nr, sizeof(*pd->ti));
	if (!pd->ti)
		return -ENOMEM;
	ret = parasite_get_sigactions(ctl, pd->sa);
	if (!ret)
		ret = parasite_get_itimers(ctl, pd->it);
	for (i = 0; !ret && i < ts->nr; i++)
		ret = parasite_thread_info(ctl, ts->tids[i], &pd->ti[i]);
	if (!ret)
		ret = timers_collect(ts->pid, ctl, &pd->timers);
	return ret;
}

void parasite_data_free(struct parasite_data *pd)
{
	free(pd->ti);
	timers_free(&pd->timers);
}

/* What core-<pid>.img points to while it is built. */
struct core_store {
	SigactionEntry sae[PRS_NSIG], *sap[PRS_NSIG];
	TimevalPair tv[3], *tvp[3];
	RlimitEntry rl[RLIM_NLIMITS], *rlp[RLIM_NLIMITS];
	CredsEntry creds;
	char cwd[PATH_MAX], root[PATH_MAX];
	ThreadCore *tc, **tcp;
	char (*comms)[16];
	uint64_t (*cpus)[THREAD_CPU_MASK_BYTES / 8];	/* each thread's affinity mask */
	struct sigqueue *sq, shq;
	size_t nr_threads;
	struct seccomp_table sec;
	SeccompFilter **secp;
};

/*
 * Limit @res of @pid from /proc/PID/limits (its lines are in RLIMIT_*
 * order; soft and hard in fixed columns): prlimit() of another user's
 * process needs CAP_SYS_RESOURCE, which a confined root may lack.
 */
static int limits_file(pid_t pid, int res, struct rlimit *r)
{
	char path[64], buf[4096], *line;
	int i;

	snprintf(path, sizeof(path), "/proc/%d/limits", pid);
	if (read_small_file(path, buf, sizeof(buf)) < 0)
		return -1;
	line = strchr(buf, '\n');	/* the header */
	for (i = 0; line && i < res; i++)
		line = strchr(line + 1, '\n');
	if (!line || strlen(line + 1) < 67) {
		errno = EINVAL;
		return -1;
	}
	line++;
	r->rlim_cur = strncmp(line + 26, "unlimited", 9) ? strtoull(line + 26, NULL, 10) :
			RLIM_INFINITY;
	r->rlim_max = strncmp(line + 47, "unlimited", 9) ? strtoull(line + 47, NULL, 10) :
			RLIM_INFINITY;
	return 0;
}

/* Sigactions and itimers, as the parasite read them. */
static void core_signals(ProcCore *pc, struct core_store *cs, const struct parasite_data *pd)
{
	const struct prs_sigaction *sa = pd->sa;
	const struct itimerval *it = pd->it;
	int i;

	for (i = 0; i < PRS_NSIG; i++) {
		sigaction_entry__init(&cs->sae[i]);
		cs->sae[i].sig = i + 1;
		cs->sae[i].handler = sa[i].handler;
		cs->sae[i].flags = sa[i].flags;
		cs->sae[i].restorer = sa[i].restorer;
		cs->sae[i].mask = sa[i].mask;
		cs->sap[i] = &cs->sae[i];
	}
	for (i = 0; i < 3; i++) {
		TimevalPair *tv = &cs->tv[i];

		timeval_pair__init(tv);
		tv->interval_us = it[i].it_interval.tv_sec * 1000000ULL + it[i].it_interval.tv_usec;
		tv->value_us = it[i].it_value.tv_sec * 1000000ULL + it[i].it_value.tv_usec;
		cs->tvp[i] = tv;
	}
	pc->sigactions = cs->sap;
	pc->n_sigactions = PRS_NSIG;
	pc->itimers = cs->tvp;
	pc->n_itimers = 3;
}

static int core_rlimits(pid_t pid, ProcCore *pc, struct core_store *cs)
{
	int i;

	for (i = 0; i < RLIM_NLIMITS; i++) {
		struct rlimit r;

		if (prlimit(pid, i, NULL, &r) && (errno != EPERM || limits_file(pid, i, &r)))
			return -errno;
		rlimit_entry__init(&cs->rl[i]);
		cs->rl[i].cur = r.rlim_cur;
		cs->rl[i].max = r.rlim_max;
		cs->rlp[i] = &cs->rl[i];
	}
	pc->rlimits = cs->rlp;
	pc->n_rlimits = RLIM_NLIMITS;
	return 0;
}

/* Creds, umask, cwd, root, personality. */
static int core_proc(pid_t pid, ProcCore *pc, struct core_store *cs)
{
	char path[64], pers[32];
	ssize_t n;
	int ret;

	creds_entry__init(&cs->creds);
	ret = proc_read_creds(pid, &cs->creds, &pc->umask);
	if (ret)
		return ret;
	n = proc_readlink(pid, "cwd", cs->cwd, sizeof(cs->cwd));
	if (n >= 0)
		n = proc_readlink(pid, "root", cs->root, sizeof(cs->root));
	if (n < 0)
		return n;
	snprintf(path, sizeof(path), "/proc/%d/personality", pid);
	if (read_small_file(path, pers, sizeof(pers)) < 0)
		return -errno;
	pc->creds = &cs->creds;
	pc->personality = strtoul(pers, NULL, 16);
	pc->cwd = cs->cwd;
	pc->root = cs->root;
	return 0;
}

/* @t: the thread's registers as frozen, taken before the parasite touched anything. */
static void dump_thread(pid_t pid, const struct tracee *t, ThreadCore *tc, char comm[16])
{
	uint32_t rseq_len, rseq_sig;
	uint64_t rseq_addr;
	pid_t tid = t->tid;
	char path[64];

	tc->tid = tid;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", pid, tid);
	if (read_small_file(path, comm, 16) > 0) {
		comm[strcspn(comm, "\n")] = 0;
		tc->comm = comm;
	}
	tc->regs.data = (uint8_t *)&t->regs;
	tc->regs.len = sizeof(t->regs);
	tc->xstate.data = t->xstate;
	tc->xstate.len = t->xstate_len;
	tc->sigmask = t->sigmask;
	if (!tracee_rseq(tid, &rseq_addr, &rseq_len, &rseq_sig)) {
		tc->has_rseq_addr = tc->has_rseq_len = tc->has_rseq_sig = 1;
		tc->rseq_addr = rseq_addr;
		tc->rseq_len = rseq_len;
		tc->rseq_sig = rseq_sig;
	}
}

/* A "Name:\t<hex>" line of a status file; -1 if missing. */
static int status_hex(const char *buf, const char *name, uint64_t *v)
{
	const char *p = strstr(buf, name);

	if (!p)
		return -1;
	*v = strtoull(p + strlen(name), NULL, 16);
	return 0;
}

/* Scheduling policy, nice, priority and deadline parameters of one thread. */
static int thread_sched(pid_t tid, ThreadCore *tc)
{
	struct sched_attr_k sa = { 0 };

	if (syscall(SYS_sched_getattr, tid, &sa, sizeof(sa), 0))
		return -errno;
	tc->has_sched_policy = tc->has_sched_flags = tc->has_sched_nice = 1;
	tc->has_sched_priority = tc->has_sched_runtime = tc->has_sched_deadline = 1;
	tc->has_sched_period = 1;
	tc->sched_policy = sa.sched_policy;
	tc->sched_flags = sa.sched_flags;
	tc->sched_nice = sa.sched_nice;
	tc->sched_priority = sa.sched_priority;
	tc->sched_runtime = sa.sched_runtime;
	tc->sched_deadline = sa.sched_deadline;
	tc->sched_period = sa.sched_period;
	return 0;
}

/*
 * CPU affinity, I/O priority and timer slack of one thread: set from the
 * outside too, by taskset, ionice, or the thread itself.
 */
static int thread_placement(pid_t tid, ThreadCore *tc, uint64_t *mask)
{
	char path[64], buf[32];
	long r;
	int n;

	r = syscall(SYS_sched_getaffinity, tid, THREAD_CPU_MASK_BYTES, mask);
	if (r < 0)
		return -errno;
	tc->has_cpu_affinity = 1;
	tc->cpu_affinity.data = (uint8_t *)mask;
	tc->cpu_affinity.len = r;
	r = syscall(SYS_ioprio_get, 1 /* IOPRIO_WHO_PROCESS */, tid);
	if (r < 0)
		return -errno;
	tc->has_ioprio = 1;
	tc->ioprio = r;
	snprintf(path, sizeof(path), "/proc/%d/timerslack_ns", tid);	/* a thread's too */
	n = read_small_file(path, buf, sizeof(buf));
	if (n < 0)
		return n;
	tc->has_timer_slack_ns = 1;
	tc->timer_slack_ns = strtoull(buf, NULL, 10);
	return 0;
}

/* What is read from the outside: scheduling, robust list, capabilities, no_new_privs. */
static int thread_attrs(pid_t pid, pid_t tid, ThreadCore *tc)
{
	static const char *const names[] = { "\nCapInh:", "\nCapPrm:", "\nCapEff:",
					     "\nCapBnd:", "\nCapAmb:", "\nNoNewPrivs:" };
	uint64_t v[ARRAY_SIZE(names)];
	char path[64], buf[8192];
	size_t len = 0, i;
	void *head = NULL;
	int ret;

	ret = thread_sched(tid, tc);
	if (ret)
		return ret;
	if (syscall(SYS_get_robust_list, tid, &head, &len))
		return -errno;
	tc->has_robust_list = tc->has_robust_list_len = 1;
	tc->robust_list = (uint64_t)head;
	tc->robust_list_len = len;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	ret = read_small_file(path, buf, sizeof(buf));
	if (ret < 0)
		return ret;
	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (status_hex(buf, names[i], &v[i]))
			return -EINVAL;
	tc->has_cap_inh = tc->has_cap_prm = tc->has_cap_eff = 1;
	tc->has_cap_bnd = tc->has_cap_amb = tc->has_no_new_privs = 1;
	tc->cap_inh = v[0];
	tc->cap_prm = v[1];
	tc->cap_eff = v[2];
	tc->cap_bnd = v[3];
	tc->cap_amb = v[4];
	tc->no_new_privs = v[5];
	return 0;
}

/*
 * oom_score_adj, THP disable, dumpable, child subreaper, membarrier
 * registrations (as the parasite read them), loginuid.
 */
static int core_attrs(pid_t pid, ProcCore *pc, const struct parasite_data *pd)
{
	char path[64], buf[32];
	int n;

	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", pid);
	n = read_small_file(path, buf, sizeof(buf));
	if (n < 0)
		return n;
	pc->has_oom_score_adj = 1;
	pc->oom_score_adj = strtol(buf, NULL, 10);
	pc->has_thp_disable = 1;
	pc->thp_disable = pd->ti[0].thp_disable;
	/* 2 (suid_dumpable's "root only") is the kernel's to give: prctl sets 0 or 1 */
	if (pd->ti[0].dumpable != 0 && pd->ti[0].dumpable != 1) {
		pr_err("pid %d: dumpable mode %d (after a set-user-ID exec): ferry can only "
		       "restore 0 or 1", pid, pd->ti[0].dumpable);
		return -EOPNOTSUPP;
	}
	pc->has_dumpable = 1;
	pc->dumpable = pd->ti[0].dumpable;
	pc->has_child_subreaper = 1;
	pc->child_subreaper = pd->ti[0].subreaper;
	if (pd->ti[0].membarrier < 0 ||
	    (pd->ti[0].membarrier & ~FERRY_MEMBARRIER_REGISTRATIONS)) {
		pr_err("pid %d: cannot read its membarrier registrations (%s): ferry cannot "
		       "move a process whose registrations it cannot see", pid,
		       pd->ti[0].membarrier < 0 ? strerror(-pd->ti[0].membarrier) :
		       "unknown registration bits");
		return -EOPNOTSUPP;
	}
	pc->has_membarrier = 1;
	pc->membarrier = pd->ti[0].membarrier;
	/* no audit in this kernel: no file */
	snprintf(path, sizeof(path), "/proc/%d/loginuid", pid);
	if (read_small_file(path, buf, sizeof(buf)) > 0) {
		pc->has_loginuid = 1;
		pc->loginuid = strtoul(buf, NULL, 10);
	}
	return 0;
}

/*
 * What no restore can make again: a zombie, a process traced by another
 * tracer (a debugger, strace), a cwd or root directory that was deleted.
 */
int core_check(pid_t pid)
{
	static const char *const dirs[] = { "cwd", "root" };
	char path[64], buf[PATH_MAX], *p;
	struct proc_stat ps;
	size_t i;
	ssize_t n;
	long tracer;
	int ret;

	ret = proc_read_stat(pid, &ps);
	if (ret)
		return ret == -ENOENT ? -ESRCH : ret;
	if (ps.state == 'Z' || ps.state == 'X') {
		pr_err("pid %d is a zombie (exited, not reaped by its parent, pid %d): ferry cannot "
		       "move zombies yet", pid, ps.ppid);
		return -EOPNOTSUPP;
	}
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	n = read_small_file(path, buf, sizeof(buf));
	if (n < 0)
		return n == -ENOENT ? -ESRCH : n;
	p = strstr(buf, "\nTracerPid:");
	tracer = p ? strtol(p + 11, NULL, 10) : 0;
	if (tracer && tracer != getpid()) {
		pr_err("pid %d is traced by pid %ld (a debugger, strace): ferry cannot move a "
		       "traced process", pid, tracer);
		return -EOPNOTSUPP;
	}
	for (i = 0; i < ARRAY_SIZE(dirs); i++) {
		n = proc_readlink(pid, dirs[i], buf, sizeof(buf));
		if (n < 0)
			return n == -ENOENT ? -ESRCH : n;
		if (n > 10 && !strcmp(buf + n - 10, " (deleted)")) {
			pr_err("pid %d: its %s directory %s was deleted: ferry cannot move that",
			       pid, dirs[i], buf);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

/*
 * Processes (not threads) that share a kernel object clone(2) can share:
 * CLONE_VM (a vfork child too), CLONE_FILES, CLONE_FS. (Not CLONE_IO or
 * CLONE_SYSVSEM: kcmp finds every process without an I/O context or an undo
 * list equal, so they would be told apart from nothing.)
 * The restore makes each process its own, so a change one makes would no
 * longer show in the other: refused. kcmp orders the objects, so one sort
 * per kind finds every pair.
 */
static const struct {
	int type;
	const char *what;
} share_kinds[] = {
	{ 1 /* KCMP_VM */, "memory (CLONE_VM, or a vfork child)" },
	{ 2 /* KCMP_FILES */, "fd table (CLONE_FILES)" },
	{ 3 /* KCMP_FS */, "cwd, root and umask (CLONE_FS)" },
};

struct share_sort {
	int type;
	int err;
};

static int share_cmp(const void *a, const void *b, void *arg)
{
	struct share_sort *s = arg;
	long r = syscall(SYS_kcmp, *(const pid_t *)a, *(const pid_t *)b, s->type, 0, 0);

	if (r < 0) {
		if (!s->err)
			s->err = errno;
		return 0;
	}
	return r == 0 ? 0 : r == 1 ? -1 : 1;
}

int core_share_check(const pid_t *pids, size_t nr)
{
	struct share_sort s;
	pid_t *v;
	size_t i, k;
	int ret = 0;

	if (nr < 2)
		return 0;
	v = malloc(nr * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (k = 0; k < ARRAY_SIZE(share_kinds) && !ret; k++) {
		memcpy(v, pids, nr * sizeof(*v));
		s.type = share_kinds[k].type;
		s.err = 0;
		qsort_r(v, nr, sizeof(*v), share_cmp, &s);
		for (i = 1; i < nr && !s.err; i++) {
			long r = syscall(SYS_kcmp, v[i - 1], v[i], s.type, 0, 0);

			if (r < 0 && errno != ESRCH) {
				s.err = errno;
			} else if (r == 0) {
				pr_err("pid %d and pid %d share one %s: ferry cannot move that yet",
				       v[i - 1], v[i], share_kinds[k].what);
				ret = -EOPNOTSUPP;
				break;
			}
		}
		/* ESRCH: one exited meanwhile (the dump sees the rest again) */
		if (!ret && s.err && s.err != ESRCH) {
			pr_err("cannot compare the processes' %s with kcmp: %s",
			       share_kinds[k].what, strerror(s.err));
			ret = -s.err;
		}
	}
	free(v);
	return ret;
}

int core_pdeath_check(pid_t pid, pid_t tid, int sig)
{
	struct proc_stat ps;

	if (!sig || proc_read_stat(pid, &ps) || proc_traced_by_me(ps.ppid))
		return 0;
	pr_err("pid %d: thread %d has a parent-death signal (%d) and its parent, pid %d, "
	       "stays behind: the restored copy would get the signal at once; ferry cannot "
	       "move that yet", pid, tid, sig, ps.ppid);
	return -EOPNOTSUPP;
}

/*
 * Keyrings of a thread or process of its own (keyctl): the restore makes
 * none, so its keys would be gone. (Its session keyring is the one it
 * inherited, most often the login's: not checked.)
 */
int core_keyrings_check(pid_t pid, pid_t tid, int keyrings)
{
	if (!keyrings)
		return 0;
	pr_err("pid %d: thread %d has a %s keyring of its own (keyctl): ferry cannot move "
	       "that yet", pid, tid, keyrings & KEYRINGS_PROCESS ? "process" : "thread");
	return -EOPNOTSUPP;
}

int core_seized_check(struct parasite_ctl *ctl, const struct thread_set *ts, bool root)
{
	struct prs_thread_info ti;
	size_t k;
	int ret = 0;

	for (k = 0; k < ts->nr && !ret; k++) {
		memset(&ti, 0, sizeof(ti));
		ret = parasite_thread_info(ctl, ts->tids[k], &ti);
		if (!ret && root)
			ret = core_pdeath_check(ts->pid, ts->tids[k], ti.pdeathsig);
		if (!ret)
			ret = core_keyrings_check(ts->pid, ts->tids[k], ti.keyrings);
	}
	return ret;
}

/* The threads, and the signals still queued (they are queued again at the destination). */
static int core_threads(pid_t pid, const struct thread_set *ts, const struct tracee *t,
			const struct parasite_data *pd, ProcCore *pc, struct core_store *cs)
{
	size_t k;
	int ret;

	cs->tc = calloc(ts->nr, sizeof(*cs->tc));
	cs->tcp = calloc(ts->nr, sizeof(*cs->tcp));
	cs->comms = calloc(ts->nr, sizeof(*cs->comms));
	cs->cpus = calloc(ts->nr, sizeof(*cs->cpus));
	cs->sq = calloc(ts->nr, sizeof(*cs->sq));
	if (!cs->tc || !cs->tcp || !cs->comms || !cs->cpus || !cs->sq)
		return -ENOMEM;
	cs->nr_threads = ts->nr;
	ret = sigqueue_peek(pid, true, &cs->shq);
	if (ret)
		return ret;
	pc->shared_pending = cs->shq.p;
	pc->n_shared_pending = cs->shq.nr;
	for (k = 0; k < ts->nr; k++) {
		ThreadCore *tc = &cs->tc[k];

		thread_core__init(tc);
		dump_thread(pid, &t[k], tc, cs->comms[k]);
		ret = sigqueue_peek(ts->tids[k], false, &cs->sq[k]);
		if (ret)
			return ret;
		tc->pending = cs->sq[k].p;
		tc->n_pending = cs->sq[k].nr;
		tc->has_altstack_sp = tc->has_altstack_size = tc->has_altstack_flags = 1;
		tc->altstack_sp = (uint64_t)pd->ti[k].ss.ss_sp;
		tc->altstack_size = pd->ti[k].ss.ss_size;
		tc->altstack_flags = pd->ti[k].ss.ss_flags;
		tc->has_clear_tid_addr = 1;
		tc->clear_tid_addr = pd->ti[k].clear_tid;
		tc->has_pdeathsig = tc->has_securebits = 1;
		tc->pdeathsig = pd->ti[k].pdeathsig;
		tc->securebits = pd->ti[k].securebits;
		tc->has_tsc_mode = tc->has_mce_kill = 1;
		tc->tsc_mode = pd->ti[k].tsc_mode;
		tc->mce_kill = pd->ti[k].mce_kill;
		ret = core_pdeath_check(pid, ts->tids[k], tc->pdeathsig);
		if (!ret)
			ret = core_keyrings_check(pid, ts->tids[k], pd->ti[k].keyrings);
		if (ret)
			return ret;
		ret = thread_attrs(pid, ts->tids[k], tc);
		if (!ret)
			ret = thread_placement(ts->tids[k], tc, cs->cpus[k]);
		if (!ret)
			ret = seccomp_dump_thread(pid, ts->tids[k], &cs->sec, tc);
		if (ret)
			return ret;
		cs->tcp[k] = tc;
	}
	pc->threads = cs->tcp;
	pc->n_threads = ts->nr;
	ret = seccomp_check_sharing(pid, cs->tcp, ts->nr);
	if (ret || !cs->sec.nr)
		return ret;
	cs->secp = calloc(cs->sec.nr, sizeof(*cs->secp));
	if (!cs->secp)
		return -ENOMEM;
	for (k = 0; k < cs->sec.nr; k++)
		cs->secp[k] = &cs->sec.f[k];
	pc->seccomp_filters = cs->secp;
	pc->n_seccomp_filters = cs->sec.nr;
	return 0;
}

int dump_core(pid_t pid, const struct thread_set *ts, const struct tracee *t,
	      const struct parasite_data *pd, const struct proc_stat *ps, struct sink *sink)
{
	ProcCore pc = PROC_CORE__INIT;
	struct core_store *cs;
	char name[64];
	size_t k;
	int ret;

	cs = calloc(1, sizeof(*cs));
	if (!cs)
		return -ENOMEM;
	core_signals(&pc, cs, pd);
	ret = core_rlimits(pid, &pc, cs);
	if (!ret)
		ret = core_proc(pid, &pc, cs);
	if (!ret)
		ret = core_threads(pid, ts, t, pd, &pc, cs);
	if (!ret)
		ret = core_attrs(pid, &pc, pd);
	if (ret)
		goto out;
	pc.pid = pid;
	pc.comm = (char *)ps->comm;
	pc.posix_timers = pd->timers.p;
	pc.n_posix_timers = pd->timers.nr;
	snprintf(name, sizeof(name), "core-%d.img", pid);
	ret = sink_add_msg(sink, name, &pc.base);
out:
	for (k = 0; k < cs->nr_threads; k++) {
		sigqueue_free(&cs->sq[k]);
		seccomp_thread_free(&cs->tc[k]);
	}
	seccomp_table_free(&cs->sec);
	free(cs->secp);
	sigqueue_free(&cs->shq);
	free(cs->sq);
	free(cs->comms);
	free(cs->cpus);
	free(cs->tc);
	free(cs->tcp);
	free(cs);
	return ret;
}
