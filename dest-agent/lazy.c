// SPDX-License-Identifier: MIT
/*
 * The lazy fill (restore --lazy-fill, docs/restore-protocol.md): when the
 * final round comes before the prefill has caught up, the pages still to
 * fill are not written before the process runs. Its private anonymous
 * memory is registered with a userfaultfd (MISSING faults) made inside it
 * by the blob; the process runs at once, and a thread here serves every
 * fault from the local image stack (UFFDIO_COPY; UFFDIO_ZEROPAGE where the
 * page is zero) while it copies the rest in the background, 1 MiB at a
 * time. When nothing is left the uffd is closed (the kernel unregisters:
 * what is still missing is zero, as it should be).
 *
 * What is left to fill is a list of ranges of the address space, each with
 * where its pages were when saved (mremap moves them). The process's own
 * changes come as events, read before any copy can go on (the kernel fails
 * UFFDIO_COPY with EAGAIN while one is unread): munmap and MADV_DONTNEED
 * drop their range from the list (reads as zero now), mremap moves it, fork
 * gives a uffd of the child with a copy of the list.
 *
 * A guard process holds a dup of every uffd: if `restore` dies before the
 * fill is complete, the kernel would unregister the ranges and the missing
 * pages would read as zero (silent corruption). The guard instead kills the
 * restored tree (and the children it made meanwhile), then lets go.
 *
 * Post-copy (--postcopy-fd, docs/handover.md): some of what is missing is
 * REMOTE, in no round of the stack: only the frozen source has it. Those
 * ranges are a second list; a fault there asks for them ("fetch" on the
 * status fd: the page server asks the source, which answers first) and
 * waits; the source pushes the rest meanwhile. Pages come as wire page
 * frames on the post-copy fd and are copied into every mm whose list still
 * holds them (a child forked since too; not where the process dropped or
 * moved them). When no list holds any, "postcopy-done" says so (the source
 * may go). If the fd ends first, the fill fails: the guard kills the tree.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/log.h"
#include "common/util.h"
#include "dest-agent/restore.h"
#include "proto/restore_ctl.h"
#include "transport/frame.h"

#define LZ_CHUNK	(1UL << 20)	/* background copy: bytes per step */
#define LZ_MSGS		64
#define LZ_MAX_PIDS	4096		/* what the guard kills, at most */
#define PC_FETCH_PAGES	16		/* a fault asks for this many pages (fewer at a range end) */
#define PC_READ_MS	30000		/* a page frame begun on the post-copy fd: the rest within */

struct lz_range {
	uint64_t start, end;
	int64_t delta;			/* its pages were saved at start - delta */
};

/* Ranges of an address space, sorted, disjoint; r[0..cur) are done. */
struct lz_list {
	struct lz_range *r;
	size_t nr, cap, cur;
};

/* One address space being filled. */
struct lz_mm {
	int uffd;
	uint32_t pid;			/* saved pid: the view's pages */
	int pagemap;			/* /proc/PID/pagemap, -1: a child forked during the fill */
	struct lz_list loc;		/* to fill from the stack */
	struct lz_list rem;		/* post-copy: REMOTE, to come from the source */
	struct ranges nofork;		/* not copied to a child (MADV_WIPEONFORK, DONTFORK) */
	uint64_t *again;		/* faults that met EAGAIN: retried each turn */
	size_t nr_again, cap_again;
	bool gone;			/* the process has exited or exec'd */
};

struct lazy {
	struct stack_view *sv;
	struct lz_mm *mm;
	size_t nr_mm, cap_mm;
	pthread_t th;
	bool running;
	int stop[2];			/* a byte: stop now (the tree is discarded) */
	int guard;			/* socket to the guard, -1 */
	pid_t guard_pid;
	int err;
	char why[160];
	uint64_t faults, zero_faults, pages, forks, child_pages, t0, us;
	uint8_t *buf;
	/* post-copy */
	int pc_fd, status_fd;		/* page frames in; fetch, postcopy-done out */
	bool pc_eof, pc_pending, pc_reported;
	struct page_batch pc_batch;	/* a batch read, not copied everywhere yet (EAGAIN) */
	uint8_t *pc_frame;		/* the frame read (FRAME_MAX) */
	uint8_t *pc_data;		/* its pages (PB_MAX_DATA) */
	uint64_t pc_pages, pc_faults, pc_fetches, pc_us;
};

/* ---- the list of what is left ---- */

static int lz_push(struct lz_list *m, uint64_t start, uint64_t end, int64_t delta)
{
	struct lz_range *last = m->nr ? &m->r[m->nr - 1] : NULL;

	if (start >= end)
		return 0;
	if (last && last->end == start && last->delta == delta) {
		last->end = end;
		return 0;
	}
	if (grow_array(&m->r, &m->cap, m->nr, sizeof(*m->r)))
		return -ENOMEM;
	m->r[m->nr++] = (struct lz_range){ start, end, delta };
	return 0;
}

