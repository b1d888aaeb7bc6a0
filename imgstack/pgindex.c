// SPDX-License-Identifier: MIT
/*
 * Page index arithmetic: which round holds each page of a pid, kept as
 * sorted extents. A newer round's extents are overlaid onto the index; the
 * pieces of older extents they replace are reported so that their bytes can
 * be punched out of the older pages files.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "imgstack/pgindex.h"

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Drop the first @n pages of @e (its file offset moves along with them). */
static void ext_skip(struct pg_extent *e, uint64_t n)
{
	e->vaddr += n * PAGE_SIZE;
	e->nr_pages -= n;
	if (e->round)
		e->file_off += n * PAGE_SIZE;
}

/* Append to @out (room guaranteed by the caller), merging with the last run. */
static void ext_push(struct pg_index *out, const struct pg_extent *e)
{
	struct pg_extent *last = out->nr ? &out->ext[out->nr - 1] : NULL;

	if (last && pg_ext_continues(last, e)) {
		last->nr_pages += e->nr_pages;
		return;
	}
	out->ext[out->nr] = *e;
	if (!e->round)
		out->ext[out->nr].file_off = 0;
	out->nr++;
}

static int check_updates(const struct pg_extent *upd, size_t nr)
{
	uint64_t prev_end = 0;
	size_t i;

	for (i = 0; i < nr; i++) {
		const struct pg_extent *u = &upd[i];

		if (!u->nr_pages || u->vaddr % PAGE_SIZE ||
		    u->nr_pages > (UINT64_MAX - u->vaddr) / PAGE_SIZE ||
		    (u->round && u->file_off % PAGE_SIZE)) {
			pr_err("page index: bad extent %#llx+%llu pages",
			       (unsigned long long)u->vaddr, (unsigned long long)u->nr_pages);
			return -EINVAL;
		}
		if (i && u->vaddr < prev_end) {
			pr_err("page index: extent %#llx unsorted or overlapping",
			       (unsigned long long)u->vaddr);
			return -EINVAL;
		}
		prev_end = pg_ext_end(u);
	}
	return 0;
}

/* Coalesces consecutive punches that continue each other in one file. */
struct punch_acc {
	pg_punch_fn fn;
	void *arg;
	uint32_t pid;
	uint32_t round;
	uint64_t off, len;	/* pending range, len 0: none */
};

static int punch_flush(struct punch_acc *p)
{
	int ret = 0;

	if (p->len)
		ret = p->fn(p->arg, p->pid, p->round, p->off, p->len);
	p->len = 0;
	return ret;
}

static int punch_add(struct punch_acc *p, const struct pg_extent *e, uint64_t n)
{
	uint64_t len = n * PAGE_SIZE;
	int ret;

	if (!p->fn || !e->round)
		return 0;
	if (p->len && p->round == e->round && p->off + p->len == e->file_off) {
		p->len += len;
		return 0;
	}
	ret = punch_flush(p);
	p->round = e->round;
	p->off = e->file_off;
	p->len = len;
	return ret;
}

/*
 * Copy old->ext[*i..) that end at or before @ustart to @out as a block: an
 * update among millions of extents costs a binary search and a memcpy,
 * not a step per extent it skips. The old extents are merged among
 * themselves already; only the first may continue @out's last run.
 */
static void copy_before(const struct pg_index *old, size_t *i, uint64_t ustart,
			struct pg_index *out)
{
	size_t k = pg_index_lower(old, ustart), n;

	if (k <= *i)
		return;
	ext_push(out, &old->ext[(*i)++]);
	n = k - *i;
	memcpy(&out->ext[out->nr], &old->ext[*i], n * sizeof(*out->ext));
	out->nr += n;
	*i = k;
}

/*
 * Emit the old pieces before @u, report the pieces @u covers, keep what
 * sticks out past its end in @cur for the next update.
 */
static int overlay_one(const struct pg_index *old, size_t *i, struct pg_extent *cur,
		       bool *have_cur, const struct pg_extent *u, struct punch_acc *pa,
		       struct pg_index *out)
{
	uint64_t ustart = u->vaddr, uend = pg_ext_end(u);
	int ret;

	if (!*have_cur)
		copy_before(old, i, ustart, out);
	while (*have_cur || *i < old->nr) {
		uint64_t n;

		if (!*have_cur) {
			*cur = old->ext[(*i)++];
			*have_cur = true;
		}
		if (pg_ext_end(cur) <= ustart) {
			ext_push(out, cur);
			*have_cur = false;
			continue;
		}
		if (cur->vaddr >= uend)
			break;
		if (cur->vaddr < ustart) {
			struct pg_extent head = *cur;

			head.nr_pages = (ustart - cur->vaddr) / PAGE_SIZE;
			ext_push(out, &head);
			ext_skip(cur, head.nr_pages);
		}
		n = (min_u64(pg_ext_end(cur), uend) - cur->vaddr) / PAGE_SIZE;
		ret = punch_add(pa, cur, n);
		if (ret)
			return ret;
		ext_skip(cur, n);
		if (cur->nr_pages)
			break;
		*have_cur = false;
	}
	ext_push(out, u);
	return 0;
}

