// SPDX-License-Identifier: MIT
/*
 * The fd table of a process (files-<pid>.img): what every fd has (number,
 * flags, offset, the open file description it shares with others of the
 * tree), then its kind's own part, from the row of fd_kinds that takes it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <linux/kcmp.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/dump.h"
#include "source-agent/files.h"
#include "source-agent/proc.h"

/*
 * Every kind of fd ferry moves, one row each (in the file named after the
 * object). Tried in this order: the first row whose ->match takes the fd
 * dumps it.
 */
static const struct fd_dump_ops *const fd_kinds[] = {
	&pipe_dump_ops,
	&fifo_dump_ops,
	&tcp_dump_ops,		/* before sock_dump_ops: TCP connections */
	&sock_dump_ops,
	&tty_dump_ops,		/* before chr_dump_ops: ptys of /dev/pts */
	&chr_dump_ops,
	&memfd_dump_ops,	/* before reg_dump_ops: memfds the tree does not map */
	&reg_dump_ops,
	&dir_dump_ops,
	&epoll_dump_ops,
	&eventfd_dump_ops,
	&signalfd_dump_ops,
	&timerfd_dump_ops,
	&inotify_dump_ops,
	&pidfd_dump_ops,
};

#define FDINFO_MAX (1 << 20)

int fdinfo_read_all(const struct fd_dump *d, char **info)
{
	char path[64];
	ssize_t n;

	*info = malloc(FDINFO_MAX);
	if (!*info)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", d->pid, d->fd);
	n = read_small_file(path, *info, FDINFO_MAX);
	if (n < 0)
		return n;
	if ((size_t)n == FDINFO_MAX - 1)
		return -EFBIG;	/* an interest list this long is not read whole */
	return 0;
}

int fdinfo_u64(const char *info, const char *key, int base, uint64_t *v)
{
	const char *p = strstr(info, key);

	if (!p)
		return -EINVAL;
	*v = strtoull(p + strlen(key), NULL, base);
	return 0;
}

static int fdinfo_read(pid_t pid, int fd, uint64_t *pos, uint32_t *flags)
{
	char path[64], buf[1024], *p;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	if (read_small_file(path, buf, sizeof(buf)) < 0)
		return -errno;
	p = strstr(buf, "pos:");
	*pos = p ? strtoull(p + 4, NULL, 10) : 0;
	p = strstr(buf, "flags:");
	*flags = p ? strtoul(p + 6, NULL, 8) : 0;
	return 0;
}

static int kcmp_files(pid_t p1, int fd1, pid_t p2, int fd2)
{
	return syscall(SYS_kcmp, p1, p2, KCMP_FILE, fd1, fd2);
}

/* The id of the description behind @fd; *first: not seen before in the tree. */
static int file_id(struct file_ids *f, pid_t pid, int fd, const struct stat *st, uint32_t *id,
		   bool *first)
{
	size_t i;

	*first = false;
	for (i = 0; i < f->nr; i++) {
		const struct fid *c = &f->v[i];

		if (c->dev == st->st_dev && c->ino == st->st_ino &&
		    !kcmp_files(pid, fd, c->pid, c->fd)) {
			*id = c->id;
			return 0;
		}
	}
	*first = true;
	if (grow_array(&f->v, &f->cap, f->nr, sizeof(*f->v)))
		return -ENOMEM;
	*id = ++f->next;
	f->v[f->nr++] = (struct fid){ pid, fd, st->st_dev, st->st_ino, *id };
	return 0;
}

int file_ids_add_peer(struct file_ids *f, uint64_t ino, pid_t pid, int fd, const char *kind,
		      bool reconnect, bool named)
{
	if (grow_array(&f->peers, &f->cap_peers, f->nr_peers, sizeof(*f->peers)))
		return -ENOMEM;
	f->peers[f->nr_peers++] = (struct peer){ ino, pid, fd, kind, reconnect, named };
	return 0;
}

int file_ids_add_held(struct file_ids *f, pid_t pid, int fd, const struct stat *st,
		      const char *path, const char *kind, uint32_t *id)
{
	size_t i;

	for (i = 0; i < f->nr_held; i++)
		if (f->held[i].dev == st->st_dev && f->held[i].ino == st->st_ino)
			goto out;
	if (grow_array(&f->held, &f->cap_held, f->nr_held, sizeof(*f->held)))
		return -ENOMEM;
	f->held[i] = (struct held){ st->st_dev, st->st_ino, pid, fd, strdup(path), kind, false };
	if (!f->held[i].path)
		return -ENOMEM;
	f->nr_held++;
out:
	if (id)
		*id = i + 1;
	return 0;
}

