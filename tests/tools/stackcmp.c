// SPDX-License-Identifier: MIT
/*
 * stackcmp ROUND_DIR PID: compare, byte for byte, the memory of a (stopped
 * or quiescent) process with what the top of an image stack says it holds:
 * every page of its anonymous and heap/stack VMAs (data from the round that
 * holds it, zero if the stack says zero or has nothing), and the
 * copied-on-write pages the stack holds for private file mappings. Prints
 * the mismatches; exit 0 only when there is none.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "imgstack/view.h"
#include "source-agent/proc.h"

static int page_expected(struct stack_view *sv, uint32_t pid, const struct pg_extent *e,
			 uint64_t addr, uint8_t *buf)
{
	int fd;

	if (!e || !e->round) {
		memset(buf, 0, PAGE_SIZE);
		return 0;
	}
	fd = stack_view_pages_fd(sv, pid, e->round);
	if (fd < 0)
		return fd;
	return pread_full(fd, buf, PAGE_SIZE, e->file_off + (addr - e->vaddr));
}

int main(int argc, char **argv)
{
	static uint8_t want[PAGE_SIZE], got[PAGE_SIZE];
	struct stack_view sv = { 0 };
	struct vma_list vl;
	const struct pg_index *idx;
	unsigned long pages = 0, bad = 0;
	char path[64];
	size_t i;
	int mem, pid;

	if (argc != 3) {
		fprintf(stderr, "usage: stackcmp ROUND_DIR PID\n");
		return 2;
	}
	pid = atoi(argv[2]);
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	mem = open(path, O_RDONLY);
	if (mem < 0 || proc_read_vmas(pid, &vl) || stack_view_open(argv[1], &sv)) {
		fprintf(stderr, "stackcmp: cannot open pid %d or stack %s\n", pid, argv[1]);
		return 2;
	}
	idx = stack_view_index(&sv, pid);
	for (i = 0; i < vl.nr; i++) {
		const struct vma *v = &vl.v[i];
		uint64_t a;

		if (!vma_has_dumpable_pages(v) || !(v->prot & PROT_READ))
			continue;
		for (a = v->start; a < v->end; a += PAGE_SIZE) {
			const struct pg_extent *e = idx ? pg_index_find(idx, a) : NULL;

			if (v->kind == VMA_KIND__VMA_FILE && (!e || !e->round))
				continue;	/* the file's own page */
			if (page_expected(&sv, pid, e, a, want) ||
			    pread_full(mem, got, PAGE_SIZE, a)) {
				fprintf(stderr, "stackcmp: cannot read page %#llx\n", (unsigned long long)a);
				return 2;
			}
			pages++;
			if (memcmp(want, got, PAGE_SIZE)) {
				if (bad++ < 10)
					printf("differs: %#llx (%s) round %u\n", (unsigned long long)a,
					       v->path[0] ? v->path : "anon", e ? e->round : 0);
			}
		}
	}
	printf("%lu pages compared, %lu differ\n", pages, bad);
	stack_view_close(&sv);
	return bad ? 1 : 0;
}
