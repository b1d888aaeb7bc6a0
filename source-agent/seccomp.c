// SPDX-License-Identifier: MIT
/*
 * Seccomp: strict mode and filter chains are carried (the restorer installs
 * them again, dest-agent/seccomp.c). The preflight refuses only a mode this
 * code does not know; a filter that hands syscalls to a listener
 * (SECCOMP_RET_USER_NOTIF) needs the programs, read with ptrace: refused
 * when a process is first seized (before round 1) and in the final dump.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/preflight.h"
#include "source-agent/proc.h"
#include "source-agent/seccomp.h"

#define SECCOMP_MAX_FILTERS	512	/* a chain is at most 32768 insns, 4 of overhead each */

/* A field of a status file; -1 if there is none. */
static long status_field(const char *buf, const char *name)
{
	const char *p = strstr(buf, name);

	return p ? strtol(p + strlen(name), NULL, 10) : -1;
}

static int thread_status(pid_t pid, pid_t tid, long *mode, long *nr_filters)
{
	char path[96], buf[8192];
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	ret = read_small_file(path, buf, sizeof(buf));
	if (ret < 0)
		return ret;
	*mode = status_field(buf, "\nSeccomp:");
	*nr_filters = status_field(buf, "\nSeccomp_filters:");
	if (*mode < 0)	/* a kernel without seccomp */
		*mode = 0;
	return 0;
}

static int mode_check(pid_t pid, pid_t tid, long mode)
{
	if (mode >= SECCOMP_MODE_DISABLED && mode <= SECCOMP_MODE_FILTER)
		return 0;
	pr_err("pid %d: thread %d: seccomp mode %ld is unknown to ferry: cannot move it",
	       pid, tid, mode);
	return -EOPNOTSUPP;
}

int seccomp_check(pid_t pid)
{
	pid_t *tids;
	size_t nr, i;
	long mode, nr_filters;
	int ret;

	ret = proc_read_threads(pid, &tids, &nr);
	if (ret)
		return ret;
	for (i = 0; !ret && i < nr; i++)
		if (!thread_status(pid, tids[i], &mode, &nr_filters))	/* else: gone */
			ret = mode_check(pid, tids[i], mode);
	free(tids);
	return ret;
}

/*
 * Every action the program can return is a constant (BPF_RET|BPF_K), and
 * none is SECCOMP_RET_USER_NOTIF: a listener (an fd, maybe in another
 * process) would decide those syscalls, and it does not travel.
 */
static int prog_check(pid_t pid, pid_t tid, const struct sock_filter *insn, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (BPF_CLASS(insn[i].code) != BPF_RET)
			continue;
		if (BPF_RVAL(insn[i].code) != BPF_K) {
			pr_err("pid %d: thread %d: a seccomp filter returns a computed action "
			       "(BPF_RET|BPF_A): ferry cannot tell whether it notifies a listener",
			       pid, tid);
			return -EOPNOTSUPP;
		}
		if ((insn[i].k & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_USER_NOTIF) {
			pr_err("pid %d: thread %d: a seccomp filter hands syscalls to a listener "
			       "(SECCOMP_RET_USER_NOTIF): ferry cannot move that", pid, tid);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

/* Filter @idx of the chain (0: the oldest, see docs/kernel-notes.md) with its flags. */
static int read_filter(pid_t pid, pid_t tid, unsigned long idx, SeccompFilter *f)
{
	struct __ptrace_seccomp_metadata md = { .filter_off = idx };
	struct sock_filter *insn;
	long n;
	int ret;

	n = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)idx, NULL);
	if (n < 0 && errno == ENOENT)
		return -ENOENT;	/* past the newest */
	if (n <= 0 || n > BPF_MAXINSNS) {
		ret = n < 0 ? -errno : -EINVAL;
		pr_err("pid %d: thread %d: cannot read seccomp filter %lu: %s (reading filters "
		       "needs CAP_SYS_ADMIN)", pid, tid, idx, strerror(-ret));
		return ret;
	}
	insn = calloc(n, sizeof(*insn));
	if (!insn)
		return -ENOMEM;
	errno = 0;
	if (ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)idx, insn) != n ||
	    ptrace(PTRACE_SECCOMP_GET_METADATA, tid, (void *)sizeof(md), &md) != sizeof(md)) {
		ret = errno ? -errno : -EIO;
		pr_err("pid %d: thread %d: cannot read seccomp filter %lu: %s", pid, tid, idx,
		       strerror(-ret));
		goto fail;
	}
	ret = prog_check(pid, tid, insn, n);
	if (ret)
		goto fail;
	seccomp_filter__init(f);
	f->prog.data = (uint8_t *)insn;
	f->prog.len = n * sizeof(*insn);
	f->has_flags = 1;
	f->flags = md.flags;
	return 0;
fail:
	free(insn);
	return ret;
}

