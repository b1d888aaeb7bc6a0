// SPDX-License-Identifier: MIT
/*
 * Shared memory objects back: one memfd each, filled from the stack (pages
 * of pseudo pid SHM_PID_BASE + id), mapped by every VMA that names it
 * (through /proc/<restore>/fd/N, opened by the restorer blob).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "dest-agent/restore.h"
#include "proto/image.h"

#define SHM_CHUNK (1UL << 20)
/*
 * The largest object taken from images: one that could be mapped whole (the
 * source sends its pages at their offsets, which a pagemap keeps below this).
 */
#define SHM_SIZE_MAX TASK_SIZE_MAX

struct shm_fill_ctx {
	struct stack_view *sv;
	uint32_t id, pid;
	uint64_t end;		/* the object's size, a whole last page */
	int fd;
	uint8_t *buf;
};

static int shm_fill_ext(void *arg, const struct pg_extent *e)
{
	struct shm_fill_ctx *c = arg;
	uint64_t done = 0, len = e->nr_pages * PAGE_SIZE;
	int pfd, ret = 0;

	/* hostile images: no write past the object (a huge sparse memfd) */
	if (e->nr_pages > c->end / PAGE_SIZE || e->vaddr > c->end - len) {
		pr_err("shared memory object %u: %llu pages at offset %#llx lie past its size (%#llx)",
		       c->id, (unsigned long long)e->nr_pages, (unsigned long long)e->vaddr,
		       (unsigned long long)c->end);
		return -EINVAL;
	}
	if (!e->round)
		return 0;	/* zero: a hole of the new file */
	pfd = stack_view_pages_fd(c->sv, c->pid, e->round);
	if (pfd < 0)
		return pfd;
	while (done < len && !ret) {
		size_t n = len - done < SHM_CHUNK ? len - done : SHM_CHUNK;

		ret = pread_full(pfd, c->buf, n, e->file_off + done);
		if (!ret)
			ret = pwrite_full(c->fd, c->buf, n, e->vaddr + done);
		done += n;
	}
	return ret;
}

static int shm_fill(int fd, struct stack_view *sv, const ShmemEntry *e, uint8_t *buf)
{
	struct shm_fill_ctx c = { sv, e->id, SHM_PID_BASE + e->id, page_up(e->size), fd, buf };

	return stack_view_walk(sv, c.pid, 0, UINT64_MAX, false, shm_fill_ext, &c);
}

/*
 * A System V segment: made (ipc.c) with its key and id, filled through an
 * fd of its memory; each VMA naming it attaches it (RST_OP_SHMAT).
 */
static int sysv_make(struct shm_table *t, const ShmemEntry *e, struct stack_view *sv,
		     uint8_t *buf)
{
	int fd, id, ret;

	if (e->memfd || e->has_seals || !e->size) {
		pr_err("shared memory object %u: a SysV segment that is a memfd, sealed or empty",
		       e->id);
		return -EINVAL;
	}
	fd = ipc_shm_make(e, &id);
	if (fd < 0)
		return fd;
	ret = shm_table_add(t, e->id, fd);
	if (ret) {
		close(fd);
		shmctl(id, IPC_RMID, NULL);
		return ret;
	}
	t->v[t->nr - 1].sysv = id;
	t->v[t->nr - 1].lpid = e->sysv->lpid;
	t->v[t->nr - 1].dest = e->sysv->dest;
	t->v[t->nr - 1].size = e->size;
	/* the table holds it: undone with the restore */
	ret = shm_fill(fd, sv, e, buf);
	/* a write of the last page made the file longer than the segment: back to its size */
	if (!ret && ftruncate(fd, e->size))
		ret = -errno;
	return ret;
}

static int shm_make(struct shm_table *t, const ShmemEntry *e, struct stack_view *sv,
		    uint8_t *buf)
{
	int fd, ret;

	/*
	 * Its pages are those of pseudo pid SHM_PID_BASE + id, below the
	 * deleted files' SHM_GHOST_BASE + id: an id past that (a pid that
	 * wraps to a process's, a deleted file's number) or given twice names
	 * another object's pages or takes its place.
	 */
	if (!e->id || e->id >= SHM_GHOST_BASE - SHM_PID_BASE || shm_has(t, e->id)) {
		pr_err("shared memory object %u: its number is out of range or repeated", e->id);
		return -EINVAL;
	}
	if (e->size > SHM_SIZE_MAX) {
		pr_err("shared memory object %u: size %llu is over %llu", e->id,
		       (unsigned long long)e->size, (unsigned long long)SHM_SIZE_MAX);
		return -EINVAL;
	}
	if (e->sysv)
		return sysv_make(t, e, sv, buf);
	/* sealing allowed: its seals (F_SEAL_SEAL at least) go on after the fill */
	fd = memfd_create(e->name && *e->name ? e->name : "ferry-shm",
			  MFD_CLOEXEC | (e->has_seals ? MFD_ALLOW_SEALING : 0));
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, e->size)) {
		ret = -errno;
		goto fail;
	}
	ret = shm_fill(fd, sv, e, buf);
	/* its last page went in whole: the object ends where it ended */
	if (!ret && ftruncate(fd, e->size))
		ret = -errno;
	/* before any mapping: a write seal cannot go on while one is writable */
	if (!ret && e->has_seals && e->seals && fcntl(fd, F_ADD_SEALS, e->seals)) {
		ret = -errno;
		pr_err("cannot seal shared memory object %u (%s) with %#x: %s", e->id,
		       e->name ? e->name : "", e->seals, strerror(-ret));
	}
	if (!ret)
		ret = shm_table_add(t, e->id, fd);
	if (ret)
		goto fail;
	return 0;
fail:
	close(fd);
	return ret;
}

