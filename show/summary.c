// SPDX-License-Identifier: MIT
/*
 * `ferry-show summary`: a stack at a glance. Per round what its pagemaps
 * say it holds and what its pages files cost on disk, with the source's
 * figures from stats.img; per process what the top resolves to; the top
 * round's memory map.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "proto/image.h"
#include "show/pbjson.h"
#include "show/show.h"

struct round_sum {
	uint32_t nr_pids;		/* pagemaps in the round (shared memory objects too) */
	uint64_t pages_written;		/* PE_PRESENT pages of its pagemaps */
	uint64_t file_bytes;		/* size of its pages files: before dedup */
	uint64_t alloc_bytes;		/* blocks they hold now: after dedup */
	InventoryEntry *inv;		/* NULL: none */
	RoundStatsEntry *st;		/* stats.img, NULL: none (older stacks) */
};

static bool number_file(const char *name, const char *prefix, uint32_t *n)
{
	size_t l = strlen(prefix);
	char *end;
	unsigned long v;

	if (strncmp(name, prefix, l) || name[l] < '0' || name[l] > '9')
		return false;
	v = strtoul(name + l, &end, 10);
	if (strcmp(end, ".img") || v > UINT32_MAX)
		return false;
	*n = v;
	return true;
}

static int round_scan(int dirfd, struct round_sum *rs)
{
	struct dirent *de;
	struct pagemap pm;
	struct stat st;
	uint32_t pid;
	size_t i;
	DIR *d;
	int ret = 0;

	if (!faccessat(dirfd, "inventory.img", F_OK, 0))
		img_load_one(dirfd, "inventory.img", &inventory_entry__descriptor, (void **)&rs->inv);
	if (!faccessat(dirfd, "stats.img", F_OK, 0))
		img_load_one(dirfd, "stats.img", &round_stats_entry__descriptor, (void **)&rs->st);
	d = opendirat(dirfd, ".", 0);
	if (!d)
		return -errno;
	while (!ret && (de = readdir(d))) {
		if (number_file(de->d_name, "pagemap-", &pid)) {
			ret = pagemap_load(dirfd, pid, &pm);
			for (i = 0; !ret && i < pm.nr; i++)
				if (pm.ext[i].flags == PE_FLAGS__PE_PRESENT)
					rs->pages_written += pm.ext[i].nr_pages;
			if (!ret)
				rs->nr_pids++;
			pagemap_free(&pm);
		} else if (number_file(de->d_name, "pages-", &pid) &&
			   !fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW)) {
			rs->file_bytes += st.st_size;
			rs->alloc_bytes += st.st_blocks * 512ULL;
		}
	}
	closedir(d);
	return ret;
}

static void round_sum_free(struct round_sum *rs, size_t nr)
{
	size_t i;

	for (i = 0; rs && i < nr; i++) {
		if (rs[i].inv)
			protobuf_c_message_free_unpacked(&rs[i].inv->base, NULL);
		if (rs[i].st)
			protobuf_c_message_free_unpacked(&rs[i].st->base, NULL);
	}
	free(rs);
}

/* Pages of @idx inside [start, end): with data, and zero. */
/* Pages of [start, end): stored data, zero, and REMOTE (post-copy: never stored). */
static void count_range(const struct pg_index *idx, uint64_t start, uint64_t end,
			uint64_t *data, uint64_t *zero, uint64_t *remote)
{
	size_t i;

	*data = *zero = *remote = 0;
	for (i = 0; idx && i < idx->nr; i++) {
		const struct pg_extent *e = &idx->ext[i];
		uint64_t s = e->vaddr > start ? e->vaddr : start;
		uint64_t t = pg_ext_end(e) < end ? pg_ext_end(e) : end;

		if (s >= t)
			continue;
		if (e->round == PG_ROUND_REMOTE)
			*remote += (t - s) / PAGE_SIZE;
		else if (e->round)
			*data += (t - s) / PAGE_SIZE;
		else
			*zero += (t - s) / PAGE_SIZE;
	}
}

static const char *vma_kind_name(uint32_t k)
{
	static const char *const names[] = { "?", "anon", "file", "heap", "stack", "vdso", "memfd" };

	return k < ARRAY_SIZE(names) ? names[k] : "?";
}

/* JSON and text side by side: one call per value keeps both in step. */
struct out {
	bool json;
	struct jbuf b;
};

static void mib(struct jbuf *b, uint64_t bytes)
{
	jbuf_printf(b, "%9.1f", bytes / 1048576.0);
}

