// SPDX-License-Identifier: MIT
/* Page server <-> restore control lines: formats, parses, line cutting, hostile input. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/restore_ctl.h"

/* Feed @s byte by byte; the last verdict, the line in @l. */
static enum rctl_feed feed(struct rctl_line *l, const char *s, size_t n)
{
	enum rctl_feed got = RCTL_MORE;
	size_t i;

	for (i = 0; i < n; i++)
		got = rctl_line_feed(l, s[i]);
	return got;
}

Test(restore_ctl, cmd_round_trip)
{
	static const struct { enum rctl_cmd cmd; uint32_t round; const char *text; } t[] = {
		{ RCTL_ROUND, 1, "round 1\n" },
		{ RCTL_ROUND, 4294967295u, "round 4294967295\n" },
		{ RCTL_FINAL, 7, "final 7\n" },
		{ RCTL_ABORT, 0, "abort\n" },
	};
	char buf[RCTL_LINE_MAX];
	enum rctl_cmd cmd;
	uint32_t round;
	size_t i;
	int n;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		n = rctl_format_cmd(buf, sizeof(buf), t[i].cmd, t[i].round);
		cr_assert_eq(n, (int)strlen(t[i].text));
		cr_assert_str_eq(buf, t[i].text);
		buf[n - 1] = 0;		/* the reader drops the '\n' */
		cr_assert_eq(rctl_parse_cmd(buf, &cmd, &round), 0, "%s", buf);
		cr_assert_eq(cmd, t[i].cmd);
		cr_assert_eq(round, t[i].round);
	}
}

Test(restore_ctl, cmd_format_refuses)
{
	char buf[8];

	cr_assert_eq(rctl_format_cmd(buf, sizeof(buf), RCTL_ROUND, 0), -EINVAL);
	cr_assert_eq(rctl_format_cmd(buf, sizeof(buf), RCTL_FINAL, 0), -EINVAL);
	cr_assert_eq(rctl_format_cmd(buf, sizeof(buf), (enum rctl_cmd)42, 1), -EINVAL);
	cr_assert_eq(rctl_format_cmd(buf, sizeof(buf), RCTL_ROUND, 123456), -ENOSPC);
	cr_assert_eq(rctl_format_cmd(buf, 3, RCTL_ABORT, 0), -ENOSPC);
}

Test(restore_ctl, cmd_parse_hostile)
{
	static const char *const bad[] = {
		"", " ", "round", "round ", "round  1", " round 1", "round 1 ", "round 1x",
		"round -1", "round +1", "round 0", "round 00", "round 0x10", "round 1.5",
		"round 4294967296", "round 99999999999", "round 00000000001",
		"round\t1", "Round 1", "rounds 1", "final", "final x", "final 18446744073709551617",
		"abort ", "abort 1", "aborted", "abortXYZ", "restore: prefilled round 1",
		"prefilled 1", "failed x",
	};
	enum rctl_cmd cmd;
	uint32_t round;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(rctl_parse_cmd(bad[i], &cmd, &round), -EINVAL, "accepted \"%s\"", bad[i]);
	/* leading zeros are fine while the number stays within ten digits */
	cr_assert_eq(rctl_parse_cmd("round 0000000012", &cmd, &round), 0);
	cr_assert_eq(round, 12);
}

Test(restore_ctl, status_round_trip)
{
	struct rctl_status st = { .kind = RCTL_PREFILLED, .round = 3 }, out;
	char buf[RCTL_LINE_MAX + 1];
	int n;

	n = rctl_format_status(buf, sizeof(buf), &st);
	cr_assert_str_eq(buf, "prefilled 3\n");
	buf[n - 1] = 0;
	cr_assert_eq(rctl_parse_status(buf, &out), 0);
	cr_assert_eq(out.kind, RCTL_PREFILLED);
	cr_assert_eq(out.round, 3);

	st.kind = RCTL_UNFILLED;
	n = rctl_format_status(buf, sizeof(buf), &st);
	cr_assert_str_eq(buf, "unfilled 3\n");
	buf[n - 1] = 0;
	cr_assert_eq(rctl_parse_status(buf, &out), 0);
	cr_assert_eq(out.kind, RCTL_UNFILLED);
	cr_assert_eq(out.round, 3);
	cr_assert_neq(rctl_parse_status("unfilled 0", &out), 0);
	cr_assert_neq(rctl_parse_status("unfilled", &out), 0);
	st.round = 0;
	cr_assert_eq(rctl_format_status(buf, sizeof(buf), &st), -EINVAL);

	st.kind = RCTL_FAILED;
	strcpy(st.reason, "pid 1000 is taken on this host");
	n = rctl_format_status(buf, sizeof(buf), &st);
	cr_assert_str_eq(buf, "failed pid 1000 is taken on this host\n");
	buf[n - 1] = 0;
	cr_assert_eq(rctl_parse_status(buf, &out), 0);
	cr_assert_eq(out.kind, RCTL_FAILED);
	cr_assert_str_eq(out.reason, "pid 1000 is taken on this host");
}

