// SPDX-License-Identifier: MIT
/*
 * Where an injected syscall runs (find_syscall_insn) against what a traced
 * process controls: the names of the files it maps, which /proc/PID/maps
 * prints in its lines, at any length.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/inject.h"
#include "tests/unit/unit.h"

#define MAP_AT	0x10000000UL	/* below the program, its libraries and the vdso */

/* `syscall` bytes in the process's data: no place to run one. */
static const unsigned char not_code[] = { 0x90, 0x0f, 0x05, 0x90 };

/* Where the path starts in the maps line of a mapping of @path at MAP_AT. */
static int path_column(const char *path)
{
	char line[4096], want[32];
	int fd = open(path, O_RDONLY), col = -1;
	void *m;
	FILE *f;

	cr_assert_geq(fd, 0);
	m = mmap((void *)MAP_AT, 4096, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 0);
	cr_assert_eq(m, (void *)MAP_AT);
	close(fd);
	snprintf(want, sizeof(want), "%lx-", MAP_AT);
	f = fopen("/proc/self/maps", "re");
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, want, strlen(want)))
			col = strchr(line, '/') - line;
	fclose(f);
	munmap(m, 4096);
	return col;
}

/*
 * A mapped file whose name holds a whole maps line of a [vdso] from the
 * 512th character on (where a line read in 512-byte pieces is cut): that
 * piece is no line of the file, and the injection must not take the
 * process's data it names for its vdso.
 */
Test(inject, long_mapped_path_is_no_maps_line)
{
	char base[] = "/tmp/ferry-test-inject.XXXXXX", path[1024], fake[128], file[64];
	uint64_t vdso = getauxval(AT_SYSINFO_EHDR), insn;
	int sync[2], fd, col, len;
	bool ready, renamed;
	char c;
	pid_t pid;

	cr_assert_neq(vdso, 0, "no vdso to test against");
	cr_assert_not_null(mkdtemp(base));
	snprintf(file, sizeof(file), "%s/f", base);
	fd = open(file, O_CREAT | O_RDWR, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 4096), 0);
	close(fd);
	col = path_column(file);
	cr_assert_gt(col, 0);
	snprintf(fake, sizeof(fake), "%lx-%lx r-xp 00000000 00:00 0 [vdso]",
		 (unsigned long)not_code, (unsigned long)not_code + sizeof(not_code));
	/* directories of 200 characters, then padding: the fake from column 511 */
	len = snprintf(path, sizeof(path), "%s", base);
	while (511 - col - len + (int)strlen(fake) > 250) {
		path[len++] = '/';
		memset(path + len, 'a', 200);
		len += 200;
		path[len] = 0;
		cr_assert_eq(mkdir(path, 0700), 0);
	}
	path[len++] = '/';
	cr_assert_gt(511 - col - len, 0);
	memset(path + len, 'b', 511 - col - len);
	len = 511 - col;
	snprintf(path + len, sizeof(path) - len, "%s", fake);

	cr_assert_eq(pipe(sync), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (!pid) {
		fd = open(file, O_RDONLY);
		if (fd < 0 || mmap((void *)MAP_AT, 4096, PROT_READ,
				   MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 0) != (void *)MAP_AT)
			_exit(1);
		if (write(sync[1], "r", 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(sync[1]);
	ready = read(sync[0], &c, 1) == 1;
	renamed = ready && !rename(file, path);
	insn = renamed ? find_syscall_insn(pid) : 0;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	rm_tree(base);
	cr_assert(ready, "the child did not map the file");
	cr_assert(renamed, "rename to %s: %s", path, strerror(errno));
	cr_expect_neq(insn, (uint64_t)not_code + 1, "the process's data taken for its vdso");
	cr_expect(insn >= vdso && insn < vdso + (64 << 10), "%#lx is not in the vdso at %#lx",
		  (unsigned long)insn, (unsigned long)vdso);
}
