/* SPDX-License-Identifier: MIT */
/*
 * long rst_clone_thread(struct clone_args *ca, size_t size,
 *			 void (*fn)(void *arg, long idx), void *arg, long idx)
 *
 * clone3() a thread onto its own stack and call fn(arg, idx) there. Done in
 * assembly because the child must not touch the parent's stack frame.
 * r8, r9 and r10 survive the syscall (it clobbers rax, rcx, r11 only).
 */
	.text
	.globl	rst_clone_thread
	.type	rst_clone_thread, @function
rst_clone_thread:
	movq	%rdx, %r9		/* fn */
	movq	%rcx, %r10		/* arg; idx is in r8 already */
	movl	$435, %eax		/* __NR_clone3 */
	syscall
	testq	%rax, %rax
	jnz	1f
	movq	%r10, %rdi
	movq	%r8, %rsi
	xorl	%ebp, %ebp
	call	*%r9
	ud2
1:	ret
	.size	rst_clone_thread, .-rst_clone_thread
	.section .note.GNU-stack,"",@progbits
