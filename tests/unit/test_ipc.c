// SPDX-License-Identifier: MIT
/*
 * dest-agent/ipc.c: a System V object from an image is made only as a
 * kernel could have had it; a bad entry fails the restore before anything
 * is made.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/shm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dest-agent/restore.h"
#include "proto/image.h"

static const uint32_t tree[2] = { 100, 101 };

/* ipc_restore over a directory holding @name with @msg (or @raw bytes): its result. */
static int restore_one(const char *name, const ProtobufCMessage *msg, const void *raw,
		       size_t raw_len)
{
	char dir[] = "/tmp/ferry-test-ipc.XXXXXX", path[64];
	struct ipc_sets is = { 0 };
	struct img_buf b;
	int dirfd, ret;

	cr_assert_not_null(mkdtemp(dir));
	dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(dirfd, 0);
	cr_assert_eq(img_buf_init(&b), 0);
	if (msg)
		cr_assert_eq(img_buf_add(&b, msg), 0);
	cr_assert_eq(img_write_file(dirfd, name, raw ? raw : b.data, raw ? raw_len : b.len), 0);
	img_buf_free(&b);
	ret = ipc_restore(&is, dirfd, tree, 2);
	if (ret)
		cr_expect_eq(is.nr_made + is.nr_made_q, 0, "an object was made from a bad image");
	ipc_sets_close(&is, true);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	close(dirfd);
	rmdir(dir);
	return ret;
}

/* A set of 2 that could be made: each test spoils one field. */
static SysvPerm perm = SYSV_PERM__INIT;
static uint32_t values[2] = { 5, 0 }, pids[2] = { 100, 0 };

static void sem_ok(SysvSemEntry *e)
{
	sysv_perm__init(&perm);
	perm.id = 7;
	perm.mode = 0600;
	values[0] = 5;
	values[1] = 0;
	pids[0] = 100;
	pids[1] = 0;
	sysv_sem_entry__init(e);
	e->perm = &perm;
	e->n_values = e->n_pids = 2;
	e->values = values;
	e->pids = pids;
}

/* The good entry is made (in an IPC namespace of this test's own), with its id. */
Test(ipc, good_sem_entry)
{
	SysvSemEntry e;

	if (unshare(CLONE_NEWIPC))
		cr_skip_test("no IPC namespace of our own: %s", strerror(errno));
	sem_ok(&e);
	cr_expect_eq(restore_one("ipc.img", &e.base, NULL, 0), 0);
	sem_ok(&e);
	perm.key = 1234;
	cr_expect_eq(restore_one("ipc.img", &e.base, NULL, 0), 0);
}

Test(ipc, bad_sem_entries)
{
	SysvSemEntry e;

	sem_ok(&e);
	values[0] = 40000;	/* above SEMVMX */
	cr_expect_eq(restore_one("ipc.img", &e.base, NULL, 0), -EINVAL);
	sem_ok(&e);
	pids[0] = 555;		/* not a process of the tree */
	cr_expect_eq(restore_one("ipc.img", &e.base, NULL, 0), -EINVAL);
	sem_ok(&e);
	values[1] = 3;		/* a value no one set */
	cr_expect_eq(restore_one("ipc.img", &e.base, NULL, 0), -EINVAL);
	sem_ok(&e);
	e.n_pids = 1;
	cr_expect_eq(restore_one("ipc.img", &e.base, NULL, 0), -EINVAL);
	sem_ok(&e);
	e.n_values = e.n_pids = 0;
	cr_expect_eq(restore_one("ipc.img", &e.base, NULL, 0), -EINVAL);
	sem_ok(&e);
	perm.mode = 01600;	/* not permission bits */
	cr_expect_eq(restore_one("ipc.img", &e.base, NULL, 0), -EINVAL);
	sem_ok(&e);
	perm.id = -2;
	cr_expect_eq(restore_one("ipc.img", &e.base, NULL, 0), -EINVAL);
}

