// SPDX-License-Identifier: MIT
/* Final dump of everything but memory pages: see dump.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <linux/kcmp.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/log.h"
#include "common/ptrace.h"
#include "common/util.h"
#include "proto/image.h"
#include "source-agent/dump.h"
#include "source-agent/anonfd.h"
#include "source-agent/ghost.h"
#include "source-agent/shm.h"
#include "source-agent/socket.h"
#include "source-agent/parasite.h"

static int sink_add_msg(struct sink *sink, const char *name, const ProtobufCMessage *msg)
{
	struct img_buf b;
	int ret;

	ret = img_buf_init(&b);
	if (!ret)
		ret = img_buf_add(&b, msg);
	if (!ret)
		ret = sink->ops->add_file(sink, name, b.data, b.len);
	img_buf_free(&b);
	return ret;
}

static uint64_t stat_mtime_ns(const struct stat *st)
{
	return st->st_mtim.tv_sec * 1000000000ULL + st->st_mtim.tv_nsec;
}

/* ---- mm ---- */

static uint32_t vma_mmap_flags(const struct vma *v)
{
	uint32_t f = v->shared ? MAP_SHARED : MAP_PRIVATE;

	if (v->kind != VMA_KIND__VMA_FILE)
		f |= MAP_ANONYMOUS;
	if (v->kind == VMA_KIND__VMA_STACK)
		f |= MAP_GROWSDOWN;
	return f;
}

static int vma_fill_entry(pid_t pid, const struct vma *v, VmaEntry *e)
{
	e->start = v->start;
	e->end = v->end;
	e->prot = v->prot;
	e->flags = vma_mmap_flags(v);
	e->kind = v->kind;
	if (v->shm_id) {
		e->has_shmid = e->has_pgoff = 1;
		e->shmid = v->shm_id;
		e->pgoff = v->pgoff;
		return 0;
	}
	if (v->kind == VMA_KIND__VMA_MEMFD || (v->kind == VMA_KIND__VMA_ANON && v->shared)) {
		pr_err("pid %d: shared memory %s at %#llx (SysV) is not supported yet", pid,
		       v->path, (unsigned long long)v->start);
		return -EOPNOTSUPP;
	}
	if (v->kind == VMA_KIND__VMA_FILE) {
		struct stat st;

		if (strstr(v->path, " (deleted)")) {
			pr_err("pid %d: mapping of deleted file %s is not supported yet", pid, v->path);
			return -EOPNOTSUPP;
		}
		if (stat(v->path, &st) || st.st_ino != v->ino || st.st_dev != v->dev) {
			pr_err("pid %d: mapped file %s cannot be found by its path", pid, v->path);
			return -EOPNOTSUPP;
		}
		e->path = (char *)v->path;
		e->has_pgoff = e->has_file_size = e->has_file_mtime_ns = e->has_open_flags = 1;
		e->pgoff = v->pgoff;
		e->file_size = st.st_size;
		e->file_mtime_ns = stat_mtime_ns(&st);
		e->open_flags = v->shared && (v->prot & PROT_WRITE) ? O_RDWR : O_RDONLY;
	}
	return 0;
}

static int read_auxv(pid_t pid, uint64_t **auxv, size_t *nr)
{
	char path[64];
	static uint64_t buf[256];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/auxv", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		return -errno;
	*auxv = buf;
	*nr = n / 8;
	return 0;
}

/* mm-<pid>.img: @mm's fields as given, its VMAs from @vl. */
static int send_mm(pid_t pid, MmEntry *mm, const struct vma_list *vl, struct sink *sink)
{
	VmaEntry *ents, **ptrs;
	char name[64];
	size_t i;
	int ret = 0;

	ents = calloc(vl->nr + 1, sizeof(*ents));
	ptrs = calloc(vl->nr + 1, sizeof(*ptrs));
	if (!ents || !ptrs) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < vl->nr; i++) {
		vma_entry__init(&ents[i]);
		ret = vma_fill_entry(pid, &vl->v[i], &ents[i]);
		if (ret)
			goto out;
		ptrs[i] = &ents[i];
	}
	mm->vmas = ptrs;
	mm->n_vmas = vl->nr;
	snprintf(name, sizeof(name), "mm-%d.img", pid);
	ret = sink_add_msg(sink, name, &mm->base);
	mm->vmas = NULL;
	mm->n_vmas = 0;
out:
	free(ents);
	free(ptrs);
	return ret;
}