Test(restore_ctl, status_reason_cut_and_cleaned)
{
	struct rctl_status st = { .kind = RCTL_FAILED }, out;
	char buf[RCTL_LINE_MAX + 64];
	int n;

	/* a newline in a reason must not start a second line */
	strcpy(st.reason, "two\nlines\tand \x1b[31mcolour\x7f");
	n = rctl_format_status(buf, sizeof(buf), &st);
	cr_assert_str_eq(buf, "failed two?lines?and ?[31mcolour?\n");
	cr_assert_eq(n, (int)strlen(buf));

	/* the longest reason is cut to one line of RCTL_LINE_MAX bytes */
	memset(st.reason, 'r', sizeof(st.reason) - 1);
	st.reason[sizeof(st.reason) - 1] = 0;
	n = rctl_format_status(buf, sizeof(buf), &st);
	cr_assert_eq(n, RCTL_LINE_MAX);
	cr_assert_eq(buf[n - 1], '\n');
	cr_assert_eq(memchr(buf, '\n', n - 1), NULL);
	buf[n - 1] = 0;
	cr_assert_eq(rctl_parse_status(buf, &out), 0);
	cr_assert_eq(strlen(out.reason), RCTL_LINE_MAX - 1 - strlen("failed "));

	/* and to a small buffer */
	n = rctl_format_status(buf, 12, &st);
	cr_assert_eq(n, 11);
	cr_assert_str_eq(buf, "failed rrr\n");
	cr_assert_eq(rctl_format_status(buf, 8, &st), -ENOSPC);

	st.reason[0] = 0;
	cr_assert_eq(rctl_format_status(buf, sizeof(buf), &st), -EINVAL);
	st.kind = RCTL_PREFILLED;
	st.round = 0;
	cr_assert_eq(rctl_format_status(buf, sizeof(buf), &st), -EINVAL);
}

Test(restore_ctl, status_parse_hostile)
{
	static const char *const bad[] = {
		"", "prefilled", "prefilled ", "prefilled 0", "prefilled -3", "prefilled 3 4",
		"prefilled 4294967296", "prefilled 12345678901", "prefilled x",
		"failed", "failed ", "failedx", "restore: prefilled round 2", "round 1",
		"final 2", "abort", "done",
	};
	struct rctl_status st;
	char *huge;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(rctl_parse_status(bad[i], &st), -EINVAL, "accepted \"%s\"", bad[i]);
	/* a reason longer than any line is refused, not overrun */
	huge = malloc(4 * RCTL_LINE_MAX);
	cr_assert(huge);
	memset(huge, 'x', 4 * RCTL_LINE_MAX - 1);
	huge[4 * RCTL_LINE_MAX - 1] = 0;
	memcpy(huge, "failed ", 7);
	cr_assert_eq(rctl_parse_status(huge, &st), -EINVAL);
	free(huge);
}

Test(restore_ctl, line_cutting)
{
	struct rctl_line l = { 0 };
	static const char in[] = "round 1\nfinal 2\n\npartial";

	cr_assert_eq(feed(&l, in, 8), RCTL_LINE);
	cr_assert_str_eq(l.buf, "round 1");
	cr_assert_eq(feed(&l, in + 8, 8), RCTL_LINE);
	cr_assert_str_eq(l.buf, "final 2");
	cr_assert_eq(feed(&l, in + 16, 1), RCTL_LINE);
	cr_assert_str_eq(l.buf, "");
	/* no '\n' yet: nothing, however long it waits */
	cr_assert_eq(feed(&l, in + 17, strlen(in + 17)), RCTL_MORE);
}

Test(restore_ctl, line_overlong_dropped_whole)
{
	struct rctl_line l = { 0 };
	enum rctl_cmd cmd;
	uint32_t round;
	char *big = malloc(3 * RCTL_LINE_MAX);
	size_t i, n;

	/*
	 * A line just within the limit passes; one byte more is bad as a whole:
	 * its tail ("abort") must not come out as a command of its own.
	 */
	cr_assert(big);
	memset(big, 'a', RCTL_LINE_MAX - 1);
	big[RCTL_LINE_MAX - 1] = '\n';
	cr_assert_eq(feed(&l, big, RCTL_LINE_MAX), RCTL_LINE);
	cr_assert_eq(l.len, RCTL_LINE_MAX - 1);

	n = 3 * RCTL_LINE_MAX - 6;
	memset(big, 'x', n);
	memcpy(big + n - 6, "abort\n", 6);
	for (i = 0; i + 1 < n; i++)
		cr_assert_eq(rctl_line_feed(&l, big[i]), RCTL_MORE);
	cr_assert_eq(rctl_line_feed(&l, '\n'), RCTL_BAD);
	cr_assert_eq(strlen(l.buf), RCTL_LINE_MAX - 1);
	/* the next line is read normally */
	cr_assert_eq(feed(&l, "abort\n", 6), RCTL_LINE);
	cr_assert_eq(rctl_parse_cmd(l.buf, &cmd, &round), 0);
	cr_assert_eq(cmd, RCTL_ABORT);
	free(big);
}

