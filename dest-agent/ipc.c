// SPDX-License-Identifier: MIT
/*
 * System V semaphore sets back (ipc.img, source-agent/ipc.c), in the
 * restore's IPC namespace (the tree's), before the tree runs.
 *
 * Each set is made with its key and id: the id by kernel.sem_next_id (the
 * id the next object takes, CONFIG_CHECKPOINT_RESTORE), its creator (cuid,
 * cgid) by making it under those effective ids, then owner and mode by
 * IPC_SET. An id or key taken here fails the restore, naming it. A
 * semaphore's value is set by its last user (GETPID), a process of the
 * tree: SETVAL injected into it once it exists (ipc_sem_values), so the
 * kernel records that process as the last user again. One never used is 0
 * as made. Times (otime, ctime) cannot be set: they are this host's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sem.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "dest-agent/restore.h"
#include "proto/image.h"

#define IPC_IMG		"ipc.img"
#define SEM_NEXT_ID	"/proc/sys/kernel/sem_next_id"
#define SEMS_MAX	32000		/* SEMMSL's ceiling (ipc/sem.c) */
#define SEMVMX		32767		/* a semaphore's largest value */
#define SETS_MAX	32000		/* IPCMNI: more cannot exist */

static bool tree_pid(const uint32_t *pids, size_t nr, uint32_t pid)
{
	size_t i;

	for (i = 0; i < nr; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

/* An entry of ipc.img that can be made as it says: 0, or -EINVAL logged. */
static int sem_entry_valid(const SysvSemEntry *e, const uint32_t *pids, size_t nr)
{
	size_t i;

	if (e->id < 0 || e->mode & ~0777u || e->n_values != e->n_pids || !e->n_values ||
	    e->n_values > SEMS_MAX)
		goto bad;
	for (i = 0; i < e->n_values; i++) {
		if (e->values[i] > SEMVMX)
			goto bad;
		/* a value is set by its last user, which must be one of ours */
		if (e->pids[i] ? !tree_pid(pids, nr, e->pids[i]) : e->values[i] != 0)
			goto bad;
	}
	return 0;
bad:
	pr_err("%s: SysV semaphore set %d: bad entry", IPC_IMG, e->id);
	return -EINVAL;
}

static int write_next_id(int id)
{
	char v[16];
	int fd, n, ret = 0;

	fd = open(SEM_NEXT_ID, O_WRONLY | O_CLOEXEC);
	n = snprintf(v, sizeof(v), "%d", id);
	if (fd < 0 || write(fd, v, n) != n)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	return ret;
}

/* semget as @e's creator (cuid, cgid): the kernel takes them from the caller. */
static int semget_as(const SysvSemEntry *e)
{
	uid_t euid = geteuid();
	gid_t egid = getegid();
	int id, err = 0;

	if (setegid(e->cgid) || seteuid(e->cuid)) {
		err = -errno;
		id = -1;
	} else {
		id = semget(e->key, e->n_values, IPC_CREAT | IPC_EXCL | e->mode);
		if (id < 0)
			err = -errno;
	}
	if (seteuid(euid) || setegid(egid)) {
		pr_perror("cannot take back our own ids");
		abort();	/* running on as someone else is worse */
	}
	return id < 0 ? err : id;
}

/* Make set @e: 0, or -errno after a message naming it. */
static int sem_make(struct ipc_sets *is, const SysvSemEntry *e)
{
	struct semid_ds ds;
	int id, ret;

	if (semctl(e->id, 0, IPC_STAT, &ds) == 0 ||
	    (e->key != IPC_PRIVATE && semget(e->key, 0, 0) >= 0)) {
		pr_err("SysV semaphore set %d (key %#x): its id or key is taken here", e->id,
		       (unsigned int)e->key);
		return -EEXIST;
	}
	ret = write_next_id(e->id);
	if (ret) {
		pr_err("SysV semaphore set %d: cannot choose its id (%s: %s)", e->id, SEM_NEXT_ID,
		       strerror(-ret));
		return ret;
	}
	id = semget_as(e);
	if (id < 0) {
		write_next_id(-1);	/* not used: the next set must not get it */
		pr_err("SysV semaphore set %d (key %#x): cannot make it: %s", e->id,
		       (unsigned int)e->key, strerror(-id));
		return id;
	}
	is->made[is->nr_made++] = id;
	if (id != e->id) {
		pr_err("SysV semaphore set %d: made as %d here (its slot is taken)", e->id, id);
		return -EEXIST;
	}
	memset(&ds, 0, sizeof(ds));
	ds.sem_perm.uid = e->uid;
	ds.sem_perm.gid = e->gid;
	ds.sem_perm.mode = e->mode;
	if (semctl(id, 0, IPC_SET, &ds)) {
		ret = -errno;
		pr_err("SysV semaphore set %d: cannot set its owner and mode: %s", id,
		       strerror(-ret));
		return ret;
	}
	return 0;
}

int ipc_restore(struct ipc_sets *is, int dirfd, const uint32_t *pids, size_t nr)
{
	struct img_reader r;
	SysvSemEntry *e;
	void *data = NULL;
	size_t len, i;
	int ret;

	ret = img_load_file(dirfd, IPC_IMG, &data, &len);
	if (ret == -ENOENT)
		return 0;	/* the tree uses none */
	if (!ret)
		ret = img_reader_init(&r, IPC_IMG, data, len);
	while (!ret && (ret = img_read_msg(&r, &sysv_sem_entry__descriptor, (void **)&e)) == 1) {
		ret = is->nr < SETS_MAX ? 0 : -EINVAL;
		if (!ret)
			ret = grow_array(&is->e, &is->cap, is->nr, sizeof(*is->e));
		if (ret) {
			protobuf_c_message_free_unpacked(&e->base, NULL);
			break;
		}
		is->e[is->nr++] = e;
		ret = sem_entry_valid(e, pids, nr);
	}
	free(data);
	if (!ret && is->nr)
		is->made = calloc(is->nr, sizeof(*is->made));
	if (!ret && is->nr && !is->made)
		ret = -ENOMEM;
	for (i = 0; i < is->nr && !ret; i++)
		ret = sem_make(is, is->e[i]);
	return ret;
}

int ipc_sem_values(const struct ipc_sets *is, struct rst_process *rp)
{
	size_t i, k;
	long r;
	int ret = 0;

	for (i = 0; i < is->nr && !ret; i++) {
		const SysvSemEntry *e = is->e[i];

		for (k = 0; k < e->n_values && !ret; k++) {
			if (e->pids[k] != (uint32_t)rp->want_pid)
				continue;
			ret = rp_syscall(rp, __NR_semctl, &r, e->id, k, SETVAL, e->values[k], 0, 0);
			if (!ret && r)
				ret = r;
			if (ret)
				pr_err("pid %d: cannot set semaphore %zu of SysV set %d to %u: %s",
				       rp->want_pid, k, e->id, e->values[k], strerror(-ret));
		}
	}
	return ret;
}

void ipc_sets_close(struct ipc_sets *is, bool undo)
{
	size_t i;

	for (i = 0; undo && i < is->nr_made; i++)
		semctl(is->made[i], 0, IPC_RMID);
	for (i = 0; i < is->nr; i++)
		protobuf_c_message_free_unpacked(&is->e[i]->base, NULL);
	free(is->e);
	free(is->made);
	memset(is, 0, sizeof(*is));
}
