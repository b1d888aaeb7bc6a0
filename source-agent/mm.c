// SPDX-License-Identifier: MIT
/* The mm of a process: its VMAs, auxv and mm fields (mm-<pid>.img). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <linux/magic.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/log.h"
#include "common/util.h"
#include "source-agent/dirty.h"
#include "source-agent/dump.h"
#include "source-agent/files.h"
#include "source-agent/ghost.h"
#include "source-agent/mm.h"
#include "source-agent/parasite.h"
#include "source-agent/preflight.h"

static uint32_t vma_mmap_flags(const struct vma *v)
{
	uint32_t f = v->shared ? MAP_SHARED : MAP_PRIVATE;

	/* a mapping type of its own (private anonymous only): read by mm_read_vmflags */
	if (v->vmflags & VMF_DROPPABLE)
		f = MAP_DROPPABLE;

	if (v->kind != VMA_KIND__VMA_FILE)
		f |= MAP_ANONYMOUS;
	if (v->kind == VMA_KIND__VMA_STACK || (v->vmflags & VMF_GROWSDOWN))
		f |= MAP_GROWSDOWN;
	if (v->vmflags & VMF_NORESERVE)
		f |= MAP_NORESERVE;
	return f;
}

/* The madvise flags of @v to set again (not those its kind or MAP_DROPPABLE imply). */
static uint32_t vma_advice(const struct vma *v)
{
	uint32_t f = v->vmflags, a = 0;

	if (v->kind == VMA_KIND__VMA_VDSO)
		return 0;	/* the kernel's own flags */
	if (f & VMF_DROPPABLE)
		f &= ~(VMF_WIPEONFORK | VMF_DONTDUMP);
	if (f & VMF_DONTFORK)
		a |= VMA_ADVICE__VMA_ADVICE_DONTFORK;
	if (f & VMF_WIPEONFORK)
		a |= VMA_ADVICE__VMA_ADVICE_WIPEONFORK;
	if (f & VMF_HUGEPAGE)
		a |= VMA_ADVICE__VMA_ADVICE_HUGEPAGE;
	if (f & VMF_NOHUGEPAGE)
		a |= VMA_ADVICE__VMA_ADVICE_NOHUGEPAGE;
	if (f & VMF_DONTDUMP)
		a |= VMA_ADVICE__VMA_ADVICE_DONTDUMP;
	if (f & VMF_MERGEABLE)
		a |= VMA_ADVICE__VMA_ADVICE_MERGEABLE;
	if (f & VMF_LOCKED)
		a |= VMA_ADVICE__VMA_ADVICE_MLOCK;
	if ((f & VMF_LOCKED) && (f & VMF_LOCKONFAULT))
		a |= VMA_ADVICE__VMA_ADVICE_MLOCK_ONFAULT;
	if (f & VMF_SEQ_READ)
		a |= VMA_ADVICE__VMA_ADVICE_SEQUENTIAL;
	if (f & VMF_RAND_READ)
		a |= VMA_ADVICE__VMA_ADVICE_RANDOM;
	return a;
}

/*
 * Was a shared file mapping's file opened for writing? Then the process may
 * mprotect it writable later, and the restored mapping must allow that too.
 * The mode of its /proc/PID/map_files link says (S_IWUSR: FMODE_WRITE);
 * without it, only a mapping writable now is known to be.
 */
static bool vma_file_may_write(pid_t pid, const struct vma *v)
{
	char path[96];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", pid,
		 (unsigned long long)v->start, (unsigned long long)v->end);
	if (lstat(path, &st))
		return v->prot & PROT_WRITE;
	return st.st_mode & S_IWUSR;
}

/* Huge pages (hugetlbfs, MAP_HUGETLB, MFD_HUGETLB): the file behind it says. */
bool vma_is_hugetlb(pid_t pid, const struct vma *v)
{
	char path[96];
	struct statfs sfs;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", pid,
		 (unsigned long long)v->start, (unsigned long long)v->end);
	return !statfs(path, &sfs) && sfs.f_type == HUGETLBFS_MAGIC;
}

/* What a shared mapping ferry cannot move is, for its refusal. */
static const char *shared_kind(pid_t pid, const struct vma *v)
{
	if (vma_is_hugetlb(pid, v))
		return v->kind == VMA_KIND__VMA_MEMFD ? "hugetlb memfd" : "hugetlb";
	return v->kind == VMA_KIND__VMA_MEMFD ? "memfd" : "shared anonymous";
}

/*
 * Kernel objects that show as mappings of a deleted file, not files ferry
 * can carry: the ring of an AIO context (io_setup), memfd_secret memory
 * (which no other process can read).
 */
