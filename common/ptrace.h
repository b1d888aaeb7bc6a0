/* SPDX-License-Identifier: MIT */
/*
 * The ptrace layer, shared by `migrate` (seize, infect, cure) and `restore`
 * (driving the restorer, catching the restored task after rt_sigreturn):
 * seize/interrupt/resume/detach, registers, xstate, signal mask, seccomp
 * suspension, waiting for stops. Running code in a stopped task (injected
 * syscalls, remote memory, held signals) is in common/inject.h.
 *
 * All calls for a task must come from the thread that seized it (ptrace
 * belongs to the tracer thread).
 */
#ifndef FERRY_PTRACE_H
#define FERRY_PTRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/user.h>
#include <sys/wait.h>

/*
 * Options of every seized task; callers add theirs (restore traces clone
 * and fork) through tracee_attach. No PTRACE_O_EXITKILL: the task must
 * outlive a dying migrate.
 */
#define TRACEE_OPTIONS		PTRACE_O_TRACESYSGOOD
#define SYSCALL_STOP		(SIGTRAP | 0x80)	/* PTRACE_O_TRACESYSGOOD */
#define MAX_STOPS		64	/* unrelated stops tolerated in one wait */

#define EFLAGS_TF		0x100
#define EFLAGS_DF		0x400
#define EFLAGS_AC		0x40000
#define USER_CS			0x33	/* 64-bit code and stack selectors */
#define USER_DS			0x2b

struct tracee {
	pid_t tid;
	struct user_regs_struct regs;	/* as seized (what the task will get back) */
	void *xstate;			/* NT_X86_XSTATE, xstate_len bytes */
	size_t xstate_len;
	uint64_t sigmask;
};

/* PTRACE_SEIZE with TRACEE_OPTIONS | @extra_opts, nothing else. */
int tracee_attach(pid_t tid, long extra_opts);
/* PTRACE_SEIZE + PTRACE_INTERRUPT, wait for the event stop. No SIGSTOP is sent. */
int tracee_seize(pid_t tid);
/* PTRACE_INTERRUPT an already seized, running task and wait for its stop. */
int tracee_interrupt(pid_t tid);
/* Let a stopped seized task run again (PTRACE_CONT, no signal). */
int tracee_resume(pid_t tid);
int tracee_detach(pid_t tid);

/*
 * The syscall @tid was in when a stop of ours found it interrupted with
 * -ERESTART_RESTARTBLOCK (what its restart_syscall goes on with), or -1.
 */
long tracee_restart_nr(pid_t tid);
/*
 * Save / put back general regs, xstate and sigmask of a stopped task. A
 * restart_syscall in the saved regs is named by the call it goes on with
 * (tracee_restart_nr) where known.
 */
int tracee_save(struct tracee *t);
/* Put back what tracee_save took, applying the syscall-restart fix-up. */
int tracee_restore(struct tracee *t);
void tracee_free(struct tracee *t);

int tracee_get_sigmask(pid_t tid, uint64_t *mask);
int tracee_set_sigmask(pid_t tid, uint64_t mask);

/*
 * Suspend (@on) or resume the seccomp filter of a task seized with
 * TRACEE_OPTIONS: a filter must not see (or kill it for) syscalls we make
 * it run. Needs CAP_SYS_ADMIN; without it the filter decides (logged).
 */
void tracee_suspend_seccomp(pid_t tid, bool on);

/* As the kernel's struct rseq_cs (uapi linux/rseq.h). */
struct rseq_cs_desc {
	uint32_t version;
	uint32_t flags;
	uint64_t start_ip;
	uint64_t post_commit_offset;
	uint64_t abort_ip;
};

/* The task's registered rseq area (PTRACE_GET_RSEQ_CONFIGURATION): 0, or -ENOENT if none. */
int tracee_rseq(pid_t tid, uint64_t *addr, uint32_t *len, uint32_t *sig);

/*
 * Kernel's syscall restart, done by hand: a task stopped inside a syscall
 * (rax -512..-516, orig_rax >= 0) gets rip -= 2 and its syscall again
 * (rax = orig_rax); -516 becomes restart_syscall if @restart_block_ok,
 * else the original syscall. orig_rax = -1 so the kernel does not redo it.
 */
void regs_fixup_restart(struct user_regs_struct *r, bool restart_block_ok);
/*
 * Before running an interrupted relative nanosleep/clock_nanosleep again:
 * the kernel wrote the time left to its rem argument (if it has one), so
 * that becomes the time asked for. Other calls run with their arguments.
 */
void regs_sleep_left(struct user_regs_struct *r);

static inline int stop_event(int status)
{
	return status >> 16;
}

/* Signal-delivery stop: no event, not a syscall stop. */
static inline bool is_signal_stop(int status)
{
	return stop_event(status) == 0 && WSTOPSIG(status) != SYSCALL_STOP;
}

/* waitpid(__WALL) for the next stop or exit of @tid, EINTR retried: 0 and *status, or -errno. */
int tracee_reap(pid_t tid, int *status);

/* waitpid(__WALL) for a ptrace stop of @tid; returns status or -errno. */
int tracee_wait_stop(pid_t tid, int *status);

/*
 * Judges one stop of @tid: 1 it is the one waited for, 0 go on (the
 * function has let the task run again), -errno.
 */
typedef int (*tracee_stop_fn)(pid_t tid, int status, void *arg);

/*
 * Wait until @fn accepts a stop of @tid, tolerating MAX_STOPS others
 * (@what names the awaited stop in the error). 0 or -errno.
 */
int tracee_wait_for(pid_t tid, tracee_stop_fn fn, void *arg, const char *what);

#endif
