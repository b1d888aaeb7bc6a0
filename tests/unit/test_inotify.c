// SPDX-License-Identifier: MIT
/*
 * inotify watches made again (dest-agent/inotify.c): the same numbers with
 * gaps (the kernel's cyclic allocation skipped through), no event left
 * queued, and hostile watch lists refused.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dest-agent/restore.h"
#include "proto/image.h"

static char dir[] = "/tmp/ferry-test-inotify.XXXXXX";
static char paths[3][64];

static void setup(void)
{
	int i;

	cr_assert_not_null(mkdtemp(dir));
	for (i = 0; i < 3; i++) {
		snprintf(paths[i], sizeof(paths[i]), "%s/d%d", dir, i);
		cr_assert_eq(mkdir(paths[i], 0700), 0);
	}
}

static void teardown(void)
{
	int i;

	for (i = 0; i < 3; i++)
		rmdir(paths[i]);
	rmdir(dir);
}

/* inotify_restore_ops.open on @n watches; the fd or -errno. */
static int restore_watches(InotifyWatch *w, size_t n)
{
	InotifyWatch *p[8];
	FdEntry f = FD_ENTRY__INIT;
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = &w[i];
	f.type = FD_TYPE__FD_INOTIFY;
	f.watches = p;
	f.n_watches = n;
	return inotify_restore_ops.open(NULL, &f, 0);
}

static InotifyWatch watch(uint32_t wd, uint32_t mask, char *path)
{
	InotifyWatch w = INOTIFY_WATCH__INIT;

	w.wd = wd;
	w.mask = mask;
	w.path = path;
	return w;
}

Test(inotify, numbers_with_gaps, .init = setup, .fini = teardown)
{
	InotifyWatch w[3] = { watch(2, IN_CREATE, paths[0]),
			      watch(5, IN_DELETE | IN_ONESHOT, paths[1]),
			      watch(9, IN_CREATE | IN_EXCL_UNLINK, paths[2]) };
	int fd = restore_watches(w, 3), n = -1;

	cr_assert_geq(fd, 0, "restore: %s", strerror(-fd));
	cr_expect_eq(ioctl(fd, FIONREAD, &n), 0);
	cr_expect_eq(n, 0, "%d bytes of events left queued", n);
	/* the same numbers: adding each path again names its watch */
	cr_expect_eq(inotify_add_watch(fd, paths[0], IN_CREATE), 2);
	cr_expect_eq(inotify_add_watch(fd, paths[1], IN_DELETE), 5);
	cr_expect_eq(inotify_add_watch(fd, paths[2], IN_CREATE), 9);
	/* and the next new one follows the last */
	cr_expect_eq(inotify_add_watch(fd, dir, IN_CREATE), 10);
	close(fd);
}

Test(inotify, hostile_lists_refused, .init = setup, .fini = teardown)
{
	InotifyWatch desc[2] = { watch(3, IN_CREATE, paths[0]), watch(2, IN_CREATE, paths[1]) };
	InotifyWatch dup[2] = { watch(3, IN_CREATE, paths[0]), watch(3, IN_CREATE, paths[1]) };
	InotifyWatch zero[1] = { watch(0, IN_CREATE, paths[0]) };
	InotifyWatch big[1] = { watch(INOTIFY_WD_MAX + 1, IN_CREATE, paths[0]) };
	InotifyWatch mask[1] = { watch(1, IN_CREATE | IN_MASK_ADD, paths[0]) };
	InotifyWatch nopath[1] = { watch(1, IN_CREATE, NULL) };
	InotifyWatch gone[1] = { watch(1, IN_CREATE, "/nonexistent/ferry") };

	cr_expect_eq(restore_watches(desc, 2), -EINVAL);
	cr_expect_eq(restore_watches(dup, 2), -EINVAL);
	cr_expect_eq(restore_watches(zero, 1), -EINVAL);
	cr_expect_eq(restore_watches(big, 1), -EINVAL);
	cr_expect_eq(restore_watches(mask, 1), -EINVAL);
	cr_expect_eq(restore_watches(nopath, 1), -EINVAL);
	cr_expect_eq(restore_watches(gone, 1), -ENOENT);
}
