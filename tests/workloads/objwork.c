// SPDX-License-Identifier: MIT
/*
 * objwork: one piece of kernel state per mode, set up, remembered, and
 * checked from inside the process after a checkpoint/restore (or after a
 * refused one). See tests/e2e/t-objects.sh.
 *
 *	objwork MODE --out FILE --pidfile FILE --check FILE
 *
 * The mode sets up its object, then "ready" goes to --out and the pidfile
 * appears. Whenever the --check file exists, the state is verified, one line
 * "ok MODE" or "bad MODE: <what differs>" is written, and the check file is
 * removed (create it again to check again). A mode this kernel cannot set up
 * writes "skip MODE: <reason>" and exits 0. Scratch files are made beside
 * --out (FILE.f, FILE.d, ...). The System V modes sysv_sem and sysv_msg also
 * write "ipc sem|msg ID" before "ready" (the test removes the object while
 * the process is away, as a destination host would not have it).
 * Exit: 0 skip, 1 setup error, 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "wl.h"

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#define PR_GET_MEMORY_MERGE 68
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#if defined(__x86_64__)
#define OUR_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define OUR_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

static const char *base;	/* --out: scratch files are named after it */
static const char *check, *pidfile;	/* --check, --pidfile (a chroot mode re-bases them) */
static char why[512];		/* what differs / why a setup failed */
static long psz;

/* Fills why[] and returns 1: "return bad(...)" in setup and verify. */
static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return 1;
}

static void scratch(char *buf, size_t len, const char *suffix)
{
	snprintf(buf, len, "%s.%s", base, suffix);
}

/* A file of @size bytes, byte i = (i * 7 + seed) & 0xff; its fd (O_RDWR) or -1. */
static int make_file(const char *suffix, size_t size, int seed)
{
	char path[4096];
	unsigned char *b;
	size_t i;
	int fd;

	scratch(path, sizeof(path), suffix);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	b = malloc(size);
	if (!b)
		return -1;
	for (i = 0; i < size; i++)
		b[i] = (i * 7 + seed) & 0xff;
	if (write(fd, b, size) != (ssize_t)size) {
		free(b);
		close(fd);
		return -1;
	}
	free(b);
	return fd;
}

static int check_pattern(const unsigned char *p, size_t size, int seed, const char *what)
{
	size_t i;

	for (i = 0; i < size; i++)
		if (p[i] != ((i * 7 + seed) & 0xff))
			return bad("%s byte %zu is 0x%02x, expected 0x%02x", what, i, p[i],
				   (unsigned)((i * 7 + seed) & 0xff));
	return 0;
}

/* The permission field of the /proc/self/maps line covering @addr, in @perms[5]. */
static int maps_perms(const void *addr, char *perms)
{
	unsigned long lo, hi, a = (unsigned long)addr;
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");

	strcpy(perms, "none");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) == 3 && lo <= a && a < hi) {
			fclose(f);
			return 0;
		}
	}
	fclose(f);
	strcpy(perms, "none");
	return -1;
}

/* The value of "Key:" in /proc/self/status, or -1. */
static long status_field(const char *key)
{
	char line[256];
	size_t kl = strlen(key);
	long v = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, kl) && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/* What fd @fd is now (its /proc/self/fd link), for messages. */
static const char *fd_link(int fd)
{
	static char buf[256];
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n < 0)
		snprintf(buf, sizeof(buf), "closed (%s)", strerror(errno));
	else
		buf[n] = 0;
	return buf;
}

/* Runs @fn in a child; 0 if it returned 0, else 1 with its why[] here. */
static int in_child(int (*fn)(void))
{
	int p[2], st;
	ssize_t n;
	pid_t c;

	if (pipe(p))
		return bad("pipe: %s", strerror(errno));
	c = fork();
	if (c < 0)
		return bad("fork: %s", strerror(errno));
	if (c == 0) {
		int r;

		close(p[0]);
		why[0] = 0;
		r = fn();
		if (r && write(p[1], why, strlen(why)) < 0)
			_exit(2);
		_exit(r ? 1 : 0);
	}
	close(p[1]);
	n = read(p[0], why, sizeof(why) - 1);
	why[n > 0 ? n : 0] = 0;
	close(p[0]);
	if (waitpid(c, &st, 0) != c)
		return bad("waitpid: %s", strerror(errno));
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (!why[0])
		bad("checking child ended with status 0x%x", st);
	return 1;
}

/* --- memory --------------------------------------------------------------- */

static unsigned char *pn_mem;

static int prot_none_setup(void)
{
	pn_mem = mmap(NULL, 4 * psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pn_mem == MAP_FAILED)
		return bad("mmap: %s", strerror(errno));
	for (long i = 0; i < 4 * psz; i++)
		pn_mem[i] = (i * 7 + 3) & 0xff;
	if (mprotect(pn_mem, 4 * psz, PROT_NONE))
		return bad("mprotect: %s", strerror(errno));
	return 0;
}

static int prot_none_verify(void)
{
	char perms[8];
	int r;

	maps_perms(pn_mem, perms);
	if (strcmp(perms, "---p"))
		return bad("mapping at %p is %s, expected ---p", (void *)pn_mem, perms);
	if (mprotect(pn_mem, 4 * psz, PROT_READ | PROT_WRITE))
		return bad("mprotect back: %s", strerror(errno));
	r = check_pattern(pn_mem, 4 * psz, 3, "PROT_NONE page");
	mprotect(pn_mem, 4 * psz, PROT_NONE);
	return r;
}

static unsigned char *mf_mem;

