// SPDX-License-Identifier: MIT
/* `migrate check`: which kernel features and capabilities are here. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/exitcode.h"
#include "common/log.h"
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

/* POSIX timers are restored with their ids (Linux 6.15): the prctl knows its "get". */
static bool have_timer_restore_ids(void)
{
	return prctl(FERRY_PR_TIMER_CREATE_RESTORE_IDS, FERRY_PR_TIMER_CREATE_RESTORE_IDS_GET, 0, 0,
		     0) >= 0;
}

/* A timerfd's unread expirations are put back with TFD_IOC_SET_TICKS (CONFIG_CHECKPOINT_RESTORE). */
static bool have_timerfd_set_ticks(void)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	uint64_t one = 1;
	bool ok;

	if (fd < 0)
		return false;
	ok = !ioctl(fd, FERRY_TFD_IOC_SET_TICKS, &one);
	close(fd);
	return ok;
}

struct check_result {
	bool wp_async, scan, soft_dirty, set_tid, tcp_repair, cap_ptrace, cap_cr, cap_admin;
	bool timer_ids, tfd_ticks;
	enum dirty_backend backend;	/* what `migrate` would track with */
};

static void check_probe(struct check_result *c)
{
	dirty_probe(&c->wp_async, &c->scan, &c->soft_dirty);
	c->set_tid = have_clone3_set_tid();
	c->tcp_repair = have_tcp_repair();
	c->timer_ids = have_timer_restore_ids();
	c->tfd_ticks = have_timerfd_set_ticks();
	c->cap_ptrace = have_cap(CAP_SYS_PTRACE);
	c->cap_cr = have_cap(CAP_CHECKPOINT_RESTORE);
	c->cap_admin = have_cap(CAP_SYS_ADMIN);
	c->backend = c->wp_async && c->scan ? DIRTY_UFFD_WP :
		     c->soft_dirty && c->scan ? DIRTY_SOFT_DIRTY : DIRTY_NONE;
}

/* Both sides: seize (ptrace), map_files and set_tid (CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN). */
static bool check_can_migrate(const struct check_result *c)
{
	return c->cap_ptrace && (c->cap_cr || c->cap_admin) && c->set_tid;
}

int check_migrate_needs(enum dirty_backend want, char *buf, size_t len)
{
	struct check_result c;
	int ret = 0;

	check_probe(&c);
	buf[0] = 0;
	if (!c.cap_cr && !c.cap_admin) {
		snprintf(buf, len, "CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN (to read /proc/PID/map_files)");
		ret = -EPERM;
	} else if (want == DIRTY_SOFT_DIRTY && !(c.soft_dirty && c.scan)) {
		snprintf(buf, len, "%s (for --dirty-tracking soft-dirty)",
			 c.scan ? "soft-dirty bits" : "the PAGEMAP_SCAN ioctl");
		ret = -EOPNOTSUPP;
	} else if (want == DIRTY_UFFD_WP && !(c.wp_async && c.scan)) {
		/* not fatal: dirty.c falls back to resending everything; said even without -v */
		fprintf(stderr, "migrate: warning: %s missing: every round will resend all pages "
			"(see `check`)\n",
			c.scan ? "userfaultfd write-protect async" : "the PAGEMAP_SCAN ioctl");
	}
	return ret;
}

static void line(FILE *out, bool json, bool *first, const char *key, const char *what, bool ok)
{
	if (json)
		fprintf(out, "%s\"%s\":%s", *first ? "" : ",", key, ok ? "true" : "false");
	else
		fprintf(out, "%-36s %s\n", what, ok ? "yes" : "no");
	*first = false;
}

int check_run(FILE *out, bool json)
{
	struct check_result c;
	bool first = true, ok;

	check_probe(&c);
	ok = check_can_migrate(&c);
	if (json)
		fputs("{\"event\":\"check\",\"features\":{", out);
	line(out, json, &first, "uffd_wp_async", "userfaultfd write-protect async", c.wp_async);
	line(out, json, &first, "pagemap_scan", "PAGEMAP_SCAN ioctl", c.scan);
	line(out, json, &first, "soft_dirty", "soft-dirty bits", c.soft_dirty);
	line(out, json, &first, "clone3_set_tid", "clone3 set_tid", c.set_tid);
	line(out, json, &first, "tcp_repair", "TCP_REPAIR", c.tcp_repair);
	line(out, json, &first, "timer_restore_ids", "PR_TIMER_CREATE_RESTORE_IDS", c.timer_ids);
	line(out, json, &first, "timerfd_set_ticks", "TFD_IOC_SET_TICKS", c.tfd_ticks);
	line(out, json, &first, "cap_sys_ptrace", "CAP_SYS_PTRACE", c.cap_ptrace);
	line(out, json, &first, "cap_checkpoint_restore", "CAP_CHECKPOINT_RESTORE", c.cap_cr);
	line(out, json, &first, "cap_sys_admin", "CAP_SYS_ADMIN", c.cap_admin);
	if (json) {
		fprintf(out, "},\"dirty_tracking\":\"%s\",\"can_migrate\":%s,\"missing\":[",
			dirty_backend_name(c.backend), ok ? "true" : "false");
		first = true;
		if (!c.cap_ptrace)
			fprintf(out, "\"CAP_SYS_PTRACE\""), first = false;
		if (!c.cap_cr && !c.cap_admin)
			fprintf(out, "%s\"CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN\"", first ? "" : ","),
				first = false;
		if (!c.set_tid)
			fprintf(out, "%s\"clone3 set_tid\"", first ? "" : ",");
		fputs("]}\n", out);
		return ok ? 0 : FERRY_EXIT_LOCAL;
	}
	fprintf(out, "%-36s %s\n", "dirty tracking in use", dirty_backend_name(c.backend));
	if (!ok) {
		fprintf(out, "ferry cannot migrate here: it needs CAP_SYS_PTRACE, clone3 set_tid and "
			     "CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN\n");
		return FERRY_EXIT_LOCAL;
	}
	return 0;
}

static const char check_usage[] =
	"usage: check [--json]      (also: migrate check [--json])\n"
	"\n"
	"Reports the kernel features and capabilities ferry uses on this host and\n"
	"the dirty-tracking backend `migrate` would pick. --json prints one JSON\n"
	"object: features (each true or false), dirty_tracking, can_migrate and\n"
	"missing (what is needed and not here).\n"
	"\n"
	"Exit status: 0 ferry can migrate here, 6 it cannot (something is missing),\n"
	"2 bad usage.\n";

int check_main(int argc, char **argv)
{
	bool json = false;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(check_usage, stdout);
			return 0;
		} else {
			return usage_error("check takes only --json, not '%s'", argv[i]);
		}
	}
	return check_run(stdout, json);
}
