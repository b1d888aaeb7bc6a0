// SPDX-License-Identifier: MIT
/*
 * Ghost files back: an unnamed file (O_TMPFILE) in the directory the
 * deleted one was in, filled from ghost-<id>.img with its holes kept, once
 * for every fd and mapping of it (kept in the shared memory table as
 * SHM_GHOST_BASE + id); each fd opens it again with its saved flags and
 * offset. Images from before mappings moved name a ghost by its fd's file
 * id (ghost-<file_id>.img): one file per open file description.
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
	if (ftruncate(fd, ge->size))
		return -errno;
	/*
	 * Its owner, then its mode (a chown clears set-id bits): made by us
	 * (root), a set-user-ID file the process could execute would run as
	 * root. Older images name no owner: set-id bits refused there.
	 */
	if (ge->has_uid != ge->has_gid || (ge->mode & ~07777u) ||
	    (!ge->has_uid && (ge->mode & (S_ISUID | S_ISGID)))) {
		pr_err("a deleted file or memfd in the images has mode %#o%s: refused", ge->mode,
		       ge->has_uid ? "" : " and no owner");
		return -EINVAL;
	}
	if (ge->has_uid && fchown(fd, ge->uid, ge->gid))
		return -errno;
	if (fchmod(fd, ge->mode))
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

/* An unnamed file in @path's directory, filled from image @name; the fd or -errno. */
static int ghost_make(const char *path, int round_dirfd, const char *name)
{
	char dir[PATH_MAX];
	int tmp, ret;

	snprintf(dir, sizeof(dir), "%s", path);
	tmp = open(dirname(dir), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (tmp < 0) {
		ret = -errno;
		pr_perror("cannot make the unlinked file %s again in %s", path, dir);
		return ret;
	}
	ret = file_data_fill(tmp, round_dirfd, name);
	if (!ret)
		return tmp;
	close(tmp);
	return ret;
}

/* Deleted file @id (at @path), made from ghost-<id>.img unless it is already. */
static int ghost_one(struct shm_table *t, uint32_t id, const char *path, int round_dirfd)
{
	char name[64];
	int fd, ret;

	if (!path || !id || id >= SHM_GHOST_BASE)
		return -EINVAL;
	if (shm_has(t, SHM_GHOST_BASE + id))
		return 0;
	snprintf(name, sizeof(name), "ghost-%u.img", id);
	fd = ghost_make(path, round_dirfd, name);
	if (fd < 0)
		return fd;
	ret = shm_table_add(t, SHM_GHOST_BASE + id, fd);
	if (ret)
		close(fd);
	return ret;
}

int ghost_files_restore(struct shm_table *t, const MmEntry *mm, const FilesEntry *files,
			int round_dirfd)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < mm->n_vmas && !ret; i++) {
		const VmaEntry *v = mm->vmas[i];

		if (!v->has_ghost_id)
			continue;
		ret = v->kind == VMA_KIND__VMA_FILE ?
		      ghost_one(t, v->ghost_id, v->path, round_dirfd) : -EINVAL;
		if (ret == -EINVAL)
			pr_err("a mapping of a deleted file at %#llx is bad in the images",
			       (unsigned long long)v->start);
	}
	for (i = 0; files && i < files->n_fds && !ret; i++) {
		const FdEntry *f = files->fds[i];

		if (!f->has_ghost_id)
			continue;
		ret = f->ghost ? ghost_one(t, f->ghost_id, f->path, round_dirfd) : -EINVAL;
		if (ret == -EINVAL)
			pr_err("fd %u: a deleted file that is bad in the images", f->fd);
	}
	return ret;
}

int open_ghost(const FdEntry *f, int round_dirfd)
{
	char name[64], self[64];
	int tmp, fd, ret;

	snprintf(name, sizeof(name), "ghost-%u.img", f->file_id);
	tmp = ghost_make(f->path, round_dirfd, name);
	if (tmp < 0)
		return tmp;
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
