// SPDX-License-Identifier: MIT
/*
 * ptrace helpers: seize and stop a task, save and put back its registers,
 * run syscalls in it through the `syscall` instruction of its [vdso].
 *
 * All calls for a task must come from the thread that seized it (ptrace
 * belongs to the tracer thread). Signals the task gets while we step it
 * through injected syscalls are suppressed at their delivery stop, kept
 * here, and queued to the task again when it is resumed or detached, so
 * none is lost and none runs a handler on borrowed registers.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/log.h"
#include "common/ptrace.h"

/* No PTRACE_O_EXITKILL: the task must outlive a dying migrate. */
#define SEIZE_OPTIONS		PTRACE_O_TRACESYSGOOD
#define SYSCALL_STOP		(SIGTRAP | 0x80)	/* PTRACE_O_TRACESYSGOOD */
#define MAX_STOPS		64	/* unrelated stops tolerated in one wait */
#define XSTATE_FIRST_LEN	16384
#define XSTATE_MAX_LEN		(1 << 20)
#define EFLAGS_TF		0x100
#define RED_ZONE		128

/* A signal suppressed at its delivery stop, to be queued again. */
struct stashed_sig {
	pid_t tid;
	siginfo_t si;
};

static struct stashed_sig *stash;
static size_t nr_stash;

static int stop_event(int status)
{
	return status >> 16;
}

/* Signal-delivery stop: no event, not a syscall stop. */
static bool is_signal_stop(int status)
{
	return stop_event(status) == 0 && WSTOPSIG(status) != SYSCALL_STOP;
}

int tracee_wait_stop(pid_t tid, int *status)
{
	pid_t r;

	for (;;) {
		r = waitpid(tid, status, __WALL);
		if (r >= 0)
			break;
		if (errno != EINTR)
			return -errno;
	}
	if (WIFSTOPPED(*status))
		return *status;
	pr_info("tid %d is gone (status 0x%x)", tid, *status);
	return -ESRCH;
}

static int stash_signal(pid_t tid, int sig)
{
	struct stashed_sig *s;
	siginfo_t si;

	if (ptrace(PTRACE_GETSIGINFO, tid, NULL, &si)) {
		if (errno == ESRCH)
			return -ESRCH;
		memset(&si, 0, sizeof(si));
		si.si_signo = sig;
		si.si_code = SI_TKILL;
	}
	s = realloc(stash, (nr_stash + 1) * sizeof(*s));
	if (!s)
		return -ENOMEM;
	stash = s;
	stash[nr_stash].tid = tid;
	stash[nr_stash].si = si;
	nr_stash++;
	pr_info("tid %d: signal %d held back while ferry works, queued again on resume", tid, sig);
	return 0;
}

/* Move @tid's stashed signals to @out (SIGSTOP last); returns how many. */
static size_t stash_take(pid_t tid, siginfo_t **out)
{
	siginfo_t *v;
	size_t i, j, n = 0, k = 0;

	for (i = 0; i < nr_stash; i++)
		n += stash[i].tid == tid;
	*out = NULL;
	if (!n)
		return 0;
	v = malloc(n * sizeof(*v));
	if (!v)
		return 0;
	for (i = 0; i < nr_stash; i++)
		if (stash[i].tid == tid && stash[i].si.si_signo != SIGSTOP)
			v[k++] = stash[i].si;
	for (i = 0; i < nr_stash; i++)
		if (stash[i].tid == tid && stash[i].si.si_signo == SIGSTOP)
			v[k++] = stash[i].si;
	for (i = 0, j = 0; i < nr_stash; i++)
		if (stash[i].tid != tid)
			stash[j++] = stash[i];
	nr_stash = j;
	*out = v;
	return n;
}

static int set_sigmask(pid_t tid, uint64_t mask)
{
	if (ptrace(PTRACE_SETSIGMASK, tid, sizeof(mask), &mask))
		return -errno;
	return 0;
}

static int get_sigmask(pid_t tid, uint64_t *mask)
{
	if (ptrace(PTRACE_GETSIGMASK, tid, sizeof(*mask), mask))
		return -errno;
	return 0;
}

