/* SPDX-License-Identifier: MIT */
/*
 * ptrace helpers shared by `migrate` (seize, inject, cure) and `restore`
 * (catching the restored task after rt_sigreturn, unmapping the restorer).
 */
#ifndef FERRY_PTRACE_H
#define FERRY_PTRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

struct tracee {
	pid_t tid;
	struct user_regs_struct regs;	/* as seized (what the task will get back) */
	void *xstate;			/* NT_X86_XSTATE, xstate_len bytes */
	size_t xstate_len;
	uint64_t sigmask;
};

/* PTRACE_SEIZE + PTRACE_INTERRUPT, wait for the event stop. No SIGSTOP is sent. */
int tracee_seize(pid_t tid);
/* PTRACE_INTERRUPT an already seized, running task and wait for its stop. */
int tracee_interrupt(pid_t tid);
/* Let a stopped seized task run again (PTRACE_CONT, no signal). */
int tracee_resume(pid_t tid);
int tracee_detach(pid_t tid);

/* Save / put back general regs, xstate and sigmask of a stopped task. */
int tracee_save(struct tracee *t);
/* Put back what tracee_save took, applying the syscall-restart fix-up. */
int tracee_restore(struct tracee *t);
void tracee_free(struct tracee *t);

/*
 * Kernel's syscall restart, done by hand: a task stopped inside a syscall
 * (rax -512..-516, orig_rax >= 0) gets rip -= 2 and its syscall again
 * (rax = orig_rax); -516 becomes restart_syscall if @restart_block_ok,
 * else the original syscall. orig_rax = -1 so the kernel does not redo it.
 */
void regs_fixup_restart(struct user_regs_struct *r, bool restart_block_ok);

/* Address of a `syscall` instruction in the task's [vdso], 0 if none. */
uint64_t find_syscall_insn(pid_t pid);

/*
 * Run one syscall in a stopped task at syscall instruction @insn. Registers
 * are clobbered: callers save before and restore after. 0 and *ret, or -errno.
 */
int tracee_syscall(pid_t tid, uint64_t insn, long nr, long *ret,
		   long a1, long a2, long a3, long a4, long a5, long a6);

/* waitpid(__WALL) for a ptrace stop of @tid; returns status or -errno. */
int tracee_wait_stop(pid_t tid, int *status);

#endif
