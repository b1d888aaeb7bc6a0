// SPDX-License-Identifier: MIT
/*
 * Parasite control (see parasite.h and docs/parasite.md). The area in the
 * target is one MAP_SHARED anonymous mapping:
 *
 *	[ blob | struct prs_area | stack ]
 *
 * migrate maps the same pages through /proc/PID/map_files, so commands and
 * results are plain memory accesses; without that (no CAP_SYS_ADMIN in the
 * target's user namespace) a local shadow copy is synced with
 * process_vm_writev/readv around each command.
 *
 * The ptrace work underneath (registers, mask, seccomp, stops, injected
 * syscalls, remote memory, held signals) is the common layer
 * (common/ptrace.h, common/inject.h); what is here belongs to the blob: its
 * area, its commands, infection and cure.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/inject.h"
#include "common/log.h"
#include "common/ptrace.h"
#include "parasite-blob.h"
#include "source-agent/parasite.h"
#include "source-agent/proc.h"

#define PRS_PAGE	4096UL
#define PRS_STACK_SIZE	(64UL << 10)

#define SIGBIT(s)	(1ULL << ((s) - 1))
/*
 * Signals unblocked while the blob runs: SIGTRAP is how it stops, and the
 * fault signals must stay unblocked because a forced signal that is
 * blocked resets the target's handler to SIG_DFL. Everything else waits.
 */
#define PRS_UNBLOCKED	(SIGBIT(SIGTRAP) | SIGBIT(SIGSEGV) | SIGBIT(SIGBUS) | \
			 SIGBIT(SIGILL) | SIGBIT(SIGFPE) | SIGBIT(SIGSYS))

struct parasite_ctl {
	pid_t pid;
	struct tracee t;	/* the task as seized: what the cure puts back */
	uint64_t insn;		/* `syscall` in [vdso], for injected calls */
	uint64_t remote;	/* the area in the target, 0 until mapped */
	size_t size;
	size_t area_off;
	void *local;		/* our view: shared mapping or shadow copy */
	bool shared;
	struct prs_area *area;	/* inside local */
	struct held_sigs sigs;	/* held back while the blob ran, queued at cure */
};

static size_t page_round(size_t n)
{
	return (n + PRS_PAGE - 1) & ~(PRS_PAGE - 1);
}

/* Shadow mode: our copy of bytes [@off, @off + @len) of the area to or from the target. */
static int remote_io(struct parasite_ctl *ctl, size_t off, size_t len, bool write)
{
	char *local = (char *)ctl->local + off;

	if (write)
		return tracee_write(ctl->pid, ctl->remote + off, local, len);
	return tracee_read(ctl->pid, ctl->remote + off, local, len);
}

/* Shadow mode only: command in, results out. */
static int area_push(struct parasite_ctl *ctl)
{
	if (ctl->shared)
		return 0;
	return remote_io(ctl, ctl->area_off, sizeof(struct prs_area), true);
}

static int area_pull(struct parasite_ctl *ctl)
{
	if (ctl->shared)
		return 0;
	return remote_io(ctl, ctl->area_off, sizeof(struct prs_area), false);
}

int parasite_syscall(struct parasite_ctl *ctl, long nr, long *ret, long a1, long a2, long a3,
		     long a4, long a5, long a6)
{
	return tracee_syscall(ctl->pid, ctl->insn, nr, ret, a1, a2, a3, a4, a5, a6);
}

static int remote_map(struct parasite_ctl *ctl)
{
	long addr;
	int ret;

	ret = parasite_syscall(ctl, __NR_mmap, &addr, 0, ctl->size, PROT_READ | PROT_WRITE | PROT_EXEC,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ret)
		return ret;
	if (addr < 0 && addr > -4096) {
		long mdwe = 0;

		/* memory-deny-write-execute: no code can go in (nor could the restore put it) */
		if ((addr == -EACCES || addr == -EPERM) &&
		    !parasite_syscall(ctl, __NR_prctl, &mdwe, 66 /* PR_GET_MDWE */, 0, 0, 0, 0, 0) &&
		    mdwe > 0) {
			pr_err("pid %d: denies writable executable memory (PR_SET_MDWE): ferry "
			       "cannot move that yet", ctl->pid);
			return -EOPNOTSUPP;
		}
		pr_err("pid %d: mmap of the parasite area failed: %s", ctl->pid, strerror(-addr));
		return addr;
	}
	ctl->remote = addr;
	return 0;
}

