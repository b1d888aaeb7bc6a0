// SPDX-License-Identifier: MIT
/* `ferry-show page`: where a page of a process comes from in a stack. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "proto/image.h"
#include "show/pbjson.h"
#include "show/show.h"

int show_open_stack(const char *dir, struct stack_view *v)
{
	char top[PATH_MAX];
	uint32_t k;
	int fd, ret;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_perror("cannot open %s", dir);
		return ret;
	}
	if (!faccessat(fd, "inventory.img", F_OK, 0)) {
		snprintf(top, sizeof(top), "%s", dir);
	} else {
		ret = stack_find_top(fd, &k);
		if (!ret && !k)
			ret = -ENOENT;
		if (ret) {
			close(fd);
			pr_err("%s: neither a round directory nor a stack with a complete round", dir);
			return ret;
		}
		snprintf(top, sizeof(top), "%s/%u", dir, k);
	}
	close(fd);
	/* REMOTE pages (post-copy) are shown as such: a view for reading, not restoring */
	ret = stack_view_open_remote(top, true, v);
	if (ret)
		pr_err("%s: not a readable image stack: %s", top, strerror(-ret));
	return ret;
}

/* The top round's VMA that holds @addr, if its mm image says so. */
static void page_vma(const struct stack_view *v, uint32_t pid, uint64_t addr, char *buf, size_t len)
{
	MmEntry *mm;
	char name[64];
	size_t i;

	snprintf(buf, len, "%s", pid >= SHM_PID_BASE ? "shared memory object" : "no VMA");
	snprintf(name, sizeof(name), "mm-%u.img", pid);
	if (pid >= SHM_PID_BASE || faccessat(v->round_dirfd[v->top_round], name, F_OK, 0) ||
	    img_load_one(v->round_dirfd[v->top_round], name, &mm_entry__descriptor, (void **)&mm))
		return;
	for (i = 0; i < mm->n_vmas; i++)
		if (addr >= mm->vmas[i]->start && addr < mm->vmas[i]->end)
			snprintf(buf, len, "%llx-%llx%s%s", (unsigned long long)mm->vmas[i]->start,
				 (unsigned long long)mm->vmas[i]->end, mm->vmas[i]->path ? " " : "",
				 mm->vmas[i]->path ? mm->vmas[i]->path : "");
	protobuf_c_message_free_unpacked(&mm->base, NULL);
}

int show_page(const char *dir, uint32_t pid, uint64_t addr, bool json)
{
	const struct pg_extent *e;
	const struct pg_index *idx;
	char path[PATH_MAX + 64], vma[PATH_MAX + 64];
	struct stack_view v;
	struct jbuf b = { 0 };
	uint64_t page = addr & ~(PAGE_SIZE - 1), off = 0;
	bool hole = false, remote;
	int ret, fd;

	ret = show_open_stack(dir, &v);
	if (ret)
		return ret;
	idx = stack_view_index(&v, pid);
	e = idx ? pg_index_find(idx, page) : NULL;
	if (!e) {
		pr_err("%s: %s", dir, idx ? "that page is not in the stack" : "no such pid in the stack");
		stack_view_close(&v);
		return -ENOENT;
	}
	page_vma(&v, pid, page, vma, sizeof(vma));
	path[0] = 0;
	remote = e->round == PG_ROUND_REMOTE;
	if (e->round && !remote) {
		off = e->file_off + (page - e->vaddr);
		if (stack_view_pages_path(&v, pid, e->round, path, sizeof(path)))
			path[0] = 0;
		fd = stack_view_pages_fd(&v, pid, e->round);
		/* a punched page reads as zeros: only a dedup bug would make the top read one */
		hole = fd >= 0 && lseek(fd, off, SEEK_DATA) != (off_t)off;
	}
	if (json) {
		jbuf_printf(&b, "{\"pid\": %u, \"page\": %llu, \"top_round\": %u, \"round\": %u, "
			    "\"zero\": %s, \"remote\": %s, \"file\": ", pid, (unsigned long long)page,
			    v.top_round, remote ? v.top_round : e->round, e->round ? "false" : "true",
			    remote ? "true" : "false");
		jbuf_str(&b, path, strlen(path));
		jbuf_printf(&b, ", \"offset\": %llu, \"hole\": %s, \"vma\": ",
			    (unsigned long long)off, hole ? "true" : "false");
		jbuf_str(&b, vma, strlen(vma));
		jbuf_puts(&b, "}\n");
		if (!b.err)
			fputs(b.s, stdout);
		ret = b.err;
		jbuf_free(&b);
	} else if (!e->round) {
		printf("pid %u page %#llx (%s): zero page (no data in any round)\n", pid,
		       (unsigned long long)page, vma);
	} else if (remote) {
		printf("pid %u page %#llx (%s): REMOTE in round %u of %u: left at the source at the "
		       "freeze (post-copy), never stored\n", pid, (unsigned long long)page, vma,
		       v.top_round, v.top_round);
	} else {
		printf("pid %u page %#llx (%s): round %u of %u, %s at offset %#llx%s\n", pid,
		       (unsigned long long)page, vma, e->round, v.top_round, path,
		       (unsigned long long)off, hole ? " (a hole: punched, reads as zeros)" : "");
	}
	stack_view_close(&v);
	return ret;
}
