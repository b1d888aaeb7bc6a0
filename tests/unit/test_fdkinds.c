// SPDX-License-Identifier: MIT
/*
 * The destination's new fd kinds and deleted files (fds, mappings) against hostile
 * images: entries that lack what they need, or name what is not there, are
 * refused (never a crash, never a wrong object).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dest-agent/restore.h"
#include "proto/image.h"

static pid_t no_task(void *arg, pid_t saved)
{
	(void)arg;
	(void)saved;
	return -1;
}

Test(fdkinds, memfd_without_name_or_number)
{
	struct open_files of = { 0 };
	struct fd_open o = { .of = &of, .round_dirfd = -1 };
	FdEntry f = FD_ENTRY__INIT;

	f.type = FD_TYPE__FD_MEMFD;
	cr_expect_eq(memfd_restore_ops.open(&o, &f, 1), -EINVAL);
	f.path = "/tmp/not-a-memfd";
	f.has_memfd_id = f.has_seals = 1;
	f.memfd_id = 1;
	cr_expect_eq(memfd_restore_ops.open(&o, &f, 1), -EINVAL);
	f.path = "/memfd:x";
	f.has_seals = 0;
	cr_expect_eq(memfd_restore_ops.open(&o, &f, 1), -EINVAL);
	cr_expect_eq(of.nr, 0);
	open_files_close(&of);
}

Test(fdkinds, memfd_data_missing)
{
	struct open_files of = { 0 };
	char dir[] = "/tmp/ferry-test-fdkinds.XXXXXX";
	FdEntry f = FD_ENTRY__INIT;
	struct fd_open o = { .of = &of };

	cr_assert_not_null(mkdtemp(dir));
	o.round_dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	f.type = FD_TYPE__FD_MEMFD;
	f.path = "/memfd:x";
	f.has_memfd_id = f.has_seals = 1;
	f.memfd_id = 7;
	cr_expect_eq(memfd_restore_ops.open(&o, &f, 1), -ENOENT);
	cr_expect_eq(of.nr, 0, "a half-made memfd stayed registered");
	close(o.round_dirfd);
	rmdir(dir);
	open_files_close(&of);
}

Test(fdkinds, pidfd_outside_the_tree)
{
	struct open_files of = { 0 };
	struct fd_open o = { .of = &of, .round_dirfd = -1, .task = no_task };
	FdEntry f = FD_ENTRY__INIT;

	f.type = FD_TYPE__FD_PIDFD;
	cr_expect_eq(pidfd_restore_ops.open(&o, &f, 1), -EINVAL);
	f.has_target = 1;
	f.target = getpid();
	cr_expect_eq(pidfd_restore_ops.open(&o, &f, 1), -ESRCH);
}

Test(fdkinds, pty_entry_not_whole)
{
	struct open_files of = { 0 };
	struct fd_open o = { .of = &of, .round_dirfd = -1 };
	FdEntry f = FD_ENTRY__INIT;
	TtyEntry t = TTY_ENTRY__INIT;
	uint8_t termios[44] = { 0 }, ws[8] = { 0 };	/* struct termios2, struct winsize */

	f.type = FD_TYPE__FD_TTY;
	cr_expect_eq(tty_restore_ops.open(&o, &f, 1), -EINVAL, "no tty_entry");
	f.tty = &t;
	t.termios.data = termios;
	t.termios.len = 40;
	cr_expect_eq(tty_restore_ops.open(&o, &f, 1), -EINVAL, "a short termios");
	t.termios.len = sizeof(termios);
	cr_expect_eq(tty_restore_ops.open(&o, &f, 1), -EINVAL, "a slave without a window size");
	t.has_winsize = 1;
	t.winsize.data = ws;
	t.winsize.len = 4;
	cr_expect_eq(tty_restore_ops.open(&o, &f, 1), -EINVAL, "a short window size");
	t.winsize.len = sizeof(ws);
	t.index = 1u << 20;
	cr_expect_eq(tty_restore_ops.open(&o, &f, 1), -EINVAL, "an index past the kernel's");
	cr_expect_eq(tty_ctty_fd(0, ws, 4), -EINVAL, "a session's short window size");
	cr_expect_eq(tty_ctty_fd(1u << 20, NULL, 0), -EINVAL, "a session's index past the kernel's");
	cr_expect_eq(of.nr, 0);
	tty_restore_end();
	open_files_close(&of);
}

