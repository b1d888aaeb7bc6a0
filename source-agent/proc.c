// SPDX-License-Identifier: MIT
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/log.h"
#include "common/util.h"
#include "source-agent/proc.h"

static uint32_t vma_kind(const struct vma *v)
{
	if (!strcmp(v->path, "[heap]"))
		return VMA_KIND__VMA_HEAP;
	if (!strcmp(v->path, "[stack]"))
		return VMA_KIND__VMA_STACK;
	if (!strcmp(v->path, "[vdso]") || !strncmp(v->path, "[vvar", 5))
		return VMA_KIND__VMA_VDSO;
	if (!v->ino || !strncmp(v->path, "/dev/zero", 9) || !strncmp(v->path, "/SYSV", 5))
		return VMA_KIND__VMA_ANON;
	if (!strncmp(v->path, "/memfd:", 7))
		return VMA_KIND__VMA_MEMFD;
	return VMA_KIND__VMA_FILE;
}

static int vma_parse_line(const char *line, struct vma *v)
{
	char perms[8], dev[16];
	unsigned long long start, end, off, ino;
	unsigned int maj, min;
	int n = 0;

	memset(v, 0, sizeof(*v));
	if (sscanf(line, "%llx-%llx %7s %llx %15s %llu %n", &start, &end, perms, &off, dev, &ino,
		   &n) < 6 || sscanf(dev, "%x:%x", &maj, &min) != 2)
		return -EINVAL;
	v->start = start;
	v->end = end;
	v->pgoff = off;
	v->ino = ino;
	v->dev = makedev(maj, min);
	v->prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
		  (perms[2] == 'x' ? PROT_EXEC : 0);
	v->shared = perms[3] == 's';
	snprintf(v->path, sizeof(v->path), "%s", line + n);
	v->path[strcspn(v->path, "\n")] = 0;
	v->kind = vma_kind(v);
	return 0;
}

int proc_read_vmas(pid_t pid, struct vma_list *vl)
{
	char path[64], line[512];
	FILE *f;
	int ret = 0;

	memset(vl, 0, sizeof(*vl));
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		struct vma v;

		if (vma_parse_line(line, &v)) {
			pr_err("cannot parse %s line: %s", path, line);
			ret = -EINVAL;
			break;
		}
		if (!strcmp(v.path, "[vsyscall]"))
			continue;	/* fixed kernel page, same everywhere */
		if (grow_array(&vl->v, &vl->cap, vl->nr, sizeof(*vl->v))) {
			ret = -ENOMEM;
			break;
		}
		vl->v[vl->nr++] = v;
	}
	fclose(f);
	if (ret)
		vma_list_free(vl);
	return ret;
}

static uint32_t vmflags_parse(const char *s)
{
	static const struct {
		char name[3];
		uint32_t flag;
	} known[] = {
		{ "dp", VMF_DROPPABLE }, { "lo", VMF_LOCKED }, { "lf", VMF_LOCKONFAULT },
		{ "sl", VMF_SEALED }, { "dc", VMF_DONTFORK }, { "wf", VMF_WIPEONFORK },
		{ "hg", VMF_HUGEPAGE }, { "nh", VMF_NOHUGEPAGE }, { "dd", VMF_DONTDUMP },
		{ "mg", VMF_MERGEABLE }, { "gd", VMF_GROWSDOWN }, { "nr", VMF_NORESERVE },
		{ "sr", VMF_SEQ_READ }, { "rr", VMF_RAND_READ },
	};
	uint32_t f = 0;
	size_t i;

	for (; *s; s++) {
		if (s[0] == ' ' || s[0] == '\n' || !s[1])
			continue;
		for (i = 0; i < ARRAY_SIZE(known); i++)
			if (s[0] == known[i].name[0] && s[1] == known[i].name[1] &&
			    (s[2] == ' ' || s[2] == '\n' || !s[2]))
				f |= known[i].flag;
		s++;	/* every flag is two letters */
	}
	return f;
}