int dump_vmas(pid_t pid, const struct vma_list *vl, struct sink *sink)
{
	MmEntry mm = MM_ENTRY__INIT;

	mm.exe = "";
	return send_mm(pid, &mm, vl, sink);
}

static int dump_mm(pid_t pid, struct parasite_ctl *ctl, const struct vma_list *vl,
		   const struct proc_stat *ps, struct sink *sink)
{
	MmEntry mm = MM_ENTRY__INIT;
	char exe[PATH_MAX];
	ssize_t n;
	int ret;

	n = proc_readlink(pid, "exe", exe, sizeof(exe));
	if (n < 0)
		return n;
	mm.exe = exe;
	mm.start_code = ps->start_code;
	mm.end_code = ps->end_code;
	mm.start_data = ps->start_data;
	mm.end_data = ps->end_data;
	mm.start_brk = ps->start_brk;
	mm.start_stack = ps->start_stack;
	mm.arg_start = ps->arg_start;
	mm.arg_end = ps->arg_end;
	mm.env_start = ps->env_start;
	mm.env_end = ps->env_end;
	ret = parasite_get_brk(ctl, &mm.brk);
	if (ret)
		return ret;
	ret = read_auxv(pid, &mm.auxv, &mm.n_auxv);
	if (ret)
		return ret;
	return send_mm(pid, &mm, vl, sink);
}

/* ---- files ---- */

static int fdinfo_read(pid_t pid, int fd, uint64_t *pos, uint32_t *flags)
{
	char path[64], buf[1024], *p;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	if (read_small_file(path, buf, sizeof(buf)) < 0)
		return -errno;
	p = strstr(buf, "pos:");
	*pos = p ? strtoull(p + 4, NULL, 10) : 0;
	p = strstr(buf, "flags:");
	*flags = p ? strtoul(p + 6, NULL, 8) : 0;
	return 0;
}

/* Unread pipe contents, copied with tee(2) so the pipe keeps them. */
static int pipe_peek(pid_t pid, int fd, PipeDataEntry *pd)
{
	char path[64];
	int pfd, tmp[2] = { -1, -1 }, ret = 0;
	size_t cap = 1 << 20, len = 0;
	ssize_t n;
	uint8_t *buf = NULL;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	pfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (pfd < 0)
		return -errno;
	if (pipe2(tmp, O_NONBLOCK | O_CLOEXEC) || fcntl(tmp[1], F_SETPIPE_SZ, cap) < 0) {
		ret = -errno;
		goto out;
	}
	n = tee(pfd, tmp[1], cap, SPLICE_F_NONBLOCK);
	if (n < 0 && errno != EAGAIN) {
		ret = -errno;
		goto out;
	}
	if (n > 0) {
		buf = malloc(n);
		if (!buf) {
			ret = -ENOMEM;
			goto out;
		}
		ret = read_full(tmp[0], buf, n);
		len = n;
	}
	pd->data.data = buf;
	pd->data.len = len;
	buf = NULL;
out:
	free(buf);
	close(pfd);
	if (tmp[0] >= 0) {
		close(tmp[0]);
		close(tmp[1]);
	}
	return ret;
}

static int kcmp_files(pid_t p1, int fd1, pid_t p2, int fd2)
{
	return syscall(SYS_kcmp, p1, p2, KCMP_FILE, fd1, fd2);
}

/* The id of the description behind @fd; *first: not seen before in the tree. */
static int file_id(struct file_ids *f, pid_t pid, int fd, const struct stat *st, uint32_t *id,
		   bool *first)
{
	size_t i;

	*first = false;
	for (i = 0; i < f->nr; i++) {
		const struct fid *c = &f->v[i];

		if (c->dev == st->st_dev && c->ino == st->st_ino &&
		    !kcmp_files(pid, fd, c->pid, c->fd)) {
			*id = c->id;
			return 0;
		}
	}
	*first = true;
	if (grow_array(&f->v, &f->cap, f->nr, sizeof(*f->v)))
		return -ENOMEM;
	*id = ++f->next;
	f->v[f->nr++] = (struct fid){ pid, fd, st->st_dev, st->st_ino, *id };
	return 0;
}

