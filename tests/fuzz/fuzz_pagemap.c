// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: pagemap_parse() over arbitrary bytes. Input: u64 pages
 * file size, then the pagemap file (fuzz.h). A refused pagemap must leave
 * nothing behind; an accepted one must hold every promise of
 * docs/image-format.md and survive pagemap_build() + pagemap_parse().
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "proto/image.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_defer_errors();	/* hostile input logs an error per run */
	return 0;
}

static bool known_flag(uint32_t f)
{
	return f == PE_FLAGS__PE_PRESENT || f == PE_FLAGS__PE_PARENT || f == PE_FLAGS__PE_ZERO ||
	       f == PE_FLAGS__PE_REMOTE;
}

static void check_accepted(const struct pagemap *pm, uint64_t pages_size)
{
	size_t i;

	FUZZ_ASSERT(!pm->nr || pm->ext);
	for (i = 0; i < pm->nr; i++) {
		const struct pm_ext *e = &pm->ext[i];
		uint64_t len = e->nr_pages * PAGE_SIZE;

		FUZZ_ASSERT(e->nr_pages);
		FUZZ_ASSERT(e->vaddr % PAGE_SIZE == 0);
		FUZZ_ASSERT(e->vaddr < TASK_SIZE_MAX && len <= TASK_SIZE_MAX - e->vaddr);
		FUZZ_ASSERT(known_flag(e->flags));
		if (i)
			FUZZ_ASSERT(pm->ext[i - 1].vaddr + pm->ext[i - 1].nr_pages * PAGE_SIZE <=
				    e->vaddr);
		if (e->flags == PE_FLAGS__PE_PRESENT) {
			FUZZ_ASSERT(e->off % PAGE_SIZE == 0);
			FUZZ_ASSERT(e->off <= pages_size && len <= pages_size - e->off);
		}
	}
}

static void check_round_trip(const struct pagemap *pm, uint64_t pages_size)
{
	struct pagemap back;
	struct img_buf b;
	size_t i;

	FUZZ_ASSERT(pagemap_build(pm, pages_size, &b) == 0);
	FUZZ_ASSERT(pagemap_parse("rebuilt.img", b.data, b.len, pages_size, &back) == 0);
	FUZZ_ASSERT(back.pid == pm->pid && back.nr == pm->nr);
	for (i = 0; i < pm->nr; i++) {
		FUZZ_ASSERT(back.ext[i].vaddr == pm->ext[i].vaddr);
		FUZZ_ASSERT(back.ext[i].nr_pages == pm->ext[i].nr_pages);
		FUZZ_ASSERT(back.ext[i].flags == pm->ext[i].flags);
		/* only PRESENT entries carry an offset through pagemap_build */
		if (pm->ext[i].flags == PE_FLAGS__PE_PRESENT)
			FUZZ_ASSERT(back.ext[i].off == pm->ext[i].off);
		else
			FUZZ_ASSERT(back.ext[i].off == 0);
	}
	pagemap_free(&back);
	img_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pagemap pm;
	uint64_t pages_size;
	int ret;

	if (size < FUZZ_PM_HDR)
		return 0;
	pages_size = get_le64(data);
	memset(&pm, 0xa5, sizeof(pm));
	ret = pagemap_parse("fuzz.img", data + FUZZ_PM_HDR, size - FUZZ_PM_HDR, pages_size, &pm);
	if (ret) {
		FUZZ_ASSERT(ret == -EINVAL || ret == -ENOMEM);
		FUZZ_ASSERT(pm.nr == 0 && pm.ext == NULL);
		return 0;
	}
	check_accepted(&pm, pages_size);
	check_round_trip(&pm, pages_size);
	pagemap_free(&pm);
	return 0;
}
