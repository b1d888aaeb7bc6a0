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
#include "source-agent/preflight.h"
#include "source-agent/shm.h"
#include "source-agent/tree.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	stop_requested = sig;
}

static void print_round(FILE *out, bool json, const struct round_report *r)
{
	if (json) {
		fprintf(out, "{\"event\":\"round\",\"round\":%u,\"final\":%s,\"pages_scanned\":%llu,"
		       "\"pages_dirty\":%llu,\"pages_sent\":%llu,\"pages_zero\":%llu,"
		       "\"wire_bytes\":%llu,\"round_ms\":%.3f,\"frozen_ms\":%.3f,\"scan_ms\":%.3f}\n",
		       r->round, r->final ? "true" : "false", (unsigned long long)r->scanned,
		       (unsigned long long)r->dirty, (unsigned long long)r->sent,
		       (unsigned long long)r->zero, (unsigned long long)r->wire_bytes,
		       r->round_us / 1e3, r->frozen_us / 1e3, r->scan_us / 1e3);
	} else {
		fprintf(out, "round %u%s: scanned %llu pages, dirty %llu, sent %llu (+%llu zero), "
		       "wire %.1f MiB, %.1f ms, frozen %.2f ms\n",
		       r->round, r->final ? " (final)" : "", (unsigned long long)r->scanned,
		       (unsigned long long)r->dirty, (unsigned long long)r->sent,
		       (unsigned long long)r->zero, r->wire_bytes / 1048576.0, r->round_us / 1e3,
		       r->frozen_us / 1e3);
	}
	fflush(out);
}

/* Stop every thread of the tree (seizing what is not seized yet). */
static int freeze(struct migration *m)
{
	int ret;

	if (m->stopped)
		return 0;
	ret = tree_freeze(&m->tree);
	if (ret)
		return ret;
	m->stopped = true;
	return 0;
}

/* Let it run while pages are copied; a scripted session lets go of it entirely. */
static int thaw(struct migration *m)
{
	int ret = 0;

	if (m->detach_between_rounds)
		tree_detach(&m->tree);
	else
		ret = tree_resume(&m->tree);
	m->stopped = false;
	return ret;
}

/* What one round found in one process. */
struct proc_round {
	struct vma_list vl;
	struct dirty_set ds;
};

static void proc_rounds_free(struct proc_round *pr, size_t nr)
{
	size_t i;

	for (i = 0; pr && i < nr; i++) {
		dirty_set_free(&pr[i].ds);
		vma_list_free(&pr[i].vl);
	}
	free(pr);
}

/* Stopped tree: VMAs and dirty sets in one go (the frozen part of a round). */
static int round_scan(struct migration *m, struct proc_round *pr, struct round_report *r)
{
	uint64_t t0 = now_us();
	size_t i;
	int ret = 0;

	for (i = 0; i < m->tree.nr && !ret; i++) {
		struct tree_proc *p = &m->tree.p[i];

		ret = proc_read_vmas(p->pid, &pr[i].vl);
		if (!ret)
			ret = dirty_scan(&p->dt, &pr[i].vl, &pr[i].ds);
		if (!ret)
			ret = mm_read_vmflags(p->pid, &p->dt, &pr[i].vl);
		if (!ret)
			ret = shm_collect(&m->shm, p->pid, &pr[i].vl, &pr[i].ds);
		r->scanned += p->dt.scan_pages;
		r->dirty += pr[i].ds.pages_data;
	}
	r->scan_us = now_us() - t0;
	return ret;
}

