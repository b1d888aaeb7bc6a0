// SPDX-License-Identifier: MIT
/* Page server <-> restore control lines: format, parse, cut a stream into lines. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proto/restore_ctl.h"

/* "WORD" followed by one space (rest in *@arg) or by nothing (*@arg = NULL). */
static bool word_is(const char *line, const char *word, const char **arg)
{
	size_t n = strlen(word);

	if (strncmp(line, word, n))
		return false;
	if (!line[n]) {
		*arg = NULL;
		return true;
	}
	if (line[n] != ' ')
		return false;
	*arg = line + n + 1;
	return true;
}

/* A round number: decimal digits only, 1..UINT32_MAX, nothing after it. */
static int parse_round(const char *s, uint32_t *round)
{
	uint64_t v = 0;
	size_t i;

	if (!s || !*s)
		return -EINVAL;
	for (i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 10)
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (!v || v > UINT32_MAX)
		return -EINVAL;
	*round = v;
	return 0;
}

/* Decimal digits only (no sign, no space), at most @max; one leading 0 only for 0 itself. */
static int parse_u64(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (!n || n > 19 || (n > 1 && s[0] == '0'))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');	/* 19 digits never wrap */
	}
	if (v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Exactly @nr numbers separated by one space each, nothing else. */
static int parse_nums(const char *s, uint64_t *v, const uint64_t *max, size_t nr)
{
	size_t i;

	for (i = 0; i < nr; i++) {
		const char *sp = s ? strchr(s, ' ') : NULL;
		size_t n;

		if (!s)
			return -EINVAL;
		n = sp ? (size_t)(sp - s) : strlen(s);
		if ((sp != NULL) != (i + 1 < nr) || parse_u64(s, n, max[i], &v[i]))
			return -EINVAL;
		s = sp ? sp + 1 : NULL;
	}
	return 0;
}

#define RCTL_U63	(UINT64_MAX >> 1)
#define RCTL_PAGE	4096u

static int parse_fetch(const char *arg, struct rctl_status *st)
{
	static const uint64_t max[] = { UINT32_MAX, RCTL_U63, RCTL_FETCH_MAX };
	uint64_t v[3];

	if (parse_nums(arg, v, max, 3) || !v[0] || v[1] % RCTL_PAGE || !v[2] ||
	    v[1] + v[2] * RCTL_PAGE > RCTL_U63)
		return -EINVAL;
	st->pid = v[0];
	st->vaddr = v[1];
	st->nr = v[2];
	return 0;
}

static int parse_pc_done(const char *arg, struct rctl_status *st)
{
	static const uint64_t max[] = { RCTL_U63, RCTL_U63 };
	uint64_t v[2];

	if (parse_nums(arg, v, max, 2))
		return -EINVAL;
	st->pages = v[0];
	st->faults = v[1];
	return 0;
}

static int put_line(size_t len, int n)
{
	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= len || n >= RCTL_LINE_MAX)
		return -ENOSPC;
	return n;
}

int rctl_format_cmd(char *buf, size_t len, enum rctl_cmd cmd, uint32_t round)
{
	switch (cmd) {
	case RCTL_ROUND:
	case RCTL_FINAL:
		if (!round)
			return -EINVAL;
		return put_line(len, snprintf(buf, len, "%s %u\n",
				cmd == RCTL_ROUND ? RCTL_CMD_ROUND : RCTL_CMD_FINAL, round));
	case RCTL_ABORT:
		return put_line(len, snprintf(buf, len, "%s\n", RCTL_CMD_ABORT));
	case RCTL_RESUME:
		return put_line(len, snprintf(buf, len, "%s\n", RCTL_CMD_RESUME));
	}
	return -EINVAL;
}

int rctl_parse_cmd(const char *line, enum rctl_cmd *cmd, uint32_t *round)
{
	const char *arg;

	if (word_is(line, RCTL_CMD_ROUND, &arg)) {
		*cmd = RCTL_ROUND;
		return parse_round(arg, round);
	}
	if (word_is(line, RCTL_CMD_FINAL, &arg)) {
		*cmd = RCTL_FINAL;
		return parse_round(arg, round);
	}
	if (word_is(line, RCTL_CMD_ABORT, &arg) && !arg) {
		*cmd = RCTL_ABORT;
		*round = 0;
		return 0;
	}
	if (word_is(line, RCTL_CMD_RESUME, &arg) && !arg) {
		*cmd = RCTL_RESUME;
		*round = 0;
		return 0;
	}
	return -EINVAL;
}

