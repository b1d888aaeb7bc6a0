// SPDX-License-Identifier: MIT
/*
 * Ghost files back: an unnamed file (O_TMPFILE) in the directory the
 * unlinked one was in, filled from ghost-<file_id>.img with its holes kept,
 * then opened again with the saved flags and offset.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "dest-agent/restore.h"
#include "proto/image.h"

static int ghost_fill(int fd, const GhostFileEntry *ge)
{
	size_t i;
	int ret;

	for (i = 0; i < ge->n_chunks; i++) {
		const GhostChunk *c = ge->chunks[i];

		ret = pwrite_full(fd, c->data.data, c->data.len, c->off);
		if (ret)
			return ret;
	}
	if (ftruncate(fd, ge->size) || fchmod(fd, ge->mode))
		return -errno;
	return 0;
}

int file_data_fill(int fd, int round_dirfd, const char *name)
{
	GhostFileEntry *ge;
	int ret;

	ret = img_load_one(round_dirfd, name, &ghost_file_entry__descriptor, (void **)&ge);
	if (ret)
		return ret;
	ret = ghost_fill(fd, ge);
	protobuf_c_message_free_unpacked(&ge->base, NULL);
	return ret;
}

int open_ghost(const FdEntry *f, int round_dirfd)
{
	char name[64], dir[PATH_MAX], self[64];
	int tmp, fd, ret;

	snprintf(name, sizeof(name), "ghost-%u.img", f->file_id);
	snprintf(dir, sizeof(dir), "%s", f->path);
	tmp = open(dirname(dir), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (tmp < 0) {
		ret = -errno;
		pr_perror("cannot make the unlinked file %s again in %s", f->path, dir);
		goto out;
	}
	ret = file_data_fill(tmp, round_dirfd, name);
	if (ret)
		goto out;
	/* its own description, with the flags the process had */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", tmp);
	fd = open(self, fd_open_flags(f));
	if (fd < 0 || lseek(fd, f->pos, SEEK_SET) < 0) {
		ret = -errno;
		if (fd >= 0)
			close(fd);
		goto out;
	}
	ret = fd;
out:
	if (tmp >= 0)
		close(tmp);
	return ret;
}
