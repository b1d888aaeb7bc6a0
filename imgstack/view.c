// SPDX-License-Identifier: MIT
/*
 * The read side of an image stack: resolving it top-down through its parent
 * links into one page index per pid (which round holds each page), and the
 * pages files those indexes point into. docs/image-stack.md describes the
 * layout.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "imgstack/view.h"
#include "proto/image.h"

#define STACK_MAX_ROUNDS 4096	/* deeper chains are a loop or garbage */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t pm_end(const struct pm_ext *e)
{
	return e->vaddr + e->nr_pages * PAGE_SIZE;
}

static void idx_swap(struct pg_index *a, struct pg_index *b)
{
	struct pg_index t = *a;

	*a = *b;
	*b = t;
}

/* "<k>" with k in 1..UINT32_MAX, no leading zero: 0 if @s is not a round name. */
static uint32_t round_of_name(const char *s)
{
	unsigned long long k = 0;
	size_t n = strlen(s);

	if (!n || n > 10 || s[0] == '0' || strspn(s, "0123456789") != n)
		return 0;
	k = strtoull(s, NULL, 10);
	return k > UINT32_MAX ? 0 : (uint32_t)k;
}

int stack_find_top(int stack_dirfd, uint32_t *top)
{
	struct dirent *de;
	struct stat st;
	DIR *d;

	*top = 0;
	d = opendirat(stack_dirfd, ".", 0);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		uint32_t k = round_of_name(de->d_name);

		if (k > *top && !fstatat(stack_dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) &&
		    S_ISDIR(st.st_mode))
			*top = k;
	}
	closedir(d);
	return 0;
}

/* --- view: resolving a stack top-down --- */

static int view_push_fd(int **fds, size_t *nr, int fd)
{
	int *n = realloc(*fds, (*nr + 1) * sizeof(*n));

	if (!n) {
		close(fd);
		return -ENOMEM;
	}
	n[(*nr)++] = fd;
	*fds = n;
	return 0;
}

/* The number a round directory's name gives, 0 if it is not a number. */
static uint32_t view_dir_round(const char *path)
{
	char buf[PATH_MAX];
	size_t n;
	char *base;

	snprintf(buf, sizeof(buf), "%s", path);
	n = strlen(buf);
	while (n > 1 && buf[n - 1] == '/')
		buf[--n] = '\0';
	base = strrchr(buf, '/');
	return round_of_name(base ? base + 1 : buf);
}

static bool view_seen(const int *fds, size_t nr, const struct stat *st)
{
	struct stat o;
	size_t i;

	for (i = 0; i < nr; i++)
		if (!fstat(fds[i], &o) && o.st_dev == st->st_dev && o.st_ino == st->st_ino)
			return true;
	return false;
}

/* The absolute path of directory @fd, resolved once per round (the blob opens by path). */
static int view_fd_path(int fd, char **out)
{
	char link[64], dir[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, dir, sizeof(dir) - 1);
	if (n <= 0)
		return n ? -errno : -EINVAL;
	dir[n] = 0;
	*out = strdup(dir);
	return *out ? 0 : -ENOMEM;
}

