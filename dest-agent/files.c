// SPDX-License-Identifier: MIT
/*
 * The fds of a restored process. They are opened here (with their offsets
 * and flags), once per open file description of the tree, by the row of
 * fd_kinds for their type, and handed to the new process by SCM_RIGHTS:
 * they share the descriptions we made.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "dest-agent/restore.h"

/* Every kind of fd ferry restores, one row each (in the file named after the object). */
static const struct fd_restore_ops *const fd_kinds[] = {
	[FD_TYPE__FD_REG] = &reg_restore_ops,
	[FD_TYPE__FD_PIPE] = &pipe_restore_ops,
	[FD_TYPE__FD_CHR] = &chr_restore_ops,
	[FD_TYPE__FD_DIR] = &dir_restore_ops,
	[FD_TYPE__FD_SOCK] = &sock_restore_ops,
	[FD_TYPE__FD_EPOLL] = &epoll_restore_ops,
	[FD_TYPE__FD_EVENTFD] = &eventfd_restore_ops,
	[FD_TYPE__FD_SIGNALFD] = &signalfd_restore_ops,
	[FD_TYPE__FD_TCP] = &tcp_restore_ops,
	[FD_TYPE__FD_TIMERFD] = &timerfd_restore_ops,
	[FD_TYPE__FD_FIFO] = &fifo_restore_ops,
	[FD_TYPE__FD_MEMFD] = &memfd_restore_ops,
	[FD_TYPE__FD_INOTIFY] = &inotify_restore_ops,
	[FD_TYPE__FD_PIDFD] = &pidfd_restore_ops,
	[FD_TYPE__FD_TTY] = &tty_restore_ops,
};

static const struct fd_restore_ops *fd_kind(const FdEntry *f)
{
	if ((unsigned int)f->type < ARRAY_SIZE(fd_kinds) && fd_kinds[f->type])
		return fd_kinds[f->type];
	return &reg_restore_ops;	/* any other type: opened by its path */
}

int fd_open_flags(const FdEntry *f)
{
	return (f->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY)) | O_CLOEXEC;
}

int fd_set_nonblock(int fd, const FdEntry *f)
{
	if (fcntl(fd, F_SETFL, f->flags & O_NONBLOCK)) {
		close(fd);
		return -errno;
	}
	return fd;
}

static uint64_t fd_key(struct open_files *of, const struct fd_restore_ops *ops, const FdEntry *f)
{
	uint64_t key = ops->key ? ops->key(f) : 0;

	if (key)
		return key;
	if (f->has_file_id)
		return f->file_id;
	return KEY_UNIQUE | of->next_unique++;
}

struct open_file *of_entry(const struct open_files *of, uint64_t key)
{
	size_t i;

	for (i = 0; i < of->nr; i++)
		if (of->v[i].key == key)
			return &of->v[i];
	return NULL;
}

int of_find(const struct open_files *of, uint64_t key)
{
	struct open_file *e = of_entry(of, key);

	return e ? e->fd : -1;
}

int of_add(struct open_files *of, uint64_t key, int fd)
{
	if (grow_array(&of->v, &of->cap, of->nr, sizeof(*of->v)))
		return -ENOMEM;
	of->v[of->nr++] = (struct open_file){ key, fd, false, NULL };
	return 0;
}

