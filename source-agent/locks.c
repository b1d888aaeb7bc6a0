// SPDX-License-Identifier: MIT
/*
 * File locks held through an fd. The kernel lists them in the fd's fdinfo
 * ("lock:" lines): the FLOCK and OFD locks of its open file description,
 * and the POSIX locks the process holds through it (each line names the
 * lock's kind, read or write, and its range). They travel in the fd's
 * entry and are taken again by the restored process (dest-agent/locks.c).
 * Leases and delegations are refused. A request waiting for a lock
 * (F_SETLKW, flock without LOCK_NB) is not listed: it is a system call the
 * freeze interrupted, restarted after the restore, where it waits again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/files.h"
#include "source-agent/shm.h"

static const struct {
	const char *tag;
	FileLockKind kind;
	const char *what;
} lock_kinds[] = {
	{ "POSIX", FILE_LOCK_KIND__FILE_LOCK_POSIX, "a POSIX lock" },
	{ "FLOCK", FILE_LOCK_KIND__FILE_LOCK_FLOCK, "a flock lock" },
	{ "OFDLCK", FILE_LOCK_KIND__FILE_LOCK_OFD, "an OFD lock" },
};

/* Only regular files (not a memfd of the tree's shared memory) and directories reopen by path. */
static bool lockable(const struct fd_dump *d)
{
	if (d->ops == &dir_dump_ops)
		return true;
	return d->ops == &reg_dump_ops && !shm_lookup(d->shm, d->st.st_dev, d->st.st_ino);
}

/* The length of the fdinfo line at @line, for a message (at most 80). */
static int line_len(const char *line)
{
	size_t n = strcspn(line, "\n");

	return n > 80 ? 80 : (int)n;
}

int locks_parse_line(const struct fd_dump *d, const char *line, FileLock *l)
{
	char tag[16] = "", adv[16] = "", type[16] = "", start[24] = "", end[24] = "";
	unsigned long long s, e;
	const char *what = NULL;
	char *endp;
	size_t i;

	file_lock__init(l);
	sscanf(line, " %*d: %15s %15s %15s %*d %*s %23s %23s", tag, adv, type, start, end);
	for (i = 0; i < ARRAY_SIZE(lock_kinds); i++)
		if (!strcmp(tag, lock_kinds[i].tag)) {
			l->kind = lock_kinds[i].kind;
			what = lock_kinds[i].what;
		}
	if (!what) {
		if (!strcmp(tag, "LEASE") || !strcmp(tag, "DELEG"))
			pr_err("pid %d: fd %d (%s) holds %s: ferry cannot move leases and "
			       "delegations yet", d->pid, d->fd, d->path, *tag == 'L' ?
			       "a lease (F_SETLEASE)" : "a delegation");
		else
			pr_err("pid %d: fd %d (%s) holds a lock of a kind ferry does not know "
			       "(%.*s): refused", d->pid, d->fd, d->path, line_len(line), line);
		return -EOPNOTSUPP;
	}
	if (!lockable(d)) {
		pr_err("pid %d: fd %d (%s) holds %s: ferry carries locks of regular files and "
		       "directories only", d->pid, d->fd, d->path, what);
		return -EOPNOTSUPP;
	}
	errno = 0;
	s = strtoull(start, &endp, 10);
	if (strcmp(adv, "ADVISORY") || (strcmp(type, "READ") && strcmp(type, "WRITE")) ||
	    !*start || *endp || errno || s > INT64_MAX)
		goto bad;
	if (strcmp(end, "EOF")) {
		e = strtoull(end, &endp, 10);
		if (!*end || *endp || errno || e < s || e >= INT64_MAX)
			goto bad;
		l->len = e - s + 1;
	}
	if (l->kind == FILE_LOCK_KIND__FILE_LOCK_FLOCK && (s || l->len))
		goto bad;
	l->start = s;
	l->write = !strcmp(type, "WRITE");
	return 0;
bad:
	pr_err("pid %d: fd %d (%s) holds %s ferry does not understand (%.*s): refused", d->pid,
	       d->fd, d->path, what, line_len(line), line);
	return -EOPNOTSUPP;
}

static int count_locks(const char *info)
{
	int n = 0;

	for (info = strstr(info, "\nlock:"); info; info = strstr(info + 1, "\nlock:"))
		n++;
	return n;
}

/* Each lock line into d->e.locks (the dump), or only checked (d->sink NULL: the preflight). */
static int parse_locks(struct fd_dump *d, const char *info)
{
	const char *p = info;
	int n = count_locks(info), i, ret;
	FileLock one;

	if (!n)
		return 0;
	if (d->sink) {
		d->locks = calloc(n, sizeof(*d->locks));
		d->e.locks = calloc(n, sizeof(*d->e.locks));
		if (!d->locks || !d->e.locks)
			return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		p = strstr(p, "\nlock:") + 6;
		ret = locks_parse_line(d, p, d->sink ? &d->locks[i] : &one);
		if (ret)
			return ret;
		if (d->sink)
			d->e.locks[d->e.n_locks++] = &d->locks[i];
	}
	return 0;
}

int locks_fd_check(struct fd_dump *d)
{
	char path[64], small[4096], *info = small;
	ssize_t n;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", d->pid, d->fd);
	n = read_small_file(path, small, sizeof(small));
	if (n < 0)
		return n;
	if ((size_t)n == sizeof(small) - 1) {
		/* many locks (or an epoll's long list): read it whole */
		ret = fdinfo_read_all(d, &info);
		if (ret) {
			free(info);
			return ret;
		}
	}
	ret = parse_locks(d, info);
	if (info != small)
		free(info);
	return ret;
}

void locks_fd_free(struct fd_dump *d)
{
	free(d->e.locks);
	free(d->locks);
	d->e.locks = NULL;
	d->e.n_locks = 0;
	d->locks = NULL;
}
