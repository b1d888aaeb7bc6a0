// SPDX-License-Identifier: MIT
/*
 * `restore`: recreate a process from an image stack.
 *
 * Plain: from a final round, everything at once. Streaming (--stream, run
 * by the page server during a migration): the process is created at the
 * first pre-copy round, its anonymous memory filled round by round while
 * the source still runs, and at the final round only what changed since
 * the last round and the rest of the state are left to do: that is what
 * keeps the downtime small. Any trouble while streaming falls back to a
 * plain restore at the final round.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "dest-agent/restore.h"
#include "proto/image.h"

/* Everything the final round says about the process. */
struct final_images {
	PstreeEntry *pe;
	ProcCore *core;
	MmEntry *mm;
	FilesEntry *files;
};

static void final_images_free(struct final_images *fi)
{
	if (fi->pe)
		protobuf_c_message_free_unpacked(&fi->pe->base, NULL);
	if (fi->core)
		protobuf_c_message_free_unpacked(&fi->core->base, NULL);
	if (fi->mm)
		protobuf_c_message_free_unpacked(&fi->mm->base, NULL);
	if (fi->files)
		protobuf_c_message_free_unpacked(&fi->files->base, NULL);
	memset(fi, 0, sizeof(*fi));
}

static int load_pstree(int dirfd, PstreeEntry **root)
{
	struct img_reader r;
	PstreeEntry *extra = NULL;
	size_t len;
	void *data;
	int ret;

	ret = img_load_file(dirfd, "pstree.img", &data, &len);
	if (ret) {
		pr_err("pstree.img: %s (is this a final round?)", strerror(-ret));
		return ret;
	}
	ret = img_reader_init(&r, "pstree.img", data, len);
	if (!ret)
		ret = img_read_msg(&r, &pstree_entry__descriptor, (void **)root);
	if (ret == 1)
		ret = img_read_msg(&r, &pstree_entry__descriptor, (void **)&extra);
	if (ret == 1) {
		pr_err("pstree.img holds a process tree: only one process is restored yet");
		protobuf_c_message_free_unpacked(&extra->base, NULL);
		ret = -EOPNOTSUPP;
	} else if (ret == 0 && !*root) {
		pr_err("pstree.img is empty");
		ret = -EINVAL;
	}
	free(data);
	return ret < 0 ? ret : 0;
}

static int check_inventory(int dirfd, bool want_final)
{
	InventoryEntry *inv;
	int ret;

	ret = img_load_one(dirfd, "inventory.img", &inventory_entry__descriptor, (void **)&inv);
	if (ret)
		return ret;
	if (want_final && !inv->final) {
		pr_err("round %u is a pre-copy round: only a final round can be restored", inv->round);
		ret = -EINVAL;
	} else if (inv->page_size != PAGE_SIZE) {
		pr_err("images of page size %u", inv->page_size);
		ret = -EINVAL;
	}
	protobuf_c_message_free_unpacked(&inv->base, NULL);
	return ret;
}

static int load_mm(int dirfd, uint32_t pid, MmEntry **mm)
{
	char name[64];

	snprintf(name, sizeof(name), "mm-%u.img", pid);
	return img_load_one(dirfd, name, &mm_entry__descriptor, (void **)mm);
}

static int load_final(int dirfd, struct final_images *fi)
{
	char name[64];
	int ret;

	memset(fi, 0, sizeof(*fi));
	ret = check_inventory(dirfd, true);
	if (!ret)
		ret = load_pstree(dirfd, &fi->pe);
	if (ret)
		return ret;
	snprintf(name, sizeof(name), "core-%u.img", fi->pe->pid);
	ret = img_load_one(dirfd, name, &proc_core__descriptor, (void **)&fi->core);
	if (!ret)
		ret = load_mm(dirfd, fi->pe->pid, &fi->mm);
	snprintf(name, sizeof(name), "files-%u.img", fi->pe->pid);
	if (!ret)
		ret = img_load_one(dirfd, name, &files_entry__descriptor, (void **)&fi->files);
	if (!ret && (!fi->core->n_threads || !fi->core->creds ||
		     fi->core->threads[0]->tid != fi->pe->pid)) {
		pr_err("core-%u.img: bad thread list", fi->pe->pid);
		ret = -EINVAL;
	}
	if (!ret)
		ret = rst_check_files(fi->mm, fi->files);
	return ret;
}

