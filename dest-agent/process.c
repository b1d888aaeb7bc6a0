// SPDX-License-Identifier: MIT
/*
 * One new process, driven through the restorer blob in trap mode.
 *
 * It is a clone3() child of this program with the saved PID (set_tid). The
 * child only waits to be traced, blocks signals, leaves its session and
 * jumps into the blob; from then on everything happens by commands (see
 * restorer/restorer.h): this program writes a command into the blob's
 * mapping, lets the child run, and waits for its int3. After FINAL each
 * thread stops once more before rt_sigreturn; we step every thread through
 * it, unmap the blob from the outside (an injected munmap), and detach.
 * ptrace, injected syscalls and remote memory are the common layer
 * (common/ptrace.h, common/inject.h); what is here belongs to the restorer.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/inject.h"
#include "common/log.h"
#include "common/ptrace.h"
#include "common/util.h"
#include "dest-agent/restore.h"
#include "restorer-blob.h"

#define LEADER_STACK	(64UL << 10)
#define THREAD_STACK	(16UL << 10)
#define PAYLOAD_CAP	(96UL << 20)	/* reserved, not committed: MAP_NORESERVE */
#define SCRATCH_LEN	(1UL << 20)	/* READ_CMP's buffer, after the payload */
#define ALIGN_UP(x, a)	(((x) + (a) - 1) & ~((uint64_t)(a) - 1))
/*
 * Threads and child processes are traced from birth (on top of
 * TRACEE_OPTIONS). EXITKILL: should `restore` die (killed at its deadline,
 * crashed) before it lets the tree go, the half-made tree dies with it and
 * never runs beside the source; it is cleared just before the detach.
 */
#define RST_TRACE_OPTIONS	(PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_EXITKILL)

/* The child's own fds (fd channel, sync, error pipe) live here, out of the process's way. */
#define WORK_FD_BASE	4000
enum { WORK_SOCK, WORK_SYNC, WORK_ERR, NR_WORK };

extern const ptrdiff_t __rseq_offset;
extern const unsigned int __rseq_size;

static size_t blob_len(void)
{
	return ALIGN_UP(restorer_blob_size, PAGE_SIZE);
}

static size_t args_len(void)
{
	return ALIGN_UP(sizeof(struct rst_args), PAGE_SIZE);
}

static bool overlaps_vmas(const MmEntry *mm, uint64_t s, uint64_t e)
{
	size_t i;

	for (i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->start < e && s < mm->vmas[i]->end)
			return true;
	return false;
}

bool rp_region_collides(const struct rst_process *rp, const MmEntry *mm)
{
	return overlaps_vmas(mm, rp->region_addr, rp->region_addr + rp->region_len);
}

static bool overlaps_any(const MmEntry *const *mms, size_t n, uint64_t s, uint64_t e)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (overlaps_vmas(mms[i], s, e))
			return true;
	return false;
}

/*
 * A place free in every saved address space of the tree (children are
 * forked from their parent's blob: one place for all) and in ours: the
 * blob must not sit on anything it is about to map, and must be mappable
 * here first.
 */
static int pick_region_addr(const MmEntry *const *mms, size_t n, size_t len, uint64_t *addr)
{
	uint64_t a;

	for (a = 0x7e0000000000ULL; a > 0x10000000ULL; a -= 0x1000000000ULL) {
		void *p;

		if (overlaps_any(mms, n, a, a + len))
			continue;
		p = mmap((void *)a, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
			 MAP_FIXED_NOREPLACE, -1, 0);
		if (p == MAP_FAILED)
			continue;
		munmap(p, len);
		*addr = a;
		return 0;
	}
	pr_err("no room for the restorer in the saved address space");
	return -ENOMEM;
}

/* ---- in the child ---- */

static void child_fail(int err_fd, const char *what)
{
	char buf[256];
	int n = snprintf(buf, sizeof(buf), "%s: %s", what, strerror(errno));

	if (write(err_fd, buf, n) < 0)
		_exit(2);
	_exit(1);
}

