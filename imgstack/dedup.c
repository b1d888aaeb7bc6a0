// SPDX-License-Identifier: MIT
/*
 * Offline dedup: every round below the top of a stack loses the data the
 * top resolves elsewhere (imgstack/punch.c does the punching). Built on the
 * view; nothing below (view, writer) calls it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "imgstack/dedup.h"
#include "imgstack/punch.h"
#include "imgstack/view.h"
#include "proto/image.h"

/*
 * Round @r's PRESENT pages that the top resolves to another round (newer
 * data, or zero): nobody reads them any more. Pages the top does not track
 * at all are kept.
 */
static int dedup_round_pid(const struct stack_view *v, uint32_t r, const struct pg_index *idx,
			   struct punch_list *pl)
{
	struct pagemap pm;
	size_t i, j = 0;
	int ret;

	ret = pagemap_load(v->round_dirfd[r], idx->pid, &pm);
	if (ret == -ENOENT)
		return 0;
	if (ret) {
		pr_err("%s: pid %u's pagemap of round %u is unreadable", v->top_dir, idx->pid, r);
		return ret;
	}
	for (i = 0; !ret && i < pm.nr; i++) {
		const struct pm_ext *e = &pm.ext[i];
		uint64_t end = e->vaddr + e->nr_pages * PAGE_SIZE;
		size_t k;

		if (e->flags != PE_FLAGS__PE_PRESENT)
			continue;
		while (j < idx->nr && pg_ext_end(&idx->ext[j]) <= e->vaddr)
			j++;
		for (k = j; !ret && k < idx->nr && idx->ext[k].vaddr < end; k++) {
			const struct pg_extent *x = &idx->ext[k];
			uint64_t a = x->vaddr > e->vaddr ? x->vaddr : e->vaddr;
			uint64_t b = pg_ext_end(x) < end ? pg_ext_end(x) : end;
			uint64_t off = e->off + (a - e->vaddr);

			if (x->round != r)
				ret = punch_list_add(pl, idx->pid, r, off, b - a);
		}
	}
	pagemap_free(&pm);
	return ret;
}

static int dedup_view(const struct stack_view *v, int stack_dirfd, uint64_t *bytes)
{
	struct punch_list pl = { 0 };
	uint32_t r;
	size_t i;
	int ret = 0;

	/* One round at a time keeps the list small. */
	for (r = 1; !ret && r < v->top_round; r++) {
		for (i = 0; !ret && i < v->nr_pids; i++)
			ret = dedup_round_pid(v, r, &v->idx[i], &pl);
		if (!ret)
			ret = punch_list_run(&pl, stack_dirfd, bytes);
		pl.nr = 0;
	}
	punch_list_free(&pl);
	return ret;
}

int stack_dedup(const char *stack_dir, uint64_t *bytes_punched)
{
	struct stack_view v;
	char path[PATH_MAX];
	uint32_t top;
	int fd, ret;

	*bytes_punched = 0;
	fd = open(stack_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_perror("cannot open stack %s", stack_dir);
		return ret;
	}
	/* The writer holds this lock: never dedup under a live session. */
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		pr_err("%s is in use by a writer", stack_dir);
		goto out;
	}
	ret = stack_find_top(fd, &top);
	if (ret)
		goto out;
	if (!top) {
		pr_err("%s holds no complete round", stack_dir);
		ret = -ENOENT;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%u", stack_dir, top);
	ret = stack_view_open(path, &v);
	if (ret)
		goto out;
	ret = dedup_view(&v, fd, bytes_punched);
	if (!ret)
		pr_info("%s: dedup freed %llu bytes below round %u", stack_dir,
			(unsigned long long)*bytes_punched, top);
	stack_view_close(&v);
out:
	close(fd);
	return ret;
}
