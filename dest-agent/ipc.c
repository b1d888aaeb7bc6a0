// SPDX-License-Identifier: MIT
/*
 * System V semaphore sets and message queues back (ipc.img, ipc-msg.img:
 * source-agent/ipc.c), in the restore's IPC namespace (the tree's), before
 * the tree runs.
 *
 * Each object is made with its key and id: the id by kernel.sem_next_id or
 * msg_next_id (the id the next object takes, CONFIG_CHECKPOINT_RESTORE),
 * its creator (cuid, cgid) by making it under those effective ids, then
 * owner, mode (and a queue's qbytes) by IPC_SET. An id or key taken here
 * fails the restore, naming it.
 *
 * The kernel records who used an object last, so the tree's processes do
 * what sets that, injected once they exist (stopped, before FINAL): a
 * semaphore's value is set by its last user (SETVAL, ipc_sem_values); a
 * queue's last receiver takes a message of ours, then we send all but the
 * last message, which its last sender sends (ipc_msg_fill). A semaphore
 * never used is 0 as made. Times (otime, ctime, stime, rtime) cannot be
 * set: they are this host's.
 *
 * A shared memory segment (a shmem.img object with sysv, made by shm.c
 * through ipc_shm_make) is made the same way, its memory filled through an
 * fd; the blob attaches it in each process (RST_OP_SHMAT), then its last
 * attacher attaches and detaches it once more (shm_lpid) and one removed
 * while attached gets IPC_RMID (ipc_shm_finish). Its creator pid is ours.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/inject.h"
#include "common/log.h"
#include "common/util.h"
#include "dest-agent/restore.h"
#include "proto/image.h"

#define IPC_IMG		"ipc.img"
#define IPC_MSG_IMG	"ipc-msg.img"
#define SEMS_MAX	32000		/* SEMMSL's ceiling (ipc/sem.c) */
#define SEMVMX		32767		/* a semaphore's largest value */
#define SETS_MAX	32000		/* IPCMNI: more cannot exist */
#define MSG_MAX		(64UL << 20)	/* a message's bytes taken from images */

