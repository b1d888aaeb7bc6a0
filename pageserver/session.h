/* SPDX-License-Identifier: MIT */
/*
 * Page server internals: one libuv loop does accept, TLS (memory BIOs) and
 * framing for every session; stack writes run on libuv's thread pool, one
 * at a time per session, in frame order. Reading stops while a session's
 * frame buffers are all queued for the disk (flow control), so memory per
 * session is fixed: NR_RXBUF frames + one decode buffer (+ one file).
 */
#ifndef FERRY_PS_SESSION_H
#define FERRY_PS_SESSION_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include <openssl/ssl.h>

#include "common/log.h"
#include "imgstack/writer.h"
#include "transport/frame.h"

#define NR_RXBUF		3		/* receive buffers per session */
/* A batch of small page frames (>= 256 KiB) or one large one, + the next frame. */
#define RXBUF_SIZE		(FRAME_MAX + (256u << 10))
#define MAX_SESSIONS		8		/* sessions past hello at once (RSS bound) */
#define MAX_PENDING		32		/* connections before hello, in all */
#define MAX_PENDING_PER_ADDR	4		/* ... from one source address */
#define PENDING_RX		(FRAME_HDR + FRAME_CTL_MAX)	/* rx before hello */
#define FILE_BUDGET		FILE_MAX	/* file bytes held by all sessions */
#define HANDSHAKE_TIMEOUT_MS	5000		/* connect to hello */
#define IDLE_TIMEOUT_MS		30000		/* no frame while we wait for the source */
#define STALL_MS		12000		/* silent this long: evictable when full */
#define PING_INTERVAL_MS	5000		/* while we work, so the source waits */
#define TICK_MS			1000		/* the session timer checks deadlines */
#define RESTORE_TIMEOUT_S	60		/* --restore-timeout default */
#define RESTORE_LINGER_MS	200		/* pipes of an exited restore */
#define PC_QUEUE_MAX		(8u << 20)	/* post-copy pages waiting for the restore's pipe */

struct session;
struct rchild;

struct server {
	uv_loop_t *loop;
	uv_tcp_t listener;
	uv_signal_t sig_int, sig_term;
	SSL_CTX *ssl_ctx;			/* NULL: --insecure */
	const char *images_dir;
	char restore_cmd[PATH_MAX];
	bool auto_dedup, no_restore, no_stream, once;
	bool no_lazy_fill;	/* restore --stream without --lazy-fill */
	bool stopping, listening;
	struct session *sessions;		/* until freed: busy ids */
	unsigned int nr_sessions;		/* in the list (closing ones too) */
	unsigned int nr_pending, nr_active;	/* not closing: before / after hello */
	unsigned int restore_timeout_s;
	unsigned int hold_timeout_s;		/* restore --hold-timeout */
	unsigned long next_sid;
	size_t file_bytes;			/* against FILE_BUDGET */
	int exit_code;				/* --once: how its session went */
	char inbuf[64 << 10];			/* socket reads land here, then in a BIO */
};

enum sess_state {
	S_HANDSHAKE,	/* TLS handshake */
	S_HELLO,	/* expect hello */
	S_OPENING,	/* opening the stack */
	S_IDLE,		/* expect round_begin */
	S_ROUND,	/* pages, file_head, round_end */
	S_FILE,		/* file_data until the file is whole */
	S_COMMITTING,	/* round_end queued, ack pending */
	S_RESTORING,	/* final round committed, restore running */
	S_HELD,		/* restored and held (restore_result held sent): expect commit */
	S_POSTCOPY,	/* it runs (restore_result postcopy sent): relay pages until done */
	S_DONE,		/* restore result sent: expect EOF */
};

enum work_kind { W_OPEN, W_BEGIN, W_PAGES, W_FILE, W_COMMIT, W_TEARDOWN };

/* One stack operation, run on the thread pool. */
struct ps_work {
	struct ps_work *next;
	enum work_kind kind;
	uint8_t *buf;		/* PAGES: page frames (pool buffer); FILE: file data */
	size_t len;		/* PAGES: bytes of frames; FILE: file size */
	char name[256];		/* FILE: file name; OPEN: migration id ("" = new) */
	uint32_t round;
	bool final;
	bool abort;		/* COMMIT: the round failed earlier, abort it */
	bool garbage;		/* PAGES: the peer sent undecodable data */
	int err;		/* result */
	struct round_stats st;
};

struct session {
	struct server *srv;
	struct session *next, *prev;
	unsigned long sid;
	char peer[80];
	char addr[64];		/* peer's IP address (per-address bound) */
	enum sess_state state;
	bool pending;		/* counted in nr_pending: no hello accepted yet */
	bool active;		/* counted in nr_active: holds a session slot */
	/* uv_now() times (ms): deadlines and stall eviction */
	uint64_t t_conn, last_rx, last_tx, restore_t0;

	uv_tcp_t tcp;
	uv_timer_t timer;
	int refs;		/* open handles + work in flight */
	bool closing;		/* dropped: no more socket I/O */
	bool reading;
	bool failed;		/* something went wrong (for --once) */
	bool completed;		/* final round committed, restore reported ok */
	bool wait_id;		/* hello waits for the last session of its id to end */
	unsigned int rounds_done;