static int mprotect_filemap_setup(void)
{
	int fd = make_file("m", 2 * psz, 5);

	if (fd < 0)
		return bad("file: %s", strerror(errno));
	mf_mem = mmap(NULL, 2 * psz, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (mf_mem == MAP_FAILED)
		return bad("mmap: %s", strerror(errno));
	return 0;
}

static int mprotect_filemap_verify(void)
{
	char perms[8];

	maps_perms(mf_mem, perms);
	if (strcmp(perms, "r--s"))
		return bad("mapping at %p is %s, expected r--s", (void *)mf_mem, perms);
	if (check_pattern(mf_mem, 2 * psz, 5, "file page"))
		return 1;
	if (mprotect(mf_mem, 2 * psz, PROT_READ | PROT_WRITE))
		return bad("mprotect PROT_READ|PROT_WRITE on the shared file map: %s",
			   strerror(errno));
	mf_mem[1] = mf_mem[1];
	mprotect(mf_mem, 2 * psz, PROT_READ);
	return 0;
}

static unsigned char *dm_mem;

static int deleted_map_setup(void)
{
	char path[4096];
	int fd = make_file("del", 2 * psz, 11);

	if (fd < 0)
		return bad("file: %s", strerror(errno));
	dm_mem = mmap(NULL, 2 * psz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (dm_mem == MAP_FAILED)
		return bad("mmap: %s", strerror(errno));
	scratch(path, sizeof(path), "del");
	if (unlink(path))
		return bad("unlink: %s", strerror(errno));
	return 0;
}

static int deleted_map_verify(void)
{
	char perms[8];

	maps_perms(dm_mem, perms);
	if (strcmp(perms, "rw-s"))
		return bad("mapping at %p is %s, expected rw-s", (void *)dm_mem, perms);
	return check_pattern(dm_mem, 2 * psz, 11, "deleted file page");
}

/*
 * Shared anonymous memory mapped twice (an mremap alias), written through
 * both mappings by a thread between pre-copy rounds: the same object page
 * is dirty in two VMAs of one round.
 */
static unsigned char *sr_a, *sr_b;

static void *sr_writer(void *arg)
{
	uint64_t n = 0;

	(void)arg;
	for (;;) {
		n++;
		memcpy(sr_a, &n, 8);
		memcpy(sr_b + 8, &n, 8);
		memcpy(sr_b + 2 * psz, sr_a + 2 * psz, 8);
		sleep_ms(2);
	}
	return NULL;
}

static int shm_rounds_setup(void)
{
	pthread_t t;

	sr_a = mmap(NULL, 4 * psz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sr_a == MAP_FAILED)
		return bad("mmap: %s", strerror(errno));
	for (long i = psz; i < 4 * psz; i++)
		sr_a[i] = (i * 7 + 17) & 0xff;
	sr_b = mremap(sr_a, 0, 4 * psz, MREMAP_MAYMOVE);
	if (sr_b == MAP_FAILED)
		return bad("mremap alias: %s", strerror(errno));
	errno = pthread_create(&t, NULL, sr_writer, NULL);
	return errno ? bad("pthread_create: %s", strerror(errno)) : 0;
}

static int shm_rounds_verify(void)
{
	uint64_t a, b, later;

	memcpy(&a, sr_a, 8);
	memcpy(&b, sr_a + 8, 8);
	if (!a || (a != b && a != b + 1))
		return bad("counters %llu (first mapping) and %llu (alias)", (unsigned long long)a,
			   (unsigned long long)b);
	if (check_pattern(sr_b + psz, 3 * psz, 17 + (psz * 7) % 256, "alias page"))
		return 1;
	sleep_ms(100);
	memcpy(&later, sr_b, 8);
	if (later <= a)
		return bad("the thread no longer writes the shared memory (counter %llu)",
			   (unsigned long long)later);
	return 0;
}

/*
 * A private mapping of a memfd (its fd closed): pages 0 and 2 are the
 * memfd's, page 1 copied-on-write.
 */
static unsigned char *mp_mem;

static int memfd_private_setup(void)
{
	int fd = memfd_create("objwork-priv", 0);
	unsigned char *w;

	if (fd < 0)
		return bad("memfd_create: %s", strerror(errno));
	if (ftruncate(fd, 3 * psz))
		return bad("ftruncate: %s", strerror(errno));
	w = mmap(NULL, 3 * psz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (w == MAP_FAILED)
		return bad("mmap shared: %s", strerror(errno));
	for (long i = 0; i < 3 * psz; i++)
		w[i] = (i * 7 + 21) & 0xff;
	munmap(w, 3 * psz);
	mp_mem = mmap(NULL, 3 * psz, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	close(fd);
	if (mp_mem == MAP_FAILED)
		return bad("mmap private: %s", strerror(errno));
	memset(mp_mem + psz, 0x5a, 16);
	return 0;
}

static int memfd_private_verify(void)
{
	char perms[8];

	maps_perms(mp_mem, perms);
	if (strcmp(perms, "rw-p"))
		return bad("mapping at %p is %s, expected rw-p", (void *)mp_mem, perms);
	if (check_pattern(mp_mem, psz, 21, "memfd page 0") ||
	    check_pattern(mp_mem + 2 * psz, psz, 21 + (2 * psz * 7) % 256, "memfd page 2") ||
	    check_pattern(mp_mem + psz + 16, psz - 16, 21 + ((psz + 16) * 7) % 256, "memfd page 1"))
		return 1;
	for (int i = 0; i < 16; i++)
		if (mp_mem[psz + i] != 0x5a)
			return bad("copied-on-write byte %d is 0x%02x", i, mp_mem[psz + i]);
	return 0;
}

/*
 * Memory uffd-wp cannot register (MAP_DROPPABLE: EINVAL): tracked by full
 * resends. Its contents only are checked (the kernel may drop them under
 * memory pressure, which a test machine does not have).
 */
#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif
static unsigned char *ut_mem;

static int untracked_setup(void)
{
	ut_mem = mmap(NULL, 4 * psz, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
	if (ut_mem == MAP_FAILED)
		return bad("mmap MAP_DROPPABLE: %s", strerror(errno));
	for (long i = 0; i < 4 * psz; i++)
		ut_mem[i] = (i * 7 + 29) & 0xff;
	return 0;
}

static int untracked_verify(void)
{
	return check_pattern(ut_mem, 4 * psz, 29, "untracked page");
}

/* Does /proc/self/smaps give the VMA at @addr VmFlags flag @flag ("dp")? 1, 0, -1: not found */
static int vm_flag(const void *addr, const char *flag)
{
	char line[1024];
	unsigned long long s, e;
	FILE *f = fopen("/proc/self/smaps", "r");
	int in = 0, ret = -1;

	if (!f)
		return -1;
	while (ret < 0 && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-%llx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = (uintptr_t)addr >= s && (uintptr_t)addr < e;
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			char want[8];

			snprintf(want, sizeof(want), " %s", flag);
			line[strcspn(line, "\n")] = ' ';
			ret = !!strstr(line + 7, strcat(want, " "));
		}
	}
	fclose(f);
	return ret;
}

/* MAP_DROPPABLE itself: the restored mapping must be droppable again. */
static unsigned char *dp_mem;

static int droppable_setup(void)
{
	dp_mem = mmap(NULL, 3 * psz, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
	if (dp_mem == MAP_FAILED)
		return bad("mmap MAP_DROPPABLE: %s", strerror(errno));
	for (long i = 0; i < 3 * psz; i++)
		dp_mem[i] = (i * 7 + 31) & 0xff;
	return vm_flag(dp_mem, "dp") == 1 ? 0 : bad("no dp in VmFlags after MAP_DROPPABLE");
}

static int droppable_verify(void)
{
	if (vm_flag(dp_mem, "dp") != 1)
		return bad("the mapping at %p is not droppable (no dp in VmFlags)", (void *)dp_mem);
	return check_pattern(dp_mem, 3 * psz, 31, "droppable page");
}

/* Mappings with VmFlags: madvise flags. */
static unsigned char *vf_mem;

static int vf_map(int advice, const char *flag)
{
	vf_mem = mmap(NULL, 2 * psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vf_mem == MAP_FAILED)
		return bad("mmap: %s", strerror(errno));
	memset(vf_mem, 0x5a, 2 * psz);
	if (madvise(vf_mem, 2 * psz, advice))
		return bad("madvise %d: %s", advice, strerror(errno));
	return vm_flag(vf_mem, flag) == 1 ? 0 : bad("no %s in VmFlags", flag);
}

static int vf_verify(const char *flag)
{
	if (vm_flag(vf_mem, flag) != 1)
		return bad("no %s in VmFlags any more", flag);
	return vf_mem[0] == 0x5a && vf_mem[2 * psz - 1] == 0x5a ? 0 : bad("contents changed");
}

/* NAME_setup maps with @advice and checks VmFlags @flag; NAME_verify checks again. */
#define VF_MODE(name, advice, flag)						\
	static int name##_setup(void) { return vf_map(advice, flag); }		\
	static int name##_verify(void) { return vf_verify(flag); }

VF_MODE(dontfork, MADV_DONTFORK, "dc")
VF_MODE(wipeonfork, MADV_WIPEONFORK, "wf")
VF_MODE(hugepage, MADV_HUGEPAGE, "hg")
VF_MODE(nohugepage, MADV_NOHUGEPAGE, "nh")
VF_MODE(dontdump, MADV_DONTDUMP, "dd")

/*
 * No vdso: [vdso] and [vvar*] unmapped (nothing here calls into them after:
 * nanosleep and the rest are plain syscalls). ferry must find a `syscall`
 * instruction elsewhere, and the restore must not map a vdso back.
 */
static unsigned long nv_ehdr;

static int vdso_lines(void)
{
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, "[vdso]") || strstr(line, "[vvar");
	if (f)
		fclose(f);
	return n;
}

static int no_vdso_setup(void)
{
	unsigned long lo[8], hi[8];
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	while (f && n < 8 && fgets(line, sizeof(line), f))
		if ((strstr(line, "[vdso]") || strstr(line, "[vvar")) &&
		    sscanf(line, "%lx-%lx", &lo[n], &hi[n]) == 2)
			n++;
	if (f)
		fclose(f);
	if (!n)
		return bad("no [vdso] to unmap");
	nv_ehdr = getauxval(AT_SYSINFO_EHDR);
	while (n--)
		if (munmap((void *)lo[n], hi[n] - lo[n]))
			return bad("munmap: %s", strerror(errno));
	return vdso_lines() ? bad("[vdso] or [vvar] still mapped") : 0;
}

static int no_vdso_verify(void)
{
	if (vdso_lines())
		return bad("a [vdso] or [vvar] is mapped again");
	if (getauxval(AT_SYSINFO_EHDR) != nv_ehdr)
		return bad("AT_SYSINFO_EHDR changed");
	return syscall(SYS_getpid) == getpid() ? 0 : bad("getpid");
}

/*
 * Locked memory: of three pages, page 1 alone locked (mlock), or all three
 * with MLOCK_ONFAULT and only page 0 ever touched (pages 1, 2 must stay out
 * of memory: a plain mlock would fault them in). VmLck must match.
 */
static unsigned char *lk_mem;

static long vm_locked_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmLck:", 6))
			kb = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

/* mincore's residency of @n (up to 3) pages as a string such as "RR-" */
static const char *resident(const unsigned char *p, int n)
{
	static char r[4];
	unsigned char v[3];

	if (mincore((void *)p, n * psz, v))
		return "???";
	for (int i = 0; i < n; i++)
		r[i] = v[i] & 1 ? 'R' : '-';
	r[n] = 0;
	return r;
}

static int lk_check(const char *lo, const char *lf, long kb, const char *res)
{
	for (int i = 0; i < 3; i++) {
		if (vm_flag(lk_mem + i * psz, "lo") != lo[i] - '0')
			return bad("page %d: lo in VmFlags should be %c", i, lo[i]);
		if (vm_flag(lk_mem + i * psz, "lf") != lf[i] - '0')
			return bad("page %d: lf in VmFlags should be %c", i, lf[i]);
	}
	if (vm_locked_kb() != kb)
		return bad("VmLck is %ld kB, not %ld", vm_locked_kb(), kb);
	if (strcmp(resident(lk_mem, 3), res))
		return bad("pages resident %s, not %s", resident(lk_mem, 3), res);
	/* only what is resident is read: reading faults a page in */
	for (int i = 0; i < 3; i++)
		if (res[i] == 'R' && lk_mem[i * psz] != 0x3c)
			return bad("page %d: contents changed", i);
	return 0;
}

static int lk_map(size_t touch)
{
	lk_mem = mmap(NULL, 3 * psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (lk_mem == MAP_FAILED)
		return bad("mmap: %s", strerror(errno));
	memset(lk_mem, 0x3c, touch);
	return 0;
}

static int mlock_setup(void)
{
	if (lk_map(3 * psz))
		return 1;
	if (mlock(lk_mem + psz, psz))
		return bad("mlock: %s", strerror(errno));
	return lk_check("010", "000", psz / 1024, "RRR");
}

static int mlock_verify(void)
{
	return lk_check("010", "000", psz / 1024, "RRR");
}

static int mlock_onfault_setup(void)
{
	if (lk_map(psz))
		return 1;
	if (mlock2(lk_mem, 3 * psz, MLOCK_ONFAULT))
		return bad("mlock2 MLOCK_ONFAULT: %s", strerror(errno));
	return lk_check("111", "111", 3 * psz / 1024, "R--");
}

static int mlock_onfault_verify(void)
{
	return lk_check("111", "111", 3 * psz / 1024, "R--");
}

/*
 * mlockall(MCL_CURRENT | MCL_FUTURE), and mlockall(MCL_FUTURE | MCL_ONFAULT)
 * with nothing locked before: what is mapped from now on is locked (and
 * faulted in at once without ONFAULT).
 */
static int mlockall_check(int onfault)
{
	unsigned char *p;
	int lo, lf;
	char r;

	p = mmap(NULL, psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return bad("mmap: %s", strerror(errno));
	lo = vm_flag(p, "lo");
	lf = vm_flag(p, "lf");
	r = resident(p, 1)[0];
	munmap(p, psz);
	if (lo != 1 || lf != onfault)
		return bad("a new mapping has VmFlags lo %d lf %d, not 1 %d", lo, lf, onfault);
	if (r != (onfault ? '-' : 'R'))
		return bad("a new locked mapping is %sresident", onfault ? "" : "not ");
	return 0;
}

/* MCL_CURRENT too: the program's text (a file mapping) and its stack are locked */
static int mlockall_current(void)
{
	int x;

	if (vm_flag((void *)mlockall_check, "lo") != 1 || vm_flag(&x, "lo") != 1)
		return bad("the program's text or stack is not locked (no lo in VmFlags)");
	return mlockall_check(0);
}

static int mlockall_future_setup(void)
{
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		return bad("mlockall: %s", strerror(errno));
	return mlockall_current();
}

static int mlockall_future_verify(void)
{
	return mlockall_current();
}

static int mlockall_onfault_setup(void)
{
	if (mlockall(MCL_FUTURE | MCL_ONFAULT))
		return bad("mlockall: %s", strerror(errno));
	return mlockall_check(1);
}

static int mlockall_onfault_verify(void)
{
	return mlockall_check(1);
}

/*
 * KSM: pages 0 and 2 of three as @flag0/@flag2 say, page 1 the other way
 * (a restore that made all or none mergeable is caught), contents kept.
 */
static unsigned char *km_mem;

static int km_flags(int mg0, int mg1)
{
	if (vm_flag(km_mem, "mg") != mg0 || vm_flag(km_mem + 2 * psz, "mg") != mg0)
		return bad("pages 0 and 2 should %shave mg in VmFlags", mg0 ? "" : "not ");
	if (vm_flag(km_mem + psz, "mg") != mg1)
		return bad("page 1 should %shave mg in VmFlags", mg1 ? "" : "not ");
	return check_pattern(km_mem, 3 * psz, 47, "KSM page");
}

static int km_map(int advice)
{
	km_mem = mmap(NULL, 3 * psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (km_mem == MAP_FAILED)
		return bad("mmap: %s", strerror(errno));
	for (long i = 0; i < 3 * psz; i++)
		km_mem[i] = (i * 7 + 47) & 0xff;
	if (madvise(km_mem + psz, psz, advice))
		return bad("madvise %d: %s", advice, strerror(errno));
	return 0;
}

static int ksm_stat_says(const char *line)
{
	char buf[512];
	int fd = open("/proc/self/ksm_stat", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	if (n < 0)
		return 0;
	buf[n] = 0;
	return !!strstr(buf, line);
}

static int mergeable_setup(void)
{
	return km_map(MADV_MERGEABLE) ?: km_flags(0, 1);
}

static int mergeable_verify(void)
{
	if (prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0) != 0)
		return bad("PR_GET_MEMORY_MERGE is not 0");
	if (!ksm_stat_says("ksm_mergeable: yes"))
		return bad("ksm_stat does not say ksm_mergeable: yes");
	return km_flags(0, 1);
}

static int merge_any_setup(void)
{
	if (prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0))
		return bad("PR_SET_MEMORY_MERGE: %s", strerror(errno));
	return km_map(MADV_UNMERGEABLE) ?: km_flags(1, 0);
}

static int merge_any_verify(void)
{
	void *p;
	int mg;

	if (prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0) != 1)
		return bad("PR_GET_MEMORY_MERGE is not 1");
	/* what is mapped from now on is mergeable too */
	p = mmap(NULL, psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return bad("mmap: %s", strerror(errno));
	mg = vm_flag(p, "mg");
	munmap(p, psz);
	if (mg != 1)
		return bad("a new mapping has no mg in VmFlags");
	return km_flags(1, 0);
}

static unsigned char *gd_mem;
static sigjmp_buf gd_jmp;

static void gd_segv(int sig)
{
	(void)sig;
	siglongjmp(gd_jmp, 1);
}

/* 1 if reading @p faults. */
static int faults(volatile unsigned char *p)
{
	struct sigaction sa = { .sa_handler = gd_segv }, old;
	int r = 0;

	sigaction(SIGSEGV, &sa, &old);
	if (sigsetjmp(gd_jmp, 1))
		r = 1;
	else
		(void)*p;
	sigaction(SIGSEGV, &old, NULL);
	return r;
}

static int guard_setup(void)
{
	gd_mem = mmap(NULL, 3 * psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (gd_mem == MAP_FAILED)
		return bad("mmap: %s", strerror(errno));
	memset(gd_mem, 0x5a, 3 * psz);
	if (madvise(gd_mem + psz, psz, MADV_GUARD_INSTALL))
		return bad("MADV_GUARD_INSTALL: %s", strerror(errno));
	return 0;
}

static int guard_verify(void)
{
	if (faults(gd_mem) || faults(gd_mem + 2 * psz))
		return bad("a neighbour page of the guard faults");
	if (gd_mem[0] != 0x5a || gd_mem[2 * psz] != 0x5a)
		return bad("neighbour pages lost their contents");
	if (!faults(gd_mem + psz))
		return bad("the guard page at %p can be read", (void *)(gd_mem + psz));
	return 0;
}

static struct robust_list_head rl_head;

static int robust_list_setup(void)
{
	rl_head.list.next = &rl_head.list;
	rl_head.futex_offset = 16;
	if (syscall(SYS_set_robust_list, &rl_head, sizeof(rl_head)))
		return bad("set_robust_list: %s", strerror(errno));
	return 0;
}

static int robust_list_verify(void)
{
	void *head = NULL;
	size_t len = 0;

	if (syscall(SYS_get_robust_list, 0, &head, &len))
		return bad("get_robust_list: %s", strerror(errno));
	if (head != &rl_head || len != sizeof(rl_head))
		return bad("robust list %p len %zu, expected %p len %zu", head, len,
			   (void *)&rl_head, sizeof(rl_head));
	return 0;
}

/* --- process attributes --------------------------------------------------- */

static int seccomp_filter_setup(void)
{
#ifdef OUR_AUDIT_ARCH
	/* getppid() fails with errno 42; any other call (or arch) is allowed. */
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, OUR_AUDIT_ARCH, 0, 3),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getppid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 42),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0))
		return bad("PR_SET_SECCOMP: %s", strerror(errno));
	return 0;
#else
	return bad("no audit arch for this machine");
#endif
}

static int seccomp_filter_verify(void)
{
	long s = status_field("Seccomp");
	long r;

	if (s != 2)
		return bad("Seccomp: %ld, expected 2", s);
	errno = 0;
	r = syscall(SYS_getppid);
	if (r != -1 || errno != 42)
		return bad("getppid returned %ld errno %d, expected -1 errno 42", r, errno);
	return 0;
}

static struct __user_cap_data_struct cap_want[2];
static uint64_t cap_bset, cap_amb;
static int cap_last;

static int caps_read(struct __user_cap_data_struct *d, uint64_t *bset, uint64_t *amb)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	int c;

	if (syscall(SYS_capget, &h, d))
		return -1;
	*bset = *amb = 0;
	for (c = 0; c <= cap_last; c++) {
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
			*bset |= 1ULL << c;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1)
			*amb |= 1ULL << c;
	}
	return 0;
}

static int caps_setup(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r");

	if (!f || fscanf(f, "%d", &cap_last) != 1 || cap_last > 63)
		cap_last = 40;
	if (f)
		fclose(f);
	if (syscall(SYS_capget, &h, d))
		return bad("capget: %s", strerror(errno));
	if (!(d[0].permitted & (1U << CAP_SETPCAP)))
		return bad("not privileged (no CAP_SETPCAP)");
	/* lose SYS_BOOT and SYS_TIME, NET_RAW only from the effective set */
	d[0].effective &= ~(1U << CAP_SYS_BOOT | 1U << CAP_SYS_TIME | 1U << CAP_NET_RAW);
	d[0].permitted &= ~(1U << CAP_SYS_BOOT | 1U << CAP_SYS_TIME);
	d[0].inheritable = 1U << CAP_NET_BIND_SERVICE | 1U << CAP_CHOWN;
	d[1].inheritable = 0;
	if (syscall(SYS_capset, &h, d))
		return bad("capset: %s", strerror(errno));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0))
		return bad("ambient raise: %s", strerror(errno));
	if (prctl(PR_CAPBSET_DROP, CAP_MKNOD, 0, 0, 0))
		return bad("PR_CAPBSET_DROP: %s", strerror(errno));
	if (caps_read(cap_want, &cap_bset, &cap_amb))
		return bad("capget: %s", strerror(errno));
	return 0;
}

