// SPDX-License-Identifier: MIT
/*
 * Regular files and directories: the restore opens them again by path, so
 * their size and mtime go along to check it is the same file there. A memfd
 * the tree maps is the shared memory object instead (shm.c), one it holds
 * as an fd only a row of its own (shm.c); an unlinked file's data travels
 * (ghost.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/dump.h"
#include "source-agent/files.h"
#include "source-agent/ghost.h"
#include "source-agent/shm.h"

static bool reg_match(const struct fd_dump *d)
{
	return shm_lookup(d->shm, d->st.st_dev, d->st.st_ino) || S_ISREG(d->st.st_mode);
}

static bool dir_match(const struct fd_dump *d)
{
	return S_ISDIR(d->st.st_mode);
}

static void fill_size_mtime(struct fd_dump *d)
{
	FdEntry *e = &d->e;

	e->path = d->path;
	e->has_size = e->has_mtime_ns = 1;
	e->size = d->st.st_size;
	e->mtime_ns = stat_mtime_ns(&d->st);
}

static int reg_dump(struct fd_dump *d)
{
	FdEntry *e = &d->e;
	size_t n = d->path_len;

	e->type = FD_TYPE__FD_REG;
	e->path = d->path;
	e->shmid = shm_lookup(d->shm, d->st.st_dev, d->st.st_ino);
	if (e->shmid) {
		/* a memfd the tree maps: the same object at the destination */
		e->has_shmid = 1;
		return 0;
	}
	if (!d->st.st_nlink) {
		/* unlinked: its data travels (ghost-<id>.img), its path only names it */
		char link[64];

		e->has_ghost = e->ghost = e->has_ghost_id = 1;
		if (n >= 10 && !strcmp(d->path + n - 10, " (deleted)"))
			d->path[n - 10] = 0;
		snprintf(link, sizeof(link), "/proc/%d/fd/%d", d->pid, d->fd);
		return ghost_note(d->ids, d->pid, d->fd, link, &d->st, d->path, d->sink,
				  &e->ghost_id);
	}
	fill_size_mtime(d);
	return 0;
}

#define MQUEUE_MAGIC	0x19800202	/* not in the uapi headers */

/*
 * Files of file systems whose files are kernel objects, not data: a /proc
 * file names a process, a namespace file is no path, a message queue and
 * memfd_secret memory have a regular file's mode.
 */
static const struct {
	unsigned long magic;
	const char *what;
} special_fs[] = {
	{ PROC_SUPER_MAGIC, "an open /proc file" },
	{ NSFS_MAGIC, "a namespace file" },
	{ MQUEUE_MAGIC, "a POSIX message queue (mq_open)" },
	{ SECRETMEM_MAGIC, "a memfd_secret file" },
};

/* Files of those file systems are refused. */
static int reg_check(struct fd_dump *d)
{
	struct statfs sfs;
	char link[64];
	size_t i;

	snprintf(link, sizeof(link), "/proc/%d/fd/%d", d->pid, d->fd);
	if (statfs(link, &sfs))
		sfs.f_type = 0;
	for (i = 0; i < ARRAY_SIZE(special_fs); i++) {
		if ((unsigned long)sfs.f_type != special_fs[i].magic)
			continue;
		pr_err("pid %d: fd %d is %s (%s): ferry cannot move that yet", d->pid, d->fd,
		       special_fs[i].what, d->path);
		return -EOPNOTSUPP;
	}
	/* a deleted file: one of the tree's, whose holders outside are refused */
	if (!d->st.st_nlink && !shm_lookup(d->shm, d->st.st_dev, d->st.st_ino))
		return ghost_note(d->ids, d->pid, d->fd, link, &d->st, d->path, NULL, NULL);
	return 0;
}

/* A removed directory: no path leads to it at the destination. */
static int dir_check(struct fd_dump *d)
{
	if (d->st.st_nlink)
		return 0;
	pr_err("pid %d: fd %d is the removed directory %s: ferry cannot move that yet", d->pid,
	       d->fd, d->path);
	return -EOPNOTSUPP;
}

static int dir_dump(struct fd_dump *d)
{
	d->e.type = FD_TYPE__FD_DIR;
	fill_size_mtime(d);
	return 0;
}

const struct fd_dump_ops reg_dump_ops = {
	.type = FD_TYPE__FD_REG,
	.name = "regular file",
	.match = reg_match,
	.check = reg_check,
	.dump = reg_dump,
};

const struct fd_dump_ops dir_dump_ops = {
	.type = FD_TYPE__FD_DIR,
	.name = "directory",
	.match = dir_match,
	.check = dir_check,
	.dump = dir_dump,
};
