/* SPDX-License-Identifier: MIT */
/*
 * Refusals before anything is frozen: what ferry cannot carry yet is named
 * and refused while the tree still runs, before the destination is opened
 * or anything seized. The same checks run again in the final dump (frozen,
 * authoritative), so what appeared after the preflight is refused there.
 * Each check lives in its object's file; every one returns 0, or
 * -EOPNOTSUPP after a one-line message naming the pid and the object.
 */
#ifndef FERRY_PREFLIGHT_H
#define FERRY_PREFLIGHT_H

#include <sys/types.h>

/* Walk the running tree of @root (never stopped) and check every process. */
int preflight_tree(pid_t root);
/* The checks of one process that are not about its fds (those: files_check). */
int preflight_proc(pid_t pid);

int core_check(pid_t pid);		/* core.c: zombie, traced, deleted cwd or root */
/* core.c: processes of the tree sharing memory, fds, fs... (clone flags) */
int core_share_check(const pid_t *pids, size_t nr);
int seccomp_check(pid_t pid);		/* seccomp.c */
int creds_check(pid_t pid);		/* creds.c: per-thread ids, groups */
int timers_check(pid_t pid);		/* timers.c */
int ipc_check(pid_t pid);		/* ipc.c: SysV semaphores, message queues */
/* mm.c: mlock, mseal (smaps: preflight only); notes who has flags that travel */
int mm_vmflags_check(pid_t pid);
int cgroup_check(pid_t pid);		/* cgroup.c: threads in cgroups of their own */
struct file_ids;
/*
 * mm.c: the deleted files @pid maps, noted in @files (their holders are
 * checked with the FIFOs'); one with more data than travels is refused.
 */
int mm_ghost_check(pid_t pid, struct file_ids *files);

#endif
