/* SPDX-License-Identifier: MIT */
/*
 * Arguments of the restorer blob, laid out by `restore` (dest-agent/) in the
 * blob's own mapping, read by the blob after everything else is unmapped.
 * Pointers are absolute addresses inside that mapping.
 */
#ifndef FERRY_RESTORER_H
#define FERRY_RESTORER_H

#include <stdint.h>

struct rst_vma {
	uint64_t start, end;
	uint32_t prot;		/* final protection */
	uint32_t flags;		/* mmap flags (MAP_FIXED is added) */
	int32_t fd;		/* -1: anonymous */
	uint32_t pad;
	uint64_t pgoff;		/* bytes */
};

/* Copy len bytes from fd at off to vaddr; fd -1: zero the range. */
struct rst_fill {
	uint64_t vaddr, len;
	int32_t fd;
	uint32_t pad;
	uint64_t off;
};

struct rst_sigaction {
	uint64_t handler, flags, restorer, mask;
};

/* struct prctl_mm_map (linux/prctl.h), fixed here so the blob needs no headers. */
struct rst_mm_map {
	uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
	uint64_t arg_start, arg_end, env_start, env_end;
	uint64_t auxv;		/* pointer */
	uint32_t auxv_size;	/* bytes */
	uint32_t exe_fd;
};

#define RST_NSIG	64
#define RST_MAX_AUXV	128	/* u64 words */
#define RST_MAX_CLOSE	512

/* One thread: the leader is threads[0] and runs on the blob's main stack. */
struct rst_thread {
	uint32_t tid;
	int32_t status;			/* enum rst_status, written by the blob */
	uint64_t rseq_addr;		/* 0: none */
	uint32_t rseq_len, rseq_sig;
	uint64_t fs_base, gs_base;
	uint64_t clear_tid;		/* set_tid_address(), 0: none */
	uint64_t sigframe;		/* its rt_sigframe: rsp = sigframe + 8 */
	uint64_t stack, stack_size;	/* blob stack of a non-leader thread */
	char comm[16];			/* PR_SET_NAME */
};

#define RST_MAX_THREADS 1024

enum rst_status {
	RST_RUNNING = 0,
	RST_READY = 1,		/* all done, about to rt_sigreturn */
	RST_FAILED = 2,
};

struct rst_args {
	/* the blob's own mapping: everything else is unmapped */
	uint64_t self_start, self_len;
	/* ARCH_MAP_VDSO_64 address (start of the vvar pages), 0: none */
	uint64_t vdso_addr;

	uint64_t nr_vmas, vmas;		/* struct rst_vma[] */
	uint64_t nr_fills, fills;	/* struct rst_fill[] */

	struct rst_mm_map mm;
	uint64_t auxv[RST_MAX_AUXV];

	struct rst_sigaction sa[RST_NSIG];	/* index sig - 1 */
	int64_t itimers[3][4];		/* struct itimerval: interval, value */

	/* this task's own rseq (inherited from `restore`), unregistered first */
	uint64_t own_rseq_addr;
	uint32_t own_rseq_len, own_rseq_sig;

	uint64_t nr_threads, threads;	/* struct rst_thread[] */

	/* fds of `restore` to close at the end (pages files, mapped files) */
	uint32_t nr_close;
	int32_t close_fd[RST_MAX_CLOSE];

	/* written by the blob (the first failure of any thread) */
	int32_t status;			/* enum rst_status */
	int32_t err;			/* -errno of the failed step */
	uint64_t err_addr;		/* what it failed on */
	char err_step[32];
};

#endif