Test(fdkinds, fifo_checked_before_anything)
{
	MmEntry mm = MM_ENTRY__INIT;
	FilesEntry files = FILES_ENTRY__INIT;
	FdEntry f = FD_ENTRY__INIT, *fp = &f;
	char dir[] = "/tmp/ferry-test-fdkinds.XXXXXX", path[64];

	files.fds = &fp;
	files.n_fds = 1;
	f.type = FD_TYPE__FD_FIFO;
	cr_expect_eq(rst_check_files(&mm, &files), -EINVAL, "no path, no number");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	f.path = path;
	f.has_pipe_id = 1;
	f.pipe_id = 1;
	cr_expect_eq(rst_check_files(&mm, &files), -ENOENT, "missing");
	cr_assert_eq(close(open(path, O_CREAT | O_WRONLY, 0600)), 0);
	cr_expect_eq(rst_check_files(&mm, &files), -ESTALE, "a regular file, not a FIFO");
	unlink(path);
	cr_assert_eq(mkfifo(path, 0600), 0);
	cr_expect_eq(rst_check_files(&mm, &files), 0);
	unlink(path);
	rmdir(dir);
}

/*
 * The FIFO is opened long after rst_check_files saw it (the last round of a
 * migration): a file put at its path since is refused, neither opened
 * read-write nor given the FIFO's saved data.
 */
Test(fdkinds, fifo_replaced_after_the_check)
{
	char dir[] = "/tmp/ferry-test-fdkinds.XXXXXX", path[64], img[64], buf[16];
	struct open_files of = { 0 };
	struct fd_open o = { .of = &of };
	PipeDataEntry pd = PIPE_DATA_ENTRY__INIT;
	FdEntry f = FD_ENTRY__INIT;
	uint8_t data[] = "saved";
	struct img_buf b;
	struct stat st;
	int fd;

	cr_assert_not_null(mkdtemp(dir));
	o.round_dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	pd.pipe_id = 1;
	pd.data.data = data;
	pd.data.len = 5;
	snprintf(img, sizeof(img), "%s/fifo-1.img", dir);
	cr_assert_eq(img_buf_init(&b), 0);
	cr_assert_eq(img_buf_add(&b, &pd.base), 0);
	cr_assert_eq(img_write_file(o.round_dirfd, "fifo-1.img", b.data, b.len), 0);
	img_buf_free(&b);
	snprintf(path, sizeof(path), "%s/f", dir);
	f.type = FD_TYPE__FD_FIFO;
	f.path = path;
	f.flags = O_RDONLY;
	f.has_pipe_id = 1;
	f.pipe_id = 1;
	cr_assert_eq(close(open(path, O_CREAT | O_WRONLY, 0600)), 0);
	cr_expect_lt(fifo_restore_ops.open(&o, &f, 1), 0, "a regular file opened as the FIFO");
	cr_expect_eq(of.nr, 0);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_size, 0, "the FIFO's data written into a regular file");
	unlink(path);
	/* the real thing still opens, holding the data */
	cr_assert_eq(mkfifo(path, 0600), 0);
	fd = fifo_restore_ops.open(&o, &f, 1);
	cr_assert_geq(fd, 0);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_expect(S_ISFIFO(st.st_mode));
	cr_expect_eq(read(fd, buf, sizeof(buf)), 5);
	close(fd);
	open_files_close(&of);
	unlink(path);
	unlink(img);
	close(o.round_dirfd);
	rmdir(dir);
}

