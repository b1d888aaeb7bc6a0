// SPDX-License-Identifier: MIT
/*
 * File locks (source-agent/locks.c): each is taken again by the restored
 * process in its restorer blob once its fds are placed (FINAL), without
 * waiting. POSIX locks belong to the process: each process takes its own.
 * FLOCK and OFD locks belong to the open file description: the process of
 * the tree that first holds the description (the one whose fd set it up
 * here, o->f) takes them, once. A lock someone else holds here fails the
 * restore, naming it; the tree is then killed, which drops the locks it
 * took.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "dest-agent/restore.h"
#include "restorer/restorer.h"

static const char *const kind_names[] = {
	[FILE_LOCK_KIND__FILE_LOCK_FLOCK] = "flock",
	[FILE_LOCK_KIND__FILE_LOCK_POSIX] = "POSIX",
	[FILE_LOCK_KIND__FILE_LOCK_OFD] = "OFD",
};

static int check_lock(const FdEntry *f, const FileLock *l)
{
	bool whole = !l->start && !l->len;

	if ((f->type != FD_TYPE__FD_REG || f->has_shmid) && f->type != FD_TYPE__FD_DIR)
		goto bad;
	switch (l->kind) {
	case FILE_LOCK_KIND__FILE_LOCK_FLOCK:
		if (!whole)
			goto bad;
		return 0;
	case FILE_LOCK_KIND__FILE_LOCK_POSIX:
	case FILE_LOCK_KIND__FILE_LOCK_OFD:
		/* the kernel's range: start + len - 1 within a signed 64-bit offset */
		if (l->start > INT64_MAX || l->len > INT64_MAX - l->start)
			goto bad;
		return 0;
	default:
		break;
	}
bad:
	pr_err("fd %u: a file lock in the image is not valid (kind %d, %llu+%llu)", f->fd,
	       (int)l->kind, (unsigned long long)l->start, (unsigned long long)l->len);
	return -EINVAL;
}

/* Does this fd's process take its description's locks (the first holder in the tree)? */
static bool takes_description(const struct open_files *of, const FdEntry *f)
{
	size_t i;

	for (i = 0; i < of->nr; i++)
		if (of->v[i].f == f)
			return true;
	return false;
}

/*
 * The locks process @fe takes, in order: @fn(arg, k, f, l) for the k-th;
 * stops at its first non-zero return.
 */
static int for_each_lock(const struct open_files *of, const FilesEntry *fe,
			 int (*fn)(void *arg, size_t k, const FdEntry *f, const FileLock *l),
			 void *arg)
{
	size_t i, j, k = 0;
	int ret;

	for (i = 0; i < fe->n_fds; i++) {
		const FdEntry *f = fe->fds[i];
		bool desc = f->n_locks && takes_description(of, f);

		for (j = 0; j < f->n_locks; j++) {
			const FileLock *l = f->locks[j];

			ret = check_lock(f, l);
			if (ret)
				return ret;
			if (l->kind != FILE_LOCK_KIND__FILE_LOCK_POSIX && !desc)
				continue;	/* another fd of the description takes it */
			ret = fn(arg, k++, f, l);
			if (ret)
				return ret;
		}
	}
	return 0;
}

size_t rst_locks_max(const FilesEntry *fe)
{
	size_t i, n = 0;

	for (i = 0; i < fe->n_fds; i++)
		n += fe->fds[i]->n_locks;
	return n;
}

static int put_lock(void *arg, size_t k, const FdEntry *f, const FileLock *l)
{
	struct rst_lock *out = arg;

	out[k] = (struct rst_lock){
		.fd = f->fd,
		.kind = l->kind == FILE_LOCK_KIND__FILE_LOCK_FLOCK ? RST_LOCK_FLOCK :
			l->kind == FILE_LOCK_KIND__FILE_LOCK_OFD ? RST_LOCK_OFD : RST_LOCK_POSIX,
		.type = l->write ? F_WRLCK : F_RDLCK,
		.start = l->start,
		.len = l->len,
	};
	return 0;
}

static int count_lock(void *arg, size_t k, const FdEntry *f, const FileLock *l)
{
	(void)f;
	(void)l;
	*(size_t *)arg = k + 1;
	return 0;
}

int rst_locks_layout(const struct open_files *of, const FilesEntry *fe, struct rst_lock *out,
		     size_t *nr)
{
	int ret;

	*nr = 0;
	ret = for_each_lock(of, fe, count_lock, nr);
	return ret ? ret : for_each_lock(of, fe, put_lock, out);
}

struct explain {
	size_t k;
	pid_t pid;
	int err;
};

static int explain_one(void *arg, size_t k, const FdEntry *f, const FileLock *l)
{
	const struct explain *x = arg;
	char range[64] = "the whole file";

	if (k != x->k)
		return 0;
	if (l->kind != FILE_LOCK_KIND__FILE_LOCK_FLOCK && l->len)
		snprintf(range, sizeof(range), "bytes %llu-%llu", (unsigned long long)l->start,
			 (unsigned long long)(l->start + l->len - 1));
	else if (l->kind != FILE_LOCK_KIND__FILE_LOCK_FLOCK)
		snprintf(range, sizeof(range), "bytes %llu to the end",
			 (unsigned long long)l->start);
	pr_err("pid %d: fd %u (%s): cannot take its %s %s lock on %s here: %s", x->pid, f->fd,
	       f->path ? f->path : "?", kind_names[l->kind], l->write ? "write" : "read", range,
	       x->err == -EAGAIN || x->err == -EACCES || x->err == -EWOULDBLOCK ?
	       "another process holds a conflicting lock here" : strerror(-x->err));
	return 1;
}

void rst_locks_explain(const struct open_files *of, const FilesEntry *fe, pid_t pid, uint64_t k,
		       int err)
{
	struct explain x = { k, pid, err };

	for_each_lock(of, fe, explain_one, &x);
}