int proc_read_vmflags(pid_t pid, struct vma_list *vl)
{
	char path[64], line[512];
	unsigned long long start, end;
	struct vma *cur = NULL;
	size_t next = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "VmFlags:", 8)) {
			if (cur)
				cur->vmflags = vmflags_parse(line + 8);
			cur = NULL;
			continue;
		}
		if (!isxdigit((unsigned char)line[0]) ||
		    sscanf(line, "%llx-%llx ", &start, &end) != 2)
			continue;
		/* both lists are in address order; [vsyscall] is not in @vl */
		while (next < vl->nr && vl->v[next].start < start)
			next++;
		cur = next < vl->nr && vl->v[next].start == start ? &vl->v[next] : NULL;
	}
	fclose(f);
	return 0;
}

void vma_list_free(struct vma_list *vl)
{
	free(vl->v);
	memset(vl, 0, sizeof(*vl));
}

bool vma_private_file(const struct vma *v)
{
	return !v->shared && (v->kind == VMA_KIND__VMA_FILE || v->kind == VMA_KIND__VMA_MEMFD);
}

bool vma_has_dumpable_pages(const struct vma *v)
{
	switch (v->kind) {
	case VMA_KIND__VMA_VDSO:
		return false;
	case VMA_KIND__VMA_FILE:
		return !v->shared;	/* shared file pages live in the file */
	default:
		return true;
	}
}

int proc_read_stat(pid_t pid, struct proc_stat *st)
{
	char path[64], buf[2048], *p, *close_paren;
	unsigned long long f[52];
	int i, n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	n = read_small_file(path, buf, sizeof(buf));
	if (n < 0)
		return n;
	/* comm may hold spaces and parens: it ends at the last ')' */
	p = strchr(buf, '(');
	close_paren = strrchr(buf, ')');
	if (!p || !close_paren)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	snprintf(st->comm, sizeof(st->comm), "%.*s", (int)(close_paren - p - 1), p + 1);
	p = close_paren + 2;
	st->state = *p;
	/* fields from 3 (state) on; f[k] is field k + 3 */
	p = strchr(p, ' ');
	for (i = 1; i < 50 && p; i++) {
		f[i] = strtoull(p + 1, &p, 10);
		if (*p != ' ' && *p != '\n' && *p)
			return -EINVAL;
	}
	if (i < 50)
		return -EINVAL;
	st->ppid = f[1];
	st->pgid = f[2];
	st->sid = f[3];
	st->tty_nr = f[4];
	st->tpgid = (pid_t)f[5];
	st->start_code = f[23];
	st->end_code = f[24];
	st->start_stack = f[25];
	st->start_data = f[42];
	st->end_data = f[43];
	st->start_brk = f[44];
	st->arg_start = f[45];
	st->arg_end = f[46];
	st->env_start = f[47];
	st->env_end = f[48];
	st->start_ticks = f[19];
	return 0;
}

int64_t proc_start_time(pid_t pid)
{
	long long btime = -1;
	long hz = sysconf(_SC_CLK_TCK);
	struct proc_stat st;
	char *line = NULL;
	size_t cap = 0;
	FILE *f;
	int ret;

	ret = proc_read_stat(pid, &st);
	if (ret)
		return ret;
	/* /proc/stat's intr line alone can be tens of KiB: read it line by line */
	f = fopen("/proc/stat", "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0)
		if (sscanf(line, "btime %lld", &btime) == 1)
			break;
	free(line);
	fclose(f);
	if (btime < 0 || hz <= 0)
		return -EINVAL;
	return btime + (int64_t)(st.start_ticks / hz);
}

int proc_readlink(pid_t pid, const char *what, char *buf, size_t len)
{
	char path[96];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, what);
	n = readlink(path, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return n;
}

ssize_t proc_pread(pid_t pid, const char *what, void *buf, size_t len, off_t off)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, what);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pread(fd, buf, len, off);
	if (n < 0)
		n = -errno;
	close(fd);
	return n;
}

int proc_take_fd(pid_t pid, int tfd)
{
	int pidfd = syscall(__NR_pidfd_open, pid, 0), fd;

	if (pidfd < 0)
		return -errno;
	fd = syscall(__NR_pidfd_getfd, pidfd, tfd, 0);
	if (fd < 0)
		fd = -errno;
	close(pidfd);
	return fd;
}

