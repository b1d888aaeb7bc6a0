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
 * --out (FILE.f, FILE.d, ...). The System V modes that travel also write
 * "ipc sem|msg|shm ID" before "ready" (migrate removes the object once the
 * process is gone, the test checks it; "ipc sem_taken ID": the test makes
 * another set with its id, the restore must fail).
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
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
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

#include <linux/aio_abi.h>
#include <linux/keyctl.h>
#include <mqueue.h>
#include <linux/netlink.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/eventfd.h>
#include <sys/personality.h>
#include <sys/time.h>
#include <sys/signalfd.h>
#include <time.h>

#include "wl.h"

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#define PR_GET_MEMORY_MERGE 68
#endif
#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
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

/* The value of "Key:" in the status file @path, or -1. */
static long status_field_at(const char *path, const char *key)
{
	char line[256];
	size_t kl = strlen(key);
	long v = -1;
	FILE *f = fopen(path, "r");

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

/*
 * A process outside the tree (a grandchild, reparented once its parent
 * exits) that holds every fd open now, until this process is gone.
 */
static int outside_holder(void)
{
	pid_t me = getpid(), p;
	int st;

	p = fork();
	if (p < 0)
		return bad("fork: %s", strerror(errno));
	if (!p) {
		if (fork())
			_exit(0);
		while (!kill(me, 0))
			usleep(100000);
		_exit(0);
	}
	if (waitpid(p, &st, 0) != p || !WIFEXITED(st))
		return bad("the outside holder's parent did not exit");
	return 0;
}

/*
 * Mappings of deleted files: DIR.del mapped shared twice (a write through
 * one is read through the other: one file) with a page written after the
 * unlink, DIR.delp mapped privately with one page copied-on-write.
 */
static unsigned char *dm_mem, *dm_alias, *dm_priv;
static int dm_n;

static int deleted_map_setup(void)
{
	char path[4096];
	int fd = make_file("del", 2 * psz, 11), fp = make_file("delp", 2 * psz, 12);

	if (fd < 0 || fp < 0)
		return bad("file: %s", strerror(errno));
	dm_mem = mmap(NULL, 2 * psz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	dm_alias = mmap(NULL, psz, PROT_READ, MAP_SHARED, fd, psz);
	dm_priv = mmap(NULL, 2 * psz, PROT_READ | PROT_WRITE, MAP_PRIVATE, fp, 0);
	close(fd);
	close(fp);
	if (dm_mem == MAP_FAILED || dm_alias == MAP_FAILED || dm_priv == MAP_FAILED)
		return bad("mmap: %s", strerror(errno));
	scratch(path, sizeof(path), "del");
	if (unlink(path))
		return bad("unlink: %s", strerror(errno));
	scratch(path, sizeof(path), "delp");
	if (unlink(path))
		return bad("unlink: %s", strerror(errno));
	memset(dm_mem, 0x5a, 64);	/* written after the unlink */
	memset(dm_priv + psz, 0xa5, 64);	/* a private copy of page 1 */
	return 0;
}

static int deleted_map_verify(void)
{
	char perms[8], link[96], target[4096];
	unsigned char z[64];
	struct stat st;
	ssize_t n;

	maps_perms(dm_mem, perms);
	if (strcmp(perms, "rw-s"))
		return bad("mapping at %p is %s, expected rw-s", (void *)dm_mem, perms);
	maps_perms(dm_priv, perms);
	if (strcmp(perms, "rw-p"))
		return bad("mapping at %p is %s, expected rw-p", (void *)dm_priv, perms);
	memset(z, 0x5a, 64);
	if (memcmp(dm_mem, z, 64))
		return bad("the shared deleted file's page 0 lost its write");
	if (check_pattern(dm_mem + 64, 2 * psz - 64 - 8, 11 + 64 * 7, "deleted file page"))
		return 1;
	if (memcmp(dm_mem + 2 * psz - 8, dm_alias + psz - 8, 8))
		return bad("the shared deleted file's two mappings differ");
	/* one file: a write through dm_mem shows through dm_alias */
	dm_n++;
	memcpy(dm_mem + 2 * psz - 8, &dm_n, sizeof(dm_n));
	if (memcmp(dm_alias + psz - 8, &dm_n, sizeof(dm_n)))
		return bad("a write to the shared deleted file does not show through its other mapping");
	if (check_pattern(dm_priv, psz, 12, "private deleted file page 0"))
		return 1;
	memset(z, 0xa5, 64);
	if (memcmp(dm_priv + psz, z, 64))
		return bad("the private deleted file's copied page lost its write");
	if (check_pattern(dm_priv + psz + 64, psz - 64, 12 + 64 * 7, "private deleted file page 1"))
		return 1;
	/* the mapped file is a deleted one still (no path leads to it) */
	snprintf(link, sizeof(link), "/proc/self/map_files/%lx-%lx", (unsigned long)dm_mem,
		 (unsigned long)dm_mem + 2 * psz);
	n = readlink(link, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = 0;
	if (n < 10 || strcmp(target + n - 10, " (deleted)") || fstatat(AT_FDCWD, link, &st, 0) ||
	    st.st_nlink)
		return bad("the shared mapping is of '%s', not of a deleted file", target);
	return 0;
}

/*
 * A deleted file mapped shared and held open as an fd (at offset 100): one
 * file, so a write through either shows through the other.
 */
static int dmf_fd = -1, dmf_n;

static int deleted_map_fd_setup(void)
{
	char path[4096];

	dmf_fd = make_file("del", 2 * psz, 11);
	if (dmf_fd < 0)
		return bad("file: %s", strerror(errno));
	dm_mem = mmap(NULL, 2 * psz, PROT_READ | PROT_WRITE, MAP_SHARED, dmf_fd, 0);
	if (dm_mem == MAP_FAILED)
		return bad("mmap: %s", strerror(errno));
	scratch(path, sizeof(path), "del");
	if (unlink(path))
		return bad("unlink: %s", strerror(errno));
	return lseek(dmf_fd, 100, SEEK_SET) == 100 ? 0 : bad("lseek: %s", strerror(errno));
}

static int deleted_map_fd_verify(void)
{
	struct stat st;
	int v = 0;

	if (fstat(dmf_fd, &st) || st.st_nlink || st.st_size != 2 * psz)
		return bad("the fd's file: nlink %ld size %ld, expected a deleted file of %ld",
			   (long)st.st_nlink, (long)st.st_size, 2 * psz);
	if (lseek(dmf_fd, 0, SEEK_CUR) != 100)
		return bad("the fd's offset is %ld, expected 100", (long)lseek(dmf_fd, 0, SEEK_CUR));
	if (check_pattern(dm_mem + 16, 2 * psz - 16, 11 + 16 * 7, "deleted file page"))
		return 1;
	dmf_n++;
	if (pwrite(dmf_fd, &dmf_n, sizeof(dmf_n), 0) != sizeof(dmf_n) ||
	    memcmp(dm_mem, &dmf_n, sizeof(dmf_n)))
		return bad("a write through the fd does not show in the mapping: another file");
	memcpy(dm_mem + 8, &dmf_n, sizeof(dmf_n));
	if (pread(dmf_fd, &v, sizeof(v), 8) != sizeof(v) || v != dmf_n)
		return bad("a write to the mapping does not show through the fd: another file");
	return 0;
}

/* A deleted file mapped shared that a process outside the tree maps too. */
static int deleted_map_outside_setup(void)
{
	return deleted_map_fd_setup() || (close(dmf_fd), outside_holder());
}

static int deleted_map_outside_verify(void)
{
	return check_pattern(dm_mem + 16, 2 * psz - 16, 11 + 16 * 7, "deleted file page");
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

/*
 * Seccomp. Every filter answers one syscall with an errno of its own and
 * allows the rest; the checks read Seccomp:/Seccomp_filters: of each thread
 * and make the syscalls, so a filter dropped, added twice or put back in
 * another order is seen.
 */
#ifdef OUR_AUDIT_ARCH
#define SC_DENY(nr, err)							\
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),	\
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, OUR_AUDIT_ARCH, 0, 3),		\
	BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),	\
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1),			\
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (err)),			\
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#endif

/* Install a filter answering @nr with @err (@ret: that action instead), with @flags. */
static int sc_install(int nr, unsigned int err, unsigned int ret, unsigned int flags)
{
#ifdef OUR_AUDIT_ARCH
	struct sock_filter f[] = { SC_DENY(nr, err) };
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };
	long r;

	if (ret)
		f[4].k = ret;
	r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
	if (r < 0)
		return bad("seccomp(SET_MODE_FILTER, 0x%x): %s", flags, strerror(errno));
	/* TSYNC: the thread whose filters are not the caller's own (an ancestor) */
	if (r > 0 && (flags & SECCOMP_FILTER_FLAG_TSYNC))
		return bad("seccomp TSYNC: thread %ld does not share our filters", r);
	return (flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) ? (int)r : 0;
#else
	(void)nr, (void)err, (void)ret, (void)flags;
	return bad("no audit arch for this machine");
#endif
}

/* The syscall @nr fails with @err here; getpid and getuid (allowed) work. */
static int sc_denied(int nr, int err)
{
	long r;

	errno = 0;
	r = syscall(nr);
	if (r != -1 || errno != err)
		return bad("syscall %d returned %ld errno %d, expected -1 errno %d", nr, r, errno,
			   err);
	if (syscall(SYS_getpid) != getpid() || syscall(SYS_getuid) != (long)getuid())
		return bad("allowed syscalls fail: %s", strerror(errno));
	return 0;
}

/* Thread @tid (0: the process) is in seccomp @mode with @nr filters. */
static int sc_status(pid_t tid, long mode, long nr)
{
	char path[64];
	long m, n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid ? tid : getpid());
	m = status_field_at(path, "Seccomp");
	n = status_field_at(path, "Seccomp_filters");
	if (m != mode || n != nr)
		return bad("thread %d: Seccomp: %ld Seccomp_filters: %ld, expected %ld and %ld",
			   tid, m, n, mode, nr);
	return 0;
}

static int seccomp_filter_setup(void)
{
	/* no_new_privs: the filter needs it (or CAP_SYS_ADMIN); it travels as it is */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return bad("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	return sc_install(SYS_getppid, 42, 0, 0);
}

static int seccomp_filter_verify(void)
{
	return sc_status(0, 2, 1) || sc_denied(SYS_getppid, 42);
}

/*
 * Two stacked filters answering getppid with different errnos: the newest
 * one's wins (same action, so the newest filter's data), so an order
 * changed by the restore shows. The older one also answers getpgrp; the
 * newer one was installed with SECCOMP_FILTER_FLAG_LOG.
 */
static int seccomp_stacked_setup(void)
{
	return sc_install(SYS_getppid, 42, 0, 0) || sc_install(SYS_getpgrp, 44, 0, 0) ||
	       sc_install(SYS_getppid, 43, 0, SECCOMP_FILTER_FLAG_LOG);
}

static int seccomp_stacked_verify(void)
{
	return sc_status(0, 2, 3) || sc_denied(SYS_getppid, 43) || sc_denied(SYS_getpgrp, 44);
}

/*
 * Filters synchronised to every thread (TSYNC) of a process with two
 * more threads, each of which checks them on its own; one answers
 * setgroups, which the restorer calls in every thread after them. Each check installs
 * one more allow-all filter with TSYNC: that only works while every
 * thread's chain is the caller's (the same filters, shared), as it was.
 */
#define SC_THREADS 2
static pid_t sc_tids[SC_THREADS];
static int sc_req[SC_THREADS][2], sc_ans[SC_THREADS][2];
static long sc_want = 2;	/* filters each thread must have */

static void *sc_thread(void *arg)
{
	long i = (long)arg;
	char c;

	sc_tids[i] = syscall(SYS_gettid);
	for (;;) {
		if (read(sc_req[i][0], &c, 1) != 1)
			continue;
		why[0] = 0;
		c = sc_denied(SYS_getppid, 42) ? 'b' : 'o';
		if (write(sc_ans[i][1], &c, 1) != 1)
			break;
	}
	return NULL;
}

static int seccomp_tsync_setup(void)
{
	pthread_t t;
	long i;

	for (i = 0; i < SC_THREADS; i++) {
		if (pipe(sc_req[i]) || pipe(sc_ans[i]))
			return bad("pipe: %s", strerror(errno));
		errno = pthread_create(&t, NULL, sc_thread, (void *)i);
		if (errno)
			return bad("pthread_create: %s", strerror(errno));
	}
	for (i = 0; i < SC_THREADS; i++)
		while (!__atomic_load_n(&sc_tids[i], __ATOMIC_ACQUIRE))
			sleep_ms(1);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return bad("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	/* the restorer's own setgroups must pass it (the tracer suspends seccomp) */
	return sc_install(SYS_getppid, 42, 0, SECCOMP_FILTER_FLAG_TSYNC) ||
	       sc_install(SYS_setgroups, EPERM, 0, SECCOMP_FILTER_FLAG_TSYNC);
}

static int seccomp_tsync_verify(void)
{
	long i;
	char c = 'c';

	if (sc_status(0, 2, sc_want) || sc_denied(SYS_getppid, 42) ||
	    sc_denied(SYS_setgroups, EPERM))
		return 1;
	for (i = 0; i < SC_THREADS; i++) {
		if (sc_status(sc_tids[i], 2, sc_want))
			return 1;
		if (write(sc_req[i][1], &c, 1) != 1 || read(sc_ans[i][0], &c, 1) != 1)
			return bad("thread %d does not answer", sc_tids[i]);
		if (c != 'o')
			return bad("thread %d: %s", sc_tids[i], why);
	}
	/* an unknown syscall number: allows everything */
	if (sc_install(-1, 1, SECCOMP_RET_ALLOW, SECCOMP_FILTER_FLAG_TSYNC))
		return 1;
	sc_want++;
	return 0;
}

/*
 * Strict mode on a thread: it may only read, write, exit and rt_sigreturn.
 * It echoes what comes on a pipe; the check sees its Seccomp: 1.
 */
static void *strict_thread(void *arg)
{
	sigset_t all;
	char c;

	(void)arg;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);	/* no handler may run here */
	sc_tids[0] = syscall(SYS_gettid);
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0)) {
		sc_tids[0] = -1;
		return NULL;
	}
	for (;;)
		if (read(sc_req[0][0], &c, 1) == 1 && write(sc_ans[0][1], &c, 1) != 1)
			syscall(SYS_exit, 1);
}

static int seccomp_strict_setup(void)
{
	pthread_t t;

	if (pipe(sc_req[0]) || pipe(sc_ans[0]))
		return bad("pipe: %s", strerror(errno));
	errno = pthread_create(&t, NULL, strict_thread, NULL);
	if (errno)
		return bad("pthread_create: %s", strerror(errno));
	while (!__atomic_load_n(&sc_tids[0], __ATOMIC_ACQUIRE))
		sleep_ms(1);
	if (sc_tids[0] < 0)
		return bad("PR_SET_SECCOMP strict: failed");
	sleep_ms(50);	/* in its read */
	return 0;
}

static int seccomp_strict_verify(void)
{
	struct pollfd p = { .fd = sc_ans[0][0], .events = POLLIN };
	char c = 's';

	if (sc_status(sc_tids[0], 1, 0) || sc_status(0, 0, 0))
		return 1;
	if (write(sc_req[0][1], &c, 1) != 1 || poll(&p, 1, 10000) != 1 ||
	    read(sc_ans[0][0], &c, 1) != 1 || c != 's')
		return bad("the strict thread does not answer");
	return 0;
}

/*
 * A filter shared by two threads but not the leader: one thread installs
 * it, then makes the other (which inherits it). Refused: the restore would
 * give each its own copy.
 */
static void *subset_child(void *arg)
{
	(void)arg;
	sc_tids[1] = syscall(SYS_gettid);
	for (;;)
		pause();
	return NULL;
}

static void *subset_thread(void *arg)
{
	pthread_t t;

	(void)arg;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || sc_install(SYS_getppid, 42, 0, 0) ||
	    pthread_create(&t, NULL, subset_child, NULL))
		sc_tids[1] = -1;
	sc_tids[0] = syscall(SYS_gettid);
	for (;;)
		pause();
	return NULL;
}

static int seccomp_subset_setup(void)
{
	pthread_t t;

	errno = pthread_create(&t, NULL, subset_thread, NULL);
	if (errno)
		return bad("pthread_create: %s", strerror(errno));
	while (!__atomic_load_n(&sc_tids[0], __ATOMIC_ACQUIRE) ||
	       !__atomic_load_n(&sc_tids[1], __ATOMIC_ACQUIRE))
		sleep_ms(1);
	return sc_tids[1] < 0 ? bad("the thread cannot install its filter") : 0;
}

static int seccomp_subset_verify(void)
{
	return sc_status(0, 0, 0) || sc_status(sc_tids[0], 2, 1) || sc_status(sc_tids[1], 2, 1);
}

/*
 * A filter that hands getppid to a listener (SECCOMP_RET_USER_NOTIF). The
 * listener fd is closed (it would be refused as an fd anyway): with none,
 * the kernel answers ENOSYS; ferry must still refuse the filter.
 */
static int seccomp_notif_setup(void)
{
	int fd;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return bad("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	fd = sc_install(SYS_getppid, 0, SECCOMP_RET_USER_NOTIF,
			SECCOMP_FILTER_FLAG_NEW_LISTENER);
	if (fd <= 0)
		return fd < 0 ? 1 : bad("no listener fd");
	close(fd);
	return 0;
}

static int seccomp_notif_verify(void)
{
	return sc_status(0, 2, 1) || sc_denied(SYS_getppid, ENOSYS);
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
#define PT_NS	20000000L	/* the periodic timers' interval */

static int pt_id, pt_long_id;	/* SIGEV_SIGNAL every 20 ms; SIGEV_NONE, one hour, one-shot */
static volatile sig_atomic_t pt_count, pt_badval, pt_badid, pt_badtid;
static volatile pid_t pt_want_tid;	/* posix_timer_thread: the thread it must reach */
static long pt_left = -1;	/* ns the one-hour timer had left at the last check */
#define PT_MANY	100		/* more timers than /proc/PID/timers gives in one read */
static int pt_many[PT_MANY];

static long its_ns(const struct timespec *t)
{
	return t->tv_sec * 1000000000L + t->tv_nsec;
}

static void on_pt(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_value.sival_int != PT_VALUE)
		pt_badval++;
	if (si->si_code != SI_TIMER || si->si_timerid != pt_id)
		pt_badid++;
	if (pt_want_tid && gettid() != pt_want_tid)
		pt_badtid++;
	pt_count++;
}

/* A timer of @clock on signal @sig (with @notify, to thread @tid), armed every 20 ms. */
static int pt_make(int clock, int sig, int notify, pid_t tid, int *id)
{
	struct sigaction sa = { .sa_sigaction = on_pt, .sa_flags = SA_SIGINFO | SA_RESTART };
	struct itimerspec its = { { 0, PT_NS }, { 0, PT_NS } };
	struct sigevent sev = { 0 };

	sigaction(sig, &sa, NULL);
	sev.sigev_notify = notify;
	sev.sigev_signo = sig;
	sev.sigev_value.sival_int = PT_VALUE;
	sev._sigev_un._tid = tid;
	if (syscall(SYS_timer_create, clock, &sev, id))
		return bad("timer_create: %s", strerror(errno));
	if (syscall(SYS_timer_settime, *id, 0, &its, NULL))
		return bad("timer_settime: %s", strerror(errno));
	return 0;
}

static int posix_timer_setup(void)
{
	struct itimerspec its = { { 0, 0 }, { 3600, 0 } };
	struct sigevent sev = { .sigev_notify = SIGEV_NONE };
	int i;

	if (syscall(SYS_timer_create, CLOCK_REALTIME, &sev, &pt_long_id))
		return bad("timer_create: %s", strerror(errno));
	if (syscall(SYS_timer_settime, pt_long_id, 0, &its, NULL))
		return bad("timer_settime: %s", strerror(errno));
	if (pt_make(CLOCK_MONOTONIC, SIGRTMIN + 2, SIGEV_SIGNAL, 0, &pt_id))
		return 1;
	for (i = 0; i < PT_MANY; i++) {
		its.it_value.tv_sec = 7200 + i;	/* each its own time left */
		if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &pt_many[i]) ||
		    syscall(SYS_timer_settime, pt_many[i], 0, &its, NULL))
			return bad("timer %d: %s", i, strerror(errno));
	}
	return 0;
}

/* Timer @id exists (the same id), runs every 20 ms, has at most 20 ms left. */
static int pt_check_timer(int id)
{
	struct itimerspec its;

	if (syscall(SYS_timer_gettime, id, &its))
		return bad("timer_gettime(%d): %s", id, strerror(errno));
	if (its_ns(&its.it_interval) != PT_NS)
		return bad("timer %d interval %ld ns, expected %ld", id, its_ns(&its.it_interval),
			   PT_NS);
	if (its_ns(&its.it_value) <= 0 || its_ns(&its.it_value) > PT_NS)
		return bad("timer %d has %ld ns left, interval %ld", id, its_ns(&its.it_value),
			   PT_NS);
	return 0;
}

/* The periodic signal keeps coming, each with the timer's id and value (and thread). */
static int pt_check_signals(void)
{
	long before = pt_count;

	sleep_ms(300);
	if (pt_count - before < 3)
		return bad("%ld timer signals in 300 ms", (long)(pt_count - before));
	if (pt_badval || pt_badid || pt_badtid)
		return bad("timer signals with a wrong si_value (%d), timer id (%d), thread (%d)",
			   (int)pt_badval, (int)pt_badid, (int)pt_badtid);
	return 0;
}

static int posix_timer_verify(void)
{
	struct itimerspec its;
	long left;

	if (pt_check_timer(pt_id))
		return 1;
	/* the one-hour timer: still there, never more left than at the last check */
	if (syscall(SYS_timer_gettime, pt_long_id, &its))
		return bad("timer_gettime(%d): %s", pt_long_id, strerror(errno));
	left = its_ns(&its.it_value);
	if (left <= 0 || left > 3600000000000L || (pt_left >= 0 && left > pt_left) ||
	    its_ns(&its.it_interval))
		return bad("one-shot timer %d: %ld ns left (%ld at the last check), interval %ld",
			   pt_long_id, left, pt_left, its_ns(&its.it_interval));
	pt_left = left;
	for (left = 0; left < PT_MANY; left++) {
		long l;

		if (syscall(SYS_timer_gettime, pt_many[left], &its))
			return bad("timer_gettime(%d), %ld of the %d more: %s", pt_many[left], left,
				   PT_MANY, strerror(errno));
		l = its_ns(&its.it_value);
		if (l <= (7200 + left - 600) * 1000000000L || l > (7200 + left) * 1000000000L)
			return bad("timer %d: %ld ns left, set to %ld s", pt_many[left], l, 7200 + left);
	}
	return pt_check_signals();
}

/*
 * Its signal blocked, a 100 ms timer keeps one signal pending (later
 * expiries are overruns): after a restore it must still be one signal, the
 * timer's own, not a copy plus a new one.
 */
#define PTP_NS	100000000L

static int posix_timer_pending_setup(void)
{
	struct itimerspec its = { { 0, PTP_NS }, { 0, PTP_NS } };
	struct sigevent sev = { 0 };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 3);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGRTMIN + 3;
	sev.sigev_value.sival_int = PT_VALUE;
	if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &pt_id))
		return bad("timer_create: %s", strerror(errno));
	if (syscall(SYS_timer_settime, pt_id, 0, &its, NULL))
		return bad("timer_settime: %s", strerror(errno));
	return 0;
}

static int posix_timer_pending_verify(void)
{
	struct timespec zero = { 0, 0 };
	struct itimerspec its;
	siginfo_t si;
	sigset_t set;
	int ov;

	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 3);
	sleep_ms(350);		/* > 3 intervals: pending, with overruns */
	if (sigtimedwait(&set, &si, &zero) != SIGRTMIN + 3)
		return bad("no timer signal pending: %s", strerror(errno));
	ov = syscall(SYS_timer_getoverrun, pt_id);
	if (si.si_code != SI_TIMER || si.si_timerid != pt_id || si.si_value.sival_int != PT_VALUE)
		return bad("pending signal: code %d, timer %d (want %d), value %#x", si.si_code,
			   si.si_timerid, pt_id, si.si_value.sival_int);
	if (si.si_overrun < 2 || ov != si.si_overrun)
		return bad("pending signal: overrun %d, timer_getoverrun %d after 350 ms of 100 ms",
			   si.si_overrun, ov);
	/* the timer was re-armed when its signal was taken: no other is queued */
	if (sigtimedwait(&set, &si, &zero) >= 0)
		return bad("a second timer signal was pending (code %d, timer %d, overrun %d)",
			   si.si_code, si.si_timerid, si.si_overrun);
	if (syscall(SYS_timer_gettime, pt_id, &its))
		return bad("timer_gettime(%d): %s", pt_id, strerror(errno));
	if (its_ns(&its.it_interval) != PTP_NS || its_ns(&its.it_value) <= 0 ||
	    its_ns(&its.it_value) > PTP_NS)
		return bad("timer %d: %ld ns left, interval %ld", pt_id, its_ns(&its.it_value),
			   its_ns(&its.it_interval));
	return 0;
}