Test(fdkinds, deleted_map_bad_ids)
{
	struct shm_table t = { 0 };
	VmaEntry v = VMA_ENTRY__INIT, *vp = &v;
	MmEntry mm = MM_ENTRY__INIT;

	mm.vmas = &vp;
	mm.n_vmas = 1;
	v.kind = VMA_KIND__VMA_FILE;
	v.path = "/tmp/x";
	v.has_ghost_id = 1;
	v.ghost_id = 0;
	cr_expect_eq(ghost_files_restore(&t, &mm, NULL, -1), -EINVAL);
	v.ghost_id = SHM_GHOST_BASE;
	cr_expect_eq(ghost_files_restore(&t, &mm, NULL, -1), -EINVAL);
	v.ghost_id = 1;
	v.kind = VMA_KIND__VMA_ANON;
	cr_expect_eq(ghost_files_restore(&t, &mm, NULL, -1), -EINVAL);
	v.kind = VMA_KIND__VMA_FILE;
	v.path = NULL;
	cr_expect_eq(ghost_files_restore(&t, &mm, NULL, -1), -EINVAL);
	cr_expect_eq(t.nr, 0);
	shm_table_close(&t);
}

Test(fdkinds, deleted_fd_bad)
{
	struct shm_table t = { 0 };
	MmEntry mm = MM_ENTRY__INIT;
	FilesEntry files = FILES_ENTRY__INIT;
	FdEntry f = FD_ENTRY__INIT, *fp = &f;

	files.fds = &fp;
	files.n_fds = 1;
	f.type = FD_TYPE__FD_REG;
	f.has_ghost_id = 1;
	f.ghost_id = 3;
	f.path = "/tmp/x";
	cr_expect_eq(ghost_files_restore(&t, &mm, &files, -1), -EINVAL, "not a ghost");
	f.ghost = 1;
	f.ghost_id = 0;
	cr_expect_eq(ghost_files_restore(&t, &mm, &files, -1), -EINVAL, "id 0");
	f.ghost_id = 3;
	f.path = NULL;
	cr_expect_eq(ghost_files_restore(&t, &mm, &files, -1), -EINVAL, "no path");
	cr_expect_eq(t.nr, 0);
	shm_table_close(&t);
}

/* ghost-/memfd- image @ge into @dir as "g.img", then file_data_fill on a new memfd: its result. */
static int fill_from(const char *dir, const GhostFileEntry *ge, struct stat *st)
{
	struct img_buf b;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY), fd, ret;

	cr_assert_geq(dfd, 0);
	cr_assert_eq(img_buf_init(&b), 0);
	cr_assert_eq(img_buf_add(&b, &ge->base), 0);
	cr_assert_eq(img_write_file(dfd, "g.img", b.data, b.len), 0);
	img_buf_free(&b);
	fd = memfd_create("ferry-test", MFD_CLOEXEC);
	cr_assert_geq(fd, 0);
	ret = file_data_fill(fd, dfd, "g.img");
	cr_assert_eq(fstat(fd, st), 0);
	close(fd);
	unlinkat(dfd, "g.img", 0);
	close(dfd);
	return ret;
}

/*
 * A deleted file or memfd comes back with its owner, and its set-id bits
 * only with its owner: made by root, a set-user-ID file the process could
 * execute would run as root.
 */
Test(fdkinds, file_data_owner_and_setid)
{
	char dir[] = "/tmp/ferry-test-fdkinds.XXXXXX";
	GhostFileEntry ge = GHOST_FILE_ENTRY__INIT;
	struct stat st;

	cr_assert_not_null(mkdtemp(dir));
	ge.size = 10;
	ge.mode = 04755;
	ge.has_uid = ge.has_gid = 1;
	ge.uid = 1234;
	ge.gid = 5678;
	cr_expect_eq(fill_from(dir, &ge, &st), 0);
	cr_expect_eq(st.st_uid, 1234, "owner %u", st.st_uid);
	cr_expect_eq(st.st_gid, 5678, "group %u", st.st_gid);
	cr_expect_eq(st.st_mode & 07777, 04755, "mode %#o", st.st_mode & 07777);
	cr_expect_eq(st.st_size, 10);
	/* an older image, no owner: set-id bits refused, plain modes fine */
	ge.has_uid = ge.has_gid = 0;
	cr_expect_eq(fill_from(dir, &ge, &st), -EINVAL, "a root-owned set-user-ID file");
	ge.mode = 02755;
	cr_expect_eq(fill_from(dir, &ge, &st), -EINVAL, "a root-owned set-group-ID file");
	ge.mode = 0640;
	cr_expect_eq(fill_from(dir, &ge, &st), 0);
	cr_expect_eq(st.st_mode & 07777, 0640);
	rmdir(dir);
}
