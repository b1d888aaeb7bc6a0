/* SPDX-License-Identifier: MIT */
#ifndef FERRY_RESTORE_H
#define FERRY_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/netaddr.h"
#include "images.pb-c.h"
#include "imgstack/view.h"
#include "restorer/restorer.h"

struct restore_opts {
	const char *images_dir;		/* restore: a final round's directory */
	const char *stack_dir;		/* restore --stream: DIR/<id>, rounds named on stdin */
	bool pidns;			/* into a fresh PID namespace */
	int status_fd;			/* --status-fd: status lines (proto/restore_ctl.h), or -1 */
	bool hold;			/* --hold: keep the tree stopped until "resume" (handover.md) */
	unsigned int hold_timeout_s;	/* --hold-timeout: then it is discarded */
	bool lazy;			/* --lazy-fill: a final behind the prefill does not wait (lazy.c) */
	int postcopy_fd;		/* --postcopy-fd: REMOTE pages come on it (lazy.c), or -1 */
};

int restore_run(const struct restore_opts *o);
int restore_stream(const struct restore_opts *o);

/* ---- dest-agent/cgroup.c ---- */

/* Put @pid (as seen here) into the saved cgroups of @pe, where it is not already. */
int cgroup_enter(pid_t pid, const PstreeEntry *pe);

/* ---- dest-agent/ipc.c: System V semaphore sets (ipc.img) ---- */

struct rst_process;

struct ipc_sets {
	SysvSemEntry **e;
	size_t nr, cap;
	SysvMsgEntry **q;		/* message queues (ipc-msg.img) */
	size_t nr_q, cap_q;
	int *made, *made_q;		/* ids made here: removed if the restore fails */
	size_t nr_made, nr_made_q;
};

/* Make every set and queue of ipc.img, ipc-msg.img (if any); @pids: the tree's. */
int ipc_restore(struct ipc_sets *is, int dirfd, const uint32_t *pids, size_t nr);
/* The values whose last user is @rp, set from inside it (it exists, stopped). */
int ipc_sem_values(const struct ipc_sets *is, struct rst_process *rp);
/* Every queue's messages, its last sender and receiver ones of @rps (all stopped). */
int ipc_msg_fill(const struct ipc_sets *is, struct rst_process *rps, size_t nr);
/* Free; @undo: remove the sets made (the restore failed). */
void ipc_sets_close(struct ipc_sets *is, bool undo);
/*
 * SysV segment @e (shmem.img with sysv) made with its key, id, owner, mode
 * and lock: an fd of its memory to fill (-errno), its id in *@id.
 */
int ipc_shm_make(const ShmemEntry *e, int *id);
/*
 * Every segment attached by the tree (stopped, after its layout): the last
 * attacher's attach and detach from inside it, then IPC_RMID where it was.
 */
struct shm_table;
int ipc_shm_finish(const struct shm_table *t, struct rst_process *rps, size_t nr);
/* The restore failed: remove the segments it made. */
void ipc_shm_undo(const struct shm_table *t);

/* ---- dest-agent/ops.c: memory operations for the blob, and address ranges ---- */

struct ops {
	struct rst_op *op;
	size_t nr, cap;
	char *str;			/* paths; op->path holds offset + 1 until placed */
	size_t str_len, str_cap;
};

int ops_add(struct ops *o, uint32_t type, uint64_t addr, uint64_t len);
/* The last op added reads from / maps @path. */
int ops_set_path(struct ops *o, const char *path);
/* Read pages from a file (@type: READ or READ_CMP); continues the previous read when it can. */
int ops_add_read(struct ops *o, uint32_t type, uint64_t addr, uint64_t len, const char *path,
		 uint64_t off);
/* The same, from the file an earlier op names (its ->path, @path_ref): no string again. */
int ops_add_read_ref(struct ops *o, uint32_t type, uint64_t addr, uint64_t len, uint64_t path_ref,
		     uint64_t off);