/* Our view of the target's area: the same shmem pages if we may open them. */
static int local_map(struct parasite_ctl *ctl)
{
	char path[96];
	void *p;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, ctl->pid,
		 ctl->remote, ctl->remote + ctl->size);
	fd = getenv("FERRY_PRS_SHADOW") ? -1 : open(path, O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		p = mmap(NULL, ctl->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		if (p != MAP_FAILED) {
			ctl->local = p;
			ctl->shared = true;
			goto out;
		}
	}
	pr_debug("pid %d: no shared view of the parasite area (%m), using copies", ctl->pid);
	ctl->local = calloc(1, ctl->area_off + sizeof(struct prs_area));
	if (!ctl->local)
		return -ENOMEM;
out:
	ctl->area = (struct prs_area *)((char *)ctl->local + ctl->area_off);
	memcpy(ctl->local, parasite_blob, parasite_blob_size);
	return ctl->shared ? 0 : remote_io(ctl, 0, parasite_blob_size, true);
}

static void local_unmap(struct parasite_ctl *ctl)
{
	if (ctl->shared)
		munmap(ctl->local, ctl->size);
	else
		free(ctl->local);
	ctl->local = NULL;
	ctl->area = NULL;
}

/*
 * A task stopped inside an rseq critical section would be aborted by the
 * kernel when it next returns to user space (it was preempted). Moving rip
 * to the parasite would make the kernel forget that instead (rip outside
 * the section: rseq_cs is just cleared), so do the abort now.
 */
static void fixup_rseq(struct parasite_ctl *ctl)
{
	uint64_t rseq, cs_ptr, ip = ctl->t.regs.rip;
	struct rseq_cs_desc cs;
	uint32_t len, sig;

	if (tracee_rseq(ctl->pid, &rseq, &len, &sig))
		return;
	/* struct rseq: cpu_id_start, cpu_id (u32 each), then rseq_cs. */
	if (tracee_read(ctl->pid, rseq + 8, &cs_ptr, sizeof(cs_ptr)) || !cs_ptr)
		return;
	if (tracee_read(ctl->pid, cs_ptr, &cs, sizeof(cs)))
		return;
	if (ip - cs.start_ip < cs.post_commit_offset) {
		pr_info("pid %d: stopped in an rseq critical section, aborting it (0x%llx -> 0x%" PRIx64 ")",
			ctl->pid, ctl->t.regs.rip, cs.abort_ip);
		ctl->t.regs.rip = cs.abort_ip;
	}
}

static int hold_signal(struct parasite_ctl *ctl, const siginfo_t *si)
{
	int ret;

	ret = held_sigs_add(&ctl->sigs, ctl->pid, si);
	if (ret)
		return ret;
	pr_info("pid %d: signal %d arrived while the parasite ran, queued again at cure",
		ctl->pid, si->si_signo);
	return 0;
}

static bool in_blob(struct parasite_ctl *ctl, uint64_t ip)
{
	return ip - ctl->remote < page_round(parasite_blob_size);
}

/*
 * One stop while the blob runs: 1 for the blob's own SIGTRAP (tgkill, so
 * si_code SI_TKILL, stopped right after the call), 0 to go on (any other
 * signal is held back for the cure), -EFAULT for a fault inside the blob.
 */
static int prs_stop(struct parasite_ctl *ctl, int status)
{
	struct user_regs_struct r;
	siginfo_t si;

	if (!is_signal_stop(status))
		return 0;	/* group stop, stray interrupt */
	if (ptrace(PTRACE_GETSIGINFO, ctl->pid, NULL, &si) ||
	    ptrace(PTRACE_GETREGS, ctl->pid, NULL, &r))
		return -errno;
	if (si.si_signo == SIGTRAP && si.si_code == SI_TKILL &&
	    r.rip == ctl->remote + PARASITE_TRAP_RET_OFF)
		return 1;
	if (si.si_code > 0 && si.si_signo != SIGSTOP && in_blob(ctl, r.rip)) {
		pr_err("pid %d: parasite got signal %d (code %d) at +0x%llx, addr %p",
		       ctl->pid, si.si_signo, si.si_code, r.rip - ctl->remote, si.si_addr);
		return -EFAULT;
	}
	return hold_signal(ctl, &si);
}