/* SIGEV_THREAD_ID to a thread that is not the main one. */
static void *pt_thread(void *arg)
{
	(void)arg;
	pt_want_tid = gettid();
	for (;;)
		pause();
	return NULL;
}

static int posix_timer_thread_setup(void)
{
	sigset_t set;
	pthread_t t;

	errno = pthread_create(&t, NULL, pt_thread, NULL);
	if (errno)
		return bad("pthread_create: %s", strerror(errno));
	while (!pt_want_tid)
		sleep_ms(1);
	/* only that thread may take it: block it here, the thread's mask is its own */
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN + 4);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	return pt_make(CLOCK_BOOTTIME, SIGRTMIN + 4, SIGEV_THREAD_ID, pt_want_tid, &pt_id);
}

static int posix_timer_thread_verify(void)
{
	return pt_check_timer(pt_id) || pt_check_signals();
}

/* A timer on the process's CPU-time clock: that clock does not carry (refused). */
static int posix_timer_cputime_setup(void)
{
	struct itimerspec its = { { 0, 0 }, { 3600, 0 } };
	struct sigevent sev = { .sigev_notify = SIGEV_NONE };

	if (syscall(SYS_timer_create, CLOCK_PROCESS_CPUTIME_ID, &sev, &pt_id))
		return bad("timer_create: %s", strerror(errno));
	if (syscall(SYS_timer_settime, pt_id, 0, &its, NULL))
		return bad("timer_settime: %s", strerror(errno));
	return 0;
}

static int posix_timer_cputime_verify(void)
{
	struct itimerspec its;

	if (syscall(SYS_timer_gettime, pt_id, &its))
		return bad("timer_gettime(%d): %s", pt_id, strerror(errno));
	return its_ns(&its.it_value) > 0 ? 0 : bad("CPU-time timer %d disarmed", pt_id);
}

/* glibc's SIGEV_THREAD: a helper thread takes the signal and runs the function. */
static timer_t pst_timer;
static volatile long pst_count, pst_badval;

static void on_pst(union sigval v)
{
	if (v.sival_int != PT_VALUE)
		pst_badval++;
	pst_count++;
}

static int posix_timer_sigev_thread_setup(void)
{
	struct itimerspec its = { { 0, PT_NS }, { 0, PT_NS } };
	struct sigevent sev = { 0 };

	sev.sigev_notify = SIGEV_THREAD;
	sev.sigev_notify_function = on_pst;
	sev.sigev_value.sival_int = PT_VALUE;
	if (timer_create(CLOCK_MONOTONIC, &sev, &pst_timer))
		return bad("timer_create: %s", strerror(errno));
	if (timer_settime(pst_timer, 0, &its, NULL))
		return bad("timer_settime: %s", strerror(errno));
	return 0;
}

static int posix_timer_sigev_thread_verify(void)
{
	struct itimerspec its;
	long before = pst_count;

	if (timer_gettime(pst_timer, &its))
		return bad("timer_gettime: %s", strerror(errno));
	if (its_ns(&its.it_interval) != PT_NS || its_ns(&its.it_value) > PT_NS)
		return bad("timer: %ld ns left, interval %ld", its_ns(&its.it_value),
			   its_ns(&its.it_interval));
	sleep_ms(300);
	if (pst_count - before < 3)
		return bad("%ld timer calls in 300 ms", pst_count - before);
	return pst_badval ? bad("%ld calls with a wrong sigev_value", pst_badval) : 0;
}

/*
 * Three timerfds: every 50 ms on CLOCK_MONOTONIC (keeps firing, same
 * interval); CLOCK_REALTIME with TFD_TIMER_ABSTIME every 100 ms from a start
 * 10.05 s in the past, never read but here, so the expirations read in all
 * must be those since that start (unread ticks kept, the absolute time
 * kept); a one-shot that expired and is read only here (1 tick).
 */
#define TFD_ABS_NS	100000000L

static int tfd = -1, tfd_abs = -1, tfd_once = -1, tfd_ep = -1;	/* tfd_ep: epoll set watching tfd */
static long tfd_start_ns;		/* CLOCK_REALTIME of tfd_abs's first expiry */
static uint64_t tfd_abs_total;

static long realtime_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return its_ns(&t);
}

static int tfd_once_arm(void)
{
	struct itimerspec its = { { 0, 0 }, { 0, 1000000 } };

	return timerfd_settime(tfd_once, 0, &its, NULL) ? bad("timerfd_settime: %s",
							    strerror(errno)) : 0;
}

static int timerfd_setup(void)
{
	struct itimerspec its = { { 0, 50000000 }, { 0, 50000000 } };
	struct itimerspec abs = { { 0, TFD_ABS_NS }, { 0, 0 } };
	struct epoll_event ev = { .events = EPOLLIN };

	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	tfd_abs = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
	tfd_once = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (tfd < 0 || tfd_abs < 0 || tfd_once < 0)
		return bad("timerfd_create: %s", strerror(errno));
	if (timerfd_settime(tfd, 0, &its, NULL))
		return bad("timerfd_settime: %s", strerror(errno));
	tfd_ep = epoll_create1(0);
	ev.data.u64 = 0x7fd;
	if (tfd_ep < 0 || epoll_ctl(tfd_ep, EPOLL_CTL_ADD, tfd, &ev))
		return bad("epoll: %s", strerror(errno));
	tfd_start_ns = realtime_ns() - 10050000000L;
	abs.it_value.tv_sec = tfd_start_ns / 1000000000L;
	abs.it_value.tv_nsec = tfd_start_ns % 1000000000L;
	if (timerfd_settime(tfd_abs, TFD_TIMER_ABSTIME, &abs, NULL))
		return bad("timerfd_settime abs: %s", strerror(errno));
	if (tfd_once_arm())
		return 1;
	sleep_ms(5);
	return 0;
}

/* Expirations of @fd not read yet (0 if none). */
static int tfd_take(int fd, uint64_t *n)
{
	*n = 0;
	if (read(fd, n, sizeof(*n)) == sizeof(*n))
		return 0;
	return errno == EAGAIN ? 0 : bad("read timerfd %d: %s", fd, strerror(errno));
}

static int timerfd_verify(void)
{
	struct pollfd p = { .fd = tfd, .events = POLLIN };
	struct epoll_event ev;
	struct itimerspec its;
	long lo, hi;
	uint64_t n;

	if (timerfd_gettime(tfd, &its))
		return bad("timerfd_gettime on fd %d: %s", tfd, strerror(errno));
	if (its.it_interval.tv_sec != 0 || its.it_interval.tv_nsec != 50000000 ||
	    its_ns(&its.it_value) > 50000000)
		return bad("timerfd: %ld ns left, interval %ld, expected 50 ms",
			   its_ns(&its.it_value), its_ns(&its.it_interval));
	if (tfd_take(tfd, &n))
		return 1;
	if (poll(&p, 1, 500) != 1)
		return bad("the timerfd did not expire within 500 ms");
	if (read(tfd, &n, sizeof(n)) != sizeof(n) || n < 1)
		return bad("timerfd read gave no expiration");
	/* in its epoll set too: the next expiration wakes it */
	if (epoll_wait(tfd_ep, &ev, 1, 500) != 1 || ev.data.u64 != 0x7fd || !(ev.events & EPOLLIN))
		return bad("epoll set of the timerfd: no event within 500 ms (%s)", strerror(errno));
	if (read(tfd, &n, sizeof(n)) != sizeof(n) || n < 1)
		return bad("timerfd read after epoll_wait gave no expiration");
	/* the absolute one: every expiration since its start, read or unread, counted once */
	lo = (realtime_ns() - tfd_start_ns) / TFD_ABS_NS + 1;
	if (tfd_take(tfd_abs, &n))
		return 1;
	hi = (realtime_ns() - tfd_start_ns) / TFD_ABS_NS + 1;
	tfd_abs_total += n;
	if ((long)tfd_abs_total < lo || (long)tfd_abs_total > hi)
		return bad("absolute timerfd: %lu expirations read in all, expected %ld..%ld",
			   (unsigned long)tfd_abs_total, lo, hi);
	if (timerfd_gettime(tfd_abs, &its) || its_ns(&its.it_interval) != TFD_ABS_NS)
		return bad("absolute timerfd: interval %ld", its_ns(&its.it_interval));
	/* the one-shot: its one tick waits unread */
	if (tfd_take(tfd_once, &n))
		return 1;
	if (n != 1)
		return bad("one-shot timerfd: %lu expirations unread, expected 1", (unsigned long)n);
	if (fcntl(tfd_once, F_GETFD) != FD_CLOEXEC)
		return bad("one-shot timerfd lost FD_CLOEXEC");
	if (tfd_once_arm())
		return 1;
	sleep_ms(5);
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

/*
 * Data in a pipe whose read end is gone, the write end O_ASYNC: a reader
 * opened and closed by the dump would signal it (SIGIO). Refused (the data
 * cannot be read unseen), the source untouched: no SIGIO, the data there.
 */
static int pn_fd = -1;
static volatile sig_atomic_t pn_sigio;
static const char pn_data[] = "nobody reads this";

static void on_pn_sigio(int sig)
{
	(void)sig;
	pn_sigio++;
}

static int pipe_noreader_async_setup(void)
{
	struct sigaction sa = { .sa_handler = on_pn_sigio, .sa_flags = SA_RESTART };
	int p[2];

	if (sigaction(SIGIO, &sa, NULL) || pipe(p))
		return bad("pipe: %s", strerror(errno));
	if (write(p[1], pn_data, sizeof(pn_data)) != sizeof(pn_data))
		return bad("write: %s", strerror(errno));
	close(p[0]);
	pn_fd = p[1];
	if (fcntl(pn_fd, F_SETOWN, getpid()) || fcntl(pn_fd, F_SETFL, O_ASYNC))
		return bad("O_ASYNC: %s", strerror(errno));
	return 0;
}

static int pipe_noreader_async_verify(void)
{
	int n = -1;

	if (pn_sigio)
		return bad("got SIGIO %d times: a reader came and went", (int)pn_sigio);
	if (ioctl(pn_fd, FIONREAD, &n) || n != sizeof(pn_data))
		return bad("the pipe holds %d bytes, not the %zu written", n, sizeof(pn_data));
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

/*
 * File locks. Each mode checks from inside (the fdinfo "lock:" lines of its
 * own fds, which name the owner: the same locks, the same pids, each on the
 * same open file description) and from outside (a forked child, not of the
 * migrated tree, opening the file again: a conflicting lock is refused, a
 * range not locked is free, a read lock is shared).
 */
static int lk_fd = -1, lk_fd2 = -1;
static pid_t lk_owner, lk_child;	/* the tree's process and its child holding the description */
static char lk_list[2][1024];		/* the fdinfo lock lines of lk_fd, lk_fd2 at setup */

static int lock_file(void)
{
	lk_fd = make_file("lock", 200, 1);
	return lk_fd < 0 ? bad("file: %s", strerror(errno)) : 0;
}

static int lock_reopen(const char *suffix)
{
	char path[4096];

	scratch(path, sizeof(path), suffix);
	return open(path, O_RDWR);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The "lock:" lines of @fd, without their ids and device, sorted, one per line. */
static int fd_lock_list(int fd, char *out, size_t len)
{
	char path[64], buf[4096], *lines[32], *p = buf, *l;
	size_t n = 0, i, used = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return bad("%s: %s", path, strerror(errno));
	buf[fread(buf, 1, sizeof(buf) - 1, f)] = 0;
	fclose(f);
	while ((l = strsep(&p, "\n")) && n < 32) {
		char kind[16], adv[16], type[16], pid[16], start[32], end[32];

		if (strncmp(l, "lock:", 5) ||
		    sscanf(l + 5, " %*d: %15s %15s %15s %15s %*s %31s %31s", kind, adv, type, pid,
			   start, end) != 6)
			continue;
		lines[n] = malloc(160);
		snprintf(lines[n++], 160, "%s %s %s %s pid %s", kind, type, start, end, pid);
	}
	qsort(lines, n, sizeof(*lines), cmp_str);
	out[0] = 0;
	for (i = 0; i < n; i++) {
		used += snprintf(out + used, len > used ? len - used : 0, "%s; ", lines[i]);
		free(lines[i]);
	}
	return 0;
}

/* Inside: lk_fd and lk_fd2 list the locks they listed at setup. */
static int lock_lists_same(void)
{
	char now[1024];
	int i, fd;

	for (i = 0; i < 2; i++) {
		fd = i ? lk_fd2 : lk_fd;
		if (fd < 0)
			continue;
		if (fd_lock_list(fd, now, sizeof(now)))
			return 1;
		if (strcmp(now, lk_list[i]))
			return bad("fd %d holds the locks [%s], expected [%s]", fd, now, lk_list[i]);
	}
	return 0;
}

static int lock_lists_save(void)
{
	if (fd_lock_list(lk_fd, lk_list[0], sizeof(lk_list[0])))
		return 1;
	if (lk_fd2 >= 0 && fd_lock_list(lk_fd2, lk_list[1], sizeof(lk_list[1])))
		return 1;
	if (!lk_list[0][0])
		return bad("no lock listed in fdinfo at setup");
	return 0;
}

/* A child of the tree sharing lk_fd's description; it dies with us. */
static int lock_tree_child(int (*fn)(void))
{
	int p[2];
	char c;

	if (pipe(p))
		return bad("pipe: %s", strerror(errno));
	lk_child = fork();
	if (lk_child < 0)
		return bad("fork: %s", strerror(errno));
	if (!lk_child) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		close(p[0]);
		c = fn ? '0' + fn() : '0';
		if (write(p[1], &c, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1 || c != '0')
		return bad("the tree's child failed its setup");
	close(p[0]);
	return 0;
}

/* flock: lk_fd "lock" exclusive (shared with a child of the tree), lk_fd2 "lock2" shared. */
static int flock_setup(void)
{
	if (lock_file())
		return 1;
	lk_fd2 = make_file("lock2", 100, 2);
	if (lk_fd2 < 0)
		return bad("file: %s", strerror(errno));
	if (flock(lk_fd, LOCK_EX) || flock(lk_fd2, LOCK_SH))
		return bad("flock: %s", strerror(errno));
	if (lock_tree_child(NULL))
		return 1;
	return lock_lists_save();
}

/* want: 0 the lock is free, else flock must fail with EWOULDBLOCK. */
static int try_flock(const char *suffix, int op, int want_busy)
{
	int fd = lock_reopen(suffix), r = 0;

	if (fd < 0)
		return bad("reopen %s: %s", suffix, strerror(errno));
	if (!flock(fd, op | LOCK_NB)) {
		if (want_busy)
			r = bad("another open file took %s on %s: the flock is gone or weaker",
				op == LOCK_EX ? "LOCK_EX" : "LOCK_SH", suffix);
	} else if (errno != EWOULDBLOCK || !want_busy) {
		r = bad("%s on %s from another open file: %s",
			op == LOCK_EX ? "LOCK_EX" : "LOCK_SH", suffix, strerror(errno));
	}
	close(fd);
	return r;
}

static int flock_child(void)
{
	return try_flock("lock", LOCK_SH, 1) || try_flock("lock2", LOCK_EX, 1) ||
	       try_flock("lock2", LOCK_SH, 0);
}

static int flock_verify(void)
{
	if (lock_lists_same())
		return 1;
	/* our own descriptions hold them: asking again succeeds */
	if (flock(lk_fd, LOCK_EX | LOCK_NB) || flock(lk_fd2, LOCK_SH | LOCK_NB))
		return bad("flock on our own fd: %s (another description holds it)", strerror(errno));
	return in_child(flock_child);
}

/*
 * POSIX: ours on lk_fd: write 100-149, read 10-19, read 400 to EOF; the
 * tree's child, through the same description: write 300-309.
 */
static int posix_set(int fd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	return fcntl(fd, F_SETLK, &fl) ? bad("F_SETLK %ld+%ld: %s", (long)start, (long)len,
					    strerror(errno)) : 0;
}

static int posix_child_lock(void)
{
	return posix_set(lk_fd, F_WRLCK, 300, 10);
}

static int posix_lock_setup(void)
{
	if (lock_file() || posix_set(lk_fd, F_WRLCK, 100, 50) || posix_set(lk_fd, F_RDLCK, 10, 10) ||
	    posix_set(lk_fd, F_RDLCK, 400, 0) || lock_tree_child(posix_child_lock))
		return 1;
	lk_owner = getpid();
	return lock_lists_save();
}

/* F_GETLK (@cmd) for @type over start+len: the lock found must be @want (F_UNLCK: none). */
static int probe(int fd, int cmd, short type, off_t start, off_t len, short want, off_t wstart,
		 off_t wlen, pid_t wpid)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	if (fcntl(fd, cmd, &fl))
		return bad("F_GETLK %ld+%ld: %s", (long)start, (long)len, strerror(errno));
	if (fl.l_type != want || (want != F_UNLCK && (fl.l_start != wstart || fl.l_len != wlen ||
						       fl.l_pid != wpid)))
		return bad("%s probe %ld+%ld found type %d %ld+%ld pid %d, expected type %d "
			   "%ld+%ld pid %d", type == F_WRLCK ? "write" : "read", (long)start,
			   (long)len, fl.l_type, (long)fl.l_start, (long)fl.l_len, fl.l_pid, want,
			   (long)wstart, (long)wlen, wpid);
	return 0;
}

static int posix_lock_child(void)
{
	int fd = lock_reopen("lock"), r;

	if (fd < 0)
		return bad("reopen: %s", strerror(errno));
	r = probe(fd, F_GETLK, F_WRLCK, 100, 50, F_WRLCK, 100, 50, lk_owner) ||
	    probe(fd, F_GETLK, F_RDLCK, 149, 1, F_WRLCK, 100, 50, lk_owner) ||
	    probe(fd, F_GETLK, F_WRLCK, 10, 10, F_RDLCK, 10, 10, lk_owner) ||
	    probe(fd, F_GETLK, F_RDLCK, 10, 10, F_UNLCK, 0, 0, 0) ||
	    probe(fd, F_GETLK, F_WRLCK, 1000000, 1, F_RDLCK, 400, 0, lk_owner) ||
	    probe(fd, F_GETLK, F_WRLCK, 300, 10, F_WRLCK, 300, 10, lk_child) ||
	    probe(fd, F_GETLK, F_WRLCK, 20, 80, F_UNLCK, 0, 0, 0) ||
	    probe(fd, F_GETLK, F_WRLCK, 150, 150, F_UNLCK, 0, 0, 0) ||
	    probe(fd, F_GETLK, F_WRLCK, 310, 90, F_UNLCK, 0, 0, 0) ||
	    probe(fd, F_GETLK, F_WRLCK, 0, 10, F_UNLCK, 0, 0, 0);
	/* and taking them: a free range is ours, a locked one is not */
	if (!r)
		r = posix_set(fd, F_WRLCK, 20, 80);
	if (!r && !fcntl(fd, F_SETLK, &(struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET,
						       .l_start = 149, .l_len = 1 }))
		r = bad("another process took a write lock on byte 149");
	close(fd);
	return r;
}

static int posix_lock_verify(void)
{
	return lock_lists_same() || in_child(posix_lock_child);
}

/* OFD: lk_fd write 0-9 and read 50 to EOF, lk_fd2 (another open of "lock") read 20-29. */
static int ofd_set(int fd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };

	return fcntl(fd, F_OFD_SETLK, &fl) ? bad("F_OFD_SETLK %ld+%ld: %s", (long)start, (long)len,
						strerror(errno)) : 0;
}

static int ofd_lock_setup(void)
{
	if (lock_file())
		return 1;
	lk_fd2 = lock_reopen("lock");
	if (lk_fd2 < 0)
		return bad("reopen: %s", strerror(errno));
	if (ofd_set(lk_fd, F_WRLCK, 0, 10) || ofd_set(lk_fd, F_RDLCK, 50, 0) ||
	    ofd_set(lk_fd2, F_RDLCK, 20, 10))
		return 1;
	return lock_lists_save();
}

static int ofd_lock_child(void)
{
	int fd = lock_reopen("lock"), r;

	if (fd < 0)
		return bad("reopen: %s", strerror(errno));
	r = probe(fd, F_OFD_GETLK, F_WRLCK, 0, 10, F_WRLCK, 0, 10, -1) ||
	    probe(fd, F_OFD_GETLK, F_WRLCK, 20, 10, F_RDLCK, 20, 10, -1) ||
	    probe(fd, F_OFD_GETLK, F_RDLCK, 20, 10, F_UNLCK, 0, 0, 0) ||
	    probe(fd, F_OFD_GETLK, F_WRLCK, 10, 10, F_UNLCK, 0, 0, 0) ||
	    probe(fd, F_OFD_GETLK, F_WRLCK, 30, 20, F_UNLCK, 0, 0, 0) ||
	    probe(fd, F_OFD_GETLK, F_WRLCK, 1000, 1, F_RDLCK, 50, 0, -1);
	if (!r && !fcntl(fd, F_OFD_SETLK, &(struct flock){ .l_type = F_RDLCK,
							   .l_whence = SEEK_SET, .l_start = 5,
							   .l_len = 1 }))
		r = bad("another open file took a read lock on byte 5");
	close(fd);
	return r;
}

static int ofd_lock_verify(void)
{
	/* each description holds its own: lk_fd2 sees lk_fd's write lock, lk_fd does not */
	return lock_lists_same() ||
	       probe(lk_fd2, F_OFD_GETLK, F_WRLCK, 0, 10, F_WRLCK, 0, 10, -1) ||
	       probe(lk_fd, F_OFD_GETLK, F_WRLCK, 0, 10, F_UNLCK, 0, 0, 0) ||
	       in_child(ofd_lock_child);
}

/*
 * Restore error: the test holds a conflicting lock on "lock" at the
 * destination while restoring (the file is named on a "lockfile" line).
 */
static int lock_taken_setup(void)
{
	char path[4096];

	if (posix_lock_setup())
		return 1;
	scratch(path, sizeof(path), "lock");
	say("lockfile %s\n", path);
	return 0;
}

static int lock_taken_verify(void)
{
	return posix_lock_verify();
}

/*
 * A request waiting for a lock: we hold a POSIX write lock on bytes 0-9; a
 * child of the tree opens the file itself and waits in F_SETLKW for the same
 * bytes (the freeze interrupts the call; the restore restarts it). First
 * check: it still waits. Second (after the restore): we unlock, it must get
 * the lock (it says so on a pipe) and hold it as its own.
 */
static int lw_pipe[2] = { -1, -1 }, lw_checks;

/* From outside: bytes 0-9 are the child's now. */
static int lock_wait_probe(void)
{
	int fd = lock_reopen("lock"), r;

	if (fd < 0)
		return bad("reopen: %s", strerror(errno));
	r = probe(fd, F_GETLK, F_RDLCK, 0, 10, F_WRLCK, 0, 10, lk_owner);
	close(fd);
	return r;
}

static int lock_wait_child(void)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10 };
	int fd = lock_reopen("lock");

	if (fd < 0)
		return 1;
	/* no EINTR loop: the freeze and the restore must not show in the call */
	if (fcntl(fd, F_SETLKW, &fl))
		return 1;
	return write(lw_pipe[1], "g", 1) == 1 ? 0 : 1;
}

static int lock_wait_setup(void)
{
	if (lock_file() || posix_set(lk_fd, F_WRLCK, 0, 10))
		return 1;
	if (pipe(lw_pipe))
		return bad("pipe: %s", strerror(errno));
	lk_child = fork();
	if (lk_child < 0)
		return bad("fork: %s", strerror(errno));
	if (!lk_child) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (lock_wait_child())
			_exit(1);
		for (;;)
			pause();
	}
	lk_owner = getpid();
	usleep(200000);	/* let it reach F_SETLKW */
	return 0;
}