void ops_free(struct ops *o);
/* Bytes the ops and their strings take in a payload, and writing them there. */
size_t ops_payload_size(const struct ops *o);
void ops_to_payload(const struct ops *o, uint8_t *buf, uint64_t addr);

struct ranges {
	struct range { uint64_t start, end; } *r;	/* sorted, disjoint, not touching */
	size_t nr, cap;
};

int ranges_add(struct ranges *rs, uint64_t start, uint64_t end);
/* out = a - b */
int ranges_sub(const struct ranges *a, const struct ranges *b, struct ranges *out);
/* out = a & b */
int ranges_and(const struct ranges *a, const struct ranges *b, struct ranges *out);
void ranges_free(struct ranges *rs);

/* ---- dest-agent/memory.c: what to map and fill ---- */

/* Anonymous private memory that is filled while the source still runs. */
bool vma_prefilled(const VmaEntry *v);
int prefill_ranges(const MmEntry *mm, struct ranges *out);
/*
 * What a child forked at the destination keeps of its parent's memory:
 * each of its prefilled VMAs that lies within one of @parent's (same
 * flags), whole. A VMA can only shrink or split after a fork, so this
 * finds what the source's child still had from its parent, and never
 * joins a kept range to a fresh one in one VMA (a grown heap is mapped
 * fresh). READ_CMP makes the content exact either way.
 */
int inherit_ranges(const MmEntry *parent, const MmEntry *child, struct ranges *out);
/*
 * Ops for the pages of the view within @in: @top_only, only what its top
 * round changed (stack_view_advance: reads, zero runs discarded); else
 * every page, zero runs as @zero_op (RST_OP_DISCARD, RST_OP_ZERO, 0: none).
 * Costs the runs inside @in, not the whole index.
 */
int ops_view_fill(struct ops *o, const struct stack_view *sv, uint32_t pid,
		  const struct ranges *in, bool top_only, uint32_t zero_op);
/*
 * Ops for every page of the view within @in, over memory a forked child
 * inherited from its parent: pages read with READ_CMP (written only where
 * they differ, so the rest stays shared), zero runs and pages the view
 * does not have discarded.
 */
int ops_view_fill_inherited(struct ops *o, const struct stack_view *sv, uint32_t pid,
			    const struct ranges *in);

/* ---- dest-agent/lazy.c: pages served on first touch after the process runs ---- */

/* UFFD_FEATURE_EVENT_FORK | _REMAP | _REMOVE | _UNMAP */
#define LAZY_UFFD_FEATURES	(0x2 | 0x4 | 0x8 | 0x40)

struct lazy;
struct lazy_proc {
	int uffd;			/* rp_uffd's: owned by the lazy fill from lazy_start on */
	uint32_t pid;			/* saved pid: its pages in the view */
	pid_t host_pid;
	const struct ranges *left;	/* pages still to fill (registered, missing) */
	const struct ranges *remote;	/* post-copy: REMOTE pages to come from the source, or NULL */
	const struct ranges *nofork;	/* MADV_WIPEONFORK / DONTFORK: not in a child's list */
};

/*
 * Serve faults and fill what is left from @sv (which it reads until
 * lazy_end), in a thread; a guard process holds the uffds and kills the
 * tree if we die before the fill is complete. Post-copy: the REMOTE pages
 * come on @pc_fd (page frames), fetched through @status_fd (else -1, -1).
 */
int lazy_start(struct lazy **l, struct stack_view *sv, const struct lazy_proc *p, size_t nr,
	       int pc_fd, int status_fd);
/*
 * @wait: until everything is in (0), or the fill failed (-errno: the guard
 * kills the tree). Else stop now (the tree is being discarded).
 */
int lazy_end(struct lazy *l, bool wait);

/* ---- dest-agent/shm.c: shared memory objects (one memfd each) ---- */

struct shm_table {
	struct shm_slot {
		uint32_t id;
		int fd;
		int sysv;	/* a System V segment's shmid (made here), -1: none */
		uint32_t lpid;	/* its last attacher, a pid of the tree (0: any) */
		bool dest;	/* IPC_RMID once the tree attached it */
		uint64_t size;	/* a System V segment's size */
	} *v;
	size_t nr, cap;
};

