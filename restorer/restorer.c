// SPDX-License-Identifier: MIT
/*
 * The restorer blob: runs inside a new process made by `restore`, on its
 * own stack in its own mapping, and turns that process into the saved one,
 * one command at a time (see restorer.h). After each command it stops on
 * int3 for the tracer; after FINAL every thread returns into its saved
 * registers, signal mask and altstack with rt_sigreturn, and the tracer
 * unmaps the blob from the outside.
 */
#include <stdbool.h>
#include <stdint.h>

#include "common/raw_syscall.h"
#include "restorer/restorer.h"

#define NR_read		0
#define NR_write	1
#define NR_open		2
#define NR_close	3
#define NR_mmap		9
#define NR_mprotect	10
#define NR_munmap	11
#define NR_rt_sigaction	13
#define NR_rt_sigreturn	15
#define NR_pread64	17
#define NR_madvise	28
#define NR_shmat	30
#define NR_setitimer	38
#define NR_recvmsg	47
#define NR_sendmsg	46
#define NR_ioctl	16
#define NR_userfaultfd	323
#define NR_fcntl	72
#define NR_chdir	80
#define NR_umask	95
#define NR_setresuid	117
#define NR_setresgid	119
#define NR_setfsuid	122
#define NR_setfsgid	123
#define NR_setgroups	116
#define NR_personality	135
#define NR_prctl	157
#define NR_mlockall	151
#define NR_mlock2	325
#define NR_arch_prctl	158
#define NR_chroot	161
#define NR_set_tid_address 218
#define NR_timer_create	222
#define NR_timer_settime 223
#define NR_clock_gettime 228
#define NR_exit_group	231
#define NR_dup3		292
#define NR_prlimit64	302
#define NR_rseq		334
#define NR_setpgid	109
#define NR_getpid	39
#define NR_gettid	186
#define NR_rt_sigqueueinfo 129
#define NR_rt_tgsigqueueinfo 297
#define NR_clone3	435
#define NR_preadv	295
#define NR_setsid	112
#define NR_capget	125
#define NR_capset	126
#define NR_set_robust_list 273
#define NR_sched_setattr 314
#define NR_sched_setaffinity 203
#define NR_ioprio_set	251
#define NR_membarrier	324
#define NR_flock	73
#define NR_seccomp	317

#define PROT_READ	0x1
#define PROT_WRITE	0x2
#define MAP_FIXED	0x10
#define MADV_DONTNEED	4
#define MADV_MERGEABLE	12
#define MADV_UNMERGEABLE 13
#define MADV_GUARD_INSTALL 102
#define O_RDONLY	0
#define O_CLOEXEC	02000000
#define NR_ioctl	16
#define NR_rt_sigprocmask 14
#define TIOCSCTTY	0x540E
#define TIOCSPGRP	0x5410
#define SIGTTOU		22
#define F_DUPFD		0
#define F_SETLK		6
#define F_OFD_SETLK	37
#define LOCK_SH		1
#define LOCK_EX		2
#define LOCK_NB		4
#define F_WRLCK		1
#define ARCH_SET_GS	0x1001
#define ARCH_SET_FS	0x1002
#define ARCH_MAP_VDSO_64 0x2003
#define PR_SET_NAME	15
#define PR_SET_TIMERSLACK 29
#define PR_SET_TSC	26
#define PR_MCE_KILL	33
#define PR_MCE_KILL_SET	1
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define TIMER_ABSTIME	1
#define NSEC		1000000000LL
#define PR_SET_MM	35
#define PR_SET_MM_MAP	14
#define PR_SET_DUMPABLE	4
#define PR_SET_PDEATHSIG 1
#define PR_SET_KEEPCAPS	8
#define PR_SET_SECUREBITS 28
#define PR_GET_SECUREBITS 27
#define PR_SET_THP_DISABLE 41
#define PR_SET_MEMORY_MERGE 67
#define PR_SET_CHILD_SUBREAPER 36
#define PR_SET_NO_NEW_PRIVS 38
#define PR_CAPBSET_READ	23
#define PR_CAPBSET_DROP	24
#define PR_CAP_AMBIENT	47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#define SECBIT_KEEP_CAPS 0x10
#define CAP_VERSION_3	0x20080522
#define O_WRONLY	1
#define RSEQ_FLAG_UNREGISTER 1
#define TASK_SIZE	0x7ffffffff000UL
#define EINTR		4
#define EIO		5
#define SOL_SOCKET	1
#define SCM_RIGHTS	1
#define O_NONBLOCK	04000
#define MSG_NOSIGNAL	0x4000

/* linux/userfaultfd.h, fixed here: _IOWR(0xAA, nr, size) */
#define UFFD_IOWR(nr, size)	(0xc0000000UL | (size) << 16 | 0xAA00 | (nr))
#define UFFD_API		0xAA
#define UFFDIO_API		UFFD_IOWR(0x3F, 24)
#define UFFDIO_REGISTER		UFFD_IOWR(0x00, 32)
#define UFFDIO_REGISTER_MODE_MISSING 1

#define CLONE_VM	0x00000100
#define CLONE_FS	0x00000200
#define CLONE_FILES	0x00000400
#define CLONE_SIGHAND	0x00000800
#define CLONE_THREAD	0x00010000
#define CLONE_SYSVSEM	0x00040000

static int failed(struct rst_args *a, const char *step, long err, uint64_t addr)
{
	int i;

	for (i = 0; step[i] && i < (int)sizeof(a->err_step) - 1; i++)
		a->err_step[i] = step[i];
	a->err_step[i] = 0;
	a->err = err;
	a->err_addr = addr;
	a->status = RST_FAILED;
	return -1;
}

/* ---- PREPARE ---- */

