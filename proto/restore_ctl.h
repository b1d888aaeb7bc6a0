/* SPDX-License-Identifier: MIT */
/*
 * The control protocol between the page server and the restore command it
 * runs (docs/restore-protocol.md). Text lines, each ended by '\n', at most
 * RCTL_LINE_MAX bytes with the '\n':
 *
 * - commands, page server -> `restore --stream`, on its stdin:
 *	round K		pre-copy round K is committed: prefill it
 *	final N		final round N is committed: restore it, then exit
 *	abort		the migration is abandoned: drop the prepared process
 *	resume		--hold: the source committed, let the held tree run
 *   (EOF on stdin counts as abort.)
 * - status, restore -> page server, on the fd named by --status-fd:
 *	prefilled K	round K is in the prepared process's memory
 *	unfilled K	round K could not be prefilled: no more prefilling, the
 *			final round restores everything (the source stops
 *			waiting for prefills)
 *	held		--hold: the tree is restored and kept stopped
 *	resumed		--hold: the tree runs (just before exit 0)
 *	failed REASON	the restore failed (just before a non-zero exit)
 *	fetch PID VADDR NR
 *			--postcopy-fd: a thread of the tree waits on one of NR
 *			REMOTE pages of saved pid PID at VADDR: ask the source first
 *	postcopy-done PAGES FAULTS
 *			--postcopy-fd: every REMOTE page is in (PAGES copied, FAULTS
 *			of them waited for); the source may go
 *
 * K and N are decimal round numbers, 1 to UINT32_MAX, digits only; PID
 * 1 to UINT32_MAX, VADDR a page-aligned (4096) address below 2^63, NR 1 to
 * 256, PAGES and FAULTS 0 to 2^63: decimal digits only too.
 * With --postcopy-fd N the page server writes the REMOTE pages to fd N as
 * wire "pages" frames (docs/wire-protocol.md; raw, lz4 or zero), as the
 * source sends them.
 * stderr carries log lines for people only; nothing parses it.
 */
#ifndef FERRY_RESTORE_CTL_H
#define FERRY_RESTORE_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RCTL_LINE_MAX		512	/* bytes in a line, '\n' included */

#define RCTL_CMD_ROUND		"round"
#define RCTL_CMD_FINAL		"final"
#define RCTL_CMD_ABORT		"abort"
#define RCTL_CMD_RESUME		"resume"
#define RCTL_ST_PREFILLED	"prefilled"
#define RCTL_ST_UNFILLED	"unfilled"
#define RCTL_ST_FAILED		"failed"
#define RCTL_ST_HELD		"held"
#define RCTL_ST_RESUMED		"resumed"
#define RCTL_ST_FILLING		"filling"
#define RCTL_ST_FETCH		"fetch"
#define RCTL_ST_POSTCOPY_DONE	"postcopy-done"
#define RCTL_FETCH_MAX		256	/* pages in one fetch (a wire page batch) */

/* The option that names the status fd: restore --stream DIR --status-fd N. */
#define RCTL_STATUS_OPT		"--status-fd"
/* Hand-over mode (docs/handover.md): keep the restored tree stopped until "resume". */
#define RCTL_HOLD_OPT		"--hold"
#define RCTL_HOLD_TIMEOUT_OPT	"--hold-timeout"
#define RCTL_HOLD_TIMEOUT_S	30	/* default: no word from the page server this long */
/* A final behind the prefill does not wait for it (dest-agent/lazy.c). */
#define RCTL_LAZY_OPT		"--lazy-fill"
/* Post-copy (docs/handover.md): REMOTE pages come as page frames on this fd. */
#define RCTL_POSTCOPY_OPT	"--postcopy-fd"

enum rctl_cmd {
	RCTL_ROUND,
	RCTL_FINAL,
	RCTL_ABORT,
	RCTL_RESUME,
};

enum rctl_status_kind {
	RCTL_PREFILLED,
	RCTL_UNFILLED,
	RCTL_FAILED,
	RCTL_HELD,
	RCTL_RESUMED,
	RCTL_FILLING,	/* after resumed: it runs, the lazy fill goes on (exit: its end) */
	RCTL_FETCH,	/* post-copy: pages a thread waits on */
	RCTL_POSTCOPY_DONE,	/* post-copy: every REMOTE page is in */
};

struct rctl_status {
	enum rctl_status_kind kind;
	uint32_t round;				/* PREFILLED, UNFILLED */
	uint32_t pid, nr;			/* FETCH */
	uint64_t vaddr;				/* FETCH */
	uint64_t pages, faults;			/* POSTCOPY_DONE */
	char reason[RCTL_LINE_MAX];		/* FAILED */
};

/*
 * A command line, '\n' included, into @buf (@round unused for abort, resume).
 * Length, or -EINVAL (round 0, unknown command), -ENOSPC (@buf too small).
 */
int rctl_format_cmd(char *buf, size_t len, enum rctl_cmd cmd, uint32_t round);
/* One command line (without its '\n'): 0, or -EINVAL if it is not exactly one. */
int rctl_parse_cmd(const char *line, enum rctl_cmd *cmd, uint32_t *round);

/*
 * A status line, '\n' included, into @buf; a reason is cut to fit the line
 * and its control characters become '?'. Length, -EINVAL or -ENOSPC.
 */
int rctl_format_status(char *buf, size_t len, const struct rctl_status *st);
/* One status line (without its '\n'): 0, or -EINVAL if it is not exactly one. */
int rctl_parse_status(const char *line, struct rctl_status *st);
/* Format and write a status line to @fd (whole, EINTR retried); fd < 0: nothing. 0 or -errno. */
int rctl_send_status(int fd, const struct rctl_status *st);

/* Cutting a byte stream into lines, one byte at a time (both sides). */
struct rctl_line {
	char buf[RCTL_LINE_MAX];		/* the line, NUL-terminated, no '\n' */
	size_t len;
	bool bad;				/* it outgrew buf (the start is kept) or holds a NUL */
	bool done;				/* buf holds a whole line */
};

enum rctl_feed {
	RCTL_MORE,		/* no whole line yet */
	RCTL_LINE,		/* a whole line is in l->buf */
	RCTL_BAD,		/* a line ended that is too long or holds a NUL: ignore it */
};

enum rctl_feed rctl_line_feed(struct rctl_line *l, char c);

#endif
