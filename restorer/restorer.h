/* SPDX-License-Identifier: MIT */
/*
 * The restorer blob and `restore` (dest-agent/) talk through the blob's own
 * mapping, in trap mode: `restore` writes a command into struct rst_args
 * (and its payload area), lets the new process run, and the blob executes
 * the command and stops on int3. Commands:
 *
 *   PREPARE  drop everything of the `restore` program from the address
 *            space but the blob (and, in a forked child, the ranges of
 *            its parent's memory it keeps), map the vdso where the saved
 *            one was;
 *   MEMORY   run a list of memory operations (map, read from a pages
 *            file, zero, discard, protect, unmap): used once for a plain
 *            restore, and after every pre-copy round when memory is filled
 *            while the source still runs (restore --stream);
 *   FORK     make a child process with a given PID (a process tree is
 *            built by its own processes, so parents are right): the child
 *            takes a socket of its own from sock_fd first, then carries on
 *            in its copy of the blob and stops like its parent;
 *   FINAL    the rest of the process state (mm fields, session, signals,
 *            fds, seccomp filters, credentials, threads), then every
 *            thread returns into its saved registers through rt_sigreturn.
 *
 * Pointers are absolute addresses inside the blob's mapping.
 */
#ifndef FERRY_RESTORER_H
#define FERRY_RESTORER_H

#include <stdint.h>

enum rst_cmd {
	RST_CMD_PREPARE = 1,
	RST_CMD_MEMORY,
	RST_CMD_FINAL,
	RST_CMD_FORK,
};

enum rst_status {
	RST_RUNNING = 0,
	RST_READY = 1,		/* command done (FINAL: about to rt_sigreturn) */
	RST_FAILED = 2,
};

enum rst_op_type {
	RST_OP_MAP = 1,		/* mmap(addr, len, prot, flags | MAP_FIXED, path ? open(path) : -1, off) */
	RST_OP_READ,		/* pread len bytes of file path at off into addr */
	RST_OP_ZERO,		/* memset(addr, 0, len) */
	RST_OP_DISCARD,		/* madvise(MADV_DONTNEED): anonymous pages read as zero again */
	RST_OP_PROTECT,		/* mprotect(addr, len, prot) */
	RST_OP_UNMAP,		/* munmap(addr, len) */
	RST_OP_ADVISE,		/* madvise(addr, len, flags) */
	/*
	 * Like READ, over memory inherited from the parent: each page is
	 * written only where the file's differs from what is there (read
	 * through the scratch area), so an unchanged page stays shared
	 * copy-on-write with the parent.
	 */
	RST_OP_READ_CMP,
	RST_OP_MERGE_ANY,	/* prctl(PR_SET_MEMORY_MERGE, 1): KSM for the whole mm */
	RST_OP_LOCK,		/* mlock2(addr, len, flags) */
	RST_OP_MLOCKALL,	/* mlockall(flags): MCL_FUTURE [| MCL_ONFAULT] */
	/*
	 * The lazy fill (dest-agent/lazy.c): a userfaultfd of this process at
	 * fd open_flags (features: flags), MISSING ranges registered on it,
	 * then it is sent on sock_fd and closed here.
	 */
	RST_OP_UFFD_OPEN,	/* userfaultfd() + UFFDIO_API(flags) at fd open_flags; failing, no fd */
	RST_OP_UFFD_REGISTER,	/* UFFDIO_REGISTER(addr, len, MODE_MISSING) on fd open_flags */
	RST_OP_UFFD_SEND,	/* SCM_RIGHTS of fd open_flags on sock_fd, then close it */
	RST_OP_SHMAT,		/* shmat(off: a SysV shmid, addr, flags): a segment attached at addr */
};

struct rst_op {
	uint32_t type;
	uint32_t prot;
	uint32_t flags;
	uint32_t open_flags;
	uint64_t addr, len;
	uint64_t off;
	uint64_t path;		/* NUL-terminated absolute path, 0: none */
};

