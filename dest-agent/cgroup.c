// SPDX-License-Identifier: MIT
/*
 * cgroup membership (source-agent/cgroup.c): a restored process is put into
 * the cgroup it was in, on each hierarchy, by writing its pid to that
 * cgroup's cgroup.procs, as soon as it exists (so its memory is charged
 * there) and again before its final state (in case it moved between
 * rounds). A hierarchy is found by its controllers (v1: "memory",
 * "name=systemd"...; v2: the cgroup2 mount), never by its number, which
 * differs between hosts. Where the hierarchy is not mounted or the path does
 * not exist here, the restore fails, naming it: the process would otherwise
 * run outside its limits. Paths are as migrate and restore see them (their
 * cgroup namespaces).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "dest-agent/restore.h"

#define CGROUP_FILE_MAX 8192
#define MOUNTINFO_MAX	(256 * 1024)

/* "ID:CONTROLLERS:PATH" -> the part after the number (hierarchy ids differ between hosts). */
static const char *after_id(const char *line)
{
	const char *c = strchr(line, ':');

	return c ? c + 1 : NULL;
}

/* Is "CONTROLLERS:PATH" @want one of the lines of @cur? */
static bool has_line(const char *cur, const char *want)
{
	size_t len = strlen(want);
	const char *p;

	for (p = cur; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		const char *a = after_id(p);

		if (a && !strncmp(a, want, len) && (a[len] == '\n' || !a[len]))
			return true;
	}
	return false;
}

/* Does the super options list @opts ("rw,memory") hold every controller of @ctrl ("cpu,cpuacct")? */
static bool has_controllers(const char *opts, const char *ctrl, size_t ctrl_len)
{
	size_t i = 0;

	while (i < ctrl_len) {
		size_t n = strcspn(ctrl + i, ",:");
		const char *o = opts;
		bool found = false;

		if (n > ctrl_len - i)
			n = ctrl_len - i;
		while (*o && !found) {
			size_t m = strcspn(o, ",");

			found = m == n && !strncmp(o, ctrl + i, n);
			o += m + (o[m] == ',');
		}
		if (!found)
			return false;
		i += n + 1;
	}
	return true;
}

/*
 * The directory of hierarchy @ctrl (its controllers; empty: cgroup2) where
 * @path lies, into @dir.
 */
static int hierarchy_dir(const char *mountinfo, const char *ctrl, size_t ctrl_len,
			 const char *path, char *dir, size_t len)
{
	const char *line;

	for (line = mountinfo; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		char root[PATH_MAX], mnt[PATH_MAX], fstype[32], opts[512];
		const char *sep = strstr(line, " - ");
		size_t rl;

		if (!sep || sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2 ||
		    sscanf(sep + 3, "%31s %*s %511s", fstype, opts) != 2)
			continue;
		if (ctrl_len ? strcmp(fstype, "cgroup") || !has_controllers(opts, ctrl, ctrl_len) :
			       strcmp(fstype, "cgroup2"))
			continue;
		/* a mount of a sub-tree: the path must lie in it */
		rl = strcmp(root, "/") ? strlen(root) : 0;
		if (strncmp(path, root, rl) || (path[rl] && path[rl] != '/'))
			continue;
		if (snprintf(dir, len, "%s%s", mnt, path + rl) >= (int)len)
			return -ENAMETOOLONG;
		return 0;
	}
	return -ENODEV;
}

/* A ".." component: out of the hierarchy (the kernel never writes one). */
static bool path_climbs(const char *p)
{
	for (; (p = strstr(p, "/..")); p += 3)
		if (p[3] == '/' || !p[3])
			return true;
	return false;
}

/* Move @pid into the cgroup of saved line @line, found in @mountinfo. */
static int enter_one(pid_t pid, uint32_t want_pid, const char *line, const char *mountinfo)
{
	const char *ctrl = after_id(line), *path;
	char dir[PATH_MAX], procs[PATH_MAX + 16], num[16];
	int fd, n, ret;

	path = ctrl ? strchr(ctrl, ':') : NULL;
	if (!path || path[1] != '/' || path_climbs(path + 1)) {
		pr_err("pid %u: bad cgroup line '%s' in pstree.img", want_pid, line);
		return -EINVAL;
	}
	ret = hierarchy_dir(mountinfo, ctrl, path - ctrl, path + 1, dir, sizeof(dir));
	if (ret == -ENODEV) {
		pr_err("pid %u: its cgroup hierarchy '%.*s' is not mounted here: the restored "
		       "process cannot be put back into cgroup %s", want_pid,
		       (int)(path - ctrl), path - ctrl ? ctrl : "(cgroup2)", path + 1);
		return ret;
	}
	if (ret)
		return ret;
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		pr_err("pid %u: its cgroup %s (%s) %s here: create it first, or the restored "
		       "process would run outside it", want_pid, line, dir,
		       ret == -ENOENT ? "does not exist" : strerror(-ret));
		return ret;
	}
	n = snprintf(num, sizeof(num), "%d", pid);
	ret = write(fd, num, n) == n ? 0 : -errno;
	close(fd);
	if (ret)
		pr_err("pid %u: cannot move it into cgroup %s (%s): %s", want_pid, line, procs,
		       strerror(-ret));
	return ret;
}

int cgroup_enter(pid_t pid, const PstreeEntry *pe)
{
	char path[64], *cur = NULL, *mi = NULL;
	size_t i;
	int ret = 0;

	if (!pe->n_cgroups)
		return 0;	/* images without cgroups */
	cur = malloc(CGROUP_FILE_MAX);
	if (!cur)
		return -ENOMEM;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	ret = read_small_file(path, cur, CGROUP_FILE_MAX);
	if (ret < 0)
		goto out;
	ret = 0;
	for (i = 0; i < pe->n_cgroups && !ret; i++) {
		const char *want = after_id(pe->cgroups[i]);

		if (want && has_line(cur, want))
			continue;	/* already there (inherited) */
		if (!mi) {
			mi = malloc(MOUNTINFO_MAX);
			if (!mi) {
				ret = -ENOMEM;
				break;
			}
			ret = read_small_file("/proc/self/mountinfo", mi, MOUNTINFO_MAX);
			if (ret < 0)
				break;
			ret = 0;
		}
		ret = enter_one(pid, pe->pid, pe->cgroups[i], mi);
	}
out:
	free(mi);
	free(cur);
	return ret;
}
