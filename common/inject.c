// SPDX-License-Identifier: MIT
/*
 * Making a stopped task do things (see inject.h): syscalls run through a
 * `syscall` instruction of its own ([vdso]'s, else another executable
 * mapping's), its memory read and written from
 * outside, signals held back and queued again.
 *
 * Signals the task gets while we step it through injected syscalls are
 * suppressed at their delivery stop, kept here, and queued to the task
 * again when it is resumed or detached (common/ptrace.c), so none is lost
 * and none runs a handler on borrowed registers.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/inject.h"
#include "common/log.h"
#include "common/ptrace.h"

#define RED_ZONE		128

/* ---- remote memory ---- */

static int vm_rw(pid_t pid, uint64_t addr, void *buf, size_t len, bool write)
{
	struct iovec l = { .iov_base = buf, .iov_len = len };
	struct iovec r = { .iov_base = (void *)addr, .iov_len = len };
	ssize_t n;

	if (write)
		n = process_vm_writev(pid, &l, 1, &r, 1, 0);
	else
		n = process_vm_readv(pid, &l, 1, &r, 1, 0);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

int tracee_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	return vm_rw(pid, addr, buf, len, false);
}

int tracee_write(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	return vm_rw(pid, addr, (void *)buf, len, true);
}

/* ---- held signals ---- */

/* What tracee_syscall held back, per task, until resume or detach. */
static struct held_sigs stash;