static int caps_verify(void)
{
	struct __user_cap_data_struct d[2];
	uint64_t bset, amb;

#define CAP64(d, f) ((uint64_t)(d)[1].f << 32 | (d)[0].f)
	if (caps_read(d, &bset, &amb))
		return bad("capget: %s", strerror(errno));
	if (CAP64(d, effective) == CAP64(cap_want, effective) &&
	    CAP64(d, permitted) == CAP64(cap_want, permitted) &&
	    CAP64(d, inheritable) == CAP64(cap_want, inheritable) &&
	    bset == cap_bset && amb == cap_amb)
		return 0;
	return bad("eff/prm/inh/bnd/amb %#llx/%#llx/%#llx/%#llx/%#llx, expected "
		   "%#llx/%#llx/%#llx/%#llx/%#llx",
		   (unsigned long long)CAP64(d, effective),
		   (unsigned long long)CAP64(d, permitted),
		   (unsigned long long)CAP64(d, inheritable),
		   (unsigned long long)bset, (unsigned long long)amb,
		   (unsigned long long)CAP64(cap_want, effective),
		   (unsigned long long)CAP64(cap_want, permitted),
		   (unsigned long long)CAP64(cap_want, inheritable),
		   (unsigned long long)cap_bset, (unsigned long long)cap_amb);
#undef CAP64
}

static int sched_setup(void)
{
	struct sched_param sp = { 0 };

	if (sched_setscheduler(0, SCHED_BATCH, &sp))
		return bad("sched_setscheduler: %s", strerror(errno));
	if (setpriority(PRIO_PROCESS, 0, 7))
		return bad("setpriority: %s", strerror(errno));
	return 0;
}

static int sched_verify(void)
{
	int pol = sched_getscheduler(0), nice;

	errno = 0;
	nice = getpriority(PRIO_PROCESS, 0);
	if (pol != SCHED_BATCH)
		return bad("policy %d, expected SCHED_BATCH (%d)", pol, SCHED_BATCH);
	if (nice != 7 || errno)
		return bad("nice %d, expected 7", nice);
	return 0;
}

static int oom_rw(int *v, int set)
{
	int fd = open("/proc/self/oom_score_adj", set ? O_WRONLY : O_RDONLY), n;
	char b[32];

	if (fd < 0)
		return -1;
	if (set) {
		n = snprintf(b, sizeof(b), "%d\n", *v);
		n = write(fd, b, n) == n ? 0 : -1;
	} else {
		n = read(fd, b, sizeof(b) - 1);
		if (n > 0) {
			b[n] = 0;
			*v = atoi(b);
		}
		n = n > 0 ? 0 : -1;
	}
	close(fd);
	return n;
}

static int oom_score_adj_setup(void)
{
	int v = 123;

	return oom_rw(&v, 1) ? bad("write oom_score_adj: %s", strerror(errno)) : 0;
}

static int oom_score_adj_verify(void)
{
	int v = -9999;

	if (oom_rw(&v, 0))
		return bad("read oom_score_adj: %s", strerror(errno));
	return v == 123 ? 0 : bad("oom_score_adj %d, expected 123", v);
}

static volatile sig_atomic_t usr1_seen;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_seen++;
}

static int pdeathsig_setup(void)
{
	/* the parent may change at restore: keep the signal from killing us */
	signal(SIGUSR1, on_usr1);
	if (prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0))
		return bad("PR_SET_PDEATHSIG: %s", strerror(errno));
	return 0;
}

static int pdeathsig_verify(void)
{
	int s = -1;

	if (prctl(PR_GET_PDEATHSIG, &s, 0, 0, 0))
		return bad("PR_GET_PDEATHSIG: %s", strerror(errno));
	return s == SIGUSR1 ? 0 : bad("pdeathsig %d, expected %d", s, SIGUSR1);
}

/* Below the root: a child with a parent-death signal answers on a socketpair. */
static int pdc_sock[2] = { -1, -1 };

static int pdeathsig_child_setup(void)
{
	pid_t c;
	char q;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, pdc_sock))
		return bad("socketpair: %s", strerror(errno));
	c = fork();
	if (c < 0)
		return bad("fork: %s", strerror(errno));
	if (!c) {
		close(pdc_sock[0]);
		if (prctl(PR_SET_PDEATHSIG, SIGUSR2, 0, 0, 0))
			_exit(1);
		while (read(pdc_sock[1], &q, 1) == 1) {
			int s = -1;

			prctl(PR_GET_PDEATHSIG, &s, 0, 0, 0);
			if (write(pdc_sock[1], &s, sizeof(s)) != sizeof(s))
				_exit(1);
		}
		_exit(0);
	}
	close(pdc_sock[1]);
	return 0;
}

static int pdeathsig_child_verify(void)
{
	struct pollfd p = { pdc_sock[0], POLLIN, 0 };
	int s = -1;

	if (write(pdc_sock[0], "q", 1) != 1)
		return bad("write to the child: %s", strerror(errno));
	if (poll(&p, 1, 2000) != 1 || read(pdc_sock[0], &s, sizeof(s)) != sizeof(s))
		return bad("no answer from the child");
	return s == SIGUSR2 ? 0 : bad("the child's pdeathsig is %d, expected %d", s, SIGUSR2);
}

static int subreaper_setup(void)
{
	return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) ?
		bad("PR_SET_CHILD_SUBREAPER: %s", strerror(errno)) : 0;
}

static int subreaper_verify(void)
{
	int s = -1;

	if (prctl(PR_GET_CHILD_SUBREAPER, &s, 0, 0, 0))
		return bad("PR_GET_CHILD_SUBREAPER: %s", strerror(errno));
	return s == 1 ? 0 : bad("child subreaper %d, expected 1", s);
}

/* One thread with uids of its own (a raw setresuid: glibc's would change them all). */
static volatile uid_t tc_uid = (uid_t)-1;

static void *tc_thread(void *arg)
{
	(void)arg;
	if (syscall(SYS_setresuid, 4242, 4242, 4242) == 0)
		tc_uid = (uid_t)syscall(SYS_geteuid);
	for (;;)
		pause();
	return NULL;
}

static int thread_creds_setup(void)
{
	pthread_t t;
	int i;

	errno = pthread_create(&t, NULL, tc_thread, NULL);
	if (errno)
		return bad("pthread_create: %s", strerror(errno));
	for (i = 0; i < 200 && tc_uid == (uid_t)-1; i++)
		usleep(5000);
	return tc_uid == 4242 ? 0 : bad("the thread's setresuid did not take");
}