static void __attribute__((noreturn)) child_main(struct rst_process *rp, const uint8_t *image)
{
	/* entered by jmp: rsp as just after a call (rsp + 8 16-aligned), as SSE stores need */
	uint64_t stack_top = rp->args_addr + args_len() + LEADER_STACK - 64 - 8;
	int err_fd = WORK_FD_BASE + WORK_ERR;
	uint64_t all = ~0ULL;
	void *m;
	char c;

	if (read(WORK_FD_BASE + WORK_SYNC, &c, 1) != 1)
		_exit(1);	/* the tracer is gone */
	/*
	 * Every signal, glibc's own too (sigprocmask leaves 32 and 33 out): a
	 * timer of glibc's SIGEV_THREAD signals 32 to its helper thread, and
	 * the restored timer may do so before the thread is back in its code.
	 */
	syscall(__NR_rt_sigprocmask, SIG_BLOCK, &all, NULL, sizeof(all));
	if (setsid() < 0)
		child_fail(err_fd, "setsid");
	/* nothing of `restore` below our working fds: the process's own come at FINAL */
	syscall(__NR_close_range, 0, WORK_FD_BASE - 1, 0);
	m = mmap((void *)rp->region_addr, rp->region_len, PROT_READ | PROT_WRITE | PROT_EXEC,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
	if (m != (void *)rp->region_addr)
		child_fail(err_fd, "cannot map the restorer");
	memcpy(m, image, blob_len() + sizeof(struct rst_args));
	__asm__ volatile("mov %0, %%rsp\n\t"
			 "mov %1, %%rdi\n\t"
			 "jmp *%2"
			 :: "r"(stack_top), "r"(rp->args_addr),
			    "r"(rp->region_addr + RESTORER_MAIN_OFF)
			 : "memory");
	__builtin_unreachable();
}

/* ---- the tracer ---- */

/* The next stop or exit of any task we trace or parented: its pid, or -errno. */
static pid_t wait_any(int *status)
{
	pid_t w;

	while ((w = waitpid(-1, status, __WALL)) < 0)
		if (errno != EINTR)
			return -errno;
	return w;
}

static int unexpected_stop(pid_t tid, int status)
{
	struct user_regs_struct regs;

	ptrace(PTRACE_GETREGS, tid, NULL, &regs);
	pr_err("restorer of tid %d stopped by signal %d at %#llx", tid, WSTOPSIG(status),
	       (unsigned long long)regs.rip);
	return -EFAULT;
}

static int child_died(struct rst_process *rp, int status, int err_fd)
{
	char buf[256] = "";
	ssize_t n = err_fd >= 0 ? read(err_fd, buf, sizeof(buf) - 1) : 0;

	if (n > 0)
		buf[n] = 0;
	if (WIFEXITED(status))
		pr_err("restore of pid %d failed: %s", rp->want_pid, *buf ? buf : "child exited");
	else
		pr_err("restore of pid %d failed: killed by signal %d", rp->want_pid,
		       WTERMSIG(status));
	rp->pid = 0;
	return -ECHILD;
}

static int blob_verdict(struct rst_process *rp, const char *cmd)
{
	struct rst_args a;
	int ret;

	ret = tracee_read(rp->pid, rp->args_addr, &a, offsetof(struct rst_args, self_start));
	if (ret)
		return ret;
	rp->blob_syscalls += a.nr_syscalls;
	if (a.status == RST_READY)
		return 0;
	a.err_step[sizeof(a.err_step) - 1] = 0;
	if (rp->final && !strcmp(a.err_step, "file lock")) {
		/* a lock held by someone else here: name it */
		rst_locks_explain(rp->final->of, rp->final->files, rp->want_pid, a.err_addr, a.err);
		return -EIO;
	}
	pr_err("restorer of pid %d: %s failed at %s (%#llx): %s", rp->want_pid, cmd, a.err_step,
	       (unsigned long long)a.err_addr, strerror(-a.err));
	return -EIO;
}

/* Let the leader run its command up to the next int3. */
static int run_command(struct rst_process *rp, const char *name)
{
	int status, ret;

	ret = tracee_write(rp->pid, rp->args_addr, &rp->args, sizeof(rp->args));
	if (ret)
		return ret;
	if (ptrace(PTRACE_CONT, rp->pid, NULL, NULL))
		return -errno;
	ret = tracee_reap(rp->pid, &status);
	if (ret)
		return ret;
	if (!WIFSTOPPED(status))
		return child_died(rp, status, -1);
	if (WSTOPSIG(status) != SIGTRAP)
		return unexpected_stop(rp->pid, status);
	return blob_verdict(rp, name);
}

static pid_t clone_with_pid(pid_t pid)
{
	struct ferry_clone_args ca = {
		.exit_signal = SIGCHLD,
		.set_tid = (uint64_t)&pid,
		.set_tid_size = 1,
	};

	return syscall(__NR_clone3, &ca, sizeof(ca));
}

/* An init for a fresh PID namespace: reaps, and ends with its last child. */
static int enter_new_pidns(pid_t *init_pid)
{
	struct ferry_clone_args ca = { .flags = CLONE_NEWPID, .exit_signal = SIGCHLD };
	char path[64];
	int sync[2], fd;
	pid_t init;

	if (pipe2(sync, O_CLOEXEC))
		return -errno;
	init = syscall(__NR_clone3, &ca, sizeof(ca));
	if (init < 0)
		return -errno;
	if (init == 0) {
		char c;

		close(sync[1]);
		/*
		 * Once `restore` exits the restored process is reparented to
		 * us (a little after its fds, our pipe, are closed): reap
		 * until nobody else is left in the namespace, which dies with us.
		 */
		if (read(sync[0], &c, 1) < 0)
			_exit(1);
		for (;;) {
			if (wait(NULL) > 0 || errno == EINTR)
				continue;
			if (kill(-1, 0) && errno == ESRCH)
				_exit(0);
			usleep(100000);
		}
	}
	close(sync[0]);
	*init_pid = init;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", init);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWPID)) {
		pr_perror("cannot enter the new PID namespace");
		return -errno;
	}
	close(fd);
	return sync[1];
}

static void init_prepare_args(struct rst_process *rp, uint64_t vdso)
{
	struct rst_args *a = &rp->args;

	memset(a, 0, sizeof(*a));
	a->cmd = RST_CMD_PREPARE;
	a->sock_fd = WORK_FD_BASE + WORK_SOCK;
	a->self_start = rp->region_addr;
	a->self_len = rp->region_len;
	a->vdso_addr = vdso;
	if (__rseq_size) {
		/* glibc registered rseq for the thread that becomes the process */
		a->own_rseq_addr = (uint64_t)__builtin_thread_pointer() + __rseq_offset;
		a->own_rseq_len = __rseq_size < 32 ? 32 : __rseq_size;
		a->own_rseq_sig = 0x53053053;
	}
}

/* Our ends of the child's working fds, at their fixed numbers in the child. */
static int make_work_fds(struct rst_process *rp, int child_fds[NR_WORK], int *sync_wr, int *err_rd)
{
	int sv[2], sp[2], ep[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -errno;
	if (pipe2(sp, O_CLOEXEC) || pipe2(ep, O_CLOEXEC))
		return -errno;
	rp->sock = sv[0];
	child_fds[WORK_SOCK] = sv[1];
	child_fds[WORK_SYNC] = sp[0];
	child_fds[WORK_ERR] = ep[1];
	*sync_wr = sp[1];
	*err_rd = ep[0];
	return 0;
}

/* dup2 in the child (after clone) would be simpler but must not fail there. */
static int place_work_fds(int child_fds[NR_WORK])
{
	struct rlimit rl;
	int i;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < WORK_FD_BASE + NR_WORK + 1) {
		rl.rlim_cur = rl.rlim_max;
		if (rl.rlim_cur < WORK_FD_BASE + NR_WORK + 1 || setrlimit(RLIMIT_NOFILE, &rl))
			return -EMFILE;
	}
	for (i = 0; i < NR_WORK; i++) {
		if (dup2(child_fds[i], WORK_FD_BASE + i) < 0)
			return -errno;
		close(child_fds[i]);
		child_fds[i] = WORK_FD_BASE + i;
	}
	return 0;
}