/*
 * The task sends each signal to itself with rt_tgsigqueueinfo, which keeps
 * the original siginfo (only a task may queue kernel-style siginfo to
 * itself). The siginfo is written below the task's stack red zone, memory
 * the task does not use. All signals are blocked meanwhile so a queued one
 * is not delivered under an injected syscall; SIGSTOP, which cannot be
 * blocked, comes last.
 */
static int requeue_injected(pid_t tid, const siginfo_t *si, size_t n, size_t *done)
{
	struct user_regs_struct saved;
	uint64_t mask, insn, addr;
	long tgid, ntid, r;
	struct iovec local, remote;
	size_t i;
	int ret, err;

	*done = 0;
	if (ptrace(PTRACE_GETREGS, tid, NULL, &saved))
		return -errno;
	ret = get_sigmask(tid, &mask);
	if (ret)
		return ret;
	insn = find_syscall_insn(tid);
	if (!insn)
		return -ENOENT;
	ret = set_sigmask(tid, ~0ULL);
	if (ret)
		return ret;
	/* Past any seccomp filter (needs CAP_SYS_ADMIN; else the filter decides). */
	ptrace(PTRACE_SETOPTIONS, tid, NULL,
	       (void *)(long)(SEIZE_OPTIONS | PTRACE_O_SUSPEND_SECCOMP));
	ret = tracee_syscall(tid, insn, __NR_getpid, &tgid, 0, 0, 0, 0, 0, 0);
	if (!ret)
		ret = tracee_syscall(tid, insn, __NR_gettid, &ntid, 0, 0, 0, 0, 0, 0);
	addr = (saved.rsp - RED_ZONE - sizeof(siginfo_t)) & ~63ULL;
	for (i = 0; !ret && i < n; i++) {
		local.iov_base = (void *)&si[i];
		local.iov_len = sizeof(si[i]);
		remote.iov_base = (void *)addr;
		remote.iov_len = sizeof(si[i]);
		if (process_vm_writev(tid, &local, 1, &remote, 1, 0) != sizeof(si[i])) {
			ret = -errno ?: -EIO;
			break;
		}
		ret = tracee_syscall(tid, insn, __NR_rt_tgsigqueueinfo, &r, tgid, ntid,
				     si[i].si_signo, addr, 0, 0);
		if (!ret && r < 0)
			ret = r;
		if (!ret)
			(*done)++;
	}
	/* Registers as they were, but never back inside a syscall. */
	regs_fixup_restart(&saved, true);
	if (ptrace(PTRACE_SETREGS, tid, NULL, &saved) && !ret)
		ret = -errno;
	ptrace(PTRACE_SETOPTIONS, tid, NULL, (void *)(long)SEIZE_OPTIONS);
	err = set_sigmask(tid, mask);
	return ret ?: err;
}

/* Queue again what was held back; tkill (siginfo lost) if injection fails. */
static int requeue_signals(pid_t tid)
{
	siginfo_t *si, *late;
	size_t n, nl, i, done;
	int ret;

	n = stash_take(tid, &si);
	if (!n)
		return 0;
	ret = requeue_injected(tid, si, n, &done);
	/* Anything stopped meanwhile (an external SIGSTOP) goes the plain way. */
	nl = stash_take(tid, &late);
	if (ret == -ESRCH)
		goto out;
	if (ret)
		pr_warn("tid %d: can't queue %zu held-back signals with their siginfo (%s), resending",
			tid, n - done, strerror(-ret));
	for (i = done; ret && i < n; i++)
		syscall(SYS_tkill, tid, si[i].si_signo);
	for (i = 0; i < nl; i++)
		syscall(SYS_tkill, tid, late[i].si_signo);
	ret = 0;
out:
	free(si);
	free(late);
	return ret;
}

int tracee_interrupt(pid_t tid)
{
	int i, status, ret, sig;

	if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL))
		return -errno;
	for (i = 0; i < MAX_STOPS; i++) {
		ret = tracee_wait_stop(tid, &status);
		if (ret < 0)
			return ret;
		if (stop_event(status) == PTRACE_EVENT_STOP)
			return 0;
		/*
		 * A signal-delivery stop came first and ate the interrupt's
		 * trap. Let the signal take its normal course (a handler's
		 * frame is set up, the handler does not run yet) and
		 * interrupt again.
		 */
		sig = is_signal_stop(status) ? WSTOPSIG(status) : 0;
		pr_debug("tid %d: stop 0x%x before the interrupt, delivering signal %d",
			 tid, status, sig);
		if (ptrace(PTRACE_CONT, tid, NULL, (void *)(long)sig))
			return -errno;
		if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL))
			return -errno;
	}
	pr_err("tid %d: no interrupt stop after %d stops", tid, MAX_STOPS);
	return -EAGAIN;
}

