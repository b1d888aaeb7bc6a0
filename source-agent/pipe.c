// SPDX-License-Identifier: MIT
/*
 * Pipes: each end is an fd of its own kind, both named by the pipe's inode
 * (pipe_id) so the restore makes one pipe for them. Unread data goes along
 * (pipe-<pipe_id>.img), copied with tee(2) so the pipe keeps it.
 *
 * FIFOs (named pipes) are the same kernel object reached by a path: the
 * restore opens the FIFO at that path again, and its unread data goes along
 * the same way (fifo-<id>.img, id: the FIFO's number in the tree). Every
 * holder must be in the tree (file_ids_check_peers): data read or written
 * by one left behind would be lost or doubled.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/dump.h"
#include "source-agent/files.h"

/* Unread pipe contents, copied with tee(2) so the pipe keeps them; its size. */
static int pipe_peek(pid_t pid, int fd, PipeDataEntry *pd, FdEntry *e)
{
	char path[64];
	int pfd, tmp[2] = { -1, -1 }, ret = 0;
	size_t cap = 1 << 20, len = 0;
	ssize_t n;
	uint8_t *buf = NULL;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	pfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (pfd < 0)
		return -errno;
	n = fcntl(pfd, F_GETPIPE_SZ);
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	e->has_pipe_size = 1;
	e->pipe_size = n;
	if (pipe2(tmp, O_NONBLOCK | O_CLOEXEC) || fcntl(tmp[1], F_SETPIPE_SZ, cap) < 0) {
		ret = -errno;
		goto out;
	}
	n = tee(pfd, tmp[1], cap, SPLICE_F_NONBLOCK);
	if (n < 0 && errno != EAGAIN) {
		ret = -errno;
		goto out;
	}
	if (n > 0) {
		buf = malloc(n);
		if (!buf) {
			ret = -ENOMEM;
			goto out;
		}
		ret = read_full(tmp[0], buf, n);
		len = n;
	}
	pd->data.data = buf;
	pd->data.len = len;
	buf = NULL;
out:
	free(buf);
	close(pfd);
	if (tmp[0] >= 0) {
		close(tmp[0]);
		close(tmp[1]);
	}
	return ret;
}

static bool pipe_match(const struct fd_dump *d)
{
	return S_ISFIFO(d->st.st_mode) && !strncmp(d->path, "pipe:", 5);
}

/*
 * A packet-mode pipe (pipe2 O_DIRECT, the write end's flag): each write is
 * a packet a read does not cross. Its unread data goes back as one write,
 * so the boundaries would be lost: refused when it holds data (an empty
 * one is made again as it was, the flag with the fd's).
 */
static int pipe_check(struct fd_dump *d)
{
	char path[64], info[256], *p;
	int fd, n = 0, ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", d->pid, d->fd);
	if (read_small_file(path, info, sizeof(info)) < 0)
		return -errno;
	p = strstr(info, "flags:");
	if (!p || !(strtoul(p + 6, NULL, 8) & O_DIRECT))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", d->pid, d->fd);
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, FIONREAD, &n))
		ret = -errno;
	else if (n > 0) {
		pr_err("pid %d: fd %d is a packet-mode pipe (O_DIRECT) holding %d unread bytes: "
		       "ferry cannot keep its packets apart yet", d->pid, d->fd, n);
		ret = -EOPNOTSUPP;
	}
	close(fd);
	return ret;
}

static int pipe_dump(struct fd_dump *d)
{
	PipeDataEntry *pd = calloc(1, sizeof(*pd));

	if (!pd)
		return -ENOMEM;
	pipe_data_entry__init(pd);
	d->priv = pd;
	d->e.type = FD_TYPE__FD_PIPE;
	d->e.has_pipe_id = 1;
	d->e.pipe_id = d->st.st_ino;
	pd->pipe_id = d->st.st_ino;
	return pipe_peek(d->pid, d->fd, pd, &d->e);
}

/*
 * The fd that sends a pipe's data: the first of the tree (this round) that
 * holds either end. Others holding it, that process's other end included,
 * saw the same data and send nothing.
 */
static bool pipe_sender(const struct fd_dump *d)
{
	const struct file_ids *f = d->ids;
	size_t i;

	for (i = 0; i < f->nr; i++)
		if (f->v[i].dev == d->st.st_dev && f->v[i].ino == d->st.st_ino)
			return f->v[i].pid == d->pid && f->v[i].fd == d->fd;
	return false;
}

/* pipe-<pipe_id>.img (fifo-<id>.img): the unread data, if any, once per pipe. */
static int pipe_send(struct fd_dump *d)
{
	PipeDataEntry *pd = d->priv;
	char name[64];

	if (!pd->data.len || !pipe_sender(d))
		return 0;
	snprintf(name, sizeof(name), "%s-%llu.img", d->e.type == FD_TYPE__FD_FIFO ? "fifo" : "pipe",
		 (unsigned long long)pd->pipe_id);
	return sink_add_msg(d->sink, name, &pd->base);
}

static void pipe_free(struct fd_dump *d)
{
	PipeDataEntry *pd = d->priv;

	if (pd)
		free(pd->data.data);
	free(pd);
}

const struct fd_dump_ops pipe_dump_ops = {
	.type = FD_TYPE__FD_PIPE,
	.name = "pipe",
	.match = pipe_match,
	.check = pipe_check,
	.dump = pipe_dump,
	.send = pipe_send,
	.free = pipe_free,
};

#define FIFO_KIND "FIFO (named pipe)"

static bool fifo_match(const struct fd_dump *d)
{
	return S_ISFIFO(d->st.st_mode) && strncmp(d->path, "pipe:", 5);
}

/*
 * The restore opens it by path: that path must lead to this FIFO. Every
 * FIFO of the tree is noted, for its number and the check of its holders.
 */
static int fifo_check(struct fd_dump *d)
{
	struct stat st;

	if (d->path[0] != '/' || stat(d->path, &st) || st.st_dev != d->st.st_dev ||
	    st.st_ino != d->st.st_ino) {
		pr_err("pid %d: fd %d is a FIFO (named pipe) no longer at its path %s: ferry opens "
		       "FIFOs again by path and cannot move this one", d->pid, d->fd, d->path);
		return -EOPNOTSUPP;
	}
	return file_ids_add_held(d->ids, d->pid, d->fd, &d->st, d->path, FIFO_KIND, NULL);
}

static int fifo_dump(struct fd_dump *d)
{
	uint32_t id;
	int ret;

	ret = file_ids_add_held(d->ids, d->pid, d->fd, &d->st, d->path, FIFO_KIND, &id);
	if (ret)
		return ret;
	ret = pipe_dump(d);
	d->e.type = FD_TYPE__FD_FIFO;
	d->e.path = d->path;
	d->e.pipe_id = id;
	if (d->priv)
		((PipeDataEntry *)d->priv)->pipe_id = id;
	return ret;
}

const struct fd_dump_ops fifo_dump_ops = {
	.type = FD_TYPE__FD_FIFO,
	.name = "FIFO",
	.match = fifo_match,
	.check = fifo_check,
	.dump = fifo_dump,
	.send = pipe_send,
	.free = pipe_free,
};