/* Open every round from the top down; round numbers come from the chain's depth. */
static int view_open_chain(struct stack_view *v)
{
	int *fds = NULL, fd, ret;
	size_t nr = 0, i;
	uint32_t named;
	struct stat st;

	fd = open(v->top_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_perror("cannot open round directory %s", v->top_dir);
		return ret;
	}
	for (;;) {
		ret = view_push_fd(&fds, &nr, fd);
		if (ret)
			goto out;
		if (fstatat(fd, "parent", &st, AT_SYMLINK_NOFOLLOW)) {
			if (errno == ENOENT)
				break;
			ret = -errno;
			goto out;
		}
		fd = openat(fd, "parent", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			pr_perror("%s: broken parent link at depth %zu (0: the top)",
				  v->top_dir, nr - 1);
			ret = -EINVAL;
			goto out;
		}
		if (fstat(fd, &st) || view_seen(fds, nr, &st) || nr >= STACK_MAX_ROUNDS) {
			pr_err("%s: the parent links loop or go too deep", v->top_dir);
			close(fd);
			ret = -EINVAL;
			goto out;
		}
	}
	named = view_dir_round(v->top_dir);
	if (named && named != nr) {
		pr_err("%s: round %u has a chain of %zu rounds (missing parent link?)",
		       v->top_dir, named, nr);
		ret = -EINVAL;
		goto out;
	}
	v->round_dirfd = malloc((nr + 1) * sizeof(int));
	if (!v->round_dirfd) {
		ret = -ENOMEM;
		goto out;
	}
	v->round_dirfd[0] = -1;
	for (i = 0; i < nr; i++)
		v->round_dirfd[nr - i] = fds[i];
	v->top_round = nr;
	v->settled_round = nr;
	nr = 0;
	v->round_path = calloc(v->top_round + 1, sizeof(*v->round_path));
	if (!v->round_path)
		ret = -ENOMEM;
	for (i = 1; !ret && i <= v->top_round; i++)
		ret = view_fd_path(v->round_dirfd[i], &v->round_path[i]);
out:
	for (i = 0; i < nr; i++)
		close(fds[i]);
	free(fds);
	return ret;
}

/* "pagemap-<pid>.img" exactly as PAGEMAP_NAME_FMT prints it. */
static bool pagemap_name_pid(const char *name, uint32_t *pid)
{
	unsigned long long p;
	char buf[64];

	if (strncmp(name, "pagemap-", 8) || !name[8] || !strchr("123456789", name[8]))
		return false;
	p = strtoull(name + 8, NULL, 10);
	if (p > UINT32_MAX)
		return false;
	snprintf(buf, sizeof(buf), PAGEMAP_NAME_FMT, (uint32_t)p);
	*pid = p;
	return !strcmp(buf, name);
}

static int cmp_idx_pid(const void *a, const void *b)
{
	const struct pg_index *x = a, *y = b;

	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

static int view_list_pids(struct stack_view *v)
{
	struct dirent *de;
	size_t cap = 0;
	uint32_t pid;
	DIR *d;
	int ret = 0;

	d = opendirat(v->round_dirfd[v->top_round], ".", 0);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (!pagemap_name_pid(de->d_name, &pid))
			continue;
		if (grow_array(&v->idx, &cap, v->nr_pids, sizeof(*v->idx))) {
			ret = -ENOMEM;
			break;
		}
		v->idx[v->nr_pids++] = (struct pg_index){ .pid = pid };
	}
	closedir(d);
	if (!ret && v->nr_pids)
		qsort(v->idx, v->nr_pids, sizeof(*v->idx), cmp_idx_pid);
	return ret;
}

/* A range of pages a pagemap describes (any flag): what the index tracks. */
struct view_span {
	uint64_t start, end;
};

/* The tracked ranges of @pm, adjacent entries joined. */
static int cover_of(const struct pagemap *pm, struct view_cover *c)
{
	size_t i, cap = 0;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < pm->nr; i++) {
		const struct pm_ext *e = &pm->ext[i];

		if (c->nr && c->s[c->nr - 1].end == e->vaddr) {
			c->s[c->nr - 1].end = pm_end(e);
			continue;
		}
		if (grow_array(&c->s, &cap, c->nr, sizeof(*c->s))) {
			free(c->s);
			memset(c, 0, sizeof(*c));
			return -ENOMEM;
		}
		c->s[c->nr++] = (struct view_span){ e->vaddr, pm_end(e) };
	}
	return 0;
}

/* The first address of [s, e) outside @c's spans, @e if none. */
static uint64_t cover_gap(const struct view_cover *c, uint64_t s, uint64_t e)
{
	size_t lo = 0, hi = c->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->s[mid].end <= s)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == c->nr || c->s[lo].start > s)
		return s;
	return c->s[lo].end < e ? c->s[lo].end : e;
}

