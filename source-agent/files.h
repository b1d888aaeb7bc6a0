/* SPDX-License-Identifier: MIT */
#ifndef FERRY_FILES_H
#define FERRY_FILES_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "images.pb-c.h"
#include "transport/sink.h"

/*
 * Open file descriptions seen in the tree so far: fds of any process that
 * share one (dup, fork, SCM_RIGHTS) get one id, so the restore makes one
 * description for them and its offset stays shared.
 */
struct file_ids {
	struct fid {
		pid_t pid;
		int fd;
		uint64_t dev, ino;
		uint32_t id;
	} *v;
	size_t nr, cap;
	uint32_t next;
	struct peer {		/* what the tree's connected unix (local TCP) sockets talk to */
		uint64_t ino;
		pid_t pid;	/* whose fd talks to it */
		int fd;
		const char *kind;	/* "unix socket"... for the refusal */
		bool reconnect;	/* --unix-reconnect: the peer must be outside the tree */
		bool named;	/* a unix socket with a name or a named peer: not inside it */
	} *peers;
	size_t nr_peers, cap_peers;
	struct held {		/* FIFOs, fd-only memfds the tree holds (their number: index + 1) */
		uint64_t dev, ino;
		pid_t pid;	/* the first fd of the tree holding it */
		int fd;
		char *path;
		const char *kind;	/* "FIFO (named pipe)", "memfd", "deleted file" */
		bool sent;	/* its data went (ghost.c) */
	} *held;
	size_t nr_held, cap_held;
	pid_t *pids;		/* the processes whose fds were looked at */
	size_t nr_pids, cap_pids;
	struct pidfd_ref {	/* pidfds: their process must be one of the tree */
		pid_t pid;
		int fd;
		pid_t target;
	} *pidfds;
	size_t nr_pidfds, cap_pidfds;
	struct tty_ref {	/* ptys the tree holds an end of (tty.c) */
		uint32_t index;	/* /dev/pts/INDEX */
		pid_t pid;	/* the first fd of the tree holding it */
		int fd;
		bool master, slave;	/* the tree holds that end */
		pid_t sid;	/* the session whose terminal it is (TIOCGSID), 0: none */
	} *ttys;
	size_t nr_ttys, cap_ttys;
};

void file_ids_free(struct file_ids *f);
/*
 * Every connected unix (local TCP) socket's peer is in the tree too, or outside it for
 * one reconnected (--unix-reconnect); every FIFO's and fd-only memfd's holders are all
 * in the tree (a process outside would lose, double or no longer share its data); every
 * pidfd's process is in the tree: else -EOPNOTSUPP.
 */
int file_ids_check_peers(const struct file_ids *f);
/*
 * A connected socket of the tree (@pid's @fd, a @kind: "unix socket", "local
 * TCP connection") talks to the one of inode @ino.
 */
int file_ids_add_peer(struct file_ids *f, uint64_t ino, pid_t pid, int fd, const char *kind,
		      bool reconnect, bool named);
/* @pid is one of the processes whose fds were looked at (the tree's). */
bool file_ids_has_pid(const struct file_ids *f, pid_t pid);
/* @pid's @fd is a pidfd of @target (a pid of this namespace). */
int file_ids_add_pidfd(struct file_ids *f, pid_t pid, int fd, pid_t target);
/*
 * The object @st (a FIFO, an fd-only memfd: @kind; @pid's @fd, at @path) is
 * one of the tree's, which no process outside may hold; its number in *@id
 * (may be NULL).
 */
int file_ids_add_held(struct file_ids *f, pid_t pid, int fd, const struct stat *st,
		      const char *path, const char *kind, uint32_t *id);

/*
 * socket.c: a socket made in @pid's network namespace (this thread goes
 * there and back). The fd or -errno.
 */
int netns_socket(pid_t pid, int domain, int type, int proto);
/*
 * socket.c, --unix-reconnect: unix sockets connected to a peer outside the
 * tree at @path ("@name": abstract; NULL: any path) are reconnected to the
 * same address at the destination instead of refused. 0 or -ENOMEM.
 */
int sock_unix_reconnect_add(const char *path);

struct shm_set;

/*
 * One fd being dumped. files.c fills what every kind has (fd, flags, offset,
 * file id) and the row whose ->match takes it fills the rest of @e.
 */