static int lock_wait_verify(void)
{
	struct pollfd p = { lw_pipe[0], POLLIN, 0 };
	char c;

	if (poll(&p, 1, 200) != 0)
		return bad("the waiting child got the lock we hold");
	if (++lw_checks < 2)
		return 0;
	if (posix_set(lk_fd, F_UNLCK, 0, 10))
		return 1;
	if (poll(&p, 1, 3000) != 1 || read(lw_pipe[0], &c, 1) != 1)
		return bad("the child waiting in F_SETLKW did not get the lock once free");
	lk_owner = lk_child;
	return in_child(lock_wait_probe);
}

/* A read lease (F_SETLEASE): refused by name. */
static int lease_fd = -1;

static int lease_setup(void)
{
	char path[4096];
	int fd = make_file("lease", 100, 3);

	if (fd < 0)
		return bad("file: %s", strerror(errno));
	close(fd);	/* a read lease wants no writer */
	scratch(path, sizeof(path), "lease");
	lease_fd = open(path, O_RDONLY);
	if (lease_fd < 0)
		return bad("open: %s", strerror(errno));
	return fcntl(lease_fd, F_SETLEASE, F_RDLCK) ? bad("F_SETLEASE: %s", strerror(errno)) : 0;
}

static int lease_verify(void)
{
	int l = fcntl(lease_fd, F_GETLEASE);

	return l == F_RDLCK ? 0 : bad("F_GETLEASE: %d (%s), expected a read lease", l,
				      l < 0 ? strerror(errno) : "");
}

/*
 * An inotify instance with watches 1 (IN_CREATE on DIR.d) and 3
 * (IN_CREATE | IN_DELETE | IN_EXCL_UNLINK on DIR.d3): watch 2 was removed,
 * so the numbers have a gap. Checked: the watch list (numbers, masks) in
 * our fdinfo, and an event on each watch with its number and name.
 */
static int in_fd = -1, in_n;
#define IN3_MASK (IN_CREATE | IN_DELETE | IN_EXCL_UNLINK)

static int inotify_setup(void)
{
	char d1[4096], d2[4096], d3[4096], buf[4096] __attribute__((aligned(8)));
	int w2;

	scratch(d1, sizeof(d1), "d");
	scratch(d2, sizeof(d2), "d2");
	scratch(d3, sizeof(d3), "d3");
	if ((mkdir(d1, 0700) && errno != EEXIST) || (mkdir(d2, 0700) && errno != EEXIST) ||
	    (mkdir(d3, 0700) && errno != EEXIST))
		return bad("mkdir: %s", strerror(errno));
	in_fd = inotify_init1(IN_NONBLOCK);
	if (in_fd < 0)
		return bad("inotify_init1: %s", strerror(errno));
	if (inotify_add_watch(in_fd, d1, IN_CREATE) != 1 ||
	    (w2 = inotify_add_watch(in_fd, d2, IN_CREATE)) != 2 || inotify_rm_watch(in_fd, w2) ||
	    inotify_add_watch(in_fd, d3, IN3_MASK) != 3)
		return bad("inotify_add_watch: %s", strerror(errno));
	while (read(in_fd, buf, sizeof(buf)) > 0)
		;	/* watch 2's IN_IGNORED */
	return 0;
}

/* Our watches as fdinfo lists them: "wd:mask" pairs, by wd. */
static int inotify_list(char *out, size_t len)
{
	char path[64], line[512];
	unsigned int wd, mask, w[8] = { 0 }, m[8] = { 0 };
	size_t n = 0, i, k;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", in_fd);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "inotify wd:%x %*s %*s mask:%x", &wd, &mask) == 2 && n < 8) {
			w[n] = wd;
			m[n++] = mask;
		}
	fclose(f);
	out[0] = 0;
	for (k = 1; k <= 8; k++)
		for (i = 0; i < n; i++)
			if (w[i] == k)
				snprintf(out + strlen(out), len - strlen(out), "%u:%#x ", w[i], m[i]);
	return 0;
}

/* Create DIR.SUB/newN: the event must come on watch @wd. */
static int inotify_event_on(const char *sub, int wd)
{
	char path[4096], name[32], buf[4096] __attribute__((aligned(8)));
	struct pollfd p = { .fd = in_fd, .events = POLLIN };
	struct inotify_event *ev = (void *)buf;
	int fd, r = 0;
	ssize_t n;

	snprintf(name, sizeof(name), "new%d", ++in_n);
	snprintf(path, sizeof(path), "%s.%s/%s", base, sub, name);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	if (fd < 0)
		return bad("create %s: %s", path, strerror(errno));
	close(fd);
	if (poll(&p, 1, 500) != 1)
		r = bad("no inotify event within 500 ms of creating %s", name);
	else if ((n = read(in_fd, buf, sizeof(buf))) < (ssize_t)sizeof(*ev))
		r = bad("read inotify: %s", strerror(errno));
	else if (ev->wd != wd || !(ev->mask & IN_CREATE) || strcmp(ev->name, name))
		r = bad("event wd %d mask %#x name '%s', expected wd %d IN_CREATE '%s'", ev->wd,
			ev->mask, ev->len ? ev->name : "", wd, name);
	unlink(path);
	/* DIR.d3 watches IN_DELETE too: that event is read out */
	if (!r && wd == 3 && (poll(&p, 1, 500) != 1 || read(in_fd, buf, sizeof(buf)) <= 0 ||
			      ev->wd != 3 || !(ev->mask & IN_DELETE)))
		r = bad("no IN_DELETE on watch 3 after removing %s", name);
	return r;
}

static int inotify_verify(void)
{
	char list[256], want[64];

	snprintf(want, sizeof(want), "1:%#x 3:%#x ", IN_CREATE, IN3_MASK);
	if (inotify_list(list, sizeof(list)) || strcmp(list, want))
		return bad("watches '%s', expected '%s'", list, want);
	if ((fcntl(in_fd, F_GETFL) & O_NONBLOCK) != O_NONBLOCK)
		return bad("the inotify fd lost O_NONBLOCK");
	return inotify_event_on("d", 1) || inotify_event_on("d3", 3);
}

/* An inotify instance with an event queued and never read. */
static int inotify_queued_setup(void)
{
	char path[4096];

	if (inotify_setup())
		return 1;
	scratch(path, sizeof(path), "d/queued");
	return close(open(path, O_CREAT | O_WRONLY, 0600)) ? bad("create: %s", strerror(errno)) : 0;
}

static int inotify_queued_verify(void)
{
	int n = 0;

	if (ioctl(in_fd, FIONREAD, &n) || n <= 0)
		return bad("the queued inotify event is gone (FIONREAD %d)", n);
	return 0;
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

/*
 * Memfds held only as fds (no mapping): "objwork" made without sealing
 * (F_SEAL_SEAL), at offset 14, with a second description of the same object;
 * "objwork-sealed" with a hole, 64 KiB long, sealed against writes and size
 * changes, and an O_RDONLY description of it at offset 5.
 */
static int mfd_b = -1, mfs = -1, mfs_ro = -1;
#define MFS_SEALS (F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_WRITE)

static int memfd_fd_setup(void)
{
	unsigned char b[2 * 4096];
	char path[64];
	size_t i;

	mfd = memfd_create("objwork", 0);
	mfs = memfd_create("objwork-sealed", MFD_ALLOW_SEALING);
	if (mfd < 0 || mfs < 0)
		return bad("memfd_create: %s", strerror(errno));
	if (write(mfd, "memfd contents", 14) != 14)
		return bad("write: %s", strerror(errno));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
	mfd_b = open(path, O_RDWR);
	for (i = 0; i < sizeof(b); i++)
		b[i] = (i * 7 + 5) & 0xff;
	if (mfd_b < 0 || ftruncate(mfs, 65536) || pwrite(mfs, b, sizeof(b), 32768) != sizeof(b) ||
	    fcntl(mfs, F_ADD_SEALS, MFS_SEALS))
		return bad("memfd: %s", strerror(errno));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", mfs);
	mfs_ro = open(path, O_RDONLY);
	if (mfs_ro < 0 || lseek(mfs_ro, 5, SEEK_SET) != 5)
		return bad("reopen memfd: %s", strerror(errno));
	return 0;
}

static int memfd_fd_verify(void)
{
	int s = fcntl(mfd, F_GET_SEALS), s2 = fcntl(mfs_ro, F_GET_SEALS);
	unsigned char b[16] = { 0 }, big[2 * 4096];
	struct stat st;

	if (strncmp(fd_link(mfd), "/memfd:objwork (deleted)", 24))
		return bad("fd %d is %s, expected /memfd:objwork", mfd, fd_link(mfd));
	if (strncmp(fd_link(mfs_ro), "/memfd:objwork-sealed (deleted)", 31))
		return bad("fd %d is %s, expected /memfd:objwork-sealed", mfs_ro, fd_link(mfs_ro));
	if (s != F_SEAL_SEAL || s2 != MFS_SEALS)
		return bad("F_GET_SEALS %#x and %#x, expected %#x and %#x", s, s2, F_SEAL_SEAL,
			   MFS_SEALS);
	if (pread(mfd, b, 14, 0) != 14 || memcmp(b, "memfd contents", 14))
		return bad("memfd contents '%.14s'", b);
	if (lseek(mfd, 0, SEEK_CUR) != 14 || lseek(mfs_ro, 0, SEEK_CUR) != 5 ||
	    lseek(mfs, 0, SEEK_CUR) != 0)
		return bad("memfd offsets %ld, %ld, %ld, expected 14, 5, 0",
			   (long)lseek(mfd, 0, SEEK_CUR), (long)lseek(mfs_ro, 0, SEEK_CUR),
			   (long)lseek(mfs, 0, SEEK_CUR));
	if ((fcntl(mfs_ro, F_GETFL) & O_ACCMODE) != O_RDONLY ||
	    (fcntl(mfd_b, F_GETFL) & O_ACCMODE) != O_RDWR)
		return bad("memfd descriptions' access modes changed");
	/* two descriptions, one object: a write through one is read through the other */
	if (pwrite(mfd_b, "X", 1, 100) != 1 || pread(mfd, b, 1, 100) != 1 || b[0] != 'X')
		return bad("the second description of /memfd:objwork is another object");
	if (fstat(mfs, &st) || st.st_size != 65536)
		return bad("sealed memfd size %ld, expected 65536", (long)st.st_size);
	if (pread(mfs_ro, big, sizeof(big), 32768) != sizeof(big))
		return bad("read sealed memfd: %s", strerror(errno));
	if (pread(mfs, b, 16, 0) != 16 || memcmp(b, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 16))
		return bad("the sealed memfd's hole is not zero");
	if (pwrite(mfs, "x", 1, 0) != -1 || errno != EPERM)
		return bad("a write into the write-sealed memfd did not fail with EPERM");
	return check_pattern(big, sizeof(big), 5, "sealed memfd");
}

/* An fd-only memfd that a process outside the tree holds too. */
static int memfd_fd_outside_setup(void)
{
	mfd = memfd_create("objwork", 0);
	if (mfd < 0)
		return bad("memfd_create: %s", strerror(errno));
	if (write(mfd, "memfd contents", 14) != 14)
		return bad("write: %s", strerror(errno));
	return outside_holder();
}

static int memfd_fd_outside_verify(void)
{
	char b[16] = { 0 };

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

/*
 * A FIFO held three ways (read end, write end and O_RDWR, non-blocking or
 * not), a larger size, unread data in it. Checked: the same FIFO as at its
 * path, each fd's flags, the size, the data exactly, and a writer that
 * opens the path afresh (a new process) reaches the reader.
 */
static int ff_rw = -1, ff_r = -1, ff_w = -1;
#define FF_SIZE (2 * 65536)

static int fifo_fill(void)
{
	if (write(ff_w, "fifo-data", 9) != 9 || write(ff_rw, "+rw", 3) != 3)
		return bad("write: %s", strerror(errno));
	return 0;
}

static int fifo_setup(void)
{
	char path[4096];

	scratch(path, sizeof(path), "fifo");
	if (mkfifo(path, 0600))
		return bad("mkfifo: %s", strerror(errno));
	ff_rw = open(path, O_RDWR | O_NONBLOCK);
	ff_r = open(path, O_RDONLY | O_NONBLOCK);
	ff_w = open(path, O_WRONLY);
	if (ff_rw < 0 || ff_r < 0 || ff_w < 0)
		return bad("open fifo: %s", strerror(errno));
	if (fcntl(ff_w, F_SETPIPE_SZ, FF_SIZE) < 0)
		return bad("F_SETPIPE_SZ: %s", strerror(errno));
	return fifo_fill();
}

static int fifo_flags(int fd, int want, const char *what)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || (fl & (O_ACCMODE | O_NONBLOCK)) != want)
		return bad("the %s fd's flags are %#x, expected %#x", what,
			   fl & (O_ACCMODE | O_NONBLOCK), want);
	return 0;
}

/* A new process opens the FIFO by its path and writes @msg into it. */
static int fifo_outside_write(const char *path, const char *msg)
{
	int st;
	pid_t p = fork();

	if (p < 0)
		return bad("fork: %s", strerror(errno));
	if (!p) {
		int fd = open(path, O_WRONLY | O_NONBLOCK);

		_exit(fd < 0 || write(fd, msg, strlen(msg)) != (ssize_t)strlen(msg));
	}
	if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st))
		return bad("a new process could not write into %s", path);
	return 0;
}

static int fifo_verify(void)
{
	char path[4096], b[64] = { 0 };
	struct stat a, p;
	ssize_t n;

	scratch(path, sizeof(path), "fifo");
	if (stat(path, &p) || fstat(ff_r, &a) || !S_ISFIFO(a.st_mode) ||
	    a.st_ino != p.st_ino || a.st_dev != p.st_dev)
		return bad("the read end (%s) is not the FIFO at %s", fd_link(ff_r), path);
	if (fifo_flags(ff_r, O_RDONLY | O_NONBLOCK, "read") || fifo_flags(ff_w, O_WRONLY, "write") ||
	    fifo_flags(ff_rw, O_RDWR | O_NONBLOCK, "O_RDWR"))
		return 1;
	if (fcntl(ff_r, F_GETPIPE_SZ) != FF_SIZE)
		return bad("F_GETPIPE_SZ %d, expected %d", fcntl(ff_r, F_GETPIPE_SZ), FF_SIZE);
	n = read(ff_r, b, sizeof(b) - 1);
	if (n != 12 || memcmp(b, "fifo-data+rw", 12))
		return bad("read %zd bytes '%.*s' from the fifo, expected 'fifo-data+rw'", n,
			   n > 0 ? (int)n : 0, b);
	if (fifo_outside_write(path, "outside"))
		return 1;
	memset(b, 0, sizeof(b));
	n = read(ff_rw, b, sizeof(b) - 1);
	if (n != 7 || memcmp(b, "outside", 7))
		return bad("read %zd bytes '%.*s' after a writer opened %s, expected 'outside'", n,
			   n > 0 ? (int)n : 0, b, path);
	return fifo_fill();
}

/* A FIFO with data that a process outside the tree holds too. */
static int fifo_outside_setup(void)
{
	char path[4096];

	scratch(path, sizeof(path), "fifo");
	if (mkfifo(path, 0600))
		return bad("mkfifo: %s", strerror(errno));
	ff_rw = open(path, O_RDWR | O_NONBLOCK);
	if (ff_rw < 0)
		return bad("open fifo: %s", strerror(errno));
	if (outside_holder())
		return 1;
	return write(ff_rw, "fifo-data", 9) == 9 ? 0 : bad("write: %s", strerror(errno));
}

static int fifo_outside_verify(void)
{
	char b[16] = { 0 };
	ssize_t n = read(ff_rw, b, sizeof(b));

	if (n != 9 || memcmp(b, "fifo-data", 9))
		return bad("read %zd bytes '%.*s' from the fifo, expected 'fifo-data'", n,
			   n > 0 ? (int)n : 0, b);
	return write(ff_rw, "fifo-data", 9) == 9 ? 0 : bad("write: %s", strerror(errno));
}

/*
 * ptys. pty: both ends in this process, raw, a window size: the same
 * /dev/pts/N, termios and window size, data both ways. pty_ctty: the master
 * here; a child leads a session with the slave as its controlling terminal
 * (cooked, no echo, its own VERASE), a grandchild in its own group is the
 * foreground one and answers each line on the slave with what it sees:
 * terminal name, tcgetpgrp, tcgetsid, termios as set, window size, SIGWINCH
 * count; each check also changes the window size (one SIGWINCH more).
 * pty_outside: the master is held by a process outside the tree only.
 * pty_queued: data on the pty the slave has not read.
 */
static int pty_m = -1, pty_s = -1;
static char pty_name[64];
static struct termios pty_t;
static struct winsize pty_ws = { .ws_row = 31, .ws_col = 97 };

static int pty_open_pair(void)
{
	char *name;

	pty_m = posix_openpt(O_RDWR | O_NOCTTY);
	if (pty_m < 0 || grantpt(pty_m) || unlockpt(pty_m) || !(name = ptsname(pty_m)))
		return bad("posix_openpt: %s", strerror(errno));
	snprintf(pty_name, sizeof(pty_name), "%s", name);
	return 0;
}

static int pty_setup(void)
{
	if (pty_open_pair())
		return 1;
	pty_s = open(pty_name, O_RDWR | O_NOCTTY);
	if (pty_s < 0)
		return bad("open %s: %s", pty_name, strerror(errno));
	if (tcgetattr(pty_s, &pty_t))
		return bad("tcgetattr: %s", strerror(errno));
	cfmakeraw(&pty_t);
	pty_t.c_cc[VMIN] = 1;
	if (tcsetattr(pty_s, TCSANOW, &pty_t) || tcgetattr(pty_s, &pty_t) ||
	    ioctl(pty_s, TIOCSWINSZ, &pty_ws))
		return bad("tcsetattr/TIOCSWINSZ: %s", strerror(errno));
	return 0;
}

static int pty_verify(void)
{
	struct pollfd p = { .fd = pty_s, .events = POLLIN };
	struct termios t;
	struct winsize ws;
	char b[16] = { 0 };

	if (strcmp(fd_link(pty_s), pty_name) || strcmp(ptsname(pty_m) ?: "", pty_name))
		return bad("the slave is %s (ptsname %s), expected %s", fd_link(pty_s),
			   ptsname(pty_m), pty_name);
	if (tcgetattr(pty_s, &t))
		return bad("tcgetattr on the slave: %s; master fd is %s, slave fd is %s",
			   strerror(errno), fd_link(pty_m), fd_link(pty_s));
	if (memcmp(&t, &pty_t, sizeof(t)))
		return bad("slave termios differ (lflag %#x, expected %#x)", t.c_lflag,
			   pty_t.c_lflag);
	if (ioctl(pty_s, TIOCGWINSZ, &ws) || ws.ws_row != pty_ws.ws_row ||
	    ws.ws_col != pty_ws.ws_col)
		return bad("window size %ux%u, expected %ux%u", ws.ws_row, ws.ws_col,
			   pty_ws.ws_row, pty_ws.ws_col);
	if (write(pty_m, "ping", 4) != 4)
		return bad("write on the master: %s", strerror(errno));
	if (poll(&p, 1, 2000) != 1 || read(pty_s, b, sizeof(b)) != 4 || memcmp(b, "ping", 4))
		return bad("the slave did not read 'ping' (got '%s')", b);
	p.fd = pty_m;
	if (write(pty_s, "pong", 4) != 4 || poll(&p, 1, 2000) != 1 ||
	    read(pty_m, b, sizeof(b)) != 4 || memcmp(b, "pong", 4))
		return bad("the master did not read 'pong' (got '%s')", b);
	return 0;
}

static pid_t pc_leader, pc_fg;
static volatile sig_atomic_t pc_winch;

static void pc_on_winch(int sig)
{
	(void)sig;
	pc_winch++;
}

/* The foreground grandchild: one answer per line read on its terminal. */
static void __attribute__((noreturn)) pc_fg_main(int s)
{
	struct sigaction sa = { .sa_handler = pc_on_winch };
	char line[64], out[256], *name;
	struct termios t;
	struct winsize ws;

	sigaction(SIGWINCH, &sa, NULL);
	for (;;) {
		ssize_t n = read(s, line, sizeof(line));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(1);
		name = ttyname(s);
		if (tcgetattr(s, &t) || ioctl(s, TIOCGWINSZ, &ws))
			_exit(1);
		n = snprintf(out, sizeof(out), "R %s %d %d %d %u %u %d\n", name ?: "none",
			     (int)tcgetpgrp(s), (int)tcgetsid(s), !memcmp(&t, &pty_t, sizeof(t)),
			     ws.ws_row, ws.ws_col, (int)pc_winch);
		if (write(s, out, n) != n)
			_exit(1);
	}
}

static int pty_ctty_setup(void)
{
	int sync[2];

	if (pty_open_pair() || pipe(sync))
		return 1;
	pc_leader = fork();
	if (pc_leader < 0)
		return bad("fork: %s", strerror(errno));
	if (!pc_leader) {
		int s;

		close(pty_m);
		/* the first terminal a session leader opens is its controlling one */
		if (setsid() < 0 || (s = open(pty_name, O_RDWR)) < 0 || tcgetattr(s, &pty_t))
			_exit(1);
		pty_t.c_lflag |= ICANON;
		pty_t.c_lflag &= ~(ECHO | ECHOE | ECHOK | ECHONL);
		pty_t.c_cc[VERASE] = 0x08;
		if (tcsetattr(s, TCSANOW, &pty_t) || tcgetattr(s, &pty_t) ||
		    ioctl(s, TIOCSWINSZ, &pty_ws))
			_exit(1);
		pc_fg = fork();
		if (pc_fg < 0)
			_exit(1);
		if (!pc_fg) {
			setpgid(0, 0);
			close(sync[0]);
			close(sync[1]);
			pc_fg_main(s);
		}
		setpgid(pc_fg, pc_fg);
		if (tcsetpgrp(s, pc_fg) || write(sync[1], &pc_fg, sizeof(pc_fg)) != sizeof(pc_fg))
			_exit(1);
		for (;;)
			pause();
	}
	close(sync[1]);
	if (read(sync[0], &pc_fg, sizeof(pc_fg)) != sizeof(pc_fg))
		return bad("the session leader did not set its terminal up");
	close(sync[0]);
	return 0;
}

/*
 * A session leader and another group of its session, the foreground one of
 * its pty, neither holding an fd of it (the leader closed the one it made
 * it its terminal with; the slave is held outside the session): no process
 * of the session can set the foreground group again, so the restore fails,
 * naming it.
 */
static pid_t pn_leader, pn_fg;
static int read_whole(const char *path, char *buf, size_t len);

static int pty_ctty_nofd_setup(void)
{
	int sync[2];

	if (pty_open_pair() || pipe(sync))
		return 1;
	pn_leader = fork();
	if (pn_leader < 0)
		return bad("fork: %s", strerror(errno));
	if (!pn_leader) {
		int s;

		close(pty_m);
		close(sync[0]);
		if (setsid() < 0 || (s = open(pty_name, O_RDWR)) < 0)
			_exit(1);
		pn_fg = fork();
		if (pn_fg < 0)
			_exit(1);
		if (!pn_fg) {
			setpgid(0, 0);
			close(s);
			close(sync[1]);
			for (;;)
				pause();
		}
		setpgid(pn_fg, pn_fg);
		if (tcsetpgrp(s, pn_fg) || write(sync[1], &pn_fg, sizeof(pn_fg)) != sizeof(pn_fg))
			_exit(1);
		close(s);
		close(sync[1]);
		for (;;)
			pause();
	}
	close(sync[1]);
	if (read(sync[0], &pn_fg, sizeof(pn_fg)) != sizeof(pn_fg))
		return bad("the session leader did not set its terminal up");
	close(sync[0]);
	/* both ends in the tree, the slave outside the session */
	pty_s = open(pty_name, O_RDWR | O_NOCTTY);
	return pty_s < 0 ? bad("open %s: %s", pty_name, strerror(errno)) : 0;
}

static int pty_ctty_nofd_verify(void)
{
	char path[64], s[1024], *p;
	int tpgid;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pn_leader);
	if (read_whole(path, s, sizeof(s)) <= 0 || !(p = strrchr(s, ')')) ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %d", &tpgid) != 1)
		return bad("cannot read %s", path);
	return tpgid == pn_fg ? 0 : bad("the foreground group is %d, expected %d", tpgid,
					 (int)pn_fg);
}

static int pc_ask(char *ans, size_t len)
{
	struct pollfd p = { .fd = pty_m, .events = POLLIN };
	size_t got = 0;

	if (write(pty_m, "q\n", 2) != 2)
		return bad("write on the master: %s", strerror(errno));
	while (got < len - 1 && (!got || ans[got - 1] != '\n')) {
		ssize_t n;

		if (poll(&p, 1, 5000) != 1)
			return bad("no answer on the master (got '%.*s')", (int)got, ans);
		n = read(pty_m, ans + got, len - 1 - got);
		if (n <= 0)
			return bad("read on the master: %s", n ? strerror(errno) : "EOF");
		got += n;
	}
	ans[got] = 0;
	return 0;
}