/* Deleted files the tree maps (ghost.c) go in the table as these ids. */
#define SHM_GHOST_BASE	0x80000000u
/* @fd is object @id's (the table closes it). */
int shm_table_add(struct shm_table *t, uint32_t id, int fd);
bool shm_has(const struct shm_table *t, uint32_t id);
/*
 * ghost.c: every deleted file a process maps (@mm) or holds (@files), made
 * again from ghost-<id>.img (once for the tree) into @t as SHM_GHOST_BASE + id.
 */
int ghost_files_restore(struct shm_table *t, const MmEntry *mm, const FilesEntry *files,
			int round_dirfd);
/* Make and fill every object of shmem.img (none: an empty table). */
int shm_restore(struct shm_table *t, int dirfd, struct stack_view *sv);
/* The path the blob opens to map object @id. */
int shm_path(const struct shm_table *t, uint32_t id, char *buf, size_t len);
/* The SysV shmid object @id was made as (its size in *@size), -1: not a segment. */
int shm_sysv(const struct shm_table *t, uint32_t id, uint64_t *size);
/* Is object @id sealed against writing (no writable shared mapping of it)? */
bool shm_write_sealed(const struct shm_table *t, uint32_t id);
void shm_table_close(struct shm_table *t);
/* A new description of object f->shmid's memfd, with the saved flags and offset. */
int shm_open_fd(const FdEntry *f, const struct shm_table *shm);
/* The same of object @id of the table (a deleted file: SHM_GHOST_BASE + its id). */
int shm_reopen(const struct shm_table *shm, uint32_t id, const FdEntry *f);

/* The final layout: every other VMA mapped and filled, then all protections set. */
int ops_final_layout(struct ops *o, const struct stack_view *sv, uint32_t pid, const MmEntry *mm,
		     const struct shm_table *shm);
int vdso_address(const MmEntry *mm, uint64_t *addr);

/* ---- dest-agent/files.c: the fds, one row of fd_restore_ops per kind ---- */

/* Open file descriptions made for a tree: one per file id (or pipe end). */
struct open_files {
	struct open_file {
		uint64_t key;
		int fd;
		bool fed;	/* a socket's queued data is in again */
		const FdEntry *f;	/* the first fd of it: its flags, owner, signal set */
	} *v;
	size_t nr, cap;
	uint64_t next_unique;
};

/*
 * Keys of the descriptions: a file id; a row's own (a pipe's two ends, a
 * connected unix socket's inode); else one per fd.
 */
#define KEY_PIPE	(1ULL << 63)
#define KEY_UNIQUE	(1ULL << 62)
#define KEY_SOCK	(1ULL << 61)
#define KEY_FIFO	(1ULL << 60)	/* a FIFO's keeper (pipe.c) */
#define KEY_MEMFD	(1ULL << 59)	/* an fd-only memfd object (shm.c) */

struct open_file *of_entry(const struct open_files *of, uint64_t key);
/* The fd made for @key, or -1. */
int of_find(const struct open_files *of, uint64_t key);
int of_add(struct open_files *of, uint64_t key, int fd);

struct shm_table;
/* The fds of one process, in files->fds order (owned by @of: do not close). */
int rst_open_fds(struct open_files *of, const FilesEntry *files, int round_dirfd,
		 const struct shm_table *shm, pid_t (*task)(void *arg, pid_t saved),
		 void *task_arg, int **out);
void open_files_close(struct open_files *of);
/*
 * Every process of the tree has its fds and stands before its last step:
 * each description's O_ASYNC owner (the saved pid/tid, which @task gives as
 * seen from here) and its row's ->ready.
 */
int rst_fds_ready(struct open_files *of, pid_t (*task)(void *arg, pid_t saved), void *arg);
/* The tree is let go now: each description's row's ->resume. */
void rst_fds_resume(struct open_files *of);

