/* SPDX-License-Identifier: MIT */
/*
 * Where `migrate` sends a round: the page server over TLS (remote sink) or a
 * local image stack (local sink). Same calls either way.
 */
#ifndef FERRY_SINK_H
#define FERRY_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imgstack/writer.h"

struct tls_opts;		/* transport/tls.h */

struct sink_stats {
	uint64_t wire_bytes;	/* bytes that went on the wire (after lz4, before TLS) */
	uint64_t raw_bytes;	/* page bytes handed to the sink */
};

struct restore_report {
	bool ok;
	bool held;		/* ok: restored and stopped, waiting for commit (handover.md) */
	bool resumed;		/* after commit: ok and running at the destination */
	bool postcopy;		/* resumed, and its REMOTE pages are still to come from us */
	char error[256];
	uint64_t restore_us;
};

/*
 * Post-copy (migrate --postcopy, docs/handover.md): where the final round's
 * REMOTE pages are read from, the tree frozen, and what was sent.
 */
struct pc_source {
	/* @nr pages of @pid at @vaddr into @buf: 0, -EPROTO if they are not REMOTE, -errno. */
	int (*read)(void *arg, uint32_t pid, uint64_t vaddr, uint32_t nr, uint8_t *buf);
	/* The next run to push: 1 with *@pid, *@vaddr, *@nr (1 .. 256), 0 when all went. */
	int (*next)(void *arg, uint32_t *pid, uint64_t *vaddr, uint32_t *nr);
	void *arg;
	uint64_t requests, pulled, pushed;	/* page_requests answered, their pages; pushed */
	uint64_t dest_pages, dest_faults;	/* postcopy_done: copied in there, faults waited */
};

struct sink;
struct sink_ops {
	int (*round_begin)(struct sink *s, uint32_t round, bool final);
	int (*add_pages)(struct sink *s, uint32_t pid, uint64_t vaddr, uint64_t nr_pages,
			 const void *data);	/* NULL: zero pages; data pages are sent as they are */
	int (*add_file)(struct sink *s, const char *name, const void *data, size_t len);
	/* Blocks until the round is durable at the other end. */
	int (*round_end)(struct sink *s, struct round_stats *st);
	/*
	 * After the final round: wait for the destination's restore result.
	 * 0 when a report came (rep->ok says how the restore went), -errno if
	 * none could be had (-EOPNOTSUPP: local sink, nothing is restored).
	 */
	int (*wait_restore)(struct sink *s, struct restore_report *rep);
	/*
	 * Optional, between rounds only: tell the other end we are alive
	 * (remote: a ping, so the page server's idle deadline does not drop
	 * a session that legitimately waits for its next round). 0 or -errno.
	 */
	int (*keepalive)(struct sink *s);
	/*
	 * Optional, after wait_restore reported held: send COMMIT and wait for
	 * the verdict (@rep: ok+resumed, or not ok: the held copy was
	 * discarded). -errno: the verdict did not arrive (docs/handover.md).
	 */
	int (*commit)(struct sink *s, struct restore_report *rep);
	/* Optional: 0, or -ENOTCONN when the other end has visibly closed the link. */
	int (*alive)(struct sink *s);
	/*
	 * Post-copy, optional (sink->postcopy): @nr pages of @pid at @vaddr are
	 * REMOTE (inside a final round: the destination fetches them later).
	 */
	int (*add_remote)(struct sink *s, uint32_t pid, uint64_t vaddr, uint64_t nr_pages);
	/*
	 * Post-copy: from now on (the final round's pages sent) page requests
	 * are answered from @src, while waiting for the verdict too.
	 */
	void (*postcopy_source)(struct sink *s, struct pc_source *src);
	/*
	 * Post-copy, after restore_report.postcopy: push every REMOTE page,
	 * requests first, until postcopy_done. 0: every page is in there;
	 * -EREMOTEIO: the destination failed (sink->error); else -errno (the link).
	 */
	int (*postcopy_run)(struct sink *s);
	void (*close)(struct sink *s);
};

struct sink {
	const struct sink_ops *ops;
	struct sink_stats stats;
	char migration_id[72];
	/* last round a streaming restore at the destination has filled in; -1: none */
	int64_t prefilled_round;
	/* its final does not wait for the prefill (restore --lazy-fill): the lag costs no downtime */
	bool lazy_fill;
	/* asked for at open and taken by the page server: REMOTE pages may go (add_remote) */
	bool postcopy;
	uint32_t next_round;
	/* Why the last failing call failed (e.g. the page server's round_ack error). */
	char error[256];
};

/*
 * Connect, authenticate, say hello (resume @id if not NULL). Blocking; a
 * sender thread encrypts and sends while the caller reads and compresses.
 * Ignores SIGPIPE (a vanished peer is an error return, not a signal).
 */
int sink_remote_open(const char *host, const char *port, const struct tls_opts *tls,
		     const char *id, uint32_t root_pid, bool postcopy, struct sink **out);
/* Local image stack at DIR/<id>. */
int sink_local_open(const char *images_dir, const char *id, struct sink **out);

/*
 * Why this thread's last sink_*_open failed, in one line (e.g. "TLS session
 * with dst:7070 failed: tlsv1 alert unknown ca"). The sink code prints no
 * errors itself (only -v detail): callers report sink_open_error() or
 * sink->error, once.
 */
const char *sink_open_error(void);
void sink_set_open_error(const char *why);

#endif
