// SPDX-License-Identifier: MIT
/*
 * The ptrace layer (see ptrace.h): seize and stop a task, save and put back
 * its registers, xstate and signal mask, suspend its seccomp filter, wait
 * for its stops. Resume and detach first queue again the signals that
 * injected syscalls held back (common/inject.c).
 */
#include <elf.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/inject.h"
#include "common/log.h"
#include "common/ptrace.h"

#define XSTATE_FIRST_LEN	16384
#define XSTATE_MAX_LEN		(1 << 20)

int tracee_reap(pid_t tid, int *status)
{
	while (waitpid(tid, status, __WALL) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

int tracee_wait_stop(pid_t tid, int *status)
{
	int ret;

	ret = tracee_reap(tid, status);
	if (ret)
		return ret;
	if (WIFSTOPPED(*status))
		return *status;
	pr_info("tid %d is gone (status 0x%x)", tid, *status);
	return -ESRCH;
}

int tracee_wait_for(pid_t tid, tracee_stop_fn fn, void *arg, const char *what)
{
	int i, status, ret;

	for (i = 0; i < MAX_STOPS; i++) {
		ret = tracee_wait_stop(tid, &status);
		if (ret < 0)
			return ret;
		ret = fn(tid, status, arg);
		if (ret)
			return ret < 0 ? ret : 0;
	}
	pr_err("tid %d: no %s after %d stops", tid, what, MAX_STOPS);
	return -EAGAIN;
}

int tracee_set_sigmask(pid_t tid, uint64_t mask)
{
	if (ptrace(PTRACE_SETSIGMASK, tid, sizeof(mask), &mask))
		return -errno;
	return 0;
}

int tracee_get_sigmask(pid_t tid, uint64_t *mask)
{
	if (ptrace(PTRACE_GETSIGMASK, tid, sizeof(*mask), mask))
		return -errno;
	return 0;
}

void tracee_suspend_seccomp(pid_t tid, bool on)
{
	long opts = TRACEE_OPTIONS | (on ? PTRACE_O_SUSPEND_SECCOMP : 0);

	if (ptrace(PTRACE_SETOPTIONS, tid, NULL, (void *)opts))
		pr_debug("tid %d: can't %s seccomp: %m", tid, on ? "suspend" : "resume");
}

int tracee_rseq(pid_t tid, uint64_t *addr, uint32_t *len, uint32_t *sig)
{
	struct ferry_rseq_config rc;

	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, sizeof(rc), &rc) != sizeof(rc) ||
	    !rc.rseq_abi_pointer)
		return -ENOENT;
	*addr = rc.rseq_abi_pointer;
	*len = rc.rseq_abi_size;
	*sig = rc.signature;
	return 0;
}

/*
 * A signal-delivery stop came first and ate the interrupt's trap. Let the
 * signal take its normal course (a handler's frame is set up, the handler
 * does not run yet) and interrupt again.
 */
static int interrupt_stop_fn(pid_t tid, int status, void *arg)
{
	int sig;

	(void)arg;
	if (stop_event(status) == PTRACE_EVENT_STOP)
		return 1;
	sig = is_signal_stop(status) ? WSTOPSIG(status) : 0;
	pr_debug("tid %d: stop 0x%x before the interrupt, delivering signal %d",
		 tid, status, sig);
	if (ptrace(PTRACE_CONT, tid, NULL, (void *)(long)sig))
		return -errno;
	if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL))
		return -errno;
	return 0;
}

/*
 * semop and semtimedop return -EINTR to a wait broken by the interrupt
 * (not -ERESTARTNOHAND as msgrcv does): the task would see EINTR for our
 * stop alone. Put it back before the syscall, as the kernel's own restart
 * does; a signal that interrupted it was delivered before the event stop
 * (interrupt_stop_fn: its handler's frame leaves rax 0). A semtimedop's
 * timeout starts again.
 */
static int semop_rewind(pid_t tid)
{
	struct user_regs_struct r;

	if (ptrace(PTRACE_GETREGS, tid, NULL, &r))
		return -errno;
	if ((r.orig_rax != __NR_semop && r.orig_rax != __NR_semtimedop) ||
	    (long long)r.rax != -EINTR)
		return 0;
	r.rax = r.orig_rax;
	r.rip -= 2;	/* the syscall instruction */
	pr_debug("tid %d: semop interrupted by the stop: restarted", tid);
	return ptrace(PTRACE_SETREGS, tid, NULL, &r) ? -errno : 0;
}

/*
 * A syscall interrupted with -ERESTART_RESTARTBLOCK (nanosleep, poll with a
 * timeout, a futex wait with one) goes on, once resumed, as
 * restart_syscall(2) on the kernel's restart_block: from the next stop on,
 * orig_rax says __NR_restart_syscall and nothing says which call it was.
 * Every stop notes per thread the call it interrupted, so a saved state
 * names it: a new process has no restart_block, the restore runs the call.
 */
#define RESTART_SLOTS 4096
static struct {
	pid_t tid;
	long nr;
} restart_seen[RESTART_SLOTS];
static pthread_mutex_t restart_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * The slot of @tid, else a free one if @add, else -1 (restart_lock held):
 * open addressing from tid % RESTART_SLOTS; a forgotten entry leaves -1
 * (a tombstone) so the probes of others go on past it.
 */