/*
 * Bring the anonymous memory in line with round @round_dir: unmap what
 * went, map what came (fresh, zero), then its pages: only what the round
 * sent if the round before it is in, else everything the stack has.
 */
static int sync_memory(struct rst_process *rp, const MmEntry *mm, const char *round_dir,
		       uint32_t round, struct ops *o)
{
	struct ranges want, gone = { 0 }, fresh = { 0 };
	struct stack_view sv = { 0 };
	size_t i;
	int ret;

	ret = prefill_ranges(mm, &want);
	if (ret)
		return ret;
	ret = ranges_sub(&rp->prefilled, &want, &gone);
	if (!ret)
		ret = ranges_sub(&want, &rp->prefilled, &fresh);
	for (i = 0; !ret && i < gone.nr; i++)
		ret = ops_add(o, RST_OP_UNMAP, gone.r[i].start, gone.r[i].end - gone.r[i].start);
	for (i = 0; !ret && i < fresh.nr; i++) {
		ret = ops_add(o, RST_OP_MAP, fresh.r[i].start, fresh.r[i].end - fresh.r[i].start);
		if (!ret) {
			o->op[o->nr - 1].prot = PROT_READ | PROT_WRITE;
			o->op[o->nr - 1].flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
		}
	}
	if (!ret && rp->applied_round && round == rp->applied_round + 1) {
		ret = ops_round_delta(o, round_dir, rp->want_pid, &want);
	} else if (!ret) {
		ret = stack_view_open(round_dir, &sv);
		if (!ret)
			ret = ops_full_fill(o, &sv, rp->want_pid, &want, rp->applied_round != 0);
		if (sv.top_dir)
			stack_view_close(&sv);
	}
	ranges_free(&gone);
	ranges_free(&fresh);
	if (ret) {
		ranges_free(&want);
		return ret;
	}
	ranges_free(&rp->prefilled);
	rp->prefilled = want;
	return 0;
}

/* The final round: what changed, the rest of the layout, then the state. */
static int finish(struct rst_process *rp, const char *round_dir, uint32_t round,
		  const struct final_images *fi, int dirfd)
{
	struct stack_view sv = { 0 };
	struct ops o = { 0 };
	int ret;

	ret = sync_memory(rp, fi->mm, round_dir, round, &o);
	if (!ret)
		ret = stack_view_open(round_dir, &sv);
	if (!ret)
		ret = ops_final_layout(&o, &sv, fi->pe->pid, fi->mm);
	if (!ret)
		ret = rp_memory(rp, &o);
	if (!ret)
		ret = rp_final(rp, fi->core, fi->mm, fi->files, dirfd);
	if (sv.top_dir)
		stack_view_close(&sv);
	ops_free(&o);
	return ret;
}

static uint32_t round_number(const char *round_dir)
{
	const char *base = strrchr(round_dir, '/');
	char *end;
	unsigned long n;

	base = base && base[1] ? base + 1 : round_dir;
	n = strtoul(base, &end, 10);
	return *end ? 0 : n;
}

static int restore_final(struct rst_process *rp, const char *round_dir, bool pidns)
{
	struct final_images fi;
	uint64_t t0 = now_us();
	int dirfd, ret;

	dirfd = open(round_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		pr_perror("cannot open %s", round_dir);
		return -errno;
	}
	ret = load_final(dirfd, &fi);
	if (!ret && rp->pid && rp->want_pid != (pid_t)fi.pe->pid) {
		pr_warn("the final round is of pid %u, not %d: starting over", fi.pe->pid, rp->want_pid);
		rp_kill(rp);
	}
	if (!ret && rp->pid && rp_region_collides(rp, fi.mm)) {
		pr_info("the restorer sits where the process now has memory: starting over");
		rp_kill(rp);
	}
	if (!ret && !rp->pid)
		ret = rp_create(rp, fi.pe->pid, fi.mm, pidns);
	if (!ret)
		ret = finish(rp, round_dir, round_number(round_dir), &fi, dirfd);
	if (!ret)
		printf("restored pid %u in %.1f ms\n", fi.pe->pid, (now_us() - t0) / 1e3);
	fflush(stdout);
	if (ret)
		rp_kill(rp);
	final_images_free(&fi);
	close(dirfd);
	return ret;
}