static int lz_cmp(const void *a, const void *b)
{
	const struct lz_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Rebuild without [s, e); what fell inside moves by @shift when @move. */
static int lz_cut(struct lz_list *m, uint64_t s, uint64_t e, bool move, int64_t shift)
{
	struct lz_range *old = m->r;
	size_t nr = m->nr, i;
	struct lz_range *moved = NULL;
	size_t nr_moved = 0, cap_moved = 0;
	int ret = 0;

	m->r = NULL;
	m->nr = m->cap = 0;
	for (i = m->cur; i < nr && !ret; i++) {
		struct lz_range r = old[i];

		if (r.start >= r.end)
			continue;
		if (r.end <= s || r.start >= e) {
			ret = lz_push(m, r.start, r.end, r.delta);
			continue;
		}
		ret = lz_push(m, r.start, r.start < s ? s : r.start, r.delta);
		if (!ret && move) {
			uint64_t a = r.start > s ? r.start : s, b = r.end < e ? r.end : e;

			ret = grow_array(&moved, &cap_moved, nr_moved, sizeof(*moved));
			if (!ret)
				moved[nr_moved++] = (struct lz_range){ a + shift, b + shift,
								      r.delta + shift };
		}
		if (!ret && r.end > e)
			ret = lz_push(m, e, r.end, r.delta);
	}
	free(old);
	m->cur = 0;
	if (!ret && nr_moved) {
		/* where they land was unmapped first (an UNMAP event before this one) */
		for (i = 0; i < nr_moved && !ret; i++) {
			ret = grow_array(&m->r, &m->cap, m->nr, sizeof(*m->r));
			if (!ret)
				m->r[m->nr++] = moved[i];
		}
		qsort(m->r, m->nr, sizeof(*m->r), lz_cmp);
	}
	free(moved);
	return ret;
}

/* Both lists of @m: the process dropped [s, e) (or moved it by @shift). */
static int lz_cut_mm(struct lz_mm *m, uint64_t s, uint64_t e, bool move, int64_t shift)
{
	int ret = lz_cut(&m->loc, s, e, move, shift);

	return ret ? ret : lz_cut(&m->rem, s, e, move, shift);
}

static const struct lz_range *lz_find(const struct lz_list *m, uint64_t addr)
{
	size_t lo = m->cur, hi = m->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->r[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->nr && m->r[lo].start <= addr && addr < m->r[lo].end ? &m->r[lo] : NULL;
}

/* ---- copies ---- */

struct lz_piece {
	uint64_t vaddr, len, file_off;
	uint32_t round;
};

struct lz_walk {
	struct lz_piece *p;
	size_t nr, cap;
};

static int lz_collect(void *arg, const struct pg_extent *e)
{
	struct lz_walk *w = arg;

	/* zero: missing pages of it read as zero; REMOTE: not in a local list */
	if (!e->round || e->round == PG_ROUND_REMOTE)
		return 0;
	if (grow_array(&w->p, &w->cap, w->nr, sizeof(*w->p)))
		return -ENOMEM;
	w->p[w->nr++] = (struct lz_piece){ e->vaddr, e->nr_pages * PAGE_SIZE, e->file_off,
					   e->round };
	return 0;
}

/*
 * UFFDIO_COPY of @len bytes at @buf to @dst; pages already there (the
 * process faulted them in, or they were never missing) are skipped. 0,
 * -EAGAIN (an event is unread: read it first), -ESRCH (the mm is gone),
 * -ENOENT (no such VMA in this mm), or -errno.
 */
static int lz_copy(int uffd, uint64_t dst, const uint8_t *buf, uint64_t len, uint64_t *pages)
{
	while (len) {
		struct uffdio_copy c = { .dst = dst, .src = (uint64_t)buf, .len = len };
		int64_t done;

		if (!ioctl(uffd, UFFDIO_COPY, &c)) {
			*pages += len / PAGE_SIZE;
			return 0;
		}
		if (errno != EAGAIN && errno != EEXIST)
			return -errno;
		done = c.copy;
		if (done > 0) {
			*pages += done / PAGE_SIZE;
		} else if (done == -EEXIST) {
			done = PAGE_SIZE;
		} else {
			return -EAGAIN;
		}
		dst += done;
		buf += done;
		len -= done;
	}
	return 0;
}

static int lz_read(struct lazy *l, const struct lz_mm *m, const struct lz_piece *p, uint64_t off,
		   uint64_t len, uint8_t *buf)
{
	int fd = stack_view_pages_fd(l->sv, m->pid, p->round);
	uint64_t done = 0;

	if (fd < 0)
		return fd;
	while (done < len) {
		ssize_t n = pread(fd, buf + done, len - done, p->file_off + off + done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -errno : -EIO;
		done += n;
	}
	return 0;
}

/* Pages of [s, e) not in memory, as a bit per page in @absent (all, without pagemap). */
static void lz_absent(const struct lz_mm *m, uint64_t s, uint64_t e, uint8_t *absent)
{
	uint64_t n = (e - s) / PAGE_SIZE, pm[512], i, k;

	memset(absent, 1, n);
	if (m->pagemap < 0)
		return;
	for (i = 0; i < n; i += k) {
		ssize_t got;

		k = n - i < 512 ? n - i : 512;
		got = pread(m->pagemap, pm, k * 8, (s / PAGE_SIZE + i) * 8);
		if (got != (ssize_t)(k * 8))
			return;	/* unknown: copy, EEXIST skips what is there */
		for (uint64_t j = 0; j < k; j++)
			absent[i + j] = !(pm[j] >> 62 & 3);	/* neither present nor swapped */
	}
}

/* Copy [s, e) of @m (inside one range of delta @delta); pieces the view has data for. */
static int lz_fill(struct lazy *l, struct lz_mm *m, uint64_t s, uint64_t e, int64_t delta,
		   bool check)
{
	static uint8_t absent[LZ_CHUNK / PAGE_SIZE];
	struct lz_walk w = { 0 };
	size_t i;
	int ret;

	ret = stack_view_walk(l->sv, m->pid, s - delta, e - delta, false, lz_collect, &w);
	if (!ret && check)
		lz_absent(m, s, e, absent);
	for (i = 0; !ret && i < w.nr; i++) {
		const struct lz_piece *p = &w.p[i];
		uint64_t a = 0;

		while (!ret && a < p->len) {
			uint64_t pg = (p->vaddr + delta + a - s) / PAGE_SIZE, b = a;

			if (check && !absent[pg]) {
				a += PAGE_SIZE;
				continue;
			}
			while (b < p->len && (!check || absent[(p->vaddr + delta + b - s) / PAGE_SIZE]))
				b += PAGE_SIZE;
			uint64_t before = l->pages;

			ret = lz_read(l, m, p, a, b - a, l->buf);
			if (!ret)
				ret = lz_copy(m->uffd, p->vaddr + delta + a, l->buf, b - a, &l->pages);
			if (m != l->mm)	/* not the first: a child forked during the fill */
				l->child_pages += l->pages - before;
			if (ret == -ENOENT)
				ret = 0;	/* not mapped in this mm (MADV_DONTFORK in a child) */
			a = b;
		}
	}
	free(w.p);
	return ret;
}

static void lz_wake(int uffd, uint64_t addr)
{
	struct uffdio_range r = { addr, PAGE_SIZE };

	ioctl(uffd, UFFDIO_WAKE, &r);
}

/*
 * Post-copy: a thread waits on REMOTE page @addr (in @r): ask for it and a
 * few after it. The copy of what comes wakes it.
 */
static void lz_fetch(struct lazy *l, struct lz_mm *m, const struct lz_range *r, uint64_t addr)
{
	uint64_t n = (r->end - addr) / PAGE_SIZE;
	struct rctl_status st = { .kind = RCTL_FETCH, .pid = m->pid };

	st.vaddr = addr - r->delta;
	st.nr = n < PC_FETCH_PAGES ? n : PC_FETCH_PAGES;
	l->pc_faults++;
	l->pc_fetches++;
	/* a page server gone is seen as the end of the post-copy fd */
	rctl_send_status(l->status_fd, &st);
}

/* A thread waits on @addr: its page from the view, or a zero page. 0, -EAGAIN or -errno. */
static int lz_fault(struct lazy *l, struct lz_mm *m, uint64_t addr)
{
	const struct lz_range *r = lz_find(&m->loc, addr);
	struct uffdio_zeropage z = { .range = { addr, PAGE_SIZE } };
	int ret;

	l->faults++;
	if (!r && (r = lz_find(&m->rem, addr))) {
		lz_fetch(l, m, r, addr);
		return 0;
	} else if (r) {
		ret = lz_fill(l, m, addr, addr + PAGE_SIZE, r->delta, false);
		if (ret == -ESRCH) {
			m->gone = true;
			return 0;
		}
		if (ret)
			return ret;
	} else {
		/* not to fill: a zero page, or one the process itself dropped since */
		l->zero_faults++;
	}
	/* a page the view has nothing for is zero; EEXIST: in (the copy did not wake it) */
	if (!ioctl(m->uffd, UFFDIO_ZEROPAGE, &z))
		return 0;
	if (errno == EEXIST) {
		lz_wake(m->uffd, addr);
		return 0;
	}
	if (errno == ESRCH) {
		m->gone = true;
		return 0;
	}
	return -errno;
}

/* ---- the guard ---- */

static int guard_send(int sock, char what, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { &what, 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	if (sock < 0)
		return -EBADF;
	if (fd >= 0) {
		msg.msg_control = cbuf;
		msg.msg_controllen = sizeof(cbuf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(fd));
	}
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

static pid_t stat_ppid(pid_t pid)
{
	char path[64], buf[512], *p;
	int ppid;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_small_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	p = strrchr(buf, ')');
	return p && sscanf(p + 1, " %*c %d", &ppid) == 1 ? ppid : -1;
}

/*
 * The tree (by the pidfds taken when the guard began: a pid reused since is
 * not hit) and every descendant it has now (children forked during the fill).
 */
static void guard_kill(pid_t *pids, size_t nr, const int *pidfd)
{
	size_t i, nr_tree = nr;
	bool grew = true;

	while (grew && nr < LZ_MAX_PIDS) {
		DIR *d = opendir("/proc");
		struct dirent *de;

		grew = false;
		while (d && (de = readdir(d)) && nr < LZ_MAX_PIDS) {
			pid_t pid = strtol(de->d_name, NULL, 10), pp;
			bool known = false;

			if (pid <= 0)
				continue;
			for (i = 0; i < nr && !known; i++)
				known = pids[i] == pid;
			pp = known ? -1 : stat_ppid(pid);
			for (i = 0; pp > 0 && i < nr; i++)
				if (pids[i] == pp) {
					pids[nr++] = pid;
					grew = true;
					break;
				}
		}
		if (d)
			closedir(d);
	}
	for (i = 0; i < nr; i++) {
		if (i < nr_tree && (pidfd[i] < 0 ||
				    syscall(__NR_pidfd_send_signal, pidfd[i], SIGKILL, NULL, 0)))
			continue;	/* gone already */
		if (i >= nr_tree)
			kill(pids[i], SIGKILL);
		fprintf(stderr, "restore: lazy fill: restore died before the fill was complete: "
			"killed pid %d (its missing pages would have read as zero)\n", pids[i]);
	}
}

/* The guard: keeps the uffds until "done"; if the channel ends first, kills the tree. */
static __attribute__((noreturn)) void guard_main(int sock, pid_t *pids, size_t nr)
{
	int ign[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT };
	int pidfd[LZ_MAX_PIDS];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(ign); i++)
		signal(ign[i], SIG_IGN);
	setsid();
	/* the tree does not run yet: these are its processes */
	for (i = 0; i < nr; i++)
		pidfd[i] = syscall(__NR_pidfd_open, pids[i], 0);
	for (;;) {
		char cbuf[CMSG_SPACE(sizeof(int))], what = 0;
		struct iovec iov = { &what, 1 };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
				      .msg_controllen = sizeof(cbuf) };
		ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n == 1 && what == 'D')
			_exit(0);	/* filled: the uffds may go */
		if (n == 1 && what == 'F')
			continue;	/* one more uffd: kept open, never used */
		break;
	}
	guard_kill(pids, nr, pidfd);
	_exit(1);
}

/* Fork the guard with the tree's pids; the uffds follow on the socket. */
static int guard_start(struct lazy *l, const pid_t *tree, size_t nr)
{
	pid_t *pids;
	int sv[2];
	pid_t pid;

	if (nr > LZ_MAX_PIDS)
		return -E2BIG;
	pids = calloc(LZ_MAX_PIDS, sizeof(*pids));
	if (!pids)
		return -ENOMEM;
	memcpy(pids, tree, nr * sizeof(*pids));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		free(pids);
		return -errno;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		free(pids);
		close(sv[0]);
		close(sv[1]);
		return -errno;
	}
	if (!pid) {
		/* nothing of ours but the channel and stderr (its lines reach the log) */
		if (dup2(sv[1], 3) < 0)
			_exit(1);
		close(0);
		syscall(__NR_close_range, 4, ~0U, 0);
		guard_main(3, pids, nr);
	}
	free(pids);
	close(sv[1]);
	l->guard = sv[0];
	l->guard_pid = pid;
	return 0;
}

/* ---- the thread ---- */

static int lz_add_mm(struct lazy *l, int uffd, uint32_t pid, pid_t host_pid)
{
	struct lz_mm *m;
	char path[64];

	if (grow_array(&l->mm, &l->cap_mm, l->nr_mm, sizeof(*l->mm)))
		return -ENOMEM;
	m = &l->mm[l->nr_mm++];
	memset(m, 0, sizeof(*m));
	m->uffd = uffd;
	m->pid = pid;
	m->pagemap = -1;
	if (host_pid > 0) {
		snprintf(path, sizeof(path), "/proc/%d/pagemap", host_pid);
		m->pagemap = open(path, O_RDONLY | O_CLOEXEC);
	}
	return 0;
}

/* UFFD_EVENT_FORK: the child's uffd, with what is left of the parent's list. */
static int lz_fork(struct lazy *l, size_t parent, int uffd)
{
	struct lz_mm *m, *p;
	size_t i;
	int ret;

	l->forks++;
	ret = lz_add_mm(l, uffd, l->mm[parent].pid, 0);
	if (ret) {
		close(uffd);
		return ret;
	}
	p = &l->mm[parent];
	m = &l->mm[l->nr_mm - 1];
	for (i = p->loc.cur; i < p->loc.nr && !ret; i++)
		ret = lz_push(&m->loc, p->loc.r[i].start, p->loc.r[i].end, p->loc.r[i].delta);
	for (i = p->rem.cur; i < p->rem.nr && !ret; i++)
		ret = lz_push(&m->rem, p->rem.r[i].start, p->rem.r[i].end, p->rem.r[i].delta);
	for (i = 0; i < p->nofork.nr && !ret; i++)
		ret = lz_cut_mm(m, p->nofork.r[i].start, p->nofork.r[i].end, false, 0);
	/* the guard keeps the child's too (a child it may not find is then blocked, not corrupt) */
	if (!ret)
		ret = guard_send(l->guard, 'F', uffd);
	return ret;
}

static int lz_event(struct lazy *l, size_t i, const struct uffd_msg *msg)
{
	struct lz_mm *m = &l->mm[i];

	switch (msg->event) {
	case UFFD_EVENT_PAGEFAULT:
		return lz_fault(l, m, msg->arg.pagefault.address & ~(uint64_t)(PAGE_SIZE - 1));
	case UFFD_EVENT_FORK:
		return lz_fork(l, i, msg->arg.fork.ufd);
	case UFFD_EVENT_REMAP:
		return lz_cut_mm(m, msg->arg.remap.from, msg->arg.remap.from + msg->arg.remap.len,
				 true, (int64_t)(msg->arg.remap.to - msg->arg.remap.from));
	case UFFD_EVENT_REMOVE:
	case UFFD_EVENT_UNMAP:
		/* zero from now on (MADV_DONTNEED), or gone */
		return lz_cut_mm(m, msg->arg.remove.start, msg->arg.remove.end, false, 0);
	}
	return -EPROTO;
}

/*
 * Faults that met EAGAIN (an event of the process not read yet: the kernel
 * refuses copies until it is) are kept and tried again each turn, after
 * what is waiting has been read.
 */
static int lz_retry(struct lazy *l, size_t i)
{
	struct lz_mm *m = &l->mm[i];
	size_t k, n = 0;
	int ret = 0;

	for (k = 0; k < m->nr_again && !ret; k++) {
		ret = lz_fault(l, m, m->again[k]);
		l->faults--;
		if (ret == -EAGAIN) {
			m->again[n++] = m->again[k];
			ret = 0;
		}
	}
	for (; k < m->nr_again; k++)
		m->again[n++] = m->again[k];
	m->nr_again = n;
	return ret;
}

/* Read and handle what waits on mm @i's uffd. */
static int lz_drain(struct lazy *l, size_t i)
{
	struct uffd_msg msg[LZ_MSGS];
	size_t k;
	ssize_t n;
	int ret = 0;

	n = read(l->mm[i].uffd, msg, sizeof(msg));
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	for (k = 0; !ret && k < n / sizeof(msg[0]); k++) {
		ret = lz_event(l, i, &msg[k]);
		if (ret == -EAGAIN) {
			struct lz_mm *m = &l->mm[i];

			ret = grow_array(&m->again, &m->cap_again, m->nr_again, sizeof(*m->again));
			if (!ret)
				m->again[m->nr_again++] = msg[k].arg.pagefault.address &
							  ~(uint64_t)(PAGE_SIZE - 1);
		}
	}
	return ret;
}

/* One background step on some mm: 1 if there was work, 0 none left, -errno. */
static int lz_step(struct lazy *l)
{
	size_t i;

	for (i = 0; i < l->nr_mm; i++) {
		struct lz_mm *m = &l->mm[i];
		struct lz_range *r;
		uint64_t e;
		int ret;

		while (m->loc.cur < m->loc.nr && m->loc.r[m->loc.cur].start >= m->loc.r[m->loc.cur].end)
			m->loc.cur++;
		if (m->gone || m->loc.cur == m->loc.nr)
			continue;
		r = &m->loc.r[m->loc.cur];
		e = r->end - r->start > LZ_CHUNK ? r->start + LZ_CHUNK : r->end;
		ret = lz_fill(l, m, r->start, e, r->delta, true);
		if (ret == -EAGAIN)
			return 1;	/* an event first (the loop reads it) */
		if (ret == -ESRCH) {
			m->gone = true;	/* exited or exec'd: nothing to fill */
			return 1;
		}
		if (ret)
			return ret;
		m->loc.r[m->loc.cur].start = e;
		return 1;
	}
	return 0;
}

/* ---- post-copy: pages from the source ---- */

/* Exactly @len bytes of the post-copy fd, no part later than PC_READ_MS. 0, -EPIPE at its end. */
static int pc_read_full(int fd, uint8_t *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int got = poll(&pfd, 1, PC_READ_MS);
		ssize_t n;

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return got ? -errno : -ETIMEDOUT;
		n = read(fd, buf + done, len - done);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return n ? -errno : -EPIPE;
		done += n;
	}
	return 0;
}

