// SPDX-License-Identifier: MIT
/*
 * System V IPC lives in the IPC namespace, not in the process. A target in
 * an IPC namespace of its own is refused if that namespace holds any
 * semaphore set, message queue or shared memory segment (read from a child that joined it:
 * /proc/sysvipc shows the reader's namespace).
 *
 * In migrate's own namespace (the host's, shared with unrelated programs):
 * - a semaphore set only the tree uses travels (ipc.img, made again with
 *   the same key and id at the destination: dest-agent/ipc.c). The kernel
 *   keeps no creator pid for a set, only each semaphore's last user
 *   (GETPID): a set is the tree's when one of those is a process of the
 *   tree and every other one is too (or none). One whose last users
 *   include a process outside the tree, live or gone, is refused: it may
 *   know the id, and two hosts cannot share the set.
 * - a single-threaded process with a SEM_UNDO list is refused: its
 *   adjustments (semadj) cannot be read, only whether it has a list (kcmp
 *   KCMP_SYSVSEM). Every process with threads has one (CLONE_SYSVSEM makes
 *   it, empty): there ferry cannot tell, so a process with threads is
 *   refused when the tree moves semaphore sets.
 * - a message queue the process last sent to or received from is refused.
 * - a shared memory segment travels when every attachment (shm_nattch,
 *   one per VMA) is a VMA of the tree attaching it whole: shm.c moves it
 *   as a shared memory object (shmem_entry.sysv, ipc_shm_entry). One the
 *   tree made or last attached (cpid, lpid) but does not attach is
 *   refused, so is one attached from outside. In an IPC namespace of its
 *   own, every segment is refused, as every set and queue.
 * - so is every object no live process has used (a set created and held
 *   but never operated on, or whose last user is gone) and that was made
 *   or changed (ctime) after the process started: ferry cannot tell that
 *   the process does not hold its id. One older than the process, that it
 *   never used, is another program's (a host's stale set must not refuse
 *   every migration); the process could still know its id, as it could
 *   know any object of the host's.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "proto/image.h"
#include "source-agent/dump.h"
#include "source-agent/ipc.h"
#include "source-agent/mm.h"
#include "source-agent/preflight.h"
#include "source-agent/proc.h"

#define IDS_MAX		200
#define SYSVIPC_MAX	(1 << 20)	/* /proc/sysvipc/X read at most */
#define SEMS_MAX	32000		/* SEMMSL's ceiling (ipc/sem.c) */

static pid_t ipc_root;	/* the tree's root: ipc_tree_set */
static void atts_forget(void);

/* The objects ipc_dump took: ipc_remove_moved removes them here. */
static struct moved {
	struct moved_obj {
		long id;
		char kind;	/* 's'emaphore set, 'q'ueue, shared 'm'emory segment */
	} *v;
	size_t nr, cap;
} moved;

static int moved_add(long id, char kind)
{
	if (grow_array(&moved.v, &moved.cap, moved.nr, sizeof(*moved.v)))
		return -ENOMEM;
	moved.v[moved.nr].id = id;
	moved.v[moved.nr++].kind = kind;
	return 0;
}

static int moved_rm(const struct moved_obj *o)
{
	if (o->kind == 's')
		return semctl(o->id, 0, IPC_RMID);
	if (o->kind == 'q')
		return msgctl(o->id, IPC_RMID, NULL);
	return shmctl(o->id, IPC_RMID, NULL);
}

void ipc_remove_moved(void)
{
	struct moved_obj *o;

	for (o = moved.v; o < moved.v + moved.nr; o++)
		if (moved_rm(o))
			pr_warn("cannot remove SysV %s %ld, which went with the tree: %m",
				o->kind == 's' ? "semaphore set" : o->kind == 'q' ? "message queue" :
				"shared memory segment", o->id);
	free(moved.v);
	memset(&moved, 0, sizeof(moved));
}

void ipc_tree_set(pid_t root)
{
	ipc_root = root;
	atts_forget();
}