static int prs_trap_fn(pid_t tid, int status, void *arg)
{
	int ret;

	ret = prs_stop(arg, status);
	if (ret)
		return ret;
	if (ptrace(PTRACE_CONT, tid, NULL, NULL))
		return -errno;
	return 0;
}

/* Run one command: registers point at the blob, go, wait for its trap. */
static int prs_run(struct parasite_ctl *ctl, uint32_t cmd)
{
	struct user_regs_struct r = ctl->t.regs;
	int ret;

	ctl->area->cmd = cmd;
	ctl->area->ret = -ENOSYS;
	ret = area_push(ctl);
	if (ret)
		return ret;
	r.rip = ctl->remote + PARASITE_ENTRY_OFF;
	r.rsp = ctl->remote + ctl->size;	/* top of the parasite stack */
	r.rdi = ctl->remote + ctl->area_off;
	r.rax = 0;
	r.orig_rax = -1;			/* no syscall to restart */
	r.eflags &= ~(EFLAGS_TF | EFLAGS_DF | EFLAGS_AC);
	r.cs = USER_CS;
	r.ss = USER_DS;
	if (ptrace(PTRACE_SETREGS, ctl->pid, NULL, &r) ||
	    ptrace(PTRACE_CONT, ctl->pid, NULL, NULL))
		return -errno;
	ret = tracee_wait_for(ctl->pid, prs_trap_fn, ctl, "parasite trap");
	if (!ret)
		ret = area_pull(ctl);
	if (ret)
		return ret;
	if (ctl->area->ret)
		pr_debug("pid %d: parasite command %u: %s", ctl->pid, cmd,
			 strerror(-ctl->area->ret));
	return ctl->area->ret;
}

/*
 * Queue held-back signals to the target from inside it, before the area
 * goes away (the siginfo goes through the command area); the cure puts
 * the mask back.
 */
static int requeue_signals(struct parasite_ctl *ctl)
{
	siginfo_t *si;
	size_t n;
	int ret;

	n = held_sigs_take(&ctl->sigs, ctl->pid, &si);
	ret = tracee_requeue(ctl->pid, ctl->insn, si, n, ctl->remote + ctl->area_off);
	free(si);
	return ret;
}

static void ctl_free(struct parasite_ctl *ctl)
{
	if (ctl->local)
		local_unmap(ctl);
	tracee_free(&ctl->t);
	held_sigs_free(&ctl->sigs);
	free(ctl);
}

static int unmap_remote(struct parasite_ctl *ctl)
{
	int ret;
	long r;

	ret = parasite_syscall(ctl, __NR_munmap, &r, ctl->remote, ctl->size, 0, 0, 0, 0);
	if (!ret && r)
		ret = r;
	if (ret && ret != -ESRCH)
		pr_err("pid %d: can't unmap the parasite area: %s", ctl->pid, strerror(-ret));
	return ret;
}

int parasite_cure(struct parasite_ctl *ctl)
{
	int ret = 0;

	if (!ctl)
		return 0;
	if (ctl->remote) {
		ret = requeue_signals(ctl);
		if (ret != -ESRCH)
			ret = unmap_remote(ctl) ?: ret;
	}
	if (ret != -ESRCH) {
		tracee_suspend_seccomp(ctl->pid, false);
		ret = tracee_restore(&ctl->t) ?: ret;
		if (ret && ret != -ESRCH)
			pr_err("pid %d: can't put the task back: %s", ctl->pid, strerror(-ret));
	}
	if (ret == -ESRCH)
		pr_err("pid %d died while the parasite was in", ctl->pid);
	ctl_free(ctl);
	return ret;
}