Test(restore_ctl, line_with_nul_is_bad)
{
	struct rctl_line l = { 0 };

	/* "final 3\0garbage" must not pass as "final 3" */
	cr_assert_eq(feed(&l, "final 3\0garbage\n", 16), RCTL_BAD);
	cr_assert_eq(feed(&l, "final 3\n", 8), RCTL_LINE);
}

Test(restore_ctl, send_status_writes_one_line)
{
	struct rctl_status st = { .kind = RCTL_PREFILLED, .round = 9 };
	char buf[64];
	int p[2];
	ssize_t n;

	cr_assert_eq(rctl_send_status(-1, &st), 0);	/* no status fd: nothing */
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(rctl_send_status(p[1], &st), 0);
	close(p[1]);
	n = read(p[0], buf, sizeof(buf) - 1);
	cr_assert_eq(n, 12);
	buf[n] = 0;
	cr_assert_str_eq(buf, "prefilled 9\n");
	close(p[0]);
}

/* The hand-over words (docs/handover.md): resume, held, resumed. */
Test(restore_ctl, handover_words)
{
	static const char *const bad_cmd[] = {
		"resume ", "resume 1", "resumed", "Resume", " resume", "held", "resum",
	};
	static const char *const bad_st[] = {
		"held ", "held 1", "Held", "resumed ", "resumed 2", "resume", "hold",
		"filling ", "filling 3", "fill", "Filling",
	};
	struct rctl_status st = { .kind = RCTL_HELD }, out;
	char buf[RCTL_LINE_MAX + 1];
	enum rctl_cmd cmd;
	uint32_t round = 9;
	size_t i;
	int n;

	n = rctl_format_cmd(buf, sizeof(buf), RCTL_RESUME, 0);
	cr_assert_str_eq(buf, "resume\n");
	buf[n - 1] = 0;
	cr_assert_eq(rctl_parse_cmd(buf, &cmd, &round), 0);
	cr_assert_eq(cmd, RCTL_RESUME);
	cr_assert_eq(round, 0);
	cr_assert_eq(rctl_format_cmd(buf, 7, RCTL_RESUME, 0), -ENOSPC);
	for (i = 0; i < sizeof(bad_cmd) / sizeof(bad_cmd[0]); i++)
		cr_expect_eq(rctl_parse_cmd(bad_cmd[i], &cmd, &round), -EINVAL, "accepted \"%s\"",
			     bad_cmd[i]);

	n = rctl_format_status(buf, sizeof(buf), &st);
	cr_assert_str_eq(buf, "held\n");
	buf[n - 1] = 0;
	cr_assert_eq(rctl_parse_status(buf, &out), 0);
	cr_assert_eq(out.kind, RCTL_HELD);
	st.kind = RCTL_RESUMED;
	n = rctl_format_status(buf, sizeof(buf), &st);
	cr_assert_str_eq(buf, "resumed\n");
	buf[n - 1] = 0;
	cr_assert_eq(rctl_parse_status(buf, &out), 0);
	cr_assert_eq(out.kind, RCTL_RESUMED);
	cr_assert_eq(rctl_format_status(buf, 5, &st), -ENOSPC);
	/* the lazy fill goes on after resumed */
	st.kind = RCTL_FILLING;
	n = rctl_format_status(buf, sizeof(buf), &st);
	cr_assert_str_eq(buf, "filling\n");
	buf[n - 1] = 0;
	cr_assert_eq(rctl_parse_status(buf, &out), 0);
	cr_assert_eq(out.kind, RCTL_FILLING);
	st.kind = RCTL_RESUMED;
	for (i = 0; i < sizeof(bad_st) / sizeof(bad_st[0]); i++)
		cr_expect_eq(rctl_parse_status(bad_st[i], &out), -EINVAL, "accepted \"%s\"",
			     bad_st[i]);

	/* a discarded hold is an ordinary failure line */
	st.kind = RCTL_FAILED;
	strcpy(st.reason, "discarded: no resume within 30 s");
	n = rctl_format_status(buf, sizeof(buf), &st);
	cr_assert_str_eq(buf, "failed discarded: no resume within 30 s\n");
}

