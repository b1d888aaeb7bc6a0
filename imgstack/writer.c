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
	struct pg_index cover;	/* at the commit: the pid's cover with this round's runs */
};

/*
 * What the writer keeps of a pid between rounds: the ranges the stack
 * tracks (its cover: zero runs, adjacent ones joined, about a run per VMA)
 * and, for auto-dedup only, its page index (which round holds each page).
 * A round's pagemap is written from its own runs and the cover alone.
 */
struct pid_track {
	uint32_t pid;
	struct pg_index cover;
	struct pg_index idx;
};

struct stack_writer {
	char *dir;		/* DIR/<id> */
	char id[ID_MAX + 1];
	int dirfd;		/* DIR/<id>, flock()ed while we write */
	bool auto_dedup;
	uint32_t top;		/* last complete round, 0: none */
	struct pid_track *pt;	/* per pid, sorted by pid */
	size_t nr_pt, cap_pt;
	bool idx_stale;		/* auto-dedup: indexes lack the last round (a final one) */
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

/* pg_pid_slot() finds them by their leading pid. */
_Static_assert(offsetof(struct round_pid, pid) == 0, "pid first");
_Static_assert(offsetof(struct pid_track, pid) == 0, "pid first");

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

static void free_tracks(struct pid_track *pt, size_t nr)
{
	size_t i;

	for (i = 0; i < nr; i++) {
		pg_index_free(&pt[i].cover);
		pg_index_free(&pt[i].idx);
	}
	free(pt);
}

/*
 * Covers (and, for auto-dedup, indexes) of the top round's pids, from a
 * view of it: O(the whole stack), only when a writer resumes a stack or
 * auto-dedup goes on after a final round.
 */
static int writer_load_top(struct stack_writer *sw)
{
	struct pid_track *pt;
	struct stack_view v;
	char path[PATH_MAX];
	size_t i;
	int ret;

	if (snprintf(path, sizeof(path), "%s/%u", sw->dir, sw->top) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	ret = stack_view_open(path, &v);
	if (ret) {
		pr_err("%s: cannot resume a broken stack", sw->dir);
		return ret;
	}
	pt = calloc(v.nr_pids + 1, sizeof(*pt));
	for (i = 0; pt && !ret && i < v.nr_pids; i++) {
		pt[i].pid = v.idx[i].pid;
		pt[i].cover.pid = pt[i].idx.pid = pt[i].pid;
		ret = pg_index_cover(v.idx[i].ext, v.idx[i].nr, &pt[i].cover);
		if (sw->auto_dedup) {
			pt[i].idx = v.idx[i];
			v.idx[i] = (struct pg_index){ .pid = pt[i].pid };
		}
	}
	if (!pt || ret) {
		free_tracks(pt, v.nr_pids);
		stack_view_close(&v);
		return ret ? ret : -ENOMEM;
	}
	free_tracks(sw->pt, sw->nr_pt);
	sw->pt = pt;
	sw->nr_pt = v.nr_pids;
	sw->cap_pt = v.nr_pids + 1;
	sw->idx_stale = false;
	stack_view_close(&v);
	return 0;
}

/* Take over the top round's covers (and indexes) so that the next round follows it. */
static int writer_resume(struct stack_writer *sw)
{
	int ret;

	ret = remove_stale_rounds(sw->dirfd);
	if (ret)
		return ret;
	ret = stack_find_top(sw->dirfd, &sw->top);
	if (ret || !sw->top)
		return ret;
	ret = writer_load_top(sw);
	if (!ret)
		pr_info("%s: resuming after round %u", sw->dir, sw->top);
	return ret;
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
		pg_index_free(&sw->rp[i].cover);
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
	/* a round after a final one: auto-dedup needs the indexes again */
	if (sw->idx_stale) {
		ret = writer_load_top(sw);
		if (ret)
			return ret;
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
	n[slot] = (struct round_pid){ .pid = pid, .fd = -1, .ext = { .pid = pid },
				      .cover = { .pid = pid } };
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

/* A run of pages of @pid the round may take: its round_pid, or NULL with *@err. */
static struct round_pid *round_pid_run(struct stack_writer *sw, uint32_t pid, uint64_t vaddr,
				       uint64_t nr_pages, int *err)
{
	struct round_pid *rp;

	*err = round_check_open(sw);
	if (*err)
		return NULL;
	if (!nr_pages || vaddr % PAGE_SIZE || vaddr > TASK_SIZE_MAX ||
	    nr_pages > (TASK_SIZE_MAX - vaddr) / PAGE_SIZE) {
		pr_err("pid %u: bad page run %#llx+%llu", pid, (unsigned long long)vaddr,
		       (unsigned long long)nr_pages);
		*err = -EINVAL;
		return NULL;
	}
	rp = round_pid_get(sw, pid);
	if (!rp)
		*err = -ENOMEM;
	return rp;
}

int stack_add_remote(struct stack_writer *sw, uint32_t pid, uint64_t vaddr, uint64_t nr_pages)
{
	struct pg_extent e = { vaddr, nr_pages, PG_ROUND_REMOTE, vaddr };
	struct round_pid *rp;
	int ret;

	rp = round_pid_run(sw, pid, vaddr, nr_pages, &ret);
	if (!rp)
		return ret;
	if (!sw->final) {
		pr_err("pid %u: REMOTE pages in pre-copy round %u", pid, sw->round);
		return -EINVAL;
	}
	return round_pid_note(rp, &e);
}

int stack_add_pages(struct stack_writer *sw, uint32_t pid, uint64_t vaddr, uint64_t nr_pages,
		    const void *data)
{
	struct pg_extent e = { vaddr, nr_pages, 0, 0 };
	struct round_pid *rp;
	int ret;

	rp = round_pid_run(sw, pid, vaddr, nr_pages, &ret);
	if (!rp)
		return ret;
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

static struct pid_track *track_find(struct stack_writer *sw, uint32_t pid)
{
	bool found;
	size_t slot = pg_pid_slot(sw->pt, sw->nr_pt, sizeof(*sw->pt), pid, &found);

	return found ? &sw->pt[slot] : NULL;
}

/* A PARENT run over [start, end), if that is not empty. */
static int pm_parent(struct pagemap *pm, size_t *cap, uint64_t start, uint64_t end)
{
	if (start >= end)
		return 0;
	return pm_push(pm, cap, start, (end - start) / PAGE_SIZE, PE_FLAGS__PE_PARENT, 0);
}

/* The pagemap flag of one of the round's own runs. */
static uint32_t pm_flag(const struct pg_extent *e)
{
	if (e->round == PG_ROUND_REMOTE)
		return PE_FLAGS__PE_REMOTE;
	return e->round ? PE_FLAGS__PE_PRESENT : PE_FLAGS__PE_ZERO;
}

/*
 * A pid's pagemap of the round: its own runs (data PRESENT, zero ZERO) and
 * PARENT over the rest of its @cover (which holds the round's runs), so
 * O(round's runs + cover): what older rounds hold is not looked at, PARENT
 * sends a reader down to it.
 */
static int round_write_pagemap(struct stack_writer *sw, const struct round_pid *rp,
			       const struct pg_index *cover)
{
	struct pagemap pm = { .pid = rp->pid };
	struct img_buf buf = { 0 };
	char name[64];
	size_t i, j = 0, cap = 0;
	int ret = 0;

	for (i = 0; !ret && i < cover->nr; i++) {
		uint64_t cur = cover->ext[i].vaddr, end = pg_ext_end(&cover->ext[i]);

		for (; !ret && j < rp->ext.nr && rp->ext.ext[j].vaddr < end; j++) {
			const struct pg_extent *e = &rp->ext.ext[j];

			ret = pm_parent(&pm, &cap, cur, e->vaddr);
			if (!ret)
				ret = pm_push(&pm, &cap, e->vaddr, e->nr_pages, pm_flag(e),
					      pm_flag(e) == PE_FLAGS__PE_PRESENT ? e->file_off : 0);
			cur = pg_ext_end(e);
		}
		if (!ret)
			ret = pm_parent(&pm, &cap, cur, end);
	}
	if (!ret && j < rp->ext.nr)
		ret = -EINVAL;	/* a run outside the cover: cannot be */
	if (!ret)
		ret = pagemap_build(&pm, rp->bytes, &buf);
	if (!ret) {
		snprintf(name, sizeof(name), PAGEMAP_NAME_FMT, rp->pid);
		ret = round_write_file(sw, name, buf.data, buf.len);
		sw->st.bytes_written += buf.len;
		sw->st.pagemap_entries += pm.nr;
	}
	img_buf_free(&buf);
	pagemap_free(&pm);
	return ret;
}

/*
 * Each pid's cover with this round's runs, beside the old one, which stays
 * as it is until the round is durable: O(round's runs + cover).
 */
static int round_covers(struct stack_writer *sw)
{
	struct pg_index add = { 0 };
	size_t i;
	int ret = 0;

	for (i = 0; !ret && i < sw->nr_rp; i++) {
		struct round_pid *rp = &sw->rp[i];
		const struct pid_track *t = track_find(sw, rp->pid);
		struct pg_index none = { .pid = rp->pid };

		if (!rp->ext.nr)
			continue;
		ret = pg_index_cover(rp->ext.ext, rp->ext.nr, &add);
		if (!ret)
			ret = pg_index_overlay(t ? &t->cover : &none, add.ext, add.nr, NULL, NULL,
					       &rp->cover);
	}
	pg_index_free(&add);
	return ret;
}

/*
 * Auto-dedup: the older data this round replaces, from the indexes as they
 * are (O(round's runs x log index + pieces)); nothing changes yet.
 */
static int round_replaced(struct stack_writer *sw, struct punch_list *punch)
{
	size_t i;
	int ret = 0;

	for (i = 0; sw->auto_dedup && !ret && i < sw->nr_rp; i++) {
		const struct pid_track *t = track_find(sw, sw->rp[i].pid);

		if (t && sw->rp[i].ext.nr)
			ret = pg_index_replaced(&t->idx, sw->rp[i].ext.ext, sw->rp[i].ext.nr,
						punch_list_add, punch);
	}
	return ret;
}

/* Room for a track of every pid of the round, so that round_keep cannot fail. */
static int round_reserve_tracks(struct stack_writer *sw)
{
	struct pid_track *n;

	if (sw->nr_pt + sw->nr_rp <= sw->cap_pt)
		return 0;
	n = realloc(sw->pt, (sw->nr_pt + sw->nr_rp) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	sw->pt = n;
	sw->cap_pt = sw->nr_pt + sw->nr_rp;
	return 0;
}

/* Forget the page indexes: auto-dedup stops (what it leaves, offline dedup frees). */
static void drop_indexes(struct stack_writer *sw)
{
	size_t i;

	for (i = 0; i < sw->nr_pt; i++)
		pg_index_free(&sw->pt[i].idx);
}

/*
 * The round is durable: its covers replace the old ones and, for
 * auto-dedup, its runs go into the indexes. That costs a copy of each
 * index (O(index), at memcpy speed): not in a final round, whose indexes
 * are only rebuilt (from the stack) if another round follows it.
 */
static void round_keep(struct stack_writer *sw)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < sw->nr_rp; i++) {
		struct round_pid *rp = &sw->rp[i];
		bool found;
		size_t k = pg_pid_slot(sw->pt, sw->nr_pt, sizeof(*sw->pt), rp->pid, &found);
		struct pid_track *t = &sw->pt[k];

		if (!rp->ext.nr)
			continue;
		if (!found) {	/* room reserved by round_reserve_tracks */
			memmove(t + 1, t, (sw->nr_pt - k) * sizeof(*t));
			sw->nr_pt++;
			*t = (struct pid_track){ .pid = rp->pid, .idx = { .pid = rp->pid } };
		}
		pg_index_free(&t->cover);
		t->cover = rp->cover;
		rp->cover = (struct pg_index){ .pid = rp->pid };
		if (!sw->auto_dedup || sw->final || ret)
			continue;
		sw->st.index_extents += t->idx.nr;
		ret = pg_index_apply(&t->idx, rp->ext.ext, rp->ext.nr, NULL, NULL);
	}
	if (sw->auto_dedup && sw->final) {
		drop_indexes(sw);
		sw->idx_stale = true;
	}
	if (ret) {
		pr_warn("%s: no memory for the page index after round %u: auto-dedup off, "
			"an offline dedup frees what it leaves", sw->dir, sw->round);
		drop_indexes(sw);
		sw->auto_dedup = false;
	}
}

/* Every file of the round on disk: pagemaps, pages files (empty ones too), images, the dir. */
static int round_write_out(struct stack_writer *sw)
{
	size_t i;
	int ret = 0;

	for (i = 0; !ret && i < sw->nr_rp; i++) {
		struct round_pid *rp = &sw->rp[i];
		const struct pid_track *t = track_find(sw, rp->pid);
		struct pg_index none = { .pid = rp->pid };

		ret = round_pid_open(sw, rp);
		if (!ret)
			ret = round_write_pagemap(sw, rp, rp->ext.nr ? &rp->cover :
							  t ? &t->cover : &none);
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
	size_t i;
	int ret;

	if (!sw->in_round)
		return round_check_open(sw);
	ret = sw->err;
	if (!ret)
		ret = stage_flush(sw);
	/* every pid of the stack gets a pagemap and a pages file, even an empty one */
	for (i = 0; !ret && i < sw->nr_pt; i++)
		if (!round_pid_get(sw, sw->pt[i].pid))
			ret = -ENOMEM;
	for (i = 0; !ret && i < sw->nr_rp; i++)
		ret = round_pid_sort(sw, &sw->rp[i]);
	if (!ret)
		ret = round_covers(sw);
	if (!ret)
		ret = round_replaced(sw, &punch);
	if (!ret)
		ret = round_reserve_tracks(sw);
	if (!ret)
		ret = round_write_out(sw);
	if (!ret)
		ret = round_publish(sw);
	if (ret)
		goto err;

	round_keep(sw);
	sw->top = sw->round;
	round_reset(sw);
	if (sw->auto_dedup || punch.nr)
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
	free_tracks(sw->pt, sw->nr_pt);
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
