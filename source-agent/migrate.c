// SPDX-License-Identifier: MIT
/*
 * The pre-copy loop. The target is seized once; each round it is stopped
 * only while its VMAs are read and its dirty pages are scanned (and
 * re-protected), then runs on while the pages are copied. The final round
 * keeps it frozen until the destination says the restore worked: then it is
 * killed; on any failure it is thawed and detached, unchanged.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/ptrace.h"
#include "common/util.h"
#include "source-agent/dump.h"
#include "source-agent/migrate.h"
#include "source-agent/pages.h"
#include "source-agent/parasite.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	stop_requested = sig;
}

struct round_report {
	uint32_t round;
	bool final;
	uint64_t scanned, dirty, sent, zero;
	uint64_t wire_bytes;
	uint64_t round_us, frozen_us, scan_us;
};

static void print_round(const struct migrate_opts *o, const struct round_report *r)
{
	if (o->json) {
		printf("{\"event\":\"round\",\"round\":%u,\"final\":%s,\"pages_scanned\":%llu,"
		       "\"pages_dirty\":%llu,\"pages_sent\":%llu,\"pages_zero\":%llu,"
		       "\"wire_bytes\":%llu,\"round_ms\":%.3f,\"frozen_ms\":%.3f,\"scan_ms\":%.3f}\n",
		       r->round, r->final ? "true" : "false", (unsigned long long)r->scanned,
		       (unsigned long long)r->dirty, (unsigned long long)r->sent,
		       (unsigned long long)r->zero, (unsigned long long)r->wire_bytes,
		       r->round_us / 1e3, r->frozen_us / 1e3, r->scan_us / 1e3);
	} else {
		printf("round %u%s: scanned %llu pages, dirty %llu, sent %llu (+%llu zero), "
		       "wire %.1f MiB, %.1f ms, frozen %.2f ms\n",
		       r->round, r->final ? " (final)" : "", (unsigned long long)r->scanned,
		       (unsigned long long)r->dirty, (unsigned long long)r->sent,
		       (unsigned long long)r->zero, r->wire_bytes / 1048576.0, r->round_us / 1e3,
		       r->frozen_us / 1e3);
	}
	fflush(stdout);
}

struct migration {
	pid_t pid;
	const struct migrate_opts *o;
	struct sink *sink;
	struct dirty_tracker dt;
	bool seized, stopped, tracking;
	uint32_t round;
	uint64_t prev_dirty;
};

/* Stopped target: VMAs and dirty set in one go (the frozen part of a round). */
static int round_scan(struct migration *m, struct vma_list *vl, struct dirty_set *ds,
		      struct round_report *r)
{
	uint64_t t0 = now_us();
	int ret;

	ret = proc_read_vmas(m->pid, vl);
	if (ret)
		return ret;
	ret = dirty_scan(&m->dt, vl, ds);
	if (ret) {
		vma_list_free(vl);
		return ret;
	}
	r->scan_us = now_us() - t0;
	r->scanned = m->dt.scan_pages;
	r->dirty = ds->pages_data;
	return 0;
}

static int round_send_pages(struct migration *m, const struct dirty_set *ds, struct round_report *r)
{
	struct copy_stats cs;
	int ret;

	ret = m->sink->ops->round_begin(m->sink, r->round, r->final);
	if (ret)
		return ret;
	ret = pages_copy(m->pid, ds, m->sink, &cs);
	r->sent = cs.pages_data;
	r->zero = cs.pages_zero + cs.pages_gone;
	return ret;
}

static int round_finish(struct migration *m, struct round_report *r)
{
	struct round_stats st;
	int ret;

	ret = dump_inventory(m->sink, r->round, m->pid, r->final);
	if (!ret)
		ret = m->sink->ops->round_end(m->sink, &st);
	return ret;
}

static int precopy_round(struct migration *m, struct round_report *r)
{
	struct vma_list vl = { 0 };
	struct dirty_set ds = { 0 };
	uint64_t t0 = now_us(), wire0 = m->sink->stats.wire_bytes;
	int ret;

	if (!m->stopped) {
		ret = tracee_interrupt(m->pid);
		if (ret)
			return ret;
		m->stopped = true;
	}
	ret = round_scan(m, &vl, &ds, r);
	if (ret)
		return ret;
	ret = tracee_resume(m->pid);
	if (ret)
		goto out;
	m->stopped = false;
	r->frozen_us = now_us() - t0;
	ret = round_send_pages(m, &ds, r);
	if (!ret)
		ret = round_finish(m, r);
	r->wire_bytes = m->sink->stats.wire_bytes - wire0;
	r->round_us = now_us() - t0;
out:
	dirty_set_free(&ds);
	vma_list_free(&vl);
	return ret;
}