/*
 * REMOTE pages (post-copy, docs/image-format.md) have their data nowhere in
 * the stack: nothing here can restore or show them, so they are refused
 * by name rather than read as zero.
 */
static int view_remote(const struct stack_view *v, uint32_t pid, uint32_t round, uint64_t vaddr)
{
	pr_err("%s: pid %u: page %#llx of round %u is REMOTE (post-copy): its data is not in the stack",
	       v->top_dir, pid, (unsigned long long)vaddr, round);
	return -EINVAL;
}

/* REMOTE pages are taken in the top round only, and only if the view was asked to. */
static bool view_remote_ok(const struct stack_view *v, uint32_t round)
{
	return v->remote_ok && round == v->top_round;
}

/* One piece of a pagemap entry: resolved (@done) or still PARENT (@pend). */
static int view_take(const struct stack_view *v, uint32_t pid, const struct pm_ext *e,
		     uint64_t vaddr, uint64_t nr, uint32_t round, struct pg_index *done,
		     struct pg_index *pend)
{
	struct pg_extent x = { vaddr, nr, PG_ROUND_REMOTE, vaddr };

	if (e->flags == PE_FLAGS__PE_REMOTE)
		return view_remote_ok(v, round) ? pg_index_push(done, &x) :
						  view_remote(v, pid, round, vaddr);
	x = (struct pg_extent){ vaddr, nr, 0, 0 };
	if (e->flags == PE_FLAGS__PE_PARENT)
		return pg_index_push(pend, &x);
	if (e->flags == PE_FLAGS__PE_PRESENT) {
		x.round = round;
		x.file_off = e->off + (vaddr - e->vaddr);
	}
	return pg_index_push(done, &x);
}

static void view_hole(const struct stack_view *v, uint32_t pid, uint32_t round, uint64_t vaddr)
{
	pr_err("%s: pid %u: page %#llx is PARENT above round %u, which does not hold it",
	       v->top_dir, pid, (unsigned long long)vaddr, round);
}

/* Resolve the sorted PARENT ranges @pend with round @r's pagemap. */
static int view_resolve_round(const struct stack_view *v, const struct pagemap *pm, uint32_t r,
			      const struct pg_index *pend, struct pg_index *done,
			      struct pg_index *next)
{
	size_t i, j = 0;
	int ret;

	for (i = 0; i < pend->nr; i++) {
		uint64_t cur = pend->ext[i].vaddr, end = pg_ext_end(&pend->ext[i]);

		while (cur < end) {
			const struct pm_ext *e;
			uint64_t stop;

			while (j < pm->nr && pm_end(&pm->ext[j]) <= cur)
				j++;
			if (j == pm->nr || pm->ext[j].vaddr > cur) {
				view_hole(v, pm->pid, r, cur);
				return -EINVAL;
			}
			e = &pm->ext[j];
			stop = min_u64(pm_end(e), end);
			ret = view_take(v, pm->pid, e, cur, (stop - cur) / PAGE_SIZE, r, done,
					next);
			if (ret)
				return ret;
			cur = stop;
		}
	}
	return 0;
}

static int view_load_pagemap(const struct stack_view *v, uint32_t r, uint32_t pid,
			     struct pagemap *pm)
{
	int ret = pagemap_load(v->round_dirfd[r], pid, pm);

	if (ret == -ENOENT) {
		pr_err("%s: pid %u has PARENT pages but round %u has no pagemap for it",
		       v->top_dir, pid, r);
		return -EINVAL;
	}
	if (ret) {
		errno = -ret;
		pr_perror("%s: cannot load pid %u's pagemap of round %u", v->top_dir, pid, r);
		return ret == -ENOMEM ? ret : -EINVAL;
	}
	return 0;
}

