// SPDX-License-Identifier: MIT
/* `migrate check`: which kernel features and capabilities are here. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "common/compat.h"
#include "source-agent/check.h"
#include "source-agent/dirty.h"

static bool have_cap(cap_value_t cap)
{
	cap_flag_value_t v = CAP_CLEAR;
	cap_t caps = cap_get_proc();

	if (!caps)
		return false;
	cap_get_flag(caps, cap, CAP_EFFECTIVE, &v);
	cap_free(caps);
	return v == CAP_SET;
}

/* clone3 with set_tid of a pid that is surely taken must fail with EEXIST, not EINVAL/ENOSYS. */
static bool have_clone3_set_tid(void)
{
	pid_t self = getpid();
	struct ferry_clone_args ca = {
		.exit_signal = SIGCHLD,
		.set_tid = (uint64_t)&self,
		.set_tid_size = 1,
	};
	long ret = syscall(__NR_clone3, &ca, sizeof(ca));

	if (ret == 0)
		_exit(0);
	if (ret > 0)
		waitpid(ret, NULL, 0);
	return ret < 0 && errno == EEXIST;
}

static bool have_tcp_repair(void)
{
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	if (fd < 0)
		return false;
	ok = !setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &one, sizeof(one));
	close(fd);
	return ok;
}

static void line(FILE *out, const char *what, bool ok, const char *note)
{
	fprintf(out, "%-36s %s%s%s\n", what, ok ? "yes" : "no", note ? "  " : "", note ? note : "");
}

int check_run(FILE *out)
{
	bool wp_async, scan, soft_dirty, set_tid, ptrace_cap, cr_cap, admin_cap;
	enum dirty_backend be;

	dirty_probe(&wp_async, &scan, &soft_dirty);
	set_tid = have_clone3_set_tid();
	ptrace_cap = have_cap(CAP_SYS_PTRACE);
	cr_cap = have_cap(CAP_CHECKPOINT_RESTORE);
	admin_cap = have_cap(CAP_SYS_ADMIN);
	line(out, "userfaultfd write-protect async", wp_async, NULL);
	line(out, "PAGEMAP_SCAN ioctl", scan, NULL);
	line(out, "soft-dirty bits", soft_dirty, NULL);
	line(out, "clone3 set_tid", set_tid, NULL);
	line(out, "TCP_REPAIR", have_tcp_repair(), NULL);
	line(out, "CAP_SYS_PTRACE", ptrace_cap, NULL);
	line(out, "CAP_CHECKPOINT_RESTORE", cr_cap, NULL);
	line(out, "CAP_SYS_ADMIN", admin_cap, NULL);
	be = wp_async && scan ? DIRTY_UFFD_WP : soft_dirty && scan ? DIRTY_SOFT_DIRTY : DIRTY_NONE;
	fprintf(out, "%-36s %s\n", "dirty tracking in use", dirty_backend_name(be));
	if (!ptrace_cap || !(cr_cap || admin_cap) || !set_tid) {
		fprintf(out, "ferry cannot migrate here: it needs CAP_SYS_PTRACE, clone3 set_tid and "
			     "CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN\n");
		return 1;
	}
	return 0;
}
