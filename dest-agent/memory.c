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
#include <sys/shm.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/log.h"
#include "common/util.h"
#include "dest-agent/restore.h"
#include "proto/image.h"

bool vma_prefilled(const VmaEntry *v)
{
	/*
	 * MAP_DROPPABLE is mapped with its own type at the final round, and
	 * MAP_GROWSDOWN and MAP_NORESERVE with their flags (rare)
	 */
	return (v->kind == VMA_KIND__VMA_ANON || v->kind == VMA_KIND__VMA_HEAP) &&
	       !(v->flags & (MAP_SHARED | MAP_GROWSDOWN | MAP_NORESERVE)) &&
	       (v->flags & MAP_TYPE) != MAP_DROPPABLE;
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

int inherit_ranges(const MmEntry *parent, const MmEntry *child, struct ranges *out)
{
	size_t i, j = 0;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < child->n_vmas && !ret; i++) {
		const VmaEntry *v = child->vmas[i], *p;

		if (!vma_prefilled(v))
			continue;
		/* sorted, disjoint: the one parent VMA that may hold v */
		while (j < parent->n_vmas && parent->vmas[j]->end <= v->start)
			j++;
		if (j == parent->n_vmas)
			break;
		p = parent->vmas[j];
		if (vma_prefilled(p) && p->flags == v->flags && p->start <= v->start &&
		    v->end <= p->end)
			ret = ranges_add(out, v->start, v->end);
	}
	if (ret)
		ranges_free(out);
	return ret;
}

struct fill_ctx {
	struct ops *o;
	const struct stack_view *sv;
	uint32_t pid;
	uint32_t zero_op;	/* DISCARD (anonymous), ZERO (file pages), 0: none */
	uint32_t read_op;	/* READ, or READ_CMP over inherited memory */
	bool gaps;		/* pages the view skips are discarded (inherited memory) */
	uint64_t next;		/* with gaps: the end of the last run */
	uint64_t *path_ref;	/* [round]: an op's ->path naming its pages file, 0: none yet */
};

/* One run of the view as an op; a round's path is put in the ops once. */
static int fill_ext(void *arg, const struct pg_extent *e)
{
	struct fill_ctx *c = arg;
	uint64_t len = e->nr_pages * PAGE_SIZE;
	char path[PATH_MAX + 64];
	int ret = 0;

	if (c->gaps && e->vaddr > c->next)
		ret = ops_add(c->o, RST_OP_DISCARD, c->next, e->vaddr - c->next);
	c->next = e->vaddr + len;
	if (ret)
		return ret;
	if (!e->round)
		return c->zero_op ? ops_add(c->o, c->zero_op, e->vaddr, len) : 0;
	if (e->round > c->sv->top_round)
		return -EINVAL;	/* an index naming a round the view lacks */
	if (c->path_ref[e->round])
		return ops_add_read_ref(c->o, c->read_op, e->vaddr, len, c->path_ref[e->round],
					e->file_off);
	ret = stack_view_pages_path(c->sv, c->pid, e->round, path, sizeof(path));
	if (!ret)
		ret = ops_add_read(c->o, c->read_op, e->vaddr, len, path, e->file_off);
	if (!ret)
		c->path_ref[e->round] = c->o->op[c->o->nr - 1].path;
	return ret;
}

static int view_fill(struct fill_ctx *c, const struct ranges *in, bool top_only)
{
	size_t i;
	int ret = 0;

	c->path_ref = calloc(c->sv->top_round + 1, sizeof(*c->path_ref));
	if (!c->path_ref)
		return -ENOMEM;
	for (i = 0; i < in->nr && !ret; i++) {
		c->next = in->r[i].start;
		ret = stack_view_walk(c->sv, c->pid, in->r[i].start, in->r[i].end, top_only,
				      fill_ext, c);
		if (!ret && c->gaps && c->next < in->r[i].end)
			ret = ops_add(c->o, RST_OP_DISCARD, c->next, in->r[i].end - c->next);
	}
	free(c->path_ref);
	return ret;
}

int ops_view_fill(struct ops *o, const struct stack_view *sv, uint32_t pid,
		  const struct ranges *in, bool top_only, uint32_t zero_op)
{
	struct fill_ctx c = { o, sv, pid, top_only ? RST_OP_DISCARD : zero_op, RST_OP_READ,
			      false, 0, NULL };

	return view_fill(&c, in, top_only);
}

