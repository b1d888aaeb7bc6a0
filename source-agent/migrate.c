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
#include "source-agent/ipc.h"
#include "source-agent/migrate.h"
#include "source-agent/pages.h"
#include "source-agent/parasite.h"
#include "source-agent/preflight.h"
#include "source-agent/progress.h"
#include "source-agent/roundstats.h"
#include "source-agent/shm.h"
#include "source-agent/tree.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	stop_requested = sig;
}

/* The downtime predicted beside the one measured, and the throttle (README, --json). */
static void print_converge(FILE *out, bool json, const struct round_report *r)
{
	const struct converge_pred *p = &r->pred;

	if (json && !p->valid)
		fprintf(out, ",\"predicted_downtime_ms\":null");
	else if (json)
		fprintf(out, ",\"predicted_downtime_ms\":%.3f,\"predicted_pages\":%llu,"
			"\"predicted_xfer_ms\":%.3f,\"predicted_lag_ms\":%.3f,\"predicted_fixed_ms\":%.3f,"
			"\"predicted_tcp_ms\":%.3f,\"tcp_queued_bytes\":%llu,"
			"\"dest_lag_rounds\":%u,\"bandwidth_mib_s\":%.1f",
			p->total_us / 1e3, (unsigned long long)p->pages, p->xfer_us / 1e3,
			p->lag_us / 1e3, p->fixed_us / 1e3, p->tcp_us / 1e3,
			(unsigned long long)p->tcp_bytes, p->lag_rounds, p->wire_mib_s);
	if (json && !r->final)
		fprintf(out, ",\"fits_limit\":%s", !r->limit_us || !p->valid ? "null" :
			p->total_us <= r->limit_us ? "true" : "false");
	if (!json && p->valid)
		fprintf(out, ", predicted downtime %.1f ms", p->total_us / 1e3);
	if (!json && p->valid && p->tcp_us >= 100)
		fprintf(out, " (TCP queues %.1f KiB: %.1f ms)", p->tcp_bytes / 1024.0,
			p->tcp_us / 1e3);
	if (json)
		fprintf(out, ",\"throttle_pct\":%u", r->throttle_pct);
	else if (r->throttle_pct)
		fprintf(out, ", throttle %u%%", r->throttle_pct);
	if (r->final && json)
		fprintf(out, ",\"froze_over_limit\":%s", r->limit_exceeded ? "true" : "false");
	else if (r->limit_exceeded)
		fprintf(out, " (frozen although over the downtime limit)");
}

