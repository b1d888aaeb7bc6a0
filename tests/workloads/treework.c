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
 *
 * --cow MIB: memory shared copy-on-write instead. The parent fills MIB MiB
 * with a pattern and forks two children that leave most of it alone. Then
 * each changes a few pages of its own: the parent some; child 1 some, one
 * zeroed, one dropped (MADV_DONTNEED); child 2 some, and a sixteenth of it
 * unmapped and mapped again (half new content, half zeros). Each says
 * "cow ROLE ready PID". On SIGUSR1 each checks every page of its own and
 * says "cow ROLE ok N"; on SIGUSR2 each writes one page more (with its own
 * content: a page wrongly shared with another process shows at its check).
 * Usage: treework --out FILE [--pidfile FILE] [--tick-ms MS] [--child-pgrp]
 *        treework --cow MIB --out FILE [--pidfile FILE]
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* ---- --cow ---- */

#define COW_PAGE	4096UL
#define COW_WORDS	(COW_PAGE / 8)

static uint64_t *cow_mem;
static unsigned long cow_pages;
static int cow_role;			/* 0 parent, 1 and 2 the children */
static volatile sig_atomic_t cow_check_req, cow_touch_req;
static int cow_touched;

static void cow_sig(int sig)
{
	if (sig == SIGUSR1)
		cow_check_req = 1;
	else
		cow_touch_req = 1;
}

static int cow_in_remap(unsigned long i)
{
	return i >= cow_pages / 2 && i < cow_pages / 2 + cow_pages / 16;
}

/* Word @w of page @i as process @cow_role must see it; 0 for a zero word. */
static uint64_t cow_want(unsigned long i, unsigned long w)
{
	uint64_t base = (i + 1) * 0x9e3779b97f4a7c15ULL ^ (w << 32) ^ w;

	if (cow_touched && i == 13)
		return base ^ (0x5555555555555555ULL * (cow_role + 1));
	switch (cow_role) {
	case 0:
		return i % 509 == 7 ? (base ^ 0xaaaaaaaaaaaaaaaaULL) : base;
	case 1:
		if (i == 5 || i == 9)
			return 0;
		return i % 401 == 3 ? base ^ 0x1111111111111111ULL : base;
	default:
		if (cow_in_remap(i))
			return i < cow_pages / 2 + cow_pages / 32 ? base ^ 0x3333333333333333ULL : 0ULL;
		return i % 307 == 11 ? base ^ 0x2222222222222222ULL : base;
	}
}

static void cow_write_page(unsigned long i)
{
	unsigned long w;

	for (w = 0; w < COW_WORDS; w++)
		cow_mem[i * COW_WORDS + w] = cow_want(i, w);
}

/* This process's own changes, after the fork. */
static void cow_change(void)
{
	unsigned long i, rs = cow_pages / 2, rn = cow_pages / 16;

	if (cow_role == 2 &&
	    (munmap(cow_mem + rs * COW_WORDS, rn * COW_PAGE) ||
	     mmap(cow_mem + rs * COW_WORDS, rn * COW_PAGE, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)) {
		say("FAIL cow child 2 cannot map again: %s\n", strerror(errno));
		exit(3);
	}
	for (i = 0; i < cow_pages; i++) {
		if (cow_role == 1 && i == 9)
			madvise(cow_mem + i * COW_WORDS, COW_PAGE, MADV_DONTNEED);
		else if (cow_want(i, 1) != cow_mem[i * COW_WORDS + 1] || (cow_role == 1 && i == 5))
			cow_write_page(i);
	}
}

static void cow_check(long n)
{
	unsigned long i, w;

	for (i = 0; i < cow_pages; i++)
		for (w = 0; w < COW_WORDS; w++)
			if (cow_mem[i * COW_WORDS + w] != cow_want(i, w)) {
				say("FAIL cow %d: page %lu word %lu is %#llx, expected %#llx\n",
				    cow_role, i, w, (unsigned long long)cow_mem[i * COW_WORDS + w],
				    (unsigned long long)cow_want(i, w));
				exit(3);
			}
	say("cow %d ok %ld\n", cow_role, n);
}

static void __attribute__((noreturn)) cow_run(void)
{
	long n = 0;

	cow_change();
	say("cow %d ready %d\n", cow_role, getpid());
	for (;;) {
		sleep_ms(tick_ms);
		if (cow_touch_req) {
			cow_touch_req = 0;
			cow_touched = 1;
			cow_write_page(13);
		}
		if (cow_check_req) {
			cow_check_req = 0;
			cow_check(++n);
		}
		if (cow_role && getppid() == 1) {
			say("FAIL cow %d lost its parent\n", cow_role);
			exit(3);
		}
	}
}

static int cow_main(long mib, const char *pidfile)
{
	struct sigaction sa = { .sa_handler = cow_sig };
	unsigned long i;
	int k;

	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	cow_pages = mib * (1UL << 20) / COW_PAGE;
	cow_mem = mmap(NULL, cow_pages * COW_PAGE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (cow_mem == MAP_FAILED)
		return 1;
	for (i = 0; i < cow_pages; i++) {
		unsigned long w;

		for (w = 0; w < COW_WORDS; w++)
			cow_mem[i * COW_WORDS + w] = (i + 1) * 0x9e3779b97f4a7c15ULL ^ (w << 32) ^ w;
	}
	for (k = 1; k <= 2; k++) {
		pid_t c = fork();

		if (c < 0)
			return 1;
		if (c == 0) {
			cow_role = k;
			cow_run();
		}
	}
	if (pidfile && write_pidfile(pidfile))
		return 1;
	cow_run();
}

int main(int argc, char **argv)
{
	const char *out = NULL, *pidfile = NULL;
	int p[2], i, child_pgrp = 0;
	long step, cow_mib = 0;
	pid_t c;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--out") && i + 1 < argc)
			out = argv[++i];
		else if (!strcmp(argv[i], "--pidfile") && i + 1 < argc)
			pidfile = argv[++i];
		else if (!strcmp(argv[i], "--tick-ms") && i + 1 < argc)
			tick_ms = atol(argv[++i]);
		else if (!strcmp(argv[i], "--cow") && i + 1 < argc)
			cow_mib = atol(argv[++i]);
		else if (!strcmp(argv[i], "--child-pgrp"))
			child_pgrp = 1;
		else
			out = NULL, i = argc;
	}
	if (!out || tick_ms < 1 || cow_mib < 0 || cow_mib > 4096) {
		fprintf(stderr, "usage: treework --out FILE [--pidfile FILE] [--tick-ms MS] "
			"[--child-pgrp] [--cow MIB]\n");
		return 2;
	}
	out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out_fd >= 0 && cow_mib)
		return cow_main(cow_mib, pidfile);
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