int held_sigs_add(struct held_sigs *h, pid_t tid, const siginfo_t *si)
{
	struct held_sig *v;

	v = realloc(h->v, (h->nr + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	h->v = v;
	h->v[h->nr].tid = tid;
	h->v[h->nr].si = *si;
	h->nr++;
	return 0;
}

size_t held_sigs_take(struct held_sigs *h, pid_t tid, siginfo_t **out)
{
	siginfo_t *v;
	size_t i, j, n = 0, k = 0;

	for (i = 0; i < h->nr; i++)
		n += h->v[i].tid == tid;
	*out = NULL;
	if (!n)
		return 0;
	v = malloc(n * sizeof(*v));
	if (!v)
		return 0;
	for (i = 0; i < h->nr; i++)
		if (h->v[i].tid == tid && h->v[i].si.si_signo != SIGSTOP)
			v[k++] = h->v[i].si;
	for (i = 0; i < h->nr; i++)
		if (h->v[i].tid == tid && h->v[i].si.si_signo == SIGSTOP)
			v[k++] = h->v[i].si;
	for (i = 0, j = 0; i < h->nr; i++)
		if (h->v[i].tid != tid)
			h->v[j++] = h->v[i];
	h->nr = j;
	*out = v;
	return n;
}

void held_sigs_free(struct held_sigs *h)
{
	free(h->v);
	h->v = NULL;
	h->nr = 0;
}

int inject_hold_signal(pid_t tid, int sig)
{
	siginfo_t si;
	int ret;

	if (ptrace(PTRACE_GETSIGINFO, tid, NULL, &si)) {
		if (errno == ESRCH)
			return -ESRCH;
		memset(&si, 0, sizeof(si));
		si.si_signo = sig;
		si.si_code = SI_TKILL;
	}
	ret = held_sigs_add(&stash, tid, &si);
	if (!ret)
		pr_info("tid %d: signal %d held back while ferry works, queued again on resume",
			tid, sig);
	return ret;
}

/* ---- queuing signals again ---- */

/* rt_tgsigqueueinfo from inside; *done: how many were queued. */
static int queue_inside(pid_t tid, uint64_t insn, const siginfo_t *si, size_t n,
			uint64_t scratch, size_t *done)
{
	long tgid, ntid, r;
	size_t i;
	int ret;

	*done = 0;
	ret = tracee_syscall(tid, insn, __NR_getpid, &tgid, 0, 0, 0, 0, 0, 0);
	if (!ret)
		ret = tracee_syscall(tid, insn, __NR_gettid, &ntid, 0, 0, 0, 0, 0, 0);
	for (i = 0; !ret && i < n; i++) {
		ret = tracee_write(tid, scratch, &si[i], sizeof(si[i]));
		if (ret)
			break;
		ret = tracee_syscall(tid, insn, __NR_rt_tgsigqueueinfo, &r, tgid, ntid,
				     si[i].si_signo, scratch, 0, 0);
		if (!ret && r < 0)
			ret = r;
		if (!ret)
			(*done)++;
	}
	return ret;
}

/* The plain way: tkill, siginfo lost. */
static void resend(pid_t tid, const siginfo_t *si, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		syscall(SYS_tkill, tid, si[i].si_signo);
}

static void warn_resend(pid_t tid, size_t n, int err)
{
	pr_warn("tid %d: can't queue %zu held-back signals with their siginfo (%s), resending",
		tid, n, strerror(-err));
}

/*
 * The task sends each signal to itself with rt_tgsigqueueinfo, which keeps
 * the original siginfo (only a task may queue kernel-style siginfo to
 * itself). All signals are blocked meanwhile so a queued one is not
 * delivered under an injected syscall; SIGSTOP, which cannot be blocked,
 * comes last (held_sigs_take).
 */
int tracee_requeue(pid_t tid, uint64_t insn, const siginfo_t *si, size_t n, uint64_t scratch)
{
	size_t done = 0;
	int ret;

	if (!n)
		return 0;
	ret = tracee_set_sigmask(tid, ~0ULL);
	if (!ret)
		ret = queue_inside(tid, insn, si, n, scratch, &done);
	if (ret == -ESRCH)
		return ret;
	if (ret) {
		warn_resend(tid, n - done, ret);
		resend(tid, si + done, n - done);
	}
	return 0;
}

/*
 * tracee_requeue with the task's registers and mask kept, the siginfo
 * written below the red zone of its stack (memory the task does not use).
 * *queued: the signals were dealt with (queued or resent).
 */
static int requeue_injected(pid_t tid, const siginfo_t *si, size_t n, bool *queued)
{
	struct user_regs_struct saved;
	uint64_t mask, insn, addr;
	int ret, err;

	*queued = false;
	if (ptrace(PTRACE_GETREGS, tid, NULL, &saved))
		return -errno;
	ret = tracee_get_sigmask(tid, &mask);
	if (ret)
		return ret;
	insn = find_syscall_insn(tid);
	if (!insn)
		return -ENOENT;
	/* Past any seccomp filter (needs CAP_SYS_ADMIN; else the filter decides). */
	tracee_suspend_seccomp(tid, true);
	addr = (saved.rsp - RED_ZONE - sizeof(siginfo_t)) & ~63ULL;
	ret = tracee_requeue(tid, insn, si, n, addr);
	*queued = true;
	/* Registers as they were, but never back inside a syscall. */
	regs_fixup_restart(&saved, true);
	if (ptrace(PTRACE_SETREGS, tid, NULL, &saved) && !ret)
		ret = -errno;
	tracee_suspend_seccomp(tid, false);
	err = tracee_set_sigmask(tid, mask);
	return ret ?: err;
}

/* Queue again what was held back; tkill (siginfo lost) if injection fails. */
int inject_requeue_held(pid_t tid)
{
	siginfo_t *si, *late;
	size_t n, nl;
	bool queued;
	int ret;

	n = held_sigs_take(&stash, tid, &si);
	if (!n)
		return 0;
	ret = requeue_injected(tid, si, n, &queued);
	/* Anything stopped meanwhile (an external SIGSTOP) goes the plain way. */
	nl = held_sigs_take(&stash, tid, &late);
	if (ret == -ESRCH)
		goto out;
	if (!queued) {
		warn_resend(tid, n, ret);
		resend(tid, si, n);
	}
	resend(tid, late, nl);
	ret = 0;
out:
	free(si);
	free(late);
	return ret;
}

/* ---- injected syscalls ---- */

/*
 * The next line of a /proc/PID/maps into @line, cut at @len: the rest of a
 * longer one (a long path, which the process chose) is skipped, not taken
 * for a line of its own.
 */
static char *maps_gets(char *line, int len, FILE *f)
{
	size_t n;
	int c;

	if (!fgets(line, len, f))
		return NULL;
	n = strlen(line);
	if (n && line[n - 1] != '\n')
		while ((c = getc(f)) != EOF && c != '\n')
			;
	return line;
}

int tracee_find_vma(pid_t pid, const char *name, uint64_t addr, uint64_t *start, uint64_t *end)
{
	char path[64], line[512];
	int ret = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (ret && maps_gets(line, sizeof(line), f)) {
		if (name && !strstr(line, name))
			continue;
		if (sscanf(line, "%" SCNx64 "-%" SCNx64, start, end) == 2 &&
		    (name || (addr >= *start && addr < *end)))
			ret = 0;
		if (name)
			break;	/* the first line naming it */
	}
	fclose(f);
	return ret;
}

/*
 * The first `syscall` (bytes 0f 05: they decode so when jumped to, wherever
 * they are) in [@start, @end) of @pid, read through /proc/PID/mem in
 * chunks; 0 if none.
 */
static uint64_t scan_syscall_insn(int mem_fd, uint64_t start, uint64_t end)
{
	unsigned char buf[65536];
	uint64_t at;
	ssize_t n, i;

	for (at = start; at + 1 < end; at += n - 1) {
		size_t want = end - at < sizeof(buf) ? end - at : sizeof(buf);

		n = pread(mem_fd, buf, want, at);
		if (n < 2)
			return 0;
		for (i = 0; i < n - 1; i++)
			if (buf[i] == 0x0f && buf[i + 1] == 0x05)
				return at + i;
	}
	return 0;
}

/*
 * Where to look, best first: [vdso] (the kernel's, in every process that
 * kept it), then an executable mapping of a file (libc, the program), then
 * any executable mapping. Nothing is written into the task: a process
 * without a vdso (unmapped, or a kernel booted with vdso=0) still has the
 * bytes of `syscall` somewhere it may execute.
 */
static bool insn_vma_pass(const char *line, int pass)
{
	char perms[5] = "", path[16] = "";

	/* "start-end perms offset dev inode [path]" */

	if (sscanf(line, "%*x-%*x %4s %*x %*s %*u %15s", perms, path) < 1 || perms[2] != 'x')
		return false;
	switch (pass) {
	case 0:
		return !strcmp(path, "[vdso]");
	case 1:
		return path[0] == '/';
	default:	/* not [vsyscall]: executing there traps to an emulation */
		return strcmp(path, "[vdso]") && strcmp(path, "[vsyscall]") && path[0] != '/';
	}
}

uint64_t find_syscall_insn(pid_t pid)
{
	char path[64], line[512];
	uint64_t insn = 0;
	int fd, pass;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	for (pass = 0; fd >= 0 && f && !insn && pass < 3; pass++) {
		rewind(f);
		while (!insn && maps_gets(line, sizeof(line), f)) {
			unsigned long long start, end;

			if (insn_vma_pass(line, pass) &&
			    sscanf(line, "%llx-%llx", &start, &end) == 2 && start < end)
				insn = scan_syscall_insn(fd, start, end);
		}
		if (insn && pass)
			pr_debug("pid %d: no syscall instruction in a [vdso]: using the one at "
				 "%#" PRIx64, pid, insn);
	}
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	if (!insn)
		pr_err("pid %d: no syscall instruction in any executable mapping", pid);
	return insn;
}

/* A syscall stop ends the wait; signals met are held back. */
static int syscall_stop_fn(pid_t tid, int status, void *arg)
{
	int ret;

	(void)arg;
	if (WSTOPSIG(status) == SYSCALL_STOP && !stop_event(status))
		return 1;
	if (is_signal_stop(status)) {	/* else: group stop, stray interrupt: go on */
		ret = inject_hold_signal(tid, WSTOPSIG(status));
		if (ret)
			return ret;
	}
	if (ptrace(PTRACE_SYSCALL, tid, NULL, NULL))
		return -errno;
	return 0;
}

/* PTRACE_SYSCALL until the next syscall stop. */
static int syscall_stop(pid_t tid)
{
	if (ptrace(PTRACE_SYSCALL, tid, NULL, NULL))
		return -errno;
	return tracee_wait_for(tid, syscall_stop_fn, NULL, "syscall stop");
}

int tracee_syscall(pid_t tid, uint64_t insn, long nr, long *ret,
		   long a1, long a2, long a3, long a4, long a5, long a6)
{
	struct user_regs_struct r;
	int err;

	if (ptrace(PTRACE_GETREGS, tid, NULL, &r))
		return -errno;
	r.rip = insn;
	r.rax = nr;
	r.orig_rax = -1;	/* not in a syscall: the kernel must not restart one */
	r.rdi = a1;
	r.rsi = a2;
	r.rdx = a3;
	r.r10 = a4;
	r.r8 = a5;
	r.r9 = a6;
	r.eflags &= ~EFLAGS_TF;
	if (ptrace(PTRACE_SETREGS, tid, NULL, &r))
		return -errno;
	err = syscall_stop(tid);	/* entry */
	if (!err)
		err = syscall_stop(tid);	/* exit */
	if (err)
		return err;
	if (ptrace(PTRACE_GETREGS, tid, NULL, &r))
		return -errno;
	if (r.rip != insn + 2) {
		pr_err("tid %d: injected syscall %ld stopped at 0x%llx, not 0x%" PRIx64,
		       tid, nr, r.rip, insn + 2);
		return -EIO;
	}
	*ret = r.rax;
	pr_debug("tid %d: injected syscall %ld = %ld", tid, nr, *ret);
	return 0;
}