/* One line of /proc/sysvipc/sem, msg or shm. */
struct sysv_obj {
	long key, id, nsems, lspid, lrpid;
	unsigned long cbytes, qnum;
	long long ctime;
	long cpid, lpid;	/* shm: its creator, last to attach or detach */
	unsigned long nattch;
	unsigned int mode;	/* shm: with SHM_DEST, SHM_LOCKED */
};

typedef int (*sysv_fn)(const struct sysv_obj *o, void *arg);

/* @fn on each object of /proc/sysvipc/@what ("sem" or "msg"), until it returns non-zero. */
static int sysvipc_each(const char *what, sysv_fn fn, void *arg)
{
	char path[64], *buf, *line, *nl;
	bool sem = !strcmp(what, "sem"), shm = !strcmp(what, "shm");
	struct sysv_obj o;
	int n;
	int ret = 0;

	buf = malloc(SYSVIPC_MAX);
	if (!buf)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/proc/sysvipc/%s", what);
	if (read_small_file(path, buf, SYSVIPC_MAX) < 0)
		goto out;	/* no SysV IPC in this kernel */
	line = strchr(buf, '\n');	/* the header */
	for (; line && *++line && !ret; line = nl) {
		nl = strchr(line, '\n');
		memset(&o, 0, sizeof(o));
		/*
		 * sem: key semid perms nsems uid gid cuid cgid otime ctime;
		 * msg: key msqid perms cbytes qnum lspid lrpid uid gid cuid cgid
		 * stime rtime ctime; shm: key shmid perms size cpid lpid nattch
		 * uid gid cuid cgid atime dtime ctime rss swap
		 */
		if (sem)
			n = sscanf(line, "%ld %ld %*o %ld %*d %*d %*d %*d %*d %lld", &o.key, &o.id,
				   &o.nsems, &o.ctime) - 4;
		else if (shm)
			n = sscanf(line, "%ld %ld %o %lu %ld %ld %lu %*d %*d %*d %*d %*d %*d %lld",
				   &o.key, &o.id, &o.mode, &o.cbytes, &o.cpid, &o.lpid, &o.nattch,
				   &o.ctime) - 8;
		else
			n = sscanf(line, "%ld %ld %*o %lu %lu %ld %ld %*d %*d %*d %*d %*d %*d %lld",
				   &o.key, &o.id, &o.cbytes, &o.qnum, &o.lspid, &o.lrpid,
				   &o.ctime) - 7;
		if (n < 0)
			break;
		ret = fn(&o, arg);
		if (!nl)
			break;
	}
out:
	free(buf);
	return ret;
}

/* Is there a live process @u (a last user of an object)? */
static bool user_alive(long u)
{
	char path[32];

	snprintf(path, sizeof(path), "/proc/%ld", u);
	return u > 0 && !access(path, F_OK);
}

/* Is @p (a last user of an object) @pid, or a live process of the tree of ipc_root? */
static bool in_tree(long p, pid_t pid)
{
	struct proc_stat ps;
	int depth;

	if (p == pid)
		return true;
	for (depth = 0; ipc_root && p > 1 && depth < 4096; depth++) {
		if (p == ipc_root)
			return true;
		if (proc_read_stat(p, &ps))
			return false;
		p = ps.ppid;
	}
	return false;
}

/* Last users of semaphore set @o as seen from the tree of @pid. */
struct sem_users {
	bool tree;		/* one is a process of the tree */
	long outside;		/* one that is not (live or gone), 0: none */
	bool others;		/* a live process not of the tree is one */
};

/* Last user @v (>0), of the tree if @in. */
static void user_note(struct sem_users *su, long v, bool in)
{
	if (in) {
		su->tree = true;
	} else if (!su->outside) {
		su->outside = v;
		su->others = user_alive(v);
	}
}

