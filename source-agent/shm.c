// SPDX-License-Identifier: MIT
/* Shared memory objects of the tree: see shm.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "common/log.h"
#include "common/util.h"
#include "proto/image.h"
#include "source-agent/files.h"
#include "source-agent/ghost.h"
#include "source-agent/ipc.h"
#include "source-agent/mm.h"
#include "source-agent/shm.h"
#include "transport/frame.h"

#define SHM_CHUNK (256 * PAGE_SIZE)

bool vma_is_shm(const struct vma *v)
{
	/* a memfd mapped privately is an object too: its file, under the copied pages */
	return v->kind == VMA_KIND__VMA_MEMFD || (v->shared && v->kind == VMA_KIND__VMA_ANON);
}

uint32_t shm_lookup(const struct shm_set *ss, uint64_t dev, uint64_t ino)
{
	size_t i;

	for (i = 0; i < ss->nr; i++)
		if (ss->o[i].dev == dev && ss->o[i].ino == ino)
			return ss->o[i].id;
	return 0;
}

static struct shm_obj *shm_find(struct shm_set *ss, const struct vma *v)
{
	uint32_t id = shm_lookup(ss, v->dev, v->ino);

	return id ? &ss->o[id - 1] : NULL;
}

/* A new object: its shmem file, opened through the mapping. */
static int shm_add(struct shm_set *ss, pid_t pid, const struct vma *v, struct shm_obj **out)
{
	struct shm_obj *o;
	char path[96];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", pid,
		 (unsigned long long)v->start, (unsigned long long)v->end);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		pr_perror("cannot open the shared memory at %#llx of pid %d",
			  (unsigned long long)v->start, pid);
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	if (grow_array(&ss->o, &ss->cap, ss->nr, sizeof(*ss->o))) {
		close(fd);
		return -ENOMEM;
	}
	o = &ss->o[ss->nr];
	memset(o, 0, sizeof(*o));
	o->id = ++ss->nr;
	o->dev = v->dev;
	o->ino = v->ino;
	o->size = st.st_size;
	o->fd = fd;
	o->memfd = v->kind == VMA_KIND__VMA_MEMFD;
	o->full = true;
	o->seals = o->memfd ? fcntl(fd, F_GET_SEALS) : -1;
	/* a System V segment: its shmid is the inode (ipc.c says whose it is) */
	o->sysv = !o->memfd && !strncmp(v->path, "/SYSV", 5) ? (long)v->ino : -1;
	snprintf(o->name, sizeof(o->name), "%s",
		 o->memfd ? v->path + 7 : o->sysv >= 0 ? "SYSV" : "shared-anon");
	o->name[strcspn(o->name, " ")] = 0;
	*out = o;
	return 0;
}

static int shm_note(struct shm_obj *o, uint64_t start, uint64_t end)
{
	struct shm_range *last = o->nr ? &o->r[o->nr - 1] : NULL;

	if (last && last->end == start) {
		last->end = end;
		return 0;
	}
	if (grow_array(&o->r, &o->cap, o->nr, sizeof(*o->r)))
		return -ENOMEM;
	o->r[o->nr++] = (struct shm_range){ start, end };
	return 0;
}

static const struct vma *vma_at(const struct vma_list *vl, uint64_t addr)
{
	size_t i;

	for (i = 0; i < vl->nr; i++)
		if (vl->v[i].start <= addr && addr < vl->v[i].end)
			return &vl->v[i];
	return NULL;
}

/*
 * Runs of the dirty set are cut at VMA ends: what lies in shared memory
 * goes to its object's list (as offsets), the rest stays in a new set.
 */
static int split_dirty(struct shm_set *ss, const struct vma_list *vl, struct dirty_set *ds)
{
	struct dirty_set keep = { 0 };
	size_t j;
	int ret = 0;

	for (j = 0; j < ds->nr && !ret; j++) {
		const struct dirty_range *r = &ds->r[j];
		uint64_t a = r->start;

		while (a < r->end && !ret) {
			const struct vma *v = vma_at(vl, a);
			uint64_t e = v && v->end < r->end ? v->end : r->end;

			/* a private mapping's copied pages are the process's own */
			if (v && v->shm_id && v->shared && !r->zero)
				ret = shm_note(&ss->o[v->shm_id - 1], v->pgoff + a - v->start,
					       v->pgoff + e - v->start);
			else if (!v || !v->shm_id || !v->shared)
				ret = dirty_set_add(&keep, a, e, r->zero);
			a = e;
		}
	}
	if (ret) {
		dirty_set_free(&keep);
		return ret;
	}
	keep.pages_data = ds->pages_data;
	keep.pages_zero = ds->pages_zero;
	dirty_set_free(ds);
	*ds = keep;
	return 0;
}