static int thread_creds_verify(void)
{
	return getuid() == 0 && tc_uid == 4242 ? 0 : bad("uid %d, thread uid %d", (int)getuid(),
							   (int)tc_uid);
}

/*
 * A filesystem uid and gid apart from the effective ones (as a file server
 * has): euid 1000, fsuid 0 (so this program's files still get written),
 * fsgid 3456.
 */
static int fsuid_setup(void)
{
	setfsgid(3456);
	if (setresuid(0, 1000, 0))
		return bad("setresuid: %s", strerror(errno));
	setfsuid(0);
	return setfsuid(-1) == 0 && setfsgid(-1) == 3456 ? 0 : bad("setfsuid did not take");
}

static int fsuid_verify(void)
{
	int u = setfsuid(-1), g = setfsgid(-1);

	return u == 0 && g == 3456 && geteuid() == 1000 ? 0 :
		bad("fsuid %d fsgid %d euid %d, expected 0 3456 1000", u, g, (int)geteuid());
}

/* Not dumpable (as ssh-agent or gpg-agent make themselves). */
static int nondumpable_setup(void)
{
	return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) ? bad("PR_SET_DUMPABLE: %s", strerror(errno)) : 0;
}

static int nondumpable_verify(void)
{
	int d = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);

	return d == 0 ? 0 : bad("dumpable %d, expected 0", d);
}

/* More supplementary groups than ferry restores. */
static int many_groups_setup(void)
{
	gid_t g[100];
	int i;

	for (i = 0; i < 100; i++)
		g[i] = 5000 + i;
	return setgroups(100, g) ? bad("setgroups: %s", strerror(errno)) : 0;
}

static int many_groups_verify(void)
{
	gid_t g[200];
	int n = getgroups(200, g);

	return n == 100 && g[99] == 5099 ? 0 : bad("%d groups", n);
}

static int thp_disable_setup(void)
{
	return prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) ?
		bad("PR_SET_THP_DISABLE: %s", strerror(errno)) : 0;
}

static int thp_disable_verify(void)
{
	int s = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);

	return s == 1 ? 0 : bad("PR_GET_THP_DISABLE %d, expected 1", s);
}

/*
 * membarrier registrations (as liburcu and JIT runtimes make them): the
 * private expedited commands fail with EPERM in an mm that did not register.
 */
#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)
#endif
#define MB_REGS (MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED | \
		 MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED | \
		 MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE)

static long mb(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0, 0);
}

static int membarrier_setup(void)
{
	if (mb(MEMBARRIER_CMD_GET_REGISTRATIONS) < 0)
		return bad("MEMBARRIER_CMD_GET_REGISTRATIONS: %s", strerror(errno));
	if (mb(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) ||
	    mb(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) ||
	    mb(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE))
		return bad("membarrier register: %s", strerror(errno));
	return 0;
}

static int membarrier_verify(void)
{
	long r = mb(MEMBARRIER_CMD_GET_REGISTRATIONS);

	if (mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED))
		return bad("MEMBARRIER_CMD_PRIVATE_EXPEDITED: %s", strerror(errno));
	if (mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE))
		return bad("MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE: %s", strerror(errno));
	return r == MB_REGS ? 0 : bad("registrations 0x%lx, expected 0x%x", r, MB_REGS);
}

/*
 * cgroups: a cgroup of its own on the cgroup2 hierarchy and, where mounted,
 * on the v1 "pids" one ("cgroup DIR" lines: the test removes them once the
 * process is gone). cgroup_threads: one thread in a threaded cgroup apart
 * from its process's.
 */
static char cg_self[4096];

/* Where the hierarchy of fstype @fs (with super option @opt) is mounted. */
static int cg_mount(const char *fs, const char *opt, char *mnt, size_t len)
{
	char line[1024], m[512], t[64], o[512];
	FILE *f = fopen("/proc/self/mountinfo", "r");
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");

		if (!sep || sscanf(line, "%*s %*s %*s %*s %511s", m) != 1 ||
		    sscanf(sep + 3, "%63s %*s %511s", t, o) != 2 || strcmp(t, fs))
			continue;
		if (opt && !strstr(o, opt))
			continue;
		snprintf(mnt, len, "%s", m);
		found = 1;
	}
	fclose(f);
	return found;
}

/* Our path on the hierarchy whose /proc/self/cgroup line has controllers @ctrl. */
static int cg_path(const char *ctrl, char *path, size_t len)
{
	char line[1024];
	FILE *f = fopen("/proc/self/cgroup", "r");
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':'), *p = c ? strchr(c + 1, ':') : NULL;

		if (!p || (size_t)(p - c - 1) != strlen(ctrl) || strncmp(c + 1, ctrl, p - c - 1))
			continue;
		line[strcspn(line, "\n")] = 0;
		snprintf(path, len, "%s", p + 1);
		found = 1;
	}
	fclose(f);
	return found;
}

static int cg_write(const char *dir, const char *file, const char *v)
{
	char path[1200];
	int fd, ok;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return bad("open %s: %s", path, strerror(errno));
	ok = write(fd, v, strlen(v)) == (ssize_t)strlen(v);
	if (!ok)
		bad("write %s to %s: %s", v, path, strerror(errno));
	close(fd);
	return !ok;
}

/* mkdir MNT/PATH/NAME (PATH: ours on hierarchy @ctrl) into @dir, said for the cleanup. */
static int cg_make(const char *mnt, const char *ctrl, const char *name, char *dir, size_t len)
{
	char path[512];

	if (!cg_path(ctrl, path, sizeof(path)))
		return bad("no '%s' line in /proc/self/cgroup", ctrl);
	snprintf(dir, len, "%s%s/%s", mnt, strcmp(path, "/") ? path : "", name);
	if (mkdir(dir, 0755))
		return bad("mkdir %s: %s", dir, strerror(errno));
	say("cgroup %s\n", dir);
	return 0;
}

static int cg_read_self(char *buf, size_t len, const char *path)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return 0;
}

static int cgroup_setup(void)
{
	char mnt[512], dir[1024], name[64];

	if (!cg_mount("cgroup2", NULL, mnt, sizeof(mnt)))
		return bad("no cgroup2 hierarchy mounted");
	snprintf(name, sizeof(name), "ferry-objwork-%d", (int)getpid());
	if (cg_make(mnt, "", name, dir, sizeof(dir)) || cg_write(dir, "cgroup.procs", "0"))
		return 1;
	if (cg_mount("cgroup", "pids", mnt, sizeof(mnt)) &&
	    (cg_make(mnt, "pids", name, dir, sizeof(dir)) || cg_write(dir, "cgroup.procs", "0")))
		return 1;
	if (cg_read_self(cg_self, sizeof(cg_self), "/proc/self/cgroup"))
		return bad("read /proc/self/cgroup: %s", strerror(errno));
	return 0;
}

static int cgroup_verify(void)
{
	char now[sizeof(cg_self)];

	if (cg_read_self(now, sizeof(now), "/proc/self/cgroup"))
		return bad("read /proc/self/cgroup: %s", strerror(errno));
	if (!strcmp(now, cg_self))
		return 0;
	for (char *p = now; *p; p++)
		if (*p == '\n')
			*p = ' ';
	return bad("cgroups now: %s", now);
}

static volatile pid_t cgt_tid;
static char cgt_want[1200];

static void *cgt_thread(void *arg)
{
	(void)arg;
	cgt_tid = (pid_t)syscall(SYS_gettid);
	for (;;)
		pause();
	return NULL;
}

static int cgroup_threads_setup(void)
{
	char mnt[512], dir[1024], sub[1100], name[64], tid[16];
	pthread_t t;
	int i;

	if (!cg_mount("cgroup2", NULL, mnt, sizeof(mnt)))
		return bad("no cgroup2 hierarchy mounted");
	snprintf(name, sizeof(name), "ferry-objwork-%d", (int)getpid());
	if (cg_make(mnt, "", name, dir, sizeof(dir)))
		return 1;
	snprintf(sub, sizeof(sub), "%s/a", dir);
	if (mkdir(sub, 0755))
		return bad("mkdir %s: %s", sub, strerror(errno));
	say("cgroup %s\n", sub);
	if (cg_write(sub, "cgroup.type", "threaded") || cg_write(sub, "cgroup.procs", "0"))
		return 1;
	snprintf(sub, sizeof(sub), "%s/b", dir);
	if (mkdir(sub, 0755))
		return bad("mkdir %s: %s", sub, strerror(errno));
	say("cgroup %s\n", sub);
	errno = pthread_create(&t, NULL, cgt_thread, NULL);
	if (errno)
		return bad("pthread_create: %s", strerror(errno));
	for (i = 0; i < 200 && !cgt_tid; i++)
		usleep(5000);
	snprintf(tid, sizeof(tid), "%d", (int)cgt_tid);
	if (cg_write(sub, "cgroup.type", "threaded") || cg_write(sub, "cgroup.threads", tid))
		return 1;
	snprintf(cgt_want, sizeof(cgt_want), "0::%s\n", sub + strlen(mnt));
	return 0;
}

static int cgroup_threads_verify(void)
{
	char path[64], now[4096];

	snprintf(path, sizeof(path), "/proc/self/task/%d/cgroup", (int)cgt_tid);
	if (cg_read_self(now, sizeof(now), path))
		return bad("read %s: %s", path, strerror(errno));
	return strstr(now, cgt_want) ? 0 : bad("thread %d not in %.*s", (int)cgt_tid,
					       (int)strcspn(cgt_want, "\n"), cgt_want);
}

/*
 * The process tree and directories: a zombie child, a child traced by its
 * parent, a deleted cwd (refused); a chroot (carried: the checks go through
 * "/check", the --check file's directory being the new root).
 */
static pid_t tr_child;

static int zombie_setup(void)
{
	tr_child = fork();
	if (tr_child < 0)
		return bad("fork: %s", strerror(errno));
	if (!tr_child)
		_exit(7);
	usleep(100000);
	return 0;
}

static int zombie_verify(void)
{
	siginfo_t si = { 0 };

	if (waitid(P_PID, tr_child, &si, WEXITED | WNOHANG | WNOWAIT))
		return bad("waitid %d: %s", (int)tr_child, strerror(errno));
	return si.si_pid == tr_child && si.si_status == 7 ? 0 : bad("no zombie %d", (int)tr_child);
}

static int traced_child_setup(void)
{
	int st;

	tr_child = fork();
	if (tr_child < 0)
		return bad("fork: %s", strerror(errno));
	if (!tr_child) {
		for (;;)
			pause();
	}
	if (ptrace(PTRACE_SEIZE, tr_child, NULL, NULL))
		return bad("PTRACE_SEIZE: %s", strerror(errno));
	if (ptrace(PTRACE_INTERRUPT, tr_child, NULL, NULL) || waitpid(tr_child, &st, __WALL) != tr_child)
		return bad("PTRACE_INTERRUPT: %s", strerror(errno));
	return 0;
}

static int traced_child_verify(void)
{
	char path[64], buf[4096], *p;
	int fd = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tr_child);
	fd = open(path, O_RDONLY);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return bad("read %s: %s", path, strerror(errno));
	buf[n] = 0;
	p = strstr(buf, "TracerPid:");
	return p && atoi(p + 10) == getpid() ? 0 : bad("the child is not traced by us");
}

static struct stat dc_st;