static void print_rounds(struct out *o, const struct stack_view *v, const struct round_sum *rs)
{
	uint32_t r;

	if (!o->json)
		jbuf_puts(&o->b, "round final pids   written    zero*  pages MiB  alloc MiB"
			  "  scanned*   dirty*  frozen ms*  send ms*\n");
	else
		jbuf_puts(&o->b, "  \"per_round\": [");
	for (r = 1; r <= v->top_round; r++) {
		const struct round_sum *s = &rs[r];
		const RoundStatsEntry *st = s->st;
		bool fin = s->inv && s->inv->final;

		if (o->json) {
			jbuf_printf(&o->b, "%s\n    {\"round\": %u, \"final\": %s, \"pids\": %u, "
				    "\"pages_written\": %llu, \"pages_bytes\": %llu, "
				    "\"allocated_bytes\": %llu", r > 1 ? "," : "", r,
				    fin ? "true" : "false", s->nr_pids,
				    (unsigned long long)s->pages_written,
				    (unsigned long long)s->file_bytes,
				    (unsigned long long)s->alloc_bytes);
			if (st)
				jbuf_printf(&o->b, ", \"pages_scanned\": %llu, \"pages_dirty\": %llu, "
					    "\"pages_sent\": %llu, \"pages_zero\": %llu, "
					    "\"wire_bytes\": %llu, \"scan_us\": %llu, "
					    "\"frozen_us\": %llu, \"send_us\": %llu",
					    (unsigned long long)st->pages_scanned,
					    (unsigned long long)st->pages_dirty,
					    (unsigned long long)st->pages_sent,
					    (unsigned long long)st->pages_zero,
					    (unsigned long long)st->wire_bytes,
					    (unsigned long long)st->scan_us,
					    (unsigned long long)st->frozen_us,
					    (unsigned long long)st->send_us);
			jbuf_puts(&o->b, "}");
			continue;
		}
		jbuf_printf(&o->b, "%5u %5s %4u %9llu ", r, fin ? "yes" : "no", s->nr_pids,
			    (unsigned long long)s->pages_written);
		if (st)
			jbuf_printf(&o->b, "%8llu", (unsigned long long)st->pages_zero);
		else
			jbuf_printf(&o->b, "%8s", "-");
		jbuf_puts(&o->b, "  ");
		mib(&o->b, s->file_bytes);
		jbuf_puts(&o->b, "  ");
		mib(&o->b, s->alloc_bytes);
		if (st)
			jbuf_printf(&o->b, "  %8llu %8llu  %10.2f  %8.2f\n",
				    (unsigned long long)st->pages_scanned,
				    (unsigned long long)st->pages_dirty, st->frozen_us / 1e3,
				    st->send_us / 1e3);
		else
			jbuf_printf(&o->b, "  %8s %8s  %10s  %8s\n", "-", "-", "-", "-");
	}
	if (o->json)
		jbuf_puts(&o->b, "\n  ],\n");
	else
		jbuf_puts(&o->b, "(* as the source measured it, stats.img; - : not recorded)\n");
}

static void print_space(struct out *o, const struct stack_view *v, const struct round_sum *rs)
{
	uint64_t file = 0, alloc = 0, used = 0, d, z, rm;
	uint32_t r;
	size_t i;

	for (r = 1; r <= v->top_round; r++) {
		file += rs[r].file_bytes;
		alloc += rs[r].alloc_bytes;
	}
	for (i = 0; i < v->nr_pids; i++) {
		count_range(&v->idx[i], 0, UINT64_MAX, &d, &z, &rm);
		used += d * PAGE_SIZE;
	}
	if (o->json) {
		jbuf_printf(&o->b, "  \"space\": {\"pages_bytes\": %llu, \"allocated_bytes\": %llu, "
			    "\"top_reads_bytes\": %llu},\n", (unsigned long long)file,
			    (unsigned long long)alloc, (unsigned long long)used);
		return;
	}
	jbuf_printf(&o->b, "space: pages files %.1f MiB (before dedup), %.1f MiB allocated now, "
		    "%.1f MiB read by a restore from the top (after a full dedup)\n",
		    file / 1048576.0, alloc / 1048576.0, used / 1048576.0);
}