static bool tree_pid(const uint32_t *pids, size_t nr, uint32_t pid)
{
	size_t i;

	for (i = 0; i < nr; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

/* The identity of an object: an id the kernel could give, permission bits only. */
static bool perm_valid(const SysvPerm *p)
{
	return p && p->id >= 0 && !(p->mode & ~0777u);
}

/* An entry of ipc.img that can be made as it says: 0, or -EINVAL logged. */
static int sem_entry_valid(const SysvSemEntry *e, const uint32_t *pids, size_t nr)
{
	size_t i;

	if (!perm_valid(e->perm) || e->n_values != e->n_pids || !e->n_values ||
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
	pr_err("%s: SysV semaphore set %d: bad entry", IPC_IMG, e->perm ? e->perm->id : -1);
	return -EINVAL;
}

/* What makes a semaphore set and a message queue differ here. */
struct ipc_kind {
	const char *what;	/* for messages */
	const char *next_id;	/* /proc/sys/kernel/X_next_id */
	int (*stat)(int id);	/* 0 if @id exists */
	int (*get)(int key, size_t nr, int flags);
};

static int sem_stat(int id)
{
	struct semid_ds ds;

	return semctl(id, 0, IPC_STAT, &ds);
}

static int sem_get(int key, size_t nr, int flags)
{
	return semget(key, nr, flags);
}

static int msg_stat(int id)
{
	struct msqid_ds ds;

	return msgctl(id, IPC_STAT, &ds);
}

static int msg_get(int key, size_t nr, int flags)
{
	(void)nr;
	return msgget(key, flags);
}

static int shm_stat(int id)
{
	struct shmid_ds ds;

	return shmctl(id, IPC_STAT, &ds);
}

static int shm_get(int key, size_t size, int flags)
{
	return shmget(key, size, flags);
}

static const struct ipc_kind sem_kind = {
	"SysV semaphore set", "/proc/sys/kernel/sem_next_id", sem_stat, sem_get,
};
static const struct ipc_kind msg_kind = {
	"SysV message queue", "/proc/sys/kernel/msg_next_id", msg_stat, msg_get,
};
static const struct ipc_kind shm_kind = {
	"SysV shared memory segment", "/proc/sys/kernel/shm_next_id", shm_stat, shm_get,
};

static int write_next_id(const char *path, int id)
{
	char v[16];
	int fd, n, ret = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	n = snprintf(v, sizeof(v), "%d", id);
	if (fd < 0 || write(fd, v, n) != n)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	return ret;
}

/* The object as its creator (cuid, cgid) would: the kernel takes them from the caller. */
static int get_as(const struct ipc_kind *k, const SysvPerm *o, size_t nr)
{
	uid_t euid = geteuid();
	gid_t egid = getegid();
	int id, err = 0;

	if (setegid(o->cgid) || seteuid(o->cuid)) {
		err = -errno;
		id = -1;
	} else {
		id = k->get(o->key, nr, IPC_CREAT | IPC_EXCL | o->mode);
		if (id < 0)
			err = -errno;
	}
	if (seteuid(euid) || setegid(egid)) {
		pr_perror("cannot take back our own ids");
		abort();	/* running on as someone else is worse */
	}
	return id < 0 ? err : id;
}

/* Make object @o (of @nr semaphores), noted in @made: 0, or -errno after a message naming it. */
static int ipc_make(const struct ipc_kind *k, const SysvPerm *o, size_t nr, int *made,
		    size_t *nr_made)
{
	int id, ret;

	if (!k->stat(o->id) || (o->key != IPC_PRIVATE && k->get(o->key, 0, 0) >= 0)) {
		pr_err("%s %d (key %#x): its id or key is taken here", k->what, o->id,
		       (unsigned int)o->key);
		return -EEXIST;
	}
	ret = write_next_id(k->next_id, o->id);
	if (ret) {
		pr_err("%s %d: cannot choose its id (%s: %s)", k->what, o->id, k->next_id,
		       strerror(-ret));
		return ret;
	}
	id = get_as(k, o, nr);
	if (id < 0) {
		write_next_id(k->next_id, -1);	/* not used: the next one must not get it */
		pr_err("%s %d (key %#x): cannot make it: %s", k->what, o->id,
		       (unsigned int)o->key, strerror(-id));
		return id;
	}
	made[(*nr_made)++] = id;
	if (id != o->id) {
		pr_err("%s %d: made as %d here (its slot is taken)", k->what, o->id, id);
		return -EEXIST;
	}
	return 0;
}

/* What IPC_SET changes: owner and mode (cuid, cgid are the maker's). */
static void perm_set(struct ipc_perm *ip, const SysvPerm *p)
{
	ip->uid = p->uid;
	ip->gid = p->gid;
	ip->mode = p->mode;
}

static int sem_make(struct ipc_sets *is, const SysvSemEntry *e)
{
	struct semid_ds ds;
	int ret;

	ret = ipc_make(&sem_kind, e->perm, e->n_values, is->made, &is->nr_made);
	if (ret)
		return ret;
	memset(&ds, 0, sizeof(ds));
	perm_set(&ds.sem_perm, e->perm);
	if (semctl(e->perm->id, 0, IPC_SET, &ds)) {
		ret = -errno;
		pr_err("SysV semaphore set %d: cannot set its owner and mode: %s", e->perm->id,
		       strerror(-ret));
	}
	return ret;
}

/*
 * Owner, mode and qbytes of queue @e, qbytes at least what ipc_msg_fill
 * sends if @fill (above kernel.msgmnb that takes CAP_SYS_RESOURCE).
 */
static int msg_set(const SysvMsgEntry *e, bool fill)
{
	struct msqid_ds ds;
	int ret = 0;

	memset(&ds, 0, sizeof(ds));
	perm_set(&ds.msg_perm, e->perm);
	ds.msg_qbytes = e->qbytes;
	if (fill) {	/* it may have been lowered below what the queue holds */
		uint64_t need = e->n_msgs + 1;
		size_t i;

		for (i = 0; i < e->n_msgs; i++)
			need += e->msgs[i]->data.len;
		ds.msg_qbytes = need > e->qbytes ? need : e->qbytes;
	}
	if (msgctl(e->perm->id, IPC_SET, &ds)) {
		ret = -errno;
		pr_err("SysV message queue %d: cannot set its owner, mode and size: %s", e->perm->id,
		       strerror(-ret));
	}
	return ret;
}

static int msg_make(struct ipc_sets *is, const SysvMsgEntry *e)
{
	int ret;

	ret = ipc_make(&msg_kind, e->perm, 0, is->made_q, &is->nr_made_q);
	if (!ret)
		ret = msg_set(e, true);
	return ret;
}

/*
 * A queue of ipc-msg.img that can be made as it says: its last users are
 * the tree's, and the ones its state needs (a message was sent: a sender;
 * one was received: a sender too). 0, or -EINVAL logged.
 */
static int msg_entry_valid(const SysvMsgEntry *e, const uint32_t *pids, size_t nr)
{
	uint64_t total = 0;
	size_t i;

	if (!perm_valid(e->perm) || e->qbytes > INT_MAX)
		goto bad;
	if ((e->lspid && !tree_pid(pids, nr, e->lspid)) ||
	    (e->lrpid && !tree_pid(pids, nr, e->lrpid)))
		goto bad;
	if (!e->lspid && (e->n_msgs || e->lrpid))
		goto bad;
	if (e->lspid && !e->n_msgs && !e->lrpid)
		goto bad;
	for (i = 0; i < e->n_msgs; i++) {
		total += e->msgs[i]->data.len;
		if (e->msgs[i]->type <= 0 || e->msgs[i]->data.len > MSG_MAX || total > INT_MAX)
			goto bad;
	}
	return 0;
bad:
	pr_err("%s: SysV message queue %d: bad entry", IPC_MSG_IMG,
	       e->perm ? e->perm->id : -1);
	return -EINVAL;
}

/* Every message of @name (@d) appended to *@v (@nr, @cap), each checked by @valid. */
static int load_entries(int dirfd, const char *name, const ProtobufCMessageDescriptor *d,
			void ***v, size_t *nr, size_t *cap,
			int (*valid)(const void *e, const uint32_t *pids, size_t nr),
			const uint32_t *pids, size_t nr_pids)
{
	struct img_reader r;
	void *data = NULL, *e;
	size_t len;
	int ret;

	ret = img_load_file(dirfd, name, &data, &len);
	if (ret == -ENOENT)
		return 0;	/* the tree uses none */
	if (!ret)
		ret = img_reader_init(&r, name, data, len);
	while (!ret && (ret = img_read_msg(&r, d, &e)) == 1) {
		ret = *nr < SETS_MAX ? 0 : -EINVAL;
		if (!ret)
			ret = grow_array(v, cap, *nr, sizeof(**v));
		if (ret) {
			protobuf_c_message_free_unpacked(e, NULL);
			break;
		}
		(*v)[(*nr)++] = e;
		ret = valid(e, pids, nr_pids);
	}
	free(data);
	return ret;
}

static int sem_valid(const void *e, const uint32_t *pids, size_t nr)
{
	return sem_entry_valid(e, pids, nr);
}

static int msg_valid(const void *e, const uint32_t *pids, size_t nr)
{
	return msg_entry_valid(e, pids, nr);
}

int ipc_restore(struct ipc_sets *is, int dirfd, const uint32_t *pids, size_t nr)
{
	size_t i;
	int ret;

	ret = load_entries(dirfd, IPC_IMG, &sysv_sem_entry__descriptor, (void ***)&is->e,
			   &is->nr, &is->cap, sem_valid, pids, nr);
	if (!ret)
		ret = load_entries(dirfd, IPC_MSG_IMG, &sysv_msg_entry__descriptor,
				   (void ***)&is->q, &is->nr_q, &is->cap_q, msg_valid, pids, nr);
	if (!ret) {
		is->made = calloc(is->nr + 1, sizeof(*is->made));
		is->made_q = calloc(is->nr_q + 1, sizeof(*is->made_q));
		if (!is->made || !is->made_q)
			ret = -ENOMEM;
	}
	for (i = 0; i < is->nr && !ret; i++)
		ret = sem_make(is, is->e[i]);
	for (i = 0; i < is->nr_q && !ret; i++)
		ret = msg_make(is, is->q[i]);
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
			ret = rp_syscall(rp, __NR_semctl, &r, e->perm->id, k, SETVAL, e->values[k], 0, 0);
			if (!ret && r)
				ret = r;
			if (ret)
				pr_err("pid %d: cannot set semaphore %zu of SysV set %d to %u: %s",
				       rp->want_pid, k, e->perm->id, e->values[k], strerror(-ret));
		}
	}
	return ret;
}

static struct rst_process *find_rp(struct rst_process *rps, size_t nr, uint32_t pid)
{
	size_t i;

	for (i = 0; i < nr; i++)
		if ((uint32_t)rps[i].want_pid == pid)
			return &rps[i];
	return NULL;
}

/* Message @m into queue @id: sent by @rp from inside (written to its payload area) or by us. */
static int msg_send(int id, const SysvMsg *m, struct rst_process *rp)
{
	size_t len = sizeof(long) + m->data.len;
	long *buf, r;
	int ret = 0;

	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	buf[0] = m->type;
	memcpy(buf + 1, m->data.data, m->data.len);
	if (!rp) {
		if (msgsnd(id, buf, m->data.len, IPC_NOWAIT))
			ret = -errno;
	} else if (len > rp->payload_cap) {
		ret = -E2BIG;
	} else {
		ret = tracee_write(rp->pid, rp->payload_addr, buf, len);
		if (!ret)
			ret = rp_syscall(rp, __NR_msgsnd, &r, id, rp->payload_addr, m->data.len,
					 IPC_NOWAIT, 0, 0);
		if (!ret && r)
			ret = r;
	}
	free(buf);
	return ret;
}

/* @rp takes the first message of queue @id (one of ours, no bytes). */
static int msg_take(int id, struct rst_process *rp)
{
	long r;
	int ret;

	ret = rp_syscall(rp, __NR_msgrcv, &r, id, rp->payload_addr, 0, 0,
			 IPC_NOWAIT | MSG_NOERROR, 0);
	return ret ?: r < 0 ? r : 0;
}

/*
 * Queue @e as it was: its last receiver takes a message first (of ours,
 * sent by its last sender if no message is left), then the messages in
 * order, the last one sent by the last sender.
 */
static int msg_fill_one(const SysvMsgEntry *e, struct rst_process *rps, size_t nr)
{
	struct rst_process *snd = NULL, *rcv = NULL;
	SysvMsg blank = SYSV_MSG__INIT;
	size_t i;
	int ret = 0;

	blank.type = 1;
	if (e->lspid)
		snd = find_rp(rps, nr, e->lspid);
	if (e->lrpid)
		rcv = find_rp(rps, nr, e->lrpid);
	if ((e->lspid && !snd) || (e->lrpid && !rcv))
		return -ESRCH;
	if (rcv) {
		ret = msg_send(e->perm->id, &blank, e->n_msgs ? NULL : snd);
		if (!ret)
			ret = msg_take(e->perm->id, rcv);
	}
	for (i = 0; i < e->n_msgs && !ret; i++)
		ret = msg_send(e->perm->id, e->msgs[i], i + 1 == e->n_msgs ? snd : NULL);
	if (!ret)
		ret = msg_set(e, false);
	return ret;
}

int ipc_msg_fill(const struct ipc_sets *is, struct rst_process *rps, size_t nr)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < is->nr_q && !ret; i++) {
		ret = msg_fill_one(is->q[i], rps, nr);
		if (ret)
			pr_err("SysV message queue %d: cannot put its %zu messages back: %s",
			       is->q[i]->perm->id, is->q[i]->n_msgs, strerror(-ret));
	}
	return ret;
}

