// SPDX-License-Identifier: MIT
/*
 * `restore`: recreate a process from the top round of an image stack.
 *
 * The process is a clone3() child of this program with the saved PID
 * (set_tid). It sets up what plain C can (session, cwd, rlimits, fds), maps
 * the restorer blob and jumps into it; the blob replaces the whole address
 * space and returns into the saved registers with rt_sigreturn. This program
 * traces the child the whole way: it sees the blob's verdict (int3), lets
 * rt_sigreturn run, unmaps the blob from the outside, and detaches. The
 * child is then reparented away from us and runs on.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/log.h"
#include "common/ptrace.h"
#include "common/util.h"
#include "dest-agent/restore.h"
#include "proto/image.h"
#include "restorer-blob.h"

static int load_proc(int dirfd, PstreeEntry *pe, struct rst_proc *p)
{
	char name[64];
	int ret;

	memset(p, 0, sizeof(*p));
	p->pe = pe;
	snprintf(name, sizeof(name), "core-%u.img", pe->pid);
	ret = img_load_one(dirfd, name, &proc_core__descriptor, (void **)&p->core);
	if (ret)
		return ret;
	snprintf(name, sizeof(name), "mm-%u.img", pe->pid);
	ret = img_load_one(dirfd, name, &mm_entry__descriptor, (void **)&p->mm);
	if (ret)
		return ret;
	snprintf(name, sizeof(name), "files-%u.img", pe->pid);
	ret = img_load_one(dirfd, name, &files_entry__descriptor, (void **)&p->files);
	if (ret)
		return ret;
	if (!p->core->n_threads || p->core->n_threads > RST_MAX_THREADS || !p->core->creds ||
	    p->core->threads[0]->tid != pe->pid) {
		pr_err("core-%u.img: bad thread list (%zu threads)", pe->pid, p->core->n_threads);
		return -EINVAL;
	}
	return 0;
}

static void free_proc(struct rst_proc *p)
{
	if (p->core)
		protobuf_c_message_free_unpacked(&p->core->base, NULL);
	if (p->mm)
		protobuf_c_message_free_unpacked(&p->mm->base, NULL);
	if (p->files)
		protobuf_c_message_free_unpacked(&p->files->base, NULL);
	free(p->region);
}

static int load_pstree(int dirfd, PstreeEntry **root)
{
	struct img_reader r;
	size_t len;
	void *data;
	PstreeEntry *extra = NULL;
	int ret;

	ret = img_load_file(dirfd, "pstree.img", &data, &len);
	if (ret) {
		pr_err("pstree.img: %s (is this the final round?)", strerror(-ret));
		return ret;
	}
	ret = img_reader_init(&r, "pstree.img", data, len);
	if (!ret)
		ret = img_read_msg(&r, &pstree_entry__descriptor, (void **)root);
	if (ret == 1)
		ret = img_read_msg(&r, &pstree_entry__descriptor, (void **)&extra);
	if (ret == 1) {
		pr_err("pstree.img holds a process tree: only one process is restored yet");
		protobuf_c_message_free_unpacked(&extra->base, NULL);
		ret = -EOPNOTSUPP;
	} else if (ret == 0 && !*root) {
		pr_err("pstree.img is empty");
		ret = -EINVAL;
	}
	free(data);
	return ret < 0 ? ret : 0;
}

static int check_inventory(int dirfd)
{
	InventoryEntry *inv;
	int ret;

	ret = img_load_one(dirfd, "inventory.img", &inventory_entry__descriptor, (void **)&inv);
	if (ret)
		return ret;
	if (!inv->final) {
		pr_err("round %u is a pre-copy round: only a final round can be restored", inv->round);
		ret = -EINVAL;
	} else if (inv->page_size != PAGE_SIZE) {
		pr_err("images of page size %u", inv->page_size);
		ret = -EINVAL;
	}
	protobuf_c_message_free_unpacked(&inv->base, NULL);
	return ret;
}

/* ---- in the child ---- */

