// SPDX-License-Identifier: MIT
/* `restore`: bring a checkpointed process back from an image stack on local disk. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/exitcode.h"
#include "common/log.h"
#include "dest-agent/restore.h"
#include "proto/restore_ctl.h"

/* --status-fd N: an open descriptor above stderr, kept from what we start; or -1. */
static int status_fd(const char *arg)
{
	char *end;
	long fd;

	errno = 0;
	fd = strtol(arg, &end, 10);
	if (errno || end == arg || *end || fd <= 2 || fd > INT_MAX)
		return -1;
	if (fcntl(fd, F_SETFD, FD_CLOEXEC))
		return -1;
	return fd;
}

/* --hold-timeout S: 1 to 3600 seconds. */
static int hold_timeout(const char *arg, unsigned int *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < 1 || v > 3600)
		return -EINVAL;
	*s = v;
	return 0;
}

static const char usage[] =
	"usage: restore --images-dir DIR/<id>/<N> [--pidns] [--status-fd N] [-v] [--log-file FILE]\n"
	"       restore --stream DIR/<id> [--lazy-fill] [--pidns] [--status-fd N] [-v] [--log-file FILE]\n"
	"       (either also with --hold [--hold-timeout S] [--postcopy-fd N])\n"
	"\n"
	"Recreates the process saved in the final round N of an image stack (older\n"
	"rounds are reached through the 'parent' links), with its PID, memory,\n"
	"registers, signal handlers and files, and lets it continue from the\n"
	"instruction where it was frozen. The restored process is detached from\n"
	"this command and keeps running after it exits. A round made with\n"
	"migrate --move-address has its service address added here (and announced)\n"
	"before the process's sockets are made; taken off again if it fails.\n"
	"\n"
	"  --images-dir DIR   the final round's directory\n"
	"  --stream DIR       a stack being written by a migration: the process is made\n"
	"                     at the first round and its memory filled round by round;\n"
	"                     stdin names the rounds as they commit (\"round K\"), then\n"
	"                     \"final N\" (restore and exit) or \"abort\"\n"
	"  --status-fd N      status lines for the page server on fd N: \"prefilled K\"\n"
	"                     after each round prefilled, \"failed REASON\" before a\n"
	"                     failed exit (docs/restore-protocol.md)\n"
	"  --hold             hand-over (docs/handover.md): once the tree is restored and\n"
	"                     stopped, report \"held\" and wait on stdin for \"resume\" (let\n"
	"                     it run, report \"resumed\", exit 0) or \"abort\"; abort, end\n"
	"                     of input or the deadline kill the tree (exit 1)\n"
	"  --hold-timeout S   the deadline of --hold, in seconds (default 30)\n"
	"  --lazy-fill        --stream: a final round that comes before the earlier\n"
	"                     rounds are in memory does not wait for them: what is\n"
	"                     missing is served on first touch (userfaultfd) and filled\n"
	"                     in the background after the process runs; \"filling\" on\n"
	"                     the status fd after \"resumed\", exit when all is in\n"
	"  --postcopy-fd N    post-copy (migrate --postcopy, docs/handover.md): the\n"
	"                     final round's REMOTE pages come as page frames on fd N;\n"
	"                     \"fetch PID VADDR NR\" asks for pages a thread waits on,\n"
	"                     \"postcopy-done PAGES FAULTS\" says every one is in; the\n"
	"                     tree is killed if fd N ends before that\n"
	"  --pidns            restore into a fresh PID namespace (the process keeps\n"
	"                     its PID there), e.g. beside its still-running original\n"
	"  -v, --verbose      more detail on stderr (repeat for debug)\n"
	"  --log-file FILE    detailed log\n"
	"  -h, --help         this text\n"
	"\n"
	"Exit status: 0 restored, 2 bad usage, 4 the images are missing or refused,\n"
	"6 a problem of this host (the pid is taken, permission, memory), 1 any\n"
	"other failure.\n";

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "images-dir", required_argument, NULL, 'D' },
		{ "pidns", no_argument, NULL, 'P' },
		{ "stream", required_argument, NULL, 'S' },
		{ "status-fd", required_argument, NULL, 'F' },
		{ "hold", no_argument, NULL, 'H' },
		{ "hold-timeout", required_argument, NULL, 'T' },
		{ "lazy-fill", no_argument, NULL, 'Z' },
		{ "postcopy-fd", required_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "log-file", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct restore_opts o = { .status_fd = -1, .postcopy_fd = -1,
				  .hold_timeout_s = RCTL_HOLD_TIMEOUT_S };
	struct rctl_status st = { .kind = RCTL_FAILED };
	const char *log_file = NULL;
	int c, verbose = 0, ret;
	char msg[160];

	log_init("restore", 0, NULL);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'D': o.images_dir = optarg; break;
		case 'P': o.pidns = true; break;
		case 'S': o.stack_dir = optarg; break;
		case 'F':
			o.status_fd = status_fd(optarg);
			if (o.status_fd < 0)
				return usage_error("--status-fd %s: want an open descriptor above 2", optarg);
			break;
		case 'C':
			o.postcopy_fd = status_fd(optarg);
			if (o.postcopy_fd < 0)
				return usage_error("--postcopy-fd %s: want an open descriptor above 2",
						   optarg);
			break;
		case 'H': o.hold = true; break;
		case 'Z': o.lazy = true; break;
		case 'T':
			if (hold_timeout(optarg, &o.hold_timeout_s))
				return usage_error("--hold-timeout %s: want 1 to 3600 seconds", optarg);
			break;
		case 'v': verbose++; break;
		case 'L': log_file = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default:
			return usage_error("%s", getopt_problem(argv, optind, optopt, msg, sizeof(msg)));
		}
	}
	if (!o.images_dir == !o.stack_dir || optind != argc)
		return usage_error("one of --images-dir DIR and --stream DIR is needed (and nothing else)");
	if (o.postcopy_fd >= 0 && (!o.hold || o.postcopy_fd == o.status_fd))
		return usage_error("--postcopy-fd wants --hold and an fd of its own");
	log_init("restore", verbose, log_file);
	/* hold_wait and a prefill cut short poll fd 0: no bytes may hide in a stdio buffer */
	if (o.hold || o.lazy)
		setvbuf(stdin, NULL, _IONBF, 0);
	log_defer_errors();
	ret = o.stack_dir ? restore_stream(&o) : restore_run(&o);
	if (ret) {
		snprintf(st.reason, sizeof(st.reason), "%s",
			 *log_reason() ? log_reason() : strerror(-ret));
		fprintf(stderr, "restore: failed: %s\n", st.reason);
		rctl_send_status(o.status_fd, &st);
		/* images missing or refused: the target's; the pid taken here: this host's */
		if (ret == -ENOENT || ret == -EINVAL)
			return FERRY_EXIT_TARGET;
		return ret == -EEXIST ? FERRY_EXIT_LOCAL : exit_status_of(ret, FERRY_EXIT_FAILED);
	}
	return 0;
}