/* One process (or shared memory object) of the top: what it resolves to, and its VMAs. */
static void print_proc(struct out *o, const struct stack_view *v, const PstreeEntry *pe,
		       const struct pg_index *idx, bool first)
{
	int dirfd = v->round_dirfd[v->top_round];
	uint64_t data, zero, remote;
	MmEntry *mm = NULL;
	ProcCore *core = NULL;
	char name[64];
	size_t i;

	count_range(idx, 0, UINT64_MAX, &data, &zero, &remote);
	snprintf(name, sizeof(name), "mm-%u.img", idx->pid);
	if (!faccessat(dirfd, name, F_OK, 0))
		img_load_one(dirfd, name, &mm_entry__descriptor, (void **)&mm);
	snprintf(name, sizeof(name), "core-%u.img", idx->pid);
	if (!faccessat(dirfd, name, F_OK, 0))
		img_load_one(dirfd, name, &proc_core__descriptor, (void **)&core);
	if (o->json) {
		jbuf_printf(&o->b, "%s\n    {\"pid\": %u, \"shmem\": %s, \"pages_data\": %llu, "
			    "\"pages_zero\": %llu, \"pages_remote\": %llu", first ? "" : ",", idx->pid,
			    idx->pid >= SHM_PID_BASE ? "true" : "false",
			    (unsigned long long)data, (unsigned long long)zero,
			    (unsigned long long)remote);
		if (pe)
			jbuf_printf(&o->b, ", \"ppid\": %u, \"threads\": %zu", pe->ppid, pe->n_threads);
		if (core) {
			jbuf_puts(&o->b, ", \"comm\": ");
			jbuf_str(&o->b, core->comm, strlen(core->comm));
		}
		jbuf_puts(&o->b, ", \"vmas\": [");
	} else if (idx->pid >= SHM_PID_BASE) {
		jbuf_printf(&o->b, "shared memory object %u: %llu pages with data, %llu zero\n",
			    idx->pid - SHM_PID_BASE, (unsigned long long)data,
			    (unsigned long long)zero);
	} else {
		jbuf_printf(&o->b, "pid %u", idx->pid);
		if (pe)
			jbuf_printf(&o->b, " (ppid %u, %zu threads)", pe->ppid, pe->n_threads);
		if (core)
			jbuf_printf(&o->b, " %s", core->comm);
		jbuf_printf(&o->b, ": %llu pages with data, %llu zero", (unsigned long long)data,
			    (unsigned long long)zero);
		if (remote)
			jbuf_printf(&o->b, ", %llu REMOTE (post-copy: left at the source, never "
				    "stored)", (unsigned long long)remote);
		jbuf_puts(&o->b, "\n");
	}
	for (i = 0; mm && i < mm->n_vmas; i++) {
		const VmaEntry *e = mm->vmas[i];
		char prot[5];

		count_range(idx, e->start, e->end, &data, &zero, &remote);
		snprintf(prot, sizeof(prot), "%c%c%c%c", e->prot & 1 ? 'r' : '-',
			 e->prot & 2 ? 'w' : '-', e->prot & 4 ? 'x' : '-',
			 e->flags & 1 ? 's' : 'p');
		if (o->json) {
			jbuf_printf(&o->b, "%s\n      {\"start\": %llu, \"end\": %llu, \"prot\": \"%s\", "
				    "\"kind\": \"%s\", \"pages_data\": %llu, \"pages_zero\": %llu, "
				    "\"pages_remote\": %llu", i ? "," : "", (unsigned long long)e->start,
				    (unsigned long long)e->end, prot, vma_kind_name(e->kind),
				    (unsigned long long)data, (unsigned long long)zero,
				    (unsigned long long)remote);
			if (e->path) {
				jbuf_puts(&o->b, ", \"path\": ");
				jbuf_str(&o->b, e->path, strlen(e->path));
			}
			jbuf_puts(&o->b, "}");
			continue;
		}
		jbuf_printf(&o->b, "  %012llx-%012llx %s %-5s %8llu data %8llu zero  %s",
			    (unsigned long long)e->start, (unsigned long long)e->end, prot,
			    vma_kind_name(e->kind), (unsigned long long)data,
			    (unsigned long long)zero, e->path ? e->path : "");
		if (remote)
			jbuf_printf(&o->b, " (%llu REMOTE)", (unsigned long long)remote);
		jbuf_puts(&o->b, "\n");
	}
	if (o->json)
		jbuf_puts(&o->b, mm && mm->n_vmas ? "\n    ]}" : "]}");
	if (mm)
		protobuf_c_message_free_unpacked(&mm->base, NULL);
	if (core)
		protobuf_c_message_free_unpacked(&core->base, NULL);
}

