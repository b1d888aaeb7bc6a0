// SPDX-License-Identifier: MIT
/*
 * The restorer blob. Runs inside a new process made by `restore`, on its own
 * stack in its own mapping, and turns that process into the saved one:
 * everything of the `restore` program is unmapped, every VMA is mapped back
 * at its address and filled from the image stack, then the mm fields,
 * signal handlers, itimers and rseq are set. It stops on int3 (the tracer
 * watches), then rt_sigreturn loads the saved registers, signal mask and
 * altstack. The tracer unmaps this blob after that.
 */
#include <stdint.h>

#include "common/raw_syscall.h"
#include "restorer/restorer.h"

#define NR_read		0
#define NR_close	3
#define NR_mmap		9
#define NR_mprotect	10
#define NR_munmap	11
#define NR_rt_sigaction	13
#define NR_rt_sigreturn	15
#define NR_pread64	17
#define NR_setitimer	38
#define NR_exit_group	231
#define NR_arch_prctl	158
#define NR_prctl	157
#define NR_rseq		334
#define NR_set_tid_address 218
#define NR_clone3	435

#define CLONE_VM	0x00000100
#define CLONE_FS	0x00000200
#define CLONE_FILES	0x00000400
#define CLONE_SIGHAND	0x00000800
#define CLONE_THREAD	0x00010000
#define CLONE_SYSVSEM	0x00040000

#define PROT_READ	0x1
#define PROT_WRITE	0x2
#define MAP_SHARED	0x01
#define MAP_FIXED	0x10
#define MAP_ANONYMOUS	0x20
#define ARCH_SET_GS	0x1001
#define ARCH_SET_FS	0x1002
#define ARCH_MAP_VDSO_64 0x2003
#define PR_SET_MM	35
#define PR_SET_MM_MAP	14
#define PR_SET_NAME	15
#define RSEQ_FLAG_UNREGISTER 1
#define TASK_SIZE	0x7ffffffff000UL
#define EINTR		4

static int failed(struct rst_args *a, const char *step, long err, uint64_t addr)
{
	int i;

	for (i = 0; step[i] && i < (int)sizeof(a->err_step) - 1; i++)
		a->err_step[i] = step[i];
	a->err_step[i] = 0;
	a->err = err;
	a->err_addr = addr;
	a->status = RST_FAILED;
	return -1;
}

static int unmap_all_but_self(struct rst_args *a)
{
	uint64_t end = a->self_start + a->self_len;
	long ret;

	ret = raw_syscall2(NR_munmap, 0, a->self_start);
	if (ret)
		return failed(a, "munmap below", ret, 0);
	ret = raw_syscall2(NR_munmap, end, TASK_SIZE - end);
	if (ret)
		return failed(a, "munmap above", ret, end);
	return 0;
}

static int map_vmas(struct rst_args *a)
{
	struct rst_vma *v = (struct rst_vma *)a->vmas;
	uint64_t i;

	for (i = 0; i < a->nr_vmas; i++, v++) {
		uint32_t prot = v->prot;
		long ret;

		/* Filled later: private and anonymous shared maps are writable for now. */
		if (!(v->flags & MAP_SHARED) || v->fd < 0)
			prot |= PROT_READ | PROT_WRITE;
		ret = raw_syscall6(NR_mmap, v->start, v->end - v->start, prot, v->flags | MAP_FIXED,
				   v->fd, v->pgoff);
		if (ret != (long)v->start)
			return failed(a, "mmap", ret, v->start);
	}
	return 0;
}

static int fill_memory(struct rst_args *a)
{
	struct rst_fill *f = (struct rst_fill *)a->fills;
	uint64_t i;

	for (i = 0; i < a->nr_fills; i++, f++) {
		uint64_t done = 0;

		if (f->fd < 0) {
			raw_memset((void *)f->vaddr, 0, f->len);
			continue;
		}
		while (done < f->len) {
			long n = raw_syscall4(NR_pread64, f->fd, f->vaddr + done, f->len - done,
					      f->off + done);

			if (n == -EINTR)
				continue;
			if (n <= 0)
				return failed(a, "pread pages", n ? n : -5, f->vaddr + done);
			done += n;
		}
	}
	return 0;
}

static int protect_vmas(struct rst_args *a)
{
	struct rst_vma *v = (struct rst_vma *)a->vmas;
	uint64_t i;

	for (i = 0; i < a->nr_vmas; i++, v++) {
		long ret = raw_syscall3(NR_mprotect, v->start, v->end - v->start, v->prot);

		if (ret)
			return failed(a, "mprotect", ret, v->start);
	}
	return 0;
}

static int restore_signals(struct rst_args *a)
{
	int sig;

	for (sig = 1; sig <= RST_NSIG; sig++) {
		long ret;

		if (sig == 9 || sig == 19)
			continue;
		ret = raw_syscall4(NR_rt_sigaction, sig, &a->sa[sig - 1], 0, 8);
		if (ret)
			return failed(a, "rt_sigaction", ret, sig);
	}
	for (sig = 0; sig < 3; sig++) {
		long ret = raw_syscall3(NR_setitimer, sig, a->itimers[sig], 0);

		if (ret)
			return failed(a, "setitimer", ret, sig);
	}
	return 0;
}