/*
 * locks.c: the file locks process @fe takes in its blob (FINAL), at most
 * rst_locks_max() of them, into @out (*@nr); -EINVAL for a bad image.
 */
struct rst_lock;
size_t rst_locks_max(const FilesEntry *fe);
int rst_locks_layout(const struct open_files *of, const FilesEntry *fe, struct rst_lock *out,
		     size_t *nr);
/* The @k-th of them could not be taken (-errno @err): say which, for pid @pid. */
void rst_locks_explain(const struct open_files *of, const FilesEntry *fe, pid_t pid, uint64_t k,
		       int err);

/* What opening an fd may need. */
struct fd_open {
	struct open_files *of;
	int round_dirfd;		/* its round's images (pipe data, ghost files) */
	const struct shm_table *shm;
	pid_t (*task)(void *arg, pid_t saved);	/* a saved pid's process here, or -1 */
	void *task_arg;
};

/* A kind of fd: a row of the table in files.c, indexed by FdType. */
struct fd_restore_ops {
	FdType type;
	const char *name;
	/* Optional: the description's own key (0: its file id). */
	uint64_t (*key)(const FdEntry *f);
	/*
	 * A new description for @f, returned as an fd that files.c registers
	 * under @key; a row that makes several at once (a pipe's two ends)
	 * registers them itself and returns @key's.
	 */
	int (*open)(const struct fd_open *o, const FdEntry *f, uint64_t key);
	/* Optional: after each fd of the kind is there (new or shared). */
	int (*opened)(struct open_files *of, const FdEntry *f);
	/* Optional: once per process, every fd open (@fds in files->fds order). */
	int (*all_open)(const FilesEntry *files, const int *fds);
	/*
	 * Optional: once per description, every fd of the tree open and
	 * handed over, before the tree runs (a socket's shutdown).
	 */
	int (*ready)(int fd, const FdEntry *f);
	/*
	 * Optional: once per description, as the tree is let go (after the
	 * hold): cannot fail any more (a TCP connection leaves repair mode).
	 */
	void (*resume)(int fd, const FdEntry *f);
};

extern const struct fd_restore_ops reg_restore_ops, dir_restore_ops;	/* regfile.c */
extern const struct fd_restore_ops chr_restore_ops;			/* chrdev.c */
extern const struct fd_restore_ops pipe_restore_ops, fifo_restore_ops;	/* pipe.c */
extern const struct fd_restore_ops sock_restore_ops;			/* socket.c */
extern const struct fd_restore_ops tcp_restore_ops;			/* tcp.c */

/* socket.c: the saved options of socket @f (f->sock->opts) set on @s. */
int sock_set_opts(int s, const FdEntry *f);
/*
 * tcp.c: the network lock here (docs/tcp.md), in the nft tables named by
 * the images (removed at exit unless tcp_unlock_all did it at the release):
 * tcp_lock_prepare gathers the locks of @fe's carried connections and
 * held-back listeners, tcp_lock_commit makes all gathered in one nft run;
 * tcp_lock makes @f's (a connection or a listener), nothing to run if it
 * was committed so. 0 or -errno.
 */
int tcp_lock_prepare(const FilesEntry *fe);
int tcp_lock_commit(void);
int tcp_lock(const FdEntry *f);
void tcp_unlock_all(void);
/* socket.c: bound to se->addr, an IP address this host may not have yet. */
int sock_bind_freebind(int s, const SockEntry *se);
extern const struct fd_restore_ops epoll_restore_ops;			/* epoll.c */
extern const struct fd_restore_ops eventfd_restore_ops;			/* eventfd.c */
extern const struct fd_restore_ops signalfd_restore_ops;		/* signalfd.c */
extern const struct fd_restore_ops timerfd_restore_ops;			/* timerfd.c */
extern const struct fd_restore_ops memfd_restore_ops;			/* shm.c */
extern const struct fd_restore_ops inotify_restore_ops;			/* inotify.c */
extern const struct fd_restore_ops pidfd_restore_ops;			/* pidfd.c */
extern const struct fd_restore_ops tty_restore_ops;			/* tty.c */

