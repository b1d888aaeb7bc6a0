/* SPDX-License-Identifier: MIT */
/*
 * Making a stopped, seized task do things (on top of common/ptrace.h):
 * syscalls injected at a `syscall` instruction of its own, its memory
 * read and written from outside, and signals that stop it while we work
 * held back and queued to it again from inside, siginfo intact.
 */
#ifndef FERRY_INJECT_H
#define FERRY_INJECT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* From /proc/PID/maps: the VMA holding @addr, or (@name set) the first line naming @name. */
int tracee_find_vma(pid_t pid, const char *name, uint64_t addr, uint64_t *start, uint64_t *end);

/*
 * Address of a `syscall` instruction the task may execute: in its [vdso],
 * else in an executable mapping of a file, else in any executable mapping;
 * 0 if none.
 */
uint64_t find_syscall_insn(pid_t pid);

/*
 * Run one syscall in a stopped task at syscall instruction @insn. Registers
 * are clobbered: callers save before and restore after. 0 and *ret, or -errno.
 * Signals met on the way are held back and queued again by tracee_resume
 * and tracee_detach.
 */
int tracee_syscall(pid_t tid, uint64_t insn, long nr, long *ret,
		   long a1, long a2, long a3, long a4, long a5, long a6);

/* process_vm_readv/writev of exactly @len bytes: 0, -errno, or -EIO if short. */
int tracee_read(pid_t pid, uint64_t addr, void *buf, size_t len);
int tracee_write(pid_t pid, uint64_t addr, const void *buf, size_t len);

/* Signals held back from their tasks, to be queued again. */
struct held_sigs {
	struct held_sig {
		pid_t tid;
		siginfo_t si;
	} *v;
	size_t nr;
};

int held_sigs_add(struct held_sigs *h, pid_t tid, const siginfo_t *si);
/* Move @tid's signals to *@out (SIGSTOP last; free it); returns how many. */
size_t held_sigs_take(struct held_sigs *h, pid_t tid, siginfo_t **out);
void held_sigs_free(struct held_sigs *h);

/*
 * Queue @n signals to stopped @tid from inside it (rt_tgsigqueueinfo to
 * itself keeps any siginfo), each siginfo written at @scratch in the task
 * first. Blocks all its signals so none is delivered under an injected
 * call: the caller puts registers and mask back afterwards. What cannot
 * be queued that way is sent plainly (siginfo lost, logged). 0 or -ESRCH.
 */
int tracee_requeue(pid_t tid, uint64_t insn, const siginfo_t *si, size_t n, uint64_t scratch);

/* For common/ptrace.c: the signals tracee_syscall held back for @tid. */
int inject_hold_signal(pid_t tid, int sig);
int inject_requeue_held(pid_t tid);

#endif