int rp_create(struct rst_process *rp, pid_t pid, const MmEntry *const *mms, size_t nr_mms,
	      bool pidns)
{
	int child_fds[NR_WORK], sync_wr = -1, err_rd = -1, status, ret, i;
	uint8_t *image = NULL;
	uint64_t vdso;

	memset(rp, 0, sizeof(*rp));
	rp->want_pid = pid;
	rp->sock = rp->init_sync = -1;
	rp->region_len = blob_len() + args_len() + LEADER_STACK + PAYLOAD_CAP + SCRATCH_LEN;
	ret = vdso_address(mms[0], &vdso);
	if (!ret)
		ret = pick_region_addr(mms, nr_mms, rp->region_len, &rp->region_addr);
	if (ret)
		return ret;
	rp->args_addr = rp->region_addr + blob_len();
	rp->payload_addr = rp->args_addr + args_len() + LEADER_STACK;
	rp->payload_cap = PAYLOAD_CAP;
	init_prepare_args(rp, vdso);
	rp->args.scratch = rp->payload_addr + PAYLOAD_CAP;
	rp->args.scratch_len = SCRATCH_LEN;

	image = calloc(1, blob_len() + sizeof(struct rst_args));
	if (!image)
		return -ENOMEM;
	memcpy(image, restorer_blob, restorer_blob_size);
	memcpy(image + blob_len(), &rp->args, sizeof(rp->args));
	ret = make_work_fds(rp, child_fds, &sync_wr, &err_rd);
	if (!ret)
		ret = place_work_fds(child_fds);
	if (ret)
		goto out;
	if (pidns) {
		rp->init_sync = enter_new_pidns(&rp->init_pid);
		if (rp->init_sync < 0) {
			ret = rp->init_sync;
			goto out;
		}
	}
	rp->pid = clone_with_pid(pid);
	if (rp->pid < 0) {
		ret = -errno;
		rp->pid = 0;
		pr_err("cannot create pid %d: %s%s", pid, strerror(-ret),
		       ret == -EEXIST ? " (that PID is taken here)" : "");
		goto out;
	}
	if (rp->pid == 0)
		child_main(rp, image);
	for (i = 0; i < NR_WORK; i++)
		close(child_fds[i]);
	ret = tracee_attach(rp->pid, RST_TRACE_OPTIONS);
	if (!ret && write(sync_wr, "g", 1) != 1)
		ret = -errno;
	if (ret)
		goto out;
	ret = tracee_reap(rp->pid, &status);
	if (!ret && !WIFSTOPPED(status))
		ret = child_died(rp, status, err_rd);
	else if (!ret && WSTOPSIG(status) != SIGTRAP)
		ret = unexpected_stop(rp->pid, status);
	else if (!ret)
		ret = blob_verdict(rp, "prepare");
out:
	free(image);
	if (sync_wr >= 0)
		close(sync_wr);
	if (err_rd >= 0)
		close(err_rd);
	if (ret)
		rp_kill(rp);
	return ret;
}

/* Ops go in batches that fit the payload area, each with the whole string table. */
int rp_memory(struct rst_process *rp, const struct ops *o)
{
	size_t per = (rp->payload_cap - o->str_len) / sizeof(struct rst_op), i;
	uint8_t *buf;
	int ret = 0;

	if (!o->nr)
		return 0;
	if (o->str_len >= rp->payload_cap / 2)
		return -E2BIG;
	buf = malloc(per < o->nr ? rp->payload_cap : ops_payload_size(o));
	if (!buf)
		return -ENOMEM;
	for (i = 0; i < o->nr && !ret; i += per) {
		struct ops part = *o;

		part.op = o->op + i;
		part.nr = o->nr - i < per ? o->nr - i : per;
		ops_to_payload(&part, buf, rp->payload_addr);
		ret = tracee_write(rp->pid, rp->payload_addr, buf, ops_payload_size(&part));
		rp->args.cmd = RST_CMD_MEMORY;
		rp->args.nr_ops = part.nr;
		rp->args.ops = rp->payload_addr;
		if (!ret)
			ret = run_command(rp, "memory");
	}
	free(buf);
	return ret;
}

/*
 * Threads we never learnt (a leader that failed after cloning them is
 * reported before they are): reaped by their /proc entries, else the
 * leader's reap waits for them for ever.
 */
static void reap_unknown_threads(pid_t pid)
{
	char path[48];
	struct dirent *de;
	int status;
	pid_t tid;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d))) {
		tid = strtol(de->d_name, NULL, 10);
		if (tid > 0 && tid != pid)
			waitpid(tid, &status, __WALL);
	}
	closedir(d);
}

void rp_kill(struct rst_process *rp)
{
	int status;
	size_t i;

	if (rp->pid > 0) {
		kill(rp->pid, SIGKILL);
		/*
		 * Threads we trace first: a traced thread stays a zombie until its
		 * tracer reaps it, and the leader is not reported before all its
		 * threads are gone (a held multi-threaded tree discarded hung here).
		 */
		for (i = rp->nr_tids; i-- > 1;)
			tracee_reap(rp->tids[i], &status);
		reap_unknown_threads(rp->pid);
		tracee_reap(rp->pid, &status);
	}
	rp->pid = 0;
	if (rp->sock >= 0)
		close(rp->sock);
	if (rp->init_sync >= 0)
		close(rp->init_sync);
	rp->sock = rp->init_sync = -1;
	ranges_free(&rp->prefilled);
	ranges_free(&rp->partial_fresh);
	free(rp->tids);
	rp->tids = NULL;
	rp->nr_tids = 0;
}