static int vma_special_check(pid_t pid, const struct vma *v)
{
	static const struct {
		const char *path, *what;
	} special[] = {
		{ "/[aio]", "an AIO context (io_setup), its ring" },
		{ "/secretmem", "memfd_secret memory" },
	};
	size_t i;

	for (i = 0; v->kind == VMA_KIND__VMA_FILE && i < ARRAY_SIZE(special); i++) {
		if (strncmp(v->path, special[i].path, strlen(special[i].path)))
			continue;
		pr_err("pid %d: has %s at %#llx: ferry cannot move that yet", pid,
		       special[i].what, (unsigned long long)v->start);
		return -EOPNOTSUPP;
	}
	return 0;
}

static bool vma_deleted(const struct vma *v)
{
	size_t n = strlen(v->path);

	return v->kind == VMA_KIND__VMA_FILE && n > 10 && !strcmp(v->path + n - 10, " (deleted)");
}

static void vma_link(pid_t pid, const struct vma *v, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/%d/map_files/%llx-%llx", pid, (unsigned long long)v->start,
		 (unsigned long long)v->end);
}

/*
 * A mapping of a deleted file: no path leads to it at the destination, so
 * the file travels like an unlinked open one (ghost-<id>.img, once per file
 * in the final dump, the same for its fds) and the restore maps the file it
 * makes again. Pre-copy rounds (@files NULL) only say where it is.
 */
static int vma_fill_ghost(pid_t pid, const struct vma *v, VmaEntry *e, struct file_ids *files,
			  struct sink *sink)
{
	char link[96];
	struct stat st;

	vma_link(pid, v, link, sizeof(link));
	if (stat(link, &st))
		return -errno;
	e->path = strndup(v->path, strlen(v->path) - 10);
	if (!e->path)
		return -ENOMEM;
	e->has_pgoff = e->has_open_flags = 1;
	e->pgoff = v->pgoff;
	e->open_flags = v->shared && vma_file_may_write(pid, v) ? O_RDWR : O_RDONLY;
	if (!files)
		return 0;
	e->has_ghost_id = 1;
	return ghost_note(files, pid, -1, link, &st, e->path, sink, &e->ghost_id);
}

/* The executable's path: the restore sets it (PR_SET_MM_MAP) from a file there. */
static int exe_check(pid_t pid, char *exe, size_t len)
{
	ssize_t n = proc_readlink(pid, "exe", exe, len);

	if (n < 0)
		return n;
	if (n > 10 && !strcmp(exe + n - 10, " (deleted)")) {
		pr_err("pid %d: its executable %s was deleted: ferry cannot move that yet", pid,
		       exe);
		return -EOPNOTSUPP;
	}
	return 0;
}

int mm_ghost_check(pid_t pid, struct file_ids *files)
{
	struct vma_list vl = { 0 };
	char link[96], exe[PATH_MAX];
	struct stat st;
	size_t i;
	int ret;

	ret = exe_check(pid, exe, sizeof(exe));
	if (ret)
		return ret;
	ret = proc_read_vmas(pid, &vl);
	for (i = 0; i < vl.nr && !ret; i++) {
		const struct vma *v = &vl.v[i];

		ret = vma_special_check(pid, v);
		if (ret || !vma_deleted(v))
			continue;
		vma_link(pid, v, link, sizeof(link));
		if (stat(link, &st)) {
			ret = -errno;
			break;
		}
		/* the dump counts its data; the size and blocks bound it */
		if ((uint64_t)st.st_size > GHOST_MAX_DATA &&
		    (uint64_t)st.st_blocks * 512 > GHOST_MAX_DATA) {
			pr_err("pid %d: maps the deleted file %s, which holds more than %u MiB of "
			       "data: not supported yet", pid, v->path, GHOST_MAX_DATA >> 20);
			ret = -EOPNOTSUPP;
			break;
		}
		ret = ghost_note(files, pid, -1, link, &st, v->path, NULL, NULL);
	}
	vma_list_free(&vl);
	return ret;
}