static void print_round(FILE *out, bool json, const struct round_report *r)
{
	if (json) {
		fprintf(out, "{\"event\":\"round\",\"round\":%u,\"final\":%s,\"pages_scanned\":%llu,"
		       "\"pages_dirty\":%llu,\"pages_sent\":%llu,\"pages_zero\":%llu,"
		       "\"wire_bytes\":%llu,\"round_ms\":%.3f,\"frozen_ms\":%.3f,\"scan_ms\":%.3f",
		       r->round, r->final ? "true" : "false", (unsigned long long)r->scanned,
		       (unsigned long long)r->dirty, (unsigned long long)r->sent,
		       (unsigned long long)r->zero, (unsigned long long)r->wire_bytes,
		       r->round_us / 1e3, r->frozen_us / 1e3, r->scan_us / 1e3);
		print_converge(out, json, r);
		fprintf(out, "}\n");
	} else {
		fprintf(out, "round %u%s: scanned %llu pages, dirty %llu, sent %llu (+%llu zero), "
		       "wire %.1f MiB, %.1f ms, frozen %.2f ms",
		       r->round, r->final ? " (final)" : "", (unsigned long long)r->scanned,
		       (unsigned long long)r->dirty, (unsigned long long)r->sent,
		       (unsigned long long)r->zero, r->wire_bytes / 1048576.0, r->round_us / 1e3,
		       r->frozen_us / 1e3);
		print_converge(out, json, r);
		fprintf(out, "\n");
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
	bool pc = r->final && m->postcopy;
	struct copy_stats cs;
	size_t i;
	int ret;

	ret = m->sink->ops->round_begin(m->sink, r->round, r->final);
	for (i = 0; i < m->tree.nr && !ret; i++) {
		ret = dirty_scan_holes(&m->tree.p[i].dt, &pr[i].vl, &pr[i].ds);
		if (!ret)
			ret = pages_copy_pc(m->tree.p[i].pid, &pr[i].ds, m->sink, r->final,
					    pc ? &pr[i].vl : NULL, pc ? &m->pc : NULL, &cs);
		r->sent += cs.pages_data;
		r->zero += cs.pages_zero + cs.pages_gone;
		r->remote += cs.pages_remote;
	}
	if (!ret && pc) {
		/* from now on the destination may ask for them (the verdict may wait on it) */
		pc_set_source(&m->pc);
		m->sink->ops->postcopy_source(m->sink, &m->pc.src);
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


/* core_share_check over the processes of the (frozen) tree */
static int tree_share_check(const struct tree *t)
{
	pid_t *v = malloc((t->nr ? t->nr : 1) * sizeof(*v));
	size_t i;
	int ret;

	if (!v)
		return -ENOMEM;
	for (i = 0; i < t->nr; i++)
		v[i] = t->p[i].pid;
	ret = core_share_check(v, t->nr);
	free(v);
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

	/* frozen: processes that came to share an object since the preflight */
	if (final)
		ret = tree_share_check(&m->tree);
	/* every TCP lock at once, before any connection goes into repair mode */
	if (final && !ret)
		ret = tcp_lock_tree(&m->tree, m->sink);
	if (final)	/* the checks below see the frozen tree, not the preflight's */
		ipc_tree_set(m->pid);
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
	if (!ret && final)
		ret = ipc_dump(m->sink);	/* the semaphore sets only the tree uses */
	if (!ret)
		ret = dump_pstree(&m->tree, m->sink);
	return ret;
}

/* The environment of a hook (hook.h). */
static int run_hooks(struct migration *m, enum hook_phase phase)
{
	char dest[PATH_MAX + 300], addr[64];	/* an images dir, or HOST:PORT */
	struct hook_env env = { .pid = m->pid, .dest = dest };

	if (!m->o->hooks.nr)
		return 0;
	if (m->o->images_dir)
		snprintf(dest, sizeof(dest), "%s", m->o->images_dir);
	else
		snprintf(dest, sizeof(dest), "%s:%s", m->o->host, m->o->port);
	env.migration_id = m->id;
	if (m->o->move_addr_set) {
		net_addr_str(&m->o->move_addr, addr, sizeof(addr));
		env.move_address = addr;
	}
	return hooks_run(&m->o->hooks, phase, &env);
}

/*
 * Frozen, the state dumped, before the final round ends (the destination
 * restores when it does): the service address leaves, the freeze hooks run.
 */
static int at_freeze(struct migration *m)
{
	int ret;

	m->froze = true;
	ret = netaddr_leave(&m->mv, m->sink);
	if (!ret)
		ret = run_hooks(m, HOOK_FREEZE);
	return ret;
}

/*
 * After the scan: the pages, the rest of the state (a pre-copy round's VMAs
 * and tree, the final round's everything), the round's end.
 */
static int round_send(struct migration *m, struct proc_round *pr, struct round_report *r)
{
	uint64_t t1 = now_us();
	int ret;

	ret = round_send_pages(m, pr, r);
	r->send_us = now_us() - t1;
	t1 = now_us();
	if (!ret)
		ret = round_send_state(m, pr, r->final);
	if (!ret && r->final)
		ret = at_freeze(m);
	if (!ret)
		ret = dump_round_stats(m->sink, r);
	if (!ret)
		ret = round_finish(m, r);
	r->state_us = now_us() - t1;
	return ret;
}

struct send_job {
	struct migration *m;
	struct proc_round *pr;
	struct round_report *r;
};

static int send_job_run(void *arg)
{
	struct send_job *j = arg;

	return round_send(j->m, j->pr, j->r);
}

/*
 * A pre-copy round under the auto-converge throttle, if one is on: a
 * helper thread runs round_send (so nothing in a pre-copy round's send may
 * use ptrace) while this one, the tracer, runs the duty cycle. A scripted
 * session lets go of the target between rounds: nothing to throttle with.
 */
static int round_send_throttled(struct migration *m, struct proc_round *pr,
				struct round_report *r)
{
	struct send_job j = { m, pr, r };

	if (r->final || m->detach_between_rounds || !m->cv.throttle_pct)
		return round_send(m, pr, r);
	r->throttle_pct = m->cv.throttle_pct;
	return throttle_run(&m->tree, r->throttle_pct, m->t0, send_job_run, &j);
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

	r->start_us = t0;
	r->wire0 = wire0;

	ret = freeze(m);
	if (ret)
		return ret;
	pr = calloc(m->tree.nr, sizeof(*pr));
	if (!pr)
		return -ENOMEM;
	ret = round_scan(m, pr, r);
	r->scan_at = now_us();
	progress_expect(r->dirty, m->pred.valid ? m->pred.total_us : 0);
	if (!ret && !r->final) {
		ret = thaw(m);
		r->frozen_us = now_us() - t0;
	}
	if (!ret)
		ret = round_send_throttled(m, pr, r);
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
/*
 * With the lazy fill the freeze does not wait for the destination, unless it
 * is this many rounds behind: each round it has not taken in is more on its
 * disk and more to discard and fill after the freeze.
 */
#define LAZY_MAX_LAG_ROUNDS	16
#define WAIT_ROUND_US	50000

/* The old rule: the dirty set is small, stopped shrinking, or we ran out of rounds. */
static bool shrink_done(struct migration *m, const struct round_report *r)
{
	bool done = false;

	if (r->round >= m->o->max_rounds)
		done = true;
	else if (r->round > 1 && r->dirty <= m->o->small_dirty_pages)
		done = true;
	else if (r->round > 2 && r->dirty * 10 > m->prev_dirty * 9)
		done = true;
	return done;
}

/* It never fits: do what --over-limit says. 1: freeze anyway, -ETIME: fail. */
static int over_limit(struct migration *m, const struct round_report *r, const char *why)
{
	const struct converge_pred *p = &r->pred;
	char pred[48] = "unknown";

	if (p->valid)
		snprintf(pred, sizeof(pred), "%.0f ms", p->total_us / 1e3);
	if (m->o->postcopy == PC_AUTO && m->sink->postcopy) {
		pr_warn("predicted downtime %s does not fit --downtime-limit %u ms (%s after round %u): "
			"freezing with post-copy (--postcopy=auto)", pred, m->o->downtime_limit_ms,
			why, r->round);
		m->postcopy = true;
		return 1;
	}
	if (m->o->limit_fail) {
		pr_err("predicted downtime %s does not fit --downtime-limit %u ms (%s after round %u, "
		       "throttle %u%%): migration abandoned (--over-limit fail)", pred,
		       m->o->downtime_limit_ms, why, r->round, m->cv.throttle_pct);
		return -ETIME;
	}
	pr_warn("predicted downtime %s does not fit --downtime-limit %u ms (%s after round %u): "
		"freezing anyway", pred, m->o->downtime_limit_ms, why, r->round);
	m->limit_exceeded = true;
	return 1;
}

/*
 * After a pre-copy round: 1 to freeze now, 0 for one more round, -errno
 * to give up (the source runs on). With a downtime limit, freeze only when
 * the predicted downtime fits it (and the old rule says more rounds would
 * not help, or the throttle is on: no need to hold it back longer); while
 * it does not fit, raise the auto-converge throttle where the dirty rate
 * outruns the link, up to the round cap.
 *
 * While the destination is still filling in older rounds, the freeze would
 * wait for it: run (cheap, small) rounds until it has all but the last, or
 * the lag fits the limit.
 */
static int precopy_done(struct migration *m, const struct round_report *r)
{
	const struct converge_pred *p = &r->pred;
	uint64_t limit = m->cv.limit_us;
	bool done = shrink_done(m, r), capped = r->round >= m->o->max_rounds;
	bool stalled = r->round > 2 && r->dirty * 10 > m->prev_dirty * 9;
	bool behind;
	int ret;

	m->prev_dirty = r->dirty;
	/* the pages would fit, the TCP queues do not: no throttle makes them smaller */
	if (limit && !m->limit_exceeded && p->valid && p->xfer_us + p->fixed_us <= limit &&
	    p->xfer_us + p->tcp_us + p->fixed_us > limit) {
		ret = over_limit(m, r, "the TCP connections' queued data alone");
		if (ret < 0)
			return ret;
		done = true;
	} else if (limit && !m->limit_exceeded && (!p->valid || p->xfer_us + p->fixed_us > limit)) {
		if (!capped && converge_throttle_up(&m->cv))
			pr_info("auto-converge: the dirty rate outruns the link, throttle %u%% from "
				"round %u", m->cv.throttle_pct, r->round + 1);
		if (capped)
			ret = over_limit(m, r, "round cap reached");
		else if (stalled && (!m->cv.auto_converge || m->cv.throttle_pct >= THROTTLE_MAX_PCT))
			ret = over_limit(m, r, "the dirty set stopped shrinking");
		else
			return 0;
		if (ret < 0)
			return ret;
		done = true;
	} else if (limit && !m->limit_exceeded && m->cv.throttle_pct) {
		done = true;
	}
	if (!done)
		return 0;
	behind = m->sink->prefilled_round >= 0 &&
		 m->sink->prefilled_round + (m->sink->lazy_fill ? LAZY_MAX_LAG_ROUNDS : 1) < r->round;
	if (limit && !m->limit_exceeded && p->valid && p->total_us > limit && p->lag_us &&
	    !m->sink->lazy_fill)
		behind = true;
	if (behind) {
		if (!m->wait_t0)
			m->wait_t0 = now_us();
		if (now_us() - m->wait_t0 < MAX_WAIT_US) {
			pr_info("destination has rounds up to %lld in memory: one more round",
				(long long)m->sink->prefilled_round);
			usleep(WAIT_ROUND_US);
			return 0;
		}
		if (limit && !m->limit_exceeded && p->valid && p->total_us > limit)
			return over_limit(m, r, "the destination did not catch up");
	}
	return 1;
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
 * us log "paused at @point" and sleep there (FERRY_TEST_PAUSE_S, 1-30,
 * default 3), so a test can kill us.
 */
static void test_pause(const char *point)
{
	const char *at = getenv("FERRY_TEST_PAUSE_AT"), *secs = getenv("FERRY_TEST_PAUSE_S");
	int n = secs ? atoi(secs) : 3;

	if (!at || strcmp(at, point))
		return;
	fprintf(stderr, "migrate: paused at %s\n", point);
	/* the whole pause: a signal (a child's SIGCHLD) must not cut it short */
	for (unsigned int left = n >= 1 && n <= 30 ? n : 3; left;)
		left = sleep(left);
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
	ret = netaddr_arrived(&m->mv);		/* the link finds the address there */
	if (!ret)
		ret = run_hooks(m, HOOK_RESTORED);	/* a failure: the source runs on */
	if (!ret)
		ret = tree_alive(m);
	if (ret)
		return ret;
	/* a page server seen gone now has discarded its copy: nothing is committed */
	if (m->sink->ops->alive) {
		ret = m->sink->ops->alive(m->sink);
		if (ret)
			return ret;
	}
	netaddr_release(&m->mv);	/* from here on the address follows the hand-over */
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
	char msg[800], pids[256];

	if (m->pc_lost) {
		tree_pids(m, pids, sizeof(pids));
		fprintf(stderr, "migrate: post-copy failed: %s\n", m->sink && m->sink->error[0] ?
			m->sink->error : "no reason known");
		fprintf(stderr, "migrate: IN DOUBT (post-copy): pid %d ran at %s:%s before it had all "
			"its memory, and %llu of its pages were only here; post-copy did not end. "
			"Neither copy is whole: the destination kills its copy when the pages can no "
			"longer come (docs/handover.md). pid %d is left stopped here and must not be "
			"resumed (its copy at the destination has run): kill it here (kill -KILL %s) "
			"once you no longer need it\n", m->pid, m->o->host, m->o->port,
			(unsigned long long)m->pc.pages, m->pid, pids);
		return;
	}
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
	ipc_remove_moved();	/* its System V objects went with it */
}

static int open_sink(const struct migrate_opts *o, pid_t pid, struct sink **s)
{
	if (o->images_dir)
		return sink_local_open(o->images_dir, o->id, s);
	return sink_remote_open(o->host, o->port, &o->tls, o->id, pid, o->postcopy != PC_OFF, s);
}

/* Did the page server take post-copy (hello)? --postcopy needs it, =auto does without. */
static int postcopy_agreed(struct migration *m)
{
	if (m->o->postcopy == PC_OFF || m->sink->postcopy) {
		m->postcopy = m->o->postcopy == PC_ON;
		return 0;
	}
	if (m->o->postcopy == PC_AUTO) {
		pr_warn("the page server does not take post-copy (--no-restore, --no-stream or an "
			"older version): --postcopy=auto is off");
		return 0;
	}
	pr_err("the page server does not take post-copy (it runs with --no-restore or "
	       "--no-stream, or is an older version)");
	return -ECONNREFUSED;
}

/*
 * After the hand-over with post-copy: the destination runs, its REMOTE
 * pages are only in our frozen tree. Serve and push them until it has
 * them all. Any failure now leaves both copies incomplete: in doubt.
 */
static int postcopy_phase(struct migration *m, const struct restore_report *rep,
			  uint64_t *us)
{
	uint64_t t0 = now_us();
	int ret;

	/*
	 * The destination runs: from here on ours must never run again, even
	 * if it said so without the held commit (handover) that queues this.
	 */
	if (m->pc.pages && !m->stop_queued)
		queue_stop(m, SIGSTOP);
	if (!rep->postcopy) {
		if (!m->pc.pages)
			return 0;	/* nothing was left here */
		pr_err("the destination runs pid %d, but did not take the %llu pages still here",
		       m->pid, (unsigned long long)m->pc.pages);
		m->pc_lost = m->in_doubt = true;
		return MIGRATE_IN_DOUBT;
	}
	/* the source's memory is the only copy of those pages: nothing may stop us now */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	fprintf(stderr, "migrate: post-copy: pid %d runs at %s:%s; %llu of its pages are only in "
		"this frozen copy until they are there: SIGINT, SIGTERM and SIGHUP are ignored "
		"until then\n", m->pid, m->o->host, m->o->port, (unsigned long long)m->pc.pages);
	test_pause("postcopy");
	ret = m->sink->ops->postcopy_run(m->sink);
	*us = now_us() - t0;
	if (ret) {
		m->pc_lost = m->in_doubt = true;
		return MIGRATE_IN_DOUBT;
	}
	return 0;
}

/* The post-copy report (README, --json). */
static void print_postcopy(struct migration *m, const struct round_report *r, uint64_t us)
{
	const struct pc_source *pc = &m->pc.src;

	if (m->json)
		fprintf(m->out, "{\"event\":\"postcopy\",\"pages_remote\":%llu,"
			"\"postcopy_ms\":%.3f,\"pages_pulled\":%llu,\"requests\":%llu,"
			"\"pages_pushed\":%llu,\"dest_pages\":%llu,\"faults\":%llu}\n",
			(unsigned long long)r->remote, us / 1e3, (unsigned long long)pc->pulled,
			(unsigned long long)pc->requests, (unsigned long long)pc->pushed,
			(unsigned long long)pc->dest_pages, (unsigned long long)pc->dest_faults);
	else
		fprintf(m->out, "post-copy: %llu pages left at the source at the freeze; in %.1f ms "
			"after the hand-over %llu pulled on demand (%llu requests) and %llu pushed; "
			"%llu copied in at the destination, %llu faults waited for them\n",
			(unsigned long long)r->remote, us / 1e3, (unsigned long long)pc->pulled,
			(unsigned long long)pc->requests, (unsigned long long)pc->pushed,
			(unsigned long long)pc->dest_pages, (unsigned long long)pc->dest_faults);
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
	converge_init(&m->cv, o->downtime_limit_ms, !o->no_auto_converge);
	if (o->move_addr_set) {
		ret = netaddr_prepare(&m->mv, &o->move_addr, pid);	/* before anything */
		if (ret) {
			netaddr_close(&m->mv);
			return ret;
		}
	}
	ret = open_sink(o, pid, &m->sink);
	if (ret) {
		netaddr_close(&m->mv);
		pr_err("cannot reach the destination: %s",
		       *sink_open_error() ? sink_open_error() : strerror(-ret));
		return ret;
	}
	snprintf(m->id, sizeof(m->id), "%s", m->sink->migration_id);
	ret = postcopy_agreed(m);
	if (ret) {
		m->sink->ops->close(m->sink);
		m->sink = NULL;
		netaddr_close(&m->mv);
		return ret;
	}
	progress_attach(m->sink);
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
	if (ret)
		return ret;
	m->cv.lazy_fill = m->sink->lazy_fill;
	converge_round(&m->cv, r->round, r->scan_at, r->scanned, r->dirty, r->sent, r->send_us,
		       r->wire_bytes, r->scan_us, r->state_us, m->sink->prefilled_round, &r->pred);
	/* read while the tree runs: their size moves anyway, the order is what counts */
	converge_add_tcp(&r->pred, tcp_queued_bytes(&m->tree));
	r->limit_us = m->cv.limit_us;
	m->pred = r->pred;
	print_round(m->out, m->json, r);
	return 0;
}

int migration_final(struct migration *m)
{
	struct restore_report rep = { 0 };
	struct round_report r = { 0 };
	uint64_t pc_us = 0;
	bool over;
	int ret;

	r.round = m->round++;
	r.final = true;
	r.pred = m->pred;
	r.limit_exceeded = m->limit_exceeded;
	/* running still: the program accepts what waits in its accept queues */
	ret = m->stopped ? 0 : tcp_drain_accept(&m->tree, m->sink);
	if (!ret)
		ret = run_round(m, &r, &rep);
	if (!ret && rep.ok && rep.held && m->sink->ops->commit)
		ret = handover(m, &rep);
	if (!ret && rep.ok && m->postcopy)
		ret = postcopy_phase(m, &rep, &pc_us);
	if (!ret)
		print_round(m->out, m->json, &r);
	if (!ret && rep.ok && m->postcopy)
		print_postcopy(m, &r, pc_us);
	if (!ret && !rep.ok) {
		pr_err("restore at the destination failed: %s", rep.error);
		ret = -EREMOTEIO;
	}
	if (ret)
		return ret;
	over = m->cv.limit_us && r.frozen_us > m->cv.limit_us;
	if (m->json)
		fprintf(m->out, "{\"event\":\"done\",\"migration_id\":\"%s\",\"rounds\":%u,"
			"\"total_ms\":%.3f,\"frozen_ms\":%.3f,\"restore_ms\":%.3f,"
			"\"downtime_limit_ms\":%u,\"froze_over_limit\":%s,\"downtime_over_limit\":%s}\n",
			m->sink->migration_id, r.round, (now_us() - m->t0) / 1e3, r.frozen_us / 1e3,
			rep.restore_us / 1e3, m->o->downtime_limit_ms,
			m->limit_exceeded ? "true" : "false", over ? "true" : "false");
	else
		fprintf(m->out, "%s pid %d as %s in %u rounds: %.1f ms in all, frozen %.1f ms%s\n",
			m->o->images_dir ? "checkpointed" : "migrated", m->pid, m->sink->migration_id,
			r.round, (now_us() - m->t0) / 1e3, r.frozen_us / 1e3,
			over ? " (over the downtime limit)" : "");
	fflush(m->out);
	return 0;
}

void migration_close(struct migration *m, int result)
{
	file_ids_free(&m->files);
	shm_free(&m->shm);
	converge_free(&m->cv);
	if (result && m->sink && m->sink->error[0])
		pr_err("%s", m->sink->error);
	if (result)
		tree_exec_check(&m->tree);	/* the reason a round failed, if so */
	if (m->in_doubt) {
		say_in_doubt(m);
		netaddr_in_doubt(&m->mv);
	}
	/* TCP connections leave repair mode and are unlocked before the tree thaws */
	if (m->in_doubt)
		tcp_migration_end(TCP_END_IN_DOUBT);
	else if (result || m->o->leave_running)
		tcp_migration_end(TCP_END_ROLLBACK);
	if (result || m->o->leave_running)
		rollback(m);
	else
		kill_source(m);
	if (!result && !m->o->leave_running)
		/* closed silently after the kill; a checkpoint's lock waits for restore */
		tcp_migration_end(m->o->images_dir ? TCP_END_CHECKPOINT : TCP_END_DONE);
	if (m->sink)
		m->sink->ops->close(m->sink);	/* the destination drops its copy (and the address) */
	if (result && !m->in_doubt)
		netaddr_return(&m->mv);
	netaddr_close(&m->mv);
	if (result && !m->in_doubt && m->froze)
		run_hooks(m, HOOK_ROLLBACK);	/* its failure is said; nothing more to undo */
	else if (!result && run_hooks(m, HOOK_DONE))
		pr_warn("a done hook failed after the migration: the process runs at the "
			"destination all the same");
	m->sink = NULL;
	pc_set_free(&m->pc);
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
		if (!ret)
			ret = precopy_done(&m, &r);
	} while (!ret);
	if (ret > 0)
		ret = 0;
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
