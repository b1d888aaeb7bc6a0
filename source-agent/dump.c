// SPDX-License-Identifier: MIT
/*
 * Final dump of everything but memory pages: see dump.h. Each object has
 * its own file (mm.c, core.c, files.c and one per kind of fd); this one
 * runs them in order around the parasite, and writes pstree.img and
 * inventory.img.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>

#include "common/log.h"
#include "common/ptrace.h"
#include "common/compat.h"
#include "common/util.h"
#include "proto/image.h"
#include "source-agent/cgroup.h"
#include "source-agent/core.h"
#include "source-agent/dump.h"
#include "source-agent/files.h"
#include "source-agent/mm.h"
#include "source-agent/parasite.h"

int sink_add_msg(struct sink *sink, const char *name, const ProtobufCMessage *msg)
{
	struct img_buf b;
	int ret;

	ret = img_buf_init(&b);
	if (!ret)
		ret = img_buf_add(&b, msg);
	if (!ret)
		ret = sink->ops->add_file(sink, name, b.data, b.len);
	img_buf_free(&b);
	return ret;
}

uint64_t stat_mtime_ns(const struct stat *st)
{
	return st->st_mtim.tv_sec * 1000000000ULL + st->st_mtim.tv_nsec;
}

int dump_process(pid_t pid, const struct thread_set *ts, const struct vma_list *vl,
		 struct file_ids *files, const struct shm_set *shm, struct sink *sink)
{
	struct parasite_ctl *ctl = NULL;
	struct parasite_data pd = { 0 };
	struct tracee *t;
	struct proc_stat ps;
	size_t k;
	int ret, cret;

	ret = proc_read_stat(pid, &ps);
	if (ret)
		return ret;
	/* Registers first, as frozen: an interrupted syscall keeps its own restart rule. */
	t = calloc(ts->nr, sizeof(*t));
	if (!t)
		return -ENOMEM;
	for (k = 0; !ret && k < ts->nr; k++) {
		t[k].tid = ts->tids[k];
		ret = tracee_save(&t[k]);
		/* interrupted before ferry first stopped it: which call is unknown */
		if (!ret && (long)t[k].regs.rax == -ERESTART_RESTARTBLOCK &&
		    t[k].regs.orig_rax == __NR_restart_syscall) {
			pr_err("pid %d: thread %d goes on with a syscall interrupted before ferry "
			       "seized it (restart_syscall): ferry cannot tell which to restart",
			       pid, t[k].tid);
			ret = -EOPNOTSUPP;
		}
	}
	if (!ret)
		ret = parasite_infect(pid, &ctl);
	if (ret)
		goto out;
	ret = dump_mm(pid, ctl, vl, &ps, files, sink);
	if (!ret)
		ret = parasite_collect(ctl, ts, &pd);
	cret = parasite_cure(ctl);
	if (!ret)
		ret = cret;
	if (!ret)
		ret = dump_core(pid, ts, t, &pd, &ps, sink);
	if (!ret)
		ret = dump_files(pid, files, shm, sink);
out:
	for (k = 0; k < ts->nr; k++)
		tracee_free(&t[k]);
	free(t);
	parasite_data_free(&pd);
	return ret;
}

/*
 * A process's controlling terminal (a pty of the tree: tty.c checks it at
 * the final dump); a session leader's also with its window size, which the
 * destination gives the pty before the session has it (no SIGWINCH).
 */
static int pstree_ctty(const struct tree *t, const struct proc_stat *ps, PstreeEntry *e,
		       struct winsize *ws, pid_t *pids)
{
	size_t i;

	e->ctty = tty_ctty_index(ps->tty_nr);
	if (!e->ctty)
		return 0;
	e->has_ctty = e->has_tpgid = 1;
	e->tpgid = ps->tpgid;
	if (e->pid != (uint32_t)ps->sid)
		return 0;
	for (i = 0; i < t->nr; i++)
		pids[i] = tree_threads(t, i)->pid;
	if (tty_winsize(pids, t->nr, e->ctty - 1, ws))
		return 0;	/* no fd of it (the final dump refuses a pty without one) */
	e->has_ctty_winsize = 1;
	e->ctty_winsize.data = (uint8_t *)ws;
	e->ctty_winsize.len = sizeof(*ws);
	return 0;
}

int dump_pstree(const struct tree *t, struct sink *sink)
{
	pid_t *pids = calloc(t->nr + 1, sizeof(*pids));
	struct winsize ws;
	struct img_buf b;
	size_t i;
	int ret;

	if (!pids)
		return -ENOMEM;
	ret = img_buf_init(&b);
	for (i = 0; !ret && i < t->nr; i++) {
		const struct thread_set *ts = tree_threads(t, i);
		PstreeEntry e = PSTREE_ENTRY__INIT;
		struct cgroup_lines cl;
		struct proc_stat ps;

		ret = proc_read_stat(ts->pid, &ps);
		if (!ret)
			ret = cgroup_read(ts->pid, &cl);
		if (ret)
			break;
		e.cgroups = cl.line;
		e.n_cgroups = cl.nr;
		e.pid = ts->pid;
		e.ppid = i ? ps.ppid : 0;	/* the root's parent stays behind */
		e.pgid = ps.pgid;
		e.sid = ps.sid;
		e.threads = (uint32_t *)ts->tids;
		e.n_threads = ts->nr;
		e.has_stopped = 1;
		e.stopped = t->p[i].stopped;
		if (e.stopped) {
			e.has_stop_signal = 1;
			e.stop_signal = t->p[i].stop_signal ?: SIGSTOP;
		}
		ret = pstree_ctty(t, &ps, &e, &ws, pids);
		if (!ret)
			ret = img_buf_add(&b, &e.base);
		cgroup_lines_free(&cl);
	}
	if (!ret)
		ret = sink->ops->add_file(sink, "pstree.img", b.data, b.len);
	img_buf_free(&b);
	free(pids);
	return ret;
}

int dump_inventory(struct sink *sink, uint32_t round, pid_t root, int final)
{
	InventoryEntry inv = INVENTORY_ENTRY__INIT;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	inv.round = round;
	inv.final = final;
	inv.root_pid = root;
	inv.migration_id = sink->migration_id;
	inv.page_size = PAGE_SIZE;
	inv.has_created_ns = 1;
	inv.created_ns = ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	return sink_add_msg(sink, "inventory.img", &inv.base);
}