/* ---- FINAL ---- */

struct final_payload {
	uint8_t *buf;
	size_t len, cap;
};

/* Reserve @len bytes aligned to @align; returns the offset. */
static size_t fp_take(struct final_payload *fp, size_t len, size_t align)
{
	size_t off = ALIGN_UP(fp->len, align);

	fp->len = off + len;
	return off;
}

static uint64_t fp_string(struct final_payload *fp, uint64_t base, const char *s)
{
	size_t off = fp_take(fp, strlen(s) + 1, 1);

	memcpy(fp->buf + off, s, strlen(s) + 1);
	return base + off;
}

static size_t final_payload_size(const ProcCore *core, const MmEntry *mm, const FilesEntry *files)
{
	size_t n = core->n_threads, sigs = core->n_shared_pending, i;

	for (i = 0; i < n; i++)
		sigs += core->threads[i]->n_pending;

	return n * (sizeof(struct rst_thread) + PAGE_SIZE +
		    ALIGN_UP(rst_sigframe_size() + rst_xsave_size() + 128, PAGE_SIZE) + THREAD_STACK) +
	       files->n_fds * sizeof(struct rst_fd) + rst_locks_max(files) * sizeof(struct rst_lock) +
	       strlen(core->cwd) + strlen(core->root) +
	       strlen(mm->exe) + sigs * 128 + seccomp_payload_size(core) + 4 * PAGE_SIZE;
}

/*
 * Queued signals as 128-byte siginfos in the payload; a POSIX timer's own
 * pending signal is not among them (dest-agent/timers.c).
 */
static int layout_siginfos(struct rst_process *rp, struct final_payload *fp,
			   const struct timers_own *own, SiginfoEntry *const *si, size_t n,
			   uint64_t *addr, uint32_t *nr)
{
	size_t off = fp_take(fp, n * 128, 8), i, k = 0;

	if (fp->len > fp->cap)
		return -E2BIG;
	for (i = 0; i < n; i++) {
		if (si[i]->raw.len != 128)
			return -EINVAL;
		if (timers_own_has(own, si[i]))
			continue;
		memcpy(fp->buf + off + k++ * 128, si[i]->raw.data, 128);
	}
	*addr = rp->payload_addr + off;
	*nr = k;
	return 0;
}

/*
 * CPU affinity, I/O priority, timer slack, TSC mode, machine-check kill
 * policy: the thread sets them itself.
 */
static int thread_placement(const ThreadCore *tc, struct rst_thread *t)
{
	size_t len = tc->cpu_affinity.len;

	if (tc->has_cpu_affinity) {
		if (!len || len > sizeof(t->cpu_mask) || len % 8) {
			pr_err("thread %u: a CPU affinity mask of %zu bytes", tc->tid, len);
			return -EINVAL;
		}
		memcpy(t->cpu_mask, tc->cpu_affinity.data, len);
		t->cpu_mask_len = len;
	}
	if (tc->has_ioprio)
		t->ioprio = tc->ioprio;
	if (tc->has_timer_slack_ns)
		t->timer_slack = tc->timer_slack_ns;
	if (tc->has_tsc_mode && tc->tsc_mode > 2) {
		pr_err("thread %u: TSC mode %u", tc->tid, tc->tsc_mode);
		return -EINVAL;
	}
	if (tc->has_tsc_mode)
		t->tsc_mode = tc->tsc_mode;
	if (tc->has_mce_kill && tc->mce_kill > 2) {
		pr_err("thread %u: machine-check kill policy %u", tc->tid, tc->mce_kill);
		return -EINVAL;
	}
	if (tc->has_mce_kill)
		t->mce_kill = tc->mce_kill + 1;
	return 0;
}

/* What the thread sets for itself: robust list, scheduling, pdeathsig, capabilities. */
static void thread_attrs(const ThreadCore *tc, struct rst_thread *t)
{
	uint64_t flags = tc->sched_flags & SCHED_FLAG_RESET_ON_FORK;

	if (tc->has_robust_list) {
		t->robust_list = tc->robust_list;
		t->robust_list_len = tc->robust_list_len;
	}
	if (tc->has_sched_policy) {
		if (tc->sched_policy == SCHED_DEADLINE)
			flags |= tc->sched_flags & (SCHED_FLAG_RECLAIM | SCHED_FLAG_DL_OVERRUN);
		t->sched.size = sizeof(t->sched);
		t->sched.policy = tc->sched_policy;
		t->sched.flags = flags;
		t->sched.nice = tc->sched_nice;
		t->sched.priority = tc->sched_priority;
		t->sched.runtime = tc->sched_runtime;
		t->sched.deadline = tc->sched_deadline;
		t->sched.period = tc->sched_period;
	}
	t->pdeathsig = tc->pdeathsig;
	t->no_new_privs = tc->no_new_privs;
	if (tc->has_cap_eff && tc->has_cap_bnd && tc->has_securebits) {
		t->has_caps = 1;
		t->securebits = tc->securebits;
		t->cap_inh = tc->cap_inh;
		t->cap_prm = tc->cap_prm;
		t->cap_eff = tc->cap_eff;
		t->cap_bnd = tc->cap_bnd;
		t->cap_amb = tc->cap_amb;
	}
}

