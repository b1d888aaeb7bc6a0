// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/pages.h"
#include "source-agent/postcopy.h"
#include "transport/frame.h"

#define COPY_CHUNK_PAGES 256	/* 1 MiB: one wire batch */

/*
 * The copy buffer lives as long as the process: a fresh one each round is
 * fresh memory to fault in (slow on VMs, docs/kernel-notes.md trap 10), and the
 * frozen final round would pay for it. pages_copy() runs on one thread.
 */
static uint8_t *copy_buf;

/* Split a chunk into runs of data pages and zero pages for the sink. */
static int send_chunk(struct sink *sink, pid_t pid, uint64_t addr, const uint8_t *buf,
		      size_t nr, struct copy_stats *st)
{
	size_t i = 0;
	int ret;

	while (i < nr) {
		bool zero = page_is_zero(buf + i * PAGE_SIZE);
		size_t j = i + 1;

		while (j < nr && page_is_zero(buf + j * PAGE_SIZE) == zero)
			j++;
		ret = sink->ops->add_pages(sink, pid, addr + i * PAGE_SIZE, j - i,
					   zero ? NULL : buf + i * PAGE_SIZE);
		if (ret)
			return ret;
		if (zero)
			st->pages_zero += j - i;
		else
			st->pages_data += j - i;
		i = j;
	}
	return 0;
}

/*
 * process_vm_readv stops at a page the target may not read (PROT_NONE):
 * /proc/PID/mem reads it anyway (FOLL_FORCE), as long as the VMA may be
 * read at all. Returns the bytes read from @start, or -errno.
 */
static ssize_t read_forced(int mem_fd, uint8_t *buf, size_t len, uint64_t start)
{
	ssize_t n;

	if (mem_fd < 0)
		return -EBADF;
	n = pread(mem_fd, buf, len, start);
	return n < 0 ? -errno : n;
}

/* Up to @nr pages at @start: the bytes read (less than a page: none), or -errno. */
static ssize_t read_some(pid_t pid, int mem_fd, uint64_t start, size_t nr, uint8_t *buf)
{
	struct iovec local = { buf, nr * PAGE_SIZE }, remote = { (void *)start, nr * PAGE_SIZE };
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);

	if (n < 0 && errno != EFAULT)
		return -errno;
	if (n < (ssize_t)PAGE_SIZE)
		n = read_forced(mem_fd, buf, nr * PAGE_SIZE, start);
	return n;
}

int pages_read(pid_t pid, int mem_fd, uint64_t start, size_t nr, uint8_t *buf)
{
	while (nr) {
		ssize_t n = read_some(pid, mem_fd, start, nr, buf);

		if (n < (ssize_t)PAGE_SIZE)
			return n < 0 ? (int)n : -EIO;
		n /= PAGE_SIZE;
		start += n * PAGE_SIZE;
		buf += n * PAGE_SIZE;
		nr -= n;
	}
	return 0;
}

static int copy_range(pid_t pid, int mem_fd, uint64_t start, uint64_t end, uint8_t *buf,
		      struct sink *sink, bool frozen, struct copy_stats *st)
{
	while (start < end) {
		size_t nr = (end - start) / PAGE_SIZE;
		ssize_t n;
		int ret;

		if (nr > COPY_CHUNK_PAGES)
			nr = COPY_CHUNK_PAGES;
		n = read_some(pid, mem_fd, start, nr, buf);
		if (n < (ssize_t)PAGE_SIZE) {
			/* a frozen target cannot unmap: a page we cannot read would come back wrong */
			if (frozen) {
				pr_err("pid %d: cannot read the page at %#llx: %s", pid,
				       (unsigned long long)start, n < 0 ? strerror(-n) : "short read");
				return n < 0 ? (int)n : -EIO;
			}
			/* unmapped under us: the final frozen round will see the truth */
			ret = sink->ops->add_pages(sink, pid, start, 1, NULL);
			if (ret)
				return ret;
			st->pages_gone++;
			start += PAGE_SIZE;
			continue;
		}
		nr = n / PAGE_SIZE;
		ret = send_chunk(sink, pid, start, buf, nr, st);
		if (ret)
			return ret;
		start += nr * PAGE_SIZE;
	}
	return 0;
}

/*
 * Post-copy: the parts of [start, end) that lie in memory the destination
 * serves on first touch go as REMOTE (into @pcs); the rest is copied.
 */
static int copy_or_remote(pid_t pid, int mem_fd, uint64_t start, uint64_t end, uint8_t *buf,
			  struct sink *sink, const struct vma_list *vl, struct pc_set *pcs,
			  struct copy_stats *st)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < vl->nr && start < end && !ret; i++) {
		const struct vma *v = &vl->v[i];
		uint64_t a = start > v->start ? start : v->start, b = end < v->end ? end : v->end;

		if (a >= b || !pc_vma_ok(v))
			continue;
		if (start < a)
			ret = copy_range(pid, mem_fd, start, a, buf, sink, true, st);
		if (!ret)
			ret = sink->ops->add_remote(sink, pid, a, (b - a) / PAGE_SIZE);
		if (!ret)
			ret = pc_set_add(pcs, pid, a, b);
		st->pages_remote += (b - a) / PAGE_SIZE;
		start = b;
	}
	if (!ret && start < end)
		ret = copy_range(pid, mem_fd, start, end, buf, sink, true, st);
	return ret;
}

int pages_copy(pid_t pid, const struct dirty_set *ds, struct sink *sink, bool frozen,
	       struct copy_stats *st)
{
	return pages_copy_pc(pid, ds, sink, frozen, NULL, NULL, st);
}

int pages_copy_pc(pid_t pid, const struct dirty_set *ds, struct sink *sink, bool frozen,
		  const struct vma_list *vl, struct pc_set *pcs, struct copy_stats *st)
{
	char path[64];
	uint8_t *buf;
	size_t i;
	int mem_fd, ret = 0;

	memset(st, 0, sizeof(*st));
	if (!copy_buf)
		copy_buf = aligned_alloc(PAGE_SIZE, COPY_CHUNK_PAGES * PAGE_SIZE);
	buf = copy_buf;
	if (!buf)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	for (i = 0; i < ds->nr && !ret; i++) {
		const struct dirty_range *r = &ds->r[i];

		if (r->zero) {
			ret = sink->ops->add_pages(sink, pid, r->start, (r->end - r->start) / PAGE_SIZE,
						   NULL);
			st->pages_zero += (r->end - r->start) / PAGE_SIZE;
		} else if (pcs) {
			ret = copy_or_remote(pid, mem_fd, r->start, r->end, buf, sink, vl, pcs, st);
		} else {
			ret = copy_range(pid, mem_fd, r->start, r->end, buf, sink, frozen, st);
		}
	}
	if (mem_fd >= 0)
		close(mem_fd);
	return ret;
}