int file_ids_check_peers(const struct file_ids *f)
{
	size_t i, j;

	for (i = 0; i < f->nr_peers; i++) {
		for (j = 0; j < f->nr && f->v[j].ino != f->peers[i]; j++)
			;
		if (j == f->nr) {
			pr_err("a unix socket of the tree is connected to one outside it (inode %llu): "
			       "not supported yet", (unsigned long long)f->peers[i]);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

void file_ids_free(struct file_ids *f)
{
	free(f->peers);
	free(f->v);
	memset(f, 0, sizeof(*f));
}

/* One fd's entry and what its fields point to, alive until files-<pid>.img is built. */
struct fd_store {
	FdEntry e;
	PipeDataEntry pd;
	SockEntry se;
	struct sockaddr_storage ss;
	uint8_t *queued;
	struct anonfd anon;
	char path[PATH_MAX];
};

static int fd_fill_entry(pid_t pid, int fd, struct fd_store *fs, struct file_ids *ids,
			 const struct shm_set *shm, bool *first)
{
	FdEntry *e = &fs->e;
	PipeDataEntry *pd = &fs->pd;
	char *pathbuf = fs->path;
	char link[64];
	struct stat st;
	uint32_t flags = 0;
	ssize_t n;
	int ret;

	snprintf(link, sizeof(link), "/proc/%d/fd/%d", pid, fd);
	n = readlink(link, pathbuf, PATH_MAX - 1);
	if (n < 0 || stat(link, &st))
		return -errno;
	pathbuf[n] = 0;
	ret = fdinfo_read(pid, fd, &e->pos, &flags);
	if (!ret)
		ret = file_id(ids, pid, fd, &st, &e->file_id, first);
	if (ret)
		return ret;
	e->has_file_id = 1;
	e->fd = fd;
	e->flags = flags & ~O_CLOEXEC;
	e->cloexec = !!(flags & O_CLOEXEC);
	e->has_pos = 1;
	if (S_ISFIFO(st.st_mode) && !strncmp(pathbuf, "pipe:", 5)) {
		e->type = FD_TYPE__FD_PIPE;
		e->has_pipe_id = 1;
		e->pipe_id = st.st_ino;
		pd->pipe_id = st.st_ino;
		return pipe_peek(pid, fd, pd);
	}
	if (S_ISSOCK(st.st_mode)) {
		e->type = FD_TYPE__FD_SOCK;
		e->sock = &fs->se;
		ret = dump_socket(pid, fd, st.st_ino, &fs->se, &fs->ss, &fs->queued);
		if (!ret && fs->se.has_peer_ino) {
			ret = grow_array(&ids->peers, &ids->cap_peers, ids->nr_peers,
					 sizeof(*ids->peers));
			if (!ret)
				ids->peers[ids->nr_peers++] = fs->se.peer_ino;
		}
		return ret;
	}
	e->path = pathbuf;
	if (S_ISCHR(st.st_mode)) {
		e->type = FD_TYPE__FD_CHR;
		e->has_rdev = 1;
		e->rdev = st.st_rdev;
		return 0;
	}
	e->shmid = shm_lookup(shm, st.st_dev, st.st_ino);
	if (e->shmid) {
		/* a memfd the tree maps: the same object at the destination */
		e->has_shmid = 1;
		e->type = FD_TYPE__FD_REG;
		return 0;
	}
	if (S_ISREG(st.st_mode) && !st.st_nlink) {
		/* unlinked: its data travels (ghost-<file_id>.img), its path only names it */
		e->has_ghost = e->ghost = 1;
		if (n >= 10 && !strcmp(pathbuf + n - 10, " (deleted)"))
			pathbuf[n - 10] = 0;
		e->type = FD_TYPE__FD_REG;
		return 0;
	}
	if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) {
		e->type = S_ISREG(st.st_mode) ? FD_TYPE__FD_REG : FD_TYPE__FD_DIR;
		e->has_size = e->has_mtime_ns = 1;
		e->size = st.st_size;
		e->mtime_ns = stat_mtime_ns(&st);
		return 0;
	}
	fs->anon.e = e;
	return dump_anonfd(pid, fd, pathbuf, &fs->anon);
}

static int list_fds(pid_t pid, int **fds, size_t *nr)
{
	char path[64];
	pid_t *v;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	ret = proc_read_dir_numbers(path, &v, nr);
	*fds = (int *)v;
	return ret;
}

static int dump_files(pid_t pid, struct file_ids *ids, const struct shm_set *shm,
		      struct sink *sink)
{
	FilesEntry fe = FILES_ENTRY__INIT;
	struct fd_store *fs = NULL;
	FdEntry **ptrs = NULL;
	char name[64];
	size_t nr = 0, i;
	int *fds = NULL, ret;

	ret = list_fds(pid, &fds, &nr);
	if (ret)
		return ret;
	fs = calloc(nr + 1, sizeof(*fs));
	ptrs = calloc(nr + 1, sizeof(*ptrs));
	if (!fs || !ptrs) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < nr; i++) {
		bool first = false;

		fd_entry__init(&fs[i].e);
		pipe_data_entry__init(&fs[i].pd);
		sock_entry__init(&fs[i].se);
		ret = fd_fill_entry(pid, fds[i], &fs[i], ids, shm, &first);
		if (!ret && fs[i].e.ghost && first)
			ret = dump_ghost(pid, fds[i], fs[i].e.file_id, fs[i].path, sink);
		if (ret) {
			if (ret != -EOPNOTSUPP)
				pr_err("pid %d: cannot dump fd %d: %s", pid, fds[i], strerror(-ret));
			goto out;
		}
		ptrs[i] = &fs[i].e;
	}
	fe.fds = ptrs;
	fe.n_fds = nr;
	snprintf(name, sizeof(name), "files-%d.img", pid);
	ret = sink_add_msg(sink, name, &fe.base);
	for (i = 0; !ret && i < nr; i++) {
		if (fs[i].e.type != FD_TYPE__FD_PIPE || !fs[i].pd.data.len)
			continue;
		snprintf(name, sizeof(name), "pipe-%llu.img", (unsigned long long)fs[i].pd.pipe_id);
		ret = sink_add_msg(sink, name, &fs[i].pd.base);
	}
out:
	for (i = 0; fs && i < nr; i++) {
		free(fs[i].pd.data.data);
		free(fs[i].queued);
		anonfd_free(&fs[i].anon);
	}
	free(fs);
	free(ptrs);
	free(fds);
	return ret;
}

/* ---- core ---- */

/* @t: the thread's registers as frozen, taken before the parasite touched anything. */
static void dump_thread(pid_t pid, const struct tracee *t, ThreadCore *tc, char comm[16])
{
	uint32_t rseq_len, rseq_sig;
	uint64_t rseq_addr;
	pid_t tid = t->tid;
	char path[64];

	tc->tid = tid;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", pid, tid);
	if (read_small_file(path, comm, 16) > 0) {
		comm[strcspn(comm, "\n")] = 0;
		tc->comm = comm;
	}
	tc->regs.data = (uint8_t *)&t->regs;
	tc->regs.len = sizeof(t->regs);
	tc->xstate.data = t->xstate;
	tc->xstate.len = t->xstate_len;
	tc->sigmask = t->sigmask;
	if (!tracee_rseq(tid, &rseq_addr, &rseq_len, &rseq_sig)) {
		tc->has_rseq_addr = tc->has_rseq_len = tc->has_rseq_sig = 1;
		tc->rseq_addr = rseq_addr;
		tc->rseq_len = rseq_len;
		tc->rseq_sig = rseq_sig;
	}
}

#define MAX_PENDING 1024

/* Queued signals of a thread (or of the process: @shared), read without taking them. */
struct sigqueue {
	uint8_t (*raw)[128];
	SiginfoEntry *e;
	SiginfoEntry **p;
	size_t nr;
};

static int sigqueue_peek(pid_t tid, bool shared, struct sigqueue *q)
{
	struct { uint64_t off; uint32_t flags; int32_t nr; } arg = { 0, shared ? 1 : 0, 32 };
	size_t i;
	long n;

	memset(q, 0, sizeof(*q));
	q->raw = malloc(MAX_PENDING * sizeof(*q->raw));
	q->e = calloc(MAX_PENDING, sizeof(*q->e));
	q->p = calloc(MAX_PENDING, sizeof(*q->p));
	if (!q->raw || !q->e || !q->p)
		return -ENOMEM;
	do {
		if (q->nr + arg.nr > MAX_PENDING) {
			pr_err("tid %d has more than %d pending signals", tid, MAX_PENDING);
			return -EOPNOTSUPP;
		}
		n = ptrace(PTRACE_PEEKSIGINFO, tid, &arg, q->raw[q->nr]);
		if (n < 0)
			return -errno;
		q->nr += n;
		arg.off += n;
	} while (n == arg.nr);
	for (i = 0; i < q->nr; i++) {
		siginfo_entry__init(&q->e[i]);
		q->e[i].raw.data = q->raw[i];
		q->e[i].raw.len = sizeof(q->raw[i]);
		q->e[i].shared = shared;
		q->p[i] = &q->e[i];
	}
	return 0;
}

static void sigqueue_free(struct sigqueue *q)
{
	free(q->raw);
	free(q->e);
	free(q->p);
}

/* What only the parasite can tell, taken before it is cured. */
struct parasite_data {
	struct prs_sigaction sa[PRS_NSIG];
	struct itimerval it[3];
	stack_t *ss;			/* per thread */
	uint64_t *clear_tid;		/* per thread */
};

static int parasite_collect(struct parasite_ctl *ctl, const struct thread_set *ts,
			    struct parasite_data *pd)
{
	size_t i;
	int ret;

	pd->ss = calloc(ts->nr, sizeof(*pd->ss));
	pd->clear_tid = calloc(ts->nr, sizeof(*pd->clear_tid));
	if (!pd->ss || !pd->clear_tid)
		return -ENOMEM;
	ret = parasite_get_sigactions(ctl, pd->sa);
	if (!ret)
		ret = parasite_get_itimers(ctl, pd->it);
	for (i = 0; !ret && i < ts->nr; i++)
		ret = parasite_thread_info(ctl, ts->tids[i], &pd->ss[i], &pd->clear_tid[i]);
	return ret;
}

/* After the cure: the registers are the task's own again. */
static int dump_core(pid_t pid, const struct thread_set *ts, const struct tracee *t,
		     const struct parasite_data *pd, const struct proc_stat *ps, struct sink *sink)
{
	ProcCore pc = PROC_CORE__INIT;
	CredsEntry creds = CREDS_ENTRY__INIT;
	ThreadCore *tc = NULL, **tcp = NULL;
	char (*comms)[16] = NULL;
	struct sigqueue *sq = NULL, shq = { 0 };
	SigactionEntry sae[PRS_NSIG], *sap[PRS_NSIG];
	TimevalPair tv[3], *tvp[3];
	RlimitEntry rl[RLIM_NLIMITS], *rlp[RLIM_NLIMITS];
	const struct prs_sigaction *sa = pd->sa;
	const struct itimerval *it = pd->it;
	char path[64], cwd[PATH_MAX], root[PATH_MAX], pers[32], name[64];
	ssize_t n;
	size_t k;
	int i, ret;

	for (i = 0; i < PRS_NSIG; i++) {
		sigaction_entry__init(&sae[i]);
		sae[i].sig = i + 1;
		sae[i].handler = sa[i].handler;
		sae[i].flags = sa[i].flags;
		sae[i].restorer = sa[i].restorer;
		sae[i].mask = sa[i].mask;
		sap[i] = &sae[i];
	}
	for (i = 0; i < 3; i++) {
		timeval_pair__init(&tv[i]);
		tv[i].interval_us = it[i].it_interval.tv_sec * 1000000ULL + it[i].it_interval.tv_usec;
		tv[i].value_us = it[i].it_value.tv_sec * 1000000ULL + it[i].it_value.tv_usec;
		tvp[i] = &tv[i];
	}
	for (i = 0; i < RLIM_NLIMITS; i++) {
		struct rlimit r;

		if (prlimit(pid, i, NULL, &r))
			return -errno;
		rlimit_entry__init(&rl[i]);
		rl[i].cur = r.rlim_cur;
		rl[i].max = r.rlim_max;
		rlp[i] = &rl[i];
	}
	ret = proc_read_creds(pid, &creds, &pc.umask);
	if (ret)
		return ret;
	n = proc_readlink(pid, "cwd", cwd, sizeof(cwd));
	if (n >= 0)
		n = proc_readlink(pid, "root", root, sizeof(root));
	if (n < 0)
		return n;
	snprintf(path, sizeof(path), "/proc/%d/personality", pid);
	if (read_small_file(path, pers, sizeof(pers)) < 0)
		return -errno;

	tc = calloc(ts->nr, sizeof(*tc));
	tcp = calloc(ts->nr, sizeof(*tcp));
	comms = calloc(ts->nr, sizeof(*comms));
	sq = calloc(ts->nr, sizeof(*sq));
	if (!tc || !tcp || !comms || !sq) {
		ret = -ENOMEM;
		goto out;
	}
	/* signals still queued travel and are queued again at the destination */
	ret = sigqueue_peek(pid, true, &shq);
	if (ret)
		goto out;
	pc.shared_pending = shq.p;
	pc.n_shared_pending = shq.nr;
	for (k = 0; k < ts->nr; k++) {
		thread_core__init(&tc[k]);
		dump_thread(pid, &t[k], &tc[k], comms[k]);
		ret = sigqueue_peek(ts->tids[k], false, &sq[k]);
		if (ret)
			goto out;
		tc[k].pending = sq[k].p;
		tc[k].n_pending = sq[k].nr;
		tc[k].has_altstack_sp = tc[k].has_altstack_size = tc[k].has_altstack_flags = 1;
		tc[k].altstack_sp = (uint64_t)pd->ss[k].ss_sp;
		tc[k].altstack_size = pd->ss[k].ss_size;
		tc[k].altstack_flags = pd->ss[k].ss_flags;
		tc[k].has_clear_tid_addr = 1;
		tc[k].clear_tid_addr = pd->clear_tid[k];
		tcp[k] = &tc[k];
	}

	pc.pid = pid;
	pc.threads = tcp;
	pc.n_threads = ts->nr;
	pc.sigactions = sap;
	pc.n_sigactions = PRS_NSIG;
	pc.itimers = tvp;
	pc.n_itimers = 3;
	pc.rlimits = rlp;
	pc.n_rlimits = RLIM_NLIMITS;
	pc.creds = &creds;
	pc.personality = strtoul(pers, NULL, 16);
	pc.cwd = cwd;
	pc.root = root;
	pc.comm = (char *)ps->comm;
	snprintf(name, sizeof(name), "core-%d.img", pid);
	ret = sink_add_msg(sink, name, &pc.base);
out:
	for (k = 0; sq && k < ts->nr; k++)
		sigqueue_free(&sq[k]);
	sigqueue_free(&shq);
	free(sq);
	free(comms);
	free(tc);
	free(tcp);
	return ret;
}

int dump_process(pid_t pid, const struct thread_set *ts, const struct vma_list *vl,
		 struct file_ids *files, const struct shm_set *shm, struct sink *sink)
{
	struct parasite_ctl *ctl = NULL;
	struct parasite_data pd = { 0 };
	struct tracee *t;
	struct proc_stat ps;
	size_t k;
	int ret, cret;

	ret = proc_read_stat(pid, &ps);
	if (ret)
		return ret;
	/* Registers first, as frozen: an interrupted syscall keeps its own restart rule. */
	t = calloc(ts->nr, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (k = 0; !ret && k < ts->nr; k++) {
		t[k].tid = ts->tids[k];
		ret = tracee_save(&t[k]);
	}
	if (!ret)
		ret = parasite_infect(pid, &ctl);
	if (ret)
		goto out;
	ret = dump_mm(pid, ctl, vl, &ps, sink);
	if (!ret)
		ret = parasite_collect(ctl, ts, &pd);
	cret = parasite_cure(ctl);
	if (!ret)
		ret = cret;
	if (!ret)
		ret = dump_core(pid, ts, t, &pd, &ps, sink);
	if (!ret)
		ret = dump_files(pid, files, shm, sink);
out:
	for (k = 0; k < ts->nr; k++)
		tracee_free(&t[k]);
	free(t);
	free(pd.ss);
	free(pd.clear_tid);
	return ret;
}

int dump_pstree(const struct tree *t, struct sink *sink)
{
	struct img_buf b;
	size_t i;
	int ret;

	ret = img_buf_init(&b);
	for (i = 0; !ret && i < t->nr; i++) {
		const struct thread_set *ts = tree_threads(t, i);
		PstreeEntry e = PSTREE_ENTRY__INIT;
		struct proc_stat ps;

		ret = proc_read_stat(ts->pid, &ps);
		if (ret)
			break;
		e.pid = ts->pid;
		e.ppid = i ? ps.ppid : 0;	/* the root's parent stays behind */
		e.pgid = ps.pgid;
		e.sid = ps.sid;
		e.threads = (uint32_t *)ts->tids;
		e.n_threads = ts->nr;
		e.has_stopped = 1;
		e.stopped = t->p[i].stopped;
		ret = img_buf_add(&b, &e.base);
	}
	if (!ret)
		ret = sink->ops->add_file(sink, "pstree.img", b.data, b.len);
	img_buf_free(&b);
	return ret;
}

int dump_inventory(struct sink *sink, uint32_t round, pid_t root, int final)
{
	InventoryEntry inv = INVENTORY_ENTRY__INIT;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	inv.round = round;
	inv.final = final;
	inv.root_pid = root;
	inv.migration_id = sink->migration_id;
	inv.page_size = PAGE_SIZE;
	inv.has_created_ns = 1;
	inv.created_ns = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	return sink_add_msg(sink, "inventory.img", &inv.base);
}