struct fd_dump {
	pid_t pid;
	int fd;
	struct stat st;			/* of the open file (stat of /proc/PID/fd/N) */
	char path[PATH_MAX];		/* its /proc/PID/fd/N link */
	size_t path_len;
	bool first;			/* its description is new in the tree */
	FdEntry e;
	struct file_ids *ids;
	const struct shm_set *shm;
	struct sink *sink;
	const struct fd_dump_ops *ops;	/* the row that took it */
	void *priv;			/* the row's own, alive until files-<pid>.img is sent */
	FileLock *locks;		/* what e.locks points to (locks.c) */
};

/*
 * A kind of fd (a row of the table in files.c, one per FdType). Rows match
 * disjoint fds; an fd no row matches is refused.
 */
struct fd_dump_ops {
	FdType type;
	const char *name;
	bool (*match)(const struct fd_dump *d);
	/*
	 * Optional: refuse (-EOPNOTSUPP and a message) whatever ->dump would
	 * refuse, sending nothing. Run on the running tree before anything is
	 * frozen (d->sink NULL), and again right before ->dump.
	 */
	int (*check)(struct fd_dump *d);
	/* Fill d->e (its type included); refuse with -EOPNOTSUPP and a message. */
	int (*dump)(struct fd_dump *d);
	/* Optional: images of its own, sent after files-<pid>.img. */
	int (*send)(struct fd_dump *d);
	/* Optional: free d->priv. */
	void (*free)(struct fd_dump *d);
};

extern const struct fd_dump_ops reg_dump_ops, dir_dump_ops;		/* regfile.c */
extern const struct fd_dump_ops chr_dump_ops;				/* chrdev.c */
extern const struct fd_dump_ops pipe_dump_ops, fifo_dump_ops;		/* pipe.c */
extern const struct fd_dump_ops sock_dump_ops;				/* socket.c */
extern const struct fd_dump_ops tcp_dump_ops;				/* tcp.c */
extern const struct fd_dump_ops epoll_dump_ops;				/* epoll.c */
extern const struct fd_dump_ops eventfd_dump_ops;			/* eventfd.c */
extern const struct fd_dump_ops signalfd_dump_ops;			/* signalfd.c */
extern const struct fd_dump_ops timerfd_dump_ops;			/* timerfd.c */
extern const struct fd_dump_ops memfd_dump_ops;				/* shm.c */
extern const struct fd_dump_ops inotify_dump_ops;			/* inotify.c */
extern const struct fd_dump_ops pidfd_dump_ops;				/* pidfd.c */
extern const struct fd_dump_ops tty_dump_ops;				/* tty.c */

/* /proc/PID/fdinfo/FD whole, in a buffer to free (a read that fills it: -EFBIG). */
int fdinfo_read_all(const struct fd_dump *d, char **info);
/* The number after @key in @info, in @base; no @key: -EINVAL. */
int fdinfo_u64(const char *info, const char *key, int base, uint64_t *v);

/*
 * socket.c: the options of socket @s (of @pid) that differ from a new
 * socket's, in se->opts, which point into *@mem (free() it).
 */
int sock_opts_read(pid_t pid, int s, SockEntry *se, void **mem);
/* socket.c: a BPF filter on socket @s (@pid's @fd) is refused: -EOPNOTSUPP. */
int sock_refuse_filter(int s, pid_t pid, int fd);
/* socket.c: a sock_diag netlink socket in @pid's network namespace. */
int sock_diag_open(pid_t pid);

/*
 * tcp.c: what becomes of TCP connections (migrate --tcp-close,
 * --tcp-refuse; carried by default).
 */
enum tcp_mode { TCP_MODE_CARRY, TCP_MODE_CLOSE, TCP_MODE_REFUSE };
/* @leave_running: the source runs on (a connection cannot be carried then). */
void tcp_set_mode(enum tcp_mode mode, bool leave_running);
/*
 * The end of a migration, for the connections the final dump put in repair
 * mode (and their network lock). TCP_END_ROLLBACK: they leave repair mode
 * and the lock goes, the source's connections work on; TCP_END_DONE: the
 * source is killed, the lock goes; TCP_END_CHECKPOINT: the source is
 * killed, the lock stays for `restore` to remove; TCP_END_IN_DOUBT: the
 * source's sockets stay in repair mode and the lock stays.
 */