static int layout_threads(struct rst_process *rp, const ProcCore *core, struct final_payload *fp)
{
	size_t n = core->n_threads, off_t0, i;
	struct timers_own own;
	uint32_t nr_shared = 0;
	int ret;

	ret = timers_own_init(core, &own);
	if (ret)
		return ret;
	off_t0 = fp_take(fp, n * sizeof(struct rst_thread), 64);
	rp->args.nr_threads = n;
	rp->args.threads = rp->payload_addr + off_t0;
	for (i = 0; i < n && !ret; i++) {
		struct rst_thread *t = (struct rst_thread *)(fp->buf + off_t0) + i;
		size_t frame = fp_take(fp, rst_sigframe_size(), 64);
		size_t xsave = fp_take(fp, rst_xsave_size(), 64);

		t->sigframe = rp->payload_addr + frame;
		if (i) {
			t->stack = rp->payload_addr + fp_take(fp, THREAD_STACK, PAGE_SIZE);
			t->stack_size = THREAD_STACK;
		}
		thread_attrs(core->threads[i], t);
		ret = thread_placement(core->threads[i], t);
		if (!ret)
			ret = rst_build_sigframe(core->threads[i], t, fp->buf + frame,
					 rp->payload_addr + xsave, fp->buf + xsave);
		if (!ret)
			ret = layout_siginfos(rp, fp, &own, core->threads[i]->pending,
					      core->threads[i]->n_pending, &t->sigs, &t->nr_sigs);
	}
	if (!ret)
		ret = layout_siginfos(rp, fp, &own, core->shared_pending, core->n_shared_pending,
				      &rp->args.shared_sigs, &nr_shared);
	timers_own_free(&own);
	rp->args.nr_shared_sigs = nr_shared;
	if (!ret) {
		size_t off = fp_take(fp, seccomp_payload_size(core), 8);

		ret = fp->len > fp->cap ? -E2BIG :
		      seccomp_layout(core, &rp->args, (struct rst_thread *)(fp->buf + off_t0),
				     fp->buf + off, rp->payload_addr + off);
	}
	return ret;
}

static int layout_timers(struct rst_process *rp, const ProcCore *core, struct final_payload *fp)
{
	size_t off = fp_take(fp, timers_payload_size(core), 8);

	if (fp->len > fp->cap)
		return -E2BIG;
	rp->args.nr_timers = core->n_posix_timers;
	rp->args.timers = rp->payload_addr + off;
	return timers_layout(core, (struct rst_timer *)(fp->buf + off));
}

static void fill_signal_args(struct rst_args *a, const ProcCore *core)
{
	size_t i;

	for (i = 0; i < core->n_sigactions; i++) {
		const SigactionEntry *s = core->sigactions[i];

		if (s->sig < 1 || s->sig > RST_NSIG)
			continue;
		a->sa[s->sig - 1] = (struct rst_sigaction){ s->handler, s->flags, s->restorer, s->mask };
	}
	for (i = 0; i < core->n_itimers && i < 3; i++) {
		const TimevalPair *t = core->itimers[i];

		a->itimers[i][0] = t->interval_us / 1000000;
		a->itimers[i][1] = t->interval_us % 1000000;
		a->itimers[i][2] = t->value_us / 1000000;
		a->itimers[i][3] = t->value_us % 1000000;
	}
}

/* THP disabled, child subreaper, membarrier; loginuid only where ours (inherited) differs. */
static void fill_proc_attrs(struct rst_args *a, const ProcCore *core)
{
	char buf[32];

	a->thp_disable = core->has_thp_disable ? (int32_t)core->thp_disable : -1;
	a->dumpable = core->has_dumpable ? (int32_t)core->dumpable : 1;
	a->child_subreaper = core->has_child_subreaper ? core->child_subreaper : -1;
	a->membarrier = core->has_membarrier ? core->membarrier : 0;
	if (core->has_loginuid &&
	    (read_small_file("/proc/self/loginuid", buf, sizeof(buf)) <= 0 ||
	     strtoul(buf, NULL, 10) != core->loginuid)) {
		a->set_loginuid = 1;
		a->loginuid = core->loginuid;
	}
}

static int fill_task_args(struct rst_args *a, const ProcCore *core, const MmEntry *mm)
{
	const CredsEntry *c = core->creds;
	size_t i;

	a->mm = (struct rst_mm_map){
		mm->start_code, mm->end_code, mm->start_data, mm->end_data, mm->start_brk, mm->brk,
		mm->start_stack, mm->arg_start, mm->arg_end, mm->env_start, mm->env_end, 0, 0, 0,
	};
	if (mm->n_auxv > RST_MAX_AUXV || c->n_groups > ARRAY_SIZE(a->creds.groups))
		return -E2BIG;
	memcpy(a->auxv, mm->auxv, mm->n_auxv * 8);
	a->mm.auxv_size = mm->n_auxv * 8;
	a->umask = core->umask;
	a->personality = core->personality;
	a->nr_rlimits = core->n_rlimits < RST_NLIMITS ? core->n_rlimits : RST_NLIMITS;
	for (i = 0; i < a->nr_rlimits; i++) {
		a->rlimits[i][0] = core->rlimits[i]->cur;
		a->rlimits[i][1] = core->rlimits[i]->max;
	}
	a->creds = (struct rst_creds){ c->uid, c->euid, c->suid, c->fsuid,
				       c->gid, c->egid, c->sgid, c->fsgid, c->n_groups, { 0 } };
	memcpy(a->creds.groups, c->groups, c->n_groups * sizeof(uint32_t));
	/* only registration commands: any other bit would run a barrier, not register */
	if (core->has_membarrier && (core->membarrier & ~FERRY_MEMBARRIER_REGISTRATIONS))
		return -EINVAL;
	fill_signal_args(a, core);
	fill_proc_attrs(a, core);
	return 0;
}

static int layout_fds(struct rst_process *rp, const FilesEntry *files, struct final_payload *fp)
{
	size_t off = fp_take(fp, files->n_fds * sizeof(struct rst_fd), 8), i;
	struct rst_fd *f = (struct rst_fd *)(fp->buf + off);
	int park = WORK_FD_BASE + NR_WORK;

	for (i = 0; i < files->n_fds; i++) {
		f[i].fd = files->fds[i]->fd;
		f[i].cloexec = files->fds[i]->cloexec;
		if (f[i].fd >= park)
			park = f[i].fd + 1;
	}
	rp->args.nr_fds = files->n_fds;
	rp->args.fds = rp->payload_addr + off;
	rp->args.fd_park = park;
	rp->args.sock_fd = WORK_FD_BASE + WORK_SOCK;
	rp->args.nr_work_fds = NR_WORK;
	for (i = 0; i < NR_WORK; i++)
		rp->args.work_fds[i] = WORK_FD_BASE + i;
	return 0;
}

