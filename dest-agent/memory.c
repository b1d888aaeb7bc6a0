// SPDX-License-Identifier: MIT
/*
 * What the restorer maps and fills. Anonymous private memory (the bulk of a
 * process) can be filled while the source still runs: round by round, each
 * round's pagemap says what changed (restore --stream). Everything else
 * (file mappings with their copied-on-write pages, the stack, ...) is mapped
 * and filled at the end from the whole stack.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/log.h"
#include "common/util.h"
#include "dest-agent/restore.h"
#include "proto/image.h"

bool vma_prefilled(const VmaEntry *v)
{
	/* MAP_DROPPABLE is mapped with its own type at the final round */
	return (v->kind == VMA_KIND__VMA_ANON || v->kind == VMA_KIND__VMA_HEAP) &&
	       !(v->flags & MAP_SHARED) && (v->flags & MAP_TYPE) != MAP_DROPPABLE;
}

int prefill_ranges(const MmEntry *mm, struct ranges *out)
{
	size_t i;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < mm->n_vmas && !ret; i++)
		if (vma_prefilled(mm->vmas[i]))
			ret = ranges_add(out, mm->vmas[i]->start, mm->vmas[i]->end);
	if (ret)
		ranges_free(out);
	return ret;
}

/* Call @fn for each piece of [s, e) inside @in. */
static int clip(const struct ranges *in, uint64_t s, uint64_t e,
		int (*fn)(void *arg, uint64_t s, uint64_t e, uint64_t skip), void *arg)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < in->nr && !ret; i++) {
		uint64_t cs = s > in->r[i].start ? s : in->r[i].start;
		uint64_t ce = e < in->r[i].end ? e : in->r[i].end;

		if (cs < ce)
			ret = fn(arg, cs, ce, cs - s);
	}
	return ret;
}

struct fill_ctx {
	struct ops *o;
	const char *path;	/* pages file, NULL: zero pages */
	uint64_t off;
	uint32_t zero_op;	/* DISCARD (anonymous) or ZERO (file pages) */
};

static int fill_piece(void *arg, uint64_t s, uint64_t e, uint64_t skip)
{
	struct fill_ctx *c = arg;

	if (!c->path)
		return c->zero_op ? ops_add(c->o, c->zero_op, s, e - s) : 0;
	return ops_add_read(c->o, s, e - s, c->path, c->off + skip);
}

static void pages_path(char *buf, size_t len, const char *round_dir, uint32_t pid)
{
	snprintf(buf, len, "%s/" PAGES_NAME_FMT, round_dir, pid);
}