static int pc_winch_expected;

static int pty_ctty_verify(void)
{
	char ans[256], name[64], exp[256];
	int pgrp, sid, same, winch;
	unsigned int row, col;

	if (strcmp(ptsname(pty_m) ?: "", pty_name))
		return bad("the master's slave is %s, expected %s", ptsname(pty_m), pty_name);
	if (pc_ask(ans, sizeof(ans)))
		return 1;
	if (sscanf(ans, "R %63s %d %d %d %u %u %d", name, &pgrp, &sid, &same, &row, &col,
		   &winch) != 7)
		return bad("answer '%s'", ans);
	snprintf(exp, sizeof(exp), "R %s %d %d 1 %u %u %d", pty_name, (int)pc_fg, (int)pc_leader,
		 pty_ws.ws_row, pty_ws.ws_col, pc_winch_expected);
	if (strncmp(ans, exp, strlen(exp)))
		return bad("the foreground process says '%.*s', expected '%s' (name pgrp sid "
			   "termios-same rows cols sigwinch)", (int)strcspn(ans, "\r\n"), ans, exp);
	/* a new size: one SIGWINCH to the foreground group */
	pty_ws.ws_row++;
	if (ioctl(pty_m, TIOCSWINSZ, &pty_ws))
		return bad("TIOCSWINSZ: %s", strerror(errno));
	pc_winch_expected++;
	if (pc_ask(ans, sizeof(ans)))
		return 1;
	snprintf(exp, sizeof(exp), "R %s %d %d 1 %u %u %d", pty_name, (int)pc_fg, (int)pc_leader,
		 pty_ws.ws_row, pty_ws.ws_col, pc_winch_expected);
	if (strncmp(ans, exp, strlen(exp)))
		return bad("after TIOCSWINSZ the foreground process says '%.*s', expected '%s'",
			   (int)strcspn(ans, "\r\n"), ans, exp);
	return 0;
}

/* pty_queued: 4 bytes written on the master that the slave has not read (refused, kept). */
static int pty_queued_setup(void)
{
	if (pty_setup())
		return 1;
	return write(pty_m, "left", 4) == 4 ? 0 : bad("write on the master: %s", strerror(errno));
}

static int pty_queued_verify(void)
{
	int n = -1;

	if (ioctl(pty_s, FIONREAD, &n) || n != 4)
		return bad("%d bytes queued on the slave, expected 4", n);
	return 0;
}

static int pty_outside_setup(void)
{
	if (pty_setup() || outside_holder())
		return 1;
	close(pty_m);	/* only the process outside holds the master now */
	pty_m = -1;
	return 0;
}

static int pty_outside_verify(void)
{
	struct termios t;

	return tcgetattr(pty_s, &t) ? bad("tcgetattr: %s", strerror(errno)) : 0;
}

/*
 * pidfds: of itself (PIDFD_NONBLOCK) and of a child. Checked: each names
 * the right pid (fdinfo), and the child's reaches that child: stopped and
 * continued by pidfd_send_signal, seen so by waitid(P_PIDFD).
 */
static int pidfd = -1, pidfd_c = -1;
static pid_t pidfd_child;

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static long pidfd_pid(int fd)
{
	char path[64], line[128];
	long pid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	if (!f)
		return -2;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Pid:", 4))
			pid = strtol(line + 4, NULL, 10);
	fclose(f);
	return pid;
}

static int pidfd_setup(void)
{
	pidfd = syscall(SYS_pidfd_open, getpid(), O_NONBLOCK);
	if (pidfd < 0)
		return bad("pidfd_open: %s", strerror(errno));
	pidfd_child = fork();
	if (pidfd_child < 0)
		return bad("fork: %s", strerror(errno));
	if (!pidfd_child) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (;;)
			pause();
	}
	pidfd_c = syscall(SYS_pidfd_open, pidfd_child, 0);
	return pidfd_c < 0 ? bad("pidfd_open: %s", strerror(errno)) : 0;
}

static int pidfd_verify(void)
{
	siginfo_t si;

	if (pidfd_pid(pidfd) != getpid() || pidfd_pid(pidfd_c) != pidfd_child)
		return bad("pidfds refer to pids %ld and %ld, expected %d and %d", pidfd_pid(pidfd),
			   pidfd_pid(pidfd_c), getpid(), pidfd_child);
	if (!(fcntl(pidfd, F_GETFL) & O_NONBLOCK) || (fcntl(pidfd_c, F_GETFL) & O_NONBLOCK))
		return bad("pidfd O_NONBLOCK flags changed");
	if (syscall(SYS_pidfd_send_signal, pidfd, 0, NULL, 0))
		return bad("pidfd_send_signal: %s", strerror(errno));
	if (syscall(SYS_pidfd_send_signal, pidfd_c, SIGSTOP, NULL, 0))
		return bad("pidfd_send_signal to the child: %s", strerror(errno));
	memset(&si, 0, sizeof(si));
	if (waitid(P_PIDFD, pidfd_c, &si, WSTOPPED) || si.si_pid != pidfd_child ||
	    si.si_code != CLD_STOPPED)
		return bad("waitid(P_PIDFD) on the stopped child: pid %d code %d (%s)", si.si_pid,
			   si.si_code, strerror(errno));
	if (syscall(SYS_pidfd_send_signal, pidfd_c, SIGCONT, NULL, 0))
		return bad("pidfd_send_signal SIGCONT: %s", strerror(errno));
	memset(&si, 0, sizeof(si));
	if (waitid(P_PIDFD, pidfd_c, &si, WCONTINUED) || si.si_pid != pidfd_child ||
	    si.si_code != CLD_CONTINUED)
		return bad("waitid(P_PIDFD) on the continued child: pid %d code %d (%s)",
			   si.si_pid, si.si_code, strerror(errno));
	return 0;
}

/* A pidfd of its parent, outside the tree. */
static int pidfd_outside_setup(void)
{
	pidfd = syscall(SYS_pidfd_open, getppid(), 0);
	return pidfd < 0 ? bad("pidfd_open: %s", strerror(errno)) : 0;
}

static int pidfd_outside_verify(void)
{
	return pidfd_pid(pidfd) == getppid() ? 0 : bad("the pidfd names pid %ld", pidfd_pid(pidfd));
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
	if (shm_id >= 0)
		shmctl(shm_id, IPC_RMID, NULL);
	_exit(0);
}

/*
 * System V shared memory: a segment of our key (0640, group 1234 by
 * IPC_SET), 3 pages: two of a pattern, the third a counter its writer (a
 * thread, or the child) bumps every 2 ms, checking first that the segment
 * still holds the value it wrote last: a page lost in a pre-copy round or
 * the final one shows as a stale counter ("stale" set in the segment).
 */
struct shm_tail {
	volatile uint64_t ctr;
	volatile uint64_t last;		/* the writer's own copy, in its private memory too */
	volatile int stale;
};

/* not a whole number of pages: the rest of the last page lies past the segment */
#define SHM_SEG_SIZE	(3 * psz - 24)

static pid_t shm_child = -1, shm_lpid;
static uint64_t shm_writer_last;	/* private: travels with the process's own memory */

static key_t shm_key(void)
{
	return 0x46530000 ^ getpid();
}

static struct shm_tail *shm_tail(void)
{
	return (struct shm_tail *)(shm_mem + 2 * psz);
}

static void shm_write_loop(void)
{
	struct shm_tail *t = shm_tail();

	for (;;) {
		if (t->ctr != shm_writer_last)
			t->stale = 1;
		t->ctr = ++shm_writer_last;
		sleep_ms(2);
	}
}

static void *shm_writer(void *arg)
{
	(void)arg;
	shm_write_loop();
	return NULL;
}

/* Segment @key (IPC_PRIVATE: a private one), attached, filled. */
static int shm_make(key_t key)
{
	struct shmid_ds ds;

	shm_id = shmget(key, SHM_SEG_SIZE, IPC_CREAT | IPC_EXCL | 0600);
	if (shm_id < 0)
		return bad("shmget: %s", strerror(errno));
	shm_mem = shmat(shm_id, NULL, 0);
	if (shm_mem == (void *)-1)
		return bad("shmat: %s", strerror(errno));
	if (shmctl(shm_id, IPC_STAT, &ds))
		return bad("IPC_STAT: %s", strerror(errno));
	ds.shm_perm.gid = 1234;
	ds.shm_perm.mode = 0640;
	if (shmctl(shm_id, IPC_SET, &ds))
		return bad("IPC_SET: %s", strerror(errno));
	for (long i = 0; i < 2 * psz; i++)
		shm_mem[i] = (i * 7 + 13) & 0xff;
	shm_lpid = getpid();
	return 0;
}

/* Is segment shm_id attached at shm_mem here (/proc/self/maps: "/SYSV<key>", inode the id)? */
static int shm_mapped_here(void)
{
	unsigned long lo, hi, ino;
	char line[512], name[64];
	struct stat st;
	int found = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return bad("/proc/self/maps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx %*s %*s %*s %lu %63s", &lo, &hi, &ino, name) == 4 &&
		    lo == (unsigned long)shm_mem && !strncmp(name, "/SYSV", 5))
			found = ino == (unsigned long)shm_id && hi - lo == (unsigned long)(3 * psz);
	fclose(f);
	if (!found)
		return bad("segment %d is not attached at %p (3 pages)", shm_id, shm_mem);
	/* its shmem file ends where the segment does (a restore's fill may not make it longer) */
	snprintf(name, sizeof(name), "/proc/self/map_files/%lx-%lx", (unsigned long)shm_mem,
		 (unsigned long)shm_mem + 3 * psz);
	if (stat(name, &st) || st.st_size != SHM_SEG_SIZE)
		return bad("segment %d's file is %lld bytes, expected %ld", shm_id,
			   (long long)st.st_size, SHM_SEG_SIZE);
	return 0;
}

/*
 * The segment as made, @nattch attachments, SHM_DEST and SHM_LOCKED as in @bits,
 * shm_lpid its last attacher, the writer's counter alive.
 */
static int shm_check(key_t key, unsigned long nattch, unsigned int bits)
{
	struct shm_tail *t = shm_tail();
	struct shmid_ds ds;
	uint64_t c0;
	int i;

	if (key != IPC_PRIVATE && shmget(key, 0, 0) != shm_id)
		return bad("key %#x names segment %d, expected %d", key, shmget(key, 0, 0), shm_id);
	if (shmctl(shm_id, IPC_STAT, &ds))
		return bad("IPC_STAT on segment %d: %s", shm_id, strerror(errno));
	if (ds.shm_segsz != (size_t)SHM_SEG_SIZE || (ds.shm_perm.mode & 0777) != 0640 ||
	    ds.shm_perm.gid != 1234 || ds.shm_perm.uid != geteuid() ||
	    ds.shm_perm.cuid != geteuid() || ds.shm_perm.cgid != getegid() ||
	    ds.shm_nattch != nattch || (ds.shm_perm.mode & (SHM_DEST | SHM_LOCKED)) != bits ||
	    ds.shm_perm.__key != key || ds.shm_lpid != shm_lpid)
		return bad("segment %d: key %#x size %zu mode %o uid %u gid %u cuid %u cgid %u "
			   "nattch %lu lpid %d, expected %#x %ld 0640 (| %#o), gid 1234, %lu, lpid %d",
			   shm_id, ds.shm_perm.__key, ds.shm_segsz, ds.shm_perm.mode,
			   ds.shm_perm.uid, ds.shm_perm.gid, ds.shm_perm.cuid, ds.shm_perm.cgid,
			   (unsigned long)ds.shm_nattch, ds.shm_lpid, key, SHM_SEG_SIZE,
			   bits, nattch, shm_lpid);
	if (shm_mapped_here() || check_pattern(shm_mem, 2 * psz, 13, "shm"))
		return 1;
	if (t->stale)
		return bad("the writer found its counter stale in the segment (a lost page)");
	c0 = t->ctr;
	for (i = 0; i < 200 && t->ctr == c0; i++)
		sleep_ms(10);
	return t->ctr != c0 ? 0 : bad("the segment's counter stays at %llu: no writer",
					(unsigned long long)c0);
}

/* Ours alone, its counter written by a thread of ours (pre-copy rounds see it change). */
static int sysv_shm_setup(void)
{
	pthread_t th;

	if (shm_make(shm_key()))
		return 1;
	if (pthread_create(&th, NULL, shm_writer, NULL))
		return bad("pthread_create failed");
	say("ipc shm %d\n", shm_id);
	return 0;
}

static int sysv_shm_verify(void)
{
	return shm_check(shm_key(), 1, 0);
}

/*
 * Ours and our child's, locked in memory (SHM_LOCK): it detaches and
 * attaches again at the same address, then writes the counter; then we do
 * too, the last attacher (shm_lpid): the restore attaches the child after
 * us, so it must make us the last one again.
 */
static int sysv_shm_tree_setup(void)
{
	struct shmid_ds ds;
	int i;

	if (shm_make(shm_key()))
		return 1;
	if (shmctl(shm_id, SHM_LOCK, NULL))
		return bad("SHM_LOCK: %s", strerror(errno));
	shm_child = fork();
	if (shm_child < 0)
		return bad("fork: %s", strerror(errno));
	if (!shm_child) {
		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (shmdt(shm_mem) || shmat(shm_id, shm_mem, 0) != shm_mem)
			_exit(1);
		shm_write_loop();
	}
	for (i = 0; i < 500; i++) {
		if (!shmctl(shm_id, IPC_STAT, &ds) && ds.shm_lpid == shm_child && shm_tail()->ctr)
			break;
		sleep_ms(10);
	}
	if (shmdt(shm_mem) || shmat(shm_id, shm_mem, 0) != shm_mem)
		return bad("attaching again: %s", strerror(errno));
	say("ipc shm %d\n", shm_id);
	return 0;
}

static int sysv_shm_tree_verify(void)
{
	return shm_check(shm_key(), 2, SHM_LOCKED);
}

/* A private segment removed while attached (SHM_DEST): it goes with its last detach. */
static int sysv_shm_rmid_setup(void)
{
	pthread_t th;

	if (shm_make(IPC_PRIVATE))
		return 1;
	if (shmctl(shm_id, IPC_RMID, NULL))
		return bad("IPC_RMID: %s", strerror(errno));
	if (pthread_create(&th, NULL, shm_writer, NULL))
		return bad("pthread_create failed");
	say("ipc shm %d\n", shm_id);
	return 0;
}

static int sysv_shm_rmid_verify(void)
{
	return shm_check(IPC_PRIVATE, 1, SHM_DEST);
}

/* Data past the segment's size in its last page: it would not travel, refused. */
static int sysv_shm_tail_setup(void)
{
	if (shm_make(shm_key()))
		return 1;
	shm_mem[SHM_SEG_SIZE + 3] = 0x5a;
	return 0;
}

static int sysv_shm_tail_verify(void)
{
	if (shm_mem[SHM_SEG_SIZE + 3] != 0x5a)
		return bad("the byte past the segment's size is 0x%02x", shm_mem[SHM_SEG_SIZE + 3]);
	return shm_mapped_here() || check_pattern(shm_mem, 2 * psz, 13, "shm");
}

/* In an IPC namespace of our own (not migrate's), a segment not even attached: refused. */
static int sysv_shm_ipcns_setup(void)
{
	if (unshare(CLONE_NEWIPC))
		return bad("unshare(CLONE_NEWIPC): %s", strerror(errno));
	if (shm_make(shm_key()))
		return 1;
	if (shmdt(shm_mem))
		return bad("shmdt: %s", strerror(errno));
	shm_mem = NULL;
	return 0;
}

static int sysv_shm_ipcns_verify(void)
{
	struct shmid_ds ds;

	if (shmget(shm_key(), 0, 0) != shm_id || shmctl(shm_id, IPC_STAT, &ds) || ds.shm_nattch)
		return bad("segment %d of our namespace: gone or attached", shm_id);
	return 0;
}

/* Ours, but its id is taken at the destination ("ipc shm_taken"): the restore must fail. */
static int sysv_shm_taken_setup(void)
{
	if (shm_make(shm_key()))
		return 1;
	say("ipc shm_taken %d\n", shm_id);
	return 0;
}

static int sysv_shm_taken_verify(void)
{
	struct shmid_ds ds;

	if (shmctl(shm_id, IPC_STAT, &ds) || ds.shm_nattch != 1)
		return bad("segment %d: not attached once", shm_id);
	return shm_mapped_here() || check_pattern(shm_mem, 2 * psz, 13, "shm");
}

/* Attached by a process outside the tree too (a grandchild whose parent is gone): refused. */
static int sysv_shm_outside_setup(void)
{
	pid_t me = getpid(), c;
	struct shmid_ds ds;
	int i;

	if (shm_make(shm_key()))
		return 1;
	c = fork();
	if (c < 0)
		return bad("fork: %s", strerror(errno));
	if (!c) {
		if (fork())
			_exit(0);
		while (!kill(me, 0))	/* attached (inherited) while we live */
			sleep(1);
		_exit(0);
	}
	waitpid(c, NULL, 0);
	for (i = 0; i < 500 && (shmctl(shm_id, IPC_STAT, &ds) || ds.shm_nattch != 2); i++)
		sleep_ms(10);
	return 0;
}

static int sysv_shm_outside_verify(void)
{
	struct shmid_ds ds;

	if (shmctl(shm_id, IPC_STAT, &ds) || ds.shm_nattch != 2)
		return bad("segment %d: not attached twice", shm_id);
	if (shm_mapped_here())
		return 1;
	return check_pattern(shm_mem, 2 * psz, 13, "shm");
}

/* A key of this process's own: the restored set must answer to it again. */
static key_t sem_key(void)
{
	return 0x46520000 ^ getpid();
}

/* Set @nsems, mode 0640, group 1234 (not ours: IPC_SET's must travel). */
static int sem_make(int nsems)
{
	struct semid_ds ds;

	sem_id = semget(sem_key(), nsems, IPC_CREAT | IPC_EXCL | 0600);
	if (sem_id < 0)
		return bad("semget: %s", strerror(errno));
	if (semctl(sem_id, 0, IPC_STAT, &ds))
		return bad("IPC_STAT: %s", strerror(errno));
	ds.sem_perm.gid = 1234;
	ds.sem_perm.mode = 0640;
	if (semctl(sem_id, 0, IPC_SET, &ds))
		return bad("IPC_SET: %s", strerror(errno));
	return 0;
}

/* The set of our key is sem_id still, with @nsems, values @v, last users @pids. */
static int sem_check(int nsems, const unsigned short *v, const pid_t *pids)
{
	unsigned short got[8] = { 0 };
	struct semid_ds ds;
	int i, id;

	id = semget(sem_key(), 0, 0);
	if (id != sem_id)
		return bad("key %#x names set %d, expected %d", sem_key(), id, sem_id);
	if (semctl(sem_id, 0, IPC_STAT, &ds))
		return bad("IPC_STAT on set %d: %s", sem_id, strerror(errno));
	if ((int)ds.sem_nsems != nsems || (ds.sem_perm.mode & 0777) != 0640 ||
	    ds.sem_perm.gid != 1234 || ds.sem_perm.uid != geteuid() ||
	    ds.sem_perm.cuid != geteuid() || ds.sem_perm.cgid != getegid())
		return bad("set %d: nsems %lu mode %o uid %u gid %u cuid %u cgid %u", sem_id,
			   (unsigned long)ds.sem_nsems, ds.sem_perm.mode & 0777, ds.sem_perm.uid,
			   ds.sem_perm.gid, ds.sem_perm.cuid, ds.sem_perm.cgid);
	if (semctl(sem_id, 0, GETALL, got))
		return bad("GETALL on set %d: %s", sem_id, strerror(errno));
	for (i = 0; i < nsems; i++) {
		int p = semctl(sem_id, i, GETPID);

		if (got[i] != v[i] || p != pids[i])
			return bad("semaphore %d: value %u last pid %d, expected %u and %d", i,
				   got[i], p, v[i], pids[i]);
	}
	return 0;
}

static int sysv_sem_setup(void)
{
	unsigned short v[3] = { 5, 7, 9 };

	if (sem_make(3))
		return 1;
	if (semctl(sem_id, 0, SETALL, v))
		return bad("SETALL: %s", strerror(errno));
	say("ipc sem %d\n", sem_id);
	return 0;
}

static int sysv_sem_verify(void)
{
	unsigned short v[3] = { 5, 7, 9 };
	pid_t me = getpid(), p[3] = { me, me, me };

	return sem_check(3, v, p);
}

/* A child of ours (of the tree) is the last user of semaphore 1, ... */
static pid_t sem_child = -1;

static int sem_wait_user(int n, pid_t *who)
{
	int i;

	for (i = 0; i < 500; i++) {
		*who = semctl(sem_id, n, GETPID);
		if (*who > 0)
			return 0;
		usleep(10000);
	}
	return bad("no one used semaphore %d", n);
}

/* A set of two, semaphore 0 at @v0 (ours last), and a fork of ours: its pid or -1. */
static pid_t sem_make2(int v0)
{
	pid_t c;

	if (sem_make(2))
		return -1;
	if (semctl(sem_id, 0, SETVAL, v0)) {
		bad("SETVAL: %s", strerror(errno));
		return -1;
	}
	c = fork();
	if (c < 0)
		bad("fork: %s", strerror(errno));
	return c;
}

static int sysv_sem_tree_setup(void)
{
	struct sembuf op = { 1, 4, 0 };
	pid_t who;
	int i;

	sem_child = sem_make2(3);
	if (sem_child < 0)
		return 1;
	if (!sem_child) {
		struct sembuf wait = { 0, -10, 0 };

		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		if (semop(sem_id, &op, 1))
			_exit(1);
		semop(sem_id, &wait, 1);	/* blocks: semaphore 0 is 3 */
		_exit(2);
	}
	if (sem_wait_user(1, &who))
		return 1;
	for (i = 0; i < 500 && semctl(sem_id, 0, GETNCNT) != 1; i++)
		usleep(10000);
	say("ipc sem %d\n", sem_id);
	return 0;
}

/* ... and waits in semop for semaphore 0 to reach 10 (GETNCNT 1), again after a restore. */
static int sysv_sem_tree_verify(void)
{
	unsigned short v[2] = { 3, 4 };
	pid_t p[2] = { getpid(), sem_child };
	int n;

	if (sem_check(2, v, p))
		return 1;
	n = semctl(sem_id, 0, GETNCNT);
	return n == 1 ? 0 : bad("%d processes wait on semaphore 0, expected our child", n);
}

/*
 * A process outside the tree (a grandchild whose parent is gone) is the
 * last user of semaphore 1: the set is shared, refused.
 */
static int sysv_sem_outside_setup(void)
{
	struct sembuf op = { 1, 1, 0 };
	pid_t me = getpid(), c, who;

	c = sem_make2(2);
	if (c < 0)
		return 1;
	if (!c) {
		if (fork())
			_exit(0);
		if (semop(sem_id, &op, 1))
			_exit(1);
		while (!kill(me, 0))	/* with us */
			sleep(1);
		_exit(0);
	}
	waitpid(c, NULL, 0);
	if (sem_wait_user(1, &who))
		return 1;
	return 0;
}

static int sysv_sem_outside_verify(void)
{
	unsigned short v[2] = { 2, 1 };
	pid_t p[2] = { getpid(), semctl(sem_id, 1, GETPID) };

	if (p[1] == getpid() || p[1] <= 0)
		return bad("semaphore 1's last user is %d", p[1]);
	return sem_check(2, v, p);
}

/* A SEM_UNDO adjustment (semadj) is ours: it cannot be read, so it is refused. */
static int sysv_sem_undo_setup(void)
{
	struct sembuf op = { 0, 2, SEM_UNDO };

	if (sem_make(1))
		return 1;
	if (semop(sem_id, &op, 1))
		return bad("semop: %s", strerror(errno));
	say("ipc sem %d\n", sem_id);
	return 0;
}

/* A set of one semaphore of value @v, ours last. */
static int sem_check1(unsigned short v)
{
	pid_t p = getpid();

	return sem_check(1, &v, &p);
}

static int sysv_sem_undo_verify(void)
{
	return sem_check1(2);
}

/*
 * The same from a process with threads: every thread gives the process an
 * undo list (CLONE_SYSVSEM), so whether it holds adjustments cannot be
 * told; with a set of the tree's to move, it is refused.
 */