/*
 * tty.c: a slave fd of the pty /dev/pts/@index (made now, with window size
 * @winsize, @len bytes, if not NULL), for the session leader forked now to
 * make it its controlling terminal; -errno.
 */
int tty_ctty_fd(uint32_t index, const void *winsize, size_t len);
/* tty.c: the ptys made for this restore let go (the tree holds its own fds). */
void tty_restore_end(void);

/* The saved O_NONBLOCK on new @fd: @fd, or -errno (@fd closed). */
int fd_set_nonblock(int fd, const FdEntry *f);
/* The saved open flags for a new description opened by path. */
int fd_open_flags(const FdEntry *f);

/* dest-agent/regfile.c: mapped and open files are the same here, by size and mtime. */
int rst_check_files(const MmEntry *mm, const FilesEntry *files);
/* dest-agent/ghost.c: an unlinked file made again from ghost-<file_id>.img. */
int open_ghost(const FdEntry *f, int round_dirfd);
/* Fill @fd from image @name (a ghost_file_entry: data, size, mode). */
int file_data_fill(int fd, int round_dirfd, const char *name);

/* ---- dest-agent/timers.c: POSIX timers ---- */

/*
 * The queued siginfos that are a timer's own signal, queued at the freeze:
 * the blob has the kernel queue them again (timers_own_has: is @si one).
 */
struct timers_own {
	const SiginfoEntry **si;	/* sorted by address */
	size_t n;
};
int timers_own_init(const ProcCore *core, struct timers_own *own);
bool timers_own_has(const struct timers_own *own, const SiginfoEntry *si);
void timers_own_free(struct timers_own *own);
/* One @si (the three above): for tests. */
bool timers_own_siginfo(const ProcCore *core, const SiginfoEntry *si);
size_t timers_payload_size(const ProcCore *core);
/* core->posix_timers checked and laid out for the blob in @out. 0 or -errno. */
int timers_layout(const ProcCore *core, struct rst_timer *out);

/* ---- dest-agent/netaddr.c: the service address of migrate --move-address ---- */

struct rst_addr {
	bool on;			/* the final round has netaddr.img */
	struct net_addr a;
	int nl, ann, ifindex;
	char ifname[IF_NAMESIZE];
	bool added;
};

/*
 * Once the tree is restored, before it runs (or is held): the address of
 * netaddr.img, if the round has one, added here and announced. 0 or -errno.
 */
int rst_addr_arrive(struct rst_addr *ra, int round_dirfd);
/* The tree is discarded: the address goes again (the source takes it back). */
void rst_addr_leave(struct rst_addr *ra);
/* The tree runs: announce once more, close. */
void rst_addr_done(struct rst_addr *ra);

/* ---- dest-agent/seccomp.c: seccomp modes and filter chains ---- */

/* Does any thread run under seccomp (strict or filters)? */
bool seccomp_in_use(const ProcCore *core);
/* Bytes seccomp_layout may take in the payload (8-aligned). */
size_t seccomp_payload_size(const ProcCore *core);
/*
 * Validate the chains and lay them out at @buf (the payload's @addr): the
 * filters every thread shares into @a, each thread's own and strict mode
 * into @t[]. -EINVAL for a bad image.
 */
int seccomp_layout(const ProcCore *core, struct rst_args *a, struct rst_thread *t,
		   uint8_t *buf, uint64_t addr);

/* ---- dest-agent/sigframe.c ---- */

int rst_probe_xstate(void);
size_t rst_sigframe_size(void);
size_t rst_xsave_size(void);
int rst_build_sigframe(const ThreadCore *tc, struct rst_thread *t, uint8_t *frame_local,
		       uint64_t xsave_addr, uint8_t *xsave_local);

/* ---- dest-agent/process.c: one new process driven through the blob ---- */

