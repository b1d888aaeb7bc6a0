// SPDX-License-Identifier: MIT
/*
 * Terminals: ptys, virtual consoles, serial lines and /dev/tty are refused
 * until ptys travel (a path opened again would be another terminal, or
 * none), and so is a controlling terminal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/files.h"
#include "source-agent/preflight.h"

#define TTY_MAJOR		4	/* virtual consoles, serial lines */
#define TTYAUX_MAJOR		5	/* /dev/tty, /dev/console, /dev/ptmx */
#define PTS_MAJOR_FIRST		136	/* /dev/pts/N */
#define PTS_MAJOR_LAST		143

static bool tty_dev(dev_t rdev)
{
	unsigned int ma = major(rdev);

	return ma == TTY_MAJOR || (ma == TTYAUX_MAJOR && minor(rdev) <= 2) ||
	       (ma >= PTS_MAJOR_FIRST && ma <= PTS_MAJOR_LAST);
}

static bool tty_path(const char *path)
{
	return !strncmp(path, "/dev/pts/", 9) || !strcmp(path, "/dev/ptmx") ||
	       !strncmp(path, "/dev/tty", 8) || !strcmp(path, "/dev/console");
}

int tty_fd_check(struct fd_dump *d)
{
	if (!tty_dev(d->st.st_rdev) && !tty_path(d->path))
		return 0;
	pr_err("pid %d: fd %d is a terminal (%s): ferry cannot move terminals (ptys, ttys) yet",
	       d->pid, d->fd, d->path);
	return -EOPNOTSUPP;
}

int tty_check(pid_t pid)
{
	char path[64], buf[4096], *p;
	unsigned long tty_nr;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	n = read_small_file(path, buf, sizeof(buf));
	if (n < 0)
		return n;
	p = strrchr(buf, ')');
	/* ") state ppid pgrp session tty_nr" */
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %lu", &tty_nr) != 1)
		return -EINVAL;
	if (!tty_nr)
		return 0;
	if (major(tty_nr) >= PTS_MAJOR_FIRST && major(tty_nr) <= PTS_MAJOR_LAST)
		snprintf(path, sizeof(path), "/dev/pts/%u",
			 (major(tty_nr) - PTS_MAJOR_FIRST) * 256 + minor(tty_nr));
	else
		snprintf(path, sizeof(path), "device %u:%u", major(tty_nr), minor(tty_nr));
	pr_err("pid %d: has a controlling terminal (%s): ferry cannot move terminals yet "
	       "(a service started from a shell keeps it: start it with setsid(1))", pid, path);
	return -EOPNOTSUPP;
}