static int vma_fill_entry(pid_t pid, const struct vma *v, VmaEntry *e, struct file_ids *files,
			  struct sink *sink)
{
	e->start = v->start;
	e->end = v->end;
	e->prot = v->prot;
	e->flags = vma_mmap_flags(v);
	e->kind = v->kind;
	e->advice = vma_advice(v);
	e->has_advice = !!e->advice;
	if (v->shm_id) {
		e->has_shmid = e->has_pgoff = 1;
		e->shmid = v->shm_id;
		e->pgoff = v->pgoff;
		/* a SysV attachment: read-only (SHM_RDONLY) when its file was not opened to write */
		if (!strncmp(v->path, "/SYSV", 5)) {
			e->has_open_flags = 1;
			e->open_flags = vma_file_may_write(pid, v) ? O_RDWR : O_RDONLY;
		}
		return 0;
	}
	if (v->kind == VMA_KIND__VMA_MEMFD || (v->kind == VMA_KIND__VMA_ANON && v->shared)) {
		pr_err("pid %d: shared memory %s at %#llx (%s) is not supported yet", pid,
		       v->path, (unsigned long long)v->start, shared_kind(pid, v));
		return -EOPNOTSUPP;
	}
	if (v->kind == VMA_KIND__VMA_FILE) {
		struct stat st;

		if (vma_special_check(pid, v))
			return -EOPNOTSUPP;
		if (vma_deleted(v))
			return vma_fill_ghost(pid, v, e, files, sink);
		if (stat(v->path, &st) || st.st_ino != v->ino || st.st_dev != v->dev) {
			pr_err("pid %d: mapped file %s cannot be found by its path", pid, v->path);
			return -EOPNOTSUPP;
		}
		e->path = (char *)v->path;
		e->has_pgoff = e->has_file_size = e->has_file_mtime_ns = e->has_open_flags = 1;
		e->pgoff = v->pgoff;
		e->file_size = st.st_size;
		e->file_mtime_ns = stat_mtime_ns(&st);
		e->open_flags = v->shared && vma_file_may_write(pid, v) ? O_RDWR : O_RDONLY;
	}
	return 0;
}

/*
 * PR_SET_MEMORY_MERGE (KSM for every VMA that can have it, and those mapped
 * later) as /proc/PID/ksm_stat's "ksm_merge_any" says: 1, 0 (also on a
 * kernel without KSM: no such file), or -errno.
 */
static int ksm_merge_any(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/ksm_stat", pid);
	n = read_small_file(path, buf, sizeof(buf));
	if (n == -ENOENT && !access("/proc/self/ksm_stat", F_OK))
		return -ESRCH;	/* the process is gone */
	if (n < 0)
		return n == -ENOENT ? 0 : n;
	p = strstr(buf, "ksm_merge_any: ");
	return p && !strncmp(p + 15, "yes", 3);
}

/* VmLck of /proc/PID/status in kB (the mm's locked_vm), or -errno. */
static long long vm_locked_kb(pid_t pid)
{
	char path[64], buf[4096], *p;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	n = read_small_file(path, buf, sizeof(buf));
	if (n < 0)
		return n == -ENOENT ? -ESRCH : n;
	p = strstr(buf, "\nVmLck:");
	return p ? (long long)strtoull(p + 8, NULL, 10) : 0;
}

/* Is the page at @addr of @pid present (/proc/PID/pagemap bit 63)? 1, 0 or -errno. */
static int page_present(pid_t pid, uint64_t addr)
{
	uint64_t e;
	ssize_t n;

	n = proc_pread(pid, "pagemap", &e, sizeof(e), addr / PAGE_SIZE * sizeof(e));
	if (n != sizeof(e))
		return n < 0 ? n : -EIO;
	return !!(e & (1ULL << 63));
}

/*
 * mlockall(MCL_FUTURE) leaves no trace in /proc but in what mmap does next
 * (the mm's def_flags): one page mapped by an injected mmap is locked (VmLck
 * grows), and populated at once unless MCL_ONFAULT. @mcl gets MCL_FUTURE
 * [| MCL_ONFAULT] or 0.
 */
static int mlockall_probe(pid_t pid, struct parasite_ctl *ctl, uint32_t *mcl)
{
	long long before, after;
	long addr = 0, r = 0;
	int ret, present = 0;

	*mcl = 0;
	before = vm_locked_kb(pid);
	if (before < 0)
		return before;
	ret = parasite_syscall(ctl, __NR_mmap, &addr, 0, PAGE_SIZE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ret)
		return ret;
	if (addr < 0 && addr > -4096) {
		pr_err("pid %d: cannot map a page in it to see if it has mlockall(MCL_FUTURE): %s",
		       pid, strerror(-addr));
		return addr;
	}
	after = vm_locked_kb(pid);
	if (after > before)
		present = page_present(pid, addr);
	ret = parasite_syscall(ctl, __NR_munmap, &r, addr, PAGE_SIZE, 0, 0, 0, 0);
	if (!ret)
		ret = r;
	if (!ret && after < 0)
		ret = after;
	if (!ret && present < 0)
		ret = present;
	if (!ret && after > before)
		*mcl = MCL_FUTURE | (present ? 0 : MCL_ONFAULT);
	return ret;
}