Test(ipc, bad_msg_entries)
{
	SysvMsgEntry e = SYSV_MSG_ENTRY__INIT;
	SysvMsg m = SYSV_MSG__INIT, *mp = &m;
	uint8_t data[4] = "abc";

	sysv_perm__init(&perm);
	perm.id = 3;
	perm.mode = 0600;
	e.perm = &perm;
	e.qbytes = 16384;
	m.type = 1;
	m.data.len = sizeof(data);
	m.data.data = data;
	e.n_msgs = 1;
	e.msgs = &mp;
	/* a message but no sender */
	cr_expect_eq(restore_one("ipc-msg.img", &e.base, NULL, 0), -EINVAL);
	e.lspid = 555;		/* not of the tree */
	cr_expect_eq(restore_one("ipc-msg.img", &e.base, NULL, 0), -EINVAL);
	e.lspid = 101;
	m.type = 0;		/* msgsnd takes types above 0 only */
	cr_expect_eq(restore_one("ipc-msg.img", &e.base, NULL, 0), -EINVAL);
	m.type = 1;
	e.qbytes = 1ULL << 40;
	cr_expect_eq(restore_one("ipc-msg.img", &e.base, NULL, 0), -EINVAL);
	e.qbytes = 16384;
	e.n_msgs = 0;		/* sent, never received, yet empty */
	cr_expect_eq(restore_one("ipc-msg.img", &e.base, NULL, 0), -EINVAL);
	e.lspid = 0;
	e.lrpid = 100;		/* received what no one sent */
	cr_expect_eq(restore_one("ipc-msg.img", &e.base, NULL, 0), -EINVAL);
}

Test(ipc, truncated)
{
	uint8_t raw[12] = { 0x46, 0x52, 0x59, 0x31, 40, 0, 0, 0, 1, 2, 3, 4 };

	cr_expect_lt(restore_one("ipc.img", NULL, raw, sizeof(raw)), 0);
	cr_expect_lt(restore_one("ipc-msg.img", NULL, raw, sizeof(raw)), 0);
}

/* A SysV segment of shmem.img (dest-agent/ipc.c's part of shm.c's objects). */
static SysvShm sysv;

static void shm_ok(ShmemEntry *e)
{
	shmem_entry__init(e);
	sysv_shm__init(&sysv);
	sysv_perm__init(&perm);
	perm.key = 0x4242;
	perm.id = 7;
	perm.mode = 0640;
	sysv.perm = &perm;
	e->id = 1;
	e->size = 3 * 4096 + 5;
	e->sysv = &sysv;
}

/* Made with its key, id, size, mode, SHM_DEST left for later; an fd of its memory back. */
Test(ipc, good_shm_entry)
{
	struct shmid_ds ds;
	ShmemEntry e;
	int fd, id;

	if (unshare(CLONE_NEWIPC))
		cr_skip_test("no IPC namespace of our own: %s", strerror(errno));
	shm_ok(&e);
	fd = ipc_shm_make(&e, &id);
	cr_assert_geq(fd, 0, "ipc_shm_make: %s", strerror(-fd));
	cr_expect_eq(id, 7);
	cr_assert_eq(shmctl(id, IPC_STAT, &ds), 0);
	cr_expect_eq(ds.shm_segsz, e.size);
	cr_expect_eq(ds.shm_perm.__key, 0x4242);
	cr_expect_eq(ds.shm_perm.mode & 0777, 0640);
	cr_expect_eq(ds.shm_nattch, 0, "the restore keeps no attachment of its own");
	cr_expect_eq(pwrite(fd, "x", 1, 3 * 4096), 1, "its memory is writable through the fd");
	close(fd);
	/* taken: the same key and id again */
	shm_ok(&e);
	cr_expect_eq(ipc_shm_make(&e, &id), -EEXIST);
	cr_expect_eq(shmctl(7, IPC_RMID, NULL), 0);
}

Test(ipc, bad_shm_entries)
{
	ShmemEntry e;
	int id;

	shm_ok(&e);
	perm.mode = 01640;	/* SHM_DEST is its own field, not a mode bit */
	cr_expect_eq(ipc_shm_make(&e, &id), -EINVAL);
	shm_ok(&e);
	sysv.dest = true;	/* removed while attached: its key is IPC_PRIVATE */
	cr_expect_eq(ipc_shm_make(&e, &id), -EINVAL);
	shm_ok(&e);
	perm.id = -1;
	cr_expect_eq(ipc_shm_make(&e, &id), -EINVAL);
	cr_expect_eq(id, -1, "nothing made");
}