/* Post-copy: "fetch PID VADDR NR" and "postcopy-done PAGES FAULTS" (proto/restore_ctl.h). */
Test(restore_ctl, postcopy_status_round_trip)
{
	struct rctl_status st = { .kind = RCTL_FETCH, .pid = 4242, .vaddr = 0x7f0000001000ULL,
				  .nr = 256 }, out;
	char buf[RCTL_LINE_MAX + 1];
	int n;

	n = rctl_format_status(buf, sizeof(buf), &st);
	cr_assert_str_eq(buf, "fetch 4242 139637976731648 256\n");
	buf[n - 1] = 0;
	cr_assert_eq(rctl_parse_status(buf, &out), 0);
	cr_assert_eq(out.kind, RCTL_FETCH);
	cr_assert_eq(out.pid, 4242);
	cr_assert_eq(out.vaddr, 0x7f0000001000ULL);
	cr_assert_eq(out.nr, 256);

	st = (struct rctl_status){ .kind = RCTL_POSTCOPY_DONE, .pages = 16384, .faults = 0 };
	n = rctl_format_status(buf, sizeof(buf), &st);
	cr_assert_str_eq(buf, "postcopy-done 16384 0\n");
	buf[n - 1] = 0;
	cr_assert_eq(rctl_parse_status(buf, &out), 0);
	cr_assert_eq(out.kind, RCTL_POSTCOPY_DONE);
	cr_assert_eq(out.pages, 16384);
	cr_assert_eq(out.faults, 0);

	/* what could not be parsed back is not written */
	st = (struct rctl_status){ .kind = RCTL_FETCH, .pid = 0, .vaddr = 4096, .nr = 1 };
	cr_assert_eq(rctl_format_status(buf, sizeof(buf), &st), -EINVAL);
	st.pid = 1;
	st.vaddr = 4097;
	cr_assert_eq(rctl_format_status(buf, sizeof(buf), &st), -EINVAL);
	st.vaddr = 4096;
	st.nr = 0;
	cr_assert_eq(rctl_format_status(buf, sizeof(buf), &st), -EINVAL);
	st.nr = RCTL_FETCH_MAX + 1;
	cr_assert_eq(rctl_format_status(buf, sizeof(buf), &st), -EINVAL);
	st.nr = 1;
	st.vaddr = UINT64_MAX & ~4095ULL;
	cr_assert_eq(rctl_format_status(buf, sizeof(buf), &st), -EINVAL);
	st = (struct rctl_status){ .kind = RCTL_POSTCOPY_DONE, .pages = UINT64_MAX };
	cr_assert_eq(rctl_format_status(buf, sizeof(buf), &st), -EINVAL);
}

Test(restore_ctl, postcopy_status_parse_hostile)
{
	static const char *const bad[] = {
		"fetch", "fetch ", "fetch 1", "fetch 1 4096", "fetch 1 4096 ", "fetch 1 4096 1 ",
		"fetch 1 4096 1 1", "fetch 0 4096 1", "fetch 1 4097 1", "fetch 1 4096 0",
		"fetch 1 4096 257", "fetch 4294967296 4096 1", "fetch -1 4096 1",
		"fetch 1 -4096 1", "fetch 1 +4096 1", "fetch 1  4096 1", " fetch 1 4096 1",
		"fetch 1 04096 1", "fetch 1 0x1000 1", "fetch 1 4096 01",
		"fetch 1 18446744073709547520 1", "fetch 1 9223372036854771712 2",
		"fetch 1 99999999999999999999 1", "fetch 1 4096 1\t", "fetchx 1 4096 1",
		"postcopy-done", "postcopy-done ", "postcopy-done 1", "postcopy-done 1 ",
		"postcopy-done 1 2 3", "postcopy-done -1 2", "postcopy-done 1 x",
		"postcopy-done 9223372036854775808 0", "postcopy-done 00 0", "postcopy-done  1 2",
		"postcopy-donex 1 2",
	};
	struct rctl_status st;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(rctl_parse_status(bad[i], &st), -EINVAL, "accepted \"%s\"", bad[i]);
	/* the edges that are fine */
	cr_assert_eq(rctl_parse_status("fetch 4294967295 0 1", &st), 0);
	cr_assert_eq(st.pid, UINT32_MAX);
	cr_assert_eq(st.vaddr, 0);
	cr_assert_eq(rctl_parse_status("fetch 1 9223372036853723136 256", &st), 0);
	cr_assert_eq(st.vaddr + 256 * 4096ULL, UINT64_MAX >> 1 & ~4095ULL);
	cr_assert_eq(rctl_parse_status("postcopy-done 0 0", &st), 0);
	cr_assert_eq(rctl_parse_status("postcopy-done 9223372036854775807 7", &st), 0);
	cr_assert_eq(st.pages, UINT64_MAX >> 1);
}
