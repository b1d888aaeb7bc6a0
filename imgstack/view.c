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
	nr = 0;
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

/* One piece of a pagemap entry: resolved (@done) or still PARENT (@pend). */
static int view_take(const struct pm_ext *e, uint64_t vaddr, uint64_t nr, uint32_t round,
		     struct pg_index *done, struct pg_index *pend)
{
	struct pg_extent x = { vaddr, nr, 0, 0 };

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
			ret = view_take(e, cur, (stop - cur) / PAGE_SIZE, r, done, next);
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

static int view_resolve_pid(const struct stack_view *v, struct pg_index *idx)
{
	struct pg_index done = { 0 }, pend = { 0 }, next = { 0 }, empty = { .pid = idx->pid };
	struct pagemap pm;
	uint32_t r = v->top_round;
	size_t i;
	int ret;

	ret = view_load_pagemap(v, r, idx->pid, &pm);
	if (ret)
		return ret;
	for (i = 0; !ret && i < pm.nr; i++)
		ret = view_take(&pm.ext[i], pm.ext[i].vaddr, pm.ext[i].nr_pages, r, &done, &pend);
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

int stack_view_open(const char *round_dir, struct stack_view *v)
{
	size_t i, n;
	int ret;

	memset(v, 0, sizeof(*v));
	v->top_dir = strdup(round_dir);
	if (!v->top_dir)
		return -ENOMEM;
	ret = view_open_chain(v);
	if (ret)
		goto err;
	ret = view_list_pids(v);
	for (i = 0; !ret && i < v->nr_pids; i++)
		ret = view_resolve_pid(v, &v->idx[i]);
	if (ret)
		goto err;
	n = v->nr_pids * (v->top_round + 1);
	v->pages_fd = malloc((n ? n : 1) * sizeof(int));
	if (!v->pages_fd) {
		ret = -ENOMEM;
		goto err;
	}
	for (i = 0; i < n; i++)
		v->pages_fd[i] = -1;
	return 0;
err:
	stack_view_close(v);
	return ret;
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

	return found ? &v->idx[slot] : NULL;
}

void stack_view_close(struct stack_view *v)
{
	size_t i;

	if (v->pages_fd)
		for (i = 0; i < v->nr_pids * (v->top_round + 1); i++)
			if (v->pages_fd[i] >= 0)
				close(v->pages_fd[i]);
	if (v->round_dirfd)
		for (i = 1; i <= v->top_round; i++)
			close(v->round_dirfd[i]);
	for (i = 0; i < v->nr_pids; i++)
		pg_index_free(&v->idx[i]);
	free(v->idx);
	free(v->pages_fd);
	free(v->round_dirfd);
	free(v->top_dir);
	memset(v, 0, sizeof(*v));
}