int parasite_infect(pid_t pid, struct parasite_ctl **out)
{
	struct parasite_ctl *ctl;
	int ret;

	ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return -ENOMEM;
	ctl->pid = pid;
	ctl->t.tid = pid;
	ctl->area_off = page_round(parasite_blob_size);
	ctl->size = ctl->area_off + page_round(sizeof(struct prs_area)) + PRS_STACK_SIZE;
	ret = tracee_save(&ctl->t);
	if (ret) {
		pr_err("pid %d: can't save registers: %s", pid, strerror(-ret));
		free(ctl);
		return ret;
	}
	fixup_rseq(ctl);
	/* The target's seccomp filter must not refuse the blob's syscalls. */
	tracee_suspend_seccomp(pid, true);
	ctl->insn = find_syscall_insn(pid);
	if (!ctl->insn) {
		ret = -ENOENT;
		goto fail;
	}
	ret = tracee_set_sigmask(pid, ~PRS_UNBLOCKED);
	if (!ret)
		ret = remote_map(ctl);
	if (!ret)
		ret = local_map(ctl);
	if (ret)
		goto fail;
	pr_debug("pid %d: parasite at 0x%" PRIx64 " (%zu bytes, %s view)", pid, ctl->remote,
		 ctl->size, ctl->shared ? "shared" : "copied");
	*out = ctl;
	return 0;
fail:
	pr_err("pid %d: parasite infection failed: %s", pid, strerror(-ret));
	parasite_cure(ctl);
	return ret;
}

int parasite_get_sigactions(struct parasite_ctl *ctl, struct prs_sigaction sa[PRS_NSIG])
{
	int ret;

	ret = prs_run(ctl, PRS_CMD_SIGACTIONS);
	if (!ret)
		memcpy(sa, ctl->area->u.sa, sizeof(ctl->area->u.sa));
	return ret;
}

int parasite_get_itimers(struct parasite_ctl *ctl, struct itimerval it[3])
{
	int ret, i;

	ret = prs_run(ctl, PRS_CMD_ITIMERS);
	for (i = 0; !ret && i < 3; i++) {
		it[i].it_interval.tv_sec = ctl->area->u.it[i].interval_sec;
		it[i].it_interval.tv_usec = ctl->area->u.it[i].interval_usec;
		it[i].it_value.tv_sec = ctl->area->u.it[i].value_sec;
		it[i].it_value.tv_usec = ctl->area->u.it[i].value_usec;
	}
	return ret;
}

int parasite_get_sigaltstack(struct parasite_ctl *ctl, stack_t *ss)
{
	int ret;

	ret = prs_run(ctl, PRS_CMD_SIGALTSTACK);
	if (!ret) {
		ss->ss_sp = (void *)ctl->area->u.ss.sp;
		ss->ss_flags = ctl->area->u.ss.flags;
		ss->ss_size = ctl->area->u.ss.size;
	}
	return ret;
}

int parasite_get_brk(struct parasite_ctl *ctl, uint64_t *brk)
{
	int ret;

	ret = prs_run(ctl, PRS_CMD_BRK);
	if (!ret)
		*brk = ctl->area->u.brk;
	return ret;
}

static int close_target_fd(struct parasite_ctl *ctl, int fd)
{
	ctl->area->arg[0] = fd;
	return prs_run(ctl, PRS_CMD_CLOSE_FD);
}