static int view_resolve_pid(const struct stack_view *v, struct pg_index *idx,
			    struct view_cover *cover)
{
	struct pg_index done = { 0 }, pend = { 0 }, next = { 0 }, empty = { .pid = idx->pid };
	struct pagemap pm = { 0 };
	uint32_t r = v->top_round;
	size_t i;
	int ret;

	ret = view_load_pagemap(v, r, idx->pid, &pm);
	if (!ret)
		ret = cover_of(&pm, cover);
	if (ret) {
		pagemap_free(&pm);
		return ret;
	}
	for (i = 0; !ret && i < pm.nr; i++)
		ret = view_take(v, idx->pid, &pm.ext[i], pm.ext[i].vaddr, pm.ext[i].nr_pages, r,
				&done, &pend);
	pagemap_free(&pm);
	while (!ret && pend.nr) {
		if (--r == 0) {
			view_hole(v, idx->pid, 1, pend.ext[0].vaddr);
			ret = -EINVAL;
			break;
		}
		ret = view_load_pagemap(v, r, idx->pid, &pm);
		if (ret)
			break;
		next.nr = 0;
		ret = view_resolve_round(v, &pm, r, &pend, &done, &next);
		pagemap_free(&pm);
		idx_swap(&pend, &next);
	}
	if (!ret) {
		/* Pieces are disjoint; sorting makes them an index, overlay merges runs. */
		qsort(done.ext, done.nr, sizeof(*done.ext), pg_ext_cmp_vaddr);
		ret = pg_index_overlay(&empty, done.ext, done.nr, NULL, NULL, idx);
	}
	pg_index_free(&done);
	pg_index_free(&pend);
	pg_index_free(&next);
	return ret;
}

/* top and cover beside idx: one per pid slot. */
static int view_alloc_slots(struct stack_view *v)
{
	size_t i;

	v->top = calloc(v->nr_pids ? v->nr_pids : 1, sizeof(*v->top));
	v->cover = calloc(v->nr_pids ? v->nr_pids : 1, sizeof(*v->cover));
	if (!v->top || !v->cover)
		return -ENOMEM;
	for (i = 0; i < v->nr_pids; i++)
		v->top[i].pid = v->idx[i].pid;
	return 0;
}

/* pages_fd for every pid slot and round, none open. */
static int view_alloc_fds(struct stack_view *v)
{
	size_t i, n = v->nr_pids * (v->top_round + 1);

	v->pages_fd = malloc((n ? n : 1) * sizeof(int));
	if (!v->pages_fd)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		v->pages_fd[i] = -1;
	return 0;
}

static void view_close_fds(struct stack_view *v)
{
	size_t i;

	if (v->pages_fd)
		for (i = 0; i < v->nr_pids * (v->top_round + 1); i++)
			if (v->pages_fd[i] >= 0)
				close(v->pages_fd[i]);
	free(v->pages_fd);
	v->pages_fd = NULL;
}

int stack_view_open(const char *round_dir, struct stack_view *v)
{
	return stack_view_open_remote(round_dir, false, v);
}

int stack_view_open_remote(const char *round_dir, bool remote_ok, struct stack_view *v)
{
	size_t i;
	int ret;

	memset(v, 0, sizeof(*v));
	v->remote_ok = remote_ok;
	v->top_dir = strdup(round_dir);
	if (!v->top_dir)
		return -ENOMEM;
	ret = view_open_chain(v);
	if (ret)
		goto err;
	ret = view_list_pids(v);
	if (!ret)
		ret = view_alloc_slots(v);
	for (i = 0; !ret && i < v->nr_pids; i++)
		ret = view_resolve_pid(v, &v->idx[i], &v->cover[i]);
	if (!ret)
		ret = view_alloc_fds(v);
	if (ret)
		goto err;
	return 0;
err:
	stack_view_close(v);
	return ret;
}