int ops_view_fill_inherited(struct ops *o, const struct stack_view *sv, uint32_t pid,
			    const struct ranges *in)
{
	/*
	 * The parent's pages are there: a zero page must be made zero (a
	 * discard drops only this process's copy), and so must a page the
	 * view does not have (a fresh map would read as zero there).
	 */
	struct fill_ctx c = { o, sv, pid, RST_OP_DISCARD, RST_OP_READ_CMP, true, 0, NULL };

	return view_fill(&c, in, false);
}

/*
 * A System V segment: attached (shmat) at its address, read-only where its
 * file was (SHM_RDONLY: no later mprotect to write), whole; the final
 * PROTECT gives it its protection.
 */
static int attach_vma(struct ops *o, const VmaEntry *v, int id, uint64_t size)
{
	uint32_t flags = SHM_REMAP;
	int ret;

	/* shmat maps the whole segment: a VMA of another length would not come back as it was */
	if (!(v->flags & MAP_SHARED) || (v->has_pgoff && v->pgoff) || !v->has_open_flags ||
	    (v->open_flags != O_RDONLY && v->open_flags != O_RDWR) ||
	    v->end - v->start != page_up(size)) {
		pr_err("mapping at %#llx: a SysV segment attached in part, privately or with "
		       "unknown rights", (unsigned long long)v->start);
		return -EINVAL;
	}
	if (v->open_flags == O_RDONLY)
		flags |= SHM_RDONLY;
	if (v->prot & PROT_EXEC)
		flags |= SHM_EXEC;
	ret = ops_add(o, RST_OP_SHMAT, v->start, v->end - v->start);
	if (!ret) {
		o->op[o->nr - 1].off = id;
		o->op[o->nr - 1].flags = flags;
	}
	return ret;
}

static int map_vma(struct ops *o, const VmaEntry *v, const struct shm_table *shm)
{
	uint64_t size = 0;
	int id = v->has_shmid ? shm_sysv(shm, v->shmid, &size) : -1;
	uint32_t prot = v->prot;
	char path[64];
	int ret;

	if (id >= 0)
		return attach_vma(o, v, id, size);
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
	if (!v->has_ghost_id)
		return ops_set_path(o, v->path);
	/* a deleted file: the one made again (ghost.c) */
	ret = shm_path(shm, SHM_GHOST_BASE + v->ghost_id, path, sizeof(path));
	return ret ? ret : ops_set_path(o, path);
}

/*
 * @v's guard regions again (MADV_GUARD_INSTALL), after its fill: a guard
 * has no page, and filling it would fault.
 */
static int ops_add_guards(struct ops *o, const VmaEntry *v)
{
	size_t i;
	int ret = 0;

	if (v->n_guards % 2)
		return -EINVAL;
	for (i = 0; i < v->n_guards && !ret; i += 2) {
		uint64_t s = v->guards[i], e = v->guards[i + 1];

		if (s >= e || s < v->start || e > v->end || (s | e) % PAGE_SIZE)
			return -EINVAL;
		ret = ops_add(o, RST_OP_ADVISE, s, e - s);
		if (!ret)
			o->op[o->nr - 1].flags = MADV_GUARD_INSTALL;
	}
	return ret;
}

/*
 * madvise flags of @v again (DONTFORK, WIPEONFORK, [NO]HUGEPAGE, DONTDUMP,
 * MERGEABLE); in a process with PR_SET_MEMORY_MERGE (@merge_any), which made
 * every VMA mergeable, a VMA that was not is made unmergeable again. Then
 * its guard regions, and its lock (mlock2, after its pages are in: it
 * faults in the rest).
 */