static int round_send_pages(struct migration *m, struct proc_round *pr, struct round_report *r)
{
	struct copy_stats cs;
	size_t i;
	int ret;

	ret = m->sink->ops->round_begin(m->sink, r->round, r->final);
	for (i = 0; i < m->tree.nr && !ret; i++) {
		ret = dirty_scan_holes(&m->tree.p[i].dt, &pr[i].vl, &pr[i].ds);
		if (!ret)
			ret = pages_copy(m->tree.p[i].pid, &pr[i].ds, m->sink, r->final, &cs);
		r->sent += cs.pages_data;
		r->zero += cs.pages_zero + cs.pages_gone;
	}
	if (!ret)
		ret = shm_send(&m->shm, m->sink, &cs);
	r->sent += cs.pages_data;
	r->zero += cs.pages_zero;
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

/*
 * Everything but pages: the tree and each VMA list in a pre-copy round (the
 * destination maps memory early), the whole state in the final one.
 */
static int round_send_state(struct migration *m, struct proc_round *pr, bool final)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < m->tree.nr && !ret; i++) {
		struct tree_proc *p = &m->tree.p[i];

		if (!final) {
			ret = dump_vmas(p->pid, &pr[i].vl, m->sink);
			continue;
		}
		/* the preflight's checks again, frozen: what appeared since is refused */
		ret = preflight_proc(p->pid);
		if (!ret)
			ret = dump_process(p->pid, &p->ts, &pr[i].vl, &m->files, &m->shm, m->sink);
	}
	if (!ret && final)
		ret = file_ids_check_peers(&m->files);
	if (!ret)
		ret = dump_pstree(&m->tree, m->sink);
	return ret;
}

/*
 * One round. The tree is stopped for the scan; a pre-copy round lets it
 * run while pages are copied, the final one keeps it frozen until the
 * destination's verdict (@rep).
 */
static int run_round(struct migration *m, struct round_report *r, struct restore_report *rep)
{
	uint64_t t0 = now_us(), wire0 = m->sink->stats.wire_bytes;
	struct proc_round *pr = NULL;
	int ret;

	ret = freeze(m);
	if (ret)
		return ret;
	pr = calloc(m->tree.nr, sizeof(*pr));
	if (!pr)
		return -ENOMEM;
	ret = round_scan(m, pr, r);
	if (!ret && !r->final) {
		ret = thaw(m);
		r->frozen_us = now_us() - t0;
	}
	if (!ret)
		ret = round_send_pages(m, pr, r);
	if (!ret)
		ret = round_send_state(m, pr, r->final);
	if (!ret)
		ret = round_finish(m, r);
	r->wire_bytes = m->sink->stats.wire_bytes - wire0;
	if (!ret && r->final && m->o->images_dir)
		rep->ok = true;		/* a checkpoint: nothing to wait for */
	else if (!ret && r->final)
		ret = m->sink->ops->wait_restore(m->sink, rep);
	r->round_us = now_us() - t0;
	if (r->final)
		r->frozen_us = r->round_us;
	proc_rounds_free(pr, m->tree.nr);
	return ret;
}

/*
 * How long pre-copy may go on for a streaming restore at the destination
 * to catch up (filling a GiB into fresh memory takes seconds on some VMs),
 * and the pause between such rounds.
 */
#define MAX_WAIT_US	(15 * 1000000ULL)
#define WAIT_ROUND_US	50000

/*
 * The dirty set stopped shrinking, is small, or we ran out of rounds. But
 * while the destination is still filling in older rounds, the freeze would
 * wait for it: run (cheap, small) rounds until it has all but the last.
 */
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
	if (done && m->sink->prefilled_round >= 0 && m->sink->prefilled_round + 1 < r->round) {
		if (!m->wait_t0)
			m->wait_t0 = now_us();
		if (now_us() - m->wait_t0 < MAX_WAIT_US) {
			pr_info("destination has rounds up to %lld in memory: one more round",
				(long long)m->sink->prefilled_round);
			usleep(WAIT_ROUND_US);
			return false;
		}
	}
	return done;
}

/*
 * Thaw and let go: the tree runs on as if nothing happened. Unless the
 * hand-over is in doubt: then the pending SIGSTOP stops it as we let go.
 */
static void rollback(struct migration *m)
{
	tree_release(&m->tree);
	m->stopped = false;
}

/*
 * Test hook (docs/testing.md, test-only): FERRY_TEST_PAUSE_AT=@point makes
 * us log "paused at @point" and sleep 3 s there, so a test can kill us.
 */
static void test_pause(const char *point)
{
	const char *at = getenv("FERRY_TEST_PAUSE_AT");

	if (!at || strcmp(at, point))
		return;
	fprintf(stderr, "migrate: paused at %s\n", point);
	sleep(3);
}

