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
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/dump.h"
#include "source-agent/files.h"
#include "source-agent/proc.h"

/*
 * An fd of @pid's pipe end @fd to peek through (*@pfd, -1: no data waits),
 * and the pipe's size into @e. Its own description (pidfd_getfd), not a
 * new open of /proc/PID/fd/N: a reader opened (and closed) on a pipe
 * nobody reads is seen (writers waiting in open() for a reader of the FIFO
 * go on, O_ASYNC writers get SIGIO). A write-only end holding data is
 * peeked through such a reader only when another reader exists: then its
 * open and close change nothing.
 */
static int pipe_reader(pid_t pid, int fd, FdEntry *e, int *pfd)
{
	struct pollfd p = { .events = POLLOUT };
	char path[64];
	int dfd, fl, sz, n = 0, ret = 0;

	*pfd = -1;
	dfd = proc_take_fd(pid, fd);
	if (dfd < 0)
		return dfd;
	fl = fcntl(dfd, F_GETFL);
	sz = fcntl(dfd, F_GETPIPE_SZ);
	if (fl < 0 || sz < 0 || ioctl(dfd, FIONREAD, &n)) {
		ret = -errno;
		goto out;
	}
	e->has_pipe_size = 1;
	e->pipe_size = sz;
	if ((fl & O_ACCMODE) != O_WRONLY) {
		*pfd = dfd;
		return 0;
	}
	if (!n)
		goto out;	/* nothing to peek */
	p.fd = dfd;
	if (poll(&p, 1, 0) < 0) {
		ret = -errno;
		goto out;
	}
	if (p.revents & POLLERR) {	/* a write end's POLLERR: no reader */
		pr_err("pid %d: fd %d writes to a pipe or FIFO that nobody reads, with %d bytes "
		       "unread in it: ferry cannot read them without opening a reader, which "
		       "the process would see", pid, fd, n);
		ret = -EOPNOTSUPP;
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	*pfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (*pfd < 0)
		ret = -errno;
out:
	close(dfd);
	return ret;
}

/*
 * Unread pipe contents, copied with tee(2) so the pipe keeps them, all of
 * them (a pipe root made larger than 1 MiB too); its size.
 */
static int pipe_peek(pid_t pid, int fd, PipeDataEntry *pd, FdEntry *e)
{
	int pfd, ret, avail = 0;
	uint8_t *buf = NULL;
	size_t len = 0;

	ret = pipe_reader(pid, fd, e, &pfd);
	if (ret || pfd < 0)
		return ret;
	if (ioctl(pfd, FIONREAD, &avail))
		ret = -errno;
	if (!ret)
		ret = pipe_peek_data(pfd, e->pipe_size > (1u << 20) ? e->pipe_size : 1u << 20,
				     &buf, &len);
	if (!ret && len < (size_t)avail) {
		pr_err("pid %d: fd %d: only %zu of the %d bytes in its pipe could be copied", pid,
		       fd, len, avail);
		ret = -EIO;
	}
	if (!ret) {
		pd->data.data = buf;
		pd->data.len = len;
		buf = NULL;
	}
	free(buf);
	close(pfd);
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
 * one is made again as it was, the flag with the fd's). Looked at through
 * the process's own description (FIONREAD works on either end).
 */
static int pipe_packet_check(struct fd_dump *d)
{
	int dfd, fl, n = 0, ret = 0;

	dfd = proc_take_fd(d->pid, d->fd);
	if (dfd < 0)
		return dfd;
	fl = fcntl(dfd, F_GETFL);
	if (fl < 0 || ((fl & O_DIRECT) && ioctl(dfd, FIONREAD, &n))) {
		ret = -errno;
	} else if ((fl & O_DIRECT) && n > 0) {
		pr_err("pid %d: fd %d is a packet-mode pipe (O_DIRECT) holding %d unread bytes: "
		       "ferry cannot keep its packets apart yet", d->pid, d->fd, n);
		ret = -EOPNOTSUPP;
	}
	close(dfd);
	return ret;
}

/* What pipe_peek would refuse, and a packet-mode pipe with data: in the preflight too. */
static int pipe_check(struct fd_dump *d)
{
	FdEntry e = FD_ENTRY__INIT;
	int pfd, ret;

	ret = pipe_reader(d->pid, d->fd, &e, &pfd);
	if (pfd >= 0)
		close(pfd);
	return ret ?: pipe_packet_check(d);
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
	int ret;

	if (d->path[0] != '/' || stat(d->path, &st) || st.st_dev != d->st.st_dev ||
	    st.st_ino != d->st.st_ino) {
		pr_err("pid %d: fd %d is a FIFO (named pipe) no longer at its path %s: ferry opens "
		       "FIFOs again by path and cannot move this one", d->pid, d->fd, d->path);
		return -EOPNOTSUPP;
	}
	ret = pipe_check(d);
	return ret ? ret : file_ids_add_held(d->ids, d->pid, d->fd, &d->st, d->path, FIFO_KIND,
					     NULL);
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