int shm_collect(struct shm_set *ss, pid_t pid, struct vma_list *vl, struct dirty_set *ds)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < vl->nr && !ret; i++) {
		struct vma *v = &vl->v[i];
		struct shm_obj *o;

		if (!vma_is_shm(v))
			continue;
		/* a memfd comes back as a plain one: its huge pages would not */
		if (vma_is_hugetlb(pid, v)) {
			pr_err("pid %d: %s at %#llx is hugetlb memory: ferry cannot move it yet",
			       pid, v->path, (unsigned long long)v->start);
			return -EOPNOTSUPP;
		}
		o = shm_find(ss, v);
		/* SysV segments and shared anonymous memory share a mount: an inode number twice */
		if (o && (o->sysv >= 0) != !strncmp(v->path, "/SYSV", 5)) {
			pr_err("pid %d: shared memory at %#llx and a SysV segment have the same inode "
			       "number (%llu): ferry cannot tell them apart", pid,
			       (unsigned long long)v->start, (unsigned long long)v->ino);
			return -EOPNOTSUPP;
		}
		if (!o)
			ret = shm_add(ss, pid, v, &o);
		if (ret)
			break;
		/* the restored memfd is sealed before it is mapped: no writable map then */
		if (o->seals > 0 && (o->seals & F_SEAL_FUTURE_WRITE) && (v->prot & PROT_WRITE)) {
			pr_err("pid %d: memfd %s at %#llx is mapped writable under F_SEAL_FUTURE_WRITE: ferry cannot restore that seal yet",
			       pid, o->name, (unsigned long long)v->start);
			return -EOPNOTSUPP;
		}
		v->shm_id = o->id;
		/* write(2) on a memfd leaves no trace in page tables: send it whole */
		o->full |= o->memfd;
	}
	/* dirty ranges in shared memory become offsets in their object */
	ret = ret ? ret : split_dirty(ss, vl, ds);
	return ret;
}

/* Pages [start, end) of the object, read from its file, zero runs as addresses only. */
static int shm_send_range(struct shm_obj *o, struct sink *sink, uint64_t start, uint64_t end,
			  uint8_t *buf, struct copy_stats *st)
{
	uint32_t pid = SHM_PID_BASE + o->id;
	int ret = 0;

	while (start < end && !ret) {
		size_t len = end - start < SHM_CHUNK ? end - start : SHM_CHUNK, i, j;
		ssize_t n = pread(o->fd, buf, len, start);

		if (n < 0)
			return -errno;
		memset(buf + n, 0, len - n);	/* past the end of the object: zero */
		for (i = 0; !ret && i < len / PAGE_SIZE; i = j) {
			bool zero = page_is_zero(buf + i * PAGE_SIZE);

			for (j = i + 1; j < len / PAGE_SIZE && page_is_zero(buf + j * PAGE_SIZE) == zero;)
				j++;
			ret = sink->ops->add_pages(sink, pid, start + i * PAGE_SIZE, j - i,
						   zero ? NULL : buf + i * PAGE_SIZE);
			if (zero)
				st->pages_zero += j - i;
			else
				st->pages_data += j - i;
		}
		start += len;
	}
	return ret;
}

