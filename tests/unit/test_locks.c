// SPDX-License-Identifier: MIT
/*
 * File locks: the fdinfo "lock:" lines the dump reads (source-agent/locks.c)
 * and the lock entries of an image the restore lays out for the blob
 * (dest-agent/locks.c), hostile ones refused.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>

#include "common/log.h"
#include "dest-agent/restore.h"
#include "restorer/restorer.h"
#include "source-agent/files.h"
#include "source-agent/shm.h"

static struct shm_set no_shm;

static void reg_fd(struct fd_dump *d)
{
	memset(d, 0, sizeof(*d));
	d->pid = 1;
	d->fd = 3;
	d->ops = &reg_dump_ops;
	d->shm = &no_shm;
	d->st.st_mode = S_IFREG | 0600;
	strcpy(d->path, "/x");
}

static int parse(const char *line, FileLock *l)
{
	struct fd_dump d;

	reg_fd(&d);
	return locks_parse_line(&d, line, l);
}

Test(locks, fdinfo_lines)
{
	FileLock l;

	cr_assert_eq(parse("\t1: POSIX  ADVISORY  WRITE 1234 fe:00:567 100 149", &l), 0);
	cr_expect_eq(l.kind, FILE_LOCK_KIND__FILE_LOCK_POSIX);
	cr_expect(l.write);
	cr_expect_eq(l.start, 100);
	cr_expect_eq(l.len, 50);
	cr_assert_eq(parse("\t2: POSIX  ADVISORY  READ 1234 fe:00:567 200 EOF", &l), 0);
	cr_expect(!l.write);
	cr_expect_eq(l.start, 200);
	cr_expect_eq(l.len, 0, "EOF: to the end of the file");
	cr_assert_eq(parse("\t1: OFDLCK ADVISORY  WRITE -1 fe:00:567 0 0", &l), 0);
	cr_expect_eq(l.kind, FILE_LOCK_KIND__FILE_LOCK_OFD);
	cr_expect_eq(l.len, 1);
	cr_assert_eq(parse("\t1: FLOCK  ADVISORY  READ 1234 fe:00:567 0 EOF", &l), 0);
	cr_expect_eq(l.kind, FILE_LOCK_KIND__FILE_LOCK_FLOCK);
	/* the largest range the kernel prints */
	cr_expect_eq(parse("\t1: POSIX  ADVISORY  WRITE 1 fe:00:5 9223372036854775806 EOF", &l), 0);
}

Test(locks, refused_lines)
{
	static const char *const bad[] = {
		"\t1: LEASE  ACTIVE    READ 1234 fe:00:567 0 EOF",
		"\t1: DELEG  ACTIVE    READ 1234 fe:00:567 0 EOF",
		"\t1: ACCESS ADVISORY  READ 1234 fe:00:567 0 EOF",
		"\t1: POSIX  MANDATORY WRITE 1234 fe:00:567 0 EOF",
		"\t1: POSIX  ADVISORY  UNLCK 1234 fe:00:567 0 EOF",
		"\t1: POSIX  ADVISORY  WRITE 1234 fe:00:567 150 149",	/* end before start */
		"\t1: POSIX  ADVISORY  WRITE 1234 fe:00:567 -5 10",
		"\t1: POSIX  ADVISORY  WRITE 1234 fe:00:567 5 1x",
		"\t1: POSIX  ADVISORY  WRITE 1234 fe:00:567 99999999999999999999 EOF",
		"\t1: POSIX  ADVISORY  WRITE 1234 fe:00:567 0 9223372036854775807",
		"\t1: POSIX  ADVISORY  WRITE 1234 fe:00:567 0",		/* cut */
		"\t1: FLOCK  ADVISORY  WRITE 1234 fe:00:567 0 10",	/* a range on a flock */
		"",
		"garbage",
	};
	FileLock l;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(parse(bad[i], &l), -EOPNOTSUPP, "accepted: '%s'", bad[i]);
}

Test(locks, only_files_reopened_by_path)
{
	struct fd_dump d;
	FileLock l;

	reg_fd(&d);
	d.ops = &pipe_dump_ops;
	cr_expect_eq(locks_parse_line(&d, "\t1: FLOCK  ADVISORY  WRITE 1 0:1:2 0 EOF", &l),
		     -EOPNOTSUPP);
	d.ops = &dir_dump_ops;
	cr_expect_eq(locks_parse_line(&d, "\t1: FLOCK  ADVISORY  WRITE 1 0:1:2 0 EOF", &l), 0);
}

/* One process with @n fds, each holding @lk; fd i shares description i (its first holder). */
static FdEntry fds[2];
static FdEntry *fdp[2] = { &fds[0], &fds[1] };
static FileLock *lkp[1];

