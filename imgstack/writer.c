// SPDX-License-Identifier: MIT
/*
 * The write side of an image stack: the round writer (tmp dir, fsync,
 * rename, auto-dedup). It resumes a stack through the view (imgstack/view.c)
 * and hands auto-dedup's ranges to a punch queue (imgstack/punch.c).
 * docs/image-stack.md describes the layout and the commit protocol.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "imgstack/pgindex.h"
#include "imgstack/punch.h"
#include "imgstack/view.h"
#include "imgstack/writer.h"
#include "proto/image.h"

#define ID_MAX		64
#define NAME_MAX_LEN	255
#define PM_MAX_PAGES	(1u << 31)	/* pagemap_entry.nr_pages is 32 bits */
#define TMP_PREFIX	".tmp-"
/*
 * Pages files are written in pieces of at most this: 1 GiB took 0.2 s of
 * CPU in 256 KiB writes, up to 1.3 s in 1 MiB ones and 2.8 s in 2 MiB ones
 * here (large writes get large page cache folios, presumably from the free
 * blocks this VM hands back to its host: docs/kernel-notes.md, trap 10
 * 'fresh memory is slow'). Smaller runs are gathered into writes of this
 * size in a staging block.
 */
#define WRITE_MAX	(256u << 10)
/* Start writeback every so often: the disk works during the round, the commit's fsync is short. */
#define WB_KICK		(8u << 20)
/* Image files of a round kept open for the commit's fsync; more are synced early. */
#define FILES_OPEN_MAX	64

/* Pages of one pid received in the round in progress. */
struct round_pid {
	uint32_t pid;
	int fd;			/* pages-<pid>.img, -1 until opened */
	uint64_t bytes;		/* data appended so far (some may still be staged) */
	uint64_t kicked;	/* writeback started up to here */
	struct pg_index ext;	/* new extents, arrival order until commit sorts them */
};

struct stack_writer {
	char *dir;		/* DIR/<id> */
	char id[ID_MAX + 1];
	int dirfd;		/* DIR/<id>, flock()ed while we write */
	bool auto_dedup;
	uint32_t top;		/* last complete round, 0: none */
	struct pg_index *idx;	/* per pid, sorted by pid */
	size_t nr_idx;
	struct punch_queue *pq;	/* auto-dedup's thread, started on first use */

	/* the round in progress */
	bool in_round, final;
	uint32_t round;
	int tmpfd;
	char tmpname[32];
	int err;		/* an I/O error: the round can only be aborted */
	struct round_pid *rp;	/* sorted by pid */
	size_t nr_rp;
	struct round_stats st;

	/* Image files written in this round, to be synced at the commit. */
	int *files;
	size_t nr_files, cap_files;

	/* Data of one pid not written yet: stage_off.. in its pages file. */
	uint8_t *stage;		/* WRITE_MAX bytes, kept across rounds */
	size_t stage_len;
	uint32_t stage_pid;
	uint64_t stage_off;
};

/* pg_pid_slot() finds it by its leading pid. */
_Static_assert(offsetof(struct round_pid, pid) == 0, "pid first");

/* --- small helpers --- */

static bool valid_name(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (!n || n > max || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Remove a round directory that never got renamed: files and the parent link only. */
static int remove_tmp_dir(int parent, const char *name)
{
	struct dirent *de;
	DIR *d;
	int fd, ret = 0;

	d = opendirat(parent, name, O_NOFOLLOW);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	fd = dirfd(d);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(fd, de->d_name, 0) && !ret)
			ret = -errno;
	}
	closedir(d);
	if (unlinkat(parent, name, AT_REMOVEDIR) && !ret)
		ret = -errno;
	if (ret) {
		errno = -ret;
		pr_perror("cannot remove temporary round directory %s", name);
	}
	return ret;
}

static int remove_stale_rounds(int dirfd)
{
	struct dirent *de;
	DIR *d;
	int ret = 0;

	d = opendirat(dirfd, ".", 0);
	if (!d)
		return -errno;
	while (!ret && (de = readdir(d))) {
		if (strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)))
			continue;
		pr_info("removing unfinished round %s", de->d_name);
		ret = remove_tmp_dir(dirfd, de->d_name);
	}
	closedir(d);
	return ret;
}