/*
 * Before COMMIT: a SIGSTOP for every process of the tree, queued while it
 * is ptrace-stopped. It stays pending while we trace it; should we die or
 * detach, the tree enters a group stop instead of running on. A process
 * stopped by job control is left alone: it is stopped anyway.
 */
static void queue_stop(struct migration *m, int sig)
{
	size_t i;

	for (i = 0; i < m->tree.nr; i++)
		if (!m->tree.p[i].stopped)
			kill(m->tree.p[i].pid, sig);
	m->stop_queued = sig == SIGSTOP;
}

/* The pids of the tree, for the operator: "N" or "N M ...". */
static void tree_pids(const struct migration *m, char *buf, size_t len)
{
	size_t i, off = 0;

	buf[0] = 0;
	for (i = 0; i < m->tree.nr && off < len; i++)
		off += snprintf(buf + off, len - off, "%s%d", i ? " " : "", m->tree.p[i].pid);
}

/*
 * The destination holds the restored tree stopped (docs/handover.md).
 * Make ours unable to run even if we die, then COMMIT. From here on our
 * copy is never thawed unless the destination says it discarded its own.
 */
/*
 * Is every process of the tree still there? A SIGKILL reaches a frozen
 * (ptrace-stopped) process too: then the user ended it here, and its copy
 * must not be started there.
 */
static int tree_alive(const struct migration *m)
{
	size_t i;

	for (i = 0; i < m->tree.nr; i++) {
		if (!proc_gone(m->tree.p[i].pid))
			continue;
		pr_err("pid %d was killed during the final freeze: nothing committed, the "
		       "destination discards its copy", m->tree.p[i].pid);
		return -ESRCH;
	}
	return 0;
}

static int handover(struct migration *m, struct restore_report *rep)
{
	int ret;

	test_pause("held");
	ret = tree_alive(m);
	if (ret)
		return ret;
	/* a page server seen gone now has discarded its copy: nothing is committed */
	if (m->sink->ops->alive) {
		ret = m->sink->ops->alive(m->sink);
		if (ret)
			return ret;
	}
	if (!m->o->leave_running)
		queue_stop(m, SIGSTOP);
	ret = m->sink->ops->commit(m->sink, rep);
	if (ret) {
		m->in_doubt = true;
		return MIGRATE_IN_DOUBT;
	}
	if (!rep->ok) {
		/* it told us: its copy is gone. Ours runs on (and sees a SIGCONT). */
		if (m->stop_queued)
			queue_stop(m, SIGCONT);
		return 0;
	}
	return 0;
}

void migration_in_doubt_msg(const struct migration *m, char *buf, size_t len)
{
	char pids[256];

	tree_pids(m, pids, sizeof(pids));
	snprintf(buf, len, "IN DOUBT: pid %d is stopped here; if pid %d runs at %s%s%s, kill it "
		 "here (kill -KILL %s); if it does not, resume it here (kill -CONT %s)",
		 m->pid, m->pid, m->o->host ? m->o->host : "the destination",
		 m->o->port ? ":" : "", m->o->port ? m->o->port : "", pids, pids);
}

static void say_in_doubt(struct migration *m)
{
	char msg[800];

	pr_err("the link to the destination was lost after commit: whether the restored "
	       "copy runs there is unknown");
	migration_in_doubt_msg(m, msg, sizeof(msg));
	fprintf(stderr, "migrate: %s\n", msg);
}

/*
 * The destination runs the tree now. For a local checkpoint, wait (a
 * little) until every old process is reaped (a child by init, once its
 * parent is gone), so their PIDs are free for a restore right after
 * migrate returns.
 */
static void kill_source(struct migration *m)
{
	size_t k, nr = m->tree.nr;
	pid_t *pids = calloc(nr, sizeof(*pids));
	char path[64];
	int i = 0;

	for (k = 0; pids && k < nr; k++)
		pids[k] = m->tree.p[k].pid;
	tree_kill(&m->tree);
	m->stopped = false;
	for (k = 0; m->o->images_dir && pids && k < nr; k++) {
		snprintf(path, sizeof(path), "/proc/%d", pids[k]);
		for (; i < 500 && !access(path, F_OK); i++)
			usleep(10000);
	}
	free(pids);
}