int tracee_seize(pid_t tid)
{
	int ret;

	if (ptrace(PTRACE_SEIZE, tid, NULL, (void *)(long)SEIZE_OPTIONS)) {
		ret = -errno;
		pr_perror("can't seize %d", tid);
		return ret;
	}
	ret = tracee_interrupt(tid);
	if (ret && ret != -ESRCH)
		ptrace(PTRACE_DETACH, tid, NULL, NULL);
	return ret;
}

int tracee_resume(pid_t tid)
{
	int ret;

	ret = requeue_signals(tid);
	if (ret)
		return ret;
	if (ptrace(PTRACE_CONT, tid, NULL, NULL))
		return -errno;
	return 0;
}

/* Collect a stop not waited for yet; a signal it reports is kept. */
static int reap_stop(pid_t tid, bool *stopped)
{
	int status;
	pid_t r;

	*stopped = false;
	r = waitpid(tid, &status, __WALL | WNOHANG);
	if (r < 0)
		return -errno;
	if (r == 0)
		return 0;
	if (!WIFSTOPPED(status))
		return -ESRCH;
	*stopped = true;
	return is_signal_stop(status) ? stash_signal(tid, WSTOPSIG(status)) : 0;
}

/*
 * Only a stopped tracee can be detached. One left running under us may sit
 * in a signal-delivery stop nobody has waited for: keep that signal (a
 * detach from there would drop it); a running one is stopped first.
 */
static int stop_for_detach(pid_t tid)
{
	bool stopped;
	uint64_t mask;
	int ret;

	ret = reap_stop(tid, &stopped);
	if (ret || stopped)
		return ret;
	if (get_sigmask(tid, &mask))
		return tracee_interrupt(tid);	/* running */
	/* Stopped: in a stop already waited for, or in one just begun. */
	return reap_stop(tid, &stopped);
}

int tracee_detach(pid_t tid)
{
	int ret;

	ret = stop_for_detach(tid);
	if (ret)
		return ret;
	ret = requeue_signals(tid);
	if (ptrace(PTRACE_DETACH, tid, NULL, NULL))
		return -errno;
	return ret;
}

/* NT_X86_XSTATE is as big as the CPU's features make it: ask, don't assume. */
static int get_xstate(pid_t tid, void **buf, size_t *len)
{
	struct iovec iov;
	size_t size;
	void *p;

	for (size = XSTATE_FIRST_LEN; size <= XSTATE_MAX_LEN; size *= 2) {
		p = malloc(size);
		if (!p)
			return -ENOMEM;
		iov.iov_base = p;
		iov.iov_len = size;
		if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov)) {
			free(p);
			return -errno;
		}
		if (iov.iov_len < size) {
			*buf = p;
			*len = iov.iov_len;
			return 0;
		}
		free(p);
	}
	return -E2BIG;
}

int tracee_save(struct tracee *t)
{
	int ret;

	t->xstate = NULL;
	t->xstate_len = 0;
	if (ptrace(PTRACE_GETREGS, t->tid, NULL, &t->regs))
		return -errno;
	ret = get_xstate(t->tid, &t->xstate, &t->xstate_len);
	if (ret)
		return ret;
	ret = get_sigmask(t->tid, &t->sigmask);
	if (ret)
		tracee_free(t);
	return ret;
}

int tracee_restore(struct tracee *t)
{
	struct user_regs_struct r = t->regs;
	struct iovec iov = { .iov_base = t->xstate, .iov_len = t->xstate_len };
	int ret;

	regs_fixup_restart(&r, true);
	if (ptrace(PTRACE_SETREGS, t->tid, NULL, &r))
		return -errno;
	if (t->xstate && ptrace(PTRACE_SETREGSET, t->tid, (void *)NT_X86_XSTATE, &iov))
		return -errno;
	ret = set_sigmask(t->tid, t->sigmask);
	return ret;
}