/* --- writer: opening and resuming --- */

static int make_id(char *buf, size_t len)
{
	uint32_t rnd;
	struct tm tm;
	time_t now = time(NULL);

	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -errno;
	gmtime_r(&now, &tm);
	snprintf(buf, len, "%04d%02d%02d-%02d%02d%02d-%08x", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, rnd);
	return 0;
}

static int open_images_dir(const char *images_dir)
{
	int fd;

	if (mkdir(images_dir, 0700) && errno != EEXIST) {
		pr_perror("cannot create images directory %s", images_dir);
		return -errno;
	}
	fd = open(images_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		pr_perror("cannot open images directory %s", images_dir);
	return fd < 0 ? -errno : fd;
}

/* mkdir DIR/<id>; a new id is made (and retried on a clash) when none is given. */
static int make_stack_dir(int basefd, const char *id, char *out)
{
	int tries, ret;

	for (tries = 0; tries < 8; tries++) {
		if (id) {
			snprintf(out, ID_MAX + 1, "%s", id);
		} else {
			ret = make_id(out, ID_MAX + 1);
			if (ret)
				return ret;
		}
		if (!mkdirat(basefd, out, 0700))
			return fsync(basefd) ? -errno : 0;
		if (errno != EEXIST)
			return -errno;
		if (id)
			return 0;	/* resume */
	}
	return -EEXIST;
}

/* Take over the top round's indexes so that the next round follows it. */
static int writer_resume(struct stack_writer *sw)
{
	struct stack_view v;
	char path[PATH_MAX];
	int ret;

	ret = remove_stale_rounds(sw->dirfd);
	if (ret)
		return ret;
	ret = stack_find_top(sw->dirfd, &sw->top);
	if (ret || !sw->top)
		return ret;
	if (snprintf(path, sizeof(path), "%s/%u", sw->dir, sw->top) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	ret = stack_view_open(path, &v);
	if (ret) {
		pr_err("%s: cannot resume a broken stack", sw->dir);
		return ret;
	}
	sw->idx = v.idx;
	sw->nr_idx = v.nr_pids;
	v.idx = NULL;
	v.nr_pids = 0;
	stack_view_close(&v);
	pr_info("%s: resuming after round %u", sw->dir, sw->top);
	return 0;
}

int stack_writer_open(const char *images_dir, const char *id, bool auto_dedup,
		      struct stack_writer **out)
{
	struct stack_writer *sw;
	int basefd, ret;

	if (id && !valid_name(id, ID_MAX)) {
		pr_err("bad migration id '%s' (want [A-Za-z0-9._-]{1,64})", id);
		return -EINVAL;
	}
	sw = calloc(1, sizeof(*sw));
	if (!sw)
		return -ENOMEM;
	sw->dirfd = sw->tmpfd = -1;
	sw->auto_dedup = auto_dedup;
	basefd = open_images_dir(images_dir);
	if (basefd < 0) {
		ret = basefd;
		goto err;
	}
	ret = make_stack_dir(basefd, id, sw->id);
	if (!ret) {
		sw->dirfd = openat(basefd, sw->id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sw->dirfd < 0)
			ret = -errno;
	}
	close(basefd);
	if (ret) {
		errno = -ret;
		pr_perror("cannot create %s/%s", images_dir, id ? id : "<new id>");
		goto err;
	}
	if (flock(sw->dirfd, LOCK_EX | LOCK_NB)) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		pr_err("%s/%s is in use by another writer", images_dir, sw->id);
		goto err;
	}
	if (asprintf(&sw->dir, "%s/%s", images_dir, sw->id) < 0) {
		sw->dir = NULL;
		ret = -ENOMEM;
		goto err;
	}
	ret = writer_resume(sw);
	if (ret)
		goto err;
	*out = sw;
	return 0;
err:
	stack_writer_close(sw);
	return ret;
}

const char *stack_writer_id(const struct stack_writer *sw)
{
	return sw->id;
}

const char *stack_writer_dir(const struct stack_writer *sw)
{
	return sw->dir;
}

uint32_t stack_writer_next_round(const struct stack_writer *sw)
{
	return sw->top + 1;
}

/* --- writer: one round --- */

static void round_reset(struct stack_writer *sw)
{
	size_t i;

	for (i = 0; i < sw->nr_rp; i++) {
		if (sw->rp[i].fd >= 0)
			close(sw->rp[i].fd);
		pg_index_free(&sw->rp[i].ext);
	}
	free(sw->rp);
	sw->rp = NULL;
	sw->nr_rp = 0;
	sw->stage_len = 0;
	for (i = 0; i < sw->nr_files; i++)
		close(sw->files[i]);
	sw->nr_files = 0;
	if (sw->tmpfd >= 0)
		close(sw->tmpfd);
	sw->tmpfd = -1;
	sw->in_round = false;
	sw->err = 0;
}

int stack_round_begin(struct stack_writer *sw, uint32_t round, bool final)
{
	char parent[32];
	int ret;

	if (sw->in_round) {
		pr_err("%s: round %u begun while round %u is open", sw->dir, round, sw->round);
		return -EBUSY;
	}
	if (round != sw->top + 1) {
		pr_err("%s: round %u does not follow round %u", sw->dir, round, sw->top);
		return -EINVAL;
	}
	snprintf(sw->tmpname, sizeof(sw->tmpname), TMP_PREFIX "%u", round);
	ret = remove_tmp_dir(sw->dirfd, sw->tmpname);
	if (ret)
		return ret;
	if (mkdirat(sw->dirfd, sw->tmpname, 0700)) {
		ret = -errno;
		pr_perror("%s: cannot create %s", sw->dir, sw->tmpname);
		return ret;
	}
	sw->in_round = true;
	sw->round = round;
	sw->final = final;
	memset(&sw->st, 0, sizeof(sw->st));
	sw->st.round = round;
	sw->tmpfd = openat(sw->dirfd, sw->tmpname, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sw->tmpfd < 0) {
		ret = -errno;
		goto err;
	}
	snprintf(parent, sizeof(parent), "../%u", round - 1);
	if (round > 1 && symlinkat(parent, sw->tmpfd, "parent")) {
		ret = -errno;
		goto err;
	}
	return 0;
err:
	errno = -ret;
	pr_perror("%s: cannot prepare round %u", sw->dir, round);
	stack_round_abort(sw);
	return ret;
}

static struct round_pid *round_pid_get(struct stack_writer *sw, uint32_t pid)
{
	struct round_pid *n;
	bool found;
	size_t slot = pg_pid_slot(sw->rp, sw->nr_rp, sizeof(*sw->rp), pid, &found);

	if (found)
		return &sw->rp[slot];
	n = realloc(sw->rp, (sw->nr_rp + 1) * sizeof(*n));
	if (!n)
		return NULL;
	sw->rp = n;
	memmove(&n[slot + 1], &n[slot], (sw->nr_rp - slot) * sizeof(*n));
	sw->nr_rp++;
	n[slot] = (struct round_pid){ .pid = pid, .fd = -1, .ext = { .pid = pid } };
	return &n[slot];
}

static int round_pid_open(struct stack_writer *sw, struct round_pid *rp)
{
	char name[64];

	if (rp->fd >= 0)
		return 0;
	snprintf(name, sizeof(name), PAGES_NAME_FMT, rp->pid);
	rp->fd = openat(sw->tmpfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	return rp->fd < 0 ? -errno : 0;
}

/* Have the kernel write back what piled up, without waiting for it. */
static void round_pid_kick(struct round_pid *rp, uint64_t end)
{
	if (end - rp->kicked < WB_KICK)
		return;
	sync_file_range(rp->fd, rp->kicked, end - rp->kicked, SYNC_FILE_RANGE_WRITE);
	rp->kicked = end;
}

/* In pieces of WRITE_MAX. */
static int round_pid_pwrite(struct round_pid *rp, const uint8_t *buf, size_t len, uint64_t off)
{
	size_t n;
	int ret;

	for (; len; buf += n, off += n, len -= n) {
		n = min_u64(len, WRITE_MAX);
		ret = pwrite_full(rp->fd, buf, n, off);
		if (ret)
			return ret;
		round_pid_kick(rp, off + n);
	}
	return 0;
}

static struct round_pid *round_pid_find(struct stack_writer *sw, uint32_t pid)
{
	bool found;
	size_t slot = pg_pid_slot(sw->rp, sw->nr_rp, sizeof(*sw->rp), pid, &found);

	return found ? &sw->rp[slot] : NULL;
}

/* Write out the staging block. */
static int stage_flush(struct stack_writer *sw)
{
	struct round_pid *rp;
	int ret;

	if (!sw->stage_len)
		return 0;
	rp = round_pid_find(sw, sw->stage_pid);
	ret = rp ? round_pid_pwrite(rp, sw->stage, sw->stage_len, sw->stage_off) : -EINVAL;
	sw->stage_len = 0;
	return ret;
}

/*
 * Pages for a pages file at @off: a large run goes straight from the
 * caller's buffer, smaller ones through the staging block, so that
 * scattered small runs make few writes.
 */
static int stage_pages(struct stack_writer *sw, struct round_pid *rp, const uint8_t *data,
		       size_t len, uint64_t off)
{
	size_t n;
	int ret;

	if (sw->stage_len && (sw->stage_pid != rp->pid || sw->stage_off + sw->stage_len != off ||
			      len >= WRITE_MAX)) {
		ret = stage_flush(sw);
		if (ret)
			return ret;
	}
	if (len >= WRITE_MAX)
		return round_pid_pwrite(rp, data, len, off);
	if (!sw->stage) {
		sw->stage = malloc(WRITE_MAX);
		if (!sw->stage)
			return -ENOMEM;
	}
	while (len) {
		if (!sw->stage_len) {
			sw->stage_pid = rp->pid;
			sw->stage_off = off;
		}
		n = min_u64(len, WRITE_MAX - sw->stage_len);
		memcpy(sw->stage + sw->stage_len, data, n);
		sw->stage_len += n;
		data += n;
		off += n;
		len -= n;
		if (sw->stage_len == WRITE_MAX) {
			ret = stage_flush(sw);
			if (ret)
				return ret;
		}
	}
	return 0;
}

static int round_pid_write(struct stack_writer *sw, struct round_pid *rp, const void *data,
			   size_t len)
{
	int ret = round_pid_open(sw, rp);

	return ret ? ret : stage_pages(sw, rp, data, len, rp->bytes);
}

/* Record a run; runs that continue the previous one (the usual order) merge. */
static int round_pid_note(struct round_pid *rp, const struct pg_extent *e)
{
	struct pg_extent *last = rp->ext.nr ? &rp->ext.ext[rp->ext.nr - 1] : NULL;

	if (last && pg_ext_continues(last, e)) {
		last->nr_pages += e->nr_pages;
		return 0;
	}
	return pg_index_push(&rp->ext, e);
}

static int round_check_open(struct stack_writer *sw)
{
	if (!sw->in_round) {
		pr_err("%s: no round in progress", sw->dir);
		return -EINVAL;
	}
	return sw->err;
}

int stack_add_pages(struct stack_writer *sw, uint32_t pid, uint64_t vaddr, uint64_t nr_pages,
		    const void *data)
{
	struct pg_extent e = { vaddr, nr_pages, 0, 0 };
	struct round_pid *rp;
	int ret;

	ret = round_check_open(sw);
	if (ret)
		return ret;
	if (!nr_pages || vaddr % PAGE_SIZE || vaddr > TASK_SIZE_MAX ||
	    nr_pages > (TASK_SIZE_MAX - vaddr) / PAGE_SIZE) {
		pr_err("pid %u: bad page run %#llx+%llu", pid, (unsigned long long)vaddr,
		       (unsigned long long)nr_pages);
		return -EINVAL;
	}
	rp = round_pid_get(sw, pid);
	if (!rp)
		return -ENOMEM;
	if (data) {
		ret = round_pid_write(sw, rp, data, nr_pages * PAGE_SIZE);
		if (ret)
			goto io_err;
		e.round = sw->round;
		e.file_off = rp->bytes;
		rp->bytes += nr_pages * PAGE_SIZE;
		sw->st.pages_present += nr_pages;
		sw->st.bytes_written += nr_pages * PAGE_SIZE;
	} else {
		sw->st.pages_zero += nr_pages;
	}
	return round_pid_note(rp, &e);
io_err:
	errno = -ret;
	pr_perror("%s: cannot write pages of pid %u in round %u", sw->dir, pid, sw->round);
	sw->err = ret;
	return ret;
}

/* fsync and close the image files written so far. */
static int round_sync_files(struct stack_writer *sw)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < sw->nr_files; i++) {
		if (!ret && fsync(sw->files[i]))
			ret = -errno;
		close(sw->files[i]);
	}
	sw->nr_files = 0;
	return ret;
}