static int read_auxv(pid_t pid, uint64_t **auxv, size_t *nr)
{
	static uint64_t buf[256];
	ssize_t n;

	n = proc_pread(pid, "auxv", buf, sizeof(buf), 0);
	if (n < 0)
		return n;
	*auxv = buf;
	*nr = n / 8;
	return 0;
}

/* The guard regions of @v (MADV_GUARD_INSTALL) as start, end pairs in @e. */
static int vma_guards(int pagemap_fd, const struct vma *v, VmaEntry *e)
{
	struct dirty_set ds = { 0 };
	size_t i;
	int ret;

	ret = dirty_scan_guards(pagemap_fd, v, &ds);
	if (!ret && ds.nr) {
		e->guards = calloc(2 * ds.nr, sizeof(*e->guards));
		if (!e->guards)
			ret = -ENOMEM;
	}
	for (i = 0; !ret && i < ds.nr; i++) {
		e->guards[2 * i] = ds.r[i].start;
		e->guards[2 * i + 1] = ds.r[i].end;
	}
	if (!ret)
		e->n_guards = 2 * ds.nr;
	dirty_set_free(&ds);
	return ret;
}

/*
 * mm-<pid>.img: @mm's fields as given, its VMAs from @vl; in the final dump
 * (@files) the deleted files it maps first in the tree, and the VMAs' guard
 * regions (a walk of the page tables).
 */
static int send_mm(pid_t pid, MmEntry *mm, const struct vma_list *vl, struct file_ids *files,
		   struct sink *sink)
{
	bool guards = files;
	VmaEntry *ents, **ptrs;
	char name[64];
	size_t i;
	int ret = 0, fd = -1;

	ents = calloc(vl->nr + 1, sizeof(*ents));
	ptrs = calloc(vl->nr + 1, sizeof(*ptrs));
	if (!ents || !ptrs) {
		ret = -ENOMEM;
		goto out;
	}
	if (guards) {
		snprintf(name, sizeof(name), "/proc/%d/pagemap", pid);
		fd = open(name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			ret = -errno;
			goto out;
		}
	}
	for (i = 0; i < vl->nr; i++) {
		vma_entry__init(&ents[i]);
		ret = vma_fill_entry(pid, &vl->v[i], &ents[i], files, sink);
		if (!ret && guards && vl->v[i].kind != VMA_KIND__VMA_VDSO)
			ret = vma_guards(fd, &vl->v[i], &ents[i]);
		if (ret)
			goto out;
		ptrs[i] = &ents[i];
	}
	mm->vmas = ptrs;
	mm->n_vmas = vl->nr;
	snprintf(name, sizeof(name), "mm-%d.img", pid);
	ret = sink_add_msg(sink, name, &mm->base);
	mm->vmas = NULL;
	mm->n_vmas = 0;
out:
	if (fd >= 0)
		close(fd);
	for (i = 0; ents && i < vl->nr; i++) {
		if (vma_deleted(&vl->v[i]))
			free(ents[i].path);
		free(ents[i].guards);
	}
	free(ents);
	free(ptrs);
	return ret;
}

int dump_vmas(pid_t pid, const struct vma_list *vl, struct sink *sink)
{
	MmEntry mm = MM_ENTRY__INIT;

	mm.exe = "";
	return send_mm(pid, &mm, vl, NULL, sink);
}

int dump_mm(pid_t pid, struct parasite_ctl *ctl, const struct vma_list *vl,
	    const struct proc_stat *ps, struct file_ids *files, struct sink *sink)
{
	MmEntry mm = MM_ENTRY__INIT;
	char exe[PATH_MAX];
	int ret;

	ret = exe_check(pid, exe, sizeof(exe));
	if (ret)
		return ret;
	mm.exe = exe;
	mm.start_code = ps->start_code;
	mm.end_code = ps->end_code;
	mm.start_data = ps->start_data;
	mm.end_data = ps->end_data;
	mm.start_brk = ps->start_brk;
	mm.start_stack = ps->start_stack;
	mm.arg_start = ps->arg_start;
	mm.arg_end = ps->arg_end;
	mm.env_start = ps->env_start;
	mm.env_end = ps->env_end;
	ret = parasite_get_brk(ctl, &mm.brk);
	if (ret)
		return ret;
	ret = read_auxv(pid, &mm.auxv, &mm.n_auxv);
	if (ret)
		return ret;
	ret = ksm_merge_any(pid);
	if (ret < 0)
		return ret;
	mm.has_ksm_merge_any = mm.ksm_merge_any = ret;
	ret = mlockall_probe(pid, ctl, &mm.mlockall);
	if (ret)
		return ret;
	mm.has_mlockall = !!mm.mlockall;
	return send_mm(pid, &mm, vl, files, sink);
}

