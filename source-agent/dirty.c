// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/log.h"
#include "common/util.h"
#include "source-agent/dirty.h"
#include "source-agent/parasite.h"

#define SCAN_VEC_LEN 4096

const char *dirty_backend_name(enum dirty_backend b)
{
	switch (b) {
	case DIRTY_UFFD_WP:
		return "uffd-wp-async+pagemap-scan";
	case DIRTY_SOFT_DIRTY:
		return "soft-dirty";
	default:
		return "none (full resend)";
	}
}

static int pagemap_scan(int fd, struct pm_scan_arg *arg)
{
	long n = ioctl(fd, PAGEMAP_SCAN, arg);

	return n < 0 ? -errno : (int)n;
}

uint64_t pagemap_guard_bit(void)
{
	static int known = -1;
	struct page_region r;
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = (uint64_t)(uintptr_t)&r & ~(PAGE_SIZE - 1),
		.vec = (uint64_t)(uintptr_t)&r,
		.vec_len = 1,
		.return_mask = PAGE_IS_GUARD,
	};
	int fd;

	if (known >= 0)
		return known ? PAGE_IS_GUARD : 0;
	arg.end = arg.start + PAGE_SIZE;
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	known = ioctl(fd, PAGEMAP_SCAN, &arg) >= 0;	/* EINVAL: an unknown category */
	close(fd);
	return known ? PAGE_IS_GUARD : 0;
}

int dirty_probe(bool *uffd_wp_async, bool *has_scan, bool *soft_dirty)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct page_region vec[1];
	struct pm_scan_arg arg = { .size = sizeof(arg) };
	uint64_t bit55 = 0;
	char *page;
	int fd, uffd;

	*uffd_wp_async = *has_scan = *soft_dirty = false;
	page = malloc(PAGE_SIZE);
	if (!page)
		return -ENOMEM;
	page[0] = 1;
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		arg.start = (uint64_t)page & ~(PAGE_SIZE - 1);
		arg.end = arg.start + PAGE_SIZE;
		arg.vec = (uint64_t)vec;
		arg.vec_len = 1;
		arg.category_anyof_mask = PAGE_IS_PRESENT;
		arg.return_mask = PAGE_IS_PRESENT;
		*has_scan = pagemap_scan(fd, &arg) >= 0;
		if (pread(fd, &bit55, 8, arg.start / PAGE_SIZE * 8) == 8)
			*soft_dirty = (bit55 >> 55) & 1;	/* new pages start soft-dirty */
		close(fd);
	}
	free(page);
	uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd >= 0) {
		api.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
		*uffd_wp_async = !ioctl(uffd, UFFDIO_API, &api);
		close(uffd);
	}
	return 0;
}

int dirty_open(struct dirty_tracker *dt, pid_t pid, struct parasite_ctl *ctl,
	       enum dirty_backend want)
{
	char path[64];
	uint64_t got = 0;
	int ret;

	memset(dt, 0, sizeof(*dt));
	dt->pid = pid;
	dt->uffd = -1;
	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	dt->pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (dt->pagemap_fd < 0)
		return -errno;
	dt->backend = want;
	if (want == DIRTY_SOFT_DIRTY) {
		bool wp, scan, sd;

		/* without the bits every later scan would find nothing written */
		ret = dirty_probe(&wp, &scan, &sd);
		if (ret) {
			close(dt->pagemap_fd);
			dt->pagemap_fd = -1;
			return ret;
		}
		if (!sd) {
			pr_warn("this kernel keeps no soft-dirty bits: falling back to full resends");
			dt->backend = DIRTY_NONE;
		}
	}
	if (want == DIRTY_UFFD_WP) {
		uint64_t need = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;

		ret = parasite_create_uffd(ctl, need, &got, &dt->uffd);
		if (ret || (got & need) != need) {
			pr_warn("userfaultfd write-protect async unavailable (%s): falling back to full resends",
				ret ? strerror(-ret) : "features missing");
			if (dt->uffd >= 0)
				close(dt->uffd);
			dt->uffd = -1;
			dt->backend = DIRTY_NONE;
		}
	}
	pr_info("dirty tracking: %s", dirty_backend_name(dt->backend));
	return 0;
}