static int deleted_cwd_setup(void)
{
	char d[1100];

	scratch(d, sizeof(d), ".d");
	if (mkdir(d, 0755) || chdir(d) || stat(".", &dc_st) || rmdir(d))
		return bad("mkdir/chdir/rmdir %s: %s", d, strerror(errno));
	return 0;
}

static int deleted_cwd_verify(void)
{
	struct stat st;

	if (stat(".", &st))
		return bad("stat .: %s", strerror(errno));
	return st.st_ino == dc_st.st_ino && st.st_nlink == 0 ? 0 : bad("cwd changed");
}

static struct stat cr_root, cr_cwd;

static int chroot_setup(void)
{
	static char root[1024];
	char *slash;
	size_t len;

	snprintf(root, sizeof(root), "%s", check);
	slash = strrchr(root, '/');
	if (!slash || slash == root)
		return bad("--check %s has no directory", check);
	*slash = 0;
	len = strlen(root);
	if (strncmp(pidfile, root, len) || pidfile[len] != '/')
		return bad("--pidfile %s is not beside --check", pidfile);
	if (chdir(root) || (mkdir("sub", 0755) && errno != EEXIST) || stat(".", &cr_root) ||
	    chroot(".") || chdir("/sub") || stat(".", &cr_cwd))
		return bad("chroot %s: %s", root, strerror(errno));
	check += len;
	pidfile += len;
	return 0;
}

static int chroot_verify(void)
{
	struct stat r, c;
	char cwd[64];

	if (stat("/", &r) || stat(".", &c) || !getcwd(cwd, sizeof(cwd)))
		return bad("stat: %s", strerror(errno));
	if (r.st_ino != cr_root.st_ino || r.st_dev != cr_root.st_dev)
		return bad("the root is another directory");
	if (c.st_ino != cr_cwd.st_ino || strcmp(cwd, "/sub"))
		return bad("cwd %s, expected /sub", cwd);
	return 0;
}

/* Odd fds: a /proc file, a namespace file, a raw socket, a unix socket whose path was removed. */
static int odd_fd = -1;
static struct stat odd_st;

static int proc_fd_setup(void)
{
	odd_fd = open("/proc/self/status", O_RDONLY);
	return odd_fd < 0 ? bad("open /proc/self/status: %s", strerror(errno)) : 0;
}

static int proc_fd_verify(void)
{
	char buf[4096], want[64];
	ssize_t n = pread(odd_fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return bad("pread: %s", strerror(errno));
	buf[n] = 0;
	snprintf(want, sizeof(want), "\nPid:\t%d\n", (int)getpid());
	return strstr(buf, want) ? 0 : bad("the fd shows another process's status");
}

static int ns_fd_setup(void)
{
	odd_fd = open("/proc/self/ns/net", O_RDONLY);
	if (odd_fd < 0 || fstat(odd_fd, &odd_st))
		return bad("open /proc/self/ns/net: %s", strerror(errno));
	return 0;
}

static int ns_fd_verify(void)
{
	struct stat st;

	if (fstat(odd_fd, &st))
		return bad("fstat: %s", strerror(errno));
	return st.st_ino == odd_st.st_ino ? 0 : bad("another namespace");
}

static int raw_socket_setup(void)
{
	odd_fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	return odd_fd < 0 ? bad("socket(SOCK_RAW): %s", strerror(errno)) : 0;
}

static int raw_socket_verify(void)
{
	int t = 0;
	socklen_t l = sizeof(t);

	if (getsockopt(odd_fd, SOL_SOCKET, SO_TYPE, &t, &l))
		return bad("getsockopt: %s", strerror(errno));
	return t == SOCK_RAW ? 0 : bad("socket type %d", t);
}

static struct sockaddr_un ur_addr;

static int unix_removed_setup(void)
{
	odd_fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (odd_fd < 0)
		return bad("socket: %s", strerror(errno));
	ur_addr.sun_family = AF_UNIX;
	scratch(ur_addr.sun_path, sizeof(ur_addr.sun_path), ".sock");
	if (bind(odd_fd, (struct sockaddr *)&ur_addr, sizeof(ur_addr)))
		return bad("bind: %s", strerror(errno));
	return unlink(ur_addr.sun_path) ? bad("unlink: %s", strerror(errno)) : 0;
}

static int unix_removed_verify(void)
{
	struct sockaddr_un a;
	socklen_t l = sizeof(a);

	if (getsockname(odd_fd, (struct sockaddr *)&a, &l))
		return bad("getsockname: %s", strerror(errno));
	if (strcmp(a.sun_path, ur_addr.sun_path))
		return bad("bound to '%s'", a.sun_path);
	return access(ur_addr.sun_path, F_OK) ? 0 : bad("the removed path is back");
}

/* --- timers --------------------------------------------------------------- */

#define PT_VALUE 0x1234
static int pt_id;
static volatile sig_atomic_t pt_count, pt_badval;

static void on_pt(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_value.sival_int != PT_VALUE)
		pt_badval++;
	pt_count++;
}

static int posix_timer_setup(void)
{
	struct sigaction sa = { .sa_sigaction = on_pt, .sa_flags = SA_SIGINFO | SA_RESTART };
	struct sigevent sev = { 0 };
	struct itimerspec its = { { 0, 20000000 }, { 0, 20000000 } };

	sigaction(SIGRTMIN + 2, &sa, NULL);
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGRTMIN + 2;
	sev.sigev_value.sival_int = PT_VALUE;
	if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &pt_id))
		return bad("timer_create: %s", strerror(errno));
	if (syscall(SYS_timer_settime, pt_id, 0, &its, NULL))
		return bad("timer_settime: %s", strerror(errno));
	return 0;
}

static int posix_timer_verify(void)
{
	struct itimerspec its;
	long before = pt_count;

	if (syscall(SYS_timer_gettime, pt_id, &its))
		return bad("timer_gettime(%d): %s", pt_id, strerror(errno));
	if (its.it_interval.tv_sec != 0 || its.it_interval.tv_nsec != 20000000)
		return bad("timer %d interval %ld.%09ld, expected 0.020000000", pt_id,
			   (long)its.it_interval.tv_sec, its.it_interval.tv_nsec);
	sleep_ms(300);
	if (pt_count - before < 3)
		return bad("%ld timer signals in 300 ms", (long)(pt_count - before));
	if (pt_badval)
		return bad("%d timer signals with a wrong si_value", (int)pt_badval);
	return 0;
}

static int tfd = -1;

static int timerfd_setup(void)
{
	struct itimerspec its = { { 0, 50000000 }, { 0, 50000000 } };

	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	if (tfd < 0)
		return bad("timerfd_create: %s", strerror(errno));
	if (timerfd_settime(tfd, 0, &its, NULL))
		return bad("timerfd_settime: %s", strerror(errno));
	return 0;
}

static int timerfd_verify(void)
{
	struct pollfd p = { .fd = tfd, .events = POLLIN };
	struct itimerspec its;
	uint64_t n;

	if (timerfd_gettime(tfd, &its))
		return bad("timerfd_gettime on fd %d: %s", tfd, strerror(errno));
	if (its.it_interval.tv_sec != 0 || its.it_interval.tv_nsec != 50000000)
		return bad("timerfd interval %ld.%09ld, expected 0.050000000",
			   (long)its.it_interval.tv_sec, its.it_interval.tv_nsec);
	if (read(tfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return bad("read timerfd: %s", strerror(errno));
	if (poll(&p, 1, 500) != 1)
		return bad("the timerfd did not expire within 500 ms");
	if (read(tfd, &n, sizeof(n)) != sizeof(n) || n < 1)
		return bad("timerfd read gave no expiration");
	return 0;
}

/* --- files ---------------------------------------------------------------- */

static int pipe_fds[2] = { -1, -1 };

static int pipe_nonblock_setup(void)
{
	if (pipe(pipe_fds))
		return bad("pipe: %s", strerror(errno));
	if (fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK))
		return bad("F_SETFL: %s", strerror(errno));
	return 0;
}

static int pipe_nonblock_verify(void)
{
	int r = fcntl(pipe_fds[0], F_GETFL), w = fcntl(pipe_fds[1], F_GETFL);
	char c;

	if (r < 0 || w < 0)
		return bad("F_GETFL: %s", strerror(errno));
	if (!(r & O_NONBLOCK))
		return bad("read end flags %#o lack O_NONBLOCK", r);
	if (w & O_NONBLOCK)
		return bad("write end flags %#o gained O_NONBLOCK", w);
	if (read(pipe_fds[0], &c, 1) != -1 || errno != EAGAIN)
		return bad("read on the empty non-blocking pipe did not give EAGAIN");
	return 0;
}

/* One process holds both ends of a pipe with unread data (sent once, not twice). */
static int pb_fds[2] = { -1, -1 };
static const char pb_data[] = "both ends held here";

static int pipe_both_ends_setup(void)
{
	if (pipe(pb_fds))
		return bad("pipe: %s", strerror(errno));
	if (write(pb_fds[1], pb_data, sizeof(pb_data)) != sizeof(pb_data))
		return bad("write: %s", strerror(errno));
	return 0;
}

static int pipe_both_ends_verify(void)
{
	char buf[sizeof(pb_data) + 16];
	int n;

	if (fcntl(pb_fds[0], F_SETFL, O_NONBLOCK))
		return bad("F_SETFL: %s", strerror(errno));
	n = read(pb_fds[0], buf, sizeof(buf));
	fcntl(pb_fds[0], F_SETFL, 0);
	if (n != sizeof(pb_data) || memcmp(buf, pb_data, n))
		return bad("read %d bytes, expected the %zu written", n, sizeof(pb_data));
	if (write(pb_fds[1], pb_data, sizeof(pb_data)) != sizeof(pb_data))
		return bad("write back: %s", strerror(errno));
	return 0;
}

static int fa_fds[2] = { -1, -1 };
static volatile sig_atomic_t fa_count;

static void on_fa(int sig)
{
	(void)sig;
	fa_count++;
}

static int fasync_owner_setup(void)
{
	struct sigaction sa = { .sa_handler = on_fa, .sa_flags = SA_RESTART };

	sigaction(SIGRTMIN + 1, &sa, NULL);
	if (pipe(fa_fds))
		return bad("pipe: %s", strerror(errno));
	if (fcntl(fa_fds[0], F_SETOWN, getpid()) || fcntl(fa_fds[0], F_SETSIG, SIGRTMIN + 1) ||
	    fcntl(fa_fds[0], F_SETFL, O_ASYNC | O_NONBLOCK))
		return bad("fcntl: %s", strerror(errno));
	return 0;
}

static int fasync_owner_verify(void)
{
	int fl = fcntl(fa_fds[0], F_GETFL), own = fcntl(fa_fds[0], F_GETOWN);
	int sig = fcntl(fa_fds[0], F_GETSIG);
	long before = fa_count;
	char c;
	int i;

	if (fl < 0 || !(fl & O_ASYNC))
		return bad("flags %#o lack O_ASYNC", fl);
	if (own != getpid())
		return bad("owner %d, expected %d", own, getpid());
	if (sig != SIGRTMIN + 1)
		return bad("F_GETSIG %d, expected %d", sig, SIGRTMIN + 1);
	if (write(fa_fds[1], "x", 1) != 1)
		return bad("write: %s", strerror(errno));
	for (i = 0; i < 50 && fa_count == before; i++)
		sleep_ms(10);
	if (read(fa_fds[0], &c, 1) != 1)
		return bad("read back: %s", strerror(errno));
	return fa_count != before ? 0 : bad("no SIGIO-style signal after a write");
}

static int op_fd = -1;
static struct stat op_st;

static int o_path_setup(void)
{
	char path[4096];

	scratch(path, sizeof(path), "d");
	if (mkdir(path, 0700) && errno != EEXIST)
		return bad("mkdir: %s", strerror(errno));
	op_fd = open(path, O_PATH | O_DIRECTORY);
	if (op_fd < 0 || fstat(op_fd, &op_st))
		return bad("open O_PATH: %s", strerror(errno));
	return 0;
}

static int o_path_verify(void)
{
	int fl = fcntl(op_fd, F_GETFL);
	struct stat st;

	if (fl < 0)
		return bad("fd %d: %s", op_fd, strerror(errno));
	if (!(fl & O_PATH))
		return bad("fd %d flags %#o lack O_PATH", op_fd, fl);
	if (fstat(op_fd, &st) || st.st_ino != op_st.st_ino || st.st_dev != op_st.st_dev)
		return bad("fd %d is another file now", op_fd);
	return 0;
}

static int lk_fd = -1;

static int lock_file(void)
{
	lk_fd = make_file("lock", 200, 1);
	return lk_fd < 0 ? bad("file: %s", strerror(errno)) : 0;
}

static int lock_reopen(void)
{
	char path[4096];

	scratch(path, sizeof(path), "lock");
	return open(path, O_RDWR);
}

static int flock_setup(void)
{
	if (lock_file())
		return 1;
	return flock(lk_fd, LOCK_EX) ? bad("flock: %s", strerror(errno)) : 0;
}

static int flock_child(void)
{
	int fd = lock_reopen();

	if (fd < 0)
		return bad("reopen: %s", strerror(errno));
	if (!flock(fd, LOCK_EX | LOCK_NB))
		return bad("another open file took LOCK_EX: the flock is gone");
	if (errno != EWOULDBLOCK)
		return bad("flock from the child: %s", strerror(errno));
	return 0;
}

static int flock_verify(void)
{
	return in_child(flock_child);
}

static pid_t lk_owner;

static int posix_lock_setup(void)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 50 };

	if (lock_file())
		return 1;
	return fcntl(lk_fd, F_SETLK, &fl) ? bad("F_SETLK: %s", strerror(errno)) : 0;
}

