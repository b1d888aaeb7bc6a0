// SPDX-License-Identifier: MIT
/* Post-copy at the source: which pages stay REMOTE, and reading them frozen (postcopy.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "source-agent/pages.h"
#include "source-agent/postcopy.h"
#include "transport/frame.h"

/*
 * What the destination registers with userfaultfd (dest-agent/memory.c,
 * vma_prefilled): private anonymous memory and the heap, not MAP_DROPPABLE.
 * Locked memory is sent whole: mlock at the destination would fault it all
 * in before the tree runs, one request at a time.
 */
bool pc_vma_ok(const struct vma *v)
{
	return (v->kind == VMA_KIND__VMA_ANON || v->kind == VMA_KIND__VMA_HEAP) && !v->shared &&
	       !(v->vmflags & (VMF_DROPPABLE | VMF_LOCKED | VMF_LOCKONFAULT));
}

static struct pc_proc *pc_proc_of(struct pc_set *set, pid_t pid)
{
	size_t i;

	for (i = 0; i < set->nr; i++)
		if (set->p[i].pid == pid)
			return &set->p[i];
	return NULL;
}

int pc_set_add(struct pc_set *set, pid_t pid, uint64_t start, uint64_t end)
{
	struct pc_proc *p = pc_proc_of(set, pid);
	struct pc_run *last;

	if (start >= end)
		return 0;
	if (!p) {
		if (grow_array(&set->p, &set->cap, set->nr, sizeof(*set->p)))
			return -ENOMEM;
		p = &set->p[set->nr++];
		*p = (struct pc_proc){ .pid = pid, .mem_fd = -1 };
	}
	last = p->nr ? &p->r[p->nr - 1] : NULL;
	if (last && start < last->end)
		return -EINVAL;		/* not in address order */
	set->pages += (end - start) / PAGE_SIZE;
	if (last && last->end == start) {
		last->end = end;
		return 0;
	}
	if (grow_array(&p->r, &p->cap, p->nr, sizeof(*p->r)))
		return -ENOMEM;
	p->r[p->nr++] = (struct pc_run){ start, end };
	return 0;
}

/* Is [s, e) REMOTE, inside one run of @p? */
static bool pc_covers(const struct pc_proc *p, uint64_t s, uint64_t e)
{
	size_t lo = 0, hi = p->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->r[mid].end <= s)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < p->nr && p->r[lo].start <= s && e <= p->r[lo].end;
}

static int pc_read(void *arg, uint32_t pid, uint64_t vaddr, uint32_t nr, uint8_t *buf)
{
	struct pc_set *set = arg;
	struct pc_proc *p = pc_proc_of(set, pid);
	char path[64];

	if (!p || !nr || vaddr > UINT64_MAX - nr * (uint64_t)PAGE_SIZE ||
	    !pc_covers(p, vaddr, vaddr + nr * (uint64_t)PAGE_SIZE))
		return -EPROTO;
	if (p->mem_fd < 0) {
		snprintf(path, sizeof(path), "/proc/%d/mem", p->pid);
		p->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	return pages_read(p->pid, p->mem_fd, vaddr, nr, buf);
}

static int pc_next(void *arg, uint32_t *pid, uint64_t *vaddr, uint32_t *nr)
{
	struct pc_set *set = arg;

	while (set->push_p < set->nr) {
		struct pc_proc *p = &set->p[set->push_p];
		struct pc_run *r;
		uint64_t n;

		if (set->push_r == p->nr) {
			set->push_p++;
			set->push_r = 0;
			set->push_at = 0;
			continue;
		}
		r = &p->r[set->push_r];
		if (set->push_at < r->start)
			set->push_at = r->start;
		if (set->push_at >= r->end) {
			set->push_r++;
			continue;
		}
		n = (r->end - set->push_at) / PAGE_SIZE;
		*pid = p->pid;
		*vaddr = set->push_at;
		*nr = n < PB_MAX_PAGES ? n : PB_MAX_PAGES;
		set->push_at += *nr * (uint64_t)PAGE_SIZE;
		return 1;
	}
	return 0;
}

void pc_set_source(struct pc_set *set)
{
	set->src = (struct pc_source){ .read = pc_read, .next = pc_next, .arg = set };
}

void pc_set_free(struct pc_set *set)
{
	size_t i;

	for (i = 0; i < set->nr; i++) {
		if (set->p[i].mem_fd >= 0)
			close(set->p[i].mem_fd);
		free(set->p[i].r);
	}
	free(set->p);
	memset(set, 0, sizeof(*set));
}