/*
 * Create an image file of the round and start its writeback. Its fsync
 * waits for the commit, where the files are synced back to back: one fsync
 * per file as it comes costs a journal commit each, in the frozen final
 * round too.
 */
static int round_write_file(struct stack_writer *sw, const char *name, const void *data,
			    size_t len)
{
	int fd, ret;

	if (sw->nr_files == FILES_OPEN_MAX) {
		ret = round_sync_files(sw);
		if (ret)
			return ret;
	}
	if (grow_array(&sw->files, &sw->cap_files, sw->nr_files, sizeof(*sw->files)))
		return -ENOMEM;
	fd = openat(sw->tmpfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	ret = write_full(fd, data, len);
	if (ret) {
		close(fd);
		return ret;
	}
	sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	sw->files[sw->nr_files++] = fd;
	return 0;
}

int stack_add_file(struct stack_writer *sw, const char *name, const void *data, size_t len)
{
	int ret;

	ret = round_check_open(sw);
	if (ret)
		return ret;
	/* pagemaps, pages files and the parent link are ours */
	if (!valid_name(name, NAME_MAX_LEN) || !strncmp(name, "pagemap-", 8) ||
	    !strncmp(name, "pages-", 6) || !strcmp(name, "parent")) {
		pr_err("bad or reserved image name '%s'", name);
		return -EINVAL;
	}
	ret = round_write_file(sw, name, data, len);
	if (ret == -EEXIST) {
		pr_err("%s: %s sent twice in round %u", sw->dir, name, sw->round);
		return ret;
	}
	if (ret) {
		errno = -ret;
		pr_perror("%s: cannot write %s in round %u", sw->dir, name, sw->round);
		sw->err = ret;
		return ret;
	}
	sw->st.bytes_written += len;
	return 0;
}

/* --- writer: commit --- */

/* Sort the round's runs of one pid and refuse pages sent twice. */
static int round_pid_sort(const struct stack_writer *sw, struct round_pid *rp)
{
	size_t i;

	qsort(rp->ext.ext, rp->ext.nr, sizeof(*rp->ext.ext), pg_ext_cmp_vaddr);
	for (i = 1; i < rp->ext.nr; i++) {
		const struct pg_extent *p = &rp->ext.ext[i - 1];

		if (pg_ext_end(p) > rp->ext.ext[i].vaddr) {
			pr_err("%s: pid %u: page %#llx sent twice in round %u", sw->dir, rp->pid,
			       (unsigned long long)rp->ext.ext[i].vaddr, sw->round);
			return -EINVAL;
		}
	}
	return 0;
}

/* Append a pagemap run, merging with the last and splitting at PM_MAX_PAGES. */
static int pm_push(struct pagemap *pm, size_t *cap, uint64_t vaddr, uint64_t nr, uint32_t flags,
		   uint64_t off)
{
	while (nr) {
		struct pm_ext *last = pm->nr ? &pm->ext[pm->nr - 1] : NULL;
		uint64_t take;

		if (last && last->flags == flags && last->nr_pages < PM_MAX_PAGES &&
		    last->vaddr + last->nr_pages * PAGE_SIZE == vaddr &&
		    (flags != PE_FLAGS__PE_PRESENT ||
		     last->off + last->nr_pages * PAGE_SIZE == off)) {
			take = min_u64(nr, PM_MAX_PAGES - last->nr_pages);
			last->nr_pages += take;
		} else {
			if (grow_array(&pm->ext, cap, pm->nr, sizeof(*pm->ext)))
				return -ENOMEM;
			take = min_u64(nr, PM_MAX_PAGES);
			pm->ext[pm->nr++] = (struct pm_ext){ vaddr, take, flags, off };
		}
		vaddr += take * PAGE_SIZE;
		off += take * PAGE_SIZE;
		nr -= take;
	}
	return 0;
}

/* This round's runs are PRESENT, older rounds' PARENT, round 0 ZERO. */
static int round_write_pagemap(struct stack_writer *sw, const struct pg_index *idx,
			       uint64_t pages_bytes)
{
	struct pagemap pm = { .pid = idx->pid };
	struct img_buf buf = { 0 };
	char name[64];
	size_t i, cap = 0;
	int ret = 0;

	for (i = 0; !ret && i < idx->nr; i++) {
		const struct pg_extent *e = &idx->ext[i];
		uint32_t flags = e->round == sw->round ? PE_FLAGS__PE_PRESENT :
				 e->round ? PE_FLAGS__PE_PARENT : PE_FLAGS__PE_ZERO;

		ret = pm_push(&pm, &cap, e->vaddr, e->nr_pages, flags,
			      flags == PE_FLAGS__PE_PRESENT ? e->file_off : 0);
	}
	if (!ret)
		ret = pagemap_build(&pm, pages_bytes, &buf);
	if (!ret) {
		snprintf(name, sizeof(name), PAGEMAP_NAME_FMT, idx->pid);
		ret = round_write_file(sw, name, buf.data, buf.len);
		sw->st.bytes_written += buf.len;
	}
	img_buf_free(&buf);
	pagemap_free(&pm);
	return ret;
}

/*
 * New indexes for every pid (old ones, with this round's runs on top), and
 * the older data they replace in @punch. The old indexes stay as they are
 * until the round is durable.
 */
static int round_build_indexes(struct stack_writer *sw, struct pg_index **out, size_t *nr_out,
			       struct punch_list *punch)
{
	size_t i = 0, j = 0, n = 0;
	struct pg_index *nidx;
	int ret = 0;

	nidx = calloc(sw->nr_idx + sw->nr_rp + 1, sizeof(*nidx));
	if (!nidx)
		return -ENOMEM;
	while (!ret && (i < sw->nr_idx || j < sw->nr_rp)) {
		struct pg_index empty = { 0 };
		const struct pg_index *old;
		const struct round_pid *rp = NULL;

		if (j == sw->nr_rp || (i < sw->nr_idx && sw->idx[i].pid < sw->rp[j].pid)) {
			old = &sw->idx[i++];
		} else {
			rp = &sw->rp[j++];
			empty.pid = rp->pid;
			old = &empty;
			if (i < sw->nr_idx && sw->idx[i].pid == rp->pid)
				old = &sw->idx[i++];
		}
		ret = pg_index_overlay(old, rp ? rp->ext.ext : NULL, rp ? rp->ext.nr : 0,
				       sw->auto_dedup ? punch_list_add : NULL, punch, &nidx[n]);
		n++;
	}
	*out = nidx;
	*nr_out = n;
	return ret;
}

static void free_indexes(struct pg_index *idx, size_t nr)
{
	size_t i;

	for (i = 0; i < nr; i++)
		pg_index_free(&idx[i]);
	free(idx);
}

/* Every file of the round on disk: pagemaps, pages files (empty ones too), images, the dir. */
static int round_write_out(struct stack_writer *sw, const struct pg_index *nidx, size_t nr)
{
	size_t i;
	int ret = 0;

	for (i = 0; !ret && i < nr; i++) {
		struct round_pid *rp = round_pid_get(sw, nidx[i].pid);

		if (!rp)
			return -ENOMEM;
		ret = round_pid_open(sw, rp);
		if (!ret)
			ret = round_write_pagemap(sw, &nidx[i], rp->bytes);
	}
	for (i = 0; !ret && i < sw->nr_rp; i++)
		if (fsync(sw->rp[i].fd))
			ret = -errno;
	if (!ret)
		ret = round_sync_files(sw);
	if (!ret && fsync(sw->tmpfd))
		ret = -errno;
	return ret;
}

/* .tmp-<k> -> <k>, durable; undone if the stack directory cannot be synced. */
static int round_publish(struct stack_writer *sw)
{
	char name[16];
	int ret;

	snprintf(name, sizeof(name), "%u", sw->round);
	if (renameat2(sw->dirfd, sw->tmpname, sw->dirfd, name, RENAME_NOREPLACE))
		return -errno;
	if (!fsync(sw->dirfd))
		return 0;
	ret = -errno;
	if (renameat2(sw->dirfd, name, sw->dirfd, sw->tmpname, RENAME_NOREPLACE))
		pr_perror("%s: cannot take back round %u", sw->dir, sw->round);
	return ret;
}

/*
 * Auto-dedup, only once the replacing round is durable. The ranges are
 * disjoint (each old page is replaced once), so their sum is what goes.
 * A failure wastes space, never data.
 */
static void round_punch(struct stack_writer *sw, struct punch_list *punch)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < punch->nr; i++)
		sw->st.bytes_punched += punch->r[i].len;
	if (!punch->nr)
		return;
	if (!sw->pq)
		ret = punch_queue_start(sw->dirfd, &sw->pq);
	if (!ret)
		ret = punch_queue_push(sw->pq, punch);
	if (ret) {
		uint64_t freed = 0;

		ret = punch_list_run(punch, sw->dirfd, &freed);
	}
	if (ret) {
		errno = -ret;
		pr_perror("%s: auto-dedup after round %u incomplete", sw->dir, sw->round);
	}
}

