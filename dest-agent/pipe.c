// SPDX-License-Identifier: MIT
/*
 * Pipes: one new pipe per saved one (pipe_id), both its ends registered
 * for whoever of the tree holds them, its unread data (pipe-<pipe_id>.img)
 * written in first.
 *
 * FIFOs: opened again at their path, first by a keeper (O_RDWR: neither end
 * waits for the other) that puts the unread data (fifo-<id>.img) in and stays
 * open until the tree is restored, then once per saved description.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "dest-agent/restore.h"
#include "proto/image.h"

/* Whether the @n bytes in pipe @fd are @data (peeked with tee: they stay). */
static bool pipe_holds(int fd, size_t n, const ProtobufCBinaryData *data)
{
	uint8_t *buf;
	size_t len;
	bool same;

	if (n != data->len || pipe_peek_data(fd, n, &buf, &len))
		return false;
	same = len == n && !memcmp(buf, data->data, n);
	free(buf);
	return same;
}

/*
 * Its saved size (F_SETPIPE_SZ), then its data from @kind-<id>.img if any.
 * @there: bytes the pipe (a FIFO) holds already; only the very data saved
 * may be there (the source's FIFO itself, on this same host): then it is
 * left as it is.
 */
static int pipe_fill(int wfd, int round_dirfd, const char *kind, const FdEntry *f, int there)
{
	PipeDataEntry *pd = NULL;
	char name[64];
	int ret;

	if (f->has_pipe_size && fcntl(wfd, F_GETPIPE_SZ) != (int)f->pipe_size &&
	    fcntl(wfd, F_SETPIPE_SZ, f->pipe_size) != (int)f->pipe_size) {
		pr_err("cannot give %s %llu its size of %u bytes again: %m", kind,
		       (unsigned long long)f->pipe_id, f->pipe_size);
		return -EINVAL;
	}
	snprintf(name, sizeof(name), "%s-%llu.img", kind, (unsigned long long)f->pipe_id);
	if (faccessat(round_dirfd, name, F_OK, 0))
		goto check;
	ret = img_load_one(round_dirfd, name, &pipe_data_entry__descriptor, (void **)&pd);
	if (ret)
		return ret;
check:
	if (there) {
		ret = pd && pipe_holds(wfd, there, &pd->data) ? 0 : -EBUSY;
		if (ret)
			pr_err("the FIFO (named pipe) %s holds data of others here: refusing to mix "
			       "the tree's in", f->path);
		goto out;
	}
	if (!pd)
		return 0;
	if (!f->has_pipe_size && pd->data.len > 65536)
		fcntl(wfd, F_SETPIPE_SZ, pd->data.len);
	ret = write_full(wfd, pd->data.data, pd->data.len);
out:
	if (pd)
		protobuf_c_message_free_unpacked(&pd->base, NULL);
	return ret;
}

/*
 * A new pipe for a saved one: both ends are registered (a process of the
 * tree may hold either), its unread data goes in first. An end nobody in
 * the tree held is closed when the tree is restored: its holder stayed on
 * the source host.
 */
static int open_pipe(struct open_files *of, const FdEntry *f, int round_dirfd)
{
	uint64_t key = KEY_PIPE | f->pipe_id << 1;
	int p[2], ret;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	ret = pipe_fill(p[1], round_dirfd, "pipe", f, 0);
	if (!ret)
		ret = of_add(of, key, p[0]);
	if (!ret)
		return of_add(of, key | 1, p[1]);
	close(p[0]);
	close(p[1]);
	return ret;
}

/* One key per end: the pipe's, and whether it writes. */
static uint64_t pipe_key(const FdEntry *f)
{
	return KEY_PIPE | f->pipe_id << 1 | ((f->flags & O_ACCMODE) != O_RDONLY);
}

static int pipe_open(const struct fd_open *o, const FdEntry *f, uint64_t key)
{
	int ret = open_pipe(o->of, f, o->round_dirfd);

	return ret ? ret : of_find(o->of, key);
}

const struct fd_restore_ops pipe_restore_ops = {
	.type = FD_TYPE__FD_PIPE,
	.name = "pipe",
	.key = pipe_key,
	.open = pipe_open,
};

/*
 * The FIFO at @path, read-write without waiting. Its path is looked up
 * once (O_PATH, which opens nothing): what is there must be a FIFO, as
 * rst_check_files saw long before (a file or device put there since is
 * neither opened nor written).
 */
static int fifo_open_rdwr(const FdEntry *f)
{
	char self[64];
	struct stat st;
	int pfd, fd;

	pfd = open(f->path, O_PATH | O_CLOEXEC);
	if (pfd < 0) {
		pr_perror("cannot open the FIFO (named pipe) %s", f->path);
		return -errno;
	}
	if (fstat(pfd, &st) || !S_ISFIFO(st.st_mode)) {
		pr_err("%s is not a FIFO (named pipe) here any more: refusing to restore", f->path);
		close(pfd);
		return -ESTALE;
	}
	snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
	fd = open(self, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	close(pfd);
	return fd;
}

/*
 * The keeper of FIFO f->pipe_id: both ends open (no open of the FIFO waits),
 * the saved data in. A FIFO others here hold other data in is not the
 * tree's; one holding the saved data is the source's own (a migration on
 * one host), whose data stays while the keeper holds it. The keeper's fd
 * or -errno.
 */
static int fifo_keeper(const struct fd_open *o, const FdEntry *f)
{
	uint64_t key = KEY_FIFO | f->pipe_id;
	int fd, n = 0, ret;

	fd = of_find(o->of, key);
	if (fd >= 0)
		return fd;
	if (!f->path) {
		pr_err("fd %u: a FIFO without its path in the images", f->fd);
		return -EINVAL;
	}
	fd = fifo_open_rdwr(f);
	if (fd < 0)
		return fd;
	if (ioctl(fd, FIONREAD, &n)) {
		ret = -errno;
		goto fail;
	}
	ret = pipe_fill(fd, o->round_dirfd, "fifo", f, n);
	if (!ret)
		ret = of_add(o->of, key, fd);
	if (!ret)
		return fd;
fail:
	close(fd);
	return ret;
}

/*
 * A description of the FIFO, opened without waiting at its path (its saved
 * flags as they were: O_NOFOLLOW too), which must still lead to the
 * keeper's FIFO; fd_setup sets its saved status flags.
 */
static int fifo_open(const struct fd_open *o, const FdEntry *f, uint64_t key)
{
	struct stat k, st;
	int fd, keeper;

	(void)key;
	keeper = fifo_keeper(o, f);
	if (keeper < 0)
		return keeper;
	if (fstat(keeper, &k))
		return -errno;
	fd = open(f->path, fd_open_flags(f) | O_NONBLOCK);
	if (fd < 0) {
		pr_perror("cannot open the FIFO (named pipe) %s", f->path);
		return -errno;
	}
	if (fstat(fd, &st) || st.st_dev != k.st_dev || st.st_ino != k.st_ino) {
		pr_err("%s is not the FIFO (named pipe) it was a moment ago: refusing to restore",
		       f->path);
		close(fd);
		return -ESTALE;
	}
	return fd;
}

const struct fd_restore_ops fifo_restore_ops = {
	.type = FD_TYPE__FD_FIFO,
	.name = "FIFO",
	.open = fifo_open,
};
