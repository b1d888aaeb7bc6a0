// SPDX-License-Identifier: MIT
/*
 * Files of a restored process. ferry does not copy file systems: mapped and
 * open files must be at the same paths with the same size and mtime.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "dest-agent/restore.h"
#include "proto/image.h"

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
	if ((has_size && (uint64_t)st.st_size != size) || (has_mtime && mtime_ns(&st) != mtime)) {
		pr_err("%s %s differs here (size %lld, expected %llu): refusing to restore", what,
		       path, (long long)st.st_size, (unsigned long long)size);
		return -ESTALE;
	}
	return 0;
}

int rst_check_files(const struct rst_proc *p)
{
	size_t i;
	int ret;

	for (i = 0; i < p->mm->n_vmas; i++) {
		const VmaEntry *v = p->mm->vmas[i];

		if (v->kind != VMA_KIND__VMA_FILE)
			continue;
		ret = check_one("mapped file", v->path, v->has_file_size, v->file_size,
				v->has_file_mtime_ns, v->file_mtime_ns);
		if (ret)
			return ret;
	}
	for (i = 0; i < p->files->n_fds; i++) {
		const FdEntry *f = p->files->fds[i];

		/* A file the process writes to may change size under it: size only if read-only. */
		if (f->type != FD_TYPE__FD_REG)
			continue;
		ret = check_one("open file", f->path, (f->flags & O_ACCMODE) == O_RDONLY, f->size,
				false, 0);
		if (ret)
			return ret;
	}
	return 0;
}

/* Move one of our fds out of the way of the process's own numbers. */
int rst_work_fd(struct rst_proc *p, int fd)
{
	int nfd;

	if (fd < 0)
		return -errno;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, p->work_fd_base);
	close(fd);
	if (nfd < 0)
		return -errno;
	if (p->nr_work_fds == RST_MAX_CLOSE) {
		pr_err("too many files to keep open for the restorer");
		close(nfd);
		return -EMFILE;
	}
	p->work_fds[p->nr_work_fds++] = nfd;
	return nfd;
}

static int place_fd(int fd, int want, bool cloexec)
{
	if (fd < 0)
		return -errno;
	if (fd != want) {
		if (dup2(fd, want) < 0)
			return -errno;
		close(fd);
	}
	if (fcntl(want, F_SETFD, cloexec ? FD_CLOEXEC : 0))
		return -errno;
	return 0;
}

static int open_reg(const FdEntry *f)
{
	int fd = open(f->path, f->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY));

	if (fd < 0) {
		pr_perror("cannot reopen %s", f->path);
		return -1;
	}
	if (f->type == FD_TYPE__FD_REG && lseek(fd, f->pos, SEEK_SET) < 0) {
		pr_perror("cannot seek %s to %llu", f->path, (unsigned long long)f->pos);
		close(fd);
		return -1;
	}
	return fd;
}

static int pipe_fill(int wfd, int round_dirfd, uint64_t id)
{
	PipeDataEntry *pd;
	char name[64];
	int ret;

	snprintf(name, sizeof(name), "pipe-%llu.img", (unsigned long long)id);
	if (faccessat(round_dirfd, name, F_OK, 0))
		return 0;
	ret = img_load_one(round_dirfd, name, &pipe_data_entry__descriptor, (void **)&pd);
	if (ret)
		return ret;
	ret = write_full(wfd, pd->data.data, pd->data.len);
	protobuf_c_message_free_unpacked(&pd->base, NULL);
	return ret;
}

static bool pipe_seen_before(const FilesEntry *fe, size_t i)
{
	size_t j;

	for (j = 0; j < i; j++)
		if (fe->fds[j]->type == FD_TYPE__FD_PIPE && fe->fds[j]->pipe_id == fe->fds[i]->pipe_id)
			return true;
	return false;
}

/*
 * One new pipe for every fd of the process that held this pipe (either
 * end, any number of dups). Its unread data goes in first. An end the
 * process did not hold stays closed (its holder is on the source host).
 */
static int restore_pipe(const FilesEntry *fe, size_t i, int round_dirfd, int high)
{
	uint64_t id = fe->fds[i]->pipe_id;
	int p[2], ret;
	size_t k;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	/* out of the way of the numbers we are about to place */
	for (k = 0; k < 2; k++) {
		int fd = fcntl(p[k], F_DUPFD_CLOEXEC, high);

		close(p[k]);
		p[k] = fd;
	}
	if (p[0] < 0 || p[1] < 0)
		return -EMFILE;
	ret = pipe_fill(p[1], round_dirfd, id);
	for (k = i; !ret && k < fe->n_fds; k++) {
		const FdEntry *f = fe->fds[k];

		if (f->type != FD_TYPE__FD_PIPE || f->pipe_id != id)
			continue;
		ret = place_fd(fcntl((f->flags & O_ACCMODE) == O_RDONLY ? p[0] : p[1],
				     F_DUPFD_CLOEXEC, 0), f->fd, f->cloexec);
	}
	close(p[0]);
	close(p[1]);
	return ret;
}

int rst_open_fds(struct rst_proc *p, int round_dirfd)
{
	const FilesEntry *fe = p->files;
	size_t i;

	for (i = 0; i < fe->n_fds; i++) {
		const FdEntry *f = fe->fds[i];
		int fd, ret;

		switch (f->type) {
		case FD_TYPE__FD_PIPE:
			ret = pipe_seen_before(fe, i) ? 0 : restore_pipe(fe, i, round_dirfd, p->work_fd_base + RST_MAX_CLOSE);
			if (ret) {
				pr_err("cannot restore pipe fd %u: %s", f->fd, strerror(-ret));
				return ret;
			}
			continue;
		case FD_TYPE__FD_CHR:
			fd = open(f->path, f->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY));
			if (fd < 0) {
				pr_warn("fd %u: %s cannot be opened here (%m): /dev/null instead",
					f->fd, f->path);
				fd = open("/dev/null", O_RDWR);
			}
			break;
		default:
			fd = open_reg(f);
			break;
		}
		ret = place_fd(fd, f->fd, f->cloexec);
		if (ret) {
			pr_err("cannot restore fd %u (%s): %s", f->fd, f->path ? f->path : "pipe",
			       strerror(-ret));
			return ret;
		}
	}
	return 0;
}