/* What of the VMF_* flags ferry cannot carry (mseal) is refused, naming it. */
static int vmflags_refuse(pid_t pid, const struct vma_list *vl)
{
	size_t i;

	for (i = 0; i < vl->nr; i++) {
		const struct vma *v = &vl->v[i];
		const char *what = NULL;

		if ((v->vmflags & VMF_SEALED) && v->kind != VMA_KIND__VMA_VDSO &&
			 strcmp(v->path, "[vsyscall]"))
			what = "a sealed mapping (mseal)";
		if (!what)
			continue;
		pr_err("pid %d: %s at %#llx-%#llx (%s): ferry cannot move that yet", pid, what,
		       (unsigned long long)v->start, (unsigned long long)v->end,
		       *v->path ? v->path : "anonymous");
		return -EOPNOTSUPP;
	}
	return 0;
}

/* Processes the preflight saw with flags ferry carries: their rounds read smaps. */
static struct {
	pid_t *v;
	size_t nr, cap;
} vmflags_pids;

static bool vmflags_seen(pid_t pid)
{
	size_t i;

	for (i = 0; i < vmflags_pids.nr; i++)
		if (vmflags_pids.v[i] == pid)
			return true;
	return false;
}

/*
 * The flags only /proc/PID/smaps shows, for the preflight (the tree runs:
 * its page-table walk costs no downtime): mseal is refused; a process with
 * flags that travel (MADV_DONTFORK, MADV_WIPEONFORK, MADV_[NO]HUGEPAGE,
 * MADV_DONTDUMP, MADV_MERGEABLE, MADV_SEQUENTIAL, MADV_RANDOM, mlock,
 * MAP_DROPPABLE, MAP_NORESERVE, MAP_GROWSDOWN) is noted, so that
 * its rounds read them too.
 */
int mm_vmflags_check(pid_t pid)
{
	struct vma_list vl = { 0 };
	uint32_t any = 0;
	size_t i;
	int ret;

	ret = proc_read_vmas(pid, &vl);
	if (!ret)
		ret = proc_read_vmflags(pid, &vl);
	if (!ret)
		ret = vmflags_refuse(pid, &vl);
	for (i = 0; !ret && i < vl.nr; i++)
		any |= vma_advice(&vl.v[i]) | (vl.v[i].vmflags & (VMF_DROPPABLE | VMF_NORESERVE)) |
		       (vl.v[i].kind != VMA_KIND__VMA_STACK ? vl.v[i].vmflags & VMF_GROWSDOWN : 0);
	if (!ret && any && !vmflags_seen(pid)) {
		if (grow_array(&vmflags_pids.v, &vmflags_pids.cap, vmflags_pids.nr,
			       sizeof(*vmflags_pids.v)))
			ret = -ENOMEM;
		else
			vmflags_pids.v[vmflags_pids.nr++] = pid;
	}
	vma_list_free(&vl);
	return ret;
}

/*
 * During a round (frozen): the VMF_* flags of @vl, where a VMA may have
 * any. smaps walks every page table (tens of ms per GiB, downtime in the
 * final round), so with uffd-wp it is read only for a process the preflight
 * saw with such flags, or when some private anonymous VMA could not be
 * registered (the kernel refuses userfaultfd on MAP_DROPPABLE, so without
 * one there is no droppable VMA), or for one with PR_SET_MEMORY_MERGE on (its
 * VMAs without "mg" must be told from the others) or locked memory (VmLck),
 * however late they came.
 */
int mm_read_vmflags(pid_t pid, const struct dirty_tracker *dt, struct vma_list *vl)
{
	bool need = dt->backend != DIRTY_UFFD_WP || vmflags_seen(pid);
	size_t i;
	int ret;

	for (i = 0; i < dt->untracked.nr && !need; i++)
		need = dt->untracked.v[i].kind == VMA_KIND__VMA_ANON && !dt->untracked.v[i].shared;
	if (!need) {
		long long kb = vm_locked_kb(pid);

		if (kb < 0)
			return kb;
		need = kb;
	}
	if (!need) {
		ret = ksm_merge_any(pid);
		if (ret < 0)
			return ret;
		need = ret;
	}
	if (!need)
		return 0;
	ret = proc_read_vmflags(pid, vl);
	if (!ret)
		ret = vmflags_refuse(pid, vl);
	return ret;
}
