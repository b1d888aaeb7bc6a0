// SPDX-License-Identifier: MIT
/*
 * infect-test: seize a process, infect it with the parasite, print what the
 * parasite reports (and each thread's altstack and clear_tid), prove a userfaultfd made in the target acts on its
 * memory, cure, detach. Fails if /proc/PID/maps or the fd list differ
 * before and after.
 *
 *	infect-test [-v] [-n ROUNDS] [-s CALLS] [-k trap|stop|kill|die] [-r MS [-D]] [-U] PID
 *
 * -v prints timings (injected syscall; infect, one command, cure), -n runs
 * ROUNDS timed infect/command/cure cycles, -s times CALLS injected
 * syscalls, -k sends the target a signal while the parasite is in (to
 * check it is delivered after detach; "die" makes infect-test itself exit
 * there instead), -r lets the cured target run MS
 * milliseconds while still traced (PTRACE_CONT, as migrate does between
 * rounds) before stopping and detaching it (-D: detaching it as it runs,
 * tracee_detach stops it), -U skips the userfaultfd part.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/inject.h"
#include "common/log.h"
#include "common/ptrace.h"
#include "source-agent/parasite.h"

#define MAX_TIDS	256
#define TRAP_VALUE	0x4654	/* si_value of the -k trap signal */

struct opts {
	pid_t pid;
	int rounds;
	int calls;
	int run_ms;
	const char *kick;
	bool no_uffd;
	bool detach_running;
	bool verbose;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static char *read_file(const char *path)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap + 1), *p;
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f || !buf)
		goto fail;
	while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len < cap)
			continue;
		cap *= 2;
		p = realloc(buf, cap + 1);
		if (!p)
			goto fail;
		buf = p;
	}
	fclose(f);
	buf[len] = 0;
	return buf;
fail:
	if (f)
		fclose(f);
	free(buf);
	return NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "fd -> target" lines, sorted, as one string. */
static char *fd_list(pid_t pid)
{
	char dir[64], path[320], target[256], *lines[4096], *out;
	size_t n = 0, i, len = 1;
	struct dirent *de;
	ssize_t k;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
	d = opendir(dir);
	if (!d)
		return NULL;
	while ((de = readdir(d)) && n < 4096) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		k = readlink(path, target, sizeof(target) - 1);
		target[k < 0 ? 0 : k] = 0;
		if (asprintf(&lines[n], "%s -> %s\n", de->d_name, target) < 0)
			break;
		len += strlen(lines[n++]);
	}
	closedir(d);
	qsort(lines, n, sizeof(lines[0]), cmp_str);
	out = malloc(len);
	if (out)
		out[0] = 0;
	for (i = 0; i < n; i++) {
		if (out)
			strcat(out, lines[i]);
		free(lines[i]);
	}
	return out;
}

static int list_tids(pid_t pid, pid_t *tids)
{
	char path[64];
	struct dirent *de;
	int n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)) && n < MAX_TIDS)
		if (de->d_name[0] != '.')
			tids[n++] = atoi(de->d_name);
	closedir(d);
	return n;
}

/* Injected getpid, @calls times: the raw cost of one injected syscall. */
static int time_injection(pid_t pid, int calls)
{
	struct tracee t = { .tid = pid };
	uint64_t insn, t0, t1;
	long r = 0;
	int i, ret;

	ret = tracee_save(&t);
	if (ret)
		return ret;
	insn = find_syscall_insn(pid);
	ret = insn ? 0 : -ENOENT;
	t0 = now_ns();
	for (i = 0; !ret && i < calls; i++)
		ret = tracee_syscall(pid, insn, __NR_getpid, &r, 0, 0, 0, 0, 0, 0);
	t1 = now_ns();
	if (!ret && calls && r != pid) {
		fprintf(stderr, "injected getpid returned %ld, not %d\n", r, pid);
		ret = -EIO;
	}
	if (tracee_restore(&t) && !ret)
		ret = -EIO;
	tracee_free(&t);
	if (!ret && calls)
		printf("timing: injected syscall %.1f us (avg of %d)\n",
		       (t1 - t0) / 1000.0 / calls, calls);
	return ret;
}

static int time_cycles(pid_t pid, int rounds)
{
	uint64_t t0, t1, t2, t3, inf = 0, cmd = 0, cure = 0;
	struct parasite_ctl *ctl;
	uint64_t brk;
	int i, ret = 0;

	for (i = 0; !ret && i < rounds; i++) {
		t0 = now_ns();
		ret = parasite_infect(pid, &ctl);
		if (ret)
			break;
		t1 = now_ns();
		ret = parasite_get_brk(ctl, &brk);
		t2 = now_ns();
		if (parasite_cure(ctl) && !ret)
			ret = -EIO;
		t3 = now_ns();
		inf += t1 - t0;
		cmd += t2 - t1;
		cure += t3 - t2;
	}
	if (!ret && rounds)
		printf("timing: infect %.1f us, command %.1f us, cure %.1f us, total %.1f us (avg of %d)\n",
		       inf / 1000.0 / rounds, cmd / 1000.0 / rounds, cure / 1000.0 / rounds,
		       (inf + cmd + cure) / 1000.0 / rounds, rounds);
	return ret;
}

