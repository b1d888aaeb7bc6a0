// SPDX-License-Identifier: MIT
/*
 * Files of a restored process. ferry does not copy file systems: mapped and
 * open files must be at the same paths with the same size and mtime. The fds
 * are opened here (with their offsets and flags) and handed to the new
 * process by SCM_RIGHTS: they share the open file descriptions we made.
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

int rst_check_files(const MmEntry *mm, const FilesEntry *files)
{
	size_t i;
	int ret;

	for (i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *v = mm->vmas[i];

		if (v->kind != VMA_KIND__VMA_FILE)
			continue;
		ret = check_one("mapped file", v->path, v->has_file_size, v->file_size,
				v->has_file_mtime_ns, v->file_mtime_ns);
		if (ret)
			return ret;
	}
	for (i = 0; i < files->n_fds; i++) {
		const FdEntry *f = files->fds[i];

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

static int open_reg(const FdEntry *f)
{
	int fd = open(f->path, (f->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY)) | O_CLOEXEC);

	if (fd < 0) {
		pr_perror("cannot reopen %s", f->path);
		return -errno;
	}
	if (f->type == FD_TYPE__FD_REG && lseek(fd, f->pos, SEEK_SET) < 0) {
		pr_perror("cannot seek %s to %llu", f->path, (unsigned long long)f->pos);
		close(fd);
		return -errno;
	}
	return fd;
}

static int open_chr(const FdEntry *f)
{
	int fd = open(f->path, (f->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY)) | O_CLOEXEC);

	if (fd < 0) {
		pr_warn("fd %u: %s cannot be opened here (%m): /dev/null instead", f->fd, f->path);
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	}
	return fd < 0 ? -errno : fd;
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
	if (pd->data.len > 65536)
		fcntl(wfd, F_SETPIPE_SZ, pd->data.len);
	ret = write_full(wfd, pd->data.data, pd->data.len);
	protobuf_c_message_free_unpacked(&pd->base, NULL);
	return ret;
}

/*
 * One new pipe for every fd of the process that held this pipe (either
 * end, any number of dups), its unread data in first. An end the process
 * did not hold stays closed: its holder is on the source host.
 */
static int open_pipe(const FilesEntry *fe, size_t i, int round_dirfd, int *out)
{
	uint64_t id = fe->fds[i]->pipe_id;
	int p[2], ret;
	size_t k;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	ret = pipe_fill(p[1], round_dirfd, id);
	for (k = i; !ret && k < fe->n_fds; k++) {
		const FdEntry *f = fe->fds[k];

		if (f->type != FD_TYPE__FD_PIPE || f->pipe_id != id)
			continue;
		out[k] = fcntl((f->flags & O_ACCMODE) == O_RDONLY ? p[0] : p[1], F_DUPFD_CLOEXEC, 0);
		if (out[k] < 0)
			ret = -errno;
	}
	close(p[0]);
	close(p[1]);
	return ret;
}

int rst_open_fds(const FilesEntry *fe, int round_dirfd, int **outp)
{
	int *out = malloc((fe->n_fds + 1) * sizeof(int));
	size_t i;
	int ret = 0;

	if (!out)
		return -ENOMEM;
	for (i = 0; i < fe->n_fds; i++)
		out[i] = -1;
	for (i = 0; i < fe->n_fds && !ret; i++) {
		const FdEntry *f = fe->fds[i];

		if (out[i] >= 0)
			continue;	/* another end of a pipe opened before */
		switch (f->type) {
		case FD_TYPE__FD_PIPE:
			ret = open_pipe(fe, i, round_dirfd, out);
			break;
		case FD_TYPE__FD_CHR:
			ret = out[i] = open_chr(f);
			break;
		default:
			ret = out[i] = open_reg(f);
			break;
		}
		if (ret > 0)
			ret = 0;
		if (ret)
			pr_err("cannot restore fd %u (%s): %s", f->fd, f->path ? f->path : "pipe",
			       strerror(-ret));
	}
	if (ret) {
		for (i = 0; i < fe->n_fds; i++)
			if (out[i] >= 0)
				close(out[i]);
		free(out);
		return ret;
	}
	*outp = out;
	return 0;
}