/* One page frame of the post-copy fd: l->pc_batch, its pages in l->pc_data. 0 or -errno. */
static int pc_read_batch(struct lazy *l)
{
	struct page_batch *pb = &l->pc_batch;
	const char *why = NULL;
	uint32_t type, len = 0;
	int ret;

	ret = pc_read_full(l->pc_fd, l->pc_frame, FRAME_HDR);
	if (ret == -EPIPE) {
		l->pc_eof = true;	/* failed only if pages were still to come (lz_thread) */
		return 0;
	}
	if (!ret && frame_check_header(l->pc_frame, &type, &len, &why))
		ret = -EPROTO;
	if (!ret && type != FRAME_PAGES) {
		why = "not a page frame";
		ret = -EPROTO;
	}
	if (!ret)
		ret = pc_read_full(l->pc_fd, l->pc_frame + FRAME_HDR, len);
	if (!ret && page_batch_parse(l->pc_frame + FRAME_HDR, len, pb, &why))
		ret = -EPROTO;
	if (!ret && pb->codec == CODEC_REMOTE) {
		why = "a REMOTE batch";
		ret = -EPROTO;
	}
	if (!ret && pb->codec == CODEC_ZERO)
		memset(l->pc_data, 0, pb->nr_pages * PAGE_SIZE);
	else if (!ret && page_batch_decode(pb, l->pc_data, PB_MAX_DATA, &why))
		ret = -EPROTO;
	if (ret) {
		snprintf(l->why, sizeof(l->why), "post-copy: %s from the page server: %s",
			 ret == -EPROTO ? "a bad page frame" : "reading a page frame",
			 why ? why : strerror(-ret));
		return ret;
	}
	l->pc_pending = true;
	return 0;
}

