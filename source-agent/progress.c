// SPDX-License-Identifier: MIT
/*
 * The live progress line of `migrate` on a terminal. The sink's ops are
 * wrapped: every add_pages counts, and at most every 100 ms the line is
 * drawn again. At the round's end it is drawn once more with the round's
 * time, then erased (the round's own line follows on stdout) or, when
 * stdout is not the terminal, left there as the round's last state.
 */
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/progress.h"

#define DRAW_EVERY_US	100000

static struct progress {
	const struct sink_ops *orig;
	struct sink_ops ops;
	uint32_t round;
	bool final, drawn, keep;
	uint64_t expect, pages, t0, last_draw, pred_us;
} pg;

static void draw(bool last)
{
	uint64_t now = now_us(), dt = now - pg.t0;
	double mibs = dt ? pg.pages * (double)PAGE_SIZE / 1048576.0 / (dt / 1e6) : 0;
	uint64_t left = pg.expect > pg.pages ? pg.expect - pg.pages : 0;

	if (!last && now - pg.last_draw < DRAW_EVERY_US)
		return;
	pg.last_draw = now;
	/* a session daemon keeps its terminal only until it is started */
	if (!isatty(STDERR_FILENO))
		return;
	fprintf(stderr, "\r\033[Kround %u%s: %llu of %llu pages, %.1f MiB/s", pg.round,
		pg.final ? " (final)" : "", (unsigned long long)pg.pages,
		(unsigned long long)(pg.expect > pg.pages ? pg.expect : pg.pages), mibs);
	if (!last && mibs > 0 && left)
		fprintf(stderr, ", %.1f s left", left * (double)PAGE_SIZE / 1048576.0 / mibs);
	else if (last)
		fprintf(stderr, ", %.1f s", dt / 1e6);
	if (pg.pred_us)
		fprintf(stderr, ", downtime predicted %.0f ms", pg.pred_us / 1e3);
	pg.drawn = true;
}

/* Erase the line, or end it (stdout elsewhere: the line is all the terminal shows). */
static void finish(void)
{
	if ((pg.drawn || pg.pages) && isatty(STDERR_FILENO)) {
		draw(true);
		fputs(pg.keep ? "\n" : "\r\033[K", stderr);
	}
	pg.drawn = false;
	pg.pages = 0;
}

static int pg_round_begin(struct sink *s, uint32_t round, bool final)
{
	pg.round = round;
	pg.final = final;
	pg.pages = 0;
	pg.t0 = now_us();
	pg.last_draw = pg.t0;	/* nothing for a round shorter than that */
	return pg.orig->round_begin(s, round, final);
}

static int pg_add_pages(struct sink *s, uint32_t pid, uint64_t vaddr, uint64_t nr_pages,
			const void *data)
{
	int ret = pg.orig->add_pages(s, pid, vaddr, nr_pages, data);

	if (!ret && data) {
		pg.pages += nr_pages;
		draw(false);
	}
	return ret;
}

static int pg_round_end(struct sink *s, struct round_stats *st)
{
	int ret = pg.orig->round_end(s, st);

	finish();
	pg.expect = 0;
	return ret;
}

static void pg_close(struct sink *s)
{
	finish();
	s->ops = pg.orig;
	pg.orig = NULL;
	s->ops->close(s);
}

void progress_attach(struct sink *s)
{
	if (!s || pg.orig || !isatty(STDERR_FILENO) || log_enabled(LOG_INFO))
		return;
	pg.orig = s->ops;
	pg.ops = *s->ops;
	pg.ops.round_begin = pg_round_begin;
	pg.ops.add_pages = pg_add_pages;
	pg.ops.round_end = pg_round_end;
	pg.ops.close = pg_close;
	pg.keep = !isatty(STDOUT_FILENO);
	s->ops = &pg.ops;
}

void progress_expect(uint64_t pages, uint64_t pred_us)
{
	pg.expect = pages;
	pg.pred_us = pred_us;
}