static bool idx_has_remote(const struct pg_index *idx)
{
	size_t i;

	for (i = 0; idx && i < idx->nr; i++)
		if (idx->ext[i].round == PG_ROUND_REMOTE)
			return true;
	return false;
}

bool stack_view_has_remote(const struct stack_view *v)
{
	size_t i;

	for (i = 0; v->remote_ok && i < v->nr_pids; i++)
		if (idx_has_remote(&v->idx[i]) || (v->top && idx_has_remote(&v->top[i])))
			return true;
	return false;
}

int stack_view_pages_fd(struct stack_view *v, uint32_t pid, uint32_t round)
{
	char name[64];
	bool found;
	size_t slot;
	int *fd;

	slot = pg_pid_slot(v->idx, v->nr_pids, sizeof(*v->idx), pid, &found);
	if (!found || !round || round > v->top_round)
		return -ENOENT;
	fd = &v->pages_fd[slot * (v->top_round + 1) + round];
	if (*fd < 0) {
		snprintf(name, sizeof(name), PAGES_NAME_FMT, pid);
		*fd = openat(v->round_dirfd[round], name, O_RDONLY | O_CLOEXEC);
		if (*fd < 0)
			return -errno;
	}
	return *fd;
}

const struct pg_index *stack_view_index(const struct stack_view *v, uint32_t pid)
{
	bool found;
	size_t slot = pg_pid_slot(v->idx, v->nr_pids, sizeof(*v->idx), pid, &found);

	return found && v->settled_round == v->top_round ? &v->idx[slot] : NULL;
}

int stack_view_pages_path(const struct stack_view *v, uint32_t pid, uint32_t round, char *buf,
			  size_t len)
{
	if (!round || round > v->top_round)
		return -ENOENT;
	if ((size_t)snprintf(buf, len, "%s/" PAGES_NAME_FMT, v->round_path[round], pid) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* --- walking the view: the top's changes over the settled index --- */

struct walk_gap {
	const struct pg_index *idx;
	pg_walk_fn fn;
	void *arg;
};

int stack_view_walk(const struct stack_view *v, uint32_t pid, uint64_t start, uint64_t end,
		    bool top_only, pg_walk_fn fn, void *arg)
{
	const struct pg_index *top, *idx;
	uint64_t cur = start;
	bool found;
	size_t slot, j;
	int ret = 0;

	slot = pg_pid_slot(v->idx, v->nr_pids, sizeof(*v->idx), pid, &found);
	if (!found || start >= end)
		return 0;
	top = &v->top[slot];
	idx = &v->idx[slot];
	if (top_only)
		return pg_index_walk(top, start, end, fn, arg);
	/* the settled index between the top's runs, the top's runs over it */
	for (j = pg_index_lower(top, start); !ret && cur < end; j++) {
		uint64_t next = j < top->nr && top->ext[j].vaddr < end ? top->ext[j].vaddr : end;
		struct pg_extent e;

		if (next > cur)
			ret = pg_index_walk(idx, cur, next, fn, arg);
		if (ret || next == end)
			break;
		pg_ext_clip(&top->ext[j], start, end, &e);
		ret = fn(arg, &e);
		cur = pg_ext_end(&e);
	}
	return ret;
}

int stack_view_settle(struct stack_view *v)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < v->nr_pids && !ret; i++) {
		if (v->top[i].nr)
			ret = pg_index_apply(&v->idx[i], v->top[i].ext, v->top[i].nr, NULL, NULL);
		if (!ret)
			v->top[i].nr = 0;
	}
	if (!ret)
		v->settled_round = v->top_round;
	return ret;
}

/* --- advancing the view by one round --- */

/* Append @e to @t, joined to the last run if it continues it. */
static int top_push(struct pg_index *t, const struct pg_extent *e)
{
	struct pg_extent *last = t->nr ? &t->ext[t->nr - 1] : NULL;

	if (last && pg_ext_continues(last, e)) {
		last->nr_pages += e->nr_pages;
		return 0;
	}
	return pg_index_push(t, e);
}

