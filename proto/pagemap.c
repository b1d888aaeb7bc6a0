// SPDX-License-Identifier: MIT
/* pagemap-<pid>.img: parsing with every check a hostile or broken file needs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "proto/image.h"

/* REMOTE is parsed (no offset, like ZERO) so that its refusal is named: imgstack/view.c */
#define PE_ALL (PE_FLAGS__PE_PRESENT | PE_FLAGS__PE_PARENT | PE_FLAGS__PE_ZERO | PE_FLAGS__PE_REMOTE)

static int pm_check_entry(const char *name, const PagemapEntry *e, const struct pm_ext *prev,
			  uint64_t pages_file_size)
{
	uint64_t len = e->nr_pages * PAGE_SIZE;

	if (!e->nr_pages || e->vaddr % PAGE_SIZE || e->vaddr + len < e->vaddr ||
	    e->vaddr + len > TASK_SIZE_MAX) {
		pr_err("%s: bad entry at %#llx (%u pages)", name, (unsigned long long)e->vaddr,
		       e->nr_pages);
		return -EINVAL;
	}
	if (__builtin_popcount(e->flags) != 1 || (e->flags & ~PE_ALL)) {
		pr_err("%s: bad flags %#x at %#llx", name, e->flags, (unsigned long long)e->vaddr);
		return -EINVAL;
	}
	if (prev && prev->vaddr + prev->nr_pages * PAGE_SIZE > e->vaddr) {
		pr_err("%s: entry at %#llx overlaps or precedes the one before", name,
		       (unsigned long long)e->vaddr);
		return -EINVAL;
	}
	if (e->flags == PE_FLAGS__PE_PRESENT &&
	    (!e->has_off || e->off % PAGE_SIZE || e->off > pages_file_size ||
	     pages_file_size - e->off < len)) {
		pr_err("%s: entry at %#llx points past its pages file", name,
		       (unsigned long long)e->vaddr);
		return -EINVAL;
	}
	return 0;
}

int pagemap_parse(const char *name, const void *data, size_t len, uint64_t pages_file_size,
		  struct pagemap *pm)
{
	struct img_reader r;
	PagemapHead *head = NULL;
	PagemapEntry *e;
	size_t cap = 0;
	int ret;

	memset(pm, 0, sizeof(*pm));
	ret = img_reader_init(&r, name, data, len);
	if (ret)
		return ret;
	ret = img_read_msg(&r, &pagemap_head__descriptor, (void **)&head);
	if (ret == 0) {
		pr_err("%s: no pagemap head", name);
		return -EINVAL;
	}
	if (ret < 0)
		return ret;
	pm->pid = head->pid;
	/* an entry read as a head shows its flags as a field a head does not have */
	ret = head->base.n_unknown_fields ? -EINVAL : 0;
	protobuf_c_message_free_unpacked(&head->base, NULL);
	if (ret) {
		pr_err("%s: no pagemap head", name);
		return ret;
	}

	while ((ret = img_read_msg(&r, &pagemap_entry__descriptor, (void **)&e)) == 1) {
		ret = pm_check_entry(name, e, pm->nr ? &pm->ext[pm->nr - 1] : NULL, pages_file_size);
		if (!ret && grow_array(&pm->ext, &cap, pm->nr, sizeof(*pm->ext)))
			ret = -ENOMEM;
		if (!ret)
			pm->ext[pm->nr++] = (struct pm_ext){ e->vaddr, e->nr_pages, e->flags,
							     e->has_off ? e->off : 0 };
		protobuf_c_message_free_unpacked(&e->base, NULL);
		if (ret)
			break;
	}
	if (ret < 0)
		pagemap_free(pm);
	return ret < 0 ? ret : 0;
}

int pagemap_load(int round_dirfd, uint32_t pid, struct pagemap *pm)
{
	char name[64], pname[64];
	struct stat st = { 0 };
	size_t len;
	void *data;
	int ret;

	snprintf(name, sizeof(name), PAGEMAP_NAME_FMT, pid);
	snprintf(pname, sizeof(pname), PAGES_NAME_FMT, pid);
	if (fstatat(round_dirfd, pname, &st, 0) && errno != ENOENT)
		return -errno;
	ret = img_load_file(round_dirfd, name, &data, &len);
	if (ret)
		return ret;
	ret = pagemap_parse(name, data, len, st.st_size, pm);
	free(data);
	if (!ret && pm->pid != pid) {
		pr_err("%s: holds pid %u", name, pm->pid);
		pagemap_free(pm);
		ret = -EINVAL;
	}
	return ret;
}

int pagemap_build(const struct pagemap *pm, uint64_t pages_bytes, struct img_buf *out)
{
	PagemapHead head = PAGEMAP_HEAD__INIT;
	size_t i;
	int ret;

	ret = img_buf_init(out);
	if (ret)
		return ret;
	head.pid = pm->pid;
	head.pages_bytes = pages_bytes;
	ret = img_buf_add(out, &head.base);
	for (i = 0; !ret && i < pm->nr; i++) {
		PagemapEntry e = PAGEMAP_ENTRY__INIT;

		e.vaddr = pm->ext[i].vaddr;
		e.nr_pages = pm->ext[i].nr_pages;
		e.flags = pm->ext[i].flags;
		if (e.flags == PE_FLAGS__PE_PRESENT) {
			e.has_off = 1;
			e.off = pm->ext[i].off;
		}
		ret = img_buf_add(out, &e.base);
	}
	if (ret)
		img_buf_free(out);
	return ret;
}

void pagemap_free(struct pagemap *pm)
{
	free(pm->ext);
	memset(pm, 0, sizeof(*pm));
}