/* Index of @f in @st, added if new (the table takes its program). */
static int table_add(struct seccomp_table *st, SeccompFilter *f, uint32_t *idx)
{
	size_t i;

	for (i = 0; i < st->nr; i++) {
		if (st->f[i].flags == f->flags && st->f[i].prog.len == f->prog.len &&
		    !memcmp(st->f[i].prog.data, f->prog.data, f->prog.len)) {
			free(f->prog.data);
			*idx = i;
			return 0;
		}
	}
	if (st->nr == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 8;
		SeccompFilter *n = realloc(st->f, cap * sizeof(*n));

		if (!n) {
			free(f->prog.data);
			return -ENOMEM;
		}
		st->f = n;
		st->cap = cap;
	}
	st->f[st->nr] = *f;
	*idx = st->nr++;
	return 0;
}

int seccomp_dump_thread(pid_t pid, pid_t tid, struct seccomp_table *st, ThreadCore *tc)
{
	long mode, nr_filters;
	SeccompFilter f;
	uint32_t *chain = NULL;
	size_t n = 0;
	int ret;

	ret = thread_status(pid, tid, &mode, &nr_filters);
	if (!ret)
		ret = mode_check(pid, tid, mode);
	if (ret)
		return ret;
	tc->has_seccomp_mode = 1;
	tc->seccomp_mode = mode;
	if (mode != SECCOMP_MODE_FILTER)
		return 0;
	for (;;) {
		if (n == SECCOMP_MAX_FILTERS) {
			ret = -E2BIG;
			break;
		}
		ret = read_filter(pid, tid, n, &f);
		if (ret == -ENOENT) {
			ret = 0;
			break;
		}
		if (!ret && !(n & 15)) {
			uint32_t *c = realloc(chain, (n + 16) * sizeof(*c));

			if (!c) {
				free(f.prog.data);
				ret = -ENOMEM;
			}
			chain = c ?: chain;
		}
		if (!ret)
			ret = table_add(st, &f, &chain[n]);
		if (ret)
			break;
		n++;
	}
	/* Seccomp_filters (since 5.9) counts the same chain */
	if (!ret && (!n || (nr_filters >= 0 && nr_filters != (long)n))) {
		pr_err("pid %d: thread %d: %zu seccomp filters read, the kernel counts %ld",
		       pid, tid, n, nr_filters);
		ret = -EIO;
	}
	if (ret) {
		free(chain);
		return ret;
	}
	tc->seccomp_chain = chain;
	tc->n_seccomp_chain = n;
	return 0;
}

void seccomp_thread_free(ThreadCore *tc)
{
	free(tc->seccomp_chain);
	tc->seccomp_chain = NULL;
	tc->n_seccomp_chain = 0;
}

void seccomp_table_free(struct seccomp_table *st)
{
	size_t i;

	for (i = 0; i < st->nr; i++)
		free(st->f[i].prog.data);
	free(st->f);
	memset(st, 0, sizeof(*st));
}

int seccomp_check_sharing(pid_t pid, ThreadCore *const *tc, size_t n)
{
	size_t common = n ? tc[0]->n_seccomp_chain : 0, i, j;

	/* a filter has one predecessor: only equal bottoms of chains can be shared */
	for (i = 1; i < n; i++)
		for (j = 0; j < common; j++)
			if (j >= tc[i]->n_seccomp_chain ||
			    tc[i]->seccomp_chain[j] != tc[0]->seccomp_chain[j]) {
				common = j;
				break;
			}
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (tc[i]->n_seccomp_chain > common && tc[j]->n_seccomp_chain > common &&
			    tc[i]->seccomp_chain[common] == tc[j]->seccomp_chain[common]) {
				pr_err("pid %d: threads %u and %u share seccomp filters the others "
				       "lack: ferry cannot keep that sharing", pid, tc[i]->tid,
				       tc[j]->tid);
				return -EOPNOTSUPP;
			}
	return 0;
}

int seccomp_check_seized(const struct thread_set *ts)
{
	struct seccomp_table st = { 0 };
	ThreadCore *tc, **tcp;
	size_t k;
	int ret = -ENOMEM;

	tc = calloc(ts->nr, sizeof(*tc));
	tcp = calloc(ts->nr, sizeof(*tcp));
	if (!tc || !tcp)
		goto out;
	for (k = 0, ret = 0; !ret && k < ts->nr; k++) {
		thread_core__init(&tc[k]);
		tc[k].tid = ts->tids[k];
		tcp[k] = &tc[k];
		ret = seccomp_dump_thread(ts->pid, ts->tids[k], &st, &tc[k]);
	}
	if (!ret)
		ret = seccomp_check_sharing(ts->pid, tcp, ts->nr);
	for (k = 0; tc && k < ts->nr; k++)
		seccomp_thread_free(&tc[k]);
out:
	seccomp_table_free(&st);
	free(tcp);
	free(tc);
	return ret;
}