int dirty_set_add(struct dirty_set *ds, uint64_t start, uint64_t end, bool zero)
{
	struct dirty_range *last = ds->nr ? &ds->r[ds->nr - 1] : NULL;

	if (zero)
		ds->pages_zero += (end - start) / PAGE_SIZE;
	else
		ds->pages_data += (end - start) / PAGE_SIZE;
	if (last && last->end == start && last->zero == zero) {
		last->end = end;
		return 0;
	}
	if (grow_array(&ds->r, &ds->cap, ds->nr, sizeof(*ds->r)))
		return -ENOMEM;
	ds->r[ds->nr++] = (struct dirty_range){ start, end, zero };
	return 0;
}

void dirty_set_free(struct dirty_set *ds)
{
	free(ds->r);
	memset(ds, 0, sizeof(*ds));
}

/* Decide what a scanned region means for the image: data, zero, or nothing. */
static int ds_add_region(struct dirty_set *ds, const struct vma *v, const struct page_region *pr)
{
	uint64_t c = pr->categories;

	bool data = (c & (PAGE_IS_PRESENT | PAGE_IS_SWAPPED)) && !(c & PAGE_IS_PFNZERO);

	/*
	 * A guard region (a marker, "swapped" and written to the scan) has no
	 * page to read: the final dump names it, the restore installs it again.
	 */
	if (c & PAGE_IS_GUARD)
		return 0;

	/*
	 * A private file mapping's own pages are the file's: only its
	 * anonymous (copied-on-write) pages are ours to send. A page not in
	 * memory there is the file's too, not a zero page.
	 */
	if (vma_private_file(v))
		return data && !(c & PAGE_IS_FILE) ? dirty_set_add(ds, pr->start, pr->end, false) : 0;
	/* Shared memory: a page absent here may be in memory through another mapping. */
	if (v->shared)
		return data ? dirty_set_add(ds, pr->start, pr->end, false) : 0;
	return dirty_set_add(ds, pr->start, pr->end, !data);
}

/* Where a dirty set stands, to take back what a failed scan added. */
struct ds_mark {
	size_t nr;
	uint64_t pages_data, pages_zero, last_end;
};

static struct ds_mark ds_mark(const struct dirty_set *ds)
{
	return (struct ds_mark){ ds->nr, ds->pages_data, ds->pages_zero,
				 ds->nr ? ds->r[ds->nr - 1].end : 0 };
}

static void ds_rewind(struct dirty_set *ds, const struct ds_mark *m)
{
	ds->nr = m->nr;
	ds->pages_data = m->pages_data;
	ds->pages_zero = m->pages_zero;
	if (ds->nr)
		ds->r[ds->nr - 1].end = m->last_end;
}

static bool range_known(const struct vma_list *known, const struct vma *v)
{
	size_t i;

	for (i = 0; i < known->nr; i++)
		if (known->v[i].start == v->start && known->v[i].end == v->end)
			return true;
	return false;
}