int parasite_create_uffd(struct parasite_ctl *ctl, uint64_t features, uint64_t *got_features,
			 int *fd)
{
	uint64_t flags = O_CLOEXEC | O_NONBLOCK;
	int ret, tfd, err;

	ctl->area->arg[0] = flags;
	ctl->area->arg[1] = features;
	ret = prs_run(ctl, PRS_CMD_UFFD_CREATE);
	if (ret == -EPERM) {
		/* vm.unprivileged_userfaultfd=0 and no CAP_SYS_PTRACE in the target */
		pr_warn("pid %d: userfaultfd refused, retrying user-mode only", ctl->pid);
		ctl->area->arg[0] = flags | UFFD_USER_MODE_ONLY;
		ctl->area->arg[1] = features;
		ret = prs_run(ctl, PRS_CMD_UFFD_CREATE);
	}
	if (ret) {
		pr_err("pid %d: can't create a userfaultfd (features 0x%" PRIx64 "): %s",
		       ctl->pid, features, strerror(-ret));
		return ret;
	}
	tfd = ctl->area->u.uffd.fd;
	*got_features = ctl->area->u.uffd.features;
	*fd = proc_take_fd(ctl->pid, tfd);
	ret = *fd < 0 ? *fd : 0;
	if (ret)
		pr_err("pid %d: can't take userfaultfd %d: %s", ctl->pid, tfd, strerror(-ret));
	/* The target's copy must not stay behind (and never land in a dump). */
	err = close_target_fd(ctl, tfd);
	if (err)
		pr_err("pid %d: can't close userfaultfd %d in the target: %s", ctl->pid, tfd,
		       strerror(-err));
	if (!ret && err) {
		close(*fd);
		ret = err;
	}
	if (ret)
		*fd = -1;
	return ret;
}

/*
 * sigaltstack and clear_child_tid belong to each thread: ask @tid itself by
 * injected syscalls, results in the area (the blob only runs in the leader).
 */
/* Where in the area's union each answer of parasite_thread_info lands. */
#define TI_TID_OFF	24	/* after u.ss */
#define TI_PDEATH_OFF	32
#define TI_REAPER_OFF	36
#define TI_TSC_OFF	40

/* prctls only the thread itself answers; the subreaper flag is the process's: leader only. */
static int thread_prctls(struct parasite_ctl *ctl, pid_t tid, uint64_t buf,
			 struct prs_thread_info *ti)
{
	long r = 0;
	int ret;

	ret = tracee_syscall(tid, ctl->insn, __NR_prctl, &r, PR_GET_PDEATHSIG,
			     buf + TI_PDEATH_OFF, 0, 0, 0, 0);
	if (!ret && !r)
		ret = tracee_syscall(tid, ctl->insn, __NR_prctl, &r, PR_GET_SECUREBITS,
				     0, 0, 0, 0, 0);
	if (!ret && r >= 0) {
		ti->securebits = r;
		r = 0;
	}
	if (!ret && !r && tid == ctl->pid)
		ret = tracee_syscall(tid, ctl->insn, __NR_prctl, &r, PR_GET_CHILD_SUBREAPER,
				     buf + TI_REAPER_OFF, 0, 0, 0, 0);
	if (!ret && !r && tid == ctl->pid)
		ret = tracee_syscall(tid, ctl->insn, __NR_prctl, &r, PR_GET_THP_DISABLE,
				     0, 0, 0, 0, 0);
	if (!ret && r >= 0 && tid == ctl->pid) {
		ti->thp_disable = r;
		r = 0;
	}
	if (!ret && !r && tid == ctl->pid)
		ret = tracee_syscall(tid, ctl->insn, __NR_prctl, &r, PR_GET_DUMPABLE,
				     0, 0, 0, 0, 0);
	if (!ret && r >= 0 && tid == ctl->pid) {
		ti->dumpable = r;
		r = 0;
	}
	/* each thread's own: rdtsc allowed or not, machine-check kill policy */
	if (!ret && !r)
		ret = tracee_syscall(tid, ctl->insn, __NR_prctl, &r, PR_GET_TSC,
				     buf + TI_TSC_OFF, 0, 0, 0, 0);
	if (!ret && !r)
		ret = tracee_syscall(tid, ctl->insn, __NR_prctl, &r, PR_MCE_KILL_GET,
				     0, 0, 0, 0, 0);
	if (!ret && r >= 0) {
		ti->mce_kill = r;
		r = 0;
	}
	/* a thread or process keyring exists (-ENOKEY: none; no CONFIG_KEYS: none) */
	if (!ret && !r)
		ret = tracee_syscall(tid, ctl->insn, __NR_keyctl, &r, 0 /* GET_KEYRING_ID */,
				     -1 /* KEY_SPEC_THREAD_KEYRING */, 0, 0, 0, 0);
	if (!ret) {
		ti->keyrings |= r >= 0 ? KEYRINGS_THREAD : 0;
		r = 0;
	}
	if (!ret && tid == ctl->pid)
		ret = tracee_syscall(tid, ctl->insn, __NR_keyctl, &r, 0,
				     -2 /* KEY_SPEC_PROCESS_KEYRING */, 0, 0, 0, 0);
	if (!ret && tid == ctl->pid) {
		ti->keyrings |= r >= 0 ? KEYRINGS_PROCESS : 0;
		r = 0;
	}
	/* the mm's registrations; a kernel without membarrier has none */
	if (!ret && !r && tid == ctl->pid)
		ret = tracee_syscall(tid, ctl->insn, __NR_membarrier, &r,
				     MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0, 0, 0, 0);
	if (!ret && tid == ctl->pid) {
		ti->membarrier = r == -ENOSYS ? 0 : r;
		r = 0;
	}
	return ret ? ret : r;
}