static void image(FileLock *lk, uint32_t type)
{
	size_t i;

	lkp[0] = lk;
	for (i = 0; i < 2; i++) {
		fd_entry__init(&fds[i]);
		fds[i].fd = 3 + i;
		fds[i].type = type;
		fds[i].path = "/x";
		fds[i].n_locks = 1;
		fds[i].locks = lkp;
	}
}

Test(locks, layout)
{
	FileLock lk = FILE_LOCK__INIT;
	FilesEntry fe = FILES_ENTRY__INIT;
	struct open_file ofv[1] = { { 1, 5, false, &fds[0] } };
	struct open_files of = { ofv, 1, 1, 0 };
	struct rst_lock out[2];
	size_t nr;

	fe.n_fds = 2;
	fe.fds = fdp;
	/* POSIX: both fds take theirs (the process's own) */
	lk.kind = FILE_LOCK_KIND__FILE_LOCK_POSIX;
	lk.write = 1;
	lk.start = 100;
	lk.len = 50;
	image(&lk, FD_TYPE__FD_REG);
	cr_assert_eq(rst_locks_max(&fe), 2);
	cr_assert_eq(rst_locks_layout(&of, &fe, out, &nr), 0);
	cr_assert_eq(nr, 2);
	cr_expect_eq(out[0].fd, 3);
	cr_expect_eq(out[0].kind, RST_LOCK_POSIX);
	cr_expect_eq(out[0].type, F_WRLCK);
	cr_expect_eq(out[0].start, 100);
	cr_expect_eq(out[0].len, 50);
	/* OFD: only the fd whose description this process set up */
	lk.kind = FILE_LOCK_KIND__FILE_LOCK_OFD;
	lk.write = 0;
	cr_assert_eq(rst_locks_layout(&of, &fe, out, &nr), 0);
	cr_assert_eq(nr, 1);
	cr_expect_eq(out[0].fd, 3);
	cr_expect_eq(out[0].kind, RST_LOCK_OFD);
	cr_expect_eq(out[0].type, F_RDLCK);
	lk.kind = FILE_LOCK_KIND__FILE_LOCK_FLOCK;
	lk.start = lk.len = 0;
	cr_assert_eq(rst_locks_layout(&of, &fe, out, &nr), 0);
	cr_expect_eq(nr, 1);
	cr_expect_eq(out[0].kind, RST_LOCK_FLOCK);
}

Test(locks, hostile_image)
{
	static const struct { int kind; uint64_t start, len; uint32_t type; } bad[] = {
		{ 0, 0, 0, FD_TYPE__FD_REG },
		{ 4, 0, 0, FD_TYPE__FD_REG },
		{ -1, 0, 0, FD_TYPE__FD_REG },
		{ FILE_LOCK_KIND__FILE_LOCK_POSIX, (uint64_t)INT64_MAX + 1, 0, FD_TYPE__FD_REG },
		{ FILE_LOCK_KIND__FILE_LOCK_POSIX, 10, INT64_MAX, FD_TYPE__FD_REG },
		{ FILE_LOCK_KIND__FILE_LOCK_OFD, 0, UINT64_MAX, FD_TYPE__FD_REG },
		{ FILE_LOCK_KIND__FILE_LOCK_FLOCK, 1, 0, FD_TYPE__FD_REG },
		{ FILE_LOCK_KIND__FILE_LOCK_FLOCK, 0, 5, FD_TYPE__FD_REG },
		{ FILE_LOCK_KIND__FILE_LOCK_POSIX, 0, 0, FD_TYPE__FD_PIPE },
		{ FILE_LOCK_KIND__FILE_LOCK_POSIX, 0, 0, FD_TYPE__FD_SOCK },
	};
	FileLock lk = FILE_LOCK__INIT;
	FilesEntry fe = FILES_ENTRY__INIT;
	struct open_file ofv[1] = { { 1, 5, false, &fds[0] } };
	struct open_files of = { ofv, 1, 1, 0 };
	struct rst_lock out[2];
	size_t i, nr;

	fe.n_fds = 2;
	fe.fds = fdp;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		lk.kind = bad[i].kind;
		lk.start = bad[i].start;
		lk.len = bad[i].len;
		image(&lk, bad[i].type);
		cr_expect_eq(rst_locks_layout(&of, &fe, out, &nr), -EINVAL, "case %zu accepted", i);
	}
	/* a memfd of the tree's shared memory is not reopened by path */
	lk.kind = FILE_LOCK_KIND__FILE_LOCK_POSIX;
	lk.start = lk.len = 0;
	image(&lk, FD_TYPE__FD_REG);
	fds[0].has_shmid = 1;
	cr_expect_eq(rst_locks_layout(&of, &fe, out, &nr), -EINVAL);
}
