// SPDX-License-Identifier: MIT
/*
 * Lays out the restorer's mapping for one process: blob code, arguments,
 * the VMA list, the fill list (which bytes of which pages file go where),
 * the signal frame, and a stack. Built here at its final addresses, copied
 * into the new process just before it jumps in.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "dest-agent/restore.h"
#include "proto/image.h"
#include "restorer-blob.h"

#define RST_STACK_SIZE	(64 << 10)
#define RST_THREAD_STACK (16 << 10)
#define ALIGN_UP(x, a)	(((x) + (a) - 1) & ~((uint64_t)(a) - 1))

extern const ptrdiff_t __rseq_offset;
extern const unsigned int __rseq_size;

struct fills {
	struct rst_fill *f;
	size_t nr, cap;
};

static int fills_add(struct fills *fl, uint64_t vaddr, uint64_t len, int fd, uint64_t off)
{
	struct rst_fill *last = fl->nr ? &fl->f[fl->nr - 1] : NULL;

	if (last && last->fd == fd && last->vaddr + last->len == vaddr &&
	    (fd < 0 || last->off + last->len == off)) {
		last->len += len;
		return 0;
	}
	if (fl->nr == fl->cap) {
		size_t cap = fl->cap ? fl->cap * 2 : 256;
		struct rst_fill *n = realloc(fl->f, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		fl->f = n;
		fl->cap = cap;
	}
	fl->f[fl->nr++] = (struct rst_fill){ .vaddr = vaddr, .len = len, .fd = fd, .off = off };
	return 0;
}

static bool vma_is_filled(const VmaEntry *v)
{
	return v->kind != VMA_KIND__VMA_VDSO && !(v->kind == VMA_KIND__VMA_FILE &&
						  (v->flags & MAP_SHARED));
}

/* Pages of the stack that fall in @v, as fills. Zero runs matter only over file pages. */
static int fills_for_vma(struct rst_proc *p, struct stack_view *sv, const struct pg_index *idx,
			 const VmaEntry *v, int *round_fd, struct fills *fl)
{
	size_t i;
	int ret;

	for (i = 0; idx && i < idx->nr; i++) {
		const struct pg_extent *e = &idx->ext[i];
		uint64_t s = e->vaddr, end = e->vaddr + e->nr_pages * PAGE_SIZE;
		int fd = -1;

		if (end <= v->start || s >= v->end)
			continue;
		if (s < v->start)
			s = v->start;
		if (end > v->end)
			end = v->end;
		if (e->round) {
			if (round_fd[e->round] < 0) {
				int vfd = stack_view_pages_fd(sv, p->pe->pid, e->round);

				if (vfd < 0)
					return vfd;
				round_fd[e->round] = rst_work_fd(p, dup(vfd));
				if (round_fd[e->round] < 0)
					return round_fd[e->round];
			}
			fd = round_fd[e->round];
		} else if (v->kind != VMA_KIND__VMA_FILE) {
			continue;	/* fresh anonymous memory is zero already */
		}
		ret = fills_add(fl, s, end - s, fd, e->file_off + (s - e->vaddr));
		if (ret)
			return ret;
	}
	return 0;
}

static int vma_fd(struct rst_proc *p, const VmaEntry *v)
{
	int fd;

	if (v->kind != VMA_KIND__VMA_FILE)
		return -1;
	fd = open(v->path, (v->has_open_flags ? v->open_flags : O_RDONLY) | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("cannot open mapped file %s", v->path);
		return -errno;
	}
	return rst_work_fd(p, fd);
}

/* [vvar*] and [vdso] as one block: ARCH_MAP_VDSO_64 wants the start of the vvar part. */
static int vdso_block(const MmEntry *mm, uint64_t *start, uint64_t *end)
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
	return 0;
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

static bool overlaps_vmas(const MmEntry *mm, uint64_t s, uint64_t e)
{
	size_t i;

	for (i = 0; i < mm->n_vmas; i++)
		if (mm->vmas[i]->start < e && s < mm->vmas[i]->end)
			return true;
	return false;
}

/*
 * A place free in the saved address space and in ours: the blob must not
 * sit on anything it is about to map, and must be mappable here first.
 */