/*
 * The pages of @m's REMOTE range @k that lie in [s, e) (saved addresses) are
 * in now: off the list. At an end the range shrinks in place (pushes come in
 * address order); a piece in the middle is cut after the walk (@split).
 */
static int pc_taken(struct lz_mm *m, size_t k, uint64_t a, uint64_t b, struct lz_list *split)
{
	struct lz_range *r = &m->rem.r[k];

	if (a <= r->start && b >= r->end)
		r->start = r->end;
	else if (a <= r->start)
		r->start = b;
	else if (b >= r->end)
		r->end = a;
	else
		return lz_push(split, a, b, 0);
	return 0;
}

/*
 * Copy the batch read into every mm whose REMOTE list still holds its pages
 * (not where the process dropped them since). 0, -EAGAIN (an event first:
 * the batch stays pending), or -errno.
 */
static int pc_apply(struct lazy *l)
{
	const struct page_batch *pb = &l->pc_batch;
	uint64_t s = pb->vaddr, e = pb->vaddr + pb->nr_pages * PAGE_SIZE;
	size_t i, k;
	int ret = 0;

	for (i = 0; i < l->nr_mm && !ret; i++) {
		struct lz_mm *m = &l->mm[i];
		struct lz_list split = { 0 };

		if (m->gone || m->pid != pb->pid)
			continue;
		for (k = m->rem.cur; k < m->rem.nr && !ret; k++) {
			const struct lz_range *r = &m->rem.r[k];
			uint64_t rs = r->start - r->delta, re = r->end - r->delta;
			uint64_t a = s > rs ? s : rs, b = e < re ? e : re;

			if (a >= b)
				continue;
			ret = lz_copy(m->uffd, a + r->delta, l->pc_data + (a - s), b - a,
				      &l->pc_pages);
			if (ret == -ENOENT)
				ret = 0;	/* not mapped in this mm (MADV_DONTFORK in a child) */
			if (ret == -ESRCH) {
				m->gone = true;
				ret = 0;
				break;
			}
			if (!ret)
				ret = pc_taken(m, k, a + r->delta, b + r->delta, &split);
		}
		for (k = 0; k < split.nr && (!ret || ret == -EAGAIN); k++) {
			int err = lz_cut(&m->rem, split.r[k].start, split.r[k].end, false, 0);

			if (err)
				ret = err;
		}
		free(split.r);
	}
	if (!ret)
		l->pc_pending = false;
	return ret;
}