static int range_cmp(const void *a, const void *b)
{
	const struct shm_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/*
 * Two mappings of one object (an alias, a parent and its child) note the
 * same offsets: in order and merged, each page goes once a round.
 */
static void shm_merge_ranges(struct shm_obj *o)
{
	size_t i, n = 0;

	if (o->nr < 2)
		return;
	qsort(o->r, o->nr, sizeof(*o->r), range_cmp);
	for (i = 1; i < o->nr; i++) {
		if (o->r[i].start <= o->r[n].end) {
			if (o->r[i].end > o->r[n].end)
				o->r[n].end = o->r[i].end;
		} else {
			o->r[++n] = o->r[i];
		}
	}
	o->nr = n + 1;
}

struct full_ctx {
	struct shm_obj *o;
	struct sink *sink;
	uint8_t *buf;
	struct copy_stats *st;
	uint64_t done;		/* everything below is sent */
};

/* The hole before a data extent as zero pages (it may have had data before), then the data. */
static int send_extent(void *arg, uint64_t start, uint64_t end)
{
	struct full_ctx *c = arg;
	int ret = 0;

	start &= ~(PAGE_SIZE - 1);
	if (start < c->done)
		start = c->done;
	if (start > c->done)
		ret = c->sink->ops->add_pages(c->sink, SHM_PID_BASE + c->o->id, c->done,
					      (start - c->done) / PAGE_SIZE, NULL);
	if (!ret && page_up(end) > start)
		ret = shm_send_range(c->o, c->sink, start, page_up(end), c->buf, c->st);
	if (page_up(end) > c->done)
		c->done = page_up(end);
	return ret;
}

/* Whole: every data extent, and the holes as zero. */
static int shm_send_full(struct shm_obj *o, struct sink *sink, uint8_t *buf, struct copy_stats *st)
{
	struct full_ctx c = { o, sink, buf, st, 0 };
	int ret;

	ret = for_each_data_extent(o->fd, o->size, send_extent, &c);
	if (!ret && page_up(o->size) > c.done)
		ret = sink->ops->add_pages(sink, SHM_PID_BASE + o->id, c.done,
					   (page_up(o->size) - c.done) / PAGE_SIZE, NULL);
	return ret;
}

static int shm_send_table(struct shm_set *ss, struct sink *sink)
{
	struct img_buf b;
	size_t i;
	int ret;

	ret = img_buf_init(&b);
	for (i = 0; !ret && i < ss->nr; i++) {
		ShmemEntry e = SHMEM_ENTRY__INIT;
		SysvShm sysv;
		SysvPerm perm;

		e.id = ss->o[i].id;
		e.size = ss->o[i].size;
		e.memfd = ss->o[i].memfd;
		e.name = ss->o[i].name;
		if (ss->o[i].seals >= 0) {
			e.has_seals = 1;
			e.seals = ss->o[i].seals;
		}
		if (ss->o[i].sysv >= 0) {
			ret = ipc_shm_entry(ss->o[i].sysv, &sysv, &perm);
			if (ret) {
				pr_err("SysV shared memory segment %ld: %s", ss->o[i].sysv,
				       strerror(-ret));
				break;
			}
			e.sysv = &sysv;
		}
		ret = img_buf_add(&b, &e.base);
	}
	if (!ret)
		ret = sink->ops->add_file(sink, "shmem.img", b.data, b.len);
	img_buf_free(&b);
	return ret;
}

int shm_send(struct shm_set *ss, struct sink *sink, struct copy_stats *st)
{
	uint8_t *buf;
	size_t i, k;
	int ret = 0;

	memset(st, 0, sizeof(*st));
	if (!ss->nr)
		return 0;
	buf = malloc(SHM_CHUNK);
	if (!buf)
		return -ENOMEM;
	for (i = 0; i < ss->nr && !ret; i++) {
		struct shm_obj *o = &ss->o[i];

		if (o->full)
			ret = shm_send_full(o, sink, buf, st);
		else
			shm_merge_ranges(o);
		for (k = 0; !o->full && k < o->nr && !ret; k++)
			ret = shm_send_range(o, sink, o->r[k].start, o->r[k].end, buf, st);
		o->full = false;
		o->nr = 0;
	}
	free(buf);
	if (!ret)
		ret = shm_send_table(ss, sink);
	return ret;
}

void shm_free(struct shm_set *ss)
{
	size_t i;

	for (i = 0; i < ss->nr; i++) {
		close(ss->o[i].fd);
		free(ss->o[i].r);
	}
	free(ss->o);
	memset(ss, 0, sizeof(*ss));
}

/*
 * A memfd the tree holds as an fd only (one it maps is an object above):
 * the same object without a mapping. Its data, size and mode travel like an
 * unlinked file's (memfd-<id>.img, up to 8 MiB), its name in the fd's path,
 * its seals in the fd's entry; the restore makes one memfd per object.
 */
#define MEMFD_KIND "memfd"

static bool memfd_match(const struct fd_dump *d)
{
	return S_ISREG(d->st.st_mode) && !d->st.st_nlink && !strncmp(d->path, "/memfd:", 7) &&
	       !shm_lookup(d->shm, d->st.st_dev, d->st.st_ino);
}

static int memfd_check(struct fd_dump *d)
{
	char link[64];
	struct statfs sfs;

	snprintf(link, sizeof(link), "/proc/%d/fd/%d", d->pid, d->fd);
	if (statfs(link, &sfs))
		return -errno;
	if (sfs.f_type != TMPFS_MAGIC) {
		pr_err("pid %d: fd %d is a hugetlb memfd (%s): not supported yet", d->pid, d->fd,
		       d->path);
		return -EOPNOTSUPP;
	}
	return file_ids_add_held(d->ids, d->pid, d->fd, &d->st, d->path, MEMFD_KIND, NULL);
}

static int memfd_dump(struct fd_dump *d)
{
	struct held *o;
	FdEntry *e = &d->e;
	size_t n = d->path_len;
	char name[64], link[64];
	int fd, seals, ret;

	ret = file_ids_add_held(d->ids, d->pid, d->fd, &d->st, d->path, MEMFD_KIND,
				&e->memfd_id);
	if (ret)
		return ret;
	e->type = FD_TYPE__FD_MEMFD;
	e->has_memfd_id = 1;
	if (n >= 10 && !strcmp(d->path + n - 10, " (deleted)"))
		d->path[n - 10] = 0;
	e->path = d->path;
	fd = proc_take_fd(d->pid, d->fd);
	if (fd < 0)
		return fd;
	seals = fcntl(fd, F_GET_SEALS);
	close(fd);
	if (seals < 0)
		return -errno;
	e->has_seals = 1;
	e->seals = seals;
	/* the data once per object */
	o = &d->ids->held[e->memfd_id - 1];
	if (o->sent)
		return 0;
	o->sent = true;
	snprintf(name, sizeof(name), "memfd-%u.img", e->memfd_id);
	snprintf(link, sizeof(link), "/proc/%d/fd/%d", d->pid, d->fd);
	return dump_file_data(link, name, MEMFD_KIND, d->path, d->sink);
}

const struct fd_dump_ops memfd_dump_ops = {
	.type = FD_TYPE__FD_MEMFD,
	.name = "memfd",
	.match = memfd_match,
	.check = memfd_check,
	.dump = memfd_dump,
};