static int posix_lock_child(void)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	int fd = lock_reopen();

	if (fd < 0)
		return bad("reopen: %s", strerror(errno));
	if (fcntl(fd, F_GETLK, &fl))
		return bad("F_GETLK: %s", strerror(errno));
	if (fl.l_type != F_WRLCK || fl.l_start != 100 || fl.l_len != 50 || fl.l_pid != lk_owner)
		return bad("F_GETLK: type %d start %ld len %ld pid %d, expected write lock 100+50 "
			   "of pid %d", fl.l_type, (long)fl.l_start, (long)fl.l_len, fl.l_pid,
			   lk_owner);
	return 0;
}

static int posix_lock_verify(void)
{
	lk_owner = getpid();
	return in_child(posix_lock_child);
}

static int ofd_lock_setup(void)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };

	if (lock_file())
		return 1;
	return fcntl(lk_fd, F_OFD_SETLK, &fl) ? bad("F_OFD_SETLK: %s", strerror(errno)) : 0;
}

static int ofd_lock_verify(void)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
	int fd = lock_reopen(), r = 0;

	if (fd < 0)
		return bad("reopen: %s", strerror(errno));
	if (fcntl(fd, F_OFD_GETLK, &fl))
		r = bad("F_OFD_GETLK: %s", strerror(errno));
	else if (fl.l_type != F_WRLCK || fl.l_start != 0 || fl.l_len != 10)
		r = bad("F_OFD_GETLK: type %d start %ld len %ld, expected write lock 0+10",
			fl.l_type, (long)fl.l_start, (long)fl.l_len);
	close(fd);
	return r;
}

static int in_fd = -1, in_wd = -1, in_n;

static int inotify_setup(void)
{
	char path[4096];

	scratch(path, sizeof(path), "d");
	if (mkdir(path, 0700) && errno != EEXIST)
		return bad("mkdir: %s", strerror(errno));
	in_fd = inotify_init1(IN_NONBLOCK);
	if (in_fd < 0)
		return bad("inotify_init1: %s", strerror(errno));
	in_wd = inotify_add_watch(in_fd, path, IN_CREATE);
	return in_wd < 0 ? bad("inotify_add_watch: %s", strerror(errno)) : 0;
}

static int inotify_verify(void)
{
	char path[4096], name[32], buf[4096] __attribute__((aligned(8)));
	struct pollfd p = { .fd = in_fd, .events = POLLIN };
	struct inotify_event *ev = (void *)buf;
	int fd, r = 0;
	ssize_t n;

	snprintf(name, sizeof(name), "new%d", ++in_n);
	snprintf(path, sizeof(path), "%s.d/%s", base, name);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	if (fd < 0)
		return bad("create %s: %s", path, strerror(errno));
	close(fd);
	if (poll(&p, 1, 500) != 1)
		r = bad("no inotify event within 500 ms of creating %s", name);
	else if ((n = read(in_fd, buf, sizeof(buf))) < (ssize_t)sizeof(*ev))
		r = bad("read inotify: %s", strerror(errno));
	else if (ev->wd != in_wd || !(ev->mask & IN_CREATE) || strcmp(ev->name, name))
		r = bad("event wd %d mask %#x name '%s', expected wd %d IN_CREATE '%s'", ev->wd,
			ev->mask, ev->len ? ev->name : "", in_wd, name);
	unlink(path);
	return r;
}

static int mfd = -1;
static char *mfd_mem;

/* A memfd the process also maps (the memfd path ferry has), then sealed. */
static int memfd_seals_setup(void)
{
	mfd = memfd_create("objwork", MFD_ALLOW_SEALING);
	if (mfd < 0)
		return bad("memfd_create: %s", strerror(errno));
	if (ftruncate(mfd, psz))
		return bad("ftruncate: %s", strerror(errno));
	mfd_mem = mmap(NULL, psz, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (mfd_mem == MAP_FAILED)
		return bad("mmap: %s", strerror(errno));
	memcpy(mfd_mem, "sealed contents", 15);
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK))
		return bad("F_ADD_SEALS: %s", strerror(errno));
	return 0;
}

static int memfd_seals_verify(void)
{
	int s = fcntl(mfd, F_GET_SEALS);
	char b[16] = { 0 };

	if (s < 0)
		return bad("F_GET_SEALS on fd %d: %s; the fd is %s", mfd, strerror(errno),
			   fd_link(mfd));
	if (s != (F_SEAL_GROW | F_SEAL_SHRINK))
		return bad("seals %#x, expected %#x", s, F_SEAL_GROW | F_SEAL_SHRINK);
	if (pread(mfd, b, 15, 0) != 15 || memcmp(b, "sealed contents", 15) ||
	    memcmp(mfd_mem, "sealed contents", 15))
		return bad("memfd contents '%.15s', mapped '%.15s'", b, mfd_mem);
	if (!ftruncate(mfd, 2 * psz) || errno != EPERM)
		return bad("ftruncate on the sealed memfd did not give EPERM");
	mfd_mem[20] = 'm';
	if (pread(mfd, b, 1, 20) != 1 || b[0] != 'm')
		return bad("the mapping and the fd are no longer the same memfd");
	return 0;
}

/* A write-sealed memfd: its shared mapping read-only for good, a private one copied. */
static unsigned char *mfw_priv;

static int memfd_seal_write_setup(void)
{
	mfd = memfd_create("objwork-sw", MFD_ALLOW_SEALING);
	if (mfd < 0)
		return bad("memfd_create: %s", strerror(errno));
	if (ftruncate(mfd, 2 * psz) || pwrite(mfd, "sealed contents", 15, 0) != 15)
		return bad("ftruncate/pwrite: %s", strerror(errno));
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK))
		return bad("F_ADD_SEALS: %s", strerror(errno));
	mfd_mem = mmap(NULL, 2 * psz, PROT_READ, MAP_SHARED, mfd, 0);
	mfw_priv = mmap(NULL, 2 * psz, PROT_READ | PROT_WRITE, MAP_PRIVATE, mfd, 0);
	if (mfd_mem == MAP_FAILED || mfw_priv == MAP_FAILED)
		return bad("mmap: %s", strerror(errno));
	mfw_priv[psz] = 'p';
	return 0;
}

static int memfd_seal_write_verify(void)
{
	int s = fcntl(mfd, F_GET_SEALS);

	if (s != (F_SEAL_WRITE | F_SEAL_SHRINK))
		return bad("seals %#x, expected %#x", s, F_SEAL_WRITE | F_SEAL_SHRINK);
	if (memcmp(mfd_mem, "sealed contents", 15) || memcmp(mfw_priv, "sealed contents", 15) ||
	    mfw_priv[psz] != 'p' || mfd_mem[psz])
		return bad("contents '%.15s', private '%.15s' '%c'", mfd_mem, mfw_priv, mfw_priv[psz]);
	if (!mprotect(mfd_mem, 2 * psz, PROT_READ | PROT_WRITE))
		return bad("the write-sealed shared mapping could be made writable");
	if (pwrite(mfd, "x", 1, 0) != -1 || errno != EPERM)
		return bad("pwrite on the write-sealed memfd did not give EPERM");
	return 0;
}

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

/* A memfd sealed F_SEAL_FUTURE_WRITE while mapped writable (the map still writes). */
static int memfd_future_write_setup(void)
{
	mfd = memfd_create("objwork-fw", MFD_ALLOW_SEALING);
	if (mfd < 0)
		return bad("memfd_create: %s", strerror(errno));
	if (ftruncate(mfd, psz))
		return bad("ftruncate: %s", strerror(errno));
	mfd_mem = mmap(NULL, psz, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (mfd_mem == MAP_FAILED)
		return bad("mmap: %s", strerror(errno));
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE))
		return bad("F_ADD_SEALS: %s", strerror(errno));
	memcpy(mfd_mem, "still writable", 14);
	return 0;
}

static int memfd_future_write_verify(void)
{
	char b[16] = { 0 };

	if (fcntl(mfd, F_GET_SEALS) != F_SEAL_FUTURE_WRITE)
		return bad("seals %#x", fcntl(mfd, F_GET_SEALS));
	mfd_mem[20] = 'w';
	if (pread(mfd, b, 14, 0) != 14 || memcmp(b, "still writable", 14))
		return bad("memfd contents '%.14s'", b);
	return 0;
}

/* A memfd held only as an fd (no mapping, no sealing allowed). */
static int memfd_fd_setup(void)
{
	mfd = memfd_create("objwork", 0);
	if (mfd < 0)
		return bad("memfd_create: %s", strerror(errno));
	return write(mfd, "memfd contents", 14) == 14 ? 0 : bad("write: %s", strerror(errno));
}

static int memfd_fd_verify(void)
{
	int s = fcntl(mfd, F_GET_SEALS);
	char b[16] = { 0 };

	if (strncmp(fd_link(mfd), "/memfd:objwork", 14))
		return bad("fd %d is %s, expected /memfd:objwork", mfd, fd_link(mfd));
	if (s != F_SEAL_SEAL)
		return bad("F_GET_SEALS %d (%s), expected F_SEAL_SEAL", s,
			   s < 0 ? strerror(errno) : "seals");
	if (pread(mfd, b, 14, 0) != 14 || memcmp(b, "memfd contents", 14))
		return bad("memfd contents '%.14s'", b);
	return 0;
}

static int mt_fd = -1;
#define MT_TIME 1000000000L