static int open_sink(const struct migrate_opts *o, pid_t pid, struct sink **s)
{
	if (o->images_dir)
		return sink_local_open(o->images_dir, o->id, s);
	return sink_remote_open(o->host, o->port, &o->tls, o->id, pid, s);
}

int migration_open(struct migration *m, pid_t pid, const struct migrate_opts *o)
{
	int ret;

	memset(m, 0, sizeof(*m));
	m->pid = pid;
	m->o = o;
	m->out = stdout;
	m->json = o->json;
	m->t0 = now_us();
	ret = open_sink(o, pid, &m->sink);
	if (ret) {
		pr_err("cannot reach the destination: %s",
		       *sink_open_error() ? sink_open_error() : strerror(-ret));
		return ret;
	}
	m->round = m->sink->next_round ? m->sink->next_round : 1;
	m->tree.root = pid;
	m->tree.backend = o->backend;
	ret = freeze(m);	/* seizes the tree and starts tracking its memory */
	if (ret) {
		pr_err("cannot seize pid %d: %s", pid, strerror(-ret));
		migration_close(m, ret);
	}
	return ret;
}

int migration_precopy(struct migration *m, struct round_report *r)
{
	int ret;

	memset(r, 0, sizeof(*r));
	r->round = m->round++;
	ret = run_round(m, r, NULL);
	if (!ret)
		print_round(m->out, m->json, r);
	return ret;
}

int migration_final(struct migration *m)
{
	struct restore_report rep = { 0 };
	struct round_report r = { 0 };
	int ret;

	r.round = m->round++;
	r.final = true;
	ret = run_round(m, &r, &rep);
	if (!ret && rep.ok && rep.held && m->sink->ops->commit)
		ret = handover(m, &rep);
	if (!ret)
		print_round(m->out, m->json, &r);
	if (!ret && !rep.ok) {
		pr_err("restore at the destination failed: %s", rep.error);
		ret = -EREMOTEIO;
	}
	if (ret)
		return ret;
	if (m->json)
		fprintf(m->out, "{\"event\":\"done\",\"migration_id\":\"%s\",\"rounds\":%u,"
			"\"total_ms\":%.3f,\"frozen_ms\":%.3f,\"restore_ms\":%.3f}\n",
			m->sink->migration_id, r.round, (now_us() - m->t0) / 1e3, r.frozen_us / 1e3,
			rep.restore_us / 1e3);
	else
		fprintf(m->out, "%s pid %d as %s in %u rounds: %.1f ms in all, frozen %.1f ms\n",
			m->o->images_dir ? "checkpointed" : "migrated", m->pid, m->sink->migration_id,
			r.round, (now_us() - m->t0) / 1e3, r.frozen_us / 1e3);
	fflush(m->out);
	return 0;
}

void migration_close(struct migration *m, int result)
{
	file_ids_free(&m->files);
	shm_free(&m->shm);
	if (result && m->sink && m->sink->error[0])
		pr_err("%s", m->sink->error);
	if (result)
		tree_exec_check(&m->tree);	/* the reason a round failed, if so */
	if (m->in_doubt)
		say_in_doubt(m);
	if (result || m->o->leave_running)
		rollback(m);
	else
		kill_source(m);
	if (m->sink)
		m->sink->ops->close(m->sink);
	m->sink = NULL;
}

int migrate_run(pid_t pid, const struct migrate_opts *o)
{
	struct migration m;
	struct round_report r;
	int ret;

	migrate_catch_signals();
	ret = preflight_tree(pid);	/* refusals first: nothing opened, nothing seized */
	if (!ret)
		ret = migration_open(&m, pid, o);
	if (ret)
		return ret;
	do {
		if (stop_requested) {
			pr_err("interrupted by signal %d: migration abandoned", (int)stop_requested);
			ret = -EINTR;
			break;
		}
		ret = migration_precopy(&m, &r);
	} while (!ret && !precopy_done(&m, &r));
	if (!ret && stop_requested)
		ret = -EINTR;
	if (!ret)
		ret = migration_final(&m);
	migration_close(&m, ret);
	return ret;
}

void migrate_catch_signals(void)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

bool migrate_stop_requested(void)
{
	return stop_requested;
}