static int ops_add_advice(struct ops *o, const VmaEntry *v, bool merge_any)
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
		{ VMA_ADVICE__VMA_ADVICE_MERGEABLE, MADV_MERGEABLE },
		{ VMA_ADVICE__VMA_ADVICE_SEQUENTIAL, MADV_SEQUENTIAL },
		{ VMA_ADVICE__VMA_ADVICE_RANDOM, MADV_RANDOM },
	};
	uint32_t known = 0, advice = v->has_advice ? v->advice : 0;
	size_t i;
	int ret = 0;

	for (i = 0; i < ARRAY_SIZE(adv); i++)
		known |= adv[i].bit;
	known |= VMA_ADVICE__VMA_ADVICE_MLOCK | VMA_ADVICE__VMA_ADVICE_MLOCK_ONFAULT;
	if (advice & ~known)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(adv) && !ret; i++) {
		if (!(advice & adv[i].bit))
			continue;
		ret = ops_add(o, RST_OP_ADVISE, v->start, v->end - v->start);
		if (!ret)
			o->op[o->nr - 1].flags = adv[i].advice;
	}
	if (!ret && merge_any && !(advice & VMA_ADVICE__VMA_ADVICE_MERGEABLE)) {
		ret = ops_add(o, RST_OP_ADVISE, v->start, v->end - v->start);
		if (!ret)
			o->op[o->nr - 1].flags = MADV_UNMERGEABLE;
	}
	if (!ret)
		ret = ops_add_guards(o, v);
	if (!ret && (advice & VMA_ADVICE__VMA_ADVICE_MLOCK)) {
		ret = ops_add(o, RST_OP_LOCK, v->start, v->end - v->start);
		if (!ret && (advice & VMA_ADVICE__VMA_ADVICE_MLOCK_ONFAULT))
			o->op[o->nr - 1].flags = MLOCK_ONFAULT;
	} else if (!ret && (advice & VMA_ADVICE__VMA_ADVICE_MLOCK_ONFAULT)) {
		ret = -EINVAL;	/* "lf" comes with "lo" */
	}
	return ret;
}

/*
 * KSM (MADV_MERGEABLE, PR_SET_MEMORY_MERGE) needs a kernel built with it:
 * without, the restore refuses, naming it, before anything is made.
 */
static int ksm_check(const MmEntry *mm)
{
	size_t i;

	if (!access("/sys/kernel/mm/ksm", F_OK))
		return 0;
	if (mm->has_ksm_merge_any && mm->ksm_merge_any) {
		pr_err("the process had KSM on for all its memory (PR_SET_MEMORY_MERGE): "
		       "this kernel has no KSM (/sys/kernel/mm/ksm)");
		return -EOPNOTSUPP;
	}
	for (i = 0; i < mm->n_vmas; i++) {
		const VmaEntry *v = mm->vmas[i];

		if (!v->has_advice || !(v->advice & VMA_ADVICE__VMA_ADVICE_MERGEABLE))
			continue;
		pr_err("mapping at %#llx is mergeable (MADV_MERGEABLE, KSM): this kernel has "
		       "no KSM (/sys/kernel/mm/ksm)", (unsigned long long)v->start);
		return -EOPNOTSUPP;
	}
	return 0;
}

int ops_final_layout(struct ops *o, const struct stack_view *sv, uint32_t pid, const MmEntry *mm,
		     const struct shm_table *shm)
{
	bool merge_any = mm->has_ksm_merge_any && mm->ksm_merge_any;
	size_t i;
	int ret;

	ret = ksm_check(mm);
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
			ret = ops_view_fill(o, sv, pid, &one, false,
					    v->kind == VMA_KIND__VMA_FILE || v->has_shmid ?
					    RST_OP_ZERO : 0);
		ranges_free(&one);
	}
	/* every VMA mergeable (made unmergeable again below where it was not) */
	if (!ret && merge_any)
		ret = ops_add(o, RST_OP_MERGE_ANY, 0, 0);
	for (i = 0; i < mm->n_vmas && !ret; i++) {
		const VmaEntry *v = mm->vmas[i];

		if (v->kind == VMA_KIND__VMA_VDSO)
			continue;
		ret = ops_add(o, RST_OP_PROTECT, v->start, v->end - v->start);
		if (!ret)
			o->op[o->nr - 1].prot = v->prot;
		if (!ret)
			ret = ops_add_advice(o, v, merge_any);
	}
	/* last: from here on every mapping is locked, as it was */
	if (!ret && mm->has_mlockall && mm->mlockall) {
		if (mm->mlockall & ~(MCL_FUTURE | MCL_ONFAULT) || !(mm->mlockall & MCL_FUTURE))
			return -EINVAL;
		ret = ops_add(o, RST_OP_MLOCKALL, 0, 0);
		if (!ret)
			o->op[o->nr - 1].flags = mm->mlockall;
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
