// SPDX-License-Identifier: MIT
/*
 * Parasite commands: each one is a few raw syscalls made by the target
 * itself, results written to the shared command area (parasite.h).
 */
#include <linux/ioctl.h>
#include <linux/userfaultfd.h>

#include "parasite/parasite.h"
#include "parasite/syscall.h"

#define SIGKILL	9
#define SIGSTOP	19

/* Only migrate's rt_sigaction can set these two; nothing to dump. */
static int cmd_sigactions(struct prs_area *a)
{
	long ret;
	int sig;

	for (sig = 1; sig <= PRS_NSIG; sig++) {
		struct prs_sigaction *sa = &a->u.sa[sig - 1];

		if (sig == SIGKILL || sig == SIGSTOP) {
			sa->handler = sa->flags = sa->restorer = sa->mask = 0;
			continue;
		}
		ret = sys_rt_sigaction(sig, 0, sa, sizeof(sa->mask));
		if (ret)
			return ret;
	}
	return 0;
}

static int cmd_itimers(struct prs_area *a)
{
	long ret;
	int i;

	for (i = 0; i < 3; i++) {
		ret = sys_getitimer(i, &a->u.it[i]);
		if (ret)
			return ret;
	}
	return 0;
}

static int cmd_sigaltstack(struct prs_area *a)
{
	return sys_sigaltstack(0, &a->u.ss);
}

static int cmd_brk(struct prs_area *a)
{
	a->u.brk = sys_brk(0);
	return 0;
}

/* arg[0]: userfaultfd flags, arg[1]: features asked for UFFDIO_API. */
static int cmd_uffd_create(struct prs_area *a)
{
	struct uffdio_api api;
	long fd, ret;

	fd = sys_userfaultfd(a->arg[0]);
	if (fd < 0)
		return fd;
	api.api = UFFD_API;
	api.features = a->arg[1];
	api.ioctls = 0;
	ret = sys_ioctl(fd, UFFDIO_API, &api);
	if (ret) {
		sys_close(fd);
		return ret;
	}
	a->u.uffd.fd = fd;
	a->u.uffd.pad = 0;
	a->u.uffd.features = api.features;
	return 0;
}

static int cmd_close_fd(struct prs_area *a)
{
	return sys_close(a->arg[0]);
}

/* Called by parasite_entry (entry.S) with the command area. */
void prs_main(struct prs_area *a);

void prs_main(struct prs_area *a)
{
	int ret;

	switch (a->cmd) {
	case PRS_CMD_SIGACTIONS:
		ret = cmd_sigactions(a);
		break;
	case PRS_CMD_ITIMERS:
		ret = cmd_itimers(a);
		break;
	case PRS_CMD_SIGALTSTACK:
		ret = cmd_sigaltstack(a);
		break;
	case PRS_CMD_BRK:
		ret = cmd_brk(a);
		break;
	case PRS_CMD_UFFD_CREATE:
		ret = cmd_uffd_create(a);
		break;
	case PRS_CMD_CLOSE_FD:
		ret = cmd_close_fd(a);
		break;
	default:
		ret = -22;	/* EINVAL */
		break;
	}
	a->ret = ret;
}