void ipc_sets_close(struct ipc_sets *is, bool undo)
{
	size_t i;

	for (i = 0; undo && i < is->nr_made; i++)
		semctl(is->made[i], 0, IPC_RMID);
	for (i = 0; undo && i < is->nr_made_q; i++)
		msgctl(is->made_q[i], IPC_RMID, NULL);
	for (i = 0; i < is->nr; i++)
		protobuf_c_message_free_unpacked(&is->e[i]->base, NULL);
	for (i = 0; i < is->nr_q; i++)
		protobuf_c_message_free_unpacked(&is->q[i]->base, NULL);
	free(is->e);
	free(is->q);
	free(is->made);
	free(is->made_q);
	memset(is, 0, sizeof(*is));
}

/* ---- System V shared memory segments (shmem.img entries with sysv: shm.c) ---- */

/* An fd of segment @id's memory: attached here a moment, opened through map_files. */
static int shm_open_mem(int id, uint64_t size)
{
	char path[96];
	void *a;
	int fd;

	a = shmat(id, NULL, 0);
	if (a == (void *)-1)
		return -errno;
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)a,
		 (unsigned long)a + (unsigned long)page_up(size));
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	shmdt(a);	/* the tree's attachments are all it has: nattch */
	return fd;
}

int ipc_shm_make(const ShmemEntry *e, int *id)
{
	const SysvShm *s = e->sysv;
	struct shmid_ds ds;
	size_t nr = 0;
	int ret, fd;

	*id = -1;
	if (!perm_valid(s->perm) || (s->dest && s->perm->key != IPC_PRIVATE)) {
		pr_err("shmem.img: SysV shared memory segment %d: bad entry",
		       s->perm ? s->perm->id : -1);
		return -EINVAL;
	}
	ret = ipc_make(&shm_kind, s->perm, e->size, id, &nr);
	if (ret)
		goto fail;
	memset(&ds, 0, sizeof(ds));
	perm_set(&ds.shm_perm, s->perm);
	if (shmctl(*id, IPC_SET, &ds) || (s->locked && shmctl(*id, SHM_LOCK, NULL))) {
		ret = -errno;
		pr_err("SysV shared memory segment %d: cannot set its owner, mode%s: %s", *id,
		       s->locked ? " or lock (SHM_LOCK)" : "", strerror(-ret));
		goto fail;
	}
	fd = shm_open_mem(*id, e->size);
	if (fd >= 0)
		return fd;
	ret = fd;
	pr_err("SysV shared memory segment %d: cannot open its memory: %s", *id, strerror(-ret));
fail:
	if (nr)
		shmctl(*id, IPC_RMID, NULL);
	return ret;
}

