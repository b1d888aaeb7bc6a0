/* SPDX-License-Identifier: MIT */
/* cgroup membership of a process: /proc/PID/cgroup, one line per hierarchy. */
#ifndef FERRY_CGROUP_H
#define FERRY_CGROUP_H

#include <sys/types.h>

#define CGROUP_MAX_LINES 32

struct cgroup_lines {
	char *buf;
	char *line[CGROUP_MAX_LINES];	/* "ID:CONTROLLERS:PATH", into buf */
	size_t nr;
};

int cgroup_read(pid_t pid, struct cgroup_lines *cl);
void cgroup_lines_free(struct cgroup_lines *cl);

#endif