int file_ids_add_pidfd(struct file_ids *f, pid_t pid, int fd, pid_t target)
{
	if (grow_array(&f->pidfds, &f->cap_pidfds, f->nr_pidfds, sizeof(*f->pidfds)))
		return -ENOMEM;
	f->pidfds[f->nr_pidfds++] = (struct pidfd_ref){ pid, fd, target };
	return 0;
}

static int file_ids_add_pid(struct file_ids *f, pid_t pid)
{
	size_t i;

	for (i = 0; i < f->nr_pids; i++)
		if (f->pids[i] == pid)
			return 0;
	if (grow_array(&f->pids, &f->cap_pids, f->nr_pids, sizeof(*f->pids)))
		return -ENOMEM;
	f->pids[f->nr_pids++] = pid;
	return 0;
}

bool file_ids_has_pid(const struct file_ids *f, pid_t pid)
{
	size_t i;

	for (i = 0; i < f->nr_pids; i++)
		if (f->pids[i] == pid)
			return true;
	return false;
}

/* Whether @pid holds the tree's object @o: an fd of it (in *@fd), or a mapping (*@fd -1). */
static bool held_by(const struct held *o, pid_t pid, int *fd)
{
	struct vma_list vl = { 0 };
	char path[64];
	struct stat st;
	size_t nr, i;
	int *fds;
	bool ret = false;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if (!proc_read_dir_numbers(path, (pid_t **)&fds, &nr)) {
		for (i = 0; i < nr && !ret; i++) {
			snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fds[i]);
			*fd = fds[i];
			ret = !stat(path, &st) && st.st_dev == o->dev && st.st_ino == o->ino;
		}
		free(fds);
	}
	/* a FIFO cannot be mapped; a memfd or a deleted file can */
	if (ret || !strncmp(o->kind, "FIFO", 4) || proc_read_vmas(pid, &vl))
		return ret;
	*fd = -1;
	for (i = 0; i < vl.nr && !ret; i++)
		ret = vl.v[i].dev == o->dev && vl.v[i].ino == o->ino;
	vma_list_free(&vl);
	return ret;
}

/*
 * No process outside the tree holds one of its FIFOs or fd-only memfds: its
 * reads and writes would go to the source's object, which the tree has left.
 */
static int held_check_holders(const struct file_ids *f)
{
	char how[32], whose[32];
	pid_t *pids;
	size_t nr, i, k;
	int fd, ret = 0;

	if (!f->nr_held)
		return 0;
	ret = proc_read_dir_numbers("/proc", &pids, &nr);
	if (ret)
		return ret;
	for (i = 0; i < nr && !ret; i++) {
		if (file_ids_has_pid(f, pids[i]) || pids[i] == getpid())
			continue;
		for (k = 0; k < f->nr_held && !ret; k++) {
			const struct held *o = &f->held[k];

			if (!held_by(o, pids[i], &fd))
				continue;
			if (fd >= 0)
				snprintf(how, sizeof(how), "fd %d", fd);
			else
				snprintf(how, sizeof(how), "mapped");
			if (o->fd >= 0)
				snprintf(whose, sizeof(whose), "fd %d is", o->fd);
			else
				snprintf(whose, sizeof(whose), "maps");
			pr_err("pid %d: %s the %s %s, which pid %d outside the tree holds too "
			       "(%s): ferry cannot move one holder of it away from another",
			       o->pid, whose, o->kind, o->path, pids[i], how);
			ret = -EOPNOTSUPP;
		}
	}
	free(pids);
	return ret;
}

int file_ids_check_peers(const struct file_ids *f)
{
	size_t i, j;
	int ret;

	for (i = 0; i < f->nr_peers; i++) {
		const struct peer *p = &f->peers[i];

		for (j = 0; j < f->nr && f->v[j].ino != p->ino; j++)
			;
		if (j == f->nr && !p->reconnect) {
			pr_err("pid %d: fd %d is a %s connected to one outside the tree "
			       "(inode %llu): not supported yet%s", p->pid, p->fd, p->kind,
			       (unsigned long long)p->ino, !strcmp(p->kind, "unix socket") ?
			       " (migrate --unix-reconnect connects it again to the same path at "
			       "the destination)" : "");
			return -EOPNOTSUPP;
		}
		if (j < f->nr && p->named) {
			/* made again as a socketpair: no names */
			pr_err("pid %d: fd %d is a unix socket connected inside the tree that has a "
			       "name or a named peer (accepted from a bound socket, or connected to "
			       "one): ferry cannot move that yet", p->pid, p->fd);
			return -EOPNOTSUPP;
		}
		if (j < f->nr && p->reconnect) {
			/* reconnecting would cut a connection the tree has with itself */
			pr_err("pid %d: fd %d is a unix socket connected to a peer in the tree, at "
			       "an address --unix-reconnect names: ferry would cut that connection; "
			       "name only the outside paths (--unix-reconnect=PATH)", p->pid, p->fd);
			return -EOPNOTSUPP;
		}
	}
	for (i = 0; i < f->nr_pidfds; i++) {
		const struct pidfd_ref *r = &f->pidfds[i];

		if (file_ids_has_pid(f, r->target))
			continue;
		pr_err("pid %d: fd %d is a pidfd of pid %d, outside the tree: ferry cannot move "
		       "that process with it", r->pid, r->fd, r->target);
		return -EOPNOTSUPP;
	}
	ret = tty_check_tree(f);
	return ret ? ret : held_check_holders(f);
}