static int pick_region_addr(const MmEntry *mm, size_t len, uint64_t *addr)
{
	uint64_t a;

	for (a = 0x7e0000000000ULL; a > 0x10000000ULL; a -= 0x1000000000ULL) {
		void *p;

		if (overlaps_vmas(mm, a, a + len))
			continue;
		p = mmap((void *)a, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			 -1, 0);
		if (p == MAP_FAILED)
			continue;
		munmap(p, len);
		*addr = a;
		return 0;
	}
	pr_err("no room for the restorer in the saved address space");
	return -ENOMEM;
}

static void fill_signal_args(struct rst_args *a, const ProcCore *core)
{
	size_t i;

	for (i = 0; i < core->n_sigactions && i < RST_NSIG; i++) {
		const SigactionEntry *s = core->sigactions[i];

		if (s->sig < 1 || s->sig > RST_NSIG)
			continue;
		a->sa[s->sig - 1] = (struct rst_sigaction){ s->handler, s->flags, s->restorer, s->mask };
	}
	for (i = 0; i < core->n_itimers && i < 3; i++) {
		const TimevalPair *t = core->itimers[i];

		a->itimers[i][0] = t->interval_us / 1000000;
		a->itimers[i][1] = t->interval_us % 1000000;
		a->itimers[i][2] = t->value_us / 1000000;
		a->itimers[i][3] = t->value_us % 1000000;
	}
}

static int fill_mm_args(struct rst_proc *p, struct rst_args *a)
{
	const MmEntry *mm = p->mm;
	int fd;

	a->mm = (struct rst_mm_map){
		mm->start_code, mm->end_code, mm->start_data, mm->end_data, mm->start_brk, mm->brk,
		mm->start_stack, mm->arg_start, mm->arg_end, mm->env_start, mm->env_end, 0, 0, 0,
	};
	if (mm->n_auxv > RST_MAX_AUXV) {
		pr_err("mm-%u.img: %zu auxv words", p->pe->pid, mm->n_auxv);
		return -EINVAL;
	}
	memcpy(a->auxv, mm->auxv, mm->n_auxv * 8);
	a->mm.auxv_size = mm->n_auxv * 8;
	fd = open(mm->exe, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("cannot open the executable %s", mm->exe);
		return -errno;
	}
	fd = rst_work_fd(p, fd);
	if (fd < 0)
		return fd;
	a->mm.exe_fd = fd;
	return 0;
}

/* glibc registered rseq for the thread that became this process: drop it first. */
static void fill_own_rseq(struct rst_args *a)
{
	if (__rseq_size) {
		a->own_rseq_addr = (uint64_t)__builtin_thread_pointer() + __rseq_offset;
		a->own_rseq_len = __rseq_size < 32 ? 32 : __rseq_size;
		a->own_rseq_sig = 0x53053053;
	}
}

/*
 * Per thread: rt_sigframe, XSAVE image and (but for the leader) a blob stack,
 * laid out from region offset @off on.
 */
static int fill_threads(struct rst_proc *p, size_t off)
{
	size_t i, n = p->core->n_threads;
	int ret = 0;

	for (i = 0; i < n && !ret; i++) {
		struct rst_thread *t = &p->threads[i];
		size_t frame = off, xsave = ALIGN_UP(frame + rst_sigframe_size(), 64);

		off = ALIGN_UP(xsave + rst_xsave_size(), PAGE_SIZE);
		t->sigframe = p->region_addr + frame;
		if (i) {
			t->stack = p->region_addr + off;
			t->stack_size = RST_THREAD_STACK;
			off += RST_THREAD_STACK;
		}
		ret = rst_build_sigframe(p, i, t, p->region + frame, p->region_addr + xsave,
					 p->region + xsave);
	}
	return ret;
}

static size_t threads_room(size_t n)
{
	return n * (ALIGN_UP(ALIGN_UP(rst_sigframe_size(), 64) + rst_xsave_size(), PAGE_SIZE) +
		    RST_THREAD_STACK);
}