struct rst_range {
	uint64_t start, end;
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
	uint64_t sigs;			/* its queued signals: 128-byte siginfos */
	uint32_t nr_sigs;
	char comm[16];			/* PR_SET_NAME */
	uint64_t robust_list, robust_list_len;	/* set_robust_list(), 0: none */
	/* struct sched_attr (size 48): sched_setattr() before the credentials */
	struct {
		uint32_t size, policy;
		uint64_t flags;
		int32_t nice;
		uint32_t priority;
		uint64_t runtime, deadline, period;
	} sched;			/* size 0: leave */
	uint64_t cpu_mask[16];		/* sched_setaffinity(), cpu_mask_len bytes */
	uint32_t cpu_mask_len;		/* 0: leave */
	uint32_t ioprio;		/* ioprio_set(), 0: leave */
	uint64_t timer_slack;		/* PR_SET_TIMERSLACK, 0: leave */
	uint32_t tsc_mode;		/* PR_SET_TSC, 0: leave */
	uint32_t mce_kill;		/* PR_MCE_KILL_SET policy + 1, 0: leave */
	uint32_t pdeathsig;		/* PR_SET_PDEATHSIG, after the credentials */
	uint32_t no_new_privs;		/* PR_SET_NO_NEW_PRIVS, last */
	uint32_t has_caps;		/* the capability sets below, else left as they come */
	uint32_t securebits;
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	uint32_t seccomp_strict;	/* SECCOMP_MODE_STRICT, the last syscall before rt_sigreturn */
	uint32_t nr_seccomp;		/* filters of its own, after the shared ones */
	uint64_t seccomp;		/* struct rst_seccomp[], oldest first */
};

/*
 * A seccomp filter to install (SECCOMP_SET_MODE_FILTER). Installed while
 * the task is still privileged (no no_new_privs needed), under
 * PTRACE_O_SUSPEND_SECCOMP: the blob's later syscalls are not filtered.
 */
struct rst_seccomp {
	uint64_t prog;			/* struct sock_filter[] */
	uint32_t len;			/* instructions */
	uint32_t flags;			/* SECCOMP_FILTER_FLAG_LOG */
};

/* The fds arrive by SCM_RIGHTS on sock_fd, in this order. */
struct rst_fd {
	int32_t fd;
	uint32_t cloexec;
};

/*
 * A file lock the process takes once its fds are placed, without waiting:
 * POSIX locks are the process's own; FLOCK and OFD locks are its open file
 * description's, taken by the first process of the tree that holds it.
 */
enum rst_lock_kind {
	RST_LOCK_POSIX = 1,	/* fcntl(F_SETLK) */
	RST_LOCK_OFD,		/* fcntl(F_OFD_SETLK) */
	RST_LOCK_FLOCK,		/* flock(LOCK_NB) */
};

struct rst_lock {
	int32_t fd;
	uint16_t kind;		/* enum rst_lock_kind */
	uint16_t type;		/* F_RDLCK or F_WRLCK */
	int64_t start, len;	/* len 0: to the end of the file */
};

#define RST_MAX_GROUPS	64

struct rst_creds {
	uint32_t uid, euid, suid, fsuid;
	uint32_t gid, egid, sgid, fsgid;
	uint32_t nr_groups;
	uint32_t groups[RST_MAX_GROUPS];
};

/*
 * A POSIX timer, made again with its id (PR_TIMER_CREATE_RESTORE_IDS) once
 * the threads exist, then armed with the time it had left.
 */
struct rst_timer {
	int32_t id, clockid;
	int32_t notify, signo;		/* sigev_notify (| SIGEV_THREAD_ID), sigev_signo */
	uint64_t sival;
	uint32_t tid;			/* SIGEV_THREAD_ID */
	uint32_t pending;		/* its signal was queued at the freeze (see dest-agent/timers.c) */
	uint64_t value_ns, interval_ns;	/* left, 0: disarmed */
};