/* Zero pieces of a ZERO entry: only where the settled index has data or nothing. */
struct zero_ctx {
	struct pg_index *t;
	uint64_t cur;		/* first page not looked at yet */
};

static int zero_piece(void *arg, const struct pg_extent *e)
{
	struct zero_ctx *z = arg;
	struct pg_extent x = { z->cur, (e->vaddr - z->cur) / PAGE_SIZE, 0, 0 };
	int ret = 0;

	if (x.nr_pages)
		ret = top_push(z->t, &x);	/* untracked until now */
	if (!ret && e->round) {
		x = (struct pg_extent){ e->vaddr, e->nr_pages, 0, 0 };
		ret = top_push(z->t, &x);
	}
	z->cur = pg_ext_end(e);
	return ret;
}

/*
 * What round @r's pagemap @pm changes over the settled index @idx, into
 * @t; its PARENT runs must lie where the round below tracked pages (@old).
 */
static int view_top_changes(const struct stack_view *v, const struct pagemap *pm, uint32_t r,
			    const struct pg_index *idx, const struct view_cover *old,
			    struct pg_index *t)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < pm->nr && !ret; i++) {
		const struct pm_ext *e = &pm->ext[i];
		struct pg_extent x = { e->vaddr, e->nr_pages, r, e->off };
		struct zero_ctx z = { t, e->vaddr };

		if (e->flags == PE_FLAGS__PE_PARENT) {
			uint64_t gap = cover_gap(old, e->vaddr, pm_end(e));

			if (gap < pm_end(e)) {
				view_hole(v, pm->pid, r - 1, gap);
				ret = -EINVAL;
			}
		} else if (e->flags == PE_FLAGS__PE_PRESENT) {
			ret = top_push(t, &x);
		} else if (e->flags == PE_FLAGS__PE_REMOTE) {
			x = (struct pg_extent){ e->vaddr, e->nr_pages, PG_ROUND_REMOTE, e->vaddr };
			ret = v->remote_ok ? top_push(t, &x) : view_remote(v, pm->pid, r, e->vaddr);
		} else {
			ret = pg_index_walk(idx, e->vaddr, pm_end(e), zero_piece, &z);
			if (!ret && z.cur < pm_end(e))
				ret = zero_piece(&z, &(struct pg_extent){ pm_end(e), 0, 0, 0 });
		}
	}
	return ret;
}

/* Every range @old tracked is tracked by @cur still (pages are never dropped). */
static bool cover_keeps(const struct view_cover *old, const struct view_cover *cur)
{
	size_t i;

	for (i = 0; i < old->nr; i++)
		if (cover_gap(cur, old->s[i].start, old->s[i].end) < old->s[i].end)
			return false;
	return true;
}

/* The new round's directory: its parent link must lead to our top. */
static int view_open_next(struct stack_view *v, const char *round_dir, int *out)
{
	struct stat a, b;
	uint32_t named = view_dir_round(round_dir);
	int fd, pfd, ret = 0;

	fd = open(round_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_perror("cannot open round directory %s", round_dir);
		return ret;
	}
	pfd = openat(fd, "parent", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0 || fstat(pfd, &a) || fstat(v->round_dirfd[v->top_round], &b) ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino ||
	    (named && named != v->top_round + 1)) {
		pr_err("%s: not the round above %s (parent link, or its number)", round_dir,
		       v->top_dir);
		ret = -EINVAL;
	}
	if (pfd >= 0)
		close(pfd);
	if (ret)
		close(fd);
	else
		*out = fd;
	return ret;
}

/*
 * Round @fd on top. Everything is allocated before the view changes: on
 * failure it keeps its top (and top_dir, which callers test to know a view
 * is open and must be closed).
 */