int restore_run(const struct restore_opts *o)
{
	struct rst_process rp = { .sock = -1, .init_sync = -1 };
	int ret;

	ret = rst_probe_xstate();
	if (!ret)
		ret = restore_final(&rp, o->images_dir, o->pidns);
	rp_kill(&rp);	/* only our ends: a restored process is detached already */
	return ret;
}

/* ---- streaming ---- */

/* The pid of a pre-copy round (single-process images: the one mm-<pid>.img). */
static int round_pid(const char *round_dir, uint32_t *pid)
{
	char name[64];
	int dirfd, ret = -ENOENT;
	InventoryEntry *inv;

	dirfd = open(round_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	if (!img_load_one(dirfd, "inventory.img", &inventory_entry__descriptor, (void **)&inv)) {
		*pid = inv->root_pid;
		protobuf_c_message_free_unpacked(&inv->base, NULL);
		snprintf(name, sizeof(name), "mm-%u.img", *pid);
		ret = faccessat(dirfd, name, F_OK, 0) ? -ENOENT : 0;
	}
	close(dirfd);
	return ret;
}

/* One pre-copy round: fill what it brought. */
static int stream_round(struct rst_process *rp, const char *round_dir, uint32_t round, bool pidns)
{
	struct ops o = { 0 };
	MmEntry *mm = NULL;
	uint32_t pid = 0;
	int dirfd, ret;

	ret = round_pid(round_dir, &pid);
	if (ret)
		return ret;
	dirfd = open(round_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	ret = load_mm(dirfd, pid, &mm);
	close(dirfd);
	if (!ret && rp->pid && rp_region_collides(rp, mm)) {
		pr_info("round %u: the restorer sits where the process now has memory", round);
		ret = -EADDRINUSE;
	}
	if (!ret && !rp->pid)
		ret = rp_create(rp, pid, mm, pidns);
	if (!ret)
		ret = sync_memory(rp, mm, round_dir, round, &o);
	if (!ret)
		ret = rp_memory(rp, &o);
	if (!ret)
		rp->applied_round = round;
	ops_free(&o);
	if (mm)
		protobuf_c_message_free_unpacked(&mm->base, NULL);
	return ret;
}

/*
 * Commands on stdin, one per line: "round K" after the page server
 * committed pre-copy round K, "final N" for the final round (then we exit
 * with the verdict), "abort" (or EOF): the prepared process is killed.
 */
int restore_stream(const struct restore_opts *o)
{
	struct rst_process rp = { .sock = -1, .init_sync = -1 };
	char line[128], dir[PATH_MAX];
	unsigned int k;
	bool broken = false;
	int ret;

	ret = rst_probe_xstate();
	if (ret)
		return ret;
	while (fgets(line, sizeof(line), stdin)) {
		uint64_t t0 = now_us();

		if (sscanf(line, "round %u", &k) == 1) {
			snprintf(dir, sizeof(dir), "%s/%u", o->stack_dir, k);
			if (broken)
				continue;
			ret = stream_round(&rp, dir, k, o->pidns);
			if (ret) {
				pr_warn("round %u could not be prefilled (%s): the final round will "
					"restore everything", k, strerror(-ret));
				rp_kill(&rp);
				broken = true;
			} else {
				pr_info("round %u prefilled in %.1f ms", k, (now_us() - t0) / 1e3);
			}
		} else if (sscanf(line, "final %u", &k) == 1) {
			snprintf(dir, sizeof(dir), "%s/%u", o->stack_dir, k);
			ret = restore_final(&rp, dir, o->pidns);
			rp_kill(&rp);
			return ret;
		} else if (!strncmp(line, "abort", 5)) {
			break;
		} else {
			pr_err("unknown command: %s", line);
		}
	}
	pr_info("migration abandoned: the prepared process is dropped");
	rp_kill(&rp);
	return -ECANCELED;
}