static void *undo_thread(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static int sysv_sem_undo_threads_setup(void)
{
	pthread_t t;

	if (sysv_sem_undo_setup())
		return 1;
	errno = pthread_create(&t, NULL, undo_thread, NULL);
	return errno ? bad("pthread_create: %s", strerror(errno)) : 0;
}

static int sysv_sem_undo_threads_verify(void)
{
	return sem_check1(2);
}

/*
 * The test makes a set with the id of ours while the process is away (an
 * "ipc sem_taken" line): the restore finds its id taken and must fail.
 */
static int sysv_sem_taken_setup(void)
{
	if (sem_make(1))
		return 1;
	if (semctl(sem_id, 0, SETVAL, 1))
		return bad("SETVAL: %s", strerror(errno));
	say("ipc sem_taken %d\n", sem_id);
	return 0;
}

static int sysv_sem_taken_verify(void)
{
	return sem_check1(1);
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
	char text[3000];
};

static const struct { long type; size_t len; } objmsgs[3] = { { 1, 4 }, { 2, 4 }, { 7, 3000 } };
static pid_t msg_lrpid;		/* the last receiver we expect (0: none yet) */

/* Message @i's bytes: "one", "two", or a pattern. */
static void msg_text(int i, char *t)
{
	size_t k;

	if (i < 2) {
		strcpy(t, i ? "two" : "one");
		return;
	}
	for (k = 0; k < objmsgs[i].len; k++)
		t[k] = (k * 7 + 13) & 0xff;
}

static int msg_send(void)
{
	struct objmsg m;
	int i;

	for (i = 0; i < 3; i++) {
		m.type = objmsgs[i].type;
		msg_text(i, m.text);
		if (msgsnd(msg_id, &m, objmsgs[i].len, IPC_NOWAIT))
			return bad("msgsnd: %s", strerror(errno));
	}
	return 0;
}

static key_t msg_key(void)
{
	return 0x464d0000 ^ getpid();
}

/* A queue of our key, mode 0640, group 1234, qbytes 5000 (IPC_SET's must travel). */
static int msg_make(void)
{
	struct msqid_ds ds;

	msg_id = msgget(msg_key(), IPC_CREAT | IPC_EXCL | 0600);
	if (msg_id < 0)
		return bad("msgget: %s", strerror(errno));
	if (msgctl(msg_id, IPC_STAT, &ds))
		return bad("IPC_STAT: %s", strerror(errno));
	ds.msg_perm.gid = 1234;
	ds.msg_perm.mode = 0640;
	ds.msg_qbytes = 5000;
	if (msgctl(msg_id, IPC_SET, &ds))
		return bad("IPC_SET: %s", strerror(errno));
	return 0;
}

/* A child of ours waits in msgrcv for type 99, says what it got on msg_sock, waits again. */
static int msg_sock[2] = { -1, -1 };
static pid_t msg_child = -1;

static void msg_child_main(void)
{
	struct objmsg m;
	ssize_t n;

	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	for (;;) {
		n = msgrcv(msg_id, &m, sizeof(m.text), 99, 0);
		if (n < 0 || write(msg_sock[1], m.text, n) != n)
			_exit(1);
	}
}

static int sysv_msg_setup(void)
{
	if (msg_make())
		return 1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, msg_sock))
		return bad("socketpair: %s", strerror(errno));
	msg_child = fork();
	if (msg_child < 0)
		return bad("fork: %s", strerror(errno));
	if (!msg_child)
		msg_child_main();
	say("ipc msg %d\n", msg_id);
	return msg_send();
}

/* The child is still waiting: it takes "ping" and says so (it is then the last receiver). */
static int msg_ping(void)
{
	struct objmsg m = { 99, "ping" };
	struct pollfd p = { msg_sock[0], POLLIN, 0 };
	char got[8] = "";

	if (msgsnd(msg_id, &m, 5, IPC_NOWAIT))
		return bad("msgsnd: %s", strerror(errno));
	if (poll(&p, 1, 3000) != 1 || read(msg_sock[0], got, sizeof(got)) != 5 ||
	    strcmp(got, "ping"))
		return bad("the child waiting in msgrcv did not take the message");
	msg_lrpid = msg_child;
	return 0;
}

/*
 * Our key's queue, its identity, last users, then each message in order
 * (taken, the child pinged, sent again).
 */
static int sysv_msg_verify(void)
{
	struct objmsg m;
	char want[3000];
	struct msqid_ds ds;
	int i, id;

	id = msgget(msg_key(), 0);
	if (id != msg_id)
		return bad("key %#x names queue %d, expected %d", msg_key(), id, msg_id);
	if (msgctl(msg_id, IPC_STAT, &ds))
		return bad("msgctl(%d): %s", msg_id, strerror(errno));
	if (ds.msg_qnum != 3 || ds.__msg_cbytes != 3008 || ds.msg_qbytes != 5000 ||
	    (ds.msg_perm.mode & 0777) != 0640 || ds.msg_perm.gid != 1234 ||
	    ds.msg_perm.uid != geteuid() || ds.msg_perm.cuid != geteuid() ||
	    ds.msg_perm.cgid != getegid() || ds.msg_lspid != getpid() ||
	    ds.msg_lrpid != msg_lrpid)
		return bad("queue %d: %lu messages %lu bytes qbytes %lu mode %o uid %u gid %u "
			   "cuid %u cgid %u lspid %d lrpid %d (expected %d)", msg_id,
			   (unsigned long)ds.msg_qnum, (unsigned long)ds.__msg_cbytes,
			   (unsigned long)ds.msg_qbytes, ds.msg_perm.mode & 0777, ds.msg_perm.uid,
			   ds.msg_perm.gid, ds.msg_perm.cuid, ds.msg_perm.cgid, ds.msg_lspid,
			   ds.msg_lrpid, msg_lrpid);
	for (i = 0; i < 3; i++) {
		ssize_t n = msgrcv(msg_id, &m, sizeof(m.text), 0, IPC_NOWAIT);

		msg_text(i, want);
		if (n < 0)
			return bad("msgrcv: %s", strerror(errno));
		if (m.type != objmsgs[i].type || (size_t)n != objmsgs[i].len ||
		    memcmp(m.text, want, n))
			return bad("message %d: type %ld, %zd bytes, not as sent", i, m.type, n);
	}
	return msg_ping() || msg_send();
}

/* A process outside the tree (a grandchild whose parent is gone) took a message: refused. */
static int sysv_msg_outside_setup(void)
{
	pid_t c;
	int i;

	if (msg_make() || msg_send())
		return 1;
	c = fork();
	if (c < 0)
		return bad("fork: %s", strerror(errno));
	if (!c) {
		struct objmsg m;
		pid_t me = getppid();

		if (fork())
			_exit(0);
		if (msgrcv(msg_id, &m, sizeof(m.text), 0, IPC_NOWAIT) < 0)
			_exit(1);
		while (!kill(me, 0))	/* with us */
			sleep(1);
		_exit(0);
	}
	waitpid(c, NULL, 0);
	for (i = 0; i < 500; i++) {
		struct msqid_ds ds;

		if (!msgctl(msg_id, IPC_STAT, &ds) && ds.msg_lrpid > 0)
			return 0;
		usleep(10000);
	}
	return bad("no one took a message");
}

static int sysv_msg_outside_verify(void)
{
	struct msqid_ds ds;

	if (msgctl(msg_id, IPC_STAT, &ds))
		return bad("msgctl(%d): %s", msg_id, strerror(errno));
	return ds.msg_qnum == 2 && ds.msg_lrpid != getpid() ? 0 :
		bad("queue %d: %lu messages, last receiver %d", msg_id,
		    (unsigned long)ds.msg_qnum, ds.msg_lrpid);
}

/* --- process state CRIU's zdtm suite checks (docs/testing.md's matrix) ---- */

/* The VmFlags of the VMA holding @addr into @buf (empty if none). */
static void vm_flags_of(const void *addr, char *buf, size_t len)
{
	unsigned long lo, hi, a = (unsigned long)addr;
	char line[512];
	int in = 0;
	FILE *f = fopen("/proc/self/smaps", "r");

	buf[0] = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = lo <= a && a < hi;
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(buf, len, "%.*s", (int)len - 1, line + 8);
			break;
		}
	}
	fclose(f);
}

/* The line of /proc/self/task/@tid/status starting with @key, into @buf. */
static int task_status_line(pid_t tid, const char *key, char *buf, size_t len)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	f = fopen(path, "r");
	buf[0] = 0;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, strlen(key))) {
			line[strcspn(line, "\n")] = 0;
			snprintf(buf, len, "%.*s", (int)len - 1, line);
			break;
		}
	fclose(f);
	return buf[0] ? 0 : -1;
}

/* Starts @fn in a detached thread; 0 or bad(). */
static int start_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;

	errno = pthread_create(&t, NULL, fn, arg);
	if (errno)
		return bad("pthread_create: %s", strerror(errno));
	pthread_detach(t);
	return 0;
}

#if defined(__x86_64__)
/*
 * FPU/SSE/AVX registers: a thread keeps xmm8-15 (ymm8-15 with AVX) loaded
 * with a pattern while it spins, and compares them after each spin: a freeze
 * lands inside a spin, so the restored registers are what it compares.
 */
static atomic_ulong fr_spins;
static atomic_int fr_bad;
static int fr_avx;

static int fr_spin(uint64_t seed)
{
	uint64_t in[32], out[32];
	int i;

	for (i = 0; i < 32; i++)
		in[i] = seed * 0x9e3779b97f4a7c15ull + i * 0x0101010101010101ull;
	memset(out, 0, sizeof(out));
	if (fr_avx)
		asm volatile("vmovdqu 0(%0), %%ymm8\n\tvmovdqu 32(%0), %%ymm9\n\t"
			     "vmovdqu 64(%0), %%ymm10\n\tvmovdqu 96(%0), %%ymm11\n\t"
			     "vmovdqu 128(%0), %%ymm12\n\tvmovdqu 160(%0), %%ymm13\n\t"
			     "vmovdqu 192(%0), %%ymm14\n\tvmovdqu 224(%0), %%ymm15\n\t"
			     "mov $20000000, %%rcx\n1:\tdec %%rcx\n\tjnz 1b\n\t"
			     "vmovdqu %%ymm8, 0(%1)\n\tvmovdqu %%ymm9, 32(%1)\n\t"
			     "vmovdqu %%ymm10, 64(%1)\n\tvmovdqu %%ymm11, 96(%1)\n\t"
			     "vmovdqu %%ymm12, 128(%1)\n\tvmovdqu %%ymm13, 160(%1)\n\t"
			     "vmovdqu %%ymm14, 192(%1)\n\tvmovdqu %%ymm15, 224(%1)\n\tvzeroupper"
			     : : "r"(in), "r"(out)
			     : "rcx", "memory", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
			       "xmm13", "xmm14", "xmm15");
	else
		asm volatile("movdqu 0(%0), %%xmm8\n\tmovdqu 32(%0), %%xmm9\n\t"
			     "movdqu 64(%0), %%xmm10\n\tmovdqu 96(%0), %%xmm11\n\t"
			     "movdqu 128(%0), %%xmm12\n\tmovdqu 160(%0), %%xmm13\n\t"
			     "movdqu 192(%0), %%xmm14\n\tmovdqu 224(%0), %%xmm15\n\t"
			     "mov $20000000, %%rcx\n1:\tdec %%rcx\n\tjnz 1b\n\t"
			     "movdqu %%xmm8, 0(%1)\n\tmovdqu %%xmm9, 32(%1)\n\t"
			     "movdqu %%xmm10, 64(%1)\n\tmovdqu %%xmm11, 96(%1)\n\t"
			     "movdqu %%xmm12, 128(%1)\n\tmovdqu %%xmm13, 160(%1)\n\t"
			     "movdqu %%xmm14, 192(%1)\n\tmovdqu %%xmm15, 224(%1)"
			     : : "r"(in), "r"(out)
			     : "rcx", "memory", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
			       "xmm13", "xmm14", "xmm15");
	for (i = 0; i < 32; i++)
		if (!fr_avx && (i & 3) >= 2)
			continue;	/* only the low 128 bits were loaded */
		else if (in[i] != out[i])
			return 1;
	return 0;
}

static void *fr_thread(void *arg)
{
	uint64_t seed = 1;

	(void)arg;
	for (;;) {
		if (fr_spin(seed++))
			atomic_store(&fr_bad, 1);
		atomic_fetch_add(&fr_spins, 1);
		sleep_ms(20);	/* leave the loaded machine some CPU */
	}
	return NULL;
}

static int fpu_regs_setup(void)
{
	__builtin_cpu_init();
	fr_avx = __builtin_cpu_supports("avx");
	return start_thread(fr_thread, NULL);
}

static int fpu_regs_verify(void)
{
	unsigned long s = atomic_load(&fr_spins);
	int i;

	for (i = 0; i < 100 && atomic_load(&fr_spins) < s + 2; i++)
		sleep_ms(50);
	if (atomic_load(&fr_spins) < s + 2)
		return bad("the spinning thread made no progress");
	return atomic_load(&fr_bad) ? bad("%s registers changed during a spin",
					  fr_avx ? "ymm8-15" : "xmm8-15") : 0;
}

/* The x87 control word and MXCSR (rounding toward zero, FTZ, DAZ). */
#define FC_MXCSR (0x1f80 | (3 << 13) | (1 << 15) | (1 << 6))
#define FC_CW 0x0f7f

static int fpu_ctl_setup(void)
{
	unsigned int m = FC_MXCSR;
	unsigned short cw = FC_CW;

	asm volatile("ldmxcsr %0\n\tfldcw %1" : : "m"(m), "m"(cw));
	return 0;
}

static int fpu_ctl_verify(void)
{
	unsigned int m;
	unsigned short cw;

	asm volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(m), "=m"(cw));
	m &= ~0x3fu;	/* the exception flags are sticky, not state we set */
	if (m != FC_MXCSR || cw != FC_CW)
		return bad("MXCSR %#x x87 CW %#x, expected %#x and %#x", m, cw, FC_MXCSR, FC_CW);
	return 0;
}
#else
static int fpu_regs_setup(void) { return bad("x86-64 only"); }
static int fpu_regs_verify(void) { return 0; }
static int fpu_ctl_setup(void) { return bad("x86-64 only"); }
static int fpu_ctl_verify(void) { return 0; }
#endif

/* Memory protection keys: a page under a key that denies writes. */
static int pk_key = -1;
static unsigned char *pk_mem;

static int pkey_setup(void)
{
	pk_key = syscall(SYS_pkey_alloc, 0, 0x2 /* PKEY_DISABLE_WRITE */);
	if (pk_key < 0)
		return bad("pkey_alloc: %s", strerror(errno));
	pk_mem = mmap(NULL, 2 * psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pk_mem == MAP_FAILED)
		return bad("mmap: %s", strerror(errno));
	memset(pk_mem, 0x6b, 2 * psz);
	if (syscall(SYS_pkey_mprotect, pk_mem, psz, PROT_READ | PROT_WRITE, pk_key))
		return bad("pkey_mprotect: %s", strerror(errno));
	return 0;
}

static long smaps_pkey(const void *addr)
{
	unsigned long lo, hi, a = (unsigned long)addr;
	char line[512];
	long key = -1;
	int in = 0;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = lo <= a && a < hi;
		else if (in && sscanf(line, "ProtectionKey: %ld", &key) == 1)
			break;
	}
	fclose(f);
	return key;
}

static int pkey_verify(void)
{
	unsigned int pkru;
	long k = smaps_pkey(pk_mem), k2 = smaps_pkey(pk_mem + psz);

	asm volatile("xor %%ecx, %%ecx\n\trdpkru" : "=a"(pkru) : : "rcx", "rdx");
	if (k != pk_key || k2 != 0)
		return bad("ProtectionKey %ld and %ld, expected %d and 0", k, k2, pk_key);
	if (((pkru >> (2 * pk_key)) & 3) != 2)
		return bad("PKRU %#x: key %d rights %u, expected write-disabled (2)", pkru,
			   pk_key, (pkru >> (2 * pk_key)) & 3);
	return pk_mem[0] == 0x6b && pk_mem[2 * psz - 1] == 0x6b ? 0 : bad("contents changed");
}

/* An alternate signal stack on the main thread, with SS_AUTODISARM. */
static char *sa_stack;

static int sigaltstack_setup(void)
{
	stack_t ss = { .ss_size = 65536, .ss_flags = SS_AUTODISARM };

	sa_stack = malloc(ss.ss_size);
	ss.ss_sp = sa_stack;
	if (!sa_stack || sigaltstack(&ss, NULL))
		return bad("sigaltstack: %s", strerror(errno));
	return 0;
}

static int sigaltstack_verify(void)
{
	stack_t ss;

	if (sigaltstack(NULL, &ss))
		return bad("sigaltstack: %s", strerror(errno));
	if (ss.ss_sp != sa_stack || ss.ss_size != 65536 || (unsigned)ss.ss_flags != SS_AUTODISARM)
		return bad("altstack %p size %zu flags %#x, expected %p 65536 %#x", ss.ss_sp,
			   ss.ss_size, ss.ss_flags, (void *)sa_stack, SS_AUTODISARM);
	return 0;
}

/*
 * Blocked and pending signals: per-thread masks (main and a second thread),
 * signals pending for a thread (tgkill) and for the process (sigqueue with
 * values, kill), read from /proc first (SigPnd/ShdPnd keep them apart), then
 * taken with their siginfo and queued again.
 */
static pid_t sp_tid;
static int sp_tkill_code;	/* what this kernel puts in si_code for tgkill */
static char sp_lines[4][128];	/* main SigBlk, thread SigBlk, SigPnd, ShdPnd */

static void *sp_thread(void *arg)
{
	sigset_t s;

	(void)arg;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	sigaddset(&s, SIGRTMIN + 5);
	sigaddset(&s, SIGRTMIN + 4);
	sigaddset(&s, SIGUSR1);
	pthread_sigmask(SIG_SETMASK, &s, NULL);
	sp_tid = gettid();
	for (;;)
		pause();
	return NULL;
}

static int sp_queue(void)
{
	union sigval v;

	v.sival_int = 1111;
	if (sigqueue(getpid(), SIGRTMIN + 4, v))
		return bad("sigqueue: %s", strerror(errno));
	v.sival_int = 2222;
	if (sigqueue(getpid(), SIGRTMIN + 4, v) || kill(getpid(), SIGUSR1) ||
	    syscall(SYS_tgkill, getpid(), gettid(), SIGRTMIN + 4))
		return bad("queue: %s", strerror(errno));
	return 0;
}

static int sp_read(char l[4][128])
{
	return task_status_line(gettid(), "SigBlk:", l[0], 128) ||
	       task_status_line(sp_tid, "SigBlk:", l[1], 128) ||
	       task_status_line(gettid(), "SigPnd:", l[2], 128) ||
	       task_status_line(gettid(), "ShdPnd:", l[3], 128);
}

static int sigpending_setup(void)
{
	struct timespec zero = { 0, 0 };
	siginfo_t si;
	sigset_t s;
	int i;

	sigemptyset(&s);
	sigaddset(&s, SIGRTMIN + 4);
	sigaddset(&s, SIGUSR1);
	sigaddset(&s, SIGRTMIN + 9);
	sigprocmask(SIG_BLOCK, &s, NULL);
	if (syscall(SYS_tgkill, getpid(), gettid(), SIGRTMIN + 9) ||
	    sigtimedwait(&s, &si, &zero) != SIGRTMIN + 9)
		return bad("tgkill: %s", strerror(errno));
	sp_tkill_code = si.si_code;
	if (start_thread(sp_thread, NULL))
		return 1;
	for (i = 0; i < 100 && !sp_tid; i++)
		sleep_ms(10);
	if (sp_queue())
		return 1;
	return sp_read(sp_lines) ? bad("cannot read status") : 0;
}

static int sigpending_verify(void)
{
	int want_code[4] = { sp_tkill_code, SI_USER, SI_QUEUE, SI_QUEUE };
	int want_sig[4] = { SIGRTMIN + 4, SIGUSR1, SIGRTMIN + 4, SIGRTMIN + 4 };
	int want_val[4] = { 0, 0, 1111, 2222 };
	struct timespec zero = { 0, 0 };
	char now[4][128];
	siginfo_t si;
	sigset_t s;
	int i;

	if (sp_read(now))
		return bad("cannot read status");
	for (i = 0; i < 4; i++)
		if (strcmp(now[i], sp_lines[i]))
			return bad("'%s', expected '%s'", now[i], sp_lines[i]);
	sigemptyset(&s);
	sigaddset(&s, SIGRTMIN + 4);
	sigaddset(&s, SIGUSR1);
	/* the thread's own queue first, then the process's, lowest number first */
	for (i = 0; i < 4; i++) {
		if (sigtimedwait(&s, &si, &zero) != want_sig[i])
			return bad("signal %d: %d (%s), expected %d", i, si.si_signo,
				   strerror(errno), want_sig[i]);
		if (si.si_code != want_code[i] || si.si_pid != getpid() || si.si_uid != getuid() ||
		    (want_code[i] == SI_QUEUE && si.si_value.sival_int != want_val[i]))
			return bad("signal %d (%d): code %d pid %d uid %d value %d", i,
				   si.si_signo, si.si_code, si.si_pid, si.si_uid,
				   si.si_value.sival_int);
	}
	if (sigtimedwait(&s, &si, &zero) >= 0)
		return bad("signal %d pending more than once", si.si_signo);
	return sp_queue();
}

/* Signal dispositions: handlers with flags and masks, an ignored signal. */
static void sa_handler2(int sig, siginfo_t *si, void *uc) { (void)sig; (void)si; (void)uc; }
static void sa_handler1(int sig) { (void)sig; }
static struct sigaction sa_want[3];
static const int sa_sigs[3] = { SIGUSR2, SIGWINCH, SIGPIPE };

static int sigaction_setup(void)
{
	struct sigaction a = { 0 };
	int i;

	a.sa_sigaction = sa_handler2;
	a.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK | SA_NODEFER;
	sigaddset(&a.sa_mask, SIGINT);
	sigaddset(&a.sa_mask, SIGRTMIN + 1);
	sigaction(SIGUSR2, &a, NULL);
	memset(&a, 0, sizeof(a));
	a.sa_handler = sa_handler1;
	a.sa_flags = SA_RESETHAND;
	sigaddset(&a.sa_mask, SIGRTMAX);
	sigaction(SIGWINCH, &a, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < 3; i++)
		sigaction(sa_sigs[i], NULL, &sa_want[i]);
	return 0;
}

static int sigaction_verify(void)
{
	struct sigaction a;
	int i, s;

	for (i = 0; i < 3; i++) {
		sigaction(sa_sigs[i], NULL, &a);
		if (a.sa_handler != sa_want[i].sa_handler || a.sa_flags != sa_want[i].sa_flags)
			return bad("signal %d: handler %p flags %#x, expected %p %#x", sa_sigs[i],
				   (void *)a.sa_handler, a.sa_flags,
				   (void *)sa_want[i].sa_handler, sa_want[i].sa_flags);
		for (s = 1; s < NSIG; s++)
			if (sigismember(&a.sa_mask, s) != sigismember(&sa_want[i].sa_mask, s))
				return bad("signal %d: signal %d in sa_mask changed", sa_sigs[i], s);
	}
	return 0;
}

/* Interval timers: ITIMER_REAL, VIRTUAL and PROF with intervals. */
static const struct itimerval it_want[3] = {
	{ { 200, 0 }, { 300, 0 } },
	{ { 100, 250000 }, { 300, 0 } },
	{ { 50, 0 }, { 250, 500000 } },
};
static long it_last[3];

static int itimers_setup(void)
{
	int w;

	for (w = 0; w < 3; w++) {
		if (setitimer(w, &it_want[w], NULL))
			return bad("setitimer %d: %s", w, strerror(errno));
		it_last[w] = it_want[w].it_value.tv_sec * 1000000L + it_want[w].it_value.tv_usec;
	}
	return 0;
}

static int itimers_verify(void)
{
	struct itimerval v;
	long left;
	int w;

	for (w = 0; w < 3; w++) {
		getitimer(w, &v);
		left = v.it_value.tv_sec * 1000000L + v.it_value.tv_usec;
		if (v.it_interval.tv_sec != it_want[w].it_interval.tv_sec ||
		    v.it_interval.tv_usec != it_want[w].it_interval.tv_usec)
			return bad("itimer %d interval %ld.%06ld, expected %ld.%06ld", w,
				   (long)v.it_interval.tv_sec, (long)v.it_interval.tv_usec,
				   (long)it_want[w].it_interval.tv_sec,
				   (long)it_want[w].it_interval.tv_usec);
		/* time left only goes down (a tick of rounding allowed) */
		if (left <= 0 || left > it_last[w] + 10000)
			return bad("itimer %d has %ld us left, %ld at the last check", w, left,
				   it_last[w]);
		it_last[w] = left;
	}
	return 0;
}