/* Unmap [*cur, start), then go on after @end. */
static long unmap_gap(uint64_t *cur, uint64_t start, uint64_t end)
{
	long ret = 0;

	if (start < *cur || end < start)
		return -22;	/* keep ranges out of order, or over the blob */
	if (start > *cur)
		ret = raw_syscall2(NR_munmap, *cur, start - *cur);
	*cur = end;
	return ret;
}

/* Everything but the blob and the ranges to keep (a child's inherited memory). */
static int unmap_all_but(struct rst_args *a)
{
	const struct rst_range *k = (const struct rst_range *)a->keep;
	uint64_t end = a->self_start + a->self_len, cur = 0, i;
	bool self_done = false;
	long ret = 0;

	for (i = 0; i < a->nr_keep && !ret; i++) {
		if (!self_done && a->self_start < k[i].start) {
			ret = unmap_gap(&cur, a->self_start, end);
			self_done = true;
		}
		if (!ret && (k[i].start & 4095 || k[i].end & 4095 || k[i].end > TASK_SIZE))
			ret = -22;
		if (!ret)
			ret = unmap_gap(&cur, k[i].start, k[i].end);
	}
	if (!ret && !self_done)
		ret = unmap_gap(&cur, a->self_start, end);
	if (!ret)
		ret = unmap_gap(&cur, TASK_SIZE, TASK_SIZE);
	return ret ? failed(a, "munmap", ret, cur) : 0;
}

static int cmd_prepare(struct rst_args *a)
{
	long ret;

	if (a->own_rseq_addr) {
		/* The kernel would write to it after it is gone (SIGSEGV). */
		ret = raw_syscall4(NR_rseq, a->own_rseq_addr, a->own_rseq_len,
				   RSEQ_FLAG_UNREGISTER, a->own_rseq_sig);
		if (ret)
			return failed(a, "rseq unregister", ret, a->own_rseq_addr);
	}
	if (unmap_all_but(a))
		return -1;
	if (a->vdso_addr) {
		ret = raw_syscall2(NR_arch_prctl, ARCH_MAP_VDSO_64, a->vdso_addr);
		if (ret < 0)
			return failed(a, "map vdso", ret, a->vdso_addr);
	}
	return 0;
}

/* ---- MEMORY ---- */

/* Consecutive reads from one pages file share one open. */
struct open_file {
	uint64_t path;
	int fd;
	uint32_t nr_syscalls;	/* made by the MEMORY command so far */
	int sock_fd;		/* RST_OP_UFFD_SEND's channel */
};

static long file_fd(struct open_file *of, uint64_t path)
{
	long fd;

	if (of->path == path)
		return of->fd;
	if (of->fd >= 0) {
		raw_syscall1(NR_close, of->fd);
		of->nr_syscalls++;
	}
	of->fd = -1;
	of->path = 0;
	fd = raw_syscall3(NR_open, path, O_RDONLY | O_CLOEXEC, 0);
	of->nr_syscalls++;
	if (fd >= 0) {
		of->fd = fd;
		of->path = path;
	}
	return fd;
}

static long read_full(long fd, uint64_t addr, uint64_t len, uint64_t off, uint32_t *nsys)
{
	uint64_t done = 0;

	while (done < len) {
		long n = raw_syscall4(NR_pread64, fd, addr + done, len - done, off + done);

		++*nsys;
		if (n == -EINTR)
			continue;
		if (n <= 0)
			return n ? n : -EIO;
		done += n;
	}
	return 0;
}

static long run_map(const struct rst_op *op)
{
	long fd = -1, ret;

	if (op->path) {
		fd = raw_syscall3(NR_open, op->path, op->open_flags | O_CLOEXEC, 0);
		if (fd < 0)
			return fd;
	}
	ret = raw_syscall6(NR_mmap, op->addr, op->len, op->prot, op->flags | MAP_FIXED, fd, op->off);
	if (fd >= 0)
		raw_syscall1(NR_close, fd);
	return ret == (long)op->addr ? 0 : (ret < 0 ? ret : -EIO);
}

/*
 * Reads of one pages file whose file ranges follow each other (a round's
 * scattered pages, written in address order) into scattered memory: one
 * preadv per RD_BATCH of them, not a pread each.
 */
#define RD_BATCH	256

struct rd_iov {
	uint64_t base, len;
};

static uint64_t read_run(const struct rst_op *op, uint64_t left)
{
	uint64_t n = 1;

	while (n < left && n < RD_BATCH && op[n].type == RST_OP_READ && op[n].path == op->path &&
	       op[n].off == op[n - 1].off + op[n - 1].len)
		n++;
	return n;
}

static long readv_full(long fd, struct rd_iov *iov, uint64_t nr, uint64_t off, uint32_t *nsys)
{
	while (nr) {
		long n = raw_syscall5(NR_preadv, fd, iov, nr, off, 0);

		++*nsys;
		if (n == -EINTR)
			continue;
		if (n <= 0)
			return n ? n : -EIO;
		off += n;
		while (nr && (uint64_t)n >= iov->len) {
			n -= iov->len;
			iov++;
			nr--;
		}
		if (nr) {
			iov->base += n;
			iov->len -= n;
		}
	}
	return 0;
}

static long run_reads(const struct rst_op *op, uint64_t nr, struct open_file *of)
{
	struct rd_iov iov[RD_BATCH];
	long fd = file_fd(of, op->path);
	uint64_t i;

	if (fd < 0)
		return fd;
	if (nr == 1)
		return read_full(fd, op->addr, op->len, op->off, &of->nr_syscalls);
	for (i = 0; i < nr; i++) {
		iov[i].base = op[i].addr;
		iov[i].len = op[i].len;
	}
	return readv_full(fd, iov, nr, op->off, &of->nr_syscalls);
}

static bool page_same(const uint64_t *x, const uint64_t *y)
{
	int i;

	for (i = 0; i < 4096 / 8; i++)
		if (x[i] != y[i])
			return false;
	return true;
}