void file_ids_free(struct file_ids *f)
{
	size_t i;

	for (i = 0; i < f->nr_held; i++)
		free(f->held[i].path);
	free(f->held);
	free(f->ttys);
	free(f->pidfds);
	free(f->pids);
	free(f->peers);
	free(f->v);
	memset(f, 0, sizeof(*f));
}

static const struct fd_dump_ops *fd_kind(const struct fd_dump *d)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(fd_kinds); i++)
		if (fd_kinds[i]->match(d))
			return fd_kinds[i];
	return NULL;
}

/*
 * Who gets the description's SIGIO/SIGURG (F_GETOWN_EX) and which signal
 * (F_GETSIG), read on our copy of the fd: they belong to the description.
 * An owner outside the tree could not be signalled after the restore.
 */
static int fd_owner(struct fd_dump *d)
{
	static const char *const kinds[] = { "thread", "process", "process group" };
	struct f_owner_ex own = { 0 };
	FdEntry *e = &d->e;
	int fd, sig;

	if (e->flags & O_PATH)
		return 0;	/* no owner, no signal: fcntl refuses them */
	fd = proc_take_fd(d->pid, d->fd);
	if (fd < 0)
		return fd;
	sig = fcntl(fd, F_GETSIG);
	if (sig < 0 || fcntl(fd, F_GETOWN_EX, &own)) {
		sig = -errno;
		close(fd);
		return sig;
	}
	close(fd);
	if (sig) {
		e->has_sig = 1;
		e->sig = sig;
	}
	/*
	 * Whether the owner is one of the tree is known once the tree is
	 * seized; the preflight (nothing seized yet) leaves it to the dump.
	 */
	if (own.pid <= 0 || !proc_traced_by_me(d->pid))
		goto keep;
	if (own.type > F_OWNER_PGRP || !(own.type == F_OWNER_PGRP ? proc_pgrp_traced_by_me(own.pid) :
					 proc_traced_by_me(own.pid))) {
		pr_err("pid %d: fd %d (%s) signals its O_ASYNC/SIGURG owner, %s %d, which is not "
		       "in the tree: ferry cannot move that owner", d->pid, d->fd, d->path,
		       own.type <= F_OWNER_PGRP ? kinds[own.type] : "owner", own.pid);
		return -EOPNOTSUPP;
	}
keep:
	if (own.pid <= 0)
		return 0;
	e->has_owner_type = e->has_owner_pid = 1;
	e->owner_type = own.type;
	e->owner_pid = own.pid;
	return 0;
}

/* Kinds of fd no row takes, named in their refusal. */
static const struct {
	const char *link, *what, *plural;
} unknown_kinds[] = {
	{ "anon_inode:[timerfd]", "a timerfd", "timerfds" },
	{ "anon_inode:[fanotify]", "a fanotify group", "fanotify groups" },
	{ "anon_inode:[userfaultfd]", "a userfaultfd", "userfaultfds" },
	{ "anon_inode:[io_uring]", "an io_uring instance", "io_uring instances" },
};

static int fd_refuse_unknown(const struct fd_dump *d)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(unknown_kinds); i++) {
		if (strcmp(d->path, unknown_kinds[i].link))
			continue;
		pr_err("pid %d: fd %d is %s: ferry cannot move %s yet", d->pid, d->fd,
		       unknown_kinds[i].what, unknown_kinds[i].plural);
		return -EOPNOTSUPP;
	}
	pr_err("pid %d: fd %d (%s) is of a kind ferry cannot move yet", d->pid, d->fd, d->path);
	return -EOPNOTSUPP;
}