/* Resource limits: every one, several lowered. */
static struct rlimit rl_want[RLIM_NLIMITS];

static int rlimits_setup(void)
{
	static const struct { int r; rlim_t cur, max; } set[] = {
		{ RLIMIT_NOFILE, 333, 444 },
		{ RLIMIT_CORE, 4096, RLIM_INFINITY },
		{ RLIMIT_MSGQUEUE, 12345, 67890 },
		{ RLIMIT_NICE, 5, 10 },
		{ RLIMIT_RTPRIO, 3, 4 },
		{ RLIMIT_SIGPENDING, 999, 1999 },
		{ RLIMIT_CPU, 100000, RLIM_INFINITY },
		{ RLIMIT_FSIZE, 1L << 40, RLIM_INFINITY },
		{ RLIMIT_LOCKS, 777, 888 },
	};
	size_t i;

	for (i = 0; i < sizeof(set) / sizeof(set[0]); i++) {
		struct rlimit r;

		/* only lowered: raising a hard limit needs CAP_SYS_RESOURCE */
		getrlimit(set[i].r, &r);
		if (set[i].max < r.rlim_max)
			r.rlim_max = set[i].max;
		r.rlim_cur = set[i].cur < r.rlim_max ? set[i].cur : r.rlim_max;
		if (setrlimit(set[i].r, &r))
			return bad("setrlimit %d: %s", set[i].r, strerror(errno));
	}
	for (i = 0; i < RLIM_NLIMITS; i++)
		getrlimit(i, &rl_want[i]);
	return 0;
}

static int rlimits_verify(void)
{
	struct rlimit r;
	int i;

	for (i = 0; i < RLIM_NLIMITS; i++) {
		getrlimit(i, &r);
		if (r.rlim_cur != rl_want[i].rlim_cur || r.rlim_max != rl_want[i].rlim_max)
			return bad("rlimit %d is %llu/%llu, expected %llu/%llu", i,
				   (unsigned long long)r.rlim_cur, (unsigned long long)r.rlim_max,
				   (unsigned long long)rl_want[i].rlim_cur,
				   (unsigned long long)rl_want[i].rlim_max);
	}
	return 0;
}

/* personality(2) flags. */
#define PERS_WANT (0x0040000 /* ADDR_NO_RANDOMIZE */ | 0x0020000 /* UNAME26 */)

static int personality_setup(void)
{
	return personality(PERS_WANT) < 0 ? bad("personality: %s", strerror(errno)) : 0;
}

static int personality_verify(void)
{
	int p = personality(0xffffffff);

	return p == PERS_WANT ? 0 : bad("personality %#x, expected %#x", p, PERS_WANT);
}

/* umask */
static int umask_setup(void)
{
	umask(0345);
	return 0;
}

static int umask_verify(void)
{
	mode_t m = umask(0345);

	return m == 0345 ? 0 : bad("umask %03o, expected 0345", (unsigned)m);
}

/* A cwd somewhere else than where it started, used through relative paths. */
static char cw_path[4096];

static int cwd_rel_setup(void)
{
	int fd;

	scratch(cw_path, sizeof(cw_path), "cwd");
	if (mkdir(cw_path, 0700) && errno != EEXIST)
		return bad("mkdir: %s", strerror(errno));
	if (chdir(cw_path))
		return bad("chdir: %s", strerror(errno));
	fd = open("rel", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "relative", 8) != 8)
		return bad("rel: %s", strerror(errno));
	close(fd);
	return 0;
}

static int cwd_rel_verify(void)
{
	char b[4096], d[16] = "";
	int fd;

	if (!getcwd(b, sizeof(b)) || strcmp(b, cw_path))
		return bad("cwd %s, expected %s", b, cw_path);
	fd = open("rel", O_RDONLY);
	if (fd < 0 || read(fd, d, 8) != 8 || memcmp(d, "relative", 8))
		return bad("./rel: %s '%s'", strerror(errno), d);
	close(fd);
	return 0;
}

/*
 * File positions and fd flags: one description at offset 1234 under two
 * fds (one FD_CLOEXEC), an O_APPEND one, fd 777 with 776 closed, and a
 * description with O_NOATIME|O_SYNC|O_NONBLOCK.
 */
static int fp_fd, fp_dup, fp_app, fp_fl, fp_flags;

static int file_pos_setup(void)
{
	char path[4096];

	fp_fd = make_file("fp", 4096, 9);
	scratch(path, sizeof(path), "fp");
	fp_app = open(path, O_WRONLY | O_APPEND);
	fp_fl = open(path, O_RDONLY | O_NOATIME | O_SYNC | O_NONBLOCK);
	if (fp_fd < 0 || fp_app < 0 || fp_fl < 0 || lseek(fp_fd, 1234, SEEK_SET) != 1234)
		return bad("open: %s", strerror(errno));
	fp_dup = fcntl(fp_fd, F_DUPFD_CLOEXEC, 40);
	if (fp_dup < 0 || dup2(fp_fd, 777) != 777)
		return bad("dup: %s", strerror(errno));
	close(776);
	fp_flags = fcntl(fp_fl, F_GETFL);
	return 0;
}

static int file_pos_verify(void)
{
	struct stat a, b;

	if (lseek(fp_fd, 0, SEEK_CUR) != 1234 || lseek(fp_dup, 0, SEEK_CUR) != 1234 ||
	    lseek(777, 0, SEEK_CUR) != 1234)
		return bad("offsets %ld %ld %ld, expected 1234", (long)lseek(fp_fd, 0, SEEK_CUR),
			   (long)lseek(fp_dup, 0, SEEK_CUR), (long)lseek(777, 0, SEEK_CUR));
	if (fcntl(fp_fd, F_GETFD) != 0 || fcntl(fp_dup, F_GETFD) != FD_CLOEXEC)
		return bad("FD_CLOEXEC %d and %d, expected 0 and 1", fcntl(fp_fd, F_GETFD),
			   fcntl(fp_dup, F_GETFD));
	if (!(fcntl(fp_app, F_GETFL) & O_APPEND))
		return bad("O_APPEND lost: flags %#x", fcntl(fp_app, F_GETFL));
	if (fcntl(fp_fl, F_GETFL) != fp_flags)
		return bad("flags %#x, expected %#x", fcntl(fp_fl, F_GETFL), fp_flags);
	if (fcntl(776, F_GETFD) != -1)
		return bad("fd 776 is open: %s", fd_link(776));
	if (fstat(fp_fd, &a) || fstat(777, &b) || a.st_ino != b.st_ino)
		return bad("fd 777 is %s", fd_link(777));
	return 0;
}

/* A file's atime older than its mtime (a read would move it): untouched. */
static int ft_fd;

static int file_times_setup(void)
{
	char path[4096];
	struct timespec t[2] = { { 1000000000, 111 }, { 1100000000, 222 } };

	ft_fd = make_file("ft", 100, 3);
	scratch(path, sizeof(path), "ft");
	close(ft_fd);
	if (utimensat(AT_FDCWD, path, t, 0))
		return bad("utimensat: %s", strerror(errno));
	ft_fd = open(path, O_RDONLY);
	return ft_fd < 0 ? bad("open: %s", strerror(errno)) : 0;
}

static int file_times_verify(void)
{
	struct stat st;

	if (fstat(ft_fd, &st))
		return bad("fstat: %s", strerror(errno));
	if (st.st_atim.tv_sec != 1000000000 || st.st_atim.tv_nsec != 111 ||
	    st.st_mtim.tv_sec != 1100000000 || st.st_mtim.tv_nsec != 222)
		return bad("atime %ld.%09ld mtime %ld.%09ld changed", (long)st.st_atim.tv_sec,
			   st.st_atim.tv_nsec, (long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
	return 0;
}

/* An open directory that was removed. */
static int ud_fd;

static int unlinked_dir_setup(void)
{
	char path[4096];

	scratch(path, sizeof(path), "ud");
	if (mkdir(path, 0700) && errno != EEXIST)
		return bad("mkdir: %s", strerror(errno));
	ud_fd = open(path, O_RDONLY | O_DIRECTORY);
	if (ud_fd < 0 || rmdir(path))
		return bad("open/rmdir: %s", strerror(errno));
	return 0;
}

static int unlinked_dir_verify(void)
{
	struct stat st;

	if (fstat(ud_fd, &st) || !S_ISDIR(st.st_mode) || st.st_nlink != 0)
		return bad("fd %d: %s, nlink %lu", ud_fd, fd_link(ud_fd), (unsigned long)st.st_nlink);
	if (openat(ud_fd, "x", O_CREAT | O_WRONLY, 0600) >= 0 || errno != ENOENT)
		return bad("a file could be made in the removed directory");
	return 0;
}

/* A directory fd part-way through its entries. */
static int dp_fd;
static off_t dp_pos;
static char dp_next[256];

static int dir_next(char *name, size_t len)
{
	char buf[512];
	long n = syscall(SYS_getdents64, dp_fd, buf, sizeof(buf));
	struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; } *d;

	if (n <= 0)
		return -1;
	d = (void *)buf;
	snprintf(name, len, "%.*s", (int)len - 1, d->name);
	lseek(dp_fd, d->off, SEEK_SET);	/* past this one entry only */
	return 0;
}

static int dir_pos_setup(void)
{
	char path[4096], f[4200];
	int i, fd;

	scratch(path, sizeof(path), "dp");
	if (mkdir(path, 0700) && errno != EEXIST)
		return bad("mkdir: %s", strerror(errno));
	for (i = 0; i < 40; i++) {
		snprintf(f, sizeof(f), "%s/entry-%02d", path, i);
		fd = open(f, O_CREAT | O_WRONLY, 0600);
		if (fd < 0)
			return bad("%s: %s", f, strerror(errno));
		close(fd);
	}
	dp_fd = open(path, O_RDONLY | O_DIRECTORY);
	if (dp_fd < 0)
		return bad("open: %s", strerror(errno));
	for (i = 0; i < 12; i++)
		if (dir_next(dp_next, sizeof(dp_next)))
			return bad("getdents64: %s", strerror(errno));
	dp_pos = lseek(dp_fd, 0, SEEK_CUR);
	if (dir_next(dp_next, sizeof(dp_next)))
		return bad("getdents64: %s", strerror(errno));
	lseek(dp_fd, dp_pos, SEEK_SET);
	return 0;
}

static int dir_pos_verify(void)
{
	off_t p = lseek(dp_fd, 0, SEEK_CUR);
	char n[256] = "";

	if (p != dp_pos)
		return bad("directory offset %ld, expected %ld", (long)p, (long)dp_pos);
	if (dir_next(n, sizeof(n)) || strcmp(n, dp_next))
		return bad("next entry '%s', expected '%s'", n, dp_next);
	lseek(dp_fd, dp_pos, SEEK_SET);
	return 0;
}

/* One mapping split by mprotect into five VMAs of different protections. */
static unsigned char *vs_mem;
static const int vs_prot[8] = {
	PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE, PROT_READ, PROT_READ,
	PROT_NONE, PROT_READ | PROT_EXEC, PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE,
};

static int vma_split_setup(void)
{
	int i;

	vs_mem = mmap(NULL, 8 * psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vs_mem == MAP_FAILED)
		return bad("mmap: %s", strerror(errno));
	for (long j = 0; j < 8 * psz; j++)
		vs_mem[j] = (j * 7 + 17) & 0xff;
	for (i = 0; i < 8; i++)
		if (mprotect(vs_mem + i * psz, psz, vs_prot[i]))
			return bad("mprotect: %s", strerror(errno));
	return 0;
}

static int vma_split_verify(void)
{
	char perms[8], want[5];
	int i;

	for (i = 0; i < 8; i++) {
		maps_perms(vs_mem + i * psz, perms);
		snprintf(want, sizeof(want), "%c%c%cp", vs_prot[i] & PROT_READ ? 'r' : '-',
			 vs_prot[i] & PROT_WRITE ? 'w' : '-', vs_prot[i] & PROT_EXEC ? 'x' : '-');
		if (strcmp(perms, want))
			return bad("page %d is %s, expected %s", i, perms, want);
		if (vs_prot[i] != PROT_NONE &&
		    check_pattern(vs_mem + i * psz, psz, (i * psz * 7 + 17) & 0xff, "page"))
			return 1;
	}
	return 0;
}

/* An area grown by mremap (moved), its new tail partly written. */
static unsigned char *mr_mem;

static int mremap_grow_setup(void)
{
	unsigned char *p = mmap(NULL, 4 * psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return bad("mmap: %s", strerror(errno));
	for (long j = 0; j < 4 * psz; j++)
		p[j] = (j * 7 + 5) & 0xff;
	/* a neighbour right after it forces the move */
	mmap(p + 4 * psz, psz, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	mr_mem = mremap(p, 4 * psz, 8 * psz, MREMAP_MAYMOVE);
	if (mr_mem == MAP_FAILED)
		return bad("mremap: %s", strerror(errno));
	for (long j = 4 * psz; j < 6 * psz; j++)
		mr_mem[j] = (j * 7 + 5) & 0xff;
	return 0;
}

static int mremap_grow_verify(void)
{
	unsigned long lo, hi, a = (unsigned long)mr_mem;
	char line[512];
	int found = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= a && a < hi)
			found = hi >= a + 8 * psz;
	if (f)
		fclose(f);
	if (!found)
		return bad("no 8-page VMA at %p", (void *)mr_mem);
	if (check_pattern(mr_mem, 6 * psz, 5, "moved page"))
		return 1;
	for (long j = 6 * psz; j < 8 * psz; j++)
		if (mr_mem[j])
			return bad("byte %ld of the untouched tail is %#x", j, mr_mem[j]);
	return 0;
}

/* VmFlags of mappings made with flags and advice: MAP_GROWSDOWN,
 * MAP_NORESERVE, MADV_SEQUENTIAL, MADV_RANDOM, an executable anonymous one. */
static unsigned char *vm_areas[5];
static char vm_want[5][128];

static int vmflags_setup(void)
{
	static const int flags[5] = { MAP_GROWSDOWN, MAP_NORESERVE, 0, 0, 0 };
	static const int advice[5] = { 0, 0, MADV_SEQUENTIAL, MADV_RANDOM, 0 };
	int i;

	for (i = 0; i < 5; i++) {
		vm_areas[i] = mmap(NULL, 4 * psz, PROT_READ | PROT_WRITE | (i == 4 ? PROT_EXEC : 0),
				   MAP_PRIVATE | MAP_ANONYMOUS | flags[i], -1, 0);
		if (vm_areas[i] == MAP_FAILED)
			return bad("mmap %d: %s", i, strerror(errno));
		memset(vm_areas[i] + psz, 0x40 + i, 3 * psz);
		if (advice[i] && madvise(vm_areas[i], 4 * psz, advice[i]))
			return bad("madvise: %s", strerror(errno));
		vm_flags_of(vm_areas[i] + psz, vm_want[i], sizeof(vm_want[i]));
	}
	return 0;
}

static int vmflags_verify(void)
{
	char now[128];
	int i;

	size_t n = 0;

	for (i = 0; i < 5; i++) {
		vm_flags_of(vm_areas[i] + psz, now, sizeof(now));
		if (strcmp(now, vm_want[i]))
			n += snprintf(why + n, sizeof(why) - n, "area %d: VmFlags '%s', expected '%s'; ",
				      i, now, vm_want[i]);
	}
	if (n)
		return 1;
	for (i = 0; i < 5; i++) {
		if (vm_areas[i][psz] != 0x40 + i || vm_areas[i][4 * psz - 1] != 0x40 + i)
			return bad("area %d: contents changed", i);
	}
	return 0;
}

/*
 * The mm's fields in /proc/self/stat (code, data, brk, stack, arguments,
 * environment), the auxv, cmdline, environ and exe, and memory grown
 * with sbrk.
 */
static char mm_stat[512], mm_aux[1024], mm_cmd[1024], mm_env[8192], mm_exe[4096];
static unsigned char *mm_brk;

static int read_whole(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n, t = 0;

	if (fd < 0)
		return -1;
	while ((size_t)t < len - 1 && (n = read(fd, buf + t, len - 1 - t)) > 0)
		t += n;
	close(fd);
	buf[t] = 0;
	return t;
}

/* fields 26-28 and 45-52 of stat (after the comm), as text */
static void mm_stat_fields(char *buf, size_t len)
{
	char s[2048], *p;
	int f, n = 0;

	buf[0] = 0;
	if (read_whole("/proc/self/stat", s, sizeof(s)) <= 0 || !(p = strrchr(s, ')')))
		return;
	p += 2;
	for (f = 3; p && *p; f++) {
		char *e = strchr(p, ' ');

		if ((f >= 26 && f <= 28) || (f >= 45 && f <= 51))
			n += snprintf(buf + n, len - n, "%d=%.*s ", f, e ? (int)(e - p) : (int)strlen(p), p);
		p = e ? e + 1 : NULL;
	}
}

static int mm_fields_setup(void)
{
	mm_brk = sbrk(3 * psz);
	if (mm_brk == (void *)-1)
		return bad("sbrk: %s", strerror(errno));
	memset(mm_brk, 0x77, 3 * psz);
	mm_stat_fields(mm_stat, sizeof(mm_stat));
	read_whole("/proc/self/auxv", mm_aux, sizeof(mm_aux));
	read_whole("/proc/self/cmdline", mm_cmd, sizeof(mm_cmd));
	read_whole("/proc/self/environ", mm_env, sizeof(mm_env));
	if (readlink("/proc/self/exe", mm_exe, sizeof(mm_exe) - 1) < 0)
		return bad("readlink exe: %s", strerror(errno));
	return 0;
}

static int mm_fields_verify(void)
{
	char s[512], aux[1024], cmd[1024], env[8192], exe[4096] = "";
	int na, nc, ne;

	mm_stat_fields(s, sizeof(s));
	/* the current brk (malloc moves it) is not among them */
	if (strcmp(s, mm_stat))
		return bad("stat fields '%s', expected '%s'", s, mm_stat);
	na = read_whole("/proc/self/auxv", aux, sizeof(aux));
	nc = read_whole("/proc/self/cmdline", cmd, sizeof(cmd));
	ne = read_whole("/proc/self/environ", env, sizeof(env));
	if (na <= 0 || memcmp(aux, mm_aux, na))
		return bad("auxv changed");
	if (nc <= 0 || memcmp(cmd, mm_cmd, nc) || strlen(cmd) != strlen(mm_cmd))
		return bad("cmdline '%s', expected '%s'", cmd, mm_cmd);
	if (ne <= 0 || memcmp(env, mm_env, ne))
		return bad("environ changed");
	if (readlink("/proc/self/exe", exe, sizeof(exe) - 1) < 0 || strcmp(exe, mm_exe))
		return bad("exe '%s', expected '%s'", exe, mm_exe);
	for (long j = 0; j < 3 * psz; j++)
		if (mm_brk[j] != 0x77)
			return bad("sbrk'd byte %ld changed", j);
	if (sbrk(psz) == (void *)-1 || sbrk(-psz) == (void *)-1)
		return bad("sbrk after restore: %s", strerror(errno));
	return 0;
}

/*
 * Threads blocked in syscalls at the freeze: futex wait, nanosleep,
 * clock_nanosleep to an absolute time, poll on a pipe, epoll_wait,
 * sigwaitinfo, select with a timeout, read on a pipe. None may return early (but epoll_wait and sigwaitinfo,
 * which any ptrace stop ends with EINTR, see signal(7)); each must wake for
 * its own event with the right result, then block again.
 */
enum { BT_FUTEX, BT_SLEEP, BT_ABS, BT_POLL, BT_EPOLL, BT_SIGWAIT, BT_SELECT, BT_READ, BT_N };
static const char *const bt_name[BT_N] = {
	"futex", "nanosleep", "clock_nanosleep", "poll", "epoll_wait", "sigwaitinfo", "select",
	"read",
};
static atomic_int bt_word;
static atomic_int bt_woke[BT_N], bt_early[BT_N];
static pid_t bt_tid[BT_N];
static int bt_pipe[2], bt_pipe2[2], bt_pipe3[2], bt_pipe4[2], bt_ep;
static char bt_err[BT_N][96];

static void bt_fail(int w, const char *fmt, long v)
{
	snprintf(bt_err[w], sizeof(bt_err[w]), fmt, v);
	atomic_store(&bt_early[w], 1);
}

static void *bt_thread(void *arg)
{
	int w = (int)(long)arg, expect = 0;
	struct timespec ts;
	char c;
	long r;

	bt_tid[w] = gettid();
	for (;;) {
		switch (w) {
		case BT_FUTEX:
			r = syscall(SYS_futex, &bt_word, FUTEX_WAIT_PRIVATE, expect, NULL, NULL, 0);
			if (atomic_load(&bt_word) == expect) {
				bt_fail(w, "returned %ld with the word unchanged", r);
				continue;
			}
			expect = atomic_load(&bt_word);
			break;
		case BT_SLEEP:
		case BT_ABS:
			ts.tv_sec = 3600;
			ts.tv_nsec = 0;
			if (w == BT_ABS) {
				clock_gettime(CLOCK_MONOTONIC, &ts);
				ts.tv_sec += 3600;
			}
			r = clock_nanosleep(CLOCK_MONOTONIC, w == BT_ABS ? TIMER_ABSTIME : 0, &ts, &ts);
			bt_fail(w, "returned %ld before its hour", r);
			for (;;)
				pause();
		case BT_POLL: {
			struct pollfd p = { .fd = bt_pipe[0], .events = POLLIN };

			r = poll(&p, 1, 3600 * 1000);
			if (r != 1 || read(bt_pipe[0], &c, 1) != 1 || c != 'p') {
				bt_fail(w, "returned %ld without its byte", r);
				continue;
			}
			break;
		}
		case BT_EPOLL: {
			struct epoll_event e;

			r = epoll_wait(bt_ep, &e, 1, 3600 * 1000);
			if (r < 0 && errno == EINTR)
				continue;	/* what any ptrace stop does to it (signal(7)) */
			if (r != 1 || e.data.u64 != 0xabcdef || read(bt_pipe2[0], &c, 1) != 1) {
				bt_fail(w, "returned %ld without its event", r);
				continue;
			}
			break;
		}
		case BT_SELECT: {
			struct timeval tv = { 3600, 0 };
			fd_set rd;

			FD_ZERO(&rd);
			FD_SET(bt_pipe3[0], &rd);
			r = select(bt_pipe3[0] + 1, &rd, NULL, NULL, &tv);
			if (r != 1 || read(bt_pipe3[0], &c, 1) != 1) {
				bt_fail(w, "returned %ld without its byte", r);
				continue;
			}
			break;
		}
		case BT_READ:
			r = read(bt_pipe4[0], &c, 1);
			if (r != 1 || c != 'r') {
				bt_fail(w, "returned %ld without its byte", r);
				continue;
			}
			break;
		case BT_SIGWAIT: {
			sigset_t s;
			siginfo_t si;

			sigemptyset(&s);
			sigaddset(&s, SIGRTMIN + 6);
			r = sigwaitinfo(&s, &si);
			if (r < 0 && errno == EINTR)
				continue;	/* as epoll_wait */
			if (r != SIGRTMIN + 6 || si.si_pid != getpid()) {
				bt_fail(w, "returned %ld without its signal", r);
				continue;
			}
			break;
		}
		}
		atomic_fetch_add(&bt_woke[w], 1);
	}
	return NULL;
}

static int blocked_setup(void)
{
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = 0xabcdef };
	sigset_t s;
	long w;
	int i;

	sigemptyset(&s);
	sigaddset(&s, SIGRTMIN + 6);
	pthread_sigmask(SIG_BLOCK, &s, NULL);	/* threads inherit it */
	bt_ep = epoll_create1(0);
	if (pipe(bt_pipe) || pipe(bt_pipe2) || pipe(bt_pipe3) || pipe(bt_pipe4) || bt_ep < 0 ||
	    epoll_ctl(bt_ep, EPOLL_CTL_ADD, bt_pipe2[0], &e))
		return bad("pipe/epoll: %s", strerror(errno));
	for (w = 0; w < BT_N; w++)
		if (start_thread(bt_thread, (void *)w))
			return 1;
	for (i = 0; i < 100; i++) {
		for (w = 0; w < BT_N && bt_tid[w]; w++)
			;
		if (w == BT_N)
			break;
		sleep_ms(10);
	}
	sleep_ms(200);	/* into their syscalls */
	return 0;
}

/* wakes thread @w and waits up to 5 s for it to count one wake-up */
static int bt_wake(int w)
{
	int n = atomic_load(&bt_woke[w]), i;

	switch (w) {
	case BT_FUTEX:
		atomic_fetch_add(&bt_word, 1);
		syscall(SYS_futex, &bt_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
		break;
	case BT_POLL:
		if (write(bt_pipe[1], "p", 1) != 1)
			return bad("write: %s", strerror(errno));
		break;
	case BT_EPOLL:
		if (write(bt_pipe2[1], "e", 1) != 1)
			return bad("write: %s", strerror(errno));
		break;
	case BT_SELECT:
		if (write(bt_pipe3[1], "s", 1) != 1)
			return bad("write: %s", strerror(errno));
		break;
	case BT_READ:
		if (write(bt_pipe4[1], "r", 1) != 1)
			return bad("write: %s", strerror(errno));
		break;
	case BT_SIGWAIT:
		syscall(SYS_tgkill, getpid(), bt_tid[w], SIGRTMIN + 6);
		break;
	default:
		return 0;
	}
	for (i = 0; i < 100 && atomic_load(&bt_woke[w]) == n; i++)
		sleep_ms(50);
	return atomic_load(&bt_woke[w]) == n ? bad("%s: no wake-up", bt_name[w]) : 0;
}

static int blocked_verify(void)
{
	char st[128];
	int w;

	size_t n = 0;

	for (w = 0; w < BT_N; w++)
		if (atomic_load(&bt_early[w]))
			n += snprintf(why + n, sizeof(why) - n, "%s: %s; ", bt_name[w], bt_err[w]);
	if (n)
		return 1;
	for (w = 0; w < BT_N; w++) {
		if (task_status_line(bt_tid[w], "State:", st, sizeof(st)) || !strstr(st, "S ("))
			return bad("%s thread: '%s', expected sleeping", bt_name[w], st);
	}
	for (w = 0; w < BT_N; w++)
		if (bt_wake(w))
			return 1;
	for (w = 0; w < BT_N; w++)
		if (atomic_load(&bt_early[w]))
			return bad("%s: %s", bt_name[w], bt_err[w]);
	return 0;
}

/* Thread-local storage and pthread keys; the fs base. */
static __thread int tl_var;
static pthread_key_t tl_key;
static unsigned long tl_fs;

static int tls_setup(void)
{
	tl_var = 4242;
	if ((errno = pthread_key_create(&tl_key, NULL)) ||
	    (errno = pthread_setspecific(tl_key, &tl_fs)))
		return bad("pthread key: %s", strerror(errno));
#if defined(__x86_64__)
	syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, &tl_fs);
#endif
	return 0;
}

static int tls_verify(void)
{
	unsigned long fs = tl_fs;

#if defined(__x86_64__)
	syscall(SYS_arch_prctl, 0x1003, &fs);
#endif
	if (tl_var != 4242 || pthread_getspecific(tl_key) != &tl_fs || fs != tl_fs)
		return bad("__thread %d key %p fs %#lx, expected 4242 %p %#lx", tl_var,
			   pthread_getspecific(tl_key), fs, (void *)&tl_fs, tl_fs);
	return 0;
}

/* prctl: the name of the main thread and of another, timer slack, the
 * TSC mode, the machine-check kill policy, keepcaps, no_new_privs. */
static pid_t pr_tid;

static void *pr_thread(void *arg)
{
	(void)arg;
	prctl(PR_SET_NAME, "objw-other");
	prctl(PR_SET_TIMERSLACK, 777777);
	pr_tid = gettid();
	for (;;)
		pause();
	return NULL;
}

static int prctl_setup(void)
{
	int i;

	if (prctl(PR_SET_NAME, "objw-main") || prctl(PR_SET_TIMERSLACK, 123456) ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_KEEPCAPS, 1) ||
	    prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0))
		return bad("prctl: %s", strerror(errno));
	if (start_thread(pr_thread, NULL))
		return 1;
	for (i = 0; i < 100 && !pr_tid; i++)
		sleep_ms(10);
	return 0;
}