/*
 * A POSIX timer's time left and interval (timer_gettime into the area) and
 * the overrun of its last signal, by syscalls injected into the leader
 * (timers are the process's; the cure puts its registers back).
 */
int parasite_timer_get(struct parasite_ctl *ctl, int32_t id, struct itimerspec *its,
		       int *overrun)
{
	uint64_t buf = ctl->remote + ctl->area_off + offsetof(struct prs_area, u);
	long r = 0;
	int ret;

	ret = parasite_syscall(ctl, __NR_timer_gettime, &r, id, buf, 0, 0, 0, 0);
	if (!ret && !r)
		ret = area_pull(ctl);
	if (!ret && !r)
		memcpy(its, &ctl->area->u, sizeof(*its));
	if (!ret && !r)
		ret = parasite_syscall(ctl, __NR_timer_getoverrun, &r, id, 0, 0, 0, 0, 0);
	if (!ret && r >= 0) {
		*overrun = r;
		r = 0;
	}
	return ret ? ret : r;
}

int parasite_thread_info(struct parasite_ctl *ctl, pid_t tid, struct prs_thread_info *ti)
{
	uint64_t buf = ctl->remote + ctl->area_off + offsetof(struct prs_area, u);
	struct tracee t = { .tid = tid };
	long r1 = 0, r2 = 0;
	uint64_t tid_addr;
	int32_t v;
	int ret, rret;

	ret = tracee_save(&t);
	if (ret)
		return ret;
	if (tid != ctl->pid)	/* the leader's is off since the infection */
		tracee_suspend_seccomp(tid, true);
	ret = tracee_syscall(tid, ctl->insn, __NR_sigaltstack, &r1, 0, buf, 0, 0, 0, 0);
	if (!ret)
		ret = tracee_syscall(tid, ctl->insn, __NR_prctl, &r2, PR_GET_TID_ADDRESS,
				     buf + TI_TID_OFF, 0, 0, 0, 0);
	if (!ret && !r1 && !r2)
		r2 = thread_prctls(ctl, tid, buf, ti);
	if (tid != ctl->pid)
		tracee_suspend_seccomp(tid, false);
	rret = tracee_restore(&t);
	tracee_free(&t);
	if (!ret)
		ret = rret;
	if (!ret && (r1 || r2))
		ret = r1 ? r1 : r2;
	if (!ret)
		ret = area_pull(ctl);
	if (ret)
		return ret;
	ti->ss.ss_sp = (void *)ctl->area->u.ss.sp;
	ti->ss.ss_flags = ctl->area->u.ss.flags;
	ti->ss.ss_size = ctl->area->u.ss.size;
	memcpy(&tid_addr, (char *)&ctl->area->u + TI_TID_OFF, sizeof(tid_addr));
	ti->clear_tid = tid_addr;
	memcpy(&v, (char *)&ctl->area->u + TI_PDEATH_OFF, sizeof(v));
	ti->pdeathsig = v;
	memcpy(&v, (char *)&ctl->area->u + TI_TSC_OFF, sizeof(v));
	ti->tsc_mode = v;
	if (tid == ctl->pid) {
		memcpy(&v, (char *)&ctl->area->u + TI_REAPER_OFF, sizeof(v));
		ti->subreaper = v;
	}
	return 0;
}
