// SPDX-License-Identifier: MIT
/* POSIX timers (timer_create): refused until they travel. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "source-agent/preflight.h"

int timers_check(pid_t pid)
{
	char path[64], buf[8192], ids[256] = "", *p;
	size_t len = 0;
	ssize_t n;
	int nr = 0;

	snprintf(path, sizeof(path), "/proc/%d/timers", pid);
	n = read_small_file(path, buf, sizeof(buf));
	if (n < 0)
		return n == -ENOENT ? 0 : n;	/* no CONFIG_CHECKPOINT_RESTORE: none seen */
	for (p = buf; (p = strstr(p, "ID: ")); p += 4) {
		if (p != buf && p[-1] != '\n')
			continue;
		if (len + 16 < sizeof(ids))
			len += snprintf(ids + len, sizeof(ids) - len, "%s%ld", nr ? ", " : "",
					strtol(p + 4, NULL, 10));
		nr++;
	}
	if (!nr)
		return 0;
	pr_err("pid %d: holds %d POSIX timer%s (id %s): ferry cannot move POSIX timers yet", pid,
	       nr, nr > 1 ? "s" : "", ids);
	return -EOPNOTSUPP;
}
