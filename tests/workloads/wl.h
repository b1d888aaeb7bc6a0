/* SPDX-License-Identifier: MIT */
/*
 * tests/workloads/wl.h: what the small C workloads (mtwork, treework) share:
 * unbuffered output lines, a sleep that resumes after signals, and a pidfile
 * that appears whole (written aside, then renamed).
 */
#ifndef FERRY_WL_H
#define FERRY_WL_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static int out_fd = -1;

/* One write(2) per line, so lines of several processes/threads never mix. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (write(out_fd, buf, n) != n)
		_exit(1);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* 0, or -1 when @path.tmp cannot be created. */
static int write_pidfile(const char *path)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "%d\n", getpid());
	fclose(f);
	return rename(tmp, path) ? -1 : 0;
}

#endif