struct rst_process {
	pid_t pid;			/* as seen from here (outer namespace) */
	pid_t want_pid;			/* the saved PID */
	uint64_t region_addr;
	size_t region_len;
	uint64_t args_addr, payload_addr;
	size_t payload_cap;
	struct rst_args args;		/* local copy, written before each command */
	int sock;			/* our end of the fd channel */
	int init_sync;			/* PID namespace init: closed when we exit */
	pid_t init_pid;
	pid_t *tids;			/* threads after FINAL */
	size_t nr_tids;
	struct ranges prefilled;	/* anonymous memory mapped and filled so far */
	bool inherited;			/* prefilled holds its parent's pages: not filled yet */
	bool cow_shared;		/* its memory may be shared with a parent or child: a whole refill compares (READ_CMP) */
	uint32_t applied_round;		/* last round whose pages are in */
	/*
	 * A round cut short by the final (--lazy-fill): its layout is in
	 * (prefilled), its pages only below these addresses, in the memory
	 * kept from before and in what it mapped fresh (partial_fresh).
	 */
	uint32_t partial_round;
	uint64_t partial_kept_upto, partial_fresh_upto;
	struct ranges partial_fresh;
	uint64_t blob_syscalls;		/* made by its MEMORY commands (a cost counter) */
	const struct rst_final *final;	/* during FINAL: what a failure names */
	uint32_t ctty;			/* the terminal its fork gave it: /dev/pts/N + 1, 0: none */
};

/* The root: a clone3 child of ours; @mms: every process's layout (the blob avoids them all). */
int rp_create(struct rst_process *rp, pid_t pid, const MmEntry *const *mms, size_t nr_mms,
	      bool pidns);
/* Syscall @nr run by @rp's leader where it is stopped, its registers kept: 0 and *ret, or -errno. */
int rp_syscall(struct rst_process *rp, long nr, long *ret, long a1, long a2, long a3, long a4,
	       long a5, long a6);
/*
 * A child of @parent with PID @pid (its layout @mm), made by the parent's
 * own blob; @new_session: it leads its own session (set before it has
 * children), with the terminal of @ctty_fd (-1: none) as its controlling
 * one, which the children it forks inherit. It keeps of its parent's
 * memory only @keep (anonymous private memory it has too: its ->prefilled,
 * to be filled with READ_CMP).
 */
int rp_fork(struct rst_process *parent, struct rst_process *child, pid_t pid, const MmEntry *mm,
	    bool new_session, int ctty_fd, const struct ranges *keep);
int rp_memory(struct rst_process *rp, const struct ops *o);
/*
 * The lazy fill: a userfaultfd made inside the process (@features), @reg
 * registered on it for MISSING faults, sent here: *@uffd (the process keeps
 * no fd of it). -EOPNOTSUPP: no userfaultfd could be made (nothing changed in
 * the process); any other error leaves the process unusable.
 */
int rp_uffd(struct rst_process *rp, const struct ranges *reg, uint32_t features, int *uffd);

/* What FINAL needs of one process. */
struct rst_final {
	const ProcCore *core;
	const MmEntry *mm;
	const FilesEntry *files;
	const int *fds;			/* opened here, in files->fds order */
	pid_t pgid;			/* 0: keep */
	int tty_fg_fd;			/* its fd of its terminal to set the foreground group with, or -1 */
	pid_t tty_fg;			/* that group */
	const struct open_files *of;	/* the tree's descriptions (which process takes their locks) */
};

/* Everything but memory, up to each thread's last stop: the process is ready to go. */
int rp_final_start(struct rst_process *rp, const struct rst_final *f);
/* The last fallible step: each thread through rt_sigreturn, the blob unmapped. */
int rp_final_prepare(struct rst_process *rp);
/* Let it go (stopped by @stop_sig if not 0): detached, no longer ours. */
void rp_release(struct rst_process *rp, int stop_sig);
void rp_kill(struct rst_process *rp);
/* Does the blob's mapping collide with any VMA of @mm? */
bool rp_region_collides(const struct rst_process *rp, const MmEntry *mm);

#endif