enum tcp_end { TCP_END_ROLLBACK, TCP_END_DONE, TCP_END_CHECKPOINT, TCP_END_IN_DOUBT };
/*
 * A listening TCP socket (@local) in the final dump: from now on new
 * connections to it wait (their SYNs dropped with the connections' lock)
 * instead of landing in an accept queue that would not travel. Only when
 * connections are carried and nft is there (*@table: the nft table, else
 * NULL); 0 or -errno.
 */
int tcp_lock_listener(struct fd_dump *d, const struct sockaddr *local, const char **table);
/*
 * The final dump, frozen, before any fd is dumped: the locks of every
 * established connection and listener of tree @t made at once, one nft run
 * per network namespace (each costs tens of ms of downtime), so that
 * tcp_dump and tcp_lock_listener find theirs made. 0 or -errno.
 */
struct tree;
int tcp_lock_tree(const struct tree *t, struct sink *sink);
/*
 * Accept queues cannot travel (no socket can be put into a listener's
 * queue), so before the final freeze, the tree running: new connections to
 * the tree's listeners are locked (their SYNs dropped, as at the freeze),
 * then up to --accept-wait ms pass for the program to accept those already
 * queued or being set up (they become connections that travel). Only
 * when connections are carried and nft is there (tcp_drains_accept). 0 or
 * -errno (the lock could not be made).
 */
#define TCP_ACCEPT_WAIT_MS_DEFAULT 2000
void tcp_set_accept_wait(unsigned int ms);
bool tcp_drains_accept(void);
int tcp_drain_accept(const struct tree *t, struct sink *sink);
/*
 * A listening TCP socket: its accept queue (and, locked, its handshakes
 * under way) refused at the final dump if not empty; in preflight only
 * when nothing drains it first. 0 or -EOPNOTSUPP (with a message).
 */
int tcp_check_listener(struct fd_dump *d);
/*
 * The bytes in the send and receive queues of tree @t's TCP connections
 * that would travel (SIOCOUTQ + SIOCINQ, our copies), for the downtime
 * prediction; 0 when connections are not carried.
 */
uint64_t tcp_queued_bytes(const struct tree *t);
void tcp_migration_end(enum tcp_end how);

/* A terminal that is not a pty of /dev/pts (a tty, console, /dev/tty): refused (tty.c). */
int tty_fd_check(struct fd_dump *d);
/*
 * tty.c: every pty of the tree has both ends in it, no process outside
 * holds one or has it as controlling terminal, and every controlling
 * terminal of the tree is one the restore can give back: else -EOPNOTSUPP.
 */
int tty_check_tree(const struct file_ids *f);
struct winsize;
/* The window size of /dev/pts/@index, through an fd of it one of @pids holds. */
int tty_winsize(const pid_t *pids, size_t nr, uint32_t index, struct winsize *ws);
/* /dev/pts/N's N + 1 for a controlling terminal's device number @tty_nr, else 0. */
uint32_t tty_ctty_index(uint32_t tty_nr);
/*
 * locks.c: the file locks held through this fd, into d->e.locks at the dump
 * (d->sink set); a lease, or a lock of a kind of fd ferry reopens otherwise
 * than by path, is refused. locks_fd_free() frees what it took.
 */
int locks_fd_check(struct fd_dump *d);
void locks_fd_free(struct fd_dump *d);
/*
 * One "lock:" line of @d's fdinfo (after "lock:"), e.g. "\t1: POSIX  ADVISORY
 * WRITE 1234 fe:00:567 100 149" or "... 200 EOF", into @l; a lease, or
 * anything else: -EOPNOTSUPP and a message naming it.
 */
int locks_parse_line(const struct fd_dump *d, const char *line, FileLock *l);

/*
 * Every fd of @pid (running) as the final dump would take it: matched to
 * its row and checked, nothing sent. @shm: the shared memory objects the
 * tree maps; @ids collects descriptions and unix peers as the dump does.
 */
int files_check(pid_t pid, struct file_ids *ids, const struct shm_set *shm);

/* files-<pid>.img (the fd table) and what its rows send of their own. */
int dump_files(pid_t pid, struct file_ids *ids, const struct shm_set *shm, struct sink *sink);

#endif