/* The file locks it takes once its fds are placed (locks.c). */
static int layout_locks(struct rst_process *rp, const struct rst_final *f,
			struct final_payload *fp)
{
	size_t off = fp_take(fp, rst_locks_max(f->files) * sizeof(struct rst_lock), 8), nr;
	int ret;

	if (fp->len > fp->cap)
		return -E2BIG;
	ret = rst_locks_layout(f->of, f->files, (struct rst_lock *)(fp->buf + off), &nr);
	rp->args.nr_locks = nr;
	rp->args.locks = rp->payload_addr + off;
	return ret;
}

/* The fds go by SCM_RIGHTS, RST_FDS_PER_MSG at a time, in files->fds order. */
static int send_fds(int sock, const int *fds, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t k = n - i < RST_FDS_PER_MSG ? n - i : RST_FDS_PER_MSG;
		char cbuf[CMSG_SPACE(RST_FDS_PER_MSG * sizeof(int))] = { 0 };
		char byte = 0;
		struct iovec iov = { &byte, 1 };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				      .msg_controllen = CMSG_SPACE(k * sizeof(int)) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(k * sizeof(int));
		memcpy(CMSG_DATA(cm), fds + i, k * sizeof(int));
		if (sendmsg(sock, &msg, MSG_NOSIGNAL) != 1)
			return -errno;
		i += k;
	}
	return 0;
}

/* One fd sent by the blob (one byte and SCM_RIGHTS): the fd, or -errno. */
static int recv_one_fd(int sock)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	char byte;
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	ssize_t n;
	int fd;

	n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n != 1)
		return n < 0 ? -errno : -EIO;
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN(sizeof(int)) || (msg.msg_flags & MSG_CTRUNC))
		return -EIO;
	memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	return fd;
}

int rp_uffd(struct rst_process *rp, const struct ranges *reg, uint32_t features, int *uffd)
{
	/* below the work fds, free: the process's own fds are placed by FINAL */
	const int at = WORK_FD_BASE - 1;
	struct ops o = { 0 };
	size_t i;
	int ret;

	*uffd = -1;
	ret = ops_add(&o, RST_OP_UFFD_OPEN, 0, 0);
	if (!ret) {
		o.op[o.nr - 1].flags = features;
		o.op[o.nr - 1].open_flags = at;
		ret = rp_memory(rp, &o);
		o.nr = 0;
	}
	if (!ret) {
		/* the blob does not fail on it: no fd there is no userfaultfd here */
		char path[64], target[64];
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/%d/fd/%d", rp->pid, at);
		n = readlink(path, target, sizeof(target) - 1);
		if (n < 0 || (target[n] = 0, !strstr(target, "userfaultfd")))
			ret = -EOPNOTSUPP;
	}
	for (i = 0; !ret && i < reg->nr; i++) {
		ret = ops_add(&o, RST_OP_UFFD_REGISTER, reg->r[i].start,
			      reg->r[i].end - reg->r[i].start);
		if (!ret)
			o.op[o.nr - 1].open_flags = at;
	}
	if (!ret)
		ret = ops_add(&o, RST_OP_UFFD_SEND, 0, 0);
	if (!ret) {
		o.op[o.nr - 1].open_flags = at;
		ret = rp_memory(rp, &o);
	}
	ops_free(&o);
	if (ret)
		return ret;
	ret = recv_one_fd(rp->sock);
	if (ret < 0)
		return ret;
	*uffd = ret;
	return 0;
}

static bool known_tid(const struct rst_process *rp, pid_t tid)
{
	size_t i;

	for (i = 0; i < rp->nr_tids; i++)
		if (rp->tids[i] == tid)
			return true;
	return false;
}

/*
 * Every thread up to its int3 before rt_sigreturn: new threads are traced
 * from birth (PTRACE_O_TRACECLONE) and let go on. Their TIDs as we see them
 * differ from the saved ones in a new PID namespace: learn them here.
 */
static int wait_threads_ready(struct rst_process *rp, size_t nr_threads)
{
	size_t ready = 0;
	int status, idx;
	pid_t w;

	while (ready < nr_threads) {
		w = wait_any(&status);
		if (w < 0)
			return w;
		if (w == rp->init_pid)
			continue;
		if (!known_tid(rp, w)) {
			if (rp->nr_tids == nr_threads)
				continue;
			rp->tids[rp->nr_tids++] = w;
		}
		idx = w == rp->pid ? 0 : 1;
		if (!WIFSTOPPED(status))
			return w == rp->pid ? child_died(rp, status, -1) : -ECHILD;
		if (stop_event(status) == PTRACE_EVENT_CLONE ||
		    stop_event(status) == PTRACE_EVENT_STOP) {
			if (ptrace(PTRACE_CONT, w, NULL, NULL))
				return -errno;
			continue;
		}
		if (WSTOPSIG(status) != SIGTRAP)
			return unexpected_stop(w, status);
		ready++;
		if (!idx) {	/* a failed leader does not clone the others */
			int32_t st;

			if (tracee_read(rp->pid, rp->args_addr + offsetof(struct rst_args, status),
					&st, sizeof(st)))
				return -EIO;
			if (st == RST_FAILED)
				break;
		}
	}
	return 0;
}

static int check_threads(struct rst_process *rp)
{
	struct rst_thread t;
	size_t i;
	int ret;

	ret = blob_verdict(rp, "final");
	for (i = 0; !ret && i < rp->args.nr_threads; i++) {
		ret = tracee_read(rp->pid, rp->args.threads + i * sizeof(t), &t, sizeof(t));
		if (!ret && t.status != RST_READY)
			ret = blob_verdict(rp, "thread") ?: -EIO;
	}
	return ret;
}

