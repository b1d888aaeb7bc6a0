/* SPDX-License-Identifier: MIT */
/*
 * Parasite entry (trap mode). migrate sets rip here, rsp to the top of the
 * parasite stack (16-byte aligned) and rdi to the command area, then
 * PTRACE_CONTs the target. The command runs, then the blob stops itself
 * with a SIGTRAP sent by tgkill, which migrate intercepts and suppresses.
 *
 * Why not int3: a fault signal (int3, ud2) is forced, and a forced signal
 * that is blocked or ignored resets the target's handler to SIG_DFL. A
 * queued SIGTRAP changes no disposition, and a tracee sees even ignored
 * signals.
 */
#include <asm/unistd.h>

#define SIGTRAP 5
#define SIGKILL 9

	.section .text.entry, "ax"
	.globl	parasite_entry
	.hidden	parasite_entry
	.type	parasite_entry, @function
parasite_entry:
	call	prs_main
	mov	$__NR_getpid, %eax
	syscall
	mov	%rax, %rdi
	mov	$__NR_gettid, %eax
	syscall
	mov	%rax, %rsi
	mov	$SIGTRAP, %edx
	mov	$__NR_tgkill, %eax
	syscall
	.globl	parasite_trap_ret
	.hidden	parasite_trap_ret
parasite_trap_ret:
	/*
	 * migrate never resumes the task here. Running on means the tracer
	 * died while the parasite was in: the task's own registers are lost
	 * with it, so end the task (as a trap with no tracer would) rather
	 * than let it run on from borrowed state. rdi still holds the pid.
	 */
	mov	$SIGKILL, %esi
	mov	$__NR_kill, %eax
	syscall
	jmp	parasite_trap_ret
	.size	parasite_entry, . - parasite_entry