static void sem_users(const struct sysv_obj *o, pid_t pid, struct sem_users *su)
{
	long v, last = 0;
	bool last_in = false;
	int i;

	memset(su, 0, sizeof(*su));
	for (i = 0; i < o->nsems && i < SEMS_MAX; i++) {
		v = semctl(o->id, i, GETPID);
		if (v <= 0)
			continue;
		if (v != last) {	/* most semaphores share their last user */
			last = v;
			last_in = in_tree(v, pid);
		}
		user_note(su, v, last_in);
	}
}

/* The ids of objects @pid cannot take with it, for its message. */
struct ids_text {
	pid_t pid;
	int64_t since;		/* @pid's start (0: every object is listed) */
	char s[IDS_MAX];
	size_t n;
	long outside;		/* a set shared with this process outside the tree */
	long shared_id;
	size_t tree_n;		/* objects only the tree uses: they travel */
};

static void ids_add(struct ids_text *t, long id)
{
	if (t->n + 24 < sizeof(t->s))
		t->n += snprintf(t->s + t->n, sizeof(t->s) - t->n, "%s%ld", t->n ? ", " : "", id);
}

/* Note object @o in @t if @pid cannot take it: shared with outsiders, or maybe its. */
static int refused(const struct sysv_obj *o, struct ids_text *t,
		   void (*users)(const struct sysv_obj *o, pid_t pid, struct sem_users *su))
{
	struct sem_users su;

	if (!t->since) {
		ids_add(t, o->id);
		return 0;
	}
	users(o, t->pid, &su);
	if (su.tree && su.outside) {
		t->outside = su.outside;
		t->shared_id = o->id;
	} else if (su.tree) {
		t->tree_n++;
	} else if (!su.tree && !su.others && o->ctime >= t->since) {
		ids_add(t, o->id);	/* no live user: may be ours */
	}
	return 0;
}

static int sem_refused(const struct sysv_obj *o, void *arg)
{
	return refused(o, arg, sem_users);
}

/*
 * Queue @o's last users as seen from the tree of @pid. A message sent or
 * received by no visible process (pid 0: another PID namespace) counts as
 * an outsider's.
 */
static void msg_users(const struct sysv_obj *o, pid_t pid, struct sem_users *su)
{
	long u[2] = { o->lspid, o->lrpid };
	int i;

	memset(su, 0, sizeof(*su));
	for (i = 0; i < 2; i++)
		if (u[i] > 0)
			user_note(su, u[i], in_tree(u[i], pid));
	if (su->tree && !su->outside && !o->lspid && (o->qnum || o->lrpid))
		su->outside = -1;	/* a sender we cannot see */
}

static int msg_refused(const struct sysv_obj *o, void *arg)
{
	return refused(o, arg, msg_users);
}

static int shm_listed(const struct sysv_obj *o, void *arg)
{
	ids_add(arg, o->id);
	return 0;
}

/*
 * What @pid cannot take: in migrate's namespace (*own false) the sets and
 * queues it uses or may hold, or all of its own namespace's (*own true),
 * its shared memory segments too (@shm; in migrate's, shm_check sees them).
 */
