// SPDX-License-Identifier: MIT
/*
 * Regular files and directories. ferry does not copy file systems: mapped
 * and open files must be at the same paths with the same size and mtime.
 * A memfd the tree mapped is its shared memory object's (shm.c); an
 * unlinked file is made again from its data (ghost.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "dest-agent/restore.h"

static uint64_t mtime_ns(const struct stat *st)
{
	return st->st_mtim.tv_sec * 1000000000ULL + st->st_mtim.tv_nsec;
}

static int check_one(const char *what, const char *path, bool has_size, uint64_t size,
		     bool has_mtime, uint64_t mtime)
{
	struct stat st;

	if (stat(path, &st)) {
		pr_err("%s %s is missing here: %m", what, path);
		return -ENOENT;
	}
	if (has_size && (uint64_t)st.st_size != size) {
		pr_err("%s %s differs here (size %lld, expected %llu): refusing to restore", what,
		       path, (long long)st.st_size, (unsigned long long)size);
		return -ESTALE;
	}
	if (has_mtime && mtime_ns(&st) != mtime) {
		pr_err("%s %s was modified since the dump (mtime differs): refusing to restore",
		       what, path);
		return -ESTALE;
	}
	return 0;
}

/* A FIFO is opened again at its path: a FIFO must be there. */
static int check_fifo(const FdEntry *f)
{
	struct stat st;

	if (!f->path || !f->has_pipe_id || !f->pipe_id) {
		pr_err("fd %u: a FIFO without its path or number in the images", f->fd);
		return -EINVAL;
	}
	if (stat(f->path, &st)) {
		pr_err("FIFO (named pipe) %s is missing here: %m", f->path);
		return -ENOENT;
	}
	if (!S_ISFIFO(st.st_mode)) {
		pr_err("%s is not a FIFO (named pipe) here: refusing to restore", f->path);
		return -ESTALE;
	}
	return 0;
}

int rst_check_files(const MmEntry *mm, const FilesEntry *files)
{
	size_t i;
	int ret;

	for (i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *v = mm->vmas[i];

		if (v->kind != VMA_KIND__VMA_FILE || v->has_ghost_id)
			continue;	/* a deleted file travels (ghost.c) */
		ret = check_one("mapped file", v->path, v->has_file_size, v->file_size,
				v->has_file_mtime_ns, v->file_mtime_ns);
		if (ret)
			return ret;
	}
	for (i = 0; i < files->n_fds; i++) {
		const FdEntry *f = files->fds[i];

		if (f->type == FD_TYPE__FD_FIFO) {
			ret = check_fifo(f);
			if (ret)
				return ret;
			continue;
		}
		/* A file the process writes to may change size under it: size only if read-only. */
		if (f->type != FD_TYPE__FD_REG || f->ghost || f->has_shmid)
			continue;
		ret = check_one("open file", f->path, (f->flags & O_ACCMODE) == O_RDONLY, f->size,
				false, 0);
		if (ret)
			return ret;
	}
	return 0;
}

/* By path, at the saved offset; a memfd of the tree or a ghost file by their own way. */
static int reg_open(const struct fd_open *o, const FdEntry *f, uint64_t key)
{
	int fd;

	(void)key;
	if (f->has_shmid)
		return shm_open_fd(f, o->shm);
	if (f->ghost && f->has_ghost_id)	/* made before (ghost.c) */
		return shm_reopen(o->shm, SHM_GHOST_BASE + f->ghost_id, f);
	if (f->ghost)
		return open_ghost(f, o->round_dirfd);
	fd = open(f->path, fd_open_flags(f));
	if (fd < 0) {
		pr_perror("cannot reopen %s", f->path);
		return -errno;
	}
	/* a directory's offset too: the file system's cookie of the next entry */
	if (f->pos && lseek(fd, f->pos, SEEK_SET) < 0) {
		pr_perror("cannot seek %s to %llu", f->path, (unsigned long long)f->pos);
		close(fd);
		return -errno;
	}
	return fd;
}

const struct fd_restore_ops reg_restore_ops = {
	.type = FD_TYPE__FD_REG,
	.name = "regular file",
	.open = reg_open,
};

const struct fd_restore_ops dir_restore_ops = {
	.type = FD_TYPE__FD_DIR,
	.name = "directory",
	.open = reg_open,
};