static int print_state(struct parasite_ctl *ctl)
{
	struct prs_sigaction sa[PRS_NSIG];
	struct itimerval it[3];
	uint64_t brk;
	stack_t ss;
	int i, ret;

	ret = parasite_get_sigactions(ctl, sa);
	if (ret)
		return ret;
	for (i = 0; i < PRS_NSIG; i++)
		if (sa[i].handler)
			printf("sigaction %d handler=0x%" PRIx64 " flags=0x%" PRIx64
			       " restorer=0x%" PRIx64 " mask=0x%" PRIx64 "\n", i + 1,
			       sa[i].handler, sa[i].flags, sa[i].restorer, sa[i].mask);
	ret = parasite_get_itimers(ctl, it);
	if (ret)
		return ret;
	for (i = 0; i < 3; i++)
		printf("itimer %d interval=%ld.%06ld value=%ld.%06ld\n", i,
		       it[i].it_interval.tv_sec, it[i].it_interval.tv_usec,
		       it[i].it_value.tv_sec, it[i].it_value.tv_usec);
	ret = parasite_get_sigaltstack(ctl, &ss);
	if (ret)
		return ret;
	printf("altstack sp=%p size=%zu flags=0x%x\n", ss.ss_sp, ss.ss_size, ss.ss_flags);
	ret = parasite_get_brk(ctl, &brk);
	if (ret)
		return ret;
	printf("brk 0x%" PRIx64 "\n", brk);
	return 0;
}

/* Pages PAGEMAP_SCAN reports written in [start, end). */
static long written_pages(int pagemap, uint64_t start, uint64_t end)
{
	struct page_region regs[32];
	struct pm_scan_arg arg = {
		.size = sizeof(arg), .start = start, .end = end,
		.vec = (uint64_t)regs, .vec_len = 32,
		.category_mask = PAGE_IS_WRITTEN, .return_mask = PAGE_IS_WRITTEN,
	};
	long n, i, pages = 0;

	n = ioctl(pagemap, PAGEMAP_SCAN, &arg);
	if (n < 0)
		return -errno;
	for (i = 0; i < n; i++)
		pages += (regs[i].end - regs[i].start) / 4096;
	return pages;
}

/*
 * The uffd is the target's: write-protect its stack VMA through it, rewrite
 * one word there unchanged (a kernel-side write), and PAGEMAP_SCAN must
 * see exactly that page written.
 */
static int prove_uffd(pid_t pid, int uffd, uint64_t sp)
{
	struct uffdio_register reg = { .mode = UFFDIO_REGISTER_MODE_WP };
	struct uffdio_writeprotect wp = { .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	uint64_t start, end, word;
	long before, after;
	char path[64];
	int pagemap, ret;

	ret = tracee_find_vma(pid, NULL, sp, &start, &end);
	if (ret)
		return ret;
	reg.range.start = wp.range.start = start;
	reg.range.len = wp.range.len = end - start;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) || ioctl(uffd, UFFDIO_WRITEPROTECT, &wp))
		return -errno;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	pagemap = open(path, O_RDONLY | O_CLOEXEC);
	if (pagemap < 0)
		return -errno;
	before = written_pages(pagemap, start, end);
	ret = tracee_read(pid, sp, &word, sizeof(word));
	if (!ret)
		ret = tracee_write(pid, sp, &word, sizeof(word));
	after = written_pages(pagemap, start, end);
	close(pagemap);
	if (ret)
		return ret;
	printf("uffd-wp stack %" PRIx64 "-%" PRIx64 " written before=%ld after=%ld\n", start, end,
	       before, after);
	if (before != 0 || after != 1)
		return -EIO;
	return 0;
}

static int do_uffd(struct parasite_ctl *ctl, pid_t pid, uint64_t sp)
{
	uint64_t want = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED, got = 0;
	int fd, ret;

	ret = parasite_create_uffd(ctl, want, &got, &fd);
	if (ret)
		return ret;
	printf("uffd features=0x%" PRIx64 "\n", got);
	ret = prove_uffd(pid, fd, sp);
	close(fd);
	return ret;
}

/* -k: a signal arrives while the parasite is in; it must survive. */
static int kick(pid_t pid, const char *what)
{
	union sigval v = { .sival_int = TRAP_VALUE };

	if (!strcmp(what, "trap"))
		return sigqueue(pid, SIGTRAP, v) ? -errno : 0;
	if (!strcmp(what, "stop"))
		return kill(pid, SIGSTOP) ? -errno : 0;
	if (!strcmp(what, "kill"))
		return kill(pid, SIGKILL) ? -errno : 0;
	if (!strcmp(what, "die"))
		_exit(3);	/* the tracer dies with the parasite in */
	return -EINVAL;
}