int shm_restore(struct shm_table *t, int dirfd, struct stack_view *sv)
{
	struct img_reader r;
	ShmemEntry *e;
	uint8_t *buf = NULL;
	size_t len;
	void *data;
	int ret;

	memset(t, 0, sizeof(*t));
	ret = img_load_file(dirfd, "shmem.img", &data, &len);
	if (ret == -ENOENT)
		return 0;	/* no shared memory */
	if (ret)
		return ret;
	buf = malloc(SHM_CHUNK);
	ret = buf ? img_reader_init(&r, "shmem.img", data, len) : -ENOMEM;
	while (!ret && (ret = img_read_msg(&r, &shmem_entry__descriptor, (void **)&e)) == 1) {
		ret = shm_make(t, e, sv, buf);
		if (ret)
			pr_err("cannot make shared memory object %u again: %s", e->id, strerror(-ret));
		protobuf_c_message_free_unpacked(&e->base, NULL);
	}
	free(buf);
	free(data);
	if (ret < 0) {
		ipc_shm_undo(t);
		shm_table_close(t);
	}
	return ret < 0 ? ret : 0;
}

int shm_table_add(struct shm_table *t, uint32_t id, int fd)
{
	if (grow_array(&t->v, &t->cap, t->nr, sizeof(*t->v)))
		return -ENOMEM;
	t->v[t->nr] = (struct shm_slot){ .id = id, .fd = fd, .sysv = -1 };
	t->nr++;
	return 0;
}

int shm_sysv(const struct shm_table *t, uint32_t id, uint64_t *size)
{
	size_t i;

	for (i = 0; t && i < t->nr; i++)
		if (t->v[i].id == id) {
			*size = t->v[i].size;
			return t->v[i].sysv;
		}
	return -1;
}

bool shm_has(const struct shm_table *t, uint32_t id)
{
	size_t i;

	for (i = 0; i < t->nr; i++)
		if (t->v[i].id == id)
			return true;
	return false;
}

bool shm_write_sealed(const struct shm_table *t, uint32_t id)
{
	size_t i;
	int s;

	for (i = 0; t && i < t->nr; i++) {
		if (t->v[i].id != id)
			continue;
		s = fcntl(t->v[i].fd, F_GET_SEALS);
		return s > 0 && (s & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE));
	}
	return false;
}

int shm_path(const struct shm_table *t, uint32_t id, char *buf, size_t len)
{
	size_t i;

	for (i = 0; t && i < t->nr; i++) {
		if (t->v[i].id == id) {
			snprintf(buf, len, "/proc/%d/fd/%d", getpid(), t->v[i].fd);
			return 0;
		}
	}
	pr_err("a VMA maps shared memory object %u, which the images do not hold", id);
	return -EINVAL;
}

int shm_open_fd(const FdEntry *f, const struct shm_table *shm)
{
	return shm_reopen(shm, f->shmid, f);
}

int shm_reopen(const struct shm_table *shm, uint32_t id, const FdEntry *f)
{
	char path[64];
	int fd, ret;

	ret = shm_path(shm, id, path, sizeof(path));
	if (ret)
		return ret;
	fd = open(path, fd_open_flags(f));
	if (fd < 0 || lseek(fd, f->pos, SEEK_SET) < 0) {
		ret = -errno;
		if (fd >= 0)
			close(fd);
		return ret;
	}
	return fd;
}

void shm_table_close(struct shm_table *t)
{
	size_t i;

	for (i = 0; i < t->nr; i++)
		close(t->v[i].fd);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/*
 * A memfd the tree held as an fd only: one memfd per object (registered
 * under KEY_MEMFD | memfd_id), named as it was, filled from
 * memfd-<memfd_id>.img, then sealed as it was.
 */
static int memfd_object(const struct fd_open *o, const FdEntry *f)
{
	uint64_t key = KEY_MEMFD | f->memfd_id;
	char name[64];
	int fd, ret;

	fd = of_find(o->of, key);
	if (fd >= 0)
		return fd;
	if (!f->path || strncmp(f->path, "/memfd:", 7) || !f->has_memfd_id || !f->has_seals) {
		pr_err("fd %u: a memfd without its name, number or seals in the images", f->fd);
		return -EINVAL;
	}
	fd = memfd_create(f->path + 7, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		pr_perror("cannot make the memfd %s again", f->path);
		return -errno;
	}
	snprintf(name, sizeof(name), "memfd-%u.img", f->memfd_id);
	ret = file_data_fill(fd, o->round_dirfd, name);
	if (!ret && f->seals && fcntl(fd, F_ADD_SEALS, f->seals))
		ret = -errno;
	if (!ret && fcntl(fd, F_GET_SEALS) != (int)f->seals) {
		pr_err("the memfd %s has seals %#x here, not %#x", f->path, fcntl(fd, F_GET_SEALS),
		       f->seals);
		ret = -EINVAL;
	}
	if (!ret)
		ret = of_add(o->of, key, fd);
	if (!ret)
		return fd;
	pr_err("cannot make the memfd %s again: %s", f->path, strerror(-ret));
	close(fd);
	return ret;
}

/* A description of it, with the saved flags and offset. */
static int memfd_open(const struct fd_open *o, const FdEntry *f, uint64_t key)
{
	char path[64];
	int obj, fd;

	(void)key;
	obj = memfd_object(o, f);
	if (obj < 0)
		return obj;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", obj);
	fd = open(path, fd_open_flags(f));
	if (fd < 0 || lseek(fd, f->pos, SEEK_SET) < 0) {
		int ret = -errno;

		if (fd >= 0)
			close(fd);
		return ret;
	}
	return fd;
}

const struct fd_restore_ops memfd_restore_ops = {
	.type = FD_TYPE__FD_MEMFD,
	.name = "memfd",
	.open = memfd_open,
};