int proc_read_dir_numbers(const char *path, pid_t **out, size_t *nr)
{
	struct dirent *de;
	pid_t *v = NULL;
	size_t n = 0;
	DIR *d = opendir(path);

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		pid_t *nv;

		if (!isdigit(de->d_name[0]))
			continue;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			free(v);
			closedir(d);
			return -ENOMEM;
		}
		v = nv;
		v[n++] = atoi(de->d_name);
	}
	closedir(d);
	*out = v;
	*nr = n;
	return 0;
}

int proc_read_threads(pid_t pid, pid_t **tids, size_t *nr)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	return proc_read_dir_numbers(path, tids, nr);
}

int proc_read_children(pid_t pid, pid_t **kids, size_t *nr)
{
	pid_t *tids, *v = NULL;
	size_t nt, n = 0, i;
	int ret;

	ret = proc_read_threads(pid, &tids, &nt);
	if (ret)
		return ret;
	for (i = 0; i < nt && !ret; i++) {
		char path[96], buf[4096], *p;

		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, tids[i]);
		if (read_small_file(path, buf, sizeof(buf)) < 0)
			continue;	/* thread gone */
		for (p = buf; *p;) {
			char *end;
			long k = strtol(p, &end, 10);
			pid_t *nv;

			if (end == p)
				break;
			nv = realloc(v, (n + 1) * sizeof(*v));
			if (!nv) {
				ret = -ENOMEM;
				break;
			}
			v = nv;
			v[n++] = k;
			p = end;
			while (*p == ' ')
				p++;
		}
	}
	free(tids);
	if (ret) {
		free(v);
		return ret;
	}
	*kids = v;
	*nr = n;
	return 0;
}

static int parse_ids(const char *buf, const char *key, uint32_t *ids, int max)
{
	const char *p = strstr(buf, key);
	int n = 0;

	if (!p)
		return -EINVAL;
	p += strlen(key);
	while (n < max) {
		char *end;
		unsigned long v = strtoul(p, &end, 10);

		if (end == p)
			break;
		ids[n++] = v;
		p = end;
		if (*p == '\n')
			break;
	}
	return n;
}

int proc_read_creds(pid_t pid, CredsEntry *c, uint32_t *umask)
{
	static uint32_t groups[256];
	char path[64], buf[8192];
	uint32_t ids[4];
	const char *p;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	n = read_small_file(path, buf, sizeof(buf));
	if (n < 0)
		return n;
	if (parse_ids(buf, "\nUid:", ids, 4) != 4)
		return -EINVAL;
	c->uid = ids[0], c->euid = ids[1], c->suid = ids[2], c->fsuid = ids[3];
	if (parse_ids(buf, "\nGid:", ids, 4) != 4)
		return -EINVAL;
	c->gid = ids[0], c->egid = ids[1], c->sgid = ids[2], c->fsgid = ids[3];
	n = parse_ids(buf, "\nGroups:", groups, ARRAY_SIZE(groups));
	c->n_groups = n > 0 ? n : 0;
	c->groups = groups;	/* caller copies before the next call */
	p = strstr(buf, "\nUmask:");
	*umask = p ? strtoul(p + 7, NULL, 8) : 022;
	return 0;
}

bool proc_traced_by_me(pid_t pid)
{
	char path[64], buf[4096], *p;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (read_small_file(path, buf, sizeof(buf)) < 0)
		return false;
	p = strstr(buf, "\nTracerPid:");
	return p && strtol(p + 11, NULL, 10) == getpid();
}

bool proc_pgrp_traced_by_me(pid_t pgid)
{
	struct proc_stat st;
	struct dirent *de;
	bool all = true, any = false;
	DIR *d;

	d = opendir("/proc");
	if (!d)
		return false;
	while (all && (de = readdir(d))) {
		pid_t pid = strtol(de->d_name, NULL, 10);

		if (pid <= 0 || proc_read_stat(pid, &st) || st.pgid != pgid)
			continue;
		any = true;
		all = proc_traced_by_me(pid);
	}
	closedir(d);
	return all && any;
}

bool proc_gone(pid_t pid)
{
	struct proc_stat st;

	return proc_read_stat(pid, &st) || st.state == 'Z' || st.state == 'X';
}