/* READ_CMP: through the scratch area, a page written only where it differs. */
static long run_read_cmp(const struct rst_op *op, struct open_file *of, const struct rst_args *a)
{
	long fd = file_fd(of, op->path), ret;
	uint64_t done, n, p;

	if (fd < 0)
		return fd;
	if (!a->scratch || a->scratch_len < 4096 || (op->addr | op->len) & 4095)
		return -22;
	for (done = 0; done < op->len; done += n) {
		n = op->len - done;
		if (n > (a->scratch_len & ~4095UL))
			n = a->scratch_len & ~4095UL;
		ret = read_full(fd, a->scratch, n, op->off + done, &of->nr_syscalls);
		if (ret)
			return ret;
		for (p = 0; p < n; p += 4096) {
			uint64_t *mem = (uint64_t *)(op->addr + done + p);
			const uint64_t *file = (const uint64_t *)(a->scratch + p);

			if (!page_same(mem, file))
				raw_memcpy(mem, file, 4096);
		}
	}
	return 0;
}

/* struct msghdr, fixed here: one byte of data, @control for SCM_RIGHTS. */
struct rst_msg {
	uint64_t name; uint32_t namelen, pad; uint64_t iov, iovlen;
	uint64_t control, controllen; int32_t flags, pad2;
};

struct rst_iov {
	uint64_t base, len;
};

static void msg_one_byte(struct rst_msg *msg, struct rst_iov *iov, char *byte, void *control,
			 uint64_t controllen)
{
	iov->base = (uint64_t)byte;
	iov->len = 1;
	raw_memset(msg, 0, sizeof(*msg));
	msg->iov = (uint64_t)iov;
	msg->iovlen = 1;
	msg->control = (uint64_t)control;
	msg->controllen = controllen;
}