/* Let one thread run its rt_sigreturn: stop at the syscall's exit. */
static int step_sigreturn(pid_t tid)
{
	int status, i, err;

	for (i = 0; i < 2; i++) {	/* syscall entry, then exit */
		if (ptrace(PTRACE_SYSCALL, tid, NULL, NULL))
			return -errno;
		err = tracee_reap(tid, &status);
		if (err)
			return err;
		if (!WIFSTOPPED(status))
			return -ECHILD;
		if (WSTOPSIG(status) != SYSCALL_STOP)
			return unexpected_stop(tid, status);
	}
	return 0;
}

int rp_syscall(struct rst_process *rp, long nr, long *ret, long a1, long a2, long a3, long a4,
	       long a5, long a6)
{
	struct user_regs_struct regs;
	uint64_t insn;
	int err;

	if (ptrace(PTRACE_GETREGS, rp->pid, NULL, &regs))
		return -errno;
	insn = find_syscall_insn(rp->pid);
	if (!insn)
		return -ENOENT;
	err = tracee_syscall(rp->pid, insn, nr, ret, a1, a2, a3, a4, a5, a6);
	if (ptrace(PTRACE_SETREGS, rp->pid, NULL, &regs) && !err)
		err = -errno;
	return err;
}

/* Every thread is out of the blob: take it away from the outside, through the leader. */
static int unmap_blob(struct rst_process *rp)
{
	long ret;
	int err;

	err = rp_syscall(rp, __NR_munmap, &ret, rp->region_addr, rp->region_len, 0, 0, 0, 0);
	if (!err && ret)
		err = ret;
	if (err)
		pr_err("pid %d: cannot unmap the restorer: %s", rp->want_pid, strerror(-err));
	return err;
}

/*
 * Seccomp filters the blob installs must not see its own later syscalls,
 * the threads' rt_sigreturn or the unmap: suspended (the threads it clones
 * inherit the option) until the detach clears it.
 */
static int suspend_seccomp(const struct rst_process *rp)
{
	long opts = TRACEE_OPTIONS | RST_TRACE_OPTIONS | PTRACE_O_SUSPEND_SECCOMP;

	if (!ptrace(PTRACE_SETOPTIONS, rp->pid, NULL, (void *)opts))
		return 0;
	pr_err("pid %d: cannot suspend seccomp while its filters are installed (%m): "
	       "restore needs CAP_SYS_ADMIN for a process under seccomp", rp->want_pid);
	return -errno;
}

/* Up to every thread's last stop before rt_sigreturn, the verdict checked. */
static int go_final(struct rst_process *rp, size_t nr_threads, const int *fds, size_t nr_fds)
{
	int ret;

	ret = tracee_write(rp->pid, rp->args_addr, &rp->args, sizeof(rp->args));
	if (!ret && ptrace(PTRACE_CONT, rp->pid, NULL, NULL))
		ret = -errno;
	if (!ret)
		ret = send_fds(rp->sock, fds, nr_fds);
	if (!ret)
		ret = wait_threads_ready(rp, nr_threads);
	if (!ret)
		ret = check_threads(rp);
	return ret;
}

/* oom_score_adj is the process's, written from the outside. */
static int set_oom_score_adj(const struct rst_process *rp, const ProcCore *core)
{
	char path[64], val[16];
	int fd, n, ret = 0;

	if (!core->has_oom_score_adj)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", rp->pid);
	n = snprintf(val, sizeof(val), "%d", core->oom_score_adj);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, val, n) != n)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	if (ret)
		pr_err("pid %d: cannot set oom_score_adj %d: %s", rp->want_pid,
		       core->oom_score_adj, strerror(-ret));
	return ret;
}

int rp_final_start(struct rst_process *rp, const struct rst_final *f)
{
	struct final_payload fp = { 0 };
	int ret;

	if (f->core->n_threads > RST_MAX_THREADS)
		return -E2BIG;
	fp.cap = final_payload_size(f->core, f->mm, f->files) + timers_payload_size(f->core);
	if (fp.cap > rp->payload_cap)
		return -E2BIG;
	fp.buf = calloc(1, fp.cap);
	rp->tids = calloc(f->core->n_threads, sizeof(pid_t));
	if (!fp.buf || !rp->tids) {
		ret = -ENOMEM;
		goto out;
	}
	rp->tids[0] = rp->pid;
	rp->nr_tids = 1;
	rp->args.cmd = RST_CMD_FINAL;
	rp->args.pgid = f->pgid;
	rp->args.tty_fg_fd = f->tty_fg_fd;
	rp->args.tty_fg = f->tty_fg;
	ret = fill_task_args(&rp->args, f->core, f->mm);
	if (!ret)
		ret = layout_threads(rp, f->core, &fp);
	if (!ret)
		ret = layout_timers(rp, f->core, &fp);
	if (!ret)
		ret = layout_fds(rp, f->files, &fp);
	if (!ret)
		ret = layout_locks(rp, f, &fp);
	if (ret)
		goto out;
	rp->args.exe_path = fp_string(&fp, rp->payload_addr, f->mm->exe);
	rp->args.cwd = fp_string(&fp, rp->payload_addr, f->core->cwd);
	rp->args.root = strcmp(f->core->root, "/") ? fp_string(&fp, rp->payload_addr, f->core->root)
						     : 0;
	ret = tracee_write(rp->pid, rp->payload_addr, fp.buf, fp.len);
	if (!ret)
		ret = set_oom_score_adj(rp, f->core);
	rp->final = f;
	if (!ret && seccomp_in_use(f->core))
		ret = suspend_seccomp(rp);
	if (!ret)
		ret = go_final(rp, f->core->n_threads, f->fds, f->files->n_fds);
	rp->final = NULL;
out:
	free(fp.buf);
	return ret;
}