static int file_mtime_setup(void)
{
	struct timespec ts[2] = { { MT_TIME, 0 }, { MT_TIME, 0 } };

	mt_fd = make_file("f", 100, 9);
	if (mt_fd < 0)
		return bad("file: %s", strerror(errno));
	return futimens(mt_fd, ts) ? bad("futimens: %s", strerror(errno)) : 0;
}

static int file_mtime_verify(void)
{
	unsigned char b[100];
	struct stat st;

	if (fstat(mt_fd, &st))
		return bad("fstat: %s", strerror(errno));
	if (st.st_mtim.tv_sec != MT_TIME || st.st_mtim.tv_nsec)
		return bad("mtime %ld.%09ld, expected %ld.000000000", (long)st.st_mtim.tv_sec,
			   st.st_mtim.tv_nsec, MT_TIME);
	if (st.st_size != 100 || pread(mt_fd, b, 100, 0) != 100)
		return bad("size %ld, expected 100", (long)st.st_size);
	if ((fcntl(mt_fd, F_GETFL) & O_ACCMODE) != O_RDWR)
		return bad("fd no longer O_RDWR");
	return check_pattern(b, 100, 9, "file");
}

static int ff_fd = -1;

static int fifo_setup(void)
{
	char path[4096];

	scratch(path, sizeof(path), "fifo");
	if (mkfifo(path, 0600))
		return bad("mkfifo: %s", strerror(errno));
	ff_fd = open(path, O_RDWR | O_NONBLOCK);
	if (ff_fd < 0)
		return bad("open fifo: %s", strerror(errno));
	return write(ff_fd, "fifo-data", 9) == 9 ? 0 : bad("write: %s", strerror(errno));
}

static int fifo_verify(void)
{
	char b[16] = { 0 };
	ssize_t n = read(ff_fd, b, sizeof(b));

	if (n != 9 || memcmp(b, "fifo-data", 9))
		return bad("read %zd bytes '%.*s' from the fifo, expected 'fifo-data'", n,
			   n > 0 ? (int)n : 0, b);
	return write(ff_fd, "fifo-data", 9) == 9 ? 0 : bad("write: %s", strerror(errno));
}

static int pty_m = -1, pty_s = -1;

static int pty_setup(void)
{
	struct termios t;
	char *name;

	pty_m = posix_openpt(O_RDWR | O_NOCTTY);
	if (pty_m < 0 || grantpt(pty_m) || unlockpt(pty_m) || !(name = ptsname(pty_m)))
		return bad("posix_openpt: %s", strerror(errno));
	pty_s = open(name, O_RDWR | O_NOCTTY);
	if (pty_s < 0)
		return bad("open %s: %s", name, strerror(errno));
	if (tcgetattr(pty_s, &t))
		return bad("tcgetattr: %s", strerror(errno));
	cfmakeraw(&t);
	return tcsetattr(pty_s, TCSANOW, &t) ? bad("tcsetattr: %s", strerror(errno)) : 0;
}

static int pty_verify(void)
{
	struct pollfd p = { .fd = pty_s, .events = POLLIN };
	struct termios t;
	char b[16] = { 0 };

	if (tcgetattr(pty_s, &t))
		return bad("tcgetattr on the slave: %s; master fd is %s, slave fd is %s",
			   strerror(errno), fd_link(pty_m), fd_link(pty_s));
	if (t.c_lflag & (ECHO | ICANON))
		return bad("slave lflag %#x: no longer raw", t.c_lflag);
	if (write(pty_m, "ping", 4) != 4)
		return bad("write on the master: %s", strerror(errno));
	if (poll(&p, 1, 500) != 1 || read(pty_s, b, sizeof(b)) != 4 || memcmp(b, "ping", 4))
		return bad("the slave did not read 'ping' (got '%s')", b);
	return 0;
}

static int pidfd = -1;

static int pidfd_setup(void)
{
	pidfd = syscall(SYS_pidfd_open, getpid(), 0);
	return pidfd < 0 ? bad("pidfd_open: %s", strerror(errno)) : 0;
}

static int pidfd_verify(void)
{
	char path[64], line[128];
	long pid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	f = fopen(path, "r");
	if (!f)
		return bad("fd %d: %s", pidfd, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Pid:", 4))
			pid = strtol(line + 4, NULL, 10);
	fclose(f);
	if (pid != getpid())
		return bad("pidfd %d refers to pid %ld, expected %d", pidfd, pid, getpid());
	if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0))
		return bad("pidfd_send_signal: %s", strerror(errno));
	return 0;
}

/* --- sockets -------------------------------------------------------------- */

static int so_fd = -1;
static struct sockaddr_in so_addr;

static int udp_socket(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(so_addr);

	so_fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (so_fd < 0 || bind(so_fd, (void *)&a, sizeof(a)) ||
	    getsockname(so_fd, (void *)&so_addr, &l))
		return bad("udp socket: %s", strerror(errno));
	return 0;
}

static int udp_same(void)
{
	struct sockaddr_in a;
	socklen_t l = sizeof(a);

	if (getsockname(so_fd, (void *)&a, &l))
		return bad("getsockname on fd %d: %s", so_fd, strerror(errno));
	if (a.sin_port != so_addr.sin_port || a.sin_addr.s_addr != so_addr.sin_addr.s_addr)
		return bad("bound to port %d, expected %d", ntohs(a.sin_port),
			   ntohs(so_addr.sin_port));
	return 0;
}

static int sock_opts_setup(void)
{
	int one = 1, tos = IPTOS_LOWDELAY;

	if (udp_socket())
		return 1;
	if (setsockopt(so_fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one)) ||
	    setsockopt(so_fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos)))
		return bad("setsockopt: %s", strerror(errno));
	return 0;
}

static int sock_opts_verify(void)
{
	int b = -1, tos = -1;
	socklen_t l = sizeof(int);

	if (udp_same())
		return 1;
	getsockopt(so_fd, SOL_SOCKET, SO_BROADCAST, &b, &l);
	l = sizeof(int);
	getsockopt(so_fd, IPPROTO_IP, IP_TOS, &tos, &l);
	if (b != 1 || tos != IPTOS_LOWDELAY)
		return bad("SO_BROADCAST %d IP_TOS %#x, expected 1 and %#x", b, tos,
			   IPTOS_LOWDELAY);
	return 0;
}

/*
 * A classic filter that passes datagrams of up to 4 bytes (the UDP header
 * is in the length it sees), locked (SO_LOCK_FILTER): read back instruction
 * by instruction, and it must still drop a longer datagram sent to itself.
 */
static struct sock_filter sf_prog[] = {
	BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
	BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 8 + 4, 0, 1),
	BPF_STMT(BPF_RET | BPF_K, 0),
	BPF_STMT(BPF_RET | BPF_K, 0xffff),
};

static int sock_filter_setup(void)
{
	struct sock_fprog prog = { .len = (sizeof(sf_prog) / sizeof(sf_prog[0])), .filter = sf_prog };
	int one = 1;

	if (udp_socket())
		return 1;
	if (setsockopt(so_fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) ||
	    setsockopt(so_fd, SOL_SOCKET, SO_LOCK_FILTER, &one, sizeof(one)))
		return bad("SO_ATTACH_FILTER, SO_LOCK_FILTER: %s", strerror(errno));
	return 0;
}

static int sock_filter_verify(void)
{
	struct sock_filter got[16];
	socklen_t l = 0;
	int locked = 0;
	char buf[32];
	ssize_t n;

	if (udp_same())
		return 1;
	if (getsockopt(so_fd, SOL_SOCKET, SO_GET_FILTER, NULL, &l))
		return bad("SO_GET_FILTER: %s", strerror(errno));
	if (l != (sizeof(sf_prog) / sizeof(sf_prog[0])))
		return bad("filter of %u instructions, expected %zu", (unsigned)l, (sizeof(sf_prog) / sizeof(sf_prog[0])));
	if (getsockopt(so_fd, SOL_SOCKET, SO_GET_FILTER, got, &l) ||
	    memcmp(got, sf_prog, sizeof(sf_prog)))
		return bad("the filter's instructions differ");
	l = sizeof(locked);
	if (getsockopt(so_fd, SOL_SOCKET, SO_LOCK_FILTER, &locked, &l) || !locked)
		return bad("the filter is not locked (SO_LOCK_FILTER)");
	if (!setsockopt(so_fd, SOL_SOCKET, SO_DETACH_FILTER, &locked, sizeof(locked)) ||
	    errno != EPERM)
		return bad("a locked filter could be detached");
	/* its work: the 10-byte datagram is dropped, the 3-byte one passes */
	if (sendto(so_fd, "0123456789", 10, 0, (void *)&so_addr, sizeof(so_addr)) != 10 ||
	    sendto(so_fd, "abc", 3, 0, (void *)&so_addr, sizeof(so_addr)) != 3)
		return bad("sendto: %s", strerror(errno));
	usleep(10000);
	n = recv(so_fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n != 3 || memcmp(buf, "abc", 3))
		return bad("received %zd bytes first, expected the 3 bytes \"abc\"", n);
	n = recv(so_fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n >= 0)
		return bad("the filter let a %zd-byte datagram through", n);
	return 0;
}

/* An eBPF socket filter (SO_ATTACH_BPF): refused by name. */
static int sock_ebpf_setup(void)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = -1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	union bpf_attr attr = {
		.prog_type = BPF_PROG_TYPE_SOCKET_FILTER,
		.insns = (uintptr_t)insns,
		.insn_cnt = (sizeof(insns) / sizeof(insns[0])),
		.license = (uintptr_t)"GPL",
	};
	int prog;

	if (udp_socket())
		return 1;
	prog = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
	if (prog < 0)
		return bad("BPF_PROG_LOAD: %s", strerror(errno));
	if (setsockopt(so_fd, SOL_SOCKET, SO_ATTACH_BPF, &prog, sizeof(prog)))
		return bad("SO_ATTACH_BPF: %s", strerror(errno));
	close(prog);
	return 0;
}

static int sock_ebpf_verify(void)
{
	socklen_t l = 0;

	if (udp_same())
		return 1;
	if (!getsockopt(so_fd, SOL_SOCKET, SO_GET_FILTER, NULL, &l) || errno != EACCES)
		return bad("SO_GET_FILTER does not say EACCES (an eBPF filter)");
	return 0;
}

static int sh_fd[2] = { -1, -1 };

static int shutdown_setup(void)
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sh_fd))
		return bad("socketpair: %s", strerror(errno));
	return shutdown(sh_fd[0], SHUT_WR) ? bad("shutdown: %s", strerror(errno)) : 0;
}

static int shutdown_verify(void)
{
	char c = 0;
	ssize_t n;

	n = recv(sh_fd[1], &c, 1, MSG_DONTWAIT);
	if (n != 0)
		return bad("recv on the peer gave %zd (%s), expected 0 (end of stream)", n,
			   n < 0 ? strerror(errno) : "data");
	n = send(sh_fd[0], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n != -1 || errno != EPIPE)
		return bad("send on the shut-down end gave %zd (%s), expected EPIPE", n,
			   n < 0 ? strerror(errno) : "sent");
	if (send(sh_fd[1], "y", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1)
		return bad("the other direction is closed too: %s", strerror(errno));
	if (recv(sh_fd[0], &c, 1, MSG_DONTWAIT) != 1 || c != 'y')
		return bad("the other direction lost its byte");
	return 0;
}

/* An fd in flight (SCM_RIGHTS) behind some data on a socketpair, not read yet. */
static int scm_fd[2] = { -1, -1 };

static int scm_rights_setup(void)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { "abc", 3 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	int fd = 0;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, scm_fd))
		return bad("socketpair: %s", strerror(errno));
	if (send(scm_fd[0], "hello", 5, 0) != 5)
		return bad("send: %s", strerror(errno));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(fd));
	return sendmsg(scm_fd[0], &mh, 0) == 3 ? 0 : bad("sendmsg: %s", strerror(errno));
}