/* pstree.img of the top round (NULL entries: none there). */
static int load_pstree(int dirfd, PstreeEntry ***pe, size_t *nr)
{
	struct img_reader r;
	void *data, *m;
	size_t len, cap = 0;
	int ret;

	*pe = NULL;
	*nr = 0;
	if (faccessat(dirfd, "pstree.img", F_OK, 0))
		return 0;
	ret = img_load_file(dirfd, "pstree.img", &data, &len);
	if (!ret)
		ret = img_reader_init(&r, "pstree.img", data, len);
	else
		data = NULL;
	while (!ret && (ret = img_read_msg(&r, &pstree_entry__descriptor, &m)) == 1) {
		ret = grow_array(pe, &cap, *nr, sizeof(**pe));
		if (!ret)
			(*pe)[(*nr)++] = m;
	}
	free(data);
	return ret;
}

static void print_procs(struct out *o, const struct stack_view *v)
{
	PstreeEntry **pe, *found;
	size_t nr, i, j;

	if (load_pstree(v->round_dirfd[v->top_round], &pe, &nr))
		pr_warn("pstree.img of the top round is unreadable: processes without their tree");
	if (o->json)
		jbuf_printf(&o->b, "  \"processes\": %zu,\n  \"memory\": [", nr);
	else
		jbuf_printf(&o->b, "%zu processes; memory map of the top round:\n", nr);
	for (i = 0; i < v->nr_pids; i++) {
		found = NULL;
		for (j = 0; j < nr; j++)
			if (pe[j]->pid == v->idx[i].pid)
				found = pe[j];
		print_proc(o, v, found, &v->idx[i], !i);
	}
	if (o->json)
		jbuf_puts(&o->b, v->nr_pids ? "\n  ]\n" : "]\n");
	for (j = 0; j < nr; j++)
		protobuf_c_message_free_unpacked(&pe[j]->base, NULL);
	free(pe);
}

int show_summary(const char *dir, bool json)
{
	struct out o = { .json = json };
	struct round_sum *rs;
	struct stack_view v;
	InventoryEntry *top;
	uint64_t remote = 0;
	uint32_t r;
	size_t i;
	int ret;

	ret = show_open_stack(dir, &v);
	if (ret)
		return ret;
	rs = calloc(v.top_round + 1, sizeof(*rs));
	ret = rs ? 0 : -ENOMEM;
	for (r = 1; !ret && r <= v.top_round; r++)
		ret = round_scan(v.round_dirfd[r], &rs[r]);
	if (ret) {
		pr_err("%s: cannot read round %u: %s", dir, r - 1, strerror(-ret));
		goto out;
	}
	top = rs[v.top_round].inv;
	for (i = 0; i < v.nr_pids; i++) {
		uint64_t d, z, rm;

		count_range(&v.idx[i], 0, UINT64_MAX, &d, &z, &rm);
		remote += rm;
	}
	if (json) {
		jbuf_puts(&o.b, "{\n  \"stack\": ");
		jbuf_str(&o.b, v.top_dir, strlen(v.top_dir));
		jbuf_printf(&o.b, ",\n  \"rounds\": %u,\n  \"final\": %s,\n  \"pages_remote\": "
			    "%llu,\n", v.top_round, top && top->final ? "true" : "false",
			    (unsigned long long)remote);
		if (top) {
			jbuf_printf(&o.b, "  \"root_pid\": %u,\n  \"migration_id\": ", top->root_pid);
			jbuf_str(&o.b, top->migration_id, strlen(top->migration_id));
			jbuf_puts(&o.b, ",\n");
		}
	} else {
		jbuf_printf(&o.b, "stack %s: %u rounds, top %s", v.top_dir, v.top_round,
			    top && top->final ? remote ? "final (post-copy: pages left at the source, "
			    "not restorable from disk)" : "final (restorable)" : "a pre-copy round");
		if (top)
			jbuf_printf(&o.b, ", migration %s, root pid %u", top->migration_id,
				    top->root_pid);
		jbuf_puts(&o.b, "\n");
	}
	print_rounds(&o, &v, rs);
	print_space(&o, &v, rs);
	print_procs(&o, &v);
	if (json)
		jbuf_puts(&o.b, "}\n");
	ret = o.b.err;
	if (!ret)
		fputs(o.b.s, stdout);
out:
	jbuf_free(&o.b);
	round_sum_free(rs, v.top_round + 1);
	stack_view_close(&v);
	return ret;
}