/* What every fd has, and the row that takes it (none: d->ops NULL). */
static int fd_describe(struct fd_dump *d)
{
	FdEntry *e = &d->e;
	char link[64];
	uint32_t flags = 0;
	ssize_t n;
	int ret;

	snprintf(link, sizeof(link), "/proc/%d/fd/%d", d->pid, d->fd);
	n = readlink(link, d->path, PATH_MAX - 1);
	if (n < 0 || stat(link, &d->st))
		return -errno;
	d->path[n] = 0;
	d->path_len = n;
	ret = fdinfo_read(d->pid, d->fd, &e->pos, &flags);
	if (!ret)
		ret = file_id(d->ids, d->pid, d->fd, &d->st, &e->file_id, &d->first);
	if (ret)
		return ret;
	e->has_file_id = 1;
	e->fd = d->fd;
	e->flags = flags & ~O_CLOEXEC;
	e->cloexec = !!(flags & O_CLOEXEC);
	e->has_pos = 1;
	ret = fd_owner(d);
	if (ret)
		return ret;
	d->ops = fd_kind(d);
	return 0;
}

/* Whatever the dump of this fd would refuse (the same in preflight and dump). */
static int fd_check(struct fd_dump *d)
{
	int ret;

	if (!d->ops)
		return fd_refuse_unknown(d);
	ret = d->ops->check ? d->ops->check(d) : 0;
	if (!ret)
		ret = locks_fd_check(d);
	return ret;
}

/* What every fd has, then its row's part. */
static int fd_fill_entry(struct fd_dump *d)
{
	int ret;

	ret = fd_describe(d);
	if (!ret)
		ret = fd_check(d);
	return ret ? ret : d->ops->dump(d);
}

static int list_fds(pid_t pid, int **fds, size_t *nr)
{
	char path[64];
	pid_t *v;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	ret = proc_read_dir_numbers(path, &v, nr);
	*fds = (int *)v;
	return ret;
}

int files_check(pid_t pid, struct file_ids *ids, const struct shm_set *shm)
{
	struct fd_dump *d;
	size_t nr = 0, i;
	int *fds = NULL, ret;

	ret = file_ids_add_pid(ids, pid);
	if (!ret)
		ret = list_fds(pid, &fds, &nr);
	if (ret)
		return ret;
	d = malloc(sizeof(*d));
	if (!d)
		ret = -ENOMEM;
	for (i = 0; i < nr && !ret; i++) {
		memset(d, 0, sizeof(*d));
		fd_entry__init(&d->e);
		d->pid = pid;
		d->fd = fds[i];
		d->ids = ids;
		d->shm = shm;
		ret = fd_describe(d);
		if (ret == -ENOENT) {
			ret = 0;	/* closed meanwhile: it runs */
			continue;
		}
		if (!ret)
			ret = fd_check(d);
		if (ret && ret != -EOPNOTSUPP)
			pr_err("pid %d: cannot look at fd %d: %s", pid, fds[i], strerror(-ret));
	}
	free(d);
	free(fds);
	return ret;
}

int dump_files(pid_t pid, struct file_ids *ids, const struct shm_set *shm, struct sink *sink)
{
	FilesEntry fe = FILES_ENTRY__INIT;
	struct fd_dump *d = NULL;
	FdEntry **ptrs = NULL;
	char name[64];
	size_t nr = 0, i;
	int *fds = NULL, ret;

	ret = file_ids_add_pid(ids, pid);
	if (!ret)
		ret = list_fds(pid, &fds, &nr);
	if (ret)
		return ret;
	d = calloc(nr + 1, sizeof(*d));
	ptrs = calloc(nr + 1, sizeof(*ptrs));
	if (!d || !ptrs) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < nr; i++) {
		fd_entry__init(&d[i].e);
		d[i].pid = pid;
		d[i].fd = fds[i];
		d[i].ids = ids;
		d[i].shm = shm;
		d[i].sink = sink;
		ret = fd_fill_entry(&d[i]);
		if (ret) {
			if (ret != -EOPNOTSUPP)
				pr_err("pid %d: cannot dump fd %d: %s", pid, fds[i], strerror(-ret));
			goto out;
		}
		ptrs[i] = &d[i].e;
	}
	fe.fds = ptrs;
	fe.n_fds = nr;
	snprintf(name, sizeof(name), "files-%d.img", pid);
	ret = sink_add_msg(sink, name, &fe.base);
	for (i = 0; !ret && i < nr; i++)
		if (d[i].ops->send)
			ret = d[i].ops->send(&d[i]);
out:
	for (i = 0; d && i < nr; i++) {
		if (d[i].ops && d[i].ops->free)
			d[i].ops->free(&d[i]);
		locks_fd_free(&d[i]);
	}
	free(d);
	free(ptrs);
	free(fds);
	return ret;
}