/* Per-thread state, asked of each thread by injected syscalls. */
static int print_threads(struct parasite_ctl *ctl, const pid_t *tids, int n)
{
	struct prs_thread_info ti;
	int i, ret;

	for (i = 0; i < n; i++) {
		ret = parasite_thread_info(ctl, tids[i], &ti);
		if (ret)
			return ret;
		printf("thread %d altstack sp=%p size=%zu flags=0x%x clear_tid=0x%" PRIx64 "\n",
		       tids[i], ti.ss.ss_sp, ti.ss.ss_size, ti.ss.ss_flags, ti.clear_tid);
	}
	return 0;
}

static int infect_and_report(const struct opts *o, const pid_t *tids, int n)
{
	struct parasite_ctl *ctl;
	struct user_regs_struct regs;
	uint64_t t0 = now_ns(), brk;
	int ret, cret;

	if (ptrace(PTRACE_GETREGS, o->pid, NULL, &regs))
		return -errno;
	ret = parasite_infect(o->pid, &ctl);
	if (ret)
		return ret;
	ret = print_state(ctl);
	if (!ret)
		ret = print_threads(ctl, tids, n);
	if (!ret && !o->no_uffd)
		ret = do_uffd(ctl, o->pid, regs.rsp);
	if (!ret && o->kick) {
		ret = kick(o->pid, o->kick);
		if (!ret)	/* one more command: the signal meets the parasite */
			ret = parasite_get_brk(ctl, &brk);
	}
	cret = parasite_cure(ctl);
	if (o->verbose)
		printf("timing: full report %.1f us\n", (now_ns() - t0) / 1000.0);
	return ret ?: cret;
}

/* Resume every thread, still traced, and stop them again after @ms. */
static int run_traced(const pid_t *tids, int n, int ms, bool stop)
{
	int i, ret = 0;

	for (i = 0; !ret && i < n; i++)
		ret = tracee_resume(tids[i]);
	usleep(ms * 1000);
	for (i = 0; !ret && stop && i < n; i++)
		ret = tracee_interrupt(tids[i]);
	return ret;
}

static int run(const struct opts *o)
{
	char *maps0 = NULL, *maps1 = NULL, *fds0 = NULL, *fds1 = NULL, path[64];
	pid_t tids[MAX_TIDS];
	int i, n, seized = 0, ret;

	n = list_tids(o->pid, tids);
	if (n < 0)
		return n;
	for (ret = 0; !ret && seized < n; seized++)
		ret = tracee_seize(tids[seized]);
	if (ret) {
		seized--;
		goto out;
	}
	snprintf(path, sizeof(path), "/proc/%d/maps", o->pid);
	maps0 = read_file(path);
	fds0 = fd_list(o->pid);
	if (o->verbose && !ret)
		ret = time_injection(o->pid, o->calls);
	if (o->verbose && !ret)
		ret = time_cycles(o->pid, o->rounds);
	if (!ret)
		ret = infect_and_report(o, tids, n);
	if (ret == -ESRCH)
		goto out;	/* nothing left to compare */
	maps1 = read_file(path);
	fds1 = fd_list(o->pid);
	if (!maps0 || !maps1 || strcmp(maps0, maps1)) {
		fprintf(stderr, "infect-test: /proc/%d/maps changed\n--- before\n%s--- after\n%s",
			o->pid, maps0 ?: "?\n", maps1 ?: "?\n");
		ret = ret ?: -EIO;
	} else {
		printf("maps unchanged\n");
	}
	if (!fds0 || !fds1 || strcmp(fds0, fds1)) {
		fprintf(stderr, "infect-test: fds of %d changed\n--- before\n%s--- after\n%s",
			o->pid, fds0 ?: "?\n", fds1 ?: "?\n");
		ret = ret ?: -EIO;
	} else {
		printf("fds unchanged\n");
	}
	if (o->run_ms)
		ret = ret ?: run_traced(tids, n, o->run_ms, !o->detach_running);
out:
	for (i = 0; i < seized; i++)
		if (tracee_detach(tids[i]) && !ret)
			ret = -EIO;
	free(maps0);
	free(maps1);
	free(fds0);
	free(fds1);
	return ret;
}

static void usage(void)
{
	fprintf(stderr, "usage: infect-test [-v] [-n ROUNDS] [-s CALLS] [-k trap|stop|kill|die] [-r MS [-D]] [-U] PID\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct opts o = { .rounds = 20, .calls = 200 };
	int c, v = 0, ret;

	while ((c = getopt(argc, argv, "vn:s:k:r:UD")) != -1) {
		switch (c) {
		case 'v':
			v++;
			break;
		case 'n':
			o.rounds = atoi(optarg);
			break;
		case 's':
			o.calls = atoi(optarg);
			break;
		case 'k':
			o.kick = optarg;
			break;
		case 'r':
			o.run_ms = atoi(optarg);
			break;
		case 'U':
			o.no_uffd = true;
			break;
		case 'D':
			o.detach_running = true;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	o.pid = atoi(argv[optind]);
	o.verbose = v > 0;
	log_init("infect-test", v > 1 ? v - 1 : 0, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	ret = run(&o);
	if (ret) {
		fprintf(stderr, "infect-test: failed: %s\n", strerror(-ret));
		return 1;
	}
	printf("ok\n");
	return 0;
}