int rst_build_region(struct rst_proc *p, struct stack_view *sv)
{
	const struct pg_index *idx = stack_view_index(sv, p->pe->pid);
	struct fills fl = { 0 };
	struct rst_vma *vmas = NULL;
	size_t nr_vmas = 0, i, off_args, off_vmas, off_fills, off_threads, off_stack;
	size_t nr_threads = p->core->n_threads;
	uint64_t vs, ve, os = 0, oe = 0;
	int *round_fd = NULL, ret;

	round_fd = malloc((sv->top_round + 1) * sizeof(int));
	vmas = calloc(p->mm->n_vmas, sizeof(*vmas));
	if (!round_fd || !vmas) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i <= sv->top_round; i++)
		round_fd[i] = -1;
	for (i = 0; i < p->mm->n_vmas; i++) {
		const VmaEntry *v = p->mm->vmas[i];

		if (v->kind == VMA_KIND__VMA_VDSO)
			continue;
		vmas[nr_vmas] = (struct rst_vma){ .start = v->start, .end = v->end, .prot = v->prot,
						  .flags = v->flags, .fd = vma_fd(p, v),
						  .pgoff = v->pgoff };
		if (v->kind == VMA_KIND__VMA_FILE && vmas[nr_vmas].fd < 0) {
			ret = vmas[nr_vmas].fd;
			goto out;
		}
		nr_vmas++;
		if (vma_is_filled(v)) {
			ret = fills_for_vma(p, sv, idx, v, round_fd, &fl);
			if (ret)
				goto out;
		}
	}

	off_args = ALIGN_UP(restorer_blob_size, 64);
	off_vmas = ALIGN_UP(off_args + sizeof(struct rst_args), 64);
	off_fills = ALIGN_UP(off_vmas + nr_vmas * sizeof(*vmas), 64);
	off_threads = ALIGN_UP(off_fills + fl.nr * sizeof(*fl.f), 64);
	off_stack = ALIGN_UP(off_threads + nr_threads * sizeof(struct rst_thread), PAGE_SIZE);
	p->region_len = off_stack + RST_STACK_SIZE + threads_room(nr_threads);
	ret = pick_region_addr(p->mm, p->region_len, &p->region_addr);
	if (ret)
		goto out;
	p->region = calloc(1, p->region_len);
	if (!p->region) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(p->region, restorer_blob, restorer_blob_size);
	memcpy(p->region + off_vmas, vmas, nr_vmas * sizeof(*vmas));
	memcpy(p->region + off_fills, fl.f, fl.nr * sizeof(*fl.f));
	p->args = (struct rst_args *)(p->region + off_args);
	p->args_addr = p->region_addr + off_args;
	p->stack_top = p->region_addr + off_stack + RST_STACK_SIZE - 64;
	p->threads = (struct rst_thread *)(p->region + off_threads);
	p->args->self_start = p->region_addr;
	p->args->self_len = p->region_len;
	p->args->nr_vmas = nr_vmas;
	p->args->vmas = p->region_addr + off_vmas;
	p->args->nr_fills = fl.nr;
	p->args->fills = p->region_addr + off_fills;
	p->args->nr_threads = nr_threads;
	p->args->threads = p->region_addr + off_threads;

	vdso_block(p->mm, &vs, &ve);
	ret = own_vdso_block(&os, &oe);
	if (ret)
		goto out;
	if (vs && ve - vs != oe - os) {
		pr_err("the saved vdso (%llu bytes) differs from this kernel's (%llu bytes)",
		       (unsigned long long)(ve - vs), (unsigned long long)(oe - os));
		ret = -EOPNOTSUPP;
		goto out;
	}
	p->args->vdso_addr = vs;
	fill_signal_args(p->args, p->core);
	fill_own_rseq(p->args);
	ret = fill_mm_args(p, p->args);
	if (!ret)
		ret = fill_threads(p, off_stack + RST_STACK_SIZE);
	pr_info("pid %u: %zu VMAs, %zu fills, restorer at %#llx (%zu KiB)", p->pe->pid, nr_vmas,
		fl.nr, (unsigned long long)p->region_addr, p->region_len >> 10);
out:
	free(round_fd);
	free(vmas);
	free(fl.f);
	return ret;
}