#define RST_NSIG	64
#define RST_MAX_AUXV	128	/* u64 words */
#define RST_NLIMITS	16
#define RST_MAX_WORK_FDS 8
#define RST_MAX_THREADS 1024
#define RST_FDS_PER_MSG	250	/* below the kernel's SCM_MAX_FD */

struct rst_args {
	/* --- command and verdict --- */
	uint32_t cmd;			/* enum rst_cmd */
	int32_t status;			/* enum rst_status, written by the blob */
	int32_t err;			/* -errno of the failed step */
	uint32_t nr_syscalls;		/* MEMORY: the system calls it made (a cost counter) */
	uint64_t err_addr;		/* what it failed on */
	char err_step[32];

	/* --- PREPARE --- */
	uint64_t self_start, self_len;	/* the blob's mapping: everything else goes */
	uint64_t vdso_addr;		/* ARCH_MAP_VDSO_64 address (start of vvar), 0: none */
	uint64_t own_rseq_addr;		/* rseq of the `restore` thread we were, unregistered */
	uint32_t own_rseq_len, own_rseq_sig;
	uint64_t nr_keep, keep;		/* struct rst_range[], sorted, disjoint: not unmapped */

	/* --- MEMORY --- */
	uint64_t nr_ops, ops;		/* struct rst_op[] */
	uint64_t scratch, scratch_len;	/* READ_CMP's buffer (whole pages) */

	/* --- FORK --- */
	uint64_t fork_pid;
	uint32_t fork_new_session;	/* the child leads a session of its own (before its children) */
	uint32_t fork_ctty;		/* a tty fd follows the socket: the new session's terminal */

	/* --- FINAL --- */
	struct rst_mm_map mm;
	uint64_t auxv[RST_MAX_AUXV];
	uint64_t exe_path;
	struct rst_sigaction sa[RST_NSIG];	/* index sig - 1 */
	int64_t itimers[3][4];		/* struct itimerval: interval, value */
	uint32_t umask, personality;
	int32_t pgid;			/* setpgid(0, pgid); 0: keep */
	uint32_t pad4;
	uint64_t cwd, root;		/* paths */
	uint32_t nr_rlimits;
	uint32_t pad2;
	uint64_t rlimits[RST_NLIMITS][2];
	struct rst_creds creds;
	int32_t sock_fd;		/* SCM_RIGHTS source of the fds */
	uint32_t nr_fds;
	uint64_t fds;			/* struct rst_fd[] */
	int32_t fd_park;		/* received fds wait at and above this number */
	uint32_t nr_work_fds;
	int32_t work_fds[RST_MAX_WORK_FDS];	/* ours, closed before the process's own are placed */
	uint64_t nr_threads, threads;	/* struct rst_thread[] */
	uint64_t nr_shared_sigs, shared_sigs;	/* the process's queued signals */
	uint64_t nr_timers, timers;	/* struct rst_timer[], made after the threads */
	int32_t thp_disable;		/* PR_GET_THP_DISABLE's answer (1 | flags, or 0); -1: leave */
	int32_t dumpable;		/* PR_SET_DUMPABLE after the credentials: 0 or 1 */
	int32_t child_subreaper;	/* PR_SET_CHILD_SUBREAPER; -1: leave */
	uint32_t set_loginuid;		/* write loginuid to /proc/self/loginuid */
	uint32_t loginuid;
	uint32_t membarrier;		/* REGISTER_* commands to issue (MEMBARRIER_CMD_GET_REGISTRATIONS) */
	uint32_t nr_locks;		/* after the fds are placed; a failure's err_addr: the index */
	uint64_t locks;			/* struct rst_lock[] */
	/* filters every thread has: the leader installs them before cloning, so they are shared */
	uint64_t nr_seccomp_shared, seccomp_shared;	/* struct rst_seccomp[], oldest first */
	int32_t tty_fg_fd;		/* after setpgid: TIOCSPGRP(tty_fg) on this fd of its own; -1: none */
	int32_t tty_fg;
};

#endif