int rctl_format_status(char *buf, size_t len, const struct rctl_status *st)
{
	size_t room, i, n;
	int head;

	switch (st->kind) {
	case RCTL_PREFILLED:
		if (!st->round)
			return -EINVAL;
		return put_line(len, snprintf(buf, len, RCTL_ST_PREFILLED " %u\n", st->round));
	case RCTL_UNFILLED:
		if (!st->round)
			return -EINVAL;
		return put_line(len, snprintf(buf, len, RCTL_ST_UNFILLED " %u\n", st->round));
	case RCTL_HELD:
		return put_line(len, snprintf(buf, len, RCTL_ST_HELD "\n"));
	case RCTL_RESUMED:
		return put_line(len, snprintf(buf, len, RCTL_ST_RESUMED "\n"));
	case RCTL_FILLING:
		return put_line(len, snprintf(buf, len, RCTL_ST_FILLING "\n"));
	case RCTL_FETCH:
		if (!st->pid || st->vaddr % RCTL_PAGE || !st->nr || st->nr > RCTL_FETCH_MAX ||
		    st->vaddr > RCTL_U63 - st->nr * RCTL_PAGE)
			return -EINVAL;
		return put_line(len, snprintf(buf, len, RCTL_ST_FETCH " %u %llu %u\n", st->pid,
					      (unsigned long long)st->vaddr, st->nr));
	case RCTL_POSTCOPY_DONE:
		if (st->pages > RCTL_U63 || st->faults > RCTL_U63)
			return -EINVAL;
		return put_line(len, snprintf(buf, len, RCTL_ST_POSTCOPY_DONE " %llu %llu\n",
					      (unsigned long long)st->pages,
					      (unsigned long long)st->faults));
	case RCTL_FAILED:
		head = snprintf(buf, len, RCTL_ST_FAILED " ");
		if (head < 0 || (size_t)head + 2 > len)
			return -ENOSPC;
		/* the reason fills what is left of the line, '\n' and NUL aside */
		room = (len < RCTL_LINE_MAX + 1 ? len : RCTL_LINE_MAX + 1) - head - 2;
		n = strnlen(st->reason, sizeof(st->reason));
		if (!n)
			return -EINVAL;
		if (n > room)
			n = room;
		for (i = 0; i < n; i++) {
			unsigned char c = st->reason[i];

			buf[head + i] = c < ' ' || c == 0x7f ? '?' : c;
		}
		buf[head + n] = '\n';
		buf[head + n + 1] = 0;
		return head + n + 1;
	}
	return -EINVAL;
}

int rctl_parse_status(const char *line, struct rctl_status *st)
{
	const char *arg;

	if (word_is(line, RCTL_ST_PREFILLED, &arg)) {
		st->kind = RCTL_PREFILLED;
		return parse_round(arg, &st->round);
	}
	if (word_is(line, RCTL_ST_UNFILLED, &arg)) {
		st->kind = RCTL_UNFILLED;
		return parse_round(arg, &st->round);
	}
	if (word_is(line, RCTL_ST_HELD, &arg) && !arg) {
		st->kind = RCTL_HELD;
		st->round = 0;
		return 0;
	}
	if (word_is(line, RCTL_ST_RESUMED, &arg) && !arg) {
		st->kind = RCTL_RESUMED;
		st->round = 0;
		return 0;
	}
	if (word_is(line, RCTL_ST_FILLING, &arg) && !arg) {
		st->kind = RCTL_FILLING;
		st->round = 0;
		return 0;
	}
	if (word_is(line, RCTL_ST_FETCH, &arg)) {
		st->kind = RCTL_FETCH;
		st->round = 0;
		return parse_fetch(arg, st);
	}
	if (word_is(line, RCTL_ST_POSTCOPY_DONE, &arg)) {
		st->kind = RCTL_POSTCOPY_DONE;
		st->round = 0;
		return parse_pc_done(arg, st);
	}
	if (word_is(line, RCTL_ST_FAILED, &arg) && arg && *arg &&
	    strlen(arg) < sizeof(st->reason)) {
		st->kind = RCTL_FAILED;
		st->round = 0;
		strcpy(st->reason, arg);
		return 0;
	}
	return -EINVAL;
}

int rctl_send_status(int fd, const struct rctl_status *st)
{
	char buf[RCTL_LINE_MAX + 1];
	int n = rctl_format_status(buf, sizeof(buf), st);
	ssize_t w;
	int off = 0;

	if (fd < 0)
		return 0;
	if (n < 0)
		return n;
	while (off < n) {
		w = write(fd, buf + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		off += w;
	}
	return 0;
}

enum rctl_feed rctl_line_feed(struct rctl_line *l, char c)
{
	if (l->done) {
		l->len = 0;
		l->bad = false;
		l->done = false;
	}
	if (c == '\n') {
		l->buf[l->len] = 0;
		l->done = true;
		return l->bad ? RCTL_BAD : RCTL_LINE;
	}
	if (!c || l->len >= sizeof(l->buf) - 1)
		l->bad = true;
	else
		l->buf[l->len++] = c;
	return RCTL_MORE;
}