static int uffd_register(struct dirty_tracker *dt, const struct vma *v)
{
	struct uffdio_register reg = {
		.range = { .start = v->start, .len = v->end - v->start },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	if (ioctl(dt->uffd, UFFDIO_REGISTER, &reg))
		return -errno;
	return 0;
}

/*
 * Where the next PAGEMAP_SCAN call of a walk starts, after one that returned
 * @n regions into @vec; @end if the walk is over. Only a full vector ends a
 * walk early (no max_pages), and then walk_end says where. walk_end is not
 * to be trusted otherwise: the kernel walks in batches of 512 regions and
 * leaves walk_end where the last batch that filled stopped, even when later
 * batches went on to the end (seen on 6.18). Going on from there would scan
 * that tail again, and a scan that reports unprotected present pages (a
 * fresh VMA, soft-dirty, none) would report its pages twice. Nor is it
 * before the last region reported: that much is done for sure.
 */
static uint64_t scan_next(const struct pm_scan_arg *arg, const struct page_region *vec, int n,
			  uint64_t end)
{
	uint64_t next = arg->walk_end;

	if (n < (int)arg->vec_len)
		return end;
	if (n && vec[n - 1].end > next)
		next = vec[n - 1].end;
	return next < end ? next : end;
}

/*
 * Run a PAGEMAP_SCAN over [arg->start, arg->end) to the end (a full vector
 * ends a call early: go on where scan_next says) and add what it
 * finds: through ds_add_region for the VMA @v, or as zero runs without one.
 */
static int scan_walk(int fd, struct pm_scan_arg *arg, struct page_region *vec,
		     struct dirty_set *ds, const struct vma *v)
{
	uint64_t end = arg->end;
	int n, i, ret;

	do {
		n = pagemap_scan(fd, arg);
		if (n < 0)
			return n;
		for (i = 0; i < n; i++) {
			ret = v ? ds_add_region(ds, v, &vec[i])
				: dirty_set_add(ds, vec[i].start, vec[i].end, true);
			if (ret)
				return ret;
		}
		arg->start = scan_next(arg, vec, n, end);
	} while (arg->start < end);
	return 0;
}

/*
 * Scan one VMA. With uffd-wp, pages not write-protected are "written":
 * after registering, every page of a new VMA is, so a new or grown VMA is
 * sent whole by the same call that arms it.
 */
static int scan_vma(struct dirty_tracker *dt, const struct vma *v, bool fresh, bool untracked,
		    struct page_region *vec, struct dirty_set *ds)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = v->start,
		.end = v->end,
		.vec = (uint64_t)vec,
		.vec_len = SCAN_VEC_LEN,
		.return_mask = PAGE_IS_WRITTEN | PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_FILE |
			       PAGE_IS_PFNZERO | pagemap_guard_bit(),
	};
	int ret;

	switch (untracked ? DIRTY_NONE : dt->backend) {
	case DIRTY_UFFD_WP:
		arg.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;
		if (fresh)	/* also what a moved VMA holds, whatever its pte bits say */
			arg.category_anyof_mask = PAGE_IS_WRITTEN | PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
		else
			arg.category_mask = PAGE_IS_WRITTEN;
		break;
	case DIRTY_SOFT_DIRTY:
		if (fresh)
			arg.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
		else
			arg.category_mask = PAGE_IS_SOFT_DIRTY;
		break;
	default:
		arg.category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
		break;
	}
	ret = scan_walk(dt->pagemap_fd, &arg, vec, ds, v);
	if (!ret)
		dt->scan_pages += (v->end - v->start) / PAGE_SIZE;
	return ret;
}

/*
 * Anonymous pages that are not in memory (any more) are zero. With uffd-wp
 * a page the target dropped (MADV_DONTNEED) has lost its write-protection
 * and is reported written, so it goes as zero by itself; soft-dirty and the
 * full-resend fallback do not see it, and its old data would stay in the
 * image: for them, say zero for every hole. Private file mappings are left
 * out: a dropped page there is the file's again, which an image cannot say.
 */
static int scan_holes(struct dirty_tracker *dt, const struct vma *v, struct page_region *vec,
		      struct dirty_set *ds)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = v->start,
		.end = v->end,
		.vec = (uint64_t)vec,
		.vec_len = SCAN_VEC_LEN,
		.category_inverted = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		.category_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
		.return_mask = PAGE_IS_PRESENT,
	};

	return scan_walk(dt->pagemap_fd, &arg, vec, ds, NULL);
}

int dirty_scan_guards(int pagemap_fd, const struct vma *v, struct dirty_set *ds)
{
	struct pm_scan_arg arg = {
		.size = sizeof(arg),
		.start = v->start,
		.end = v->end,
		.vec_len = SCAN_VEC_LEN,
		.category_mask = PAGE_IS_GUARD,
		.return_mask = PAGE_IS_GUARD,
	};
	struct page_region *vec;
	int ret;

	if (!pagemap_guard_bit())
		return 0;
	vec = malloc(SCAN_VEC_LEN * sizeof(*vec));
	if (!vec)
		return -ENOMEM;
	arg.vec = (uint64_t)(uintptr_t)vec;
	ret = scan_walk(pagemap_fd, &arg, vec, ds, NULL);
	free(vec);
	return ret;
}

int dirty_scan_holes(struct dirty_tracker *dt, const struct vma_list *vl, struct dirty_set *ds)
{
	struct page_region *vec;
	size_t i;
	int ret = 0;

	if (dt->backend == DIRTY_UFFD_WP && !dt->untracked.nr)
		return 0;
	vec = malloc(SCAN_VEC_LEN * sizeof(*vec));
	if (!vec)
		return -ENOMEM;
	for (i = 0; i < vl->nr && !ret; i++) {
		const struct vma *v = &vl->v[i];

		/* uffd-wp reports dropped pages itself, where it could register */
		if (dt->backend == DIRTY_UFFD_WP && !range_known(&dt->untracked, v))
			continue;
		if (vma_has_dumpable_pages(v) && !vma_private_file(v) && !v->shared)
			ret = scan_holes(dt, v, vec, ds);
	}
	free(vec);
	return ret;
}