int stack_round_commit(struct stack_writer *sw, struct round_stats *st)
{
	struct punch_list punch = { 0 };
	struct pg_index *nidx = NULL;
	size_t i, nr = 0;
	int ret;

	if (!sw->in_round)
		return round_check_open(sw);
	ret = sw->err;
	if (!ret)
		ret = stage_flush(sw);
	for (i = 0; !ret && i < sw->nr_rp; i++)
		ret = round_pid_sort(sw, &sw->rp[i]);
	if (!ret)
		ret = round_build_indexes(sw, &nidx, &nr, &punch);
	if (!ret)
		ret = round_write_out(sw, nidx, nr);
	if (!ret)
		ret = round_publish(sw);
	if (ret)
		goto err;

	free_indexes(sw->idx, sw->nr_idx);
	sw->idx = nidx;
	sw->nr_idx = nr;
	sw->top = sw->round;
	round_reset(sw);
	if (sw->auto_dedup)
		round_punch(sw, &punch);
	punch_list_free(&punch);
	pr_info("%s: round %u%s committed: %llu pages, %llu zero, %llu bytes written, %llu punched",
		sw->dir, sw->round, sw->final ? " (final)" : "",
		(unsigned long long)sw->st.pages_present, (unsigned long long)sw->st.pages_zero,
		(unsigned long long)sw->st.bytes_written, (unsigned long long)sw->st.bytes_punched);
	if (st)
		*st = sw->st;
	return 0;
err:
	errno = -ret;
	pr_perror("%s: round %u failed", sw->dir, sw->round);
	free_indexes(nidx, nr);
	punch_list_free(&punch);
	stack_round_abort(sw);
	return ret;
}

void stack_round_abort(struct stack_writer *sw)
{
	bool had_dir = sw->in_round;

	round_reset(sw);
	if (had_dir)
		remove_tmp_dir(sw->dirfd, sw->tmpname);
}

void stack_writer_close(struct stack_writer *sw)
{
	if (!sw)
		return;
	stack_round_abort(sw);
	if (punch_queue_stop(sw->pq, NULL))
		pr_warn("%s: auto-dedup left some replaced pages in place", sw->dir);
	free_indexes(sw->idx, sw->nr_idx);
	/* no round ever completed (a refused or failed first round): leave no empty stack */
	if (!sw->top && sw->dirfd >= 0 && !rmdir(sw->dir))
		pr_info("%s: no complete round: removed", sw->dir);
	if (sw->dirfd >= 0)
		close(sw->dirfd);
	free(sw->stage);
	free(sw->files);
	free(sw->dir);
	free(sw);
}