void tracee_free(struct tracee *t)
{
	free(t->xstate);
	t->xstate = NULL;
	t->xstate_len = 0;
}

void regs_fixup_restart(struct user_regs_struct *r, bool restart_block_ok)
{
	if ((long)r->orig_rax < 0)
		return;
	switch ((long)r->rax) {
	case -ERESTARTSYS:
	case -ERESTARTNOINTR:
	case -ERESTARTNOHAND:
		r->rax = r->orig_rax;
		break;
	case -ERESTART_RESTARTBLOCK:
		r->rax = restart_block_ok ? __NR_restart_syscall : r->orig_rax;
		break;
	default:
		return;
	}
	r->rip -= 2;
	r->orig_rax = -1;
}

static int find_vdso(pid_t pid, uint64_t *start, uint64_t *end)
{
	char path[64], line[512];
	int ret = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!strstr(line, "[vdso]"))
			continue;
		if (sscanf(line, "%" SCNx64 "-%" SCNx64, start, end) == 2)
			ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

uint64_t find_syscall_insn(pid_t pid)
{
	uint64_t start, end, insn = 0;
	unsigned char *buf = NULL;
	char path[64];
	ssize_t n;
	int fd = -1;
	size_t i;

	if (find_vdso(pid, &start, &end) || end <= start || end - start > (1 << 24))
		goto out;
	buf = malloc(end - start);
	if (!buf)
		goto out;
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto out;
	n = pread(fd, buf, end - start, start);
	for (i = 0; n > 1 && i < (size_t)n - 1; i++) {
		/* Bytes 0f 05 decode as `syscall` when jumped to, wherever they are. */
		if (buf[i] == 0x0f && buf[i + 1] == 0x05) {
			insn = start + i;
			break;
		}
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	if (!insn)
		pr_err("no syscall instruction in [vdso] of %d", pid);
	return insn;
}

/* PTRACE_SYSCALL until the next syscall stop; signals met are held back. */
static int syscall_stop(pid_t tid)
{
	int i, status, ret;

	for (i = 0; i < MAX_STOPS; i++) {
		if (ptrace(PTRACE_SYSCALL, tid, NULL, NULL))
			return -errno;
		ret = tracee_wait_stop(tid, &status);
		if (ret < 0)
			return ret;
		if (WSTOPSIG(status) == SYSCALL_STOP && !stop_event(status))
			return 0;
		if (!is_signal_stop(status))
			continue;	/* group stop, stray interrupt: go on */
		ret = stash_signal(tid, WSTOPSIG(status));
		if (ret)
			return ret;
	}
	pr_err("tid %d: no syscall stop after %d stops", tid, MAX_STOPS);
	return -EAGAIN;
}

int tracee_syscall(pid_t tid, uint64_t insn, long nr, long *ret,
		   long a1, long a2, long a3, long a4, long a5, long a6)
{
	struct user_regs_struct r;
	int err;

	if (ptrace(PTRACE_GETREGS, tid, NULL, &r))
		return -errno;
	r.rip = insn;
	r.rax = nr;
	r.orig_rax = -1;	/* not in a syscall: the kernel must not restart one */
	r.rdi = a1;
	r.rsi = a2;
	r.rdx = a3;
	r.r10 = a4;
	r.r8 = a5;
	r.r9 = a6;
	r.eflags &= ~EFLAGS_TF;
	if (ptrace(PTRACE_SETREGS, tid, NULL, &r))
		return -errno;
	err = syscall_stop(tid);	/* entry */
	if (!err)
		err = syscall_stop(tid);	/* exit */
	if (err)
		return err;
	if (ptrace(PTRACE_GETREGS, tid, NULL, &r))
		return -errno;
	if (r.rip != insn + 2) {
		pr_err("tid %d: injected syscall %ld stopped at 0x%llx, not 0x%" PRIx64,
		       tid, nr, r.rip, insn + 2);
		return -EIO;
	}
	*ret = r.rax;
	pr_debug("tid %d: injected syscall %ld = %ld", tid, nr, *ret);
	return 0;
}