/* A new description for @key (not made yet), registered in o->of. */
static int open_one(const struct fd_open *o, const struct fd_restore_ops *ops, const FdEntry *f,
		    uint64_t key)
{
	int fd, ret;

	fd = ops->open(o, f, key);
	if (fd < 0 || of_find(o->of, key) >= 0)
		return fd;	/* the row registered what it made */
	ret = of_add(o->of, key, fd);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/* File status flags F_SETFL can change (the rest are fixed at open). */
#define SETFL_FLAGS	(O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME)

/*
 * Once per description, whichever row made it: the saved status flags
 * (O_ASYNC too) and signal (F_SETSIG). The owner waits for the tree to
 * exist whole (rst_fds_ready).
 */
static int fd_setup(struct open_files *of, uint64_t key, const FdEntry *f, int fd)
{
	struct open_file *e = of_entry(of, key);
	int fl;

	if (!e || e->f)
		return 0;
	e->f = f;
	if (f->flags & O_PATH)
		return 0;	/* nothing to set on a path */
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if ((fl & SETFL_FLAGS) != (int)(f->flags & SETFL_FLAGS) &&
	    fcntl(fd, F_SETFL, (fl & ~SETFL_FLAGS) | (f->flags & SETFL_FLAGS))) {
		pr_err("fd %u: cannot set its flags %#o again: %s", f->fd, f->flags & SETFL_FLAGS,
		       strerror(errno));
		return -errno;
	}
	if (f->has_sig && fcntl(fd, F_SETSIG, f->sig)) {
		pr_err("fd %u: cannot set its signal %u (F_SETSIG): %s", f->fd, f->sig,
		       strerror(errno));
		return -errno;
	}
	return 0;
}

static int fd_set_owner(int fd, const FdEntry *f, pid_t (*task)(void *, pid_t), void *arg)
{
	struct f_owner_ex own = { .type = f->owner_type };

	/* a group is named by its leader, a process of the tree too */
	own.pid = task(arg, f->owner_pid);
	if (own.pid > 0 && !fcntl(fd, F_SETOWN_EX, &own))
		return 0;
	pr_err("fd %u: cannot give it its owner %u (type %u) again: %s", f->fd, f->owner_pid,
	       f->owner_type, own.pid > 0 ? strerror(errno) : "not in the restored tree");
	return own.pid > 0 ? -errno : -ESRCH;
}

int rst_fds_ready(struct open_files *of, pid_t (*task)(void *arg, pid_t saved), void *arg)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < of->nr && !ret; i++) {
		const struct open_file *e = &of->v[i];
		const struct fd_restore_ops *ops;

		if (!e->f)
			continue;	/* an end nobody of the tree holds */
		if (e->f->has_owner_pid)
			ret = fd_set_owner(e->fd, e->f, task, arg);
		ops = fd_kind(e->f);
		if (!ret && ops->ready)
			ret = ops->ready(e->fd, e->f);
	}
	return ret;
}

void rst_fds_resume(struct open_files *of)
{
	size_t i;

	for (i = 0; i < of->nr; i++) {
		const struct fd_restore_ops *ops;

		if (!of->v[i].f)
			continue;
		ops = fd_kind(of->v[i].f);
		if (ops->resume)
			ops->resume(of->v[i].fd, of->v[i].f);
	}
}

/* Each row's last step for the process (e.g. an epoll's watches). */
static int all_open(const FilesEntry *fe, const int *out)
{
	size_t i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(fd_kinds); i++) {
		if (!fd_kinds[i] || !fd_kinds[i]->all_open)
			continue;
		ret = fd_kinds[i]->all_open(fe, out);
		if (ret)
			return ret;
	}
	return 0;
}

int rst_open_fds(struct open_files *of, const FilesEntry *fe, int round_dirfd,
		 const struct shm_table *shm, pid_t (*task)(void *arg, pid_t saved),
		 void *task_arg, int **outp)
{
	const struct fd_open o = { of, round_dirfd, shm, task, task_arg };
	int *out = calloc(fe->n_fds + 1, sizeof(int));
	size_t i;
	int fd = 0;

	if (!out)
		return -ENOMEM;
	for (i = 0; i < fe->n_fds && fd >= 0; i++) {
		const FdEntry *f = fe->fds[i];
		const struct fd_restore_ops *ops = fd_kind(f);
		uint64_t key = fd_key(of, ops, f);

		fd = of_find(of, key);
		if (fd < 0)
			fd = open_one(&o, ops, f, key);
		if (fd >= 0) {
			int ret = fd_setup(of, key, f, fd);

			fd = ret < 0 ? ret : fd;
		}
		if (fd >= 0 && ops->opened) {
			int ret = ops->opened(of, f);

			fd = ret < 0 ? ret : fd;
		}
		if (fd < 0)
			pr_err("cannot restore fd %u (%s): %s", f->fd, f->path ? f->path : "pipe",
			       strerror(-fd));
		out[i] = fd;
	}
	if (fd >= 0)
		fd = all_open(fe, out);
	if (fd < 0) {
		free(out);
		return fd;
	}
	*outp = out;
	return 0;
}

void open_files_close(struct open_files *of)
{
	size_t i;

	for (i = 0; i < of->nr; i++)
		close(of->v[i].fd);
	free(of->v);
	memset(of, 0, sizeof(*of));
}