static void child_fail(int err_fd, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void child_fail(int err_fd, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (write(err_fd, buf, n > 0 ? n : 0) < 0)
		_exit(2);
	_exit(1);
}

static void child_setup_task(struct rst_proc *p, int err_fd)
{
	const ProcCore *c = p->core;
	size_t i;

	if (setsid() < 0)
		child_fail(err_fd, "setsid: %m");
	umask(c->umask);
	if (strcmp(c->root, "/") && chroot(c->root))
		child_fail(err_fd, "chroot %s: %m", c->root);
	if (chdir(c->cwd))
		child_fail(err_fd, "working directory %s: %m", c->cwd);
	for (i = 0; i < c->n_rlimits && i < RLIM_NLIMITS; i++) {
		struct rlimit rl = { c->rlimits[i]->cur, c->rlimits[i]->max };

		if (setrlimit(i, &rl))
			child_fail(err_fd, "setrlimit %zu: %m", i);
	}
	if (personality(c->personality) < 0)
		child_fail(err_fd, "personality %#x: %m", c->personality);
}

static void __attribute__((noreturn))
child_main(struct rst_proc *p, int sync_fd, int err_fd, int dirfd)
{
	sigset_t all;
	void *m;
	char c;

	if (read(sync_fd, &c, 1) != 1)
		_exit(1);	/* the tracer is gone */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	child_setup_task(p, err_fd);
	/* everything below our working fds belongs to the process */
	syscall(__NR_close_range, 0, p->work_fd_base - 1, 0);
	if (rst_open_fds(p, dirfd))
		child_fail(err_fd, "cannot restore the file descriptors");
	m = mmap((void *)p->region_addr, p->region_len, PROT_READ | PROT_WRITE | PROT_EXEC,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (m != (void *)p->region_addr)
		child_fail(err_fd, "cannot map the restorer at %#llx: %m",
			   (unsigned long long)p->region_addr);
	memcpy(m, p->region, p->region_len);
	__asm__ volatile("mov %0, %%rsp\n\t"
			 "mov %1, %%rdi\n\t"
			 "jmp *%2"
			 :: "r"(p->stack_top), "r"(p->args_addr),
			    "r"(p->region_addr + RESTORER_MAIN_OFF)
			 : "memory");
	__builtin_unreachable();
}

/* ---- the tracer ---- */

static int wait_child(pid_t pid, int *status)
{
	while (waitpid(pid, status, __WALL) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

static int child_died(pid_t pid, int status, int err_fd)
{
	char buf[256] = "";
	ssize_t n = read(err_fd, buf, sizeof(buf) - 1);

	if (n > 0)
		buf[n] = 0;
	if (WIFEXITED(status))
		pr_err("restore of pid %d failed: %s", pid, *buf ? buf : "child exited");
	else if (WIFSIGNALED(status))
		pr_err("restore of pid %d failed: killed by signal %d", pid, WTERMSIG(status));
	return -ECHILD;
}

static int read_remote(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec l = { buf, len }, r = { (void *)addr, len };

	return process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)len ? 0 : -errno;
}

static int unexpected_stop(pid_t tid, int status)
{
	struct user_regs_struct regs;

	ptrace(PTRACE_GETREGS, tid, NULL, &regs);
	pr_err("restorer of tid %d stopped by signal %d at %#llx", tid, WSTOPSIG(status),
	       (unsigned long long)regs.rip);
	return -EFAULT;
}

static int thread_index(const struct rst_proc *p, pid_t tid)
{
	size_t i;

	for (i = 0; i < p->core->n_threads; i++)
		if ((pid_t)p->threads[i].tid == tid)
			return i;
	return -1;
}

/*
 * Run every thread of the new process up to its int3 (the blob's verdict):
 * new threads are traced from birth (PTRACE_O_TRACECLONE) and let go on.
 */
static int wait_threads_ready(pid_t pid, struct rst_proc *p, int err_fd)
{
	size_t ready = 0, n = p->core->n_threads;
	int status, idx;
	pid_t w;

	while (ready < n) {
		w = waitpid(-1, &status, __WALL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		idx = w == pid ? 0 : thread_index(p, w);
		if (idx < 0)
			continue;	/* not ours (the init of a new PID namespace) */
		if (!WIFSTOPPED(status))
			return w == pid ? child_died(pid, status, err_fd) : -ECHILD;
		if (status >> 16 == PTRACE_EVENT_CLONE || status >> 16 == PTRACE_EVENT_STOP) {
			if (ptrace(PTRACE_CONT, w, NULL, NULL))
				return -errno;
			continue;
		}
		if (WSTOPSIG(status) != SIGTRAP)
			return unexpected_stop(w, status);
		ready++;
		/* a failed leader does not clone the others: stop waiting for them */
		if (!idx) {
			int32_t st;

			if (read_remote(pid, p->args_addr + offsetof(struct rst_args, status), &st,
					sizeof(st)))
				return -EIO;
			if (st == RST_FAILED)
				break;
		}
	}
	return 0;
}

static int check_verdict(pid_t pid, struct rst_proc *p)
{
	struct rst_args a;
	size_t i;
	int ret;

	ret = read_remote(pid, p->args_addr, &a, sizeof(a));
	if (!ret)
		ret = read_remote(pid, a.threads, p->threads, a.nr_threads * sizeof(*p->threads));
	if (ret)
		return ret;
	if (a.status != RST_FAILED)
		for (i = 0; i < a.nr_threads; i++)
			if (p->threads[i].status != RST_READY)
				a.status = RST_FAILED;
	if (a.status == RST_FAILED) {
		pr_err("restorer of pid %d failed at %s (%#llx): %s", pid, a.err_step,
		       (unsigned long long)a.err_addr, strerror(-a.err));
		return -EIO;
	}
	return 0;
}

/* Let one thread run its rt_sigreturn: stop at the syscall's exit. */
static int step_sigreturn(pid_t tid)
{
	int status, i, err;

	for (i = 0; i < 2; i++) {	/* syscall entry, then exit */
		if (ptrace(PTRACE_SYSCALL, tid, NULL, NULL))
			return -errno;
		err = wait_child(tid, &status);
		if (err)
			return err;
		if (!WIFSTOPPED(status))
			return -ECHILD;
		if (WSTOPSIG(status) != (SIGTRAP | 0x80))
			return unexpected_stop(tid, status);
	}
	return 0;
}

/* Every thread is out of the blob: take it away from the outside, through the leader. */
static int unmap_blob(pid_t pid, struct rst_proc *p)
{
	struct user_regs_struct regs;
	uint64_t insn;
	long ret;
	int err;

	if (ptrace(PTRACE_GETREGS, pid, NULL, &regs))
		return -errno;
	insn = find_syscall_insn(pid);
	if (!insn) {
		pr_err("pid %d: no syscall instruction in its vdso", pid);
		return -ENOENT;
	}
	err = tracee_syscall(pid, insn, __NR_munmap, &ret, p->region_addr, p->region_len, 0, 0, 0, 0);
	if (!err && ret)
		err = ret;
	if (err) {
		pr_err("pid %d: cannot unmap the restorer: %s", pid, strerror(-err));
		return err;
	}
	if (ptrace(PTRACE_SETREGS, pid, NULL, &regs))
		return -errno;
	return 0;
}

static int trace_child(pid_t pid, struct rst_proc *p, int sync_fd, int err_fd)
{
	size_t i;
	int ret;

	if (ptrace(PTRACE_SEIZE, pid, NULL, PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE))
		return -errno;
	if (write(sync_fd, "g", 1) != 1)
		return -errno;
	ret = wait_threads_ready(pid, p, err_fd);
	if (!ret)
		ret = check_verdict(pid, p);
	for (i = 0; !ret && i < p->core->n_threads; i++)
		ret = step_sigreturn(p->threads[i].tid);
	if (!ret)
		ret = unmap_blob(pid, p);
	return ret;
}

static void detach_threads(const struct rst_proc *p)
{
	size_t i;

	for (i = 0; i < p->core->n_threads; i++)
		ptrace(PTRACE_DETACH, p->threads[i].tid, NULL, NULL);
}

static pid_t clone_with_pid(pid_t pid)
{
	struct ferry_clone_args ca = {
		.exit_signal = SIGCHLD,
		.set_tid = (uint64_t)&pid,
		.set_tid_size = 1,
	};

	return syscall(__NR_clone3, &ca, sizeof(ca));
}

/* An init for a fresh PID namespace: reaps, and ends with its last child. */
static int enter_new_pidns(void)
{
	struct ferry_clone_args ca = { .flags = CLONE_NEWPID, .exit_signal = SIGCHLD };
	char path[64];
	int sync[2], fd;
	pid_t init;

	if (pipe2(sync, O_CLOEXEC))
		return -errno;
	init = syscall(__NR_clone3, &ca, sizeof(ca));
	if (init < 0)
		return -errno;
	if (init == 0) {
		char c;

		close(sync[1]);
		/* first wait until the restored process is our child's... grandchild: reparented */
		if (read(sync[0], &c, 1) < 0)
			_exit(1);
		while (wait(NULL) > 0 || errno == EINTR)
			;
		_exit(0);
	}
	close(sync[0]);
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", init);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWPID)) {
		pr_perror("cannot enter the new PID namespace");
		return -errno;
	}
	close(fd);
	return sync[1];	/* closed when we exit: the init then starts reaping */
}

static int max_fd(const FilesEntry *fe)
{
	size_t i;
	int m = 2;

	for (i = 0; i < fe->n_fds; i++)
		if ((int)fe->fds[i]->fd > m)
			m = fe->fds[i]->fd;
	return m;
}

static int restore_one(struct rst_proc *p, int dirfd, struct stack_view *sv, bool pidns)
{
	int sync[2] = { -1, -1 }, err[2] = { -1, -1 }, ret, status;
	pid_t pid = p->pe->pid, child;

	p->work_fd_base = max_fd(p->files) + 1 > 64 ? max_fd(p->files) + 1 : 64;
	ret = rst_check_files(p);
	if (ret)
		return ret;
	ret = rst_build_region(p, sv);
	if (ret)
		return ret;
	if (pipe2(sync, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
		ret = -errno;
		goto out;
	}
	dirfd = rst_work_fd(p, dup(dirfd));
	sync[0] = rst_work_fd(p, sync[0]);
	err[1] = rst_work_fd(p, err[1]);
	if (dirfd < 0 || sync[0] < 0 || err[1] < 0) {
		ret = -EMFILE;
		goto out;
	}
	/* the restorer closes these in the end */
	p->args->nr_close = p->nr_work_fds;
	memcpy(p->args->close_fd, p->work_fds, p->nr_work_fds * sizeof(int));
	if (pidns) {
		ret = enter_new_pidns();
		if (ret < 0)
			goto out;
	}
	child = clone_with_pid(pid);
	if (child < 0) {
		ret = -errno;
		pr_err("cannot create pid %d: %s%s", pid, strerror(errno),
		       errno == EEXIST ? " (that PID is taken here)" : "");
		goto out;
	}
	if (child == 0)
		child_main(p, sync[0], err[1], dirfd);
	close(err[1]);
	err[1] = -1;
	ret = trace_child(child, p, sync[1], err[0]);
	if (ret) {
		kill(child, SIGKILL);
		waitpid(child, &status, __WALL);
		goto out;
	}
	detach_threads(p);
	pr_info("pid %d restored (%zu threads)", pid, p->core->n_threads);
out:
	close(sync[1]);
	close(err[0]);
	return ret;
}

int restore_run(const struct restore_opts *o)
{
	struct stack_view sv = { 0 };
	PstreeEntry *root = NULL;
	struct rst_proc p = { 0 };
	uint64_t t0 = now_us();
	int dirfd, ret;

	dirfd = open(o->images_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		pr_perror("cannot open %s", o->images_dir);
		return -errno;
	}
	ret = check_inventory(dirfd);
	if (!ret)
		ret = load_pstree(dirfd, &root);
	if (!ret)
		ret = load_proc(dirfd, root, &p);
	if (!ret && (p.core->creds->uid || p.core->creds->euid)) {
		pr_err("pid %u runs as uid %u: only root processes are restored yet", root->pid,
		       p.core->creds->uid);
		ret = -EOPNOTSUPP;
	}
	if (!ret)
		ret = stack_view_open(o->images_dir, &sv);
	if (!ret)
		ret = rst_probe_xstate();
	if (!ret)
		ret = restore_one(&p, dirfd, &sv, o->pidns);
	if (!ret)
		printf("restored pid %u in %.1f ms\n", root->pid, (now_us() - t0) / 1e3);
	free_proc(&p);
	if (root)
		protobuf_c_message_free_unpacked(&root->base, NULL);
	if (sv.top_dir)
		stack_view_close(&sv);
	close(dirfd);
	return ret;
}
