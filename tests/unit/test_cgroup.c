// SPDX-License-Identifier: MIT
/* dest-agent/cgroup.c: a cgroup path from an image cannot leave its hierarchy. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dest-agent/restore.h"

Test(cgroup, no_climbing_out)
{
	char dir[] = "/tmp/ferry-test-cg.XXXXXX", procs[64], line[256], buf[16] = "";
	char *lines[1] = { line };
	PstreeEntry pe = PSTREE_ENTRY__INIT;
	int fd;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	fd = open(procs, O_CREAT | O_RDWR, 0600);
	cr_assert_geq(fd, 0);
	/* a cgroup2 line whose path climbs from the mount to our file */
	snprintf(line, sizeof(line), "0::/../../../../../../../../..%s", dir);
	pe.pid = getpid();
	pe.n_cgroups = 1;
	pe.cgroups = lines;
	cr_expect_eq(cgroup_enter(getpid(), &pe), -EINVAL);
	cr_expect_eq(read(fd, buf, sizeof(buf) - 1), 0, "a pid was written: '%s'", buf);
	/* a name that merely starts with two dots is a name */
	snprintf(line, sizeof(line), "0::/..not-a-climb/x");
	cr_expect_neq(cgroup_enter(getpid(), &pe), -EINVAL);
	close(fd);
	unlink(procs);
	rmdir(dir);
}