int ops_round_delta(struct ops *o, const char *round_dir, uint32_t pid, const struct ranges *in)
{
	char path[PATH_MAX + 64];
	struct pagemap pm;
	size_t i;
	int dirfd, ret;

	dirfd = open(round_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	ret = pagemap_load(dirfd, pid, &pm);
	close(dirfd);
	if (ret)
		return ret;
	pages_path(path, sizeof(path), round_dir, pid);
	for (i = 0; i < pm.nr && !ret; i++) {
		const struct pm_ext *e = &pm.ext[i];
		struct fill_ctx c = { o, path, e->off, RST_OP_DISCARD };

		if (e->flags == PE_FLAGS__PE_PARENT)
			continue;
		if (e->flags == PE_FLAGS__PE_ZERO)
			c.path = NULL;
		ret = clip(in, e->vaddr, e->vaddr + e->nr_pages * PAGE_SIZE, fill_piece, &c);
	}
	pagemap_free(&pm);
	return ret;
}

/* Absolute path of the pages file of @round in the view. */
static void view_pages_path(struct stack_view *sv, uint32_t pid, uint32_t round, char *buf,
			    size_t len)
{
	char link[64], dir[PATH_MAX];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", sv->round_dirfd[round]);
	n = readlink(link, dir, sizeof(dir) - 1);
	dir[n > 0 ? n : 0] = 0;
	pages_path(buf, len, dir, pid);
}

/*
 * Every extent of @pid's page index that @in wants, as operations. The
 * pages file's path is resolved once per round (a stack of scattered
 * writes over many rounds alternates rounds at nearly every extent: one
 * readlink each made a final restore cost seconds).
 */
static int view_fill(struct ops *o, struct stack_view *sv, uint32_t pid, const struct ranges *in,
		     uint32_t zero_op)
{
	const struct pg_index *idx = stack_view_index(sv, pid);
	char path[PATH_MAX + 64], **paths;
	size_t i;
	int ret = 0;

	paths = calloc(sv->top_round + 1, sizeof(*paths));
	if (!paths)
		return -ENOMEM;
	for (i = 0; idx && i < idx->nr && !ret; i++) {
		const struct pg_extent *e = &idx->ext[i];
		struct fill_ctx c = { o, NULL, e->file_off, zero_op };

		if (e->round && e->round <= sv->top_round && !paths[e->round]) {
			view_pages_path(sv, pid, e->round, path, sizeof(path));
			paths[e->round] = strdup(path);
			if (!paths[e->round])
				ret = -ENOMEM;
		}
		if (e->round)
			c.path = e->round <= sv->top_round ? paths[e->round] : NULL;
		if (!ret && e->round && !c.path)
			ret = -EINVAL;	/* an index naming a round the view lacks */
		if (!ret)
			ret = clip(in, e->vaddr, pg_ext_end(e), fill_piece, &c);
	}
	for (i = 0; i <= sv->top_round; i++)
		free(paths[i]);
	free(paths);
	return ret;
}

int ops_full_fill(struct ops *o, struct stack_view *sv, uint32_t pid, const struct ranges *in,
		  bool discard_zero)
{
	return view_fill(o, sv, pid, in, discard_zero ? RST_OP_DISCARD : 0);
}

static int map_vma(struct ops *o, const VmaEntry *v, const struct shm_table *shm)
{
	char path[64];
	uint32_t prot = v->prot;
	int ret;

	if (v->has_shmid) {
		/* shared memory: its object's memfd, at the VMA's offset in it */
		ret = shm_path(shm, v->shmid, path, sizeof(path));
		if (!ret)
			ret = ops_add(o, RST_OP_MAP, v->start, v->end - v->start);
		if (ret)
			return ret;
		/*
		 * Its pages are in the memfd already; a write-sealed one maps as
		 * it was. A private map is filled next with its copied pages.
		 */
		if (!(v->flags & MAP_SHARED) || !shm_write_sealed(shm, v->shmid))
			prot |= PROT_READ | PROT_WRITE;
		o->op[o->nr - 1].prot = prot;
		o->op[o->nr - 1].flags = v->flags & ~MAP_ANONYMOUS;
		o->op[o->nr - 1].off = v->pgoff;
		o->op[o->nr - 1].open_flags = O_RDWR;
		return ops_set_path(o, path);
	}

	/* filled next: private and anonymous maps are writable for now */
	if (!(v->flags & MAP_SHARED) || v->kind != VMA_KIND__VMA_FILE)
		prot |= PROT_READ | PROT_WRITE;
	ret = ops_add(o, RST_OP_MAP, v->start, v->end - v->start);
	if (ret)
		return ret;
	o->op[o->nr - 1].prot = prot;
	o->op[o->nr - 1].flags = v->flags;
	if (v->kind != VMA_KIND__VMA_FILE)
		return 0;
	o->op[o->nr - 1].off = v->pgoff;
	o->op[o->nr - 1].open_flags = v->has_open_flags ? v->open_flags : O_RDONLY;
	return ops_set_path(o, v->path);
}

/* madvise flags of @v again (DONTFORK, WIPEONFORK, [NO]HUGEPAGE, DONTDUMP) */
static int ops_add_advice(struct ops *o, const VmaEntry *v)
{
	static const struct {
		uint32_t bit;
		uint32_t advice;
	} adv[] = {
		{ VMA_ADVICE__VMA_ADVICE_DONTFORK, MADV_DONTFORK },
		{ VMA_ADVICE__VMA_ADVICE_WIPEONFORK, MADV_WIPEONFORK },
		{ VMA_ADVICE__VMA_ADVICE_HUGEPAGE, MADV_HUGEPAGE },
		{ VMA_ADVICE__VMA_ADVICE_NOHUGEPAGE, MADV_NOHUGEPAGE },
		{ VMA_ADVICE__VMA_ADVICE_DONTDUMP, MADV_DONTDUMP },
	};
	uint32_t known = 0;
	size_t i;
	int ret = 0;

	for (i = 0; i < ARRAY_SIZE(adv); i++)
		known |= adv[i].bit;
	if (v->advice & ~known)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(adv) && !ret; i++) {
		if (!(v->advice & adv[i].bit))
			continue;
		ret = ops_add(o, RST_OP_ADVISE, v->start, v->end - v->start);
		if (!ret)
			o->op[o->nr - 1].flags = adv[i].advice;
	}
	return ret;
}

