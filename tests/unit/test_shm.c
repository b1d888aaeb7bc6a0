// SPDX-License-Identifier: MIT
/*
 * dest-agent/shm.c from hand-made images: an object filled and sized right;
 * hostile ones (pages past the object's size, a size over the bound)
 * refused before anything is written past it.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "dest-agent/restore.h"
#include "imgstack/view.h"
#include "proto/image.h"
#include "tests/unit/unit.h"

#define PG	PAGE_SIZE

static char tmp_root[PATH_MAX];
static uint32_t obj_id = 1;	/* restore_one's object's number */
static int obj_twice;		/* restore_one's shmem.img lists it twice */

static void make_tmp(void)
{
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/ferry-shm-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp_root));
}

static void remove_tmp(void)
{
	rm_tree(tmp_root);
}

TestSuite(shm, .init = make_tmp, .fini = remove_tmp);

/*
 * One round in tmp_root/1: object 1 of @size bytes whose pages are @e (the
 * PRESENT ones at their offsets, page i of the pages file filled with
 * 'a' + i).
 * shm_restore's result; on success *fd is a dup of its memfd.
 */
static int restore_one(uint64_t size, const struct pm_ext *e, size_t nr, int *fd)
{
	struct pagemap pm = { .pid = SHM_PID_BASE + 1, .nr = nr, .ext = (struct pm_ext *)e };
	ShmemEntry se = SHMEM_ENTRY__INIT;
	struct shm_table t;
	struct stack_view sv;
	struct img_buf b;
	char p[PATH_MAX + 8], name[64], page[PG];
	size_t i, pages = 0;
	int dfd, pfd, ret;

	for (i = 0; i < nr; i++)
		if (e[i].flags & PE_FLAGS__PE_PRESENT)
			pages += e[i].nr_pages;
	snprintf(p, sizeof(p), "%s/1", tmp_root);
	rm_tree(p);
	cr_assert_eq(mkdir(p, 0700), 0);
	dfd = open(p, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(dfd, 0);
	cr_assert_eq(pagemap_build(&pm, pages * PG, &b), 0);
	snprintf(name, sizeof(name), PAGEMAP_NAME_FMT, pm.pid);
	cr_assert_eq(img_write_file(dfd, name, b.data, b.len), 0);
	img_buf_free(&b);
	snprintf(name, sizeof(name), PAGES_NAME_FMT, pm.pid);
	pfd = openat(dfd, name, O_CREAT | O_WRONLY, 0600);
	cr_assert_geq(pfd, 0);
	for (i = 0; i < pages; i++) {
		memset(page, 'a' + (int)i, PG);
		cr_assert_eq(write_full(pfd, page, PG), 0);
	}
	close(pfd);
	se.id = obj_id;
	se.size = size;
	se.memfd = true;
	se.name = "test";
	cr_assert_eq(img_buf_init(&b), 0);
	cr_assert_eq(img_buf_add(&b, &se.base), 0);
	if (obj_twice)
		cr_assert_eq(img_buf_add(&b, &se.base), 0);
	cr_assert_eq(img_write_file(dfd, "shmem.img", b.data, b.len), 0);
	img_buf_free(&b);

	cr_assert_eq(stack_view_open(p, &sv), 0);
	ret = shm_restore(&t, dfd, &sv);
	if (!ret) {
		cr_assert_eq(t.nr, 1);
		*fd = dup(t.v[0].fd);
		shm_table_close(&t);
	} else {
		cr_expect_eq(t.nr, 0, "a failed restore leaves objects");
	}
	stack_view_close(&sv);
	close(dfd);
	return ret;
}

Test(shm, filled_and_sized)
{
	const struct pm_ext e[] = { { 0, 1, PE_FLAGS__PE_PRESENT, 0 },
				    { PG, 1, PE_FLAGS__PE_ZERO, 0 },
				    { 2 * PG, 1, PE_FLAGS__PE_PRESENT, PG } };
	char buf[PG];
	struct stat st;
	int fd = -1;

	cr_assert_eq(restore_one(3 * PG - 100, e, 3, &fd), 0);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_expect_eq(st.st_size, 3 * PG - 100, "size %lld", (long long)st.st_size);
	cr_assert_eq(pread_full(fd, buf, PG, 0), 0);
	cr_expect(buf[0] == 'a' && buf[PG - 1] == 'a');
	cr_assert_eq(pread_full(fd, buf, PG, PG), 0);
	cr_expect(buf[0] == 0 && buf[PG - 1] == 0);
	cr_assert_eq(pread_full(fd, buf, PG - 100, 2 * PG), 0);
	cr_expect(buf[0] == 'b' && buf[PG - 101] == 'b');
	close(fd);
}

/* Pages past the object (its size rounded up to a page): refused, nothing made. */
Test(shm, pages_past_the_size_refused)
{
	const struct pm_ext far[] = { { 0, 1, PE_FLAGS__PE_PRESENT, 0 },
				      { 1ULL << 40, 1, PE_FLAGS__PE_PRESENT, PG } };
	const struct pm_ext over[] = { { 0, 2, PE_FLAGS__PE_PRESENT, 0 } };
	const struct pm_ext zero[] = { { 0, 3, PE_FLAGS__PE_ZERO, 0 } };
	const struct pm_ext edge[] = { { 0, 2, PE_FLAGS__PE_PRESENT, 0 } };
	int fd = -1;

	cr_expect_eq(restore_one(PG, far, 2, &fd), -EINVAL);
	cr_expect_eq(restore_one(PG, over, 1, &fd), -EINVAL);
	cr_expect_eq(restore_one(PG + 1, zero, 1, &fd), -EINVAL);
	cr_expect_eq(restore_one(0, over, 1, &fd), -EINVAL);
	/* the last page whole, the size not a multiple of a page: fine */
	cr_assert_eq(restore_one(PG + 1, edge, 1, &fd), 0);
	close(fd);
}

/* A size over the bound (no mapping could hold it): refused. */
Test(shm, size_over_the_bound_refused)
{
	const struct pm_ext e[] = { { 0, 1, PE_FLAGS__PE_PRESENT, 0 } };
	int fd = -1;

	cr_expect_eq(restore_one(TASK_SIZE_MAX + PG, e, 1, &fd), -EINVAL);
	cr_expect_eq(restore_one(UINT64_MAX, e, 1, &fd), -EINVAL);
}

/*
 * Object numbers: 0, one whose pseudo pid (SHM_PID_BASE + id) wraps round
 * to pid 1, one in the deleted files' range, and one given twice: refused.
 */
Test(shm, bad_object_numbers_refused)
{
	const struct pm_ext e[] = { { 0, 1, PE_FLAGS__PE_PRESENT, 0 } };
	int fd = -1;

	obj_id = 0;
	cr_expect_eq(restore_one(PG, e, 1, &fd), -EINVAL, "id 0");
	obj_id = 0xc0000001u;
	cr_expect_eq(restore_one(PG, e, 1, &fd), -EINVAL, "pid 1's pages");
	obj_id = SHM_GHOST_BASE + 1;
	cr_expect_eq(restore_one(PG, e, 1, &fd), -EINVAL, "a deleted file's number");
	obj_id = 1;
	obj_twice = 1;
	cr_expect_eq(restore_one(PG, e, 1, &fd), -EINVAL, "given twice");
	obj_twice = 0;
	cr_assert_eq(restore_one(PG, e, 1, &fd), 0);
	close(fd);
}