/* Does some mm still miss REMOTE pages? */
static bool pc_left(const struct lazy *l)
{
	size_t i, k;

	for (i = 0; i < l->nr_mm; i++) {
		const struct lz_mm *m = &l->mm[i];

		for (k = m->rem.cur; !m->gone && k < m->rem.nr; k++)
			if (m->rem.r[k].start < m->rem.r[k].end)
				return true;
	}
	return false;
}

/* Post-copy after a turn: every REMOTE page in (say so, once), or none can come any more. */
static int pc_check(struct lazy *l)
{
	struct rctl_status st = { .kind = RCTL_POSTCOPY_DONE };

	if (l->pc_fd < 0 || l->pc_reported)
		return 0;
	if (!l->pc_pending && !pc_left(l)) {
		l->pc_reported = true;
		l->pc_us = now_us() - l->t0;
		st.pages = l->pc_pages;
		st.faults = l->pc_faults;
		rctl_send_status(l->status_fd, &st);
		return 0;
	}
	if (!l->pc_eof)
		return 0;
	snprintf(l->why, sizeof(l->why), "post-copy: the page server is gone (its pipe ended) "
		 "while pages only the source holds were still to come");
	return -EPIPE;
}

/* Test hook (docs/testing.md): FERRY_TEST_LAZY_DELAY_MS slows each background step. */
static unsigned int test_delay_ms(void)
{
	const char *v = getenv("FERRY_TEST_LAZY_DELAY_MS");
	int n = v ? atoi(v) : 0;

	return n > 0 && n <= 1000 ? n : 0;
}