static int restart_slot(pid_t tid, bool add)
{
	int i, k, free_slot = -1;

	for (k = 0; k < RESTART_SLOTS; k++) {
		i = ((unsigned int)tid + k) % RESTART_SLOTS;
		if (restart_seen[i].tid == tid)
			return i;
		if (restart_seen[i].tid <= 0 && free_slot < 0)
			free_slot = i;
		if (!restart_seen[i].tid)
			break;	/* never used: @tid is not further on */
	}
	return add ? free_slot : -1;
}

static void restart_note(pid_t tid)
{
	struct user_regs_struct r;
	bool in_block;
	int i;

	if (ptrace(PTRACE_GETREGS, tid, NULL, &r))
		return;
	in_block = (long)r.rax == -ERESTART_RESTARTBLOCK && (long)r.orig_rax >= 0;
	pthread_mutex_lock(&restart_lock);
	i = restart_slot(tid, in_block);
	if (i >= 0 && !in_block)
		restart_seen[i].tid = -1;
	else if (i >= 0 && r.orig_rax != __NR_restart_syscall) {
		restart_seen[i].tid = tid;
		restart_seen[i].nr = r.orig_rax;
	}	/* restart_syscall again: keep what an earlier stop saw */
	pthread_mutex_unlock(&restart_lock);
}

long tracee_restart_nr(pid_t tid)
{
	long nr = -1;
	int i;

	pthread_mutex_lock(&restart_lock);
	i = restart_slot(tid, false);
	if (i >= 0)
		nr = restart_seen[i].nr;
	pthread_mutex_unlock(&restart_lock);
	return nr;
}

int tracee_interrupt(pid_t tid)
{
	int ret;

	if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL))
		return -errno;
	ret = tracee_wait_for(tid, interrupt_stop_fn, NULL, "interrupt stop");
	if (!ret)
		ret = semop_rewind(tid);
	if (!ret)
		restart_note(tid);
	return ret;
}

int tracee_attach(pid_t tid, long extra_opts)
{
	if (ptrace(PTRACE_SEIZE, tid, NULL, (void *)(TRACEE_OPTIONS | extra_opts)))
		return -errno;
	return 0;
}

int tracee_seize(pid_t tid)
{
	int ret;

	ret = tracee_attach(tid, 0);
	if (ret) {
		pr_err("can't seize %d: %s", tid, strerror(-ret));
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

	ret = inject_requeue_held(tid);
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
	return is_signal_stop(status) ? inject_hold_signal(tid, WSTOPSIG(status)) : 0;
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
	if (tracee_get_sigmask(tid, &mask))
		return tracee_interrupt(tid);	/* running */
	/* Stopped: in a stop already waited for, or in one just begun. */
	return reap_stop(tid, &stopped);
}

/*
 * A thread given back in a syscall ferry saw interrupted (restart block):
 * it runs that call again itself, not restart_syscall, so the next
 * migration finds the call named in its registers (a new migrate has no
 * notes of this one's stops). A sleep goes on with the time it had left.
 */
static void restart_give_back(pid_t tid)
{
	struct user_regs_struct r;
	long nr = tracee_restart_nr(tid);

	if (nr < 0 || ptrace(PTRACE_GETREGS, tid, NULL, &r))
		return;
	if ((long)r.rax == -ERESTART_RESTARTBLOCK && (long)r.orig_rax >= 0) {
		r.orig_rax = nr;
		regs_sleep_left(&r);
		regs_fixup_restart(&r, false);
	} else if (r.rax == __NR_restart_syscall && (long)r.orig_rax == -1) {
		/* an injection's cure put it back as restart_syscall: the call instead */
		r.rax = -ERESTART_RESTARTBLOCK;
		r.orig_rax = nr;
		regs_sleep_left(&r);
		r.rax = nr;
		r.orig_rax = -1;
	} else {
		return;
	}
	ptrace(PTRACE_SETREGS, tid, NULL, &r);
}

int tracee_detach(pid_t tid)
{
	int ret;

	ret = stop_for_detach(tid);
	if (ret)
		return ret;
	restart_give_back(tid);
	ret = inject_requeue_held(tid);
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
	/* the call a restart_syscall goes on with, if a stop of ours saw it */
	if ((long)t->regs.rax == -ERESTART_RESTARTBLOCK &&
	    t->regs.orig_rax == __NR_restart_syscall && tracee_restart_nr(t->tid) >= 0)
		t->regs.orig_rax = tracee_restart_nr(t->tid);
	ret = get_xstate(t->tid, &t->xstate, &t->xstate_len);
	if (ret)
		return ret;
	ret = tracee_get_sigmask(t->tid, &t->sigmask);
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
	ret = tracee_set_sigmask(t->tid, t->sigmask);
	return ret;
}

void tracee_free(struct tracee *t)
{
	free(t->xstate);
	t->xstate = NULL;
	t->xstate_len = 0;
}

void regs_sleep_left(struct user_regs_struct *r)
{
	if ((long)r->rax != -ERESTART_RESTARTBLOCK)
		return;
	if (r->orig_rax == __NR_nanosleep && r->rsi)
		r->rdi = r->rsi;
	else if (r->orig_rax == __NR_clock_nanosleep && !(r->rsi & 1 /* TIMER_ABSTIME */) && r->r10)
		r->rdx = r->r10;
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