static int ipc_read(pid_t pid, struct ids_text *sem, struct ids_text *msg, struct ids_text *shm,
		    bool *own)
{
	struct stat mine, its;
	char path[64], buf[3 * IDS_MAX + 3], *nl;
	int p[2], nsfd, status;
	ssize_t n;
	pid_t c;

	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", pid);
	if (stat(path, &its) || stat("/proc/self/ns/ipc", &mine))
		return -errno;
	*own = its.st_ino != mine.st_ino || its.st_dev != mine.st_dev;
	if (!*own) {
		int64_t since = proc_start_time(pid);

		if (since < 0)
			return since;
		/*
		 * since is rounded down (btime and the ticks both): a set whose
		 * ctime (rounded down too) is below it was made before the start
		 */
		sem->pid = msg->pid = pid;
		sem->since = msg->since = since ?: 1;
		sysvipc_each("sem", sem_refused, sem);
		sysvipc_each("msg", msg_refused, msg);
		return 0;
	}
	nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return -errno;
	if (pipe2(p, O_CLOEXEC)) {
		close(nsfd);
		return -errno;
	}
	c = fork();
	if (c == 0) {
		close(p[0]);
		if (setns(nsfd, CLONE_NEWIPC))
			_exit(1);
		sysvipc_each("sem", sem_refused, sem);
		sysvipc_each("msg", msg_refused, msg);
		sysvipc_each("shm", shm_listed, shm);
		snprintf(buf, sizeof(buf), "%s\n%s\n%s", sem->s, msg->s, shm->s);
		_exit(write_full(p[1], buf, strlen(buf) + 1) ? 1 : 0);
	}
	close(nsfd);
	close(p[1]);
	n = c < 0 ? -1 : read(p[0], buf, sizeof(buf) - 1);
	close(p[0]);
	if (c > 0)
		waitpid(c, &status, 0);
	if (c < 0 || n <= 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return -EIO;
	buf[n] = 0;
	snprintf(sem->s, IDS_MAX, "%.*s", (int)strcspn(buf, "\n"), buf);
	nl = strchr(buf, '\n');
	nl = nl ? nl + 1 : buf + n;
	snprintf(msg->s, IDS_MAX, "%.*s", (int)strcspn(nl, "\n"), nl);
	nl = strchr(nl, '\n');
	snprintf(shm->s, IDS_MAX, "%s", nl ? nl + 1 : "");
	return 0;
}

/*
 * A single-threaded @pid with a SEM_UNDO list: kcmp compares its list with
 * that of a fresh child of ours (fork gives none), equal only if it has
 * none. A thread made with CLONE_SYSVSEM (every pthread) gets the process
 * an empty list too, so with threads it cannot be told: refused when the
 * tree moves semaphore sets (@sets), whose adjustments it may hold.
 */
static int undo_check(pid_t pid, bool sets)
{
	pid_t *tids = NULL, ref;
	size_t nr = 0;
	long r = 0;
	int ret;

	ret = proc_read_threads(pid, &tids, &nr);
	free(tids);
	if (!ret && nr > 1 && sets) {
		pr_err("pid %d: it has threads and the tree uses SysV semaphore sets: ferry cannot "
		       "tell whether it holds SEM_UNDO adjustments (semadj) on them", pid);
		return -EOPNOTSUPP;
	}
	if (ret || nr != 1)
		return ret;
	ref = fork();
	if (ref == 0) {
		pause();
		_exit(0);
	}
	if (ref < 0)
		return -errno;
	r = syscall(SYS_kcmp, pid, ref, KCMP_SYSVSEM, 0, 0);
	if (r < 0 && errno == ESRCH && !user_alive(pid))
		ret = -ESRCH;	/* gone meanwhile */
	else if (r < 0)
		pr_err("pid %d: cannot tell whether it has SEM_UNDO adjustments (kcmp: %m)", pid);
	else if (r)
		pr_err("pid %d: it has a SEM_UNDO list (a semop with SEM_UNDO, or threads it "
		       "had): ferry cannot read semaphore adjustments (semadj)", pid);
	if (r && !ret)
		ret = -EOPNOTSUPP;
	kill(ref, SIGKILL);
	waitpid(ref, NULL, 0);
	return ret;
}

static int shm_check(pid_t pid);

int ipc_check(pid_t pid)
{
	struct ids_text sem = { 0 }, msg = { 0 }, shm = { 0 };
	const char *whose, *hint;
	bool own = false;
	int ret;

	ret = ipc_read(pid, &sem, &msg, &shm, &own);
	if (ret == -ENOENT)
		return ret;	/* gone */
	if (ret) {
		pr_err("pid %d: cannot read its IPC namespace's SysV objects: %s", pid,
		       strerror(-ret));
		return ret;
	}
	whose = own ? "its IPC namespace holds" : "may hold";
	hint = own ? " in an IPC namespace of its own" :
		" (one no live process has used, made since it started, may be its)";
	if (sem.outside)
		pr_err("pid %d: SysV semaphore set %ld is shared with pid %ld, outside the tree "
		       "(its last user of a semaphore): ferry cannot move a set two hosts would "
		       "share", pid, sem.shared_id, sem.outside);
	else if (msg.outside)
		pr_err("pid %d: SysV message queue %ld is shared with %s%ld, outside the tree "
		       "(its last sender or receiver): ferry cannot move a queue two hosts "
		       "would share", pid, msg.shared_id, msg.outside > 0 ? "pid " : "a process "
		       "of another PID namespace ", msg.outside > 0 ? msg.outside : 0);
	else if (*sem.s)
		pr_err("pid %d: %s SysV semaphore sets (id %s): ferry cannot move those%s", pid,
		       whose, sem.s, hint);
	else if (*msg.s)
		pr_err("pid %d: %s SysV message queues (id %s): ferry cannot move those%s", pid,
		       whose, msg.s, hint);
	else if (*shm.s)
		pr_err("pid %d: %s SysV shared memory segments (id %s): ferry cannot move those%s",
		       pid, whose, shm.s, hint);
	if (sem.outside || msg.outside || *sem.s || *msg.s || *shm.s)
		return -EOPNOTSUPP;
	ret = own ? 0 : shm_check(pid);
	return ret ? ret : undo_check(pid, sem.tree_n > 0);
}

static void perm_fill(SysvPerm *p, long id, const struct ipc_perm *ip)
{
	sysv_perm__init(p);
	p->key = ip->__key;
	p->id = id;
	p->mode = ip->mode & 0777;
	p->uid = ip->uid;
	p->gid = ip->gid;
	p->cuid = ip->cuid;
	p->cgid = ip->cgid;
}

/* ---- System V shared memory: the segments the tree attaches ---- */

static bool vma_sysv(const struct vma *v)
{
	return v->shared && !strncmp(v->path, "/SYSV", 5);
}

/* Segment ids the tree attaches, once per attachment (nattch counts each VMA). */
struct shm_atts {
	long *id;
	size_t nr, cap;
};

static size_t atts_count(const struct shm_atts *a, long id)
{
	size_t i, n = 0;

	for (i = 0; i < a->nr; i++)
		n += a->id[i] == id;
	return n;
}

/*
 * The tree's attachments, read once for every process's check (a walk
 * over every process's maps: once per process would be quadratic, in the
 * frozen final round too): ipc_tree_set forgets them.
 */
static struct shm_atts atts_cache;
static bool atts_valid;

static void atts_forget(void)
{
	free(atts_cache.id);
	memset(&atts_cache, 0, sizeof(atts_cache));
	atts_valid = false;
}

/* Every VMA of the tree of ipc_root that attaches a segment: its shmid is the inode. */
static int tree_atts(struct shm_atts *a)
{
	struct vma_list vl = { 0 };
	pid_t *todo = NULL, *kids;
	size_t nr = 0, cap = 0, i, k, nk;
	int ret = 0;

	memset(a, 0, sizeof(*a));
	if (grow_array(&todo, &cap, nr, sizeof(*todo)))
		return -ENOMEM;
	todo[nr++] = ipc_root;
	for (i = 0; i < nr && !ret; i++) {
		if (!proc_read_vmas(todo[i], &vl)) {
			for (k = 0; k < vl.nr && !ret; k++) {
				if (!vma_sysv(&vl.v[k]))
					continue;
				ret = grow_array(&a->id, &a->cap, a->nr, sizeof(*a->id));
				if (!ret)
					a->id[a->nr++] = vl.v[k].ino;
			}
			vma_list_free(&vl);
		}
		if (ret || proc_read_children(todo[i], &kids, &nk))
			continue;	/* gone meanwhile */
		for (k = 0; k < nk && !ret; k++) {
			ret = grow_array(&todo, &cap, nr, sizeof(*todo));
			if (!ret)
				todo[nr++] = kids[k];
		}
		free(kids);
	}
	free(todo);
	return ret ? -ENOMEM : 0;
}

struct shm_check {
	pid_t pid;
	int64_t since;
	struct vma_list vl;	/* @pid's */
};

/*
 * The bytes of @v's last page past the segment's size (@size): the shmem
 * file ends at the size, so they do not travel and come back zero. Zero
 * here, or refused.
 */
static int shm_tail_zero(pid_t pid, const struct vma *v, long id, uint64_t size)
{
	uint8_t buf[PAGE_SIZE];
	size_t len = page_up(size) - size, i;
	ssize_t n;

	if (!len)
		return 0;
	n = proc_pread(pid, "mem", buf, len, v->start + size);
	if (n != (ssize_t)len)
		return n < 0 ? n : -EIO;
	for (i = 0; i < len; i++) {
		if (buf[i]) {
			pr_err("pid %d: SysV shared memory segment %ld holds data past its size "
			       "(%llu bytes) in its last page: ferry cannot move it", pid, id,
			       (unsigned long long)size);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

/*
 * Segment @o as seen from @pid: one the tree attaches travels when every
 * attachment is the tree's and each VMA attaches it whole; one the tree
 * made or last attached (cpid, lpid) but does not attach, or one no live
 * process made or attached since @pid started, may be held by id: refused.
 */
static int shm_check_one(const struct sysv_obj *o, void *arg)
{
	struct shm_check *c = arg;
	size_t i, tree, mine = 0;
	int ret;

	for (i = 0; i < c->vl.nr; i++) {
		const struct vma *v = &c->vl.v[i];

		if (!vma_sysv(v) || (long)v->ino != o->id)
			continue;
		/* SHM_HUGETLB: made again as plain shmem its huge pages would not be */
		if (vma_is_hugetlb(c->pid, v)) {
			pr_err("pid %d: SysV shared memory segment %ld is hugetlb memory "
			       "(SHM_HUGETLB): ferry cannot move it yet", c->pid, o->id);
			return -EOPNOTSUPP;
		}
		if (v->pgoff || v->end - v->start != page_up(o->cbytes)) {
			pr_err("pid %d: SysV shared memory segment %ld is attached in part at %#llx "
			       "(split by mprotect or munmap): ferry attaches whole segments only",
			       c->pid, o->id, (unsigned long long)v->start);
			return -EOPNOTSUPP;
		}
		ret = shm_tail_zero(c->pid, v, o->id, o->cbytes);
		if (ret)
			return ret;
		mine++;
	}
	if (!mine && !in_tree(o->cpid, c->pid) && !in_tree(o->lpid, c->pid))
		goto others;	/* not the tree's: no walk over it */
	if (!atts_valid) {
		ret = tree_atts(&atts_cache);
		if (ret)
			return ret;
		atts_valid = true;
	}
	tree = atts_count(&atts_cache, o->id);
	if (tree && o->nattch != tree) {
		pr_err("pid %d: SysV shared memory segment %ld (key %#lx) is attached outside the "
		       "tree (%lu attachments, %zu of them the tree's): ferry cannot move a "
		       "segment two hosts would share", c->pid, o->id, (unsigned long)o->key,
		       o->nattch, tree);
		return -EOPNOTSUPP;
	}
	if (tree)
		return 0;
	if (in_tree(o->cpid, c->pid) || in_tree(o->lpid, c->pid)) {
		pr_err("pid %d: SysV shared memory segment %ld was made or last attached by pid %ld "
		       "of the tree, which does not attach it now: ferry moves attached segments "
		       "only", c->pid, o->id, in_tree(o->cpid, c->pid) ? o->cpid : o->lpid);
		return -EOPNOTSUPP;
	}
others:
	if (o->nattch || user_alive(o->cpid) || user_alive(o->lpid) || o->ctime < c->since)
		return 0;	/* another program's */
	pr_err("pid %d: may hold SysV shared memory segment %ld (no live process made or "
	       "attached it, made since it started): ferry cannot move it", c->pid, o->id);
	return -EOPNOTSUPP;
}

/* The segments of migrate's IPC namespace as seen from @pid (in one of its own, ipc_read refused them). */
static int shm_check(pid_t pid)
{
	struct shm_check c = { .pid = pid };
	int ret;

	ret = proc_read_vmas(pid, &c.vl);
	if (ret)
		return ret;
	c.since = proc_start_time(pid);
	ret = c.since < 0 ? c.since : sysvipc_each("shm", shm_check_one, &c);
	vma_list_free(&c.vl);
	return ret;
}

int ipc_shm_entry(long id, SysvShm *s, SysvPerm *perm)
{
	struct shmid_ds ds;

	if (shmctl(id, IPC_STAT, &ds))
		return -errno;
	perm_fill(perm, id, &ds.shm_perm);
	sysv_shm__init(s);
	s->perm = perm;
	s->locked = !!(ds.shm_perm.mode & SHM_LOCKED);
	s->dest = !!(ds.shm_perm.mode & SHM_DEST);
	/* a gone last attacher (an exited child) cannot attach again: the restore's last does */
	s->lpid = ds.shm_lpid > 0 && in_tree(ds.shm_lpid, 0) ? ds.shm_lpid : 0;
	return 0;
}

/* The tree's segments are removed here once it is gone, but those IPC_RMID'd already. */
static int shm_moved_one(const struct sysv_obj *o, void *arg)
{
	if (!atts_count(arg, o->id) || (o->mode & SHM_DEST))
		return 0;
	return moved_add(o->id, 'm');
}

/* ---- the dump: ipc.img ---- */

struct ipc_dump {
	struct img_buf b;
	int nr;
};


/* Set @o into the image if it is the tree's. */
static int sem_dump_one(const struct sysv_obj *o, void *arg)
{
	SysvSemEntry e = SYSV_SEM_ENTRY__INIT;
	SysvPerm perm;
	struct ipc_dump *d = arg;
	unsigned short *vals = NULL;
	uint32_t *v32 = NULL, *p32 = NULL;
	struct semid_ds ds;
	struct sem_users su;
	long i;
	int ret = 0;

	sem_users(o, ipc_root, &su);
	if (!su.tree)
		return 0;
	if (su.outside || o->nsems <= 0 || o->nsems > SEMS_MAX) {
		pr_err("SysV semaphore set %ld changed while the tree was stopped", o->id);
		return -EOPNOTSUPP;	/* the frozen checks passed: used from outside since */
	}
	vals = calloc(o->nsems, sizeof(*vals));
	v32 = calloc(o->nsems, sizeof(*v32));
	p32 = calloc(o->nsems, sizeof(*p32));
	if (!vals || !v32 || !p32) {
		ret = -ENOMEM;
		goto out;
	}
	if (semctl(o->id, 0, IPC_STAT, &ds) || semctl(o->id, 0, GETALL, vals)) {
		ret = -errno;
		pr_err("SysV semaphore set %ld: %s", o->id, strerror(-ret));
		goto out;
	}
	for (i = 0; i < o->nsems; i++) {
		long pid = semctl(o->id, i, GETPID);

		v32[i] = vals[i];
		p32[i] = pid > 0 ? pid : 0;
	}
	perm_fill(&perm, o->id, &ds.sem_perm);
	e.perm = &perm;
	e.n_values = e.n_pids = o->nsems;
	e.values = v32;
	e.pids = p32;
	ret = img_buf_add(&d->b, &e.base);
	if (!ret)
		ret = moved_add(o->id, 's');
	d->nr += !ret;
out:
	free(vals);
	free(v32);
	free(p32);
	return ret;
}

/* Queue @o into the image if it is the tree's, its messages read in place (MSG_COPY). */
static int msg_dump_one(const struct sysv_obj *o, void *arg)
{
	SysvMsgEntry e = SYSV_MSG_ENTRY__INIT;
	SysvPerm perm;
	struct ipc_dump *d = arg;
	SysvMsg *m = NULL, **mp = NULL;
	struct msqid_ds ds;
	struct sem_users su;
	size_t cap, i, nr = 0;
	long *buf = NULL;
	ssize_t n;
	int ret = 0;

	msg_users(o, ipc_root, &su);
	if (!su.tree)
		return 0;
	if (su.outside || msgctl(o->id, IPC_STAT, &ds)) {
		pr_err("SysV message queue %ld changed while the tree was stopped", o->id);
		return -EOPNOTSUPP;	/* the frozen checks passed: used from outside since */
	}
	cap = ds.__msg_cbytes;	/* no message is larger than all of them */
	buf = malloc(sizeof(long) + cap);
	m = calloc(ds.msg_qnum ?: 1, sizeof(*m));
	mp = calloc(ds.msg_qnum ?: 1, sizeof(*mp));
	if (!buf || !m || !mp) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < ds.msg_qnum; i++) {
		n = msgrcv(o->id, buf, cap, i, IPC_NOWAIT | MSG_COPY);
		if (n < 0) {
			ret = -errno;
			pr_err("SysV message queue %ld: cannot read message %zu in place (MSG_COPY, "
			       "CONFIG_CHECKPOINT_RESTORE): %s", o->id, i, strerror(-ret));
			goto out;
		}
		sysv_msg__init(&m[i]);
		m[i].type = buf[0];
		m[i].data.len = n;
		m[i].data.data = malloc(n ?: 1);
		if (!m[i].data.data) {
			ret = -ENOMEM;
			goto out;
		}
		memcpy(m[i].data.data, buf + 1, n);
		mp[i] = &m[i];
		nr++;
	}
	perm_fill(&perm, o->id, &ds.msg_perm);
	e.perm = &perm;
	e.qbytes = ds.msg_qbytes;
	e.lspid = ds.msg_lspid > 0 ? ds.msg_lspid : 0;
	e.lrpid = ds.msg_lrpid > 0 ? ds.msg_lrpid : 0;
	e.n_msgs = nr;
	e.msgs = mp;
	ret = img_buf_add(&d->b, &e.base);
	if (!ret)
		ret = moved_add(o->id, 'q');
	d->nr += !ret;
out:
	for (i = 0; i < nr; i++)
		free(m[i].data.data);
	free(m);
	free(mp);
	free(buf);
	return ret;
}

/* @name with every object of /proc/sysvipc/@what @fn puts there, if any. */
static int ipc_dump_file(struct sink *sink, const char *what, sysv_fn fn, const char *name)
{
	struct ipc_dump d = { 0 };
	int ret;

	ret = img_buf_init(&d.b);
	if (!ret)
		ret = sysvipc_each(what, fn, &d);
	if (!ret && d.nr)
		ret = sink->ops->add_file(sink, name, d.b.data, d.b.len);
	img_buf_free(&d.b);
	return ret;
}

int ipc_dump(struct sink *sink)
{
	struct shm_atts atts = { 0 };
	struct stat mine, its;
	char path[64];
	int ret;

	free(moved.v);	/* a failed migration's: they stayed with their process */
	memset(&moved, 0, sizeof(moved));
	snprintf(path, sizeof(path), "/proc/%d/ns/ipc", ipc_root);
	if (stat(path, &its) || stat("/proc/self/ns/ipc", &mine))
		return -errno;
	if (its.st_ino != mine.st_ino || its.st_dev != mine.st_dev)
		return 0;	/* a namespace of its own holds none (ipc_check) */
	ret = ipc_dump_file(sink, "sem", sem_dump_one, "ipc.img");
	if (!ret)
		ret = ipc_dump_file(sink, "msg", msg_dump_one, "ipc-msg.img");
	if (!ret)
		ret = tree_atts(&atts);
	/* the segments themselves travel as shared memory objects (shm.c) */
	if (!ret && atts.nr)
		ret = sysvipc_each("shm", shm_moved_one, &atts);
	free(atts.id);
	return ret;
}