static int prctl_verify(void)
{
	char name[17] = "", path[64], other[32] = "";
	long slack = prctl(PR_GET_TIMERSLACK);
	int n;

	prctl(PR_GET_NAME, name);
	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", pr_tid);
	n = read_whole(path, other, sizeof(other));
	if (strcmp(name, "objw-main") || n <= 0 || strcmp(other, "objw-other\n"))
		return bad("names '%s' '%s', expected objw-main objw-other", name, other);
	if (slack != 123456)
		return bad("timer slack %ld, expected 123456", slack);
	snprintf(path, sizeof(path), "/proc/%d/timerslack_ns", pr_tid);
	if (read_whole(path, other, sizeof(other)) <= 0 || atol(other) != 777777)
		return bad("thread timer slack %s, expected 777777", other);
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return bad("no_new_privs lost");
	if (prctl(PR_GET_KEEPCAPS) != 1)
		return bad("keepcaps lost");
	if (prctl(PR_MCE_KILL_GET, 0, 0, 0, 0) != PR_MCE_KILL_EARLY)
		return bad("MCE kill policy %d, expected early",
			   (int)prctl(PR_MCE_KILL_GET, 0, 0, 0, 0));
	return 0;
}

/* PR_SET_TSC: rdtsc faults (SIGSEGV) in this process. */
static int tsc_setup(void)
{
	return prctl(PR_SET_TSC, PR_TSC_SIGSEGV) ? bad("PR_SET_TSC: %s", strerror(errno)) : 0;
}

static int tsc_verify(void)
{
	int m = -1;

	prctl(PR_GET_TSC, &m);
	return m == PR_TSC_SIGSEGV ? 0 : bad("TSC mode %d, expected PR_TSC_SIGSEGV", m);
}

/* CPU affinity. */
static cpu_set_t af_want;

static int affinity_setup(void)
{
	CPU_ZERO(&af_want);
	CPU_SET(0, &af_want);
	if (sched_setaffinity(0, sizeof(af_want), &af_want))
		return bad("sched_setaffinity: %s", strerror(errno));
	return 0;
}

static int affinity_verify(void)
{
	cpu_set_t s;

	if (sched_getaffinity(0, sizeof(s), &s) || !CPU_EQUAL(&s, &af_want))
		return bad("affinity: %d CPUs, expected only CPU 0", CPU_COUNT(&s));
	return 0;
}

/* IOPRIO_CLASS_BE level 6 */
#define IO_WANT ((2 << 13) | 6)

static int ioprio_setup(void)
{
	if (syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, IO_WANT))
		return bad("ioprio_set: %s", strerror(errno));
	return 0;
}

static int ioprio_verify(void)
{
	long io = syscall(SYS_ioprio_get, 1, 0);

	return io == IO_WANT ? 0 : bad("ioprio %#lx, expected %#x", io, IO_WANT);
}

/*
 * Socket options beyond ferry's UDP list, on a unix socketpair: buffer
 * sizes, timeouts, low-water mark, priority, mark.
 */
static int uo_sv[2];
static const int uo_opt[] = { SO_SNDBUF, SO_RCVBUF, SO_RCVLOWAT, SO_PRIORITY, SO_MARK };
static int uo_val[5];
static struct timeval uo_tv[2];

static int unix_opts_setup(void)
{
	static const int set[5] = { 65536, 98304, 7, 5, 77 };
	struct timeval rt = { 3, 500000 }, st = { 7, 250000 };
	socklen_t l;
	int i;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, uo_sv))
		return bad("socketpair: %s", strerror(errno));
	for (i = 0; i < 5; i++)
		if (setsockopt(uo_sv[0], SOL_SOCKET, uo_opt[i], &set[i], sizeof(int)))
			return bad("setsockopt %d: %s", uo_opt[i], strerror(errno));
	if (setsockopt(uo_sv[0], SOL_SOCKET, SO_RCVTIMEO, &rt, sizeof(rt)) ||
	    setsockopt(uo_sv[0], SOL_SOCKET, SO_SNDTIMEO, &st, sizeof(st)))
		return bad("timeouts: %s", strerror(errno));
	for (i = 0; i < 5; i++) {
		l = sizeof(int);
		getsockopt(uo_sv[0], SOL_SOCKET, uo_opt[i], &uo_val[i], &l);
	}
	l = sizeof(struct timeval);
	getsockopt(uo_sv[0], SOL_SOCKET, SO_RCVTIMEO, &uo_tv[0], &l);
	l = sizeof(struct timeval);
	getsockopt(uo_sv[0], SOL_SOCKET, SO_SNDTIMEO, &uo_tv[1], &l);
	return 0;
}

static int unix_opts_verify(void)
{
	struct timeval tv[2];
	socklen_t l;
	int i, v;

	for (i = 0; i < 5; i++) {
		l = sizeof(int);
		v = -1;
		getsockopt(uo_sv[0], SOL_SOCKET, uo_opt[i], &v, &l);
		if (v != uo_val[i])
			return bad("option %d is %d, expected %d", uo_opt[i], v, uo_val[i]);
	}
	l = sizeof(tv[0]);
	getsockopt(uo_sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv[0], &l);
	l = sizeof(tv[1]);
	getsockopt(uo_sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv[1], &l);
	for (i = 0; i < 2; i++)
		if (tv[i].tv_sec != uo_tv[i].tv_sec || tv[i].tv_usec != uo_tv[i].tv_usec)
			return bad("SO_%sTIMEO %ld.%06ld, expected %ld.%06ld", i ? "SND" : "RCV",
				   (long)tv[i].tv_sec, (long)tv[i].tv_usec,
				   (long)uo_tv[i].tv_sec, (long)uo_tv[i].tv_usec);
	/*
	 * Not checked: SO_PEERCRED, which names the restore's process (the pair
	 * is made there), not this one (a known gap, docs/testing.md).
	 */
	return 0;
}

/* A SOCK_SEQPACKET pair with two unread messages: their boundaries. */
static int sq_sv[2];

static int sq_send(void)
{
	return send(sq_sv[0], "ab", 2, 0) != 2 || send(sq_sv[0], "cde", 3, 0) != 3 ?
	       bad("send: %s", strerror(errno)) : 0;
}

static int seqpacket_setup(void)
{
	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq_sv))
		return bad("socketpair: %s", strerror(errno));
	return sq_send();
}

static int seqpacket_verify(void)
{
	char b[16];
	ssize_t n1, n2;

	n1 = recv(sq_sv[1], b, sizeof(b), MSG_DONTWAIT);
	if (n1 != 2 || memcmp(b, "ab", 2))
		return bad("first message: %zd bytes", n1);
	n2 = recv(sq_sv[1], b, sizeof(b), MSG_DONTWAIT);
	if (n2 != 3 || memcmp(b, "cde", 3))
		return bad("second message: %zd bytes", n2);
	if (recv(sq_sv[1], b, sizeof(b), MSG_DONTWAIT) >= 0 || errno != EAGAIN)
		return bad("a third message");
	return sq_send();
}

/* A unix dgram socketpair (empty): both ways still connected. */
static int ud_sv[2];

static int unix_dgram_pair_setup(void)
{
	return socketpair(AF_UNIX, SOCK_DGRAM, 0, ud_sv) ? bad("socketpair: %s", strerror(errno)) : 0;
}

static int unix_dgram_pair_verify(void)
{
	char b[8];
	int i;

	for (i = 0; i < 2; i++) {
		if (send(ud_sv[i], "xyz", 3, MSG_DONTWAIT) != 3)
			return bad("send on end %d: %s", i, strerror(errno));
		if (recv(ud_sv[!i], b, sizeof(b), MSG_DONTWAIT) != 3 || memcmp(b, "xyz", 3))
			return bad("recv on end %d: %s", !i, strerror(errno));
	}
	return 0;
}

/* Sockets neither bound nor connected: unix stream, UDP; type and protocol. */
static int un_fd[3];
static const int un_dom[3] = { AF_UNIX, AF_INET, AF_INET6 };
static const int un_type[3] = { SOCK_STREAM, SOCK_DGRAM, SOCK_DGRAM };

static int un_first, un_last;

static int unbound_setup(void)
{
	int i;

	for (i = un_first; i <= un_last; i++) {
		un_fd[i] = socket(un_dom[i], un_type[i] | SOCK_NONBLOCK, 0);
		if (un_fd[i] < 0)
			return bad("socket: %s", strerror(errno));
	}
	return 0;
}

static int unbound_verify(void)
{
	struct sockaddr_storage a;
	socklen_t l;
	int i, t, d;

	for (i = un_first; i <= un_last; i++) {
		l = sizeof(int);
		getsockopt(un_fd[i], SOL_SOCKET, SO_TYPE, &t, &l);
		l = sizeof(int);
		getsockopt(un_fd[i], SOL_SOCKET, SO_DOMAIN, &d, &l);
		if (t != un_type[i] || d != un_dom[i] || !(fcntl(un_fd[i], F_GETFL) & O_NONBLOCK))
			return bad("socket %d: %s type %d domain %d", i, fd_link(un_fd[i]), t, d);
		l = sizeof(a);
		memset(&a, 0, sizeof(a));
		getsockname(un_fd[i], (void *)&a, &l);
		if (i && ((struct sockaddr_in *)&a)->sin_port)
			return bad("socket %d is bound now", i);
		if (!i && l != sizeof(sa_family_t))
			return bad("unix socket has an address now");
	}
	return 0;
}

static int unbound_unix_setup(void) { un_first = un_last = 0; return unbound_setup(); }
static int unbound_unix_verify(void) { return unbound_verify(); }
static int unbound_udp_setup(void) { un_first = 1; un_last = 2; return unbound_setup(); }
static int unbound_udp_verify(void) { return unbound_verify(); }

/* UDP sockets: connected, UDP-Lite, IPv6 with V6ONLY, shut down for reading. */
static int uc_fd[4];
static struct sockaddr_in uc_peer;

static int udp_more_setup(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	socklen_t l = sizeof(uc_peer);
	int one = 1;

	if (udp_socket())
		return 1;
	getsockname(so_fd, (void *)&uc_peer, &l);
	uc_fd[0] = socket(AF_INET, SOCK_DGRAM, 0);
	uc_fd[1] = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE);
	uc_fd[2] = socket(AF_INET6, SOCK_DGRAM, 0);
	uc_fd[3] = socket(AF_INET, SOCK_DGRAM, 0);
	if (uc_fd[0] < 0 || uc_fd[1] < 0 || uc_fd[2] < 0 || uc_fd[3] < 0)
		return bad("socket: %s", strerror(errno));
	if (connect(uc_fd[0], (void *)&uc_peer, sizeof(uc_peer)) ||
	    bind(uc_fd[1], (void *)&a, sizeof(a)) ||
	    setsockopt(uc_fd[2], IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) ||
	    bind(uc_fd[2], (void *)&a6, sizeof(a6)) ||
	    connect(uc_fd[3], (void *)&uc_peer, sizeof(uc_peer)) || shutdown(uc_fd[3], SHUT_RD))
		return bad("setup: %s", strerror(errno));
	return 0;
}

static int udp_more_verify(void);

/* a connected UDP socket (uc_fd[0]) and one shut down for reading (uc_fd[3]) */
static int udp_connected_setup(void)
{
	if (udp_more_setup())
		return 1;
	close(uc_fd[1]);
	close(uc_fd[2]);
	uc_fd[1] = uc_fd[2] = -1;
	return 0;
}

static int udp_connected_verify(void) { return udp_more_verify(); }

/* bound UDP-Lite (uc_fd[1]) and IPv6-only UDP (uc_fd[2]) */
static int udp_kinds_setup(void)
{
	if (udp_more_setup())
		return 1;
	close(uc_fd[0]);
	close(uc_fd[3]);
	uc_fd[0] = uc_fd[3] = -1;
	return 0;
}

static int udp_kinds_verify(void) { return udp_more_verify(); }

static int udp_more_verify(void)
{
	struct pollfd pfd = { .events = POLLRDHUP };
	struct sockaddr_in p;
	socklen_t l = sizeof(p);
	int v = 0;
	char c;

	if (uc_fd[0] < 0)
		goto kinds;
	if (getpeername(uc_fd[0], (void *)&p, &l) || p.sin_port != uc_peer.sin_port)
		return bad("connected UDP socket: peer %s", strerror(errno));
	if (send(uc_fd[0], "u", 1, 0) != 1 || recv(so_fd, &c, 1, 0) != 1)
		return bad("connected UDP socket: send: %s", strerror(errno));
	/* shut down for reading: poll says so (a receive without data still waits) */
	pfd.fd = uc_fd[3];
	if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLRDHUP))
		return bad("UDP socket no longer shut down for reading (revents %#x)", pfd.revents);
	return 0;
kinds:
	l = sizeof(v);
	getsockopt(uc_fd[1], SOL_SOCKET, SO_PROTOCOL, &v, &l);
	if (v != IPPROTO_UDPLITE)
		return bad("UDP-Lite socket has protocol %d", v);
	l = sizeof(v);
	v = 0;
	getsockopt(uc_fd[2], IPPROTO_IPV6, IPV6_V6ONLY, &v, &l);
	if (v != 1)
		return bad("IPV6_V6ONLY %d, expected 1", v);
	return 0;
}

/* A netlink socket, bound, with a multicast group; a packet socket. */
static int nl_fd;

static int netlink_setup(void)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_groups = 1 /* RTMGRP_LINK */ };

	nl_fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	if (nl_fd < 0 || bind(nl_fd, (void *)&a, sizeof(a)))
		return bad("netlink: %s", strerror(errno));
	return 0;
}

static int netlink_verify(void)
{
	struct sockaddr_nl a = { 0 };
	socklen_t l = sizeof(a);

	if (getsockname(nl_fd, (void *)&a, &l) || a.nl_family != AF_NETLINK || a.nl_groups != 1)
		return bad("netlink socket: %s, groups %#x", fd_link(nl_fd), a.nl_groups);
	return 0;
}

static int pk_fd;

static int packet_setup(void)
{
	pk_fd = socket(AF_PACKET, SOCK_DGRAM, htons(0x88b5));
	return pk_fd < 0 ? bad("packet socket: %s", strerror(errno)) : 0;
}

static int packet_verify(void)
{
	int d = -1;
	socklen_t l = sizeof(d);

	getsockopt(pk_fd, SOL_SOCKET, SO_DOMAIN, &d, &l);
	return d == AF_PACKET ? 0 : bad("packet socket: %s", fd_link(pk_fd));
}

/*
 * Processes sharing kernel objects without being threads: clone with
 * CLONE_FILES (one fd table), CLONE_FS (one cwd/umask), CLONE_VM (one
 * memory, like a vfork child). kcmp tells whether they still share.
 */
static pid_t cs_pid;
static char cs_stack[65536] __attribute__((aligned(16)));

static int cs_child(void *arg)
{
	(void)arg;
	for (;;)
		syscall(SYS_pause);
	return 0;
}

static int cs_setup(int flags)
{
	cs_pid = clone(cs_child, cs_stack + sizeof(cs_stack), flags | SIGCHLD, NULL);
	return cs_pid < 0 ? bad("clone: %s", strerror(errno)) : 0;
}

static int cs_verify(int type, const char *what)
{
	long r = syscall(SYS_kcmp, getpid(), cs_pid, type, 0, 0);

	if (r < 0)
		return bad("kcmp: %s", strerror(errno));
	return r ? bad("the child (pid %d) no longer shares %s", cs_pid, what) : 0;
}

static int clone_files_setup(void) { return cs_setup(CLONE_FILES); }
static int clone_files_verify(void) { return cs_verify(2 /* KCMP_FILES */, "the fd table"); }
static int clone_fs_setup(void) { return cs_setup(CLONE_FS); }
static int clone_fs_verify(void) { return cs_verify(3 /* KCMP_FS */, "cwd and umask"); }
static int clone_vm_setup(void) { return cs_setup(CLONE_VM); }
static int clone_vm_verify(void) { return cs_verify(1 /* KCMP_VM */, "its memory"); }

/*
 * A child that exits after the restore: its SIGCHLD (with siginfo) and its
 * status through waitpid. A new child waits for the next check.
 */
static pid_t ce_pid;
static atomic_int ce_sigs;
static volatile pid_t ce_si_pid;
static char ce_go[4096];

static void ce_handler(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	ce_si_pid = si->si_pid;
	atomic_fetch_add(&ce_sigs, 1);
}

static int ce_fork(void)
{
	unlink(ce_go);
	ce_pid = fork();
	if (ce_pid < 0)
		return bad("fork: %s", strerror(errno));
	if (ce_pid == 0) {
		while (access(ce_go, F_OK))
			sleep_ms(20);
		_exit(42);
	}
	return 0;
}

static int child_exit_setup(void)
{
	struct sigaction a = { .sa_sigaction = ce_handler, .sa_flags = SA_SIGINFO | SA_RESTART };

	scratch(ce_go, sizeof(ce_go), "go");
	sigaction(SIGCHLD, &a, NULL);
	return ce_fork();
}

static int child_exit_verify(void)
{
	int n = atomic_load(&ce_sigs), st = 0, i, fd;
	pid_t r = 0;

	fd = open(ce_go, O_CREAT | O_WRONLY, 0600);
	if (fd < 0)
		return bad("%s: %s", ce_go, strerror(errno));
	close(fd);
	for (i = 0; i < 100 && (r = waitpid(ce_pid, &st, WNOHANG)) == 0; i++)
		sleep_ms(50);
	if (r != ce_pid || !WIFEXITED(st) || WEXITSTATUS(st) != 42)
		return bad("waitpid(%d): %d (%s) status %#x", ce_pid, r, strerror(errno), st);
	for (i = 0; i < 40 && atomic_load(&ce_sigs) == n; i++)
		sleep_ms(50);
	if (atomic_load(&ce_sigs) != n + 1 || ce_si_pid != ce_pid)
		return bad("SIGCHLD: %d more, from %d (child %d)", atomic_load(&ce_sigs) - n,
			   ce_si_pid, ce_pid);
	return ce_fork();
}

/* Sessions and groups: a child leading a session, its child leading a
 * group in it, a third in that group. */
static pid_t ss_pid[3];

static int session_setup(void)
{
	int p[2];

	if (pipe(p))
		return bad("pipe: %s", strerror(errno));
	/* each dies with its parent: in sessions of their own, no kill of ours reaches them */
	ss_pid[0] = fork();
	if (ss_pid[0] == 0) {
		pid_t k[2];

		prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
		setsid();
		k[0] = fork();
		if (k[0] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
			setpgid(0, 0);
			for (;;)
				pause();
		}
		setpgid(k[0], k[0]);
		k[1] = fork();
		if (k[1] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
			for (;;)
				pause();
		}
		setpgid(k[1], k[0]);
		if (write(p[1], k, sizeof(k)) != sizeof(k))
			_exit(1);
		for (;;)
			pause();
	}
	if (ss_pid[0] < 0 || read(p[0], &ss_pid[1], 2 * sizeof(pid_t)) != 2 * sizeof(pid_t))
		return bad("fork: %s", strerror(errno));
	close(p[0]);
	close(p[1]);
	return 0;
}

static int session_verify(void)
{
	static const int grp[3] = { 0, 1, 1 };
	int i;

	for (i = 0; i < 3; i++)
		if (getsid(ss_pid[i]) != ss_pid[0] || getpgid(ss_pid[i]) != ss_pid[grp[i]])
			return bad("pid %d: session %d group %d, expected %d %d", ss_pid[i],
				   getsid(ss_pid[i]), getpgid(ss_pid[i]), ss_pid[0], ss_pid[grp[i]]);
	return 0;
}

/* An AIO context (io_setup): a read submitted through it still completes. */
static aio_context_t aio_ctx;
static int aio_fd;

static int aio_setup(void)
{
	aio_fd = make_file("aio", 4096, 21);
	if (aio_fd < 0 || syscall(SYS_io_setup, 16, &aio_ctx))
		return bad("io_setup: %s", strerror(errno));
	return 0;
}

static int aio_verify(void)
{
	unsigned char buf[512];
	struct iocb cb = { .aio_fildes = aio_fd, .aio_lio_opcode = IOCB_CMD_PREAD,
			   .aio_buf = (unsigned long)buf, .aio_nbytes = sizeof(buf), .aio_offset = 512 };
	struct iocb *cbs[1] = { &cb };
	struct io_event ev;
	struct timespec ts = { 5, 0 };

	if (syscall(SYS_io_submit, aio_ctx, 1, cbs) != 1)
		return bad("io_submit on context %#lx: %s", (unsigned long)aio_ctx, strerror(errno));
	if (syscall(SYS_io_getevents, aio_ctx, 1, 1, &ev, &ts) != 1 || ev.res != sizeof(buf))
		return bad("io_getevents: %s", strerror(errno));
	for (int i = 0; i < 512; i++)
		if (buf[i] != (((512 + i) * 7 + 21) & 0xff))
			return bad("aio read byte %d wrong", i);
	return 0;
}