static void *lz_thread(void *arg)
{
	struct lazy *l = arg;
	uint64_t delay = test_delay_ms() * 1000ULL, next_step = 0;
	bool idle = false;	/* nothing local left: wait for faults and REMOTE pages */
	int ret = 0;

	for (;;) {
		struct pollfd pfd[l->nr_mm + 2];
		size_t i, n = l->nr_mm;
		uint64_t now = now_us();
		bool want_pc = l->pc_fd >= 0 && !l->pc_eof && !l->pc_pending;
		int got;

		for (i = 0; i < n; i++)
			pfd[i] = (struct pollfd){ .fd = l->mm[i].gone ? -1 : l->mm[i].uffd,
						  .events = POLLIN };
		pfd[n] = (struct pollfd){ .fd = l->stop[0], .events = POLLIN };
		pfd[n + 1] = (struct pollfd){ .fd = want_pc ? l->pc_fd : -1, .events = POLLIN };
		/* faults first; the background step when its time has come */
		got = poll(pfd, n + 2, idle ? -1 : now >= next_step ? 0 :
			   (int)((next_step - now) / 1000 + 1));
		if (got < 0 && errno != EINTR) {
			ret = -errno;
			break;
		}
		if (got > 0 && pfd[n].revents) {
			ret = -ECANCELED;
			break;
		}
		for (i = 0; got > 0 && i < n && !ret; i++)
			if (pfd[i].revents & POLLIN)
				ret = lz_drain(l, i);
		for (i = 0; i < n && !ret; i++)
			if (l->mm[i].nr_again)
				ret = lz_retry(l, i);
		/* post-copy: a batch from the source, into every mm that still misses it */
		if (!ret && got > 0 && pfd[n + 1].revents)
			ret = pc_read_batch(l);
		if (!ret && l->pc_pending) {
			ret = pc_apply(l);
			if (ret == -EAGAIN)
				ret = 0;	/* an event first: the next turn reads it */
		}
		if (!ret)
			ret = pc_check(l);
		if (ret)
			break;
		if (now_us() < next_step)
			continue;
		next_step = now_us() + delay;
		ret = lz_step(l);
		for (i = 0; !ret && i < l->nr_mm; i++)
			if (l->mm[i].nr_again)
				ret = 1;	/* not done while a fault waits */
		idle = !ret && l->pc_fd >= 0 && !l->pc_reported && !l->pc_pending;
		if (ret == 1 || idle || (!ret && l->pc_pending))
			ret = 0;
		else
			break;	/* everything is in (0), or the fill failed */
	}
	if (ret) {
		l->err = ret;
		if (!l->why[0])
			snprintf(l->why, sizeof(l->why), "%s", strerror(-ret));
	}
	l->us = now_us() - l->t0;
	return NULL;
}