static int clear_soft_dirty(pid_t pid)
{
	char path[64];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/clear_refs", pid);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, "4", 1) != 1)
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * Register a new VMA for uffd-wp. What cannot be registered (MAP_DROPPABLE,
 * a VMA another userfaultfd owns, special mappings) is sent whole every
 * round instead: true if @v is such a VMA.
 */
static bool track_vma(struct dirty_tracker *dt, const struct vma *v)
{
	int ret = uffd_register(dt, v);

	if (!ret)
		return true;
	pr_info("pid %d: cannot track %#llx-%#llx (%s): %s: sending it whole every round", dt->pid,
		(unsigned long long)v->start, (unsigned long long)v->end,
		*v->path ? v->path : "anonymous", strerror(-ret));
	return false;
}

int dirty_scan(struct dirty_tracker *dt, const struct vma_list *vl, struct dirty_set *ds)
{
	struct page_region *vec;
	struct vma_list known = { 0 }, untracked = { 0 };
	struct ds_mark m;
	size_t i;
	int ret = 0;

	memset(ds, 0, sizeof(*ds));
	dt->scan_pages = 0;
	vec = malloc(SCAN_VEC_LEN * sizeof(*vec));
	known.v = malloc((vl->nr + 1) * sizeof(*known.v));
	untracked.v = malloc((vl->nr + 1) * sizeof(*untracked.v));
	if (!vec || !known.v || !untracked.v) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < vl->nr && !ret; i++) {
		const struct vma *v = &vl->v[i];
		bool fresh = !dt->armed || !range_known(&dt->known, v);
		bool untrack = false;

		if (!vma_has_dumpable_pages(v))
			continue;
		/* Register only what we scan: a WP scan that reaches an unregistered VMA fails late. */
		if (dt->backend == DIRTY_UFFD_WP)
			untrack = fresh ? !track_vma(dt, v) : range_known(&dt->untracked, v);
		if (untrack)
			untracked.v[untracked.nr++] = *v;
		m = ds_mark(ds);
		ret = scan_vma(dt, v, fresh, untrack, vec, ds);
		/*
		 * EPERM from a write-protect scan of a range seen before: it was
		 * unmapped and mapped again at the same place since (an allocator
		 * does that), and the new VMA is not registered. All of it is new:
		 * register it and send it whole, as a fresh VMA.
		 */
		if (ret == -EPERM && !fresh && !untrack && dt->backend == DIRTY_UFFD_WP) {
			pr_info("pid %d: %#llx-%#llx was mapped again: sending it whole", dt->pid,
				(unsigned long long)v->start, (unsigned long long)v->end);
			ds_rewind(ds, &m);
			untrack = !track_vma(dt, v);
			if (untrack)
				untracked.v[untracked.nr++] = *v;
			ret = scan_vma(dt, v, true, untrack, vec, ds);
		}
		if (ret)
			pr_err("PAGEMAP_SCAN of %#llx-%#llx failed: %s", (unsigned long long)v->start,
			       (unsigned long long)v->end, strerror(-ret));
		known.v[known.nr++] = *v;
	}
	if (!ret && dt->backend == DIRTY_SOFT_DIRTY)
		ret = clear_soft_dirty(dt->pid);
out:
	free(vec);
	if (ret) {
		free(known.v);
		free(untracked.v);
		dirty_set_free(ds);
		return ret;
	}
	vma_list_free(&dt->known);
	vma_list_free(&dt->untracked);
	dt->known = known;
	dt->untracked = untracked;
	dt->armed = true;
	return 0;
}

void dirty_close(struct dirty_tracker *dt)
{
	if (dt->uffd >= 0)
		close(dt->uffd);
	if (dt->pagemap_fd >= 0)
		close(dt->pagemap_fd);
	vma_list_free(&dt->known);
	vma_list_free(&dt->untracked);
	dt->uffd = dt->pagemap_fd = -1;
}
