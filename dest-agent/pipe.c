// SPDX-License-Identifier: MIT
/*
 * Pipes: one new pipe per saved one (pipe_id), both its ends registered
 * for whoever of the tree holds them, its unread data (pipe-<pipe_id>.img)
 * written in first.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "common/util.h"
#include "dest-agent/restore.h"
#include "proto/image.h"

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
	ret = pipe_fill(p[1], round_dirfd, f->pipe_id);
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