static int view_grow_rounds(struct stack_view *v, int fd, const char *round_dir)
{
	size_t n = v->top_round + 2;
	char *top = strdup(round_dir), *path = NULL, **paths;
	int *fds, ret;

	if (!top)
		return -ENOMEM;
	ret = view_fd_path(fd, &path);
	if (ret)
		goto err;
	ret = -ENOMEM;
	fds = realloc(v->round_dirfd, n * sizeof(*fds));
	if (!fds)
		goto err;
	v->round_dirfd = fds;
	paths = realloc(v->round_path, n * sizeof(*paths));
	if (!paths)
		goto err;
	v->round_path = paths;
	v->round_path[n - 1] = path;
	v->round_dirfd[n - 1] = fd;
	v->top_round++;
	free(v->top_dir);
	v->top_dir = top;
	return 0;
err:
	free(path);
	free(top);
	return ret;
}

int stack_view_advance(struct stack_view *v, const char *round_dir)
{
	struct stack_view nv = { 0 };
	uint32_t r = v->top_round + 1;
	size_t i;
	int fd = -1, ret;

	ret = stack_view_settle(v);
	if (!ret)
		ret = view_open_next(v, round_dir, &fd);
	if (ret)
		return ret;
	view_close_fds(v);
	ret = view_grow_rounds(v, fd, round_dir);
	if (ret) {
		close(fd);	/* not the view's: it kept its top */
		return ret;
	}
	/* the new round's pids, each with its index carried over (or a new one) */
	nv.round_dirfd = v->round_dirfd;
	nv.top_round = r;
	ret = view_list_pids(&nv);
	if (!ret)
		ret = view_alloc_slots(&nv);
	for (i = 0; !ret && i < nv.nr_pids; i++) {
		uint32_t pid = nv.idx[i].pid;
		struct view_cover none = { 0 }, *old = &none;
		struct pagemap pm = { 0 };
		bool found;
		size_t k = pg_pid_slot(v->idx, v->nr_pids, sizeof(*v->idx), pid, &found);

		if (found) {
			nv.idx[i] = v->idx[k];
			v->idx[k] = (struct pg_index){ .pid = pid };
			old = &v->cover[k];
		}
		ret = view_load_pagemap(v, r, pid, &pm);
		if (ret)
			break;
		ret = cover_of(&pm, &nv.cover[i]);
		if (!ret && !cover_keeps(old, &nv.cover[i])) {
			pr_err("%s: pid %u: the round drops pages the round below tracked",
			       round_dir, pid);
			ret = -EINVAL;
		}
		if (!ret)
			ret = view_top_changes(v, &pm, r, &nv.idx[i], old, &nv.top[i]);
		pagemap_free(&pm);
	}
	/* the old slots go (pids the new round no longer has with them) */
	for (i = 0; i < v->nr_pids; i++) {
		pg_index_free(&v->idx[i]);
		pg_index_free(&v->top[i]);
		free(v->cover[i].s);
	}
	free(v->idx);
	free(v->top);
	free(v->cover);
	v->idx = nv.idx;
	v->top = nv.top;
	v->cover = nv.cover;
	v->nr_pids = nv.nr_pids;
	v->settled_round = r - 1;
	if (!ret)
		ret = view_alloc_fds(v);
	return ret;
}


void stack_view_close(struct stack_view *v)
{
	size_t i;

	view_close_fds(v);
	if (v->round_dirfd)
		for (i = 1; i <= v->top_round; i++)
			if (v->round_dirfd[i] >= 0)
				close(v->round_dirfd[i]);
	if (v->round_path)
		for (i = 1; i <= v->top_round; i++)
			free(v->round_path[i]);
	for (i = 0; i < v->nr_pids; i++) {
		pg_index_free(&v->idx[i]);
		if (v->top)
			pg_index_free(&v->top[i]);
		if (v->cover)
			free(v->cover[i].s);
	}
	free(v->idx);
	free(v->top);
	free(v->cover);
	free(v->round_path);
	free(v->round_dirfd);
	free(v->top_dir);
	memset(v, 0, sizeof(*v));
}
