// SPDX-License-Identifier: MIT
/*
 * The preflight: before the destination is opened or anything seized, walk
 * the running tree (root and every descendant, from /proc, nothing stopped)
 * and run every check on each process: the table below, then each fd as the
 * final dump would take it (files_check: the fd_kinds rows' own checks).
 * What the tree creates afterwards is refused by the same checks in the
 * final dump.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/files.h"
#include "source-agent/ipc.h"
#include "source-agent/preflight.h"
#include "source-agent/proc.h"
#include "source-agent/shm.h"

/* Checks of a process as a whole, one per object, in its object's file. */
static int (*const proc_checks[])(pid_t pid) = {
	core_check,
	seccomp_check,
	creds_check,
	timers_check,
	ipc_check,
	cgroup_check,
};

int preflight_proc(pid_t pid)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < ARRAY_SIZE(proc_checks) && !ret; i++)
		ret = proc_checks[i](pid);
	return ret;
}

struct pids {
	pid_t *v;
	size_t nr, cap;
};

static int pids_add(struct pids *p, pid_t pid)
{
	size_t i;

	for (i = 0; i < p->nr; i++)
		if (p->v[i] == pid)
			return 0;
	if (grow_array(&p->v, &p->cap, p->nr, sizeof(*p->v)))
		return -ENOMEM;
	p->v[p->nr++] = pid;
	return 0;
}

/* The root, then its descendants, parents before children. */
static int tree_walk(pid_t root, struct pids *p)
{
	size_t i, k, nr;
	pid_t *kids;
	int ret;

	ret = pids_add(p, root);
	for (i = 0; i < p->nr && !ret; i++) {
		if (proc_read_children(p->v[i], &kids, &nr))
			continue;	/* gone meanwhile */
		for (k = 0; k < nr && !ret; k++)
			ret = pids_add(p, kids[k]);
		free(kids);
	}
	return ret;
}

/* The shared memory objects the tree maps (ids only: what the fds may name). */
static int shm_mapped(const struct pids *p, struct shm_set *ss)
{
	struct vma_list vl = { 0 };
	size_t i, k;
	int ret = 0;

	for (i = 0; i < p->nr && !ret; i++) {
		if (proc_read_vmas(p->v[i], &vl))
			continue;	/* gone meanwhile */
		for (k = 0; k < vl.nr && !ret; k++) {
			const struct vma *v = &vl.v[k];

			if (!vma_is_shm(v) || shm_lookup(ss, v->dev, v->ino))
				continue;
			if (grow_array(&ss->o, &ss->cap, ss->nr, sizeof(*ss->o))) {
				ret = -ENOMEM;
				break;
			}
			memset(&ss->o[ss->nr], 0, sizeof(ss->o[0]));
			ss->o[ss->nr].id = ss->nr + 1;
			ss->o[ss->nr].dev = v->dev;
			ss->o[ss->nr].ino = v->ino;
			ss->o[ss->nr].fd = -1;
			ss->nr++;
		}
		vma_list_free(&vl);
	}
	return ret;
}

int preflight_tree(pid_t root)
{
	struct file_ids ids = { 0 };
	struct shm_set ss = { 0 };
	struct pids p = { 0 };
	size_t i;
	int ret;

	ipc_tree_set(root);	/* what ipc_check calls the tree */
	ret = tree_walk(root, &p);
	if (!ret)
		ret = core_share_check(p.v, p.nr);
	if (!ret)
		ret = shm_mapped(&p, &ss);
	for (i = 0; i < p.nr && !ret; i++) {
		ret = preflight_proc(p.v[i]);
		if (!ret)	/* not in the frozen final dump: it walks page tables */
			ret = mm_vmflags_check(p.v[i]);
		if (!ret)
			ret = files_check(p.v[i], &ids, &ss);
		if (!ret)
			ret = mm_ghost_check(p.v[i], &ids);
		if (ret == -ENOENT || ret == -ESRCH)
			ret = 0;	/* gone meanwhile (the root: the seize says so) */
	}
	if (!ret)
		ret = file_ids_check_peers(&ids);
	if (ret && ret != -EOPNOTSUPP)
		pr_err("cannot look at the tree of pid %d: %s", root, strerror(-ret));
	file_ids_free(&ids);
	shm_free(&ss);
	free(p.v);
	return ret;
}