/* A userfaultfd of this process with @features, at fd @at. */
static long uffd_open(uint64_t features, long at)
{
	uint64_t api[3] = { UFFD_API, features, 0 };
	long fd, ret;

	fd = raw_syscall1(NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return fd;
	ret = raw_syscall3(NR_ioctl, fd, UFFDIO_API, api);
	if (!ret && fd != at) {
		ret = raw_syscall3(NR_dup3, fd, at, O_CLOEXEC);
		ret = ret == at ? 0 : (ret < 0 ? ret : -EIO);
	}
	if (fd != at)
		raw_syscall1(NR_close, fd);	/* only @at stays, and only if all went well */
	if (ret)
		raw_syscall1(NR_close, at);
	return ret;
}

static long uffd_register(long fd, uint64_t addr, uint64_t len)
{
	uint64_t reg[4] = { addr, len, UFFDIO_REGISTER_MODE_MISSING, 0 };

	return raw_syscall3(NR_ioctl, fd, UFFDIO_REGISTER, reg);
}

/* @fd to the tracer over @sock (one byte and SCM_RIGHTS), then closed here. */
static long uffd_send(int sock, long fd)
{
	struct { uint64_t len; int32_t level, type; int32_t fd, pad; } cm = {
		20, SOL_SOCKET, SCM_RIGHTS, (int32_t)fd, 0 };
	struct rst_iov iov;
	struct rst_msg msg;
	char byte = 'u';
	long ret;

	msg_one_byte(&msg, &iov, &byte, &cm, sizeof(cm));
	ret = raw_syscall3(NR_sendmsg, sock, &msg, MSG_NOSIGNAL);
	raw_syscall1(NR_close, fd);
	return ret == 1 ? 0 : (ret < 0 ? ret : -EIO);
}

static long run_op(const struct rst_op *op, struct open_file *of)
{
	switch (op->type) {
	case RST_OP_MAP:
		of->nr_syscalls += op->path ? 3 : 1;	/* open, mmap, close */
		return run_map(op);
	case RST_OP_READ:
		return run_reads(op, 1, of);
	case RST_OP_ZERO:
		raw_memset((void *)op->addr, 0, op->len);
		return 0;
	}
	of->nr_syscalls++;
	switch (op->type) {
	case RST_OP_DISCARD:
		return raw_syscall3(NR_madvise, op->addr, op->len, MADV_DONTNEED);
	case RST_OP_PROTECT:
		return raw_syscall3(NR_mprotect, op->addr, op->len, op->prot);
	case RST_OP_UNMAP:
		return raw_syscall2(NR_munmap, op->addr, op->len);
	case RST_OP_ADVISE:
		return raw_syscall3(NR_madvise, op->addr, op->len, op->flags);
	case RST_OP_MERGE_ANY:
		return raw_syscall2(NR_prctl, PR_SET_MEMORY_MERGE, 1);
	case RST_OP_LOCK:
		return raw_syscall3(NR_mlock2, op->addr, op->len, op->flags);
	case RST_OP_MLOCKALL:
		return raw_syscall1(NR_mlockall, op->flags);
	case RST_OP_UFFD_OPEN:
		/* not fatal: the tracer sees whether the fd is there and may do without */
		uffd_open(op->flags, op->open_flags);
		return 0;
	case RST_OP_UFFD_REGISTER:
		return uffd_register(op->open_flags, op->addr, op->len);
	case RST_OP_UFFD_SEND:
		return uffd_send(of->sock_fd, op->open_flags);
	case RST_OP_SHMAT: {
		long r = raw_syscall3(NR_shmat, op->off, op->addr, op->flags);

		return r == (long)op->addr ? 0 : (r < 0 ? r : -EIO);
	}
	}
	return -22;
}

/* No table of strings: pointers in data would need relocating. */
static const char *op_name(const struct rst_op *op)
{
	switch (op->type) {
	case RST_OP_MAP:
		return "mmap";
	case RST_OP_READ:
	case RST_OP_READ_CMP:
		return "pread pages";
	case RST_OP_ZERO:
		return "zero";
	case RST_OP_DISCARD:
		return "discard";
	case RST_OP_PROTECT:
		return "mprotect";
	case RST_OP_ADVISE:
		if (op->flags == MADV_MERGEABLE || op->flags == MADV_UNMERGEABLE)
			return "madvise (KSM)";
		if (op->flags == MADV_GUARD_INSTALL)
			return "madvise MADV_GUARD_INSTALL";
		return "madvise";
	case RST_OP_MERGE_ANY:
		return "PR_SET_MEMORY_MERGE (KSM)";
	case RST_OP_LOCK:
		return "mlock (locked memory)";
	case RST_OP_MLOCKALL:
		return "mlockall(MCL_FUTURE)";
	case RST_OP_UFFD_OPEN:
		return "userfaultfd";
	case RST_OP_UFFD_REGISTER:
		return "UFFDIO_REGISTER";
	case RST_OP_UFFD_SEND:
		return "send userfaultfd";
	case RST_OP_SHMAT:
		return "shmat (SysV shared memory)";
	default:
		return "munmap";
	}
}

static int cmd_memory(struct rst_args *a)
{
	const struct rst_op *op = (const struct rst_op *)a->ops;
	struct open_file of = { 0, -1, 0, a->sock_fd };
	uint64_t i, n;
	int ret = 0;

	for (i = 0; i < a->nr_ops && !ret; i += n, op += n) {
		long r;

		n = op->type == RST_OP_READ ? read_run(op, a->nr_ops - i) : 1;
		if (op->type == RST_OP_READ)
			r = run_reads(op, n, &of);
		else if (op->type == RST_OP_READ_CMP)
			r = run_read_cmp(op, &of, a);
		else
			r = run_op(op, &of);
		if (r)
			ret = failed(a, op_name(op), r, op->addr);
	}
	if (of.fd >= 0) {
		raw_syscall1(NR_close, of.fd);
		of.nr_syscalls++;
	}
	a->nr_syscalls = of.nr_syscalls;
	return ret;
}

/* ---- FINAL ---- */

static int restore_mm(struct rst_args *a)
{
	long fd, ret;

	fd = raw_syscall3(NR_open, a->exe_path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0)
		return failed(a, "open exe", fd, 0);
	a->mm.auxv = (uint64_t)a->auxv;
	a->mm.exe_fd = fd;
	ret = raw_syscall5(NR_prctl, PR_SET_MM, PR_SET_MM_MAP, &a->mm, sizeof(a->mm), 0);
	raw_syscall1(NR_close, fd);
	if (ret)
		return failed(a, "prctl PR_SET_MM_MAP", ret, 0);
	return 0;
}

/*
 * chroot after every path of ours is opened (exe, /proc/self/loginuid): the
 * saved paths are as seen from outside the root. The cwd, set before, stays.
 */
static int restore_root(struct rst_args *a)
{
	long ret;

	if (!a->root)
		return 0;
	ret = raw_syscall1(NR_chroot, a->root);
	return ret ? failed(a, "chroot", ret, 0) : 0;
}

/* Decimal, NUL-terminated; returns the length. */
static int u32_to_str(uint32_t v, char *buf)
{
	char tmp[10];
	int n = 0, i;

	do {
		tmp[n++] = '0' + v % 10;
		v /= 10;
	} while (v);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = 0;
	return n;
}

/*
 * THP disabled, child subreaper, loginuid, membarrier registrations (of the
 * mm: before any other thread exists or runs).
 */
static int restore_proc_attrs(struct rst_args *a)
{
	char buf[12];
	long ret, fd;
	int n;

	for (n = 0; n < 32; n++) {
		if (!(a->membarrier & (1u << n)))
			continue;
		ret = raw_syscall3(NR_membarrier, 1u << n, 0, 0);
		if (ret)
			return failed(a, "membarrier register", ret, 1u << n);
	}

	if (a->thp_disable >= 0) {
		ret = raw_syscall5(NR_prctl, PR_SET_THP_DISABLE, a->thp_disable & 1,
				   a->thp_disable & ~1, 0, 0);
		if (ret)
			return failed(a, "PR_SET_THP_DISABLE", ret, a->thp_disable);
	}
	if (a->child_subreaper >= 0) {
		ret = raw_syscall2(NR_prctl, PR_SET_CHILD_SUBREAPER, a->child_subreaper);
		if (ret)
			return failed(a, "PR_SET_CHILD_SUBREAPER", ret, a->child_subreaper);
	}
	if (a->set_loginuid) {
		fd = raw_syscall3(NR_open, "/proc/self/loginuid", O_WRONLY | O_CLOEXEC, 0);
		if (fd < 0)
			return failed(a, "open loginuid", fd, a->loginuid);
		n = u32_to_str(a->loginuid, buf);
		ret = raw_syscall3(NR_write, fd, buf, n);
		raw_syscall1(NR_close, fd);
		if (ret != n)
			return failed(a, "write loginuid", ret < 0 ? ret : -EIO, a->loginuid);
	}
	return 0;
}

/*
 * The foreground group of its terminal, once that group exists. Possibly
 * from a background group: SIGTTOU blocked meanwhile (the saved mask comes
 * back with the last sigreturn).
 */
static int restore_tty_fg(struct rst_args *a)
{
	uint64_t ttou = 1ULL << (SIGTTOU - 1);
	int32_t pgrp = a->tty_fg;
	long ret;

	if (a->tty_fg_fd < 0)
		return 0;
	ret = raw_syscall4(NR_rt_sigprocmask, 0 /* SIG_BLOCK */, &ttou, 0, 8);
	if (!ret)
		ret = raw_syscall3(NR_ioctl, a->tty_fg_fd, TIOCSPGRP, &pgrp);
	return ret ? failed(a, "TIOCSPGRP", ret, pgrp) : 0;
}

static int restore_task(struct rst_args *a)
{
	uint32_t i;
	long ret;

	if (a->pgid) {
		ret = raw_syscall2(NR_setpgid, 0, a->pgid);
		if (ret)
			return failed(a, "setpgid", ret, a->pgid);
	}
	if (restore_tty_fg(a))
		return -1;
	raw_syscall1(NR_umask, a->umask);
	ret = raw_syscall1(NR_personality, a->personality);
	if (ret < 0)
		return failed(a, "personality", ret, a->personality);
	/* as seen from outside, as the root: restore_root comes later */
	ret = raw_syscall1(NR_chdir, a->cwd);
	if (ret)
		return failed(a, "chdir", ret, 0);
	for (i = 0; i < a->nr_rlimits; i++) {
		ret = raw_syscall4(NR_prlimit64, 0, i, a->rlimits[i], 0);
		if (ret)
			return failed(a, "setrlimit", ret, i);
	}
	return restore_proc_attrs(a);
}

/*
 * Take @want fds sent by SCM_RIGHTS on sock_fd; each is moved to park + i
 * (park < 0: left where it lands, written to out[i]).
 */
static int receive_fds(struct rst_args *a, uint32_t want, int32_t park, int32_t *out)
{
	uint32_t got = 0;

	while (got < want) {
		struct { uint64_t len; int32_t level, type; int32_t fds[RST_FDS_PER_MSG]; } cm;
		struct rst_iov iov;
		struct rst_msg msg;
		char byte;
		uint32_t n, i;
		long ret;

		msg_one_byte(&msg, &iov, &byte, &cm, sizeof(cm));
		ret = raw_syscall3(NR_recvmsg, a->sock_fd, &msg, O_CLOEXEC);
		if (ret <= 0)
			return failed(a, "recvmsg fds", ret ? ret : -EIO, got);
		if (cm.level != SOL_SOCKET || cm.type != SCM_RIGHTS || cm.len < 16)
			return failed(a, "recvmsg fds", -EIO, got);
		n = (cm.len - 16) / 4;
		for (i = 0; i < n && got < want; i++, got++) {
			if (park < 0) {
				out[got] = cm.fds[i];
				continue;
			}
			ret = raw_syscall3(NR_fcntl, cm.fds[i], F_DUPFD, park + got);
			raw_syscall1(NR_close, cm.fds[i]);
			if (ret != park + got)
				return failed(a, "park fd", ret, got);
		}
	}
	return 0;
}

/* Each file lock again, not waiting: one held by someone else here fails the restore. */
static int take_locks(struct rst_args *a)
{
	const struct rst_lock *l = (const struct rst_lock *)a->locks;
	uint32_t i;

	for (i = 0; i < a->nr_locks; i++) {
		struct { int16_t type, whence; int64_t start, len; int32_t pid, pad; } fl = {
			l[i].type, 0 /* SEEK_SET */, l[i].start, l[i].len, 0, 0
		};
		long ret;

		if (l[i].kind == RST_LOCK_FLOCK)
			ret = raw_syscall2(NR_flock, l[i].fd,
					   (l[i].type == F_WRLCK ? LOCK_EX : LOCK_SH) | LOCK_NB);
		else
			ret = raw_syscall3(NR_fcntl, l[i].fd,
					   l[i].kind == RST_LOCK_OFD ? F_OFD_SETLK : F_SETLK,
					   (long)&fl);
		if (ret)
			return failed(a, "file lock", ret, i);
	}
	return 0;
}

static int restore_fds(struct rst_args *a)
{
	const struct rst_fd *f = (const struct rst_fd *)a->fds;
	uint32_t i;

	if (receive_fds(a, a->nr_fds, a->fd_park, 0))
		return -1;
	for (i = 0; i < a->nr_work_fds; i++)
		raw_syscall1(NR_close, a->work_fds[i]);
	for (i = 0; i < a->nr_fds; i++) {
		long ret = raw_syscall3(NR_dup3, a->fd_park + i, f[i].fd, f[i].cloexec ? O_CLOEXEC : 0);

		raw_syscall1(NR_close, a->fd_park + i);
		if (ret != f[i].fd)
			return failed(a, "place fd", ret, f[i].fd);
	}
	return take_locks(a);
}

static int restore_signals(struct rst_args *a)
{
	int sig;

	for (sig = 1; sig <= RST_NSIG; sig++) {
		long ret;

		if (sig == 9 || sig == 19)
			continue;
		ret = raw_syscall4(NR_rt_sigaction, sig, &a->sa[sig - 1], 0, 8);
		if (ret)
			return failed(a, "rt_sigaction", ret, sig);
	}
	for (sig = 0; sig < 3; sig++) {
		long ret = raw_syscall3(NR_setitimer, sig, a->itimers[sig], 0);

		if (ret)
			return failed(a, "setitimer", ret, sig);
	}
	return 0;
}

struct cap_header {
	uint32_t version;
	int32_t pid;
};

struct cap_data {
	uint32_t eff, prm, inh;
};

static long caps_get(struct cap_data d[2])
{
	struct cap_header h = { CAP_VERSION_3, 0 };

	return raw_syscall2(NR_capget, &h, d);
}

static long caps_set(uint64_t eff, uint64_t prm, uint64_t inh)
{
	struct cap_header h = { CAP_VERSION_3, 0 };
	struct cap_data d[2] = {
		{ (uint32_t)eff, (uint32_t)prm, (uint32_t)inh },
		{ eff >> 32, prm >> 32, inh >> 32 },
	};

	return raw_syscall2(NR_capset, &h, d);
}

#define CAP64(d, f) ((uint64_t)(d)[1].f << 32 | (d)[0].f)

/*
 * Before the uid change, while we have every capability: the saved
 * inheritable set (it may name capabilities about to leave the bounding
 * set), the bounding set, and keep the permitted set across setresuid.
 */
static int caps_before_ids(struct rst_args *a, const struct rst_thread *t)
{
	struct cap_data d[2];
	long ret;
	int c;

	ret = caps_get(d);
	if (!ret)
		ret = caps_set(CAP64(d, eff), CAP64(d, prm), t->cap_inh);
	if (ret)
		return failed(a, "capset inheritable", ret, t->tid);
	for (c = 0; c < 64; c++) {
		if (t->cap_bnd & 1ULL << c || raw_syscall2(NR_prctl, PR_CAPBSET_READ, c) != 1)
			continue;
		ret = raw_syscall2(NR_prctl, PR_CAPBSET_DROP, c);
		if (ret)
			return failed(a, "PR_CAPBSET_DROP", ret, c);
	}
	ret = raw_syscall2(NR_prctl, PR_SET_KEEPCAPS, 1);
	return ret ? failed(a, "PR_SET_KEEPCAPS", ret, t->tid) : 0;
}

/*
 * fsuid/fsgid (when they differ from the euid/egid setresuid gave): they
 * need CAP_SETUID/CAP_SETGID in effect, and setfs*() only say the old
 * value, so the result is read back (an id of -1 changes nothing).
 */
static int set_fs_ids(struct rst_args *a)
{
	const struct rst_creds *c = &a->creds;

	raw_syscall1(NR_setfsgid, c->fsgid);
	raw_syscall1(NR_setfsuid, c->fsuid);
	if ((uint32_t)raw_syscall1(NR_setfsgid, -1) != c->fsgid ||
	    (uint32_t)raw_syscall1(NR_setfsuid, -1) != c->fsuid)
		return failed(a, "setfsuid/setfsgid", -1 /* EPERM */, c->fsuid);
	return 0;
}

/*
 * After it: with the permitted set effective again, fsuid/fsgid, the
 * ambient set, the securebits, then the saved sets (capset may only take
 * away from here).
 */
static int caps_after_ids(struct rst_args *a, const struct rst_thread *t)
{
	struct cap_data d[2];
	long ret, sb;
	int c;

	ret = caps_get(d);
	if (!ret)
		ret = caps_set(CAP64(d, prm), CAP64(d, prm), t->cap_inh);
	if (ret)
		return failed(a, "capset", ret, t->tid);
	if (set_fs_ids(a))
		return -1;
	ret = raw_syscall5(NR_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	for (c = 0; !ret && c < 64; c++)
		if (t->cap_amb & 1ULL << c)
			ret = raw_syscall5(NR_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0);
	if (ret)
		return failed(a, "ambient capabilities", ret, c - 1);
	sb = raw_syscall1(NR_prctl, PR_GET_SECUREBITS);
	if (sb >= 0 && (uint32_t)sb != t->securebits) {
		/* KEEP_CAPS alone needs no privilege (no CAP_SETPCAP kept) */
		if (((uint32_t)sb ^ t->securebits) == SECBIT_KEEP_CAPS)
			ret = raw_syscall2(NR_prctl, PR_SET_KEEPCAPS, !!(t->securebits & SECBIT_KEEP_CAPS));
		else
			ret = raw_syscall2(NR_prctl, PR_SET_SECUREBITS, t->securebits);
	}
	if (ret)
		return failed(a, "PR_SET_SECUREBITS", ret, t->securebits);
	ret = caps_set(t->cap_eff, t->cap_prm, t->cap_inh);
	return ret ? failed(a, "capset", ret, t->tid) : 0;
}

/*
 * Credentials are per thread: each one sets its own, last (it may lose its
 * capabilities); then what a credential change resets (parent-death signal).
 */
static int restore_creds(struct rst_args *a, const struct rst_thread *t)
{
	const struct rst_creds *c = &a->creds;
	long ret;

	if (t->has_caps && caps_before_ids(a, t))
		return -1;
	ret = raw_syscall2(NR_setgroups, c->nr_groups, c->groups);
	if (!ret)
		ret = raw_syscall3(NR_setresgid, c->gid, c->egid, c->sgid);
	if (!ret)
		ret = raw_syscall3(NR_setresuid, c->uid, c->euid, c->suid);
	if (ret)
		return failed(a, "credentials", ret, c->uid);
	if (t->has_caps ? caps_after_ids(a, t) : set_fs_ids(a))
		return -1;
	/* a uid change resets it: set as it was (0 for a daemon guarding its secrets) */
	ret = raw_syscall2(NR_prctl, PR_SET_DUMPABLE, a->dumpable);
	if (ret)
		return failed(a, "PR_SET_DUMPABLE", ret, a->dumpable);
	ret = raw_syscall2(NR_prctl, PR_SET_PDEATHSIG, t->pdeathsig);
	if (ret)
		return failed(a, "PR_SET_PDEATHSIG", ret, t->pdeathsig);
	if (t->no_new_privs) {
		ret = raw_syscall5(NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
		if (ret)
			return failed(a, "PR_SET_NO_NEW_PRIVS", ret, t->tid);
	}
	return 0;
}

/*
 * Seccomp filters, oldest first, while the task may still install them
 * without no_new_privs (it is root until restore_creds). The tracer holds
 * PTRACE_O_SUSPEND_SECCOMP on us: our own later syscalls pass.
 */
static int install_filters(struct rst_args *a, const struct rst_seccomp *f, uint64_t nr)
{
	uint64_t i;
	long ret;

	for (i = 0; i < nr; i++) {
		struct { uint16_t len, pad[3]; uint64_t filter; } prog = { f[i].len, { 0 }, f[i].prog };

		ret = raw_syscall3(NR_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, f[i].flags, &prog);
		if (ret)
			return failed(a, "seccomp filter", ret, i);
	}
	return 0;
}

/*
 * Signals that were queued at the freeze, queued again (every signal is
 * blocked in here: they wait until rt_sigreturn sets the saved mask).
 */
static int requeue_signals(struct rst_args *a, struct rst_thread *t, bool leader)
{
	long tgid = raw_syscall0(NR_getpid), tid = raw_syscall0(NR_gettid), ret;
	const uint8_t *si;
	uint32_t i;

	for (i = 0, si = (const uint8_t *)t->sigs; i < t->nr_sigs; i++, si += 128) {
		ret = raw_syscall4(NR_rt_tgsigqueueinfo, tgid, tid, *(const int32_t *)si, si);
		if (ret)
			return failed(a, "queue signal", ret, *(const int32_t *)si);
	}
	si = (const uint8_t *)a->shared_sigs;
	for (i = 0; leader && i < a->nr_shared_sigs; i++, si += 128) {
		ret = raw_syscall3(NR_rt_sigqueueinfo, tgid, *(const int32_t *)si, si);
		if (ret)
			return failed(a, "queue signal", ret, *(const int32_t *)si);
	}
	return 0;
}

/*
 * What each thread sets for itself: rseq, clear_child_tid, robust list,
 * scheduling, name, fs/gs bases, its own seccomp filters, creds, strict mode.
 */
static int restore_thread_state(struct rst_args *a, struct rst_thread *t)
{
	long ret;

	if (t->rseq_addr) {
		ret = raw_syscall4(NR_rseq, t->rseq_addr, t->rseq_len, 0, t->rseq_sig);
		if (ret)
			return failed(a, "rseq register", ret, t->rseq_addr);
	}
	if (t->clear_tid)
		raw_syscall1(NR_set_tid_address, t->clear_tid);
	if (t->robust_list) {
		ret = raw_syscall2(NR_set_robust_list, t->robust_list, t->robust_list_len);
		if (ret)
			return failed(a, "set_robust_list", ret, t->robust_list);
	}
	if (t->sched.size) {
		ret = raw_syscall3(NR_sched_setattr, 0, &t->sched, 0);
		if (ret)
			return failed(a, "sched_setattr", ret, t->sched.policy);
	}
	if (t->cpu_mask_len) {
		ret = raw_syscall3(NR_sched_setaffinity, 0, t->cpu_mask_len, t->cpu_mask);
		if (ret)
			return failed(a, "sched_setaffinity (none of its CPUs here?)", ret,
				      t->cpu_mask[0]);
	}
	if (t->ioprio) {
		ret = raw_syscall3(NR_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, t->ioprio);
		if (ret)
			return failed(a, "ioprio_set", ret, t->ioprio);
	}
	if (t->timer_slack)
		raw_syscall2(NR_prctl, PR_SET_TIMERSLACK, t->timer_slack);
	if (t->tsc_mode) {
		ret = raw_syscall2(NR_prctl, PR_SET_TSC, t->tsc_mode);
		if (ret)
			return failed(a, "PR_SET_TSC", ret, t->tsc_mode);
	}
	if (t->mce_kill) {
		ret = raw_syscall3(NR_prctl, PR_MCE_KILL, PR_MCE_KILL_SET, t->mce_kill - 1);
		if (ret)
			return failed(a, "PR_MCE_KILL", ret, t->mce_kill - 1);
	}
	if (t->comm[0])
		raw_syscall2(NR_prctl, PR_SET_NAME, t->comm);
	ret = raw_syscall2(NR_arch_prctl, ARCH_SET_FS, t->fs_base);
	if (!ret && t->gs_base)
		ret = raw_syscall2(NR_arch_prctl, ARCH_SET_GS, t->gs_base);
	if (ret)
		return failed(a, "arch_prctl fs/gs", ret, t->fs_base);
	if (requeue_signals(a, t, t == (struct rst_thread *)a->threads))
		return -1;
	if (install_filters(a, (const struct rst_seccomp *)t->seccomp, t->nr_seccomp) ||
	    restore_creds(a, t))
		return -1;
	/* strict allows rt_sigreturn; the tracer's suspension lets the rest pass */
	ret = t->seccomp_strict ? raw_syscall3(NR_seccomp, 0 /* SECCOMP_SET_MODE_STRICT */, 0, 0) : 0;
	return ret ? failed(a, "seccomp strict", ret, t->tid) : 0;
}

/*
 * Stop on int3 so the tracer sees the verdict, then (if all is well)
 * rt_sigreturn into the thread's saved registers.
 */
__attribute__((noreturn))
static void finish_thread(struct rst_args *a, long idx)
{
	struct rst_thread *t = (struct rst_thread *)a->threads + idx;

	if (a->status == RST_FAILED || restore_thread_state(a, t)) {
		t->status = RST_FAILED;
		__asm__ volatile("int3" ::: "memory");
		for (;;)
			raw_syscall1(NR_exit_group, 1);
	}
	t->status = RST_READY;
	__asm__ volatile("int3\n\t"
			 "mov %0, %%rsp\n\t"
			 "mov %1, %%eax\n\t"
			 "syscall\n\t"
			 "ud2"
			 :: "r"(t->sigframe + 8), "i"(NR_rt_sigreturn) : "memory");
	__builtin_unreachable();
}

struct clone_args_k {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
	uint64_t set_tid, set_tid_size, cgroup;
};

long rst_clone_thread(struct clone_args_k *ca, unsigned long size,
		      void (*fn)(struct rst_args *a, long idx), struct rst_args *a, long idx);

/* Every other thread, with its own TID, on its own blob stack. */
static int clone_threads(struct rst_args *a)
{
	struct rst_thread *t = (struct rst_thread *)a->threads;
	uint64_t i;

	for (i = 1; i < a->nr_threads; i++) {
		uint64_t tid = t[i].tid;
		struct clone_args_k ca = {
			.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
				 CLONE_SYSVSEM,
			.stack = t[i].stack,
			.stack_size = t[i].stack_size,
			.set_tid = (uint64_t)&tid,
			.set_tid_size = 1,
		};
		long ret = rst_clone_thread(&ca, sizeof(ca), finish_thread, a, i);

		if (ret < 0)
			return failed(a, "clone thread", ret, tid);
	}
	return 0;
}

/*
 * A child process with its saved PID, a copy of us: it swaps the socket it
 * inherited for its own and carries on as if the command had just ended.
 */
static int cmd_fork(struct rst_args *a)
{
	uint64_t tid = a->fork_pid;
	struct clone_args_k ca = {
		.exit_signal = 17,	/* SIGCHLD */
		.set_tid = (uint64_t)&tid,
		.set_tid_size = 1,
	};
	int32_t fds[2] = { -1, -1 };
	long ret;

	if (receive_fds(a, a->fork_ctty ? 2 : 1, -1, fds))
		return -1;
	ret = raw_syscall2(NR_clone3, &ca, sizeof(ca));
	if (ret == 0) {
		ret = raw_syscall3(NR_dup3, fds[0], a->sock_fd, O_CLOEXEC);
		raw_syscall1(NR_close, fds[0]);
		if (ret != a->sock_fd)
			return failed(a, "child socket", ret, 0);
		ret = a->fork_new_session ? raw_syscall0(NR_setsid) : 0;
		if (ret < 0)
			return failed(a, "setsid", ret, 0);
		/* its terminal before it has children: they inherit it */
		ret = fds[1] >= 0 ? raw_syscall3(NR_ioctl, fds[1], TIOCSCTTY, 0) : 0;
		if (fds[1] >= 0)
			raw_syscall1(NR_close, fds[1]);
		return ret ? failed(a, "TIOCSCTTY", ret, 0) : 0;
	}
	raw_syscall1(NR_close, fds[0]);
	if (fds[1] >= 0)
		raw_syscall1(NR_close, fds[1]);
	if (ret < 0)
		return failed(a, "fork", ret, tid);
	return 0;
}

struct k_sigevent {
	uint64_t value;
	int32_t signo, notify;
	int32_t tid;
	int32_t pad[11];
};

struct k_itimerspec {
	int64_t interval_sec, interval_nsec, value_sec, value_nsec;
};

/*
 * Each timer with its saved id (timer_create takes the id from *timer_id
 * while PR_TIMER_CREATE_RESTORE_IDS is on), armed with the time it had
 * left. One whose signal was pending at the freeze is armed to expire in
 * the past, at (now + left - interval): the kernel queues its own signal
 * at once (blocked in here), and as for any pending timer signal, counts
 * later expiries as overruns and re-arms it when the signal is taken, so
 * its next expiry is at now + left again.
 */
static int restore_timers(struct rst_args *a)
{
	const struct rst_timer *t = (const struct rst_timer *)a->timers;
	uint64_t i;
	long ret;

	if (!a->nr_timers)
		return 0;
	ret = raw_syscall5(NR_prctl, PR_TIMER_CREATE_RESTORE_IDS, 1, 0, 0, 0);
	if (ret)
		return failed(a, "PR_TIMER_CREATE_RESTORE_IDS", ret, 0);
	for (i = 0; i < a->nr_timers; i++) {
		struct k_sigevent ev = { .value = t[i].sival, .signo = t[i].signo,
					 .notify = t[i].notify, .tid = (int32_t)t[i].tid };
		int32_t id = t[i].id;

		ret = raw_syscall3(NR_timer_create, t[i].clockid, &ev, &id);
		if (!ret && id != t[i].id)
			ret = -EIO;
		if (ret)
			return failed(a, "timer_create", ret, t[i].id);
	}
	ret = raw_syscall5(NR_prctl, PR_TIMER_CREATE_RESTORE_IDS, 0, 0, 0, 0);
	if (ret)
		return failed(a, "PR_TIMER_CREATE_RESTORE_IDS off", ret, 0);
	for (i = 0; i < a->nr_timers; i++) {
		int64_t v = t[i].value_ns, iv = t[i].interval_ns;
		struct k_itimerspec its;
		int flags = 0;

		if (t[i].pending) {
			int64_t now[2];

			ret = raw_syscall2(NR_clock_gettime, t[i].clockid, now);
			if (ret)
				return failed(a, "clock_gettime", ret, t[i].clockid);
			v = now[0] * NSEC + now[1] + v - iv;
			if (v < 1)
				v = 1;
			flags = TIMER_ABSTIME;
		} else if (!v) {
			continue;
		}
		its = (struct k_itimerspec){ iv / NSEC, iv % NSEC, v / NSEC, v % NSEC };
		ret = raw_syscall4(NR_timer_settime, t[i].id, flags, &its, 0);
		if (ret)
			return failed(a, "timer_settime", ret, t[i].id);
	}
	return 0;
}

__attribute__((noreturn))
static void cmd_final(struct rst_args *a)
{
	/* On failure the tracer reads the reason from *a at the int3, then kills us. */
	if (!restore_fds(a) && !restore_task(a) && !restore_mm(a) && !restore_root(a) &&
	    !restore_signals(a) &&
	    !install_filters(a, (const struct rst_seccomp *)a->seccomp_shared, a->nr_seccomp_shared) &&
	    !clone_threads(a) && !restore_timers(a))
		a->status = RST_READY;
	finish_thread(a, 0);
}

__attribute__((noreturn, used, section(".text.restorer_main")))
void restorer_main(struct rst_args *a)
{
	for (;;) {
		int ret = -1;

		a->status = RST_RUNNING;
		switch (a->cmd) {
		case RST_CMD_PREPARE:
			ret = cmd_prepare(a);
			break;
		case RST_CMD_MEMORY:
			ret = cmd_memory(a);
			break;
		case RST_CMD_FORK:
			ret = cmd_fork(a);
			break;
		case RST_CMD_FINAL:
			cmd_final(a);
		default:
			failed(a, "unknown command", -22, a->cmd);
		}
		if (!ret)
			a->status = RST_READY;
		__asm__ volatile("int3" ::: "memory");
		if (a->status == RST_FAILED)
			for (;;)
				raw_syscall1(NR_exit_group, 1);
	}
}