/* ---- the interface ---- */

int lazy_start(struct lazy **out, struct stack_view *sv, const struct lazy_proc *p, size_t nr,
	       int pc_fd, int status_fd)
{
	struct lazy *l = calloc(1, sizeof(*l));
	pid_t *pids = calloc(nr ? nr : 1, sizeof(*pids));
	size_t i, k;
	int ret = 0;

	*out = NULL;
	if (!l || !pids) {
		for (i = 0; i < nr; i++)
			close(p[i].uffd);
		free(l);
		free(pids);
		return -ENOMEM;
	}
	l->sv = sv;
	l->guard = l->stop[0] = l->stop[1] = -1;
	l->pc_fd = pc_fd;
	l->status_fd = status_fd;
	l->t0 = now_us();
	l->buf = malloc(LZ_CHUNK);
	if (pc_fd >= 0) {
		l->pc_frame = malloc(FRAME_MAX);
		l->pc_data = malloc(PB_MAX_DATA);
	}
	if (!l->buf || (pc_fd >= 0 && (!l->pc_frame || !l->pc_data)) || pipe2(l->stop, O_CLOEXEC))
		ret = -ENOMEM;
	for (i = 0; !ret && i < nr; i++) {
		struct lz_mm *m;

		pids[i] = p[i].host_pid;
		ret = lz_add_mm(l, p[i].uffd, p[i].pid, p[i].host_pid);
		if (ret)
			break;
		m = &l->mm[l->nr_mm - 1];
		for (k = 0; !ret && k < p[i].left->nr; k++)
			ret = lz_push(&m->loc, p[i].left->r[k].start, p[i].left->r[k].end, 0);
		for (k = 0; !ret && p[i].remote && k < p[i].remote->nr; k++)
			ret = lz_push(&m->rem, p[i].remote->r[k].start, p[i].remote->r[k].end, 0);
		for (k = 0; !ret && k < p[i].nofork->nr; k++)
			ret = ranges_add(&m->nofork, p[i].nofork->r[k].start, p[i].nofork->r[k].end);
	}
	if (!ret)
		ret = guard_start(l, pids, nr);
	for (i = 0; !ret && i < l->nr_mm; i++)
		ret = guard_send(l->guard, 'F', l->mm[i].uffd);
	free(pids);
	if (!ret) {
		ret = -pthread_create(&l->th, NULL, lz_thread, l);
		l->running = !ret;
	}
	for (k = l->nr_mm; ret && k < nr; k++)
		close(p[k].uffd);	/* ours from the call on */
	if (ret) {
		lazy_end(l, false);
		return ret;
	}
	*out = l;
	return 0;
}