static int scm_rights_verify(void)
{
	char buf[16], cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t n;

	/* peeked, not taken: the state stays for the next check */
	n = recvmsg(scm_fd[1], &mh, MSG_PEEK | MSG_DONTWAIT);
	if (n < 5 || memcmp(buf, "hello", 5))
		return bad("recvmsg peek gave %zd bytes", n);
	if (n == 8 && !mh.msg_controllen)
		return bad("8 bytes peeked, the fd sent with the last 3 is gone");
	return 0;
}

static int dq_rx = -1, dq_tx = -1;
static struct sockaddr_un dq_addr;
static const size_t dq_sizes[3] = { 10, 200, 3000 };

static int dq_send(void)
{
	char b[3000];
	int i;

	for (i = 0; i < 3; i++) {
		memset(b, 'a' + i, dq_sizes[i]);
		if (sendto(dq_tx, b, dq_sizes[i], 0, (void *)&dq_addr, sizeof(dq_addr)) !=
		    (ssize_t)dq_sizes[i])
			return bad("sendto: %s", strerror(errno));
	}
	return 0;
}

static int dgram_queue_setup(void)
{
	dq_addr.sun_family = AF_UNIX;
	snprintf(dq_addr.sun_path, sizeof(dq_addr.sun_path), "%s.sock", base);
	dq_rx = socket(AF_UNIX, SOCK_DGRAM, 0);
	dq_tx = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (dq_rx < 0 || dq_tx < 0 || bind(dq_rx, (void *)&dq_addr, sizeof(dq_addr)))
		return bad("unix dgram socket: %s", strerror(errno));
	return dq_send();
}

static int dgram_queue_verify(void)
{
	char b[4000];
	ssize_t n;
	int i;

	for (i = 0; i < 3; i++) {
		n = recv(dq_rx, b, sizeof(b), MSG_DONTWAIT);
		if (n != (ssize_t)dq_sizes[i])
			return bad("datagram %d: %zd bytes (%s), expected %zu", i + 1, n,
				   n < 0 ? strerror(errno) : "size", dq_sizes[i]);
		if (b[0] != 'a' + i || b[n - 1] != 'a' + i)
			return bad("datagram %d holds '%c', expected '%c'", i + 1, b[0], 'a' + i);
	}
	n = recv(dq_rx, b, sizeof(b), MSG_DONTWAIT);
	if (n >= 0)
		return bad("a fourth datagram of %zd bytes", n);
	return dq_send();
}

/* --- System V IPC ----------------------------------------------------------- */

static int shm_id = -1, sem_id = -1, msg_id = -1;
static unsigned char *shm_mem;

static void on_term(int sig)
{
	(void)sig;
	if (sem_id >= 0)
		semctl(sem_id, 0, IPC_RMID);
	if (msg_id >= 0)
		msgctl(msg_id, IPC_RMID, NULL);
	_exit(0);
}

static int sysv_shm_setup(void)
{
	shm_id = shmget(IPC_PRIVATE, 2 * psz, IPC_CREAT | 0600);
	if (shm_id < 0)
		return bad("shmget: %s", strerror(errno));
	shm_mem = shmat(shm_id, NULL, 0);
	if (shm_mem == (void *)-1)
		return bad("shmat: %s", strerror(errno));
	shmctl(shm_id, IPC_RMID, NULL);	/* gone with its last attachment */
	for (long i = 0; i < 2 * psz; i++)
		shm_mem[i] = (i * 7 + 13) & 0xff;
	return 0;
}

static int sysv_shm_verify(void)
{
	struct shmid_ds ds;

	if (shmctl(shm_id, IPC_STAT, &ds))
		return bad("shmctl(%d): %s", shm_id, strerror(errno));
	if (ds.shm_segsz != (size_t)(2 * psz) || ds.shm_nattch != 1)
		return bad("segment %d: size %zu nattch %lu, expected %ld and 1", shm_id,
			   ds.shm_segsz, (unsigned long)ds.shm_nattch, 2 * psz);
	return check_pattern(shm_mem, 2 * psz, 13, "shm");
}

static int sysv_sem_setup(void)
{
	unsigned short v[3] = { 5, 7, 9 };

	sem_id = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
	if (sem_id < 0)
		return bad("semget: %s", strerror(errno));
	if (semctl(sem_id, 0, SETALL, v))
		return bad("SETALL: %s", strerror(errno));
	say("ipc sem %d\n", sem_id);
	return 0;
}

static int sysv_sem_verify(void)
{
	unsigned short v[3] = { 0 };

	if (semctl(sem_id, 0, GETALL, v))
		return bad("GETALL on set %d: %s", sem_id, strerror(errno));
	if (v[0] != 5 || v[1] != 7 || v[2] != 9)
		return bad("semaphores %u %u %u, expected 5 7 9", v[0], v[1], v[2]);
	return 0;
}

/* Held, never used: no pid of ours on the set or the queue for the kernel to show. */
static int sysv_sem_held_setup(void)
{
	sem_id = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
	if (sem_id < 0)
		return bad("semget: %s", strerror(errno));
	say("ipc sem %d\n", sem_id);
	return 0;
}

static int sysv_sem_held_verify(void)
{
	struct semid_ds ds;

	return semctl(sem_id, 0, IPC_STAT, &ds) || ds.sem_nsems != 2 ?
		bad("set %d: %s", sem_id, strerror(errno)) : 0;
}

static int sysv_msg_held_setup(void)
{
	msg_id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	if (msg_id < 0)
		return bad("msgget: %s", strerror(errno));
	say("ipc msg %d\n", msg_id);
	return 0;
}

static int sysv_msg_held_verify(void)
{
	struct msqid_ds ds;

	return msgctl(msg_id, IPC_STAT, &ds) ? bad("queue %d: %s", msg_id, strerror(errno)) : 0;
}

struct objmsg {
	long type;
	char text[8];
};

static int msg_send(void)
{
	struct objmsg a = { 1, "one" }, b = { 2, "two" };

	if (msgsnd(msg_id, &a, 4, IPC_NOWAIT) || msgsnd(msg_id, &b, 4, IPC_NOWAIT))
		return bad("msgsnd: %s", strerror(errno));
	return 0;
}

static int sysv_msg_setup(void)
{
	msg_id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	if (msg_id < 0)
		return bad("msgget: %s", strerror(errno));
	say("ipc msg %d\n", msg_id);
	return msg_send();
}

static int sysv_msg_verify(void)
{
	struct objmsg m;
	struct msqid_ds ds;
	int i;

	if (msgctl(msg_id, IPC_STAT, &ds))
		return bad("msgctl(%d): %s", msg_id, strerror(errno));
	if (ds.msg_qnum != 2)
		return bad("queue %d holds %lu messages, expected 2", msg_id,
			   (unsigned long)ds.msg_qnum);
	for (i = 1; i <= 2; i++) {
		if (msgrcv(msg_id, &m, sizeof(m.text), 0, IPC_NOWAIT) != 4)
			return bad("msgrcv: %s", strerror(errno));
		if (m.type != i || strcmp(m.text, i == 1 ? "one" : "two"))
			return bad("message %d: type %ld '%s'", i, m.type, m.text);
	}
	return msg_send();
}

/* --- main ----------------------------------------------------------------- */

#define MODE(n) { #n, n##_setup, n##_verify }

static const struct mode {
	const char *name;
	int (*setup)(void);
	int (*verify)(void);
} modes[] = {
	MODE(prot_none),
	MODE(pipe_nonblock),
	MODE(pipe_both_ends),
	MODE(seccomp_filter),
	MODE(caps),
	MODE(flock),
	MODE(posix_lock),
	MODE(ofd_lock),
	MODE(fasync_owner),
	MODE(o_path),
	MODE(sched),
	MODE(oom_score_adj),
	MODE(pdeathsig),
	MODE(pdeathsig_child),
	MODE(subreaper),
	MODE(thread_creds),
	MODE(many_groups),
	MODE(fsuid),
	MODE(nondumpable),
	MODE(thp_disable),
	MODE(membarrier),
	MODE(cgroup),
	MODE(zombie),
	MODE(traced_child),
	MODE(deleted_cwd),
	MODE(chroot),
	MODE(proc_fd),
	MODE(ns_fd),
	MODE(raw_socket),
	MODE(unix_removed),
	{ "cgroup_gone", cgroup_setup, cgroup_verify },	/* the test removes it */
	MODE(cgroup_threads),
	MODE(robust_list),
	MODE(posix_timer),
	MODE(timerfd),
	MODE(inotify),
	MODE(memfd_seals),
	MODE(memfd_fd),
	MODE(file_mtime),
	MODE(mprotect_filemap),
	MODE(guard),
	MODE(sock_opts),
	MODE(sock_filter),
	MODE(sock_ebpf),
	MODE(shutdown),
	MODE(scm_rights),
	MODE(dgram_queue),
	MODE(pty),
	MODE(fifo),
	MODE(sysv_shm),
	MODE(sysv_sem),
	MODE(sysv_msg),
	MODE(sysv_sem_held),
	MODE(sysv_msg_held),
	MODE(pidfd),
	MODE(deleted_map),
	MODE(shm_rounds),
	MODE(memfd_private),
	MODE(untracked),
	MODE(droppable),
	MODE(mlock),
	MODE(mlock_onfault),
	MODE(mlockall_future),
	MODE(mlockall_onfault),
	MODE(dontfork),
	MODE(wipeonfork),
	MODE(hugepage),
	MODE(nohugepage),
	MODE(dontdump),
	MODE(mergeable),
	MODE(no_vdso),
	MODE(merge_any),
	MODE(memfd_seal_write),
	MODE(memfd_future_write),
};

static void usage(void)
{
	size_t i;

	fprintf(stderr, "usage: objwork MODE --out FILE --pidfile FILE --check FILE\nmodes:");
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		fprintf(stderr, " %s", modes[i].name);
	fprintf(stderr, "\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const struct mode *m = NULL;
	size_t i;
	int a;

	if (argc < 2)
		usage();
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (!strcmp(argv[1], modes[i].name))
			m = &modes[i];
	if (!m)
		usage();
	for (a = 2; a + 1 < argc; a += 2) {
		if (!strcmp(argv[a], "--out"))
			base = argv[a + 1];
		else if (!strcmp(argv[a], "--pidfile"))
			pidfile = argv[a + 1];
		else if (!strcmp(argv[a], "--check"))
			check = argv[a + 1];
		else
			usage();
	}
	if (a != argc || !base || !pidfile || !check)
		usage();
	out_fd = open(base, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (out_fd < 0) {
		perror(base);
		return 1;
	}
	psz = sysconf(_SC_PAGESIZE);
	signal(SIGTERM, on_term);

	if (m->setup()) {
		say("skip %s: %.200s\n", m->name, why);
		return 0;
	}
	say("ready\n");
	if (write_pidfile(pidfile)) {
		say("FAIL cannot write %s\n", pidfile);
		return 1;
	}
	for (;;) {
		sleep_ms(50);
		if (access(check, F_OK))
			continue;
		why[0] = 0;
		if (m->verify())
			say("bad %s: %.200s\n", m->name, why);
		else
			say("ok %s\n", m->name);
		unlink(check);
	}
}
