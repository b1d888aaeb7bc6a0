// SPDX-License-Identifier: MIT
/*
 * inotify instances: each watch (fdinfo "inotify wd:..." lines: number,
 * inode, mask, file handle) goes as its number, mask and a path to the
 * watched inode, found by opening its file handle. Queued, unread events
 * cannot be read without taking them from the process: an instance with
 * any is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "proto/image.h"
#include "source-agent/files.h"
#include "source-agent/proc.h"

struct inotify_priv {
	InotifyWatch *w;
	InotifyWatch **p;
	char **paths;
	size_t nr;
};

static bool inotify_match(const struct fd_dump *d)
{
	return !strcmp(d->path, "anon_inode:inotify");
}

/* Events queued and not read yet: refused (reading them would take them). */
static int inotify_check(struct fd_dump *d)
{
	int fd, n = 0, ret = 0;

	fd = proc_take_fd(d->pid, d->fd);
	if (fd < 0)
		return fd;
	if (ioctl(fd, FIONREAD, &n))
		ret = -errno;
	close(fd);
	if (!ret && n) {
		pr_err("pid %d: fd %d is an inotify instance with %d bytes of events not read yet: "
		       "ferry cannot carry queued inotify events", d->pid, d->fd, n);
		ret = -EOPNOTSUPP;
	}
	return ret;
}

/* A directory of a mount (from our mountinfo) of the file system @dev, or -errno. */
static int mount_fd_of(dev_t dev)
{
	char line[4096], root[PATH_MAX], mnt[PATH_MAX];
	unsigned int maj, min;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int fd = -ENOENT;

	if (!f)
		return -errno;
	while (fd < 0 && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%*u %*u %u:%u %4095s %4095s", &maj, &min, root, mnt) != 4 ||
		    makedev(maj, min) != dev)
			continue;
		fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			fd = -errno;
	}
	fclose(f);
	return fd;
}

static int hex_bytes(const char *s, unsigned char *out, size_t n)
{
	size_t i;
	unsigned int b;

	for (i = 0; i < n; i++) {
		if (sscanf(s + 2 * i, "%2x", &b) != 1)
			return -EINVAL;
		out[i] = b;
	}
	return 0;
}

/*
 * The path of the inode a watch names, from its file handle: opened by
 * handle, read back by its /proc/self/fd link, checked to lead to the same
 * inode.
 */
static int watch_path(const struct fd_dump *d, dev_t dev, uint64_t ino, const char *fh_hex,
		      unsigned int bytes, int type, char **path)
{
	struct { struct file_handle h; unsigned char b[MAX_HANDLE_SZ]; } fh;
	char link[64], buf[PATH_MAX];
	struct stat st;
	ssize_t n;
	int mfd, fd, ret;

	if (bytes > MAX_HANDLE_SZ || hex_bytes(fh_hex, fh.h.f_handle, bytes))
		return -EINVAL;
	fh.h.handle_bytes = bytes;
	fh.h.handle_type = type;
	mfd = mount_fd_of(dev);
	if (mfd < 0)
		return mfd;
	fd = open_by_handle_at(mfd, &fh.h, O_PATH | O_CLOEXEC);
	ret = fd < 0 ? -errno : 0;
	close(mfd);
	if (ret)
		return ret;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	if (buf[0] != '/' || lstat(buf, &st) || st.st_dev != dev || st.st_ino != ino) {
		pr_err("pid %d: fd %d is an inotify instance watching inode %llu, which no path "
		       "leads to (%s): ferry adds watches again by path", d->pid, d->fd,
		       (unsigned long long)ino, buf);
		return -EOPNOTSUPP;
	}
	*path = strdup(buf);
	return *path ? 0 : -ENOMEM;
}

static int watch_cmp(const void *a, const void *b)
{
	const InotifyWatch *x = *(InotifyWatch *const *)a, *y = *(InotifyWatch *const *)b;

	return x->wd < y->wd ? -1 : x->wd > y->wd;
}

static int inotify_parse(struct fd_dump *d, struct inotify_priv *ip, const char *info)
{
	const char *l;
	size_t nr = 0;
	int ret = 0;

	for (l = info; (l = strstr(l, "inotify wd:")); l++)
		nr++;
	ip->w = calloc(nr + 1, sizeof(*ip->w));
	ip->p = calloc(nr + 1, sizeof(*ip->p));
	ip->paths = calloc(nr + 1, sizeof(*ip->paths));
	if (!ip->w || !ip->p || !ip->paths)
		return -ENOMEM;
	for (l = info; !ret && (l = strstr(l, "inotify wd:")); l++) {
		unsigned int wd, sdev, mask, ign, bytes;
		unsigned long long ino;
		char fh[2 * MAX_HANDLE_SZ + 1];
		InotifyWatch *w = &ip->w[ip->nr];
		int type;

		if (sscanf(l, "inotify wd:%x ino:%llx sdev:%x mask:%x ignored_mask:%x "
			   "fhandle-bytes:%x fhandle-type:%x f_handle:%256s", &wd, &ino, &sdev,
			   &mask, &ign, &bytes, &type, fh) != 8) {
			pr_err("pid %d: fd %d is an inotify instance with a watch on a file system "
			       "without file handles: ferry cannot find its path", d->pid, d->fd);
			return -EOPNOTSUPP;
		}
		if (wd > INOTIFY_WD_MAX || (mask & ~INOTIFY_MASK_CARRIED)) {
			pr_err("pid %d: fd %d is an inotify instance with watch %u (mask %#x): "
			       "ferry cannot add it again with the same number and mask", d->pid,
			       d->fd, wd, mask);
			return -EOPNOTSUPP;
		}
		/* sdev is the kernel's encoding: major in the top 12 bits */
		ret = watch_path(d, makedev(sdev >> 20, sdev & 0xfffff), ino, fh, bytes, type,
				 &ip->paths[ip->nr]);
		inotify_watch__init(w);
		w->wd = wd;
		w->mask = mask;
		w->path = ip->paths[ip->nr];
		ip->p[ip->nr] = w;
		ip->nr++;
	}
	qsort(ip->p, ip->nr, sizeof(*ip->p), watch_cmp);
	return ret;
}

static int inotify_dump(struct fd_dump *d)
{
	struct inotify_priv *ip = calloc(1, sizeof(*ip));
	char *info = NULL;
	int ret;

	if (!ip)
		return -ENOMEM;
	d->priv = ip;
	d->e.type = FD_TYPE__FD_INOTIFY;
	d->e.path = d->path;
	ret = fdinfo_read_all(d, &info);
	if (!ret)
		ret = inotify_parse(d, ip, info);
	free(info);
	d->e.watches = ip->p;
	d->e.n_watches = ip->nr;
	return ret;
}

static void inotify_free(struct fd_dump *d)
{
	struct inotify_priv *ip = d->priv;
	size_t i;

	if (!ip)
		return;
	for (i = 0; i < ip->nr; i++)
		free(ip->paths[i]);
	free(ip->paths);
	free(ip->p);
	free(ip->w);
	free(ip);
}

const struct fd_dump_ops inotify_dump_ops = {
	.type = FD_TYPE__FD_INOTIFY,
	.name = "inotify",
	.match = inotify_match,
	.check = inotify_check,
	.dump = inotify_dump,
	.free = inotify_free,
};
