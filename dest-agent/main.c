// SPDX-License-Identifier: MIT
/* `restore`: bring a checkpointed process back from an image stack on local disk. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "dest-agent/restore.h"

static const char usage[] =
	"usage: restore --images-dir DIR/<id>/<N> [--pidns] [-v] [--log-file FILE]\n"
	"       restore --stream DIR/<id> [--pidns] [-v] [--log-file FILE]\n"
	"\n"
	"Recreates the process saved in the final round N of an image stack (older\n"
	"rounds are reached through the 'parent' links), with its PID, memory,\n"
	"registers, signal handlers and files, and lets it continue from the\n"
	"instruction where it was frozen. The restored process is detached from\n"
	"this command and keeps running after it exits.\n"
	"\n"
	"  --images-dir DIR   the final round's directory\n"
	"  --stream DIR       a stack being written by a migration: the process is made\n"
	"                     at the first round and its memory filled round by round;\n"
	"                     stdin names the rounds as they commit (\"round K\"), then\n"
	"                     \"final N\" (restore and exit) or \"abort\"\n"
	"  --pidns            restore into a fresh PID namespace (the process keeps\n"
	"                     its PID there), e.g. beside its still-running original\n"
	"  -v, --verbose      more detail on stderr (repeat for debug)\n"
	"  --log-file FILE    detailed log\n"
	"  -h, --help         this text\n"
	"\n"
	"Exit status: 0 restored, 1 failed, 2 bad usage.\n";

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "images-dir", required_argument, NULL, 'D' },
		{ "pidns", no_argument, NULL, 'P' },
		{ "stream", required_argument, NULL, 'S' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "log-file", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct restore_opts o = { 0 };
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
		case 'v': verbose++; break;
		case 'L': log_file = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default:
			return usage_error("%s", getopt_problem(argv, optind, optopt, msg, sizeof(msg)));
		}
	}
	if (!o.images_dir == !o.stack_dir || optind != argc)
		return usage_error("one of --images-dir DIR and --stream DIR is needed (and nothing else)");
	log_init("restore", verbose, log_file);
	log_defer_errors();
	ret = o.stack_dir ? restore_stream(&o) : restore_run(&o);
	if (ret) {
		fprintf(stderr, "restore: failed: %s\n", *log_reason() ? log_reason() : strerror(-ret));
		return 1;
	}
	return 0;
}
