/* SPDX-License-Identifier: MIT */
#ifndef FERRY_MIGRATE_H
#define FERRY_MIGRATE_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "source-agent/converge.h"
#include "source-agent/dirty.h"
#include "source-agent/shm.h"
#include "source-agent/tree.h"
#include "source-agent/dump.h"
#include "source-agent/hook.h"
#include "source-agent/netaddr.h"
#include "source-agent/postcopy.h"
#include "transport/sink.h"
#include "transport/tls.h"

struct migrate_opts {
	const char *host, *port;	/* remote page server, or */
	const char *images_dir;		/* local image stack */
	const char *id;			/* migration id (resume / name) */
	struct tls_opts tls;
	unsigned int max_rounds;	/* pre-copy rounds before the final one */
	uint64_t small_dirty_pages;	/* stop iterating below this */
	bool leave_running;
	bool json;
	enum dirty_backend backend;
	unsigned int downtime_limit_ms;	/* 0: no limit (the shrink rule alone) */
	bool no_auto_converge;
	bool limit_fail;		/* the limit never fits: fail, the source runs on */
	bool move_addr_set;		/* --move-address (docs/network.md) */
	struct net_addr move_addr;
	struct hooks hooks;		/* --hook PHASE=CMD */
	enum { PC_OFF, PC_ON, PC_AUTO } postcopy;	/* --postcopy[=auto] (handover.md) */
};

struct round_report {
	uint32_t round;
	bool final;
	uint64_t scanned, dirty, sent, zero;
	uint64_t remote;			/* final, post-copy: pages left at the source */
	uint64_t wire_bytes;
	uint64_t round_us, frozen_us, scan_us;
	uint64_t scan_at, send_us, state_us;	/* when it was scanned; copy, end */
	uint64_t start_us, wire0;		/* its start; the sink's wire bytes then (stats.img) */
	unsigned int throttle_pct;		/* the throttle during this round's copy */
	struct converge_pred pred;		/* downtime if frozen after it (final: the one acted on) */
	uint64_t limit_us;			/* --downtime-limit, 0: none */
	bool limit_exceeded;			/* final: frozen although pred did not fit */
};

/* One migration in progress (the automatic loop, or a scripted session). */
struct migration {
	pid_t pid;
	const struct migrate_opts *o;
	struct sink *sink;
	struct tree tree;		/* seized processes (none: not seized) */
	struct file_ids files;		/* open file descriptions shared in the tree */
	struct shm_set shm;		/* shared memory objects of the tree */
	bool stopped;
	bool detach_between_rounds;	/* scripted: the target is let go between rounds */
	uint32_t round;
	uint64_t prev_dirty;
	uint64_t wait_t0;		/* since when pre-copy waits for the destination */
	struct converge cv;		/* downtime prediction, throttle */
	struct converge_pred pred;	/* the last pre-copy round's prediction */
	bool limit_exceeded;		/* freezing although the prediction does not fit */
	uint64_t t0;
	FILE *out;			/* per-round lines go here */
	bool json;			/* ... as JSON lines */
	bool stop_queued;		/* SIGSTOP pending in the tree: it cannot run without us */
	bool in_doubt;			/* COMMIT sent, no verdict: left stopped (handover.md) */
	struct addr_move mv;		/* --move-address */
	char id[72];			/* the migration id, for hooks (outlives the sink) */
	bool froze;			/* the freeze phase began: a failure now is a rollback */
	bool postcopy;			/* the final round leaves REMOTE pages (handover.md) */
	bool pc_lost;			/* in doubt: post-copy did not end (pages only here) */
	struct pc_set pc;		/* the REMOTE pages, read from the frozen tree */
};

/*
 * migration_final's result when COMMIT went out and no verdict came back:
 * the tree is left stopped here, `migrate` exits MIGRATE_EXIT_IN_DOUBT.
 */
#define MIGRATE_IN_DOUBT	(-ENOTRECOVERABLE)
#define MIGRATE_EXIT_IN_DOUBT	3
/* The one line that tells the operator what to do (docs/handover.md). */
void migration_in_doubt_msg(const struct migration *m, char *buf, size_t len);

/* Whole migration of the process at @pid: pre-copy rounds, final round, hand-over. */
int migrate_run(pid_t pid, const struct migrate_opts *o);

/* The steps migrate_run is made of, for scripted sessions. */
int migration_open(struct migration *m, pid_t pid, const struct migrate_opts *o);
int migration_precopy(struct migration *m, struct round_report *r);
int migration_final(struct migration *m);
/* result 0: the destination has it, kill the source (unless --leave-running); else thaw. */
void migration_close(struct migration *m, int result);

void migrate_catch_signals(void);
bool migrate_stop_requested(void);

#endif