int pg_index_overlay(const struct pg_index *old, const struct pg_extent *upd, size_t nr_upd,
		     pg_punch_fn punch, void *arg, struct pg_index *out)
{
	struct punch_acc pa = { .fn = punch, .arg = arg, .pid = old->pid };
	struct pg_extent cur;
	bool have_cur = false;
	size_t i = 0, j, cap;
	int ret;

	memset(out, 0, sizeof(*out));
	out->pid = old->pid;
	ret = check_updates(upd, nr_upd);
	if (ret)
		return ret;
	/* Each update adds itself and splits at most one old extent in two. */
	cap = old->nr + 2 * nr_upd;
	out->ext = malloc((cap ? cap : 1) * sizeof(*out->ext));
	if (!out->ext)
		return -ENOMEM;
	out->cap = cap;

	for (j = 0; j < nr_upd; j++) {
		ret = overlay_one(old, &i, &cur, &have_cur, &upd[j], &pa, out);
		if (ret)
			goto err;
	}
	if (have_cur)
		ext_push(out, &cur);
	while (i < old->nr)
		ext_push(out, &old->ext[i++]);
	ret = punch_flush(&pa);
	if (ret)
		goto err;
	return 0;
err:
	pg_index_free(out);
	return ret;
}

int pg_index_apply(struct pg_index *idx, const struct pg_extent *upd, size_t nr_upd,
		   pg_punch_fn punch, void *arg)
{
	struct pg_index out;
	int ret;

	ret = pg_index_overlay(idx, upd, nr_upd, punch, arg, &out);
	if (ret)
		return ret;
	pg_index_free(idx);
	*idx = out;
	return 0;
}

/* A replaced piece of an older extent, for pg_index_replaced's walk. */
static int replaced_piece(void *arg, const struct pg_extent *e)
{
	return punch_add(arg, e, e->nr_pages);
}

int pg_index_replaced(const struct pg_index *idx, const struct pg_extent *upd, size_t nr_upd,
		      pg_punch_fn punch, void *arg)
{
	struct punch_acc pa = { .fn = punch, .arg = arg, .pid = idx->pid };
	size_t j;
	int ret;

	ret = check_updates(upd, nr_upd);
	for (j = 0; !ret && j < nr_upd; j++)
		ret = pg_index_walk(idx, upd[j].vaddr, pg_ext_end(&upd[j]), replaced_piece, &pa);
	return ret ? ret : punch_flush(&pa);
}

int pg_index_cover(const struct pg_extent *e, size_t nr, struct pg_index *out)
{
	size_t i;
	int ret = 0;

	out->nr = 0;
	for (i = 0; !ret && i < nr; i++) {
		struct pg_extent *last = out->nr ? &out->ext[out->nr - 1] : NULL;

		if (last && pg_ext_end(last) == e[i].vaddr) {
			last->nr_pages += e[i].nr_pages;
			continue;
		}
		ret = pg_index_push(out, &(struct pg_extent){ e[i].vaddr, e[i].nr_pages, 0, 0 });
	}
	return ret;
}

size_t pg_index_lower(const struct pg_index *idx, uint64_t vaddr)
{
	size_t lo = 0, hi = idx->nr;

	/* extents do not overlap: their ends are sorted too */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (pg_ext_end(&idx->ext[mid]) <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct pg_extent *pg_index_find(const struct pg_index *idx, uint64_t vaddr)
{
	size_t i = pg_index_lower(idx, vaddr);

	if (i == idx->nr || idx->ext[i].vaddr > vaddr)
		return NULL;
	return &idx->ext[i];
}

int pg_index_walk(const struct pg_index *idx, uint64_t start, uint64_t end, pg_walk_fn fn,
		  void *arg)
{
	size_t i;
	int ret = 0;

	for (i = pg_index_lower(idx, start); !ret && i < idx->nr && idx->ext[i].vaddr < end; i++) {
		struct pg_extent e;

		pg_ext_clip(&idx->ext[i], start, end, &e);
		ret = fn(arg, &e);
	}
	return ret;
}

int pg_index_push(struct pg_index *v, const struct pg_extent *e)
{
	if (grow_array(&v->ext, &v->cap, v->nr, sizeof(*v->ext)))
		return -ENOMEM;
	v->ext[v->nr++] = *e;
	return 0;
}

int pg_ext_cmp_vaddr(const void *a, const void *b)
{
	const struct pg_extent *x = a, *y = b;

	return x->vaddr < y->vaddr ? -1 : x->vaddr > y->vaddr;
}

/* Indexes are found in their arrays by it too. */
_Static_assert(offsetof(struct pg_index, pid) == 0, "pid first");

size_t pg_pid_slot(const void *arr, size_t nr, size_t size, uint32_t pid, bool *found)
{
	size_t lo = 0, hi = nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t p = *(const uint32_t *)((const char *)arr + mid * size);

		if (p < pid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < nr && *(const uint32_t *)((const char *)arr + lo * size) == pid;
	return lo;
}

void pg_index_free(struct pg_index *idx)
{
	free(idx->ext);
	memset(idx, 0, sizeof(*idx));
}