int lazy_end(struct lazy *l, bool wait)
{
	int ret, status;
	size_t i;

	if (!l)
		return 0;
	if (l->running && !wait && write(l->stop[1], "x", 1) < 0)
		pr_perror("lazy fill: stop");
	if (l->running)
		pthread_join(l->th, NULL);
	ret = l->running ? l->err : -ECANCELED;
	/* on stdout, like "restored pid" (the page server's log may be gone by now) */
	if (!ret && wait)
		printf("lazy fill: %llu pages copied in %.1f ms after the process ran, "
		       "%llu faults served (%llu zero), %llu forks during it (%llu pages copied "
		       "into the children)\n", (unsigned long long)l->pages, l->us / 1e3,
		       (unsigned long long)l->faults, (unsigned long long)l->zero_faults,
		       (unsigned long long)l->forks, (unsigned long long)l->child_pages);
	if (!ret && wait && l->pc_fd >= 0)
		printf("post-copy: %llu pages came from the source, %llu faults waited for them "
		       "(%llu fetches), every one in %.1f ms after the process ran\n",
		       (unsigned long long)l->pc_pages, (unsigned long long)l->pc_faults,
		       (unsigned long long)l->pc_fetches, l->pc_us / 1e3);
	/*
	 * Filled (or the tree discarded): the guard may let the uffds go. On a
	 * failure with the tree running, it is not told: it kills the tree.
	 */
	if (l->guard >= 0 && (!ret || !wait))
		guard_send(l->guard, 'D', -1);
	if (l->guard >= 0)
		close(l->guard);
	if (l->guard_pid > 0)
		waitpid(l->guard_pid, &status, 0);
	for (i = 0; i < l->nr_mm; i++) {
		close(l->mm[i].uffd);
		if (l->mm[i].pagemap >= 0)
			close(l->mm[i].pagemap);
		free(l->mm[i].loc.r);
		free(l->mm[i].rem.r);
		free(l->mm[i].again);
		ranges_free(&l->mm[i].nofork);
	}
	if (ret && wait)
		pr_err("lazy fill failed after the process ran: %s; it is killed (a missing page "
		       "would read as zero)", l->why[0] ? l->why : strerror(-ret));
	free(l->mm);
	free(l->buf);
	free(l->pc_frame);
	free(l->pc_data);
	if (l->stop[0] >= 0)
		close(l->stop[0]);
	if (l->stop[1] >= 0)
		close(l->stop[1]);
	free(l);
	return ret;
}