static int restore_task_state(struct rst_args *a)
{
	long ret;
	uint32_t i;

	a->mm.auxv = (uint64_t)a->auxv;
	ret = raw_syscall5(NR_prctl, PR_SET_MM, PR_SET_MM_MAP, &a->mm, sizeof(a->mm), 0);
	if (ret)
		return failed(a, "prctl PR_SET_MM_MAP", ret, 0);
	for (i = 0; i < a->nr_close; i++)
		raw_syscall1(NR_close, a->close_fd[i]);
	if (restore_signals(a))
		return -1;
	return 0;
}

/* What each thread sets for itself: rseq, clear_child_tid, fs/gs bases. */
static int restore_thread_state(struct rst_args *a, struct rst_thread *t)
{
	long ret;

	if (t->rseq_addr) {
		ret = raw_syscall4(NR_rseq, t->rseq_addr, t->rseq_len, 0, t->rseq_sig);
		if (ret)
			return failed(a, "rseq register", ret, t->rseq_addr);
	}
	if (t->clear_tid)
		raw_syscall1(NR_set_tid_address, t->clear_tid);
	if (t->comm[0])
		raw_syscall2(NR_prctl, PR_SET_NAME, t->comm);
	ret = raw_syscall2(NR_arch_prctl, ARCH_SET_FS, t->fs_base);
	if (!ret && t->gs_base)
		ret = raw_syscall2(NR_arch_prctl, ARCH_SET_GS, t->gs_base);
	if (ret)
		return failed(a, "arch_prctl fs/gs", ret, t->fs_base);
	return 0;
}

/*
 * Stop on int3 so the tracer sees the verdict, then (if all is well)
 * rt_sigreturn into the thread's saved registers.
 */
__attribute__((noreturn))
static void finish_thread(struct rst_args *a, long idx)
{
	struct rst_thread *t = (struct rst_thread *)a->threads + idx;

	if (a->status == RST_FAILED || restore_thread_state(a, t)) {
		t->status = RST_FAILED;
		__asm__ volatile("int3" ::: "memory");
		for (;;)
			raw_syscall1(NR_exit_group, 1);
	}
	t->status = RST_READY;
	__asm__ volatile("int3\n\t"
			 "mov %0, %%rsp\n\t"
			 "mov %1, %%eax\n\t"
			 "syscall\n\t"
			 "ud2"
			 :: "r"(t->sigframe + 8), "i"(NR_rt_sigreturn) : "memory");
	__builtin_unreachable();
}

struct clone_args_k {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	uint64_t set_tid, set_tid_size, cgroup;
};

long rst_clone_thread(struct clone_args_k *ca, unsigned long size,
		      void (*fn)(struct rst_args *a, long idx), struct rst_args *a, long idx);

/* Every other thread, with its own TID, on its own blob stack. */
static int clone_threads(struct rst_args *a)
{
	struct rst_thread *t = (struct rst_thread *)a->threads;
	uint64_t i;

	for (i = 1; i < a->nr_threads; i++) {
		uint64_t tid = t[i].tid;
		struct clone_args_k ca = {
			.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
				 CLONE_SYSVSEM,
			.stack = t[i].stack,
			.stack_size = t[i].stack_size,
			.set_tid = (uint64_t)&tid,
			.set_tid_size = 1,
		};
		long ret = rst_clone_thread(&ca, sizeof(ca), finish_thread, a, i);

		if (ret < 0)
			return failed(a, "clone thread", ret, tid);
	}
	return 0;
}

static int restore_memory(struct rst_args *a)
{
	long ret;

	if (a->own_rseq_addr) {
		/* The kernel would write to it after it is gone (SIGSEGV). */
		ret = raw_syscall4(NR_rseq, a->own_rseq_addr, a->own_rseq_len,
				   RSEQ_FLAG_UNREGISTER, a->own_rseq_sig);
		if (ret)
			return failed(a, "rseq unregister", ret, a->own_rseq_addr);
	}
	if (unmap_all_but_self(a))
		return -1;
	if (a->vdso_addr) {
		ret = raw_syscall2(NR_arch_prctl, ARCH_MAP_VDSO_64, a->vdso_addr);
		if (ret < 0)
			return failed(a, "map vdso", ret, a->vdso_addr);
	}
	if (map_vmas(a) || fill_memory(a) || protect_vmas(a))
		return -1;
	return 0;
}

__attribute__((noreturn, used, section(".text.restorer_main")))
void restorer_main(struct rst_args *a)
{
	/* On failure the tracer reads the reason from *a at the int3, then kills us. */
	if (!restore_memory(a) && !restore_task_state(a) && !clone_threads(a))
		a->status = RST_READY;
	finish_thread(a, 0);
}
