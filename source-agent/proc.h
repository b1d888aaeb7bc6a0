/* SPDX-License-Identifier: MIT */
/* What /proc tells about a target process: VMAs, mm fields, tree, creds. */
#ifndef FERRY_PROC_H
#define FERRY_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "images.pb-c.h"

struct vma {
	uint64_t start, end;
	uint32_t prot;
	bool shared;
	uint32_t kind;		/* VMA_KIND__* */
	uint64_t pgoff;
	uint64_t dev, ino;
	uint32_t shm_id;	/* shared memory object (source-agent/shm.c), 0: none */
	uint32_t vmflags;	/* VMF_*, only after proc_read_vmflags */
	char path[256];
};

/* VmFlags of /proc/PID/smaps that ferry carries or refuses */
#define VMF_DROPPABLE	(1u << 0)	/* dp: MAP_DROPPABLE */
#define VMF_LOCKED	(1u << 1)	/* lo: mlock, mlock2, mlockall(MCL_CURRENT) */
#define VMF_SEALED	(1u << 2)	/* sl: mseal */
#define VMF_DONTFORK	(1u << 3)	/* dc: MADV_DONTFORK */
#define VMF_WIPEONFORK	(1u << 4)	/* wf: MADV_WIPEONFORK (MAP_DROPPABLE sets it too) */
#define VMF_HUGEPAGE	(1u << 5)	/* hg: MADV_HUGEPAGE */
#define VMF_NOHUGEPAGE	(1u << 6)	/* nh: MADV_NOHUGEPAGE */
#define VMF_DONTDUMP	(1u << 7)	/* dd: MADV_DONTDUMP (special mappings and MAP_DROPPABLE too) */
#define VMF_MERGEABLE	(1u << 8)	/* mg: MADV_MERGEABLE, or PR_SET_MEMORY_MERGE (KSM) */
#define VMF_LOCKONFAULT	(1u << 9)	/* lf: locked with MLOCK_ONFAULT / MCL_ONFAULT (and lo) */
#define VMF_GROWSDOWN	(1u << 10)	/* gd: MAP_GROWSDOWN ([stack] by its kind) */
#define VMF_NORESERVE	(1u << 11)	/* nr: MAP_NORESERVE */
#define VMF_SEQ_READ	(1u << 12)	/* sr: MADV_SEQUENTIAL */
#define VMF_RAND_READ	(1u << 13)	/* rr: MADV_RANDOM */
/* the madvise flags that travel (VMA advice) */
#define VMF_ADVICE	(VMF_DONTFORK | VMF_WIPEONFORK | VMF_HUGEPAGE | VMF_NOHUGEPAGE | \
			 VMF_DONTDUMP | VMF_MERGEABLE | VMF_SEQ_READ | VMF_RAND_READ)

struct vma_list {
	struct vma *v;
	size_t nr, cap;
};

int proc_read_vmas(pid_t pid, struct vma_list *vl);
/*
 * The VMF_* flags of each VMA of @vl, from /proc/PID/smaps (which walks
 * every page table: tens of ms per GiB, so only where needed).
 */
int proc_read_vmflags(pid_t pid, struct vma_list *vl);
void vma_list_free(struct vma_list *vl);
/*
 * A private mapping of a file or a memfd: its pages not copied-on-write are
 * the file's, a hole there is not a zero page.
 */
bool vma_private_file(const struct vma *v);
/* Does this VMA hold pages ferry must copy (anon, or private file COW)? */
bool vma_has_dumpable_pages(const struct vma *v);

struct proc_stat {
	pid_t ppid, pgid, sid;
	uint32_t tty_nr;	/* the controlling terminal's device number, 0: none */
	pid_t tpgid;		/* its foreground process group, -1: none */
	uint64_t start_code, end_code, start_stack;
	uint64_t start_data, end_data, start_brk;
	uint64_t arg_start, arg_end, env_start, env_end;
	uint64_t start_ticks;	/* since boot, in clock ticks (field 22) */
	char comm[32];
	char state;		/* R, S, T (stopped by job control), Z... */
};

int proc_read_stat(pid_t pid, struct proc_stat *st);
/* When @pid started, in seconds since the epoch (rounded down), or -errno. */
int64_t proc_start_time(pid_t pid);
/* readlink /proc/PID/@what (exe, cwd, root, fd/N): its length, or -errno. */
int proc_readlink(pid_t pid, const char *what, char *buf, size_t len);
/* A duplicate of @pid's fd @tfd in this process (pidfd_getfd): the fd or -errno. */
/* pread of /proc/@pid/@what: bytes read or -errno. */
ssize_t proc_pread(pid_t pid, const char *what, void *buf, size_t len, off_t off);
int proc_take_fd(pid_t pid, int tfd);
/* Numeric entries of a /proc directory (tasks, fds); *out malloc'd. */
int proc_read_dir_numbers(const char *path, pid_t **out, size_t *nr);
/* Threads of @pid (from /proc/PID/task); *tids malloc'd. */
int proc_read_threads(pid_t pid, pid_t **tids, size_t *nr);
/* Is task @pid (a process or a thread) traced by this process, i.e. one of the seized tree? */
bool proc_traced_by_me(pid_t pid);
/* Has @pid exited (no such process, or a zombie)? */
bool proc_gone(pid_t pid);
/* Is every member of process group @pgid (at least one) traced by this process? */
bool proc_pgrp_traced_by_me(pid_t pgid);
/* Children of every thread of @pid. */
int proc_read_children(pid_t pid, pid_t **kids, size_t *nr);
int proc_read_creds(pid_t pid, CredsEntry *c, uint32_t *umask);

#endif