int ops_final_layout(struct ops *o, struct stack_view *sv, uint32_t pid, const MmEntry *mm,
		     const struct shm_table *shm)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < mm->n_vmas && !ret; i++) {
		const VmaEntry *v = mm->vmas[i];
		struct ranges one = { 0 };

		if (v->kind == VMA_KIND__VMA_VDSO || vma_prefilled(v))
			continue;
		ret = map_vma(o, v, shm);
		if (ret || (v->flags & MAP_SHARED))
			continue;	/* shared pages live in their file or memfd */
		ret = ranges_add(&one, v->start, v->end);
		/* zero pages matter only over file pages; fresh anonymous memory is zero */
		if (!ret)
			ret = view_fill(o, sv, pid, &one,
					v->kind == VMA_KIND__VMA_FILE || v->has_shmid ? RST_OP_ZERO : 0);
		ranges_free(&one);
	}
	for (i = 0; i < mm->n_vmas && !ret; i++) {
		const VmaEntry *v = mm->vmas[i];

		if (v->kind == VMA_KIND__VMA_VDSO)
			continue;
		ret = ops_add(o, RST_OP_PROTECT, v->start, v->end - v->start);
		if (!ret)
			o->op[o->nr - 1].prot = v->prot;
		if (!ret && v->has_advice)
			ret = ops_add_advice(o, v);
	}
	return ret;
}

/* [vvar*] and [vdso] as one block: ARCH_MAP_VDSO_64 wants the start of the vvar part. */
static void vdso_block(const MmEntry *mm, uint64_t *start, uint64_t *end)
{
	size_t i;

	*start = *end = 0;
	for (i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *v = mm->vmas[i];

		if (v->kind != VMA_KIND__VMA_VDSO)
			continue;
		if (!*start || v->start < *start)
			*start = v->start;
		if (v->end > *end)
			*end = v->end;
	}
}

static int own_vdso_block(uint64_t *start, uint64_t *end)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		return -errno;
	*start = *end = 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e;

		if (!strstr(line, "[vdso]") && !strstr(line, "[vvar"))
			continue;
		if (sscanf(line, "%llx-%llx", &s, &e) != 2)
			continue;
		if (!*start || s < *start)
			*start = s;
		if (e > *end)
			*end = e;
	}
	fclose(f);
	return 0;
}

int vdso_address(const MmEntry *mm, uint64_t *addr)
{
	uint64_t vs, ve, os, oe;
	int ret;

	vdso_block(mm, &vs, &ve);
	ret = own_vdso_block(&os, &oe);
	if (ret)
		return ret;
	if (vs && ve - vs != oe - os) {
		pr_err("the saved vdso (%llu bytes) differs from this kernel's (%llu bytes)",
		       (unsigned long long)(ve - vs), (unsigned long long)(oe - os));
		return -EOPNOTSUPP;
	}
	*addr = vs;
	return 0;
}