	SSL *ssl;		/* NULL: --insecure */
	BIO *rbio;		/* bytes from the socket (ciphertext, or plain) */
	BIO *wbio;		/* TLS bytes for the socket */

	/*
	 * Receive buffer: page frames waiting to be handed to the disk as one
	 * work item (rx[0..rx_base)), then the frame being received at rx_base.
	 */
	uint8_t *rx;
	size_t rx_base, rx_len;
	unsigned int rx_batched;
	uint32_t rx_type, rx_flen;
	uint8_t *pool[NR_RXBUF];
	unsigned int nr_free;

	/* Stack operations, in frame order, one running at a time. */
	struct ps_work *q_head, *q_tail, *cur;
	uv_work_t work_req;

	/* Touched by the running work item only. */
	struct stack_writer *sw;
	bool w_round_open;
	uint8_t *scratch;	/* lz4 output */

	/* Migration and round, loop side. */
	char id[72];
	uint32_t next_round, round;
	bool final;
	int round_err;
	char round_msg[200];
	uint64_t pages_rcvd;
	uint64_t round_t0;

	/* File being received. */
	char fname[256];
	uint8_t *fbuf;
	uint64_t fsize, fgot;
	bool fdiscard;

	/* The restore command: streaming since the first round, or plain at the end. */
	struct rchild *child;
	bool stream_broken;
	uint32_t prefilled;	/* last round the stream restore reported filled */

	/* Post-copy (docs/handover.md): asked for at hello, taken if we restore by streaming. */
	bool postcopy;
	size_t pc_queued;	/* page frame bytes written to the restore, not taken yet */
	uint64_t pc_requests, pc_relayed;	/* page_request frames sent; pages relayed */
};

#define sess_log(s, lvl, fmt, ...) \
	log_msg(lvl, "session %lu (%s): " fmt, (s)->sid, (s)->peer, ##__VA_ARGS__)
#define sess_err(s, fmt, ...)	sess_log(s, LOG_ERR, fmt, ##__VA_ARGS__)
#define sess_warn(s, fmt, ...)	sess_log(s, LOG_WARN, fmt, ##__VA_ARGS__)
#define sess_info(s, fmt, ...)	sess_log(s, LOG_INFO, fmt, ##__VA_ARGS__)
#define sess_debug(s, fmt, ...)	sess_log(s, LOG_DEBUG, fmt, ##__VA_ARGS__)

/* server.c: listening, accepting, a session's lifetime */
int server_listen(struct server *srv, const char *host, const char *port);
void server_stop(struct server *srv, const char *why);
void session_get(struct session *s);
void session_put(struct session *s);
void session_drop(struct session *s, bool failed, const char *why);
/* Drop the session for a protocol error (@fmt takes one string); -EPROTO. */
int sess_proto(struct session *s, const char *fmt, const char *arg);

/* Take a session slot at hello (evicting a stalled session if all are taken). */
int session_take_slot(struct session *s, char *why, size_t len);

/* session_io.c: socket, TLS BIOs, frame assembly, receive buffers */
int session_pending_rx(struct session *s);
int session_pool_init(struct session *s);
void session_pool_put(struct session *s, uint8_t *buf);
/* Hand the batched page frames to the disk as one work item. */
void session_flush_batch(struct session *s);
int session_send_msg(struct session *s, uint32_t type, const ProtobufCMessage *msg);
int session_send_ping(struct session *s);
/* The server itself is busy (the source waits): no idle deadline, pings go out. */
bool session_working(const struct session *s);
/* Read whatever there is, dispatch whole frames, send what TLS produced. */
void session_pump(struct session *s);
void session_update_reading(struct session *s);

/* session.c: frame handlers and work results */
int session_dispatch(struct session *s);
int session_open_stack(struct session *s);
/* First failure of a round wins; the rest of the round is read and dropped. */
void session_round_fail(struct session *s, int err, const char *what);

/* session_work.c */
struct ps_work *work_new(enum work_kind kind);
void work_free(struct session *s, struct ps_work *w);
void session_queue(struct session *s, struct ps_work *w);
void session_queue_discard(struct session *s);
/* Loop side: a work item finished (session.c). */
void session_work_done(struct session *s, struct ps_work *w);

/* session_restore.c */
void session_restore_round(struct session *s);
void session_restore_start(struct session *s);
void session_restore_abort(struct session *s);
/* The final restore ran past --restore-timeout: kill it, report the failure. */
void session_restore_expire(struct session *s);
/*
 * pageserver/netaddr.c: a restore that died by a signal while it held the
 * tree could not take the service address of migrate --move-address off
 * again (docs/network.md): do it for it.
 */
void session_netaddr_drop(struct session *s);
/* COMMIT from the source: let the held restore run. */
int session_restore_commit(struct session *s);
/* Post-copy: a page frame from the source (rx, checked) for the restore's --postcopy-fd. */
int session_restore_relay(struct session *s, const struct frame *f);
/* Post-copy: a session that reads page frames while the final restore runs. */
bool session_pc_relaying(const struct session *s);

#endif
