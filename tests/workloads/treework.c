// SPDX-License-Identifier: MIT
/*
 * treework: a process tree for migration tests. The parent forks a child,
 * the child a grandchild; all three write lines to one inherited fd (one
 * open file description, so one shared offset: nothing may overwrite
 * anything), the parent feeds the child through a pipe, and each checks
 * that its parent is still its parent (the tree kept its shape and PIDs).
 *
 *   parent:     "step N pid P"        every --tick-ms
 *   child:      "child N"             for each "N" read from the pipe
 *   grandchild: "grandchild N ppid C" every 5 ticks
 * A broken check writes "FAIL ..." and exits 3. --child-pgrp: the child (and
 * so the grandchild) in a process group of its own.
 * Usage: treework --out FILE [--pidfile FILE] [--tick-ms MS] [--child-pgrp]
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wl.h"

static long tick_ms = 20;

static void check_parent(const char *who, pid_t want)
{
	if (getppid() != want) {
		say("FAIL %s pid %d: parent is %d, expected %d\n", who, getpid(), getppid(), want);
		exit(3);
	}
}

static void grandchild(pid_t parent)
{
	long n;

	for (n = 1;; n++) {
		sleep_ms(tick_ms * 5);
		check_parent("grandchild", parent);
		say("grandchild %ld ppid %d\n", n, parent);
	}
}

static void child(pid_t parent, int rfd)
{
	char buf[64];
	long want = 1;
	pid_t self = getpid(), g;
	FILE *in = fdopen(rfd, "r");

	g = fork();
	if (g < 0)
		exit(1);
	if (g == 0)
		grandchild(self);
	while (in && fgets(buf, sizeof(buf), in)) {
		long n = atol(buf);

		check_parent("child", parent);
		if (n != want) {
			say("FAIL child got %ld, expected %ld\n", n, want);
			exit(3);
		}
		say("child %ld\n", n);
		want++;
	}
	kill(g, SIGKILL);
	exit(0);
}

int main(int argc, char **argv)
{
	const char *out = NULL, *pidfile = NULL;
	int p[2], i, child_pgrp = 0;
	long step;
	pid_t c;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--out") && i + 1 < argc)
			out = argv[++i];
		else if (!strcmp(argv[i], "--pidfile") && i + 1 < argc)
			pidfile = argv[++i];
		else if (!strcmp(argv[i], "--tick-ms") && i + 1 < argc)
			tick_ms = atol(argv[++i]);
		else if (!strcmp(argv[i], "--child-pgrp"))
			child_pgrp = 1;
		else
			out = NULL, i = argc;
	}
	if (!out || tick_ms < 1) {
		fprintf(stderr, "usage: treework --out FILE [--pidfile FILE] [--tick-ms MS] "
			"[--child-pgrp]\n");
		return 2;
	}
	out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out_fd < 0 || pipe(p))
		return 1;
	c = fork();
	if (c < 0)
		return 1;
	if (c == 0) {
		if (child_pgrp && setpgid(0, 0))
			exit(1);
		close(p[1]);
		child(getppid(), p[0]);
	}
	close(p[0]);
	if (child_pgrp)
		setpgid(c, c);	/* done before our pidfile appears, whoever runs first */
	say("ready\n");
	if (pidfile && write_pidfile(pidfile))
		return 1;
	for (step = 1;; step++) {
		char msg[32];
		int n = snprintf(msg, sizeof(msg), "%ld\n", step);

		sleep_ms(tick_ms);
		say("step %ld pid %d\n", step, getpid());
		if (write(p[1], msg, n) != n) {
			say("FAIL parent cannot feed the child: %s\n", strerror(errno));
			return 3;
		}
	}
}