/* Every process of the tree is ready: each thread steps into its own registers. */
int rp_final_prepare(struct rst_process *rp)
{
	size_t i;
	int ret = 0;

	for (i = 0; !ret && i < rp->nr_tids; i++)
		ret = step_sigreturn(rp->tids[i]);
	if (!ret)
		ret = unmap_blob(rp);
	return ret;
}

/* Let it go: nothing here may fail half-way (the tree's others go too). */
void rp_release(struct rst_process *rp, int stop_sig)
{
	size_t i;

	/*
	 * A job-control stop is queued while every thread still sits in its
	 * ptrace stop: the first thing each does once let go is stop, so not
	 * one instruction of its own runs before its SIGCONT.
	 */
	if (stop_sig)
		kill(rp->pid, stop_sig);
	for (i = 0; i < rp->nr_tids; i++) {
		ptrace(PTRACE_SETOPTIONS, rp->tids[i], NULL, (void *)(long)TRACEE_OPTIONS);
		tracee_detach(rp->tids[i]);
	}
	rp->pid = 0;	/* it is on its own now */
}

/* ---- FORK ---- */

/*
 * The parent's blob forks: the child shows up traced (PTRACE_O_TRACEFORK),
 * first in an event stop, then at its own int3 after the command.
 */
static int wait_fork(struct rst_process *parent, pid_t *child)
{
	bool parent_done = false, child_done = false;
	unsigned long msg;
	int status;
	pid_t w;

	*child = 0;
	while (!parent_done || !child_done) {
		w = wait_any(&status);
		if (w < 0)
			return w;
		if (w == parent->init_pid)
			continue;	/* the init of a new PID namespace */
		if (w != parent->pid && !*child)
			*child = w;	/* its first stop may come before the parent's event */
		if (w != parent->pid && w != *child)
			continue;
		if (!WIFSTOPPED(status))
			return child_died(parent, status, -1);
		if (w == parent->pid && stop_event(status) == PTRACE_EVENT_FORK) {
			if (ptrace(PTRACE_GETEVENTMSG, w, NULL, &msg))
				return -errno;
			*child = msg;
		} else if (stop_event(status) == PTRACE_EVENT_STOP) {
			/* the child's first stop */
		} else if (WSTOPSIG(status) == SIGTRAP) {
			if (w == parent->pid)
				parent_done = true;
			else
				child_done = true;
			if (parent_done && !*child)
				break;	/* no fork happened: the parent's verdict says why */
			continue;
		} else {
			return unexpected_stop(w, status);
		}
		if (ptrace(PTRACE_CONT, w, NULL, NULL))
			return -errno;
	}
	return 0;
}

/*
 * The child's PREPARE: everything it inherited goes but the blob and @keep
 * (its parent's memory where it has memory of its own: filled over with
 * READ_CMP, what did not change stays shared).
 */
static int fork_prepare(struct rst_process *child, uint64_t vdso, const struct ranges *keep)
{
	size_t len = keep->nr * sizeof(struct rst_range), i;
	struct rst_range *k = NULL;
	int ret = 0;

	if (len > child->payload_cap)
		return -E2BIG;
	if (keep->nr) {
		k = malloc(len);
		if (!k)
			return -ENOMEM;
		for (i = 0; i < keep->nr; i++)
			k[i] = (struct rst_range){ keep->r[i].start, keep->r[i].end };
		ret = tracee_write(child->pid, child->payload_addr, k, len);
		free(k);
	}
	child->args.cmd = RST_CMD_PREPARE;
	child->args.vdso_addr = vdso;
	child->args.own_rseq_addr = 0;	/* its parent's is gone already */
	child->args.nr_keep = keep->nr;
	child->args.keep = child->payload_addr;
	if (!ret)
		ret = run_command(child, "prepare");
	child->args.nr_keep = 0;
	if (ret)
		return ret;
	for (i = 0; i < keep->nr && !ret; i++)
		ret = ranges_add(&child->prefilled, keep->r[i].start, keep->r[i].end);
	child->inherited = child->cow_shared = keep->nr > 0;
	return ret;
}

int rp_fork(struct rst_process *parent, struct rst_process *child, pid_t pid, const MmEntry *mm,
	    bool new_session, int ctty_fd, const struct ranges *keep)
{
	int sv[2], send[2], ret;
	uint64_t vdso;
	pid_t cpid = 0;

	ret = vdso_address(mm, &vdso);
	if (ret)
		return ret;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -errno;
	send[0] = sv[1];
	send[1] = ctty_fd;
	ret = send_fds(parent->sock, send, ctty_fd >= 0 ? 2 : 1);
	close(sv[1]);
	if (ret) {
		close(sv[0]);
		return ret;
	}
	parent->args.cmd = RST_CMD_FORK;
	parent->args.fork_pid = pid;
	parent->args.fork_new_session = new_session;
	parent->args.fork_ctty = ctty_fd >= 0;
	ret = tracee_write(parent->pid, parent->args_addr, &parent->args, sizeof(parent->args));
	if (!ret && ptrace(PTRACE_CONT, parent->pid, NULL, NULL))
		ret = -errno;
	if (!ret)
		ret = wait_fork(parent, &cpid);
	if (!ret)
		ret = blob_verdict(parent, "fork");
	*child = (struct rst_process){ .pid = cpid, .want_pid = pid, .sock = sv[0],
				       .init_sync = -1, .init_pid = parent->init_pid };
	if (ret) {
		if (cpid > 0)
			rp_kill(child);
		else
			close(sv[0]);
		return ret;
	}
	child->region_addr = parent->region_addr;
	child->region_len = parent->region_len;
	child->args_addr = parent->args_addr;
	child->payload_addr = parent->payload_addr;
	child->payload_cap = parent->payload_cap;
	/* its own PREPARE: the vdso where it had it */
	child->args = parent->args;
	ret = fork_prepare(child, vdso, keep);
	if (ret)
		rp_kill(child);
	else if (keep->nr)
		parent->cow_shared = true;
	return ret;
}