static int final_round(struct migration *m, struct round_report *r, struct restore_report *rep)
{
	struct vma_list vl = { 0 };
	struct dirty_set ds = { 0 };
	uint64_t t0 = now_us(), wire0 = m->sink->stats.wire_bytes;
	int ret;

	if (!m->stopped) {
		ret = tracee_interrupt(m->pid);
		if (ret)
			return ret;
		m->stopped = true;
	}
	ret = round_scan(m, &vl, &ds, r);
	if (ret)
		return ret;
	ret = round_send_pages(m, &ds, r);
	if (!ret)
		ret = dump_process(m->pid, &vl, m->sink);
	if (!ret)
		ret = dump_pstree(&m->pid, 1, m->sink);
	if (!ret)
		ret = round_finish(m, r);
	r->wire_bytes = m->sink->stats.wire_bytes - wire0;
	if (!ret && m->o->images_dir)
		rep->ok = true;		/* a checkpoint: nothing to wait for */
	else if (!ret)
		ret = m->sink->ops->wait_restore(m->sink, rep);
	r->round_us = r->frozen_us = now_us() - t0;
	dirty_set_free(&ds);
	vma_list_free(&vl);
	return ret;
}

/* The dirty set stopped shrinking, is small, or we ran out of rounds. */
static bool precopy_done(struct migration *m, const struct round_report *r)
{
	bool done = false;

	if (r->round >= m->o->max_rounds)
		done = true;
	else if (r->round > 1 && r->dirty <= m->o->small_dirty_pages)
		done = true;
	else if (r->round > 2 && r->dirty * 10 > m->prev_dirty * 9)
		done = true;
	m->prev_dirty = r->dirty;
	return done;
}

static int start_tracking(struct migration *m)
{
	struct parasite_ctl *ctl;
	int ret, cret;

	ret = tracee_seize(m->pid);
	if (ret) {
		pr_err("cannot seize pid %d: %s", m->pid, strerror(-ret));
		return ret;
	}
	m->seized = m->stopped = true;
	ret = parasite_infect(m->pid, &ctl);
	if (ret)
		return ret;
	ret = dirty_open(&m->dt, m->pid, ctl, m->o->backend);
	cret = parasite_cure(ctl);
	if (!ret)
		m->tracking = true;
	return ret ? ret : cret;
}

/* Thaw and let go: the target runs on as if nothing happened. */
static void rollback(struct migration *m)
{
	if (m->tracking)
		dirty_close(&m->dt);
	m->tracking = false;
	if (m->seized && tracee_detach(m->pid))
		pr_warn("detaching pid %d failed: %m", m->pid);
	m->seized = m->stopped = false;
}

static void kill_source(struct migration *m)
{
	dirty_close(&m->dt);
	m->tracking = false;
	kill(m->pid, SIGKILL);
	tracee_detach(m->pid);	/* lets the kill through; fails harmlessly once it is dead */
	m->seized = m->stopped = false;
}

static int open_sink(const struct migrate_opts *o, pid_t pid, struct sink **s)
{
	if (o->images_dir)
		return sink_local_open(o->images_dir, o->id, s);
	return sink_remote_open(o->host, o->port, &o->tls, o->id, pid, s);
}

int migrate_run(pid_t pid, const struct migrate_opts *o)
{
	struct migration m = { .pid = pid, .o = o };
	struct restore_report rep = { 0 };
	struct round_report r = { 0 };
	struct sigaction sa = { .sa_handler = on_stop_signal };
	uint64_t t0 = now_us();
	int ret;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	ret = open_sink(o, pid, &m.sink);
	if (ret) {
		pr_err("cannot reach the destination: %s", strerror(-ret));
		return ret;
	}
	m.round = m.sink->next_round ? m.sink->next_round : 1;
	ret = start_tracking(&m);
	while (!ret) {
		memset(&r, 0, sizeof(r));
		r.round = m.round++;
		if (stop_requested) {
			pr_err("interrupted by signal %d: migration abandoned", (int)stop_requested);
			ret = -EINTR;
			break;
		}
		ret = precopy_round(&m, &r);
		if (ret)
			break;
		print_round(o, &r);
		if (precopy_done(&m, &r))
			break;
	}
	if (!ret && stop_requested)
		ret = -EINTR;
	if (!ret) {
		memset(&r, 0, sizeof(r));
		r.round = m.round++;
		r.final = true;
		ret = final_round(&m, &r, &rep);
		if (!ret)
			print_round(o, &r);
		if (!ret && !rep.ok) {
			pr_err("restore at the destination failed: %s", rep.error);
			ret = -EREMOTEIO;
		}
	}
	if (ret) {
		rollback(&m);
	} else if (o->leave_running) {
		rollback(&m);
	} else {
		kill_source(&m);
	}
	if (!ret) {
		if (o->json)
			printf("{\"event\":\"done\",\"migration_id\":\"%s\",\"rounds\":%u,"
			       "\"total_ms\":%.3f,\"frozen_ms\":%.3f,\"restore_ms\":%.3f}\n",
			       m.sink->migration_id, r.round, (now_us() - t0) / 1e3, r.frozen_us / 1e3,
			       rep.restore_us / 1e3);
		else
			printf("migrated pid %d as %s in %u rounds: %.1f ms in all, frozen %.1f ms\n",
			       pid, m.sink->migration_id, r.round, (now_us() - t0) / 1e3,
			       r.frozen_us / 1e3);
	}
	m.sink->ops->close(m.sink);
	return ret;
}