/* @rp attaches segment @id and detaches it: the kernel notes it as the last (shm_lpid). */
static int shm_touch(int id, struct rst_process *rp)
{
	long a, r;
	int ret;

	ret = rp_syscall(rp, __NR_shmat, &a, id, 0, SHM_RDONLY, 0, 0, 0);
	if (!ret && a < 0 && a > -4096)
		ret = a;
	if (!ret)
		ret = rp_syscall(rp, __NR_shmdt, &r, a, 0, 0, 0, 0, 0);
	if (!ret && r)
		ret = r;
	return ret;
}

int ipc_shm_finish(const struct shm_table *t, struct rst_process *rps, size_t nr)
{
	struct rst_process *rp;
	size_t i;
	int ret = 0;

	for (i = 0; t && i < t->nr && !ret; i++) {
		const struct shm_slot *s = &t->v[i];

		if (s->sysv < 0 || !s->lpid)
			continue;
		rp = find_rp(rps, nr, s->lpid);
		ret = rp ? shm_touch(s->sysv, rp) : -EINVAL;
		if (ret)
			pr_err("SysV shared memory segment %d: its last attacher (pid %u) cannot "
			       "attach it again: %s", s->sysv, s->lpid, strerror(-ret));
	}
	/* attached by the tree now: one removed while attached is so again (SHM_DEST) */
	for (i = 0; t && i < t->nr && !ret; i++) {
		if (t->v[i].sysv >= 0 && t->v[i].dest && shmctl(t->v[i].sysv, IPC_RMID, NULL)) {
			ret = -errno;
			pr_err("SysV shared memory segment %d: cannot mark it removed: %s",
			       t->v[i].sysv, strerror(-ret));
		}
	}
	return ret;
}

void ipc_shm_undo(const struct shm_table *t)
{
	size_t i;

	for (i = 0; t && i < t->nr; i++)
		if (t->v[i].sysv >= 0)
			shmctl(t->v[i].sysv, IPC_RMID, NULL);
}