/*
 * Details /proc/self/fdinfo shows: an eventfd's count and semaphore mode,
 * a signalfd's mask, an epoll watch's events and data (EPOLLET, ONESHOT).
 */
static int fi_fd[3], fi_pipe[2];
static char fi_want[3][512];

static void fdinfo_of(int fd, char *buf, size_t len)
{
	char path[64], b[2048], *l, *save;
	size_t n = 0;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	buf[0] = 0;
	if (read_whole(path, b, sizeof(b)) <= 0)
		return;
	for (l = strtok_r(b, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(l, "eventfd-id:", 11))
			continue;	/* a kernel-wide number, like an inode's */
		if (!strncmp(l, "eventfd-", 8) || !strncmp(l, "sigmask:", 8) ||
		    !strncmp(l, "flags:", 6)) {
			n += snprintf(buf + n, len - n, "%s|", l);
		} else if (!strncmp(l, "tfd:", 4)) {
			char *e = strstr(l, "events:"), *p = strstr(l, " pos:");

			n += snprintf(buf + n, len - n, "%.*s|", e ? (int)(p ? p - e : (long)strlen(e)) : 0, e ? e : "");
		}
		if (n >= len)
			break;
	}
}

static int fdinfo_setup(void)
{
	struct epoll_event e = { .events = EPOLLIN | EPOLLET | EPOLLONESHOT | EPOLLRDHUP,
				 .data.u64 = 0x1122334455667788ull };
	sigset_t s;
	int i;

	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	sigaddset(&s, SIGRTMIN + 7);
	fi_fd[0] = eventfd(5, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC);
	fi_fd[1] = signalfd(-1, &s, SFD_NONBLOCK);
	fi_fd[2] = epoll_create1(0);
	if (fi_fd[0] < 0 || fi_fd[1] < 0 || fi_fd[2] < 0 || pipe(fi_pipe) ||
	    epoll_ctl(fi_fd[2], EPOLL_CTL_ADD, fi_pipe[0], &e))
		return bad("setup: %s", strerror(errno));
	for (i = 0; i < 3; i++)
		fdinfo_of(fi_fd[i], fi_want[i], sizeof(fi_want[i]));
	return 0;
}

static int fdinfo_verify(void)
{
	char now[512];
	uint64_t v;
	int i;

	for (i = 0; i < 3; i++) {
		fdinfo_of(fi_fd[i], now, sizeof(now));
		if (strcmp(now, fi_want[i]))
			return bad("fd %d: '%s', expected '%s'", fi_fd[i], now, fi_want[i]);
	}
	/* semaphore mode: one read takes 1 of the 5 */
	if (read(fi_fd[0], &v, 8) != 8 || v != 1)
		return bad("eventfd read %llu, expected 1 (semaphore)", (unsigned long long)v);
	v = 1;
	return write(fi_fd[0], &v, 8) == 8 ? 0 : bad("eventfd write: %s", strerror(errno));
}

/* A thread in vfork(2): its child shares the memory until it exits. */
static atomic_int vf_back;

static void *vf_thread(void *arg)
{
	pid_t c;

	(void)arg;
	c = vfork();
	if (c == 0) {
		struct timespec ts = { 30, 0 };

		syscall(SYS_nanosleep, &ts, NULL);
		_exit(0);
	}
	atomic_store(&vf_back, 1);
	return NULL;
}

static int vfork_setup(void)
{
	if (start_thread(vf_thread, NULL))
		return 1;
	sleep_ms(100);
	return atomic_load(&vf_back) ? bad("vfork returned at once") : 0;
}

static int vfork_verify(void)
{
	return atomic_load(&vf_back) ? bad("the vfork parent thread runs again early") : 0;
}

/* A POSIX message queue (mq_open) holding one message. */
static mqd_t mq_fd = -1;
static char mq_name[64];

static int mqueue_setup(void)
{
	struct mq_attr at = { .mq_maxmsg = 4, .mq_msgsize = 64 };

	snprintf(mq_name, sizeof(mq_name), "/objwork-%d", getpid());
	mq_fd = mq_open(mq_name, O_RDWR | O_CREAT | O_EXCL, 0600, &at);
	if (mq_fd < 0)
		return bad("mq_open: %s", strerror(errno));
	mq_unlink(mq_name);	/* nothing else may find it */
	return mq_send(mq_fd, "queued", 6, 3) ? bad("mq_send: %s", strerror(errno)) : 0;
}

static int mqueue_verify(void)
{
	struct mq_attr at;
	unsigned int prio = 0;
	char b[64];
	ssize_t n;

	if (mq_getattr(mq_fd, &at) || at.mq_maxmsg != 4 || at.mq_msgsize != 64 ||
	    at.mq_curmsgs != 1)
		return bad("queue: %s, maxmsg %ld msgsize %ld curmsgs %ld", fd_link(mq_fd),
			   at.mq_maxmsg, at.mq_msgsize, at.mq_curmsgs);
	n = mq_receive(mq_fd, b, sizeof(b), &prio);
	if (n != 6 || memcmp(b, "queued", 6) || prio != 3)
		return bad("message: %zd bytes, priority %u", n, prio);
	return mq_send(mq_fd, "queued", 6, 3) ? bad("mq_send: %s", strerror(errno)) : 0;
}

/* prctl flags of the mm and the task: MDWE (no write+exec), I/O flusher. */
#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_GET_MDWE 66
#define PR_MDWE_REFUSE_EXEC_GAIN 1
#endif
#ifndef PR_SET_IO_FLUSHER
#define PR_SET_IO_FLUSHER 57
#define PR_GET_IO_FLUSHER 58
#endif

static int mdwe_setup(void)
{
	if (prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0))
		return bad("PR_SET_MDWE: %s", strerror(errno));
	return 0;
}

static int mdwe_verify(void)
{
	long m = prctl(PR_GET_MDWE, 0, 0, 0, 0);

	return m == PR_MDWE_REFUSE_EXEC_GAIN ? 0 : bad("MDWE %ld, expected %d", m,
							  PR_MDWE_REFUSE_EXEC_GAIN);
}

static int io_flusher_setup(void)
{
	return prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0) ? bad("PR_SET_IO_FLUSHER: %s", strerror(errno)) : 0;
}

static int io_flusher_verify(void)
{
	long m = prctl(PR_GET_IO_FLUSHER, 0, 0, 0, 0);

	return m == 1 ? 0 : bad("IO flusher %ld, expected 1", m);
}

/* A named anonymous mapping (PR_SET_VMA_ANON_NAME): "[anon:NAME]" in maps. */
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif
static unsigned char *an_mem;

static int anon_name_of(char *name, size_t len)
{
	unsigned long lo, hi, a = (unsigned long)an_mem;
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");

	name[0] = 0;
	while (f && fgets(line, sizeof(line), f)) {
		char *p = strchr(line, '[');

		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo <= a && a < hi && p) {
			p[strcspn(p, "\n")] = 0;
			snprintf(name, len, "%.*s", (int)len - 1, p);
		}
	}
	if (f)
		fclose(f);
	return name[0] ? 0 : -1;
}

static int anon_name_setup(void)
{
	an_mem = mmap(NULL, 2 * psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (an_mem == MAP_FAILED)
		return bad("mmap: %s", strerror(errno));
	memset(an_mem, 0x3c, 2 * psz);
	return prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, an_mem, 2 * psz, "objwork-named") ?
	       bad("PR_SET_VMA_ANON_NAME: %s", strerror(errno)) : 0;
}

static int anon_name_verify(void)
{
	char n[64];

	if (anon_name_of(n, sizeof(n)) || strcmp(n, "[anon:objwork-named]"))
		return bad("the mapping is named '%s', expected [anon:objwork-named]", n);
	return an_mem[0] == 0x3c && an_mem[2 * psz - 1] == 0x3c ? 0 : bad("contents changed");
}

/* A key in the process keyring (keyctl): found again by its description. */
static long kr_key = -1;

static int keyring_setup(void)
{
	kr_key = syscall(SYS_add_key, "user", "objwork-key", "secret", 6,
			 KEY_SPEC_PROCESS_KEYRING);
	return kr_key < 0 ? bad("add_key: %s", strerror(errno)) : 0;
}

static int keyring_verify(void)
{
	long k = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_PROCESS_KEYRING, "user",
			 "objwork-key", 0);
	char b[16] = "";

	if (k < 0)
		return bad("key not in the process keyring: %s", strerror(errno));
	if (syscall(SYS_keyctl, KEYCTL_READ, k, b, sizeof(b)) != 6 || memcmp(b, "secret", 6))
		return bad("key %ld reads '%s'", k, b);
	return 0;
}

/* memfd_secret: pages no one else can read (/proc/PID/mem neither). */
static unsigned char *ms_mem;

static int secretmem_setup(void)
{
	int fd = syscall(SYS_memfd_secret, 0);

	if (fd < 0)
		return bad("memfd_secret: %s", strerror(errno));
	if (ftruncate(fd, 2 * psz))
		return bad("ftruncate: %s", strerror(errno));
	ms_mem = mmap(NULL, 2 * psz, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ms_mem == MAP_FAILED)
		return bad("mmap: %s", strerror(errno));
	close(fd);
	memset(ms_mem, 0x5e, 2 * psz);
	return 0;
}

static int secretmem_verify(void)
{
	for (long j = 0; j < 2 * psz; j++)
		if (ms_mem[j] != 0x5e)
			return bad("secret byte %ld is %#x", j, ms_mem[j]);
	return 0;
}

/* A BPF map fd (an array of one element holding a value). */
static int bm_fd = -1;

static int bpf_map_setup(void)
{
	union bpf_attr a = { .map_type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 8,
			     .max_entries = 1 };
	uint32_t key = 0;
	uint64_t v = 0x1234;

	bm_fd = syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof(a));
	if (bm_fd < 0)
		return bad("BPF_MAP_CREATE: %s", strerror(errno));
	memset(&a, 0, sizeof(a));
	a.map_fd = bm_fd;
	a.key = (unsigned long)&key;
	a.value = (unsigned long)&v;
	return syscall(SYS_bpf, BPF_MAP_UPDATE_ELEM, &a, sizeof(a)) ?
	       bad("BPF_MAP_UPDATE_ELEM: %s", strerror(errno)) : 0;
}

static int bpf_map_verify(void)
{
	union bpf_attr a = { 0 };
	uint32_t key = 0;
	uint64_t v = 0;

	a.map_fd = bm_fd;
	a.key = (unsigned long)&key;
	a.value = (unsigned long)&v;
	if (syscall(SYS_bpf, BPF_MAP_LOOKUP_ELEM, &a, sizeof(a)) || v != 0x1234)
		return bad("map fd %d (%s): value %#llx", bm_fd, fd_link(bm_fd),
			   (unsigned long long)v);
	return 0;
}

/* A listening unix socket on an abstract name: still there, and it accepts. */
static int ab_fd = -1;
static struct sockaddr_un ab_addr;
static socklen_t ab_len;

static int unix_abstract_setup(void)
{
	ab_addr.sun_family = AF_UNIX;
	snprintf(ab_addr.sun_path + 1, sizeof(ab_addr.sun_path) - 1, "objwork-%d", getpid());
	ab_len = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(ab_addr.sun_path + 1);
	ab_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (ab_fd < 0 || bind(ab_fd, (void *)&ab_addr, ab_len) || listen(ab_fd, 4))
		return bad("abstract socket: %s", strerror(errno));
	return 0;
}

static int unix_abstract_verify(void)
{
	struct sockaddr_un a;
	socklen_t l = sizeof(a);
	int c, s;

	if (getsockname(ab_fd, (void *)&a, &l) || l != ab_len || memcmp(&a, &ab_addr, l))
		return bad("fd %d: %s, not the abstract name", ab_fd, fd_link(ab_fd));
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (void *)&ab_addr, ab_len))
		return bad("connect: %s", strerror(errno));
	s = accept(ab_fd, NULL, NULL);
	close(c);
	if (s < 0)
		return bad("accept: %s", strerror(errno));
	close(s);
	return 0;
}

/*
 * A priority-inheritance mutex the main thread holds while another thread
 * waits for it (FUTEX_LOCK_PI): the waiter gets it only once it is unlocked.
 */
static pthread_mutex_t pi_mutex;
static atomic_int pi_got;
static int pi_want, pi_go[2];

static void *pi_thread(void *arg)
{
	char c;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&pi_mutex);
		atomic_fetch_add(&pi_got, 1);
		pthread_mutex_unlock(&pi_mutex);
		if (read(pi_go[0], &c, 1) != 1)
			return NULL;
	}
}

static int pi_mutex_setup(void)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
	if ((errno = pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT)) ||
	    (errno = pthread_mutex_init(&pi_mutex, &a)))
		return bad("PI mutex: %s", strerror(errno));
	if (pipe(pi_go) || (errno = pthread_mutex_lock(&pi_mutex)))
		return bad("lock: %s", strerror(errno));
	if (start_thread(pi_thread, NULL))
		return 1;
	sleep_ms(100);	/* into FUTEX_LOCK_PI */
	return 0;
}

static int pi_mutex_verify(void)
{
	int i;

	if (atomic_load(&pi_got) != pi_want)
		return bad("the waiter got the mutex %d times, expected %d", atomic_load(&pi_got),
			   pi_want);
	if ((errno = pthread_mutex_unlock(&pi_mutex)))
		return bad("unlock: %s", strerror(errno));
	for (i = 0; i < 100 && atomic_load(&pi_got) == pi_want; i++)
		sleep_ms(50);
	if (atomic_load(&pi_got) != ++pi_want)
		return bad("the waiter did not get the mutex once unlocked");
	if ((errno = pthread_mutex_lock(&pi_mutex)))
		return bad("lock again: %s", strerror(errno));
	return write(pi_go[1], "g", 1) == 1 ? 0 : bad("write: %s", strerror(errno));
}

/* A packet-mode pipe (O_DIRECT) holding two packets: their boundaries. */
static int pp_fd[2];

static int pp_write(void)
{
	return write(pp_fd[1], "ab", 2) != 2 || write(pp_fd[1], "cde", 3) != 3 ?
	       bad("write: %s", strerror(errno)) : 0;
}

static int pipe_packet_setup(void)
{
	if (pipe2(pp_fd, O_DIRECT | O_NONBLOCK))
		return bad("pipe2(O_DIRECT): %s", strerror(errno));
	return pp_write();
}

static int pipe_packet_verify(void)
{
	char b[16];
	ssize_t n1, n2;

	/* the mode is the write end's (the read end's flags do not show it) */
	if (!(fcntl(pp_fd[1], F_GETFL) & O_DIRECT))
		return bad("O_DIRECT lost: write end's flags %#x", fcntl(pp_fd[1], F_GETFL));
	n1 = read(pp_fd[0], b, sizeof(b));
	n2 = read(pp_fd[0], b + 2, sizeof(b) - 2);
	if (n1 != 2 || n2 != 3 || memcmp(b, "abcde", 5))
		return bad("packets of %zd and %zd bytes, expected 2 and 3", n1, n2);
	return pp_write();
}

/* An epoll instance watching another, which watches a pipe (EPOLLEXCLUSIVE). */
static int en_outer, en_inner, en_pipe[2];

static int epoll_nested_setup(void)
{
	struct epoll_event e = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.u64 = 7 };
	struct epoll_event x = { .events = EPOLLIN, .data.u64 = 9 };

	en_outer = epoll_create1(0);
	en_inner = epoll_create1(0);
	if (en_outer < 0 || en_inner < 0 || pipe(en_pipe) ||
	    epoll_ctl(en_inner, EPOLL_CTL_ADD, en_pipe[0], &e) ||
	    epoll_ctl(en_outer, EPOLL_CTL_ADD, en_inner, &x))
		return bad("epoll: %s", strerror(errno));
	return 0;
}

static int epoll_nested_verify(void)
{
	struct epoll_event e;
	char c;
	int n;

	if (epoll_wait(en_outer, &e, 1, 0) != 0)
		return bad("ready before anything was written");
	if (write(en_pipe[1], "x", 1) != 1)
		return bad("write: %s", strerror(errno));
	n = epoll_wait(en_outer, &e, 1, 2000);
	if (n != 1 || e.data.u64 != 9)
		return bad("outer epoll: %d events, data %llu", n, (unsigned long long)e.data.u64);
	n = epoll_wait(en_inner, &e, 1, 0);
	if (n != 1 || e.data.u64 != 7)
		return bad("inner epoll: %d events, data %llu", n, (unsigned long long)e.data.u64);
	return read(en_pipe[0], &c, 1) == 1 ? 0 : bad("read: %s", strerror(errno));
}

/*
 * An epoll watching a pipe added as fd A, the pipe moved to another fd
 * since (dup, close A): still watched, under a number it no longer has
 * (epoll_moved); or A reopened as another file, an eventfd
 * (epoll_renumbered). Refused.
 */
static int em_ep = -1, em_pipe[2];

static int epoll_moved_common(bool reuse)
{
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = 5 };
	int keep;

	em_ep = epoll_create1(0);
	if (em_ep < 0 || pipe(em_pipe) || epoll_ctl(em_ep, EPOLL_CTL_ADD, em_pipe[0], &e))
		return bad("epoll: %s", strerror(errno));
	keep = dup(em_pipe[0]);
	if (keep < 0 || close(em_pipe[0]))
		return bad("dup: %s", strerror(errno));
	/* a file epoll takes: the restore would watch it instead */
	if (reuse && eventfd(0, 0) != em_pipe[0])
		return bad("an eventfd did not take fd %d", em_pipe[0]);
	em_pipe[0] = keep;
	return 0;
}

static int epoll_moved_setup(void)
{
	return epoll_moved_common(false);
}

static int epoll_moved_verify(void)
{
	struct epoll_event e;

	return epoll_wait(em_ep, &e, 1, 0) == 0 ? 0 : bad("ready before a write");
}

static int epoll_renumbered_setup(void)
{
	return epoll_moved_common(true);
}

static int epoll_renumbered_verify(void)
{
	return epoll_moved_verify();
}

/*
 * Unix sockets with names connected inside the process: a stream server's
 * accepted socket and its client, a datagram socket bound to a path and
 * one connected to it. Each keeps its own name and its peer's.
 */
static int un_lst = -1, un_acc = -1, un_cli = -1, un_drx = -1, un_dtx = -1;
static struct sockaddr_un un_sa, un_da;

static int un_name(int fd, bool peer, struct sockaddr_un *a)
{
	socklen_t l = sizeof(*a);

	memset(a, 0, sizeof(*a));
	return peer ? getpeername(fd, (void *)a, &l) : getsockname(fd, (void *)a, &l);
}

static int unix_named_setup(void)
{
	un_sa.sun_family = un_da.sun_family = AF_UNIX;
	scratch(un_sa.sun_path, sizeof(un_sa.sun_path), "us");
	scratch(un_da.sun_path, sizeof(un_da.sun_path), "ud");
	unlink(un_sa.sun_path);
	unlink(un_da.sun_path);
	un_lst = socket(AF_UNIX, SOCK_STREAM, 0);
	un_cli = socket(AF_UNIX, SOCK_STREAM, 0);
	un_drx = socket(AF_UNIX, SOCK_DGRAM, 0);
	un_dtx = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (un_lst < 0 || un_cli < 0 || un_drx < 0 || un_dtx < 0 ||
	    bind(un_lst, (void *)&un_sa, sizeof(un_sa)) || listen(un_lst, 4) ||
	    connect(un_cli, (void *)&un_sa, sizeof(un_sa)) ||
	    bind(un_drx, (void *)&un_da, sizeof(un_da)) ||
	    connect(un_dtx, (void *)&un_da, sizeof(un_da)))
		return bad("unix sockets: %s", strerror(errno));
	un_acc = accept(un_lst, NULL, NULL);
	return un_acc < 0 ? bad("accept: %s", strerror(errno)) : 0;
}

static int unix_named_verify(void)
{
	static const struct { int *fd; bool peer; bool stream; const char *what; } names[] = {
		{ &un_acc, false, true, "accepted socket's name" },
		{ &un_cli, true, true, "client's peer" },
		{ &un_drx, false, false, "bound datagram socket's name" },
		{ &un_dtx, true, false, "datagram sender's peer" },
	};
	struct sockaddr_un a;
	char b[8];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *want = names[i].stream ? un_sa.sun_path : un_da.sun_path;

		if (un_name(*names[i].fd, names[i].peer, &a) || strcmp(a.sun_path, want))
			return bad("%s is '%s', expected %s", names[i].what, a.sun_path, want);
	}
	if (send(un_cli, "s", 1, 0) != 1 || recv(un_acc, b, 1, 0) != 1 ||
	    send(un_dtx, "d", 1, 0) != 1 || recv(un_drx, b, 1, 0) != 1)
		return bad("send/recv: %s", strerror(errno));
	return 0;
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
	MODE(pipe_noreader_async),
	MODE(seccomp_filter),
	MODE(seccomp_stacked),
	MODE(seccomp_tsync),
	MODE(seccomp_strict),
	MODE(seccomp_notif),
	MODE(seccomp_subset),
	MODE(caps),
	MODE(flock),
	MODE(posix_lock),
	MODE(ofd_lock),
	MODE(lock_taken),
	MODE(lease),
	MODE(lock_wait),
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
	MODE(posix_timer_pending),
	MODE(posix_timer_thread),
	MODE(posix_timer_sigev_thread),
	MODE(posix_timer_cputime),
	MODE(timerfd),
	MODE(inotify),
	MODE(inotify_queued),
	MODE(memfd_seals),
	MODE(memfd_fd),
	MODE(memfd_fd_outside),
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
	MODE(pty_ctty),
	MODE(pty_outside),
	MODE(pty_queued),
	MODE(fifo),
	MODE(fifo_outside),
	MODE(sysv_shm),
	MODE(sysv_shm_tree),
	MODE(sysv_shm_rmid),
	MODE(sysv_shm_outside),
	MODE(sysv_shm_taken),
	MODE(sysv_shm_ipcns),
	MODE(sysv_shm_tail),
	MODE(sysv_sem),
	MODE(sysv_sem_tree),
	MODE(sysv_sem_outside),
	MODE(sysv_sem_undo),
	MODE(sysv_sem_undo_threads),
	MODE(sysv_sem_taken),
	MODE(sysv_msg),
	MODE(sysv_msg_outside),
	MODE(sysv_sem_held),
	MODE(sysv_msg_held),
	MODE(pidfd),
	MODE(pidfd_outside),
	MODE(deleted_map),
	MODE(deleted_map_fd),
	MODE(deleted_map_outside),
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
	MODE(fpu_regs),
	MODE(fpu_ctl),
	MODE(pkey),
	MODE(sigaltstack),
	MODE(sigpending),
	MODE(sigaction),
	MODE(itimers),
	MODE(rlimits),
	MODE(personality),
	MODE(umask),
	MODE(cwd_rel),
	MODE(file_pos),
	MODE(file_times),
	MODE(unlinked_dir),
	MODE(dir_pos),
	MODE(vma_split),
	MODE(mremap_grow),
	MODE(vmflags),
	MODE(mm_fields),
	MODE(blocked),
	MODE(tls),
	MODE(prctl),
	MODE(tsc),
	MODE(affinity),
	MODE(ioprio),
	MODE(unix_opts),
	MODE(seqpacket),
	MODE(unix_dgram_pair),
	MODE(unbound_unix),
	MODE(unbound_udp),
	MODE(udp_connected),
	MODE(udp_kinds),
	MODE(netlink),
	MODE(packet),
	MODE(clone_files),
	MODE(clone_fs),
	MODE(clone_vm),
	MODE(child_exit),
	MODE(session),
	MODE(aio),
	MODE(fdinfo),
	MODE(vfork),
	MODE(mqueue),
	MODE(mdwe),
	MODE(io_flusher),
	MODE(anon_name),
	MODE(keyring),
	MODE(secretmem),
	MODE(bpf_map),
	MODE(unix_abstract),
	MODE(pi_mutex),
	MODE(pipe_packet),
	MODE(epoll_nested),
	MODE(epoll_moved),
	MODE(epoll_renumbered),
	MODE(pty_ctty_nofd),
	MODE(unix_named),
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
