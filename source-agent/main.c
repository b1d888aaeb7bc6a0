// SPDX-License-Identifier: MIT
/* `migrate`: move a running process to a page server, or checkpoint it to disk. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/exitcode.h"
#include "common/log.h"
#include "common/util.h"
#include "source-agent/check.h"
#include "source-agent/files.h"
#include "source-agent/migrate.h"
#include "source-agent/session.h"

static const char usage[] =
	"usage: migrate --to HOST:PORT [TLS options] [options] PID\n"
	"       migrate --images-dir DIR [options] PID\n"
	"       migrate --pre-dump --session SOCK (--to HOST:PORT | --images-dir DIR) [options] PID\n"
	"       migrate --final --session SOCK | migrate --abort --session SOCK\n"
	"       migrate check [--json]    (also installed as `check`)\n"
	"\n"
	"Moves the running process PID to a ferry page server (which restores it)\n"
	"or checkpoints it into a local image stack DIR/<id>/1..N. Pre-copy rounds\n"
	"send memory while the process runs; the final round freezes it, sends the\n"
	"last dirty pages and all other state, and waits for the restore result:\n"
	"the destination holds the restored copy stopped until this side commits;\n"
	"then the source is killed (kept with --leave-running). On any failure\n"
	"before the commit it is thawed and runs on unchanged. Kernel state ferry\n"
	"cannot carry exactly (leases, seccomp listeners, CPU-time timers, terminals\n"
	"shared with processes outside the tree, ...) is refused by name before\n"
	"anything is opened or frozen (README).\n"
	"\n"
	"  --to HOST:PORT        page server to migrate to\n"
	"  --images-dir DIR      checkpoint to a local image stack instead\n"
	"  --id ID               migration id (default: made up); an existing stack\n"
	"                        of that id is continued with its next round\n"
	"  --tls-ca FILE         CA that signed the page server's certificate\n"
	"  --tls-cert FILE       our certificate (mutual TLS)\n"
	"  --tls-key FILE        its key\n"
	"  --insecure            no TLS (plain TCP): only on a trusted link\n"
	"  --max-rounds N        at most N pre-copy rounds (default 8)\n"
	"  --small-dirty PAGES   stop pre-copy once a round finds <= PAGES dirty (default 256)\n"
	"                        and the predicted downtime fits --downtime-limit\n"
	"  --dirty-tracking B    uffd (default), soft-dirty or none (resend all)\n"
	"  --downtime-limit MS   freeze only when the predicted downtime (last dirty pages\n"
	"                        at the measured bandwidth + the destination's lag + the\n"
	"                        final state + the TCP connections' queues) fits MS\n"
	"                        (default 300; 0: no limit, freeze when the dirty set\n"
	"                        stops shrinking)\n"
	"  --over-limit ACTION   when it cannot fit (--max-rounds reached, or the dirty set\n"
	"                        stopped shrinking and the throttle cannot help): freeze\n"
	"                        (default: freeze anyway and say so) or fail (the source\n"
	"                        runs on untouched)\n"
	"  --no-auto-converge    do not slow a target whose dirty rate outruns the link\n"
	"                        (default: stop it for 20%, 30%, ... 99% of every 100 ms\n"
	"                        during the pre-copy rounds, until the limit fits)\n"
	"  --postcopy[=auto]     post-copy (docs/handover.md): the final round leaves the\n"
	"                        dirty pages of private anonymous memory at the source\n"
	"                        (their addresses only); the destination runs at once and\n"
	"                        gets them afterwards, on first touch and pushed, from\n"
	"                        the frozen source, which is killed once all are there.\n"
	"                        A link lost meanwhile leaves neither copy whole: exit 3.\n"
	"                        =auto: only when the downtime would not fit\n"
	"                        --downtime-limit (instead of --over-limit)\n"
	"  --leave-running       keep the source running after the last round\n"
	"                        (an established TCP connection is then refused:\n"
	"                        two copies cannot own it; see --tcp-close)\n"
	"  --tcp-close           established TCP connections are not carried: the\n"
	"                        program finds each one reset at the destination\n"
	"                        (ECONNRESET, then end of file), for clients that\n"
	"                        reconnect. Default: carried exactly (TCP repair mode,\n"
	"                        packets dropped by an nftables table during the\n"
	"                        hand-over; needs the nft command), docs/tcp.md\n"
	"  --tcp-refuse          refuse a process that has a TCP connection, by name\n"
	"  --accept-wait MS      before the final freeze, new connections to the\n"
	"                        process's listening TCP sockets wait (SYNs dropped)\n"
	"                        and up to MS pass for it to accept those already\n"
	"                        queued, which cannot travel (default 2000; 0: refuse\n"
	"                        a non-empty accept queue at once)\n"
	"  --json                print round statistics as JSON lines\n"
	"\n"
	"Network (docs/network.md):\n"
	"  --move-address ADDR/PREFIX[@IFACE]\n"
	"                        the service address moves with the process: taken off\n"
	"                        its interface here at the freeze, added at the\n"
	"                        destination (on IFACE, else on the interface its route\n"
	"                        leaves by) before the process runs there, announced by\n"
	"                        gratuitous ARP / unsolicited neighbour advertisement;\n"
	"                        checked from here (ARP probe / neighbour solicitation)\n"
	"                        before the commit; put back here on any failure before\n"
	"                        the commit\n"
	"  --hook PHASE=CMD      run `sh -c CMD` here at PHASE: freeze (frozen, state\n"
	"                        dumped), restored (the destination holds its copy),\n"
	"                        rollback (the source runs again after a failure at or\n"
	"                        after the freeze), done (migrated); repeatable. A failing\n"
	"                        freeze or restored hook fails the migration (rollback);\n"
	"                        environment: FERRY_PHASE, FERRY_PID, FERRY_MIGRATION_ID,\n"
	"                        FERRY_DEST, FERRY_MOVE_ADDRESS\n"
	"  --hook-timeout S      a hook running longer is killed and failed (default 30)\n"
	"  --unix-reconnect[=PATH]\n"
	"                        unix sockets connected to a peer outside the process tree\n"
	"                        (at PATH, or \"@name\" for an abstract one; without =PATH\n"
	"                        any) are connected again to the same address at the\n"
	"                        destination, instead of refused; repeatable. One with\n"
	"                        unread data is refused\n"
	"\n"
	"Scripted rounds (one pre-copy round per call, the target running between):\n"
	"  --session SOCK        session socket; the first --pre-dump starts a session\n"
	"                        daemon there that keeps the dirty tracking between calls\n"
	"  --pre-dump            run one pre-copy round and print its statistics\n"
	"  --final               final round (freeze, dump, restore at the destination)\n"
	"  --abort               end the session; the target runs on untouched\n"
	"                        (each --pre-dump line holds the predicted downtime for\n"
	"                        the script to decide on; no auto-converge in a session:\n"
	"                        the target is let go between rounds)\n"
	"  --session-timeout S   end an idle session after S seconds (default 600);\n"
	"                        it also ends when the target exits\n"
	"  -v, --verbose         more detail on stderr (repeat for debug)\n"
	"  --log-file FILE       detailed log\n"
	"  -h, --help            this text\n"
	"\n"
	"Exit status: 0 migrated; 2 bad usage; 3 in doubt: the link was lost after\n"
	"commit, the source is left stopped and the message says how to resolve it\n"
	"(docs/handover.md). On any other failure the source keeps running and the\n"
	"status says whose problem it is: 4 the target (no such process, it exited,\n"
	"an object ferry refuses), 5 the destination (unreachable, refused, TLS,\n"
	"restore failed there), 6 this host (permission, disk, a missing kernel\n"
	"feature or capability), 1 anything else.\n";

enum { OPT_TO = 256, OPT_DIR, OPT_ID, OPT_CA, OPT_CERT, OPT_KEY, OPT_INSECURE, OPT_ROUNDS,
       OPT_SMALL, OPT_TRACK, OPT_LEAVE, OPT_JSON, OPT_LOG, OPT_SESSION, OPT_PREDUMP,
       OPT_FINAL, OPT_ABORT, OPT_SESSION_TIMEOUT, OPT_LIMIT, OPT_OVER_LIMIT, OPT_NO_AUTOCONV,
       OPT_MOVE_ADDR, OPT_HOOK, OPT_HOOK_TIMEOUT, OPT_UNIX_RECONNECT, OPT_TCP_CLOSE, OPT_TCP_REFUSE,
       OPT_ACCEPT_WAIT, OPT_POSTCOPY };

static const struct option long_opts[] = {
	{ "to", required_argument, NULL, OPT_TO },
	{ "images-dir", required_argument, NULL, OPT_DIR },
	{ "id", required_argument, NULL, OPT_ID },
	{ "tls-ca", required_argument, NULL, OPT_CA },
	{ "tls-cert", required_argument, NULL, OPT_CERT },
	{ "tls-key", required_argument, NULL, OPT_KEY },
	{ "insecure", no_argument, NULL, OPT_INSECURE },
	{ "max-rounds", required_argument, NULL, OPT_ROUNDS },
	{ "small-dirty", required_argument, NULL, OPT_SMALL },
	{ "dirty-tracking", required_argument, NULL, OPT_TRACK },
	{ "downtime-limit", required_argument, NULL, OPT_LIMIT },
	{ "over-limit", required_argument, NULL, OPT_OVER_LIMIT },
	{ "no-auto-converge", no_argument, NULL, OPT_NO_AUTOCONV },
	{ "leave-running", no_argument, NULL, OPT_LEAVE },
	{ "postcopy", optional_argument, NULL, OPT_POSTCOPY },
	{ "tcp-close", no_argument, NULL, OPT_TCP_CLOSE },
	{ "tcp-refuse", no_argument, NULL, OPT_TCP_REFUSE },
	{ "accept-wait", required_argument, NULL, OPT_ACCEPT_WAIT },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "verbose", no_argument, NULL, 'v' },
	{ "log-file", required_argument, NULL, OPT_LOG },
	{ "session", required_argument, NULL, OPT_SESSION },
	{ "pre-dump", no_argument, NULL, OPT_PREDUMP },
	{ "final", no_argument, NULL, OPT_FINAL },
	{ "abort", no_argument, NULL, OPT_ABORT },
	{ "session-timeout", required_argument, NULL, OPT_SESSION_TIMEOUT },
	{ "move-address", required_argument, NULL, OPT_MOVE_ADDR },
	{ "hook", required_argument, NULL, OPT_HOOK },
	{ "hook-timeout", required_argument, NULL, OPT_HOOK_TIMEOUT },
	{ "unix-reconnect", optional_argument, NULL, OPT_UNIX_RECONNECT },
	{ "help", no_argument, NULL, 'h' },
	{ 0 }
};

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || *out > max)
		return -EINVAL;
	return 0;
}

static int parse_backend(const char *s, enum dirty_backend *b)
{
	if (!strcmp(s, "uffd"))
		*b = DIRTY_UFFD_WP;
	else if (!strcmp(s, "soft-dirty"))
		*b = DIRTY_SOFT_DIRTY;
	else if (!strcmp(s, "none"))
		*b = DIRTY_NONE;
	else
		return -EINVAL;
	return 0;
}

/* Gone, or dead and waiting to be reaped by its parent. */
static int session_verdict(int ret)
{
	if (ret == MIGRATE_IN_DOUBT)
		return MIGRATE_EXIT_IN_DOUBT;	/* the daemon's line said what to do */
	if (ret && *log_reason())
		fprintf(stderr, "migrate: %s\n", log_reason());
	/* the session daemon gone (EPIPE) is not the destination's doing */
	return ret == -EPIPE ? FERRY_EXIT_FAILED : exit_status_of(ret, FERRY_EXIT_FAILED);
}

int main(int argc, char **argv)
{
	static char host[256], port[16];
	struct migrate_opts o = { .max_rounds = 8, .small_dirty_pages = 256,
				  .backend = DIRTY_UFFD_WP,
				  .downtime_limit_ms = DOWNTIME_LIMIT_MS_DEFAULT };
	const char *log_file = NULL, *to = NULL, *session = NULL;
	unsigned long long v, idle_s = 600;
	int verbose = 0, c, ret, cmd = -1;
	enum tcp_mode tcp_mode = TCP_MODE_CARRY;
	bool tcp_mode_set = false, net_opts = false;
	char msg[160], why[200];
	pid_t pid = 0;

	const char *base = strrchr(argv[0], '/');

	if ((argc > 1 && !strcmp(argv[1], "check")) || !strcmp(base ? base + 1 : argv[0], "check")) {
		log_init("check", 0, NULL);
		return argc > 1 && !strcmp(argv[1], "check") ? check_main(argc - 1, argv + 1) :
			check_main(argc, argv);
	}
	log_init("migrate", 0, NULL);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "vh", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_TO: to = optarg; break;
		case OPT_DIR: o.images_dir = optarg; break;
		case OPT_ID: o.id = optarg; break;
		case OPT_CA: o.tls.ca = optarg; break;
		case OPT_CERT: o.tls.cert = optarg; break;
		case OPT_KEY: o.tls.key = optarg; break;
		case OPT_INSECURE: o.tls.insecure = true; break;
		case OPT_ROUNDS:
			if (parse_uint(optarg, 1000, &v) || !v)
				return usage_error("--max-rounds wants a number from 1 to 1000, not '%s'", optarg);
			o.max_rounds = v;
			break;
		case OPT_SMALL:
			if (parse_uint(optarg, 1ULL << 40, &v))
				return usage_error("--small-dirty wants a page count, not '%s'", optarg);
			o.small_dirty_pages = v;
			break;
		case OPT_TRACK:
			if (parse_backend(optarg, &o.backend))
				return usage_error("--dirty-tracking is uffd, soft-dirty or none, not '%s'", optarg);
			break;
		case OPT_LIMIT:
			if (parse_uint(optarg, 3600000, &v))
				return usage_error("--downtime-limit wants milliseconds (0 to 3600000), not '%s'",
						   optarg);
			o.downtime_limit_ms = v;
			break;
		case OPT_OVER_LIMIT:
			if (strcmp(optarg, "freeze") && strcmp(optarg, "fail"))
				return usage_error("--over-limit is freeze or fail, not '%s'", optarg);
			o.limit_fail = !strcmp(optarg, "fail");
			break;
		case OPT_NO_AUTOCONV: o.no_auto_converge = true; break;
		case OPT_POSTCOPY:
			if (optarg && strcmp(optarg, "auto"))
				return usage_error("--postcopy takes nothing or =auto, not '%s'", optarg);
			o.postcopy = optarg ? PC_AUTO : PC_ON;
			break;
		case OPT_LEAVE: o.leave_running = true; break;
		case OPT_TCP_CLOSE:
		case OPT_TCP_REFUSE:
			if (tcp_mode_set)
				return usage_error("%s", "give at most one of --tcp-close and --tcp-refuse");
			tcp_mode_set = true;
			tcp_mode = c == OPT_TCP_CLOSE ? TCP_MODE_CLOSE : TCP_MODE_REFUSE;
			break;
		case OPT_ACCEPT_WAIT:
			if (parse_uint(optarg, 600000, &v))
				return usage_error("--accept-wait wants milliseconds (0 to 600000), not '%s'",
						   optarg);
			tcp_set_accept_wait(v);
			break;
		case OPT_JSON: o.json = true; break;
		case OPT_LOG: log_file = optarg; break;
		case OPT_SESSION: session = optarg; break;
		case OPT_PREDUMP: cmd = SESSION_ROUND; break;
		case OPT_FINAL: cmd = SESSION_FINAL; break;
		case OPT_ABORT: cmd = SESSION_ABORT; break;
		case OPT_SESSION_TIMEOUT:
			if (parse_uint(optarg, 1 << 30, &idle_s))
				return usage_error("--session-timeout wants seconds, not '%s'", optarg);
			break;
		case OPT_MOVE_ADDR:
			if (o.move_addr_set)
				return usage_error("%s", "--move-address: one address per migration");
			if (net_addr_parse(optarg, &o.move_addr, why, sizeof(why)))
				return usage_error("--move-address: %s", why);
			o.move_addr_set = true;
			net_opts = true;
			break;
		case OPT_HOOK:
			if (hook_parse(&o.hooks, optarg, why, sizeof(why)))
				return usage_error("%s", why);
			net_opts = true;
			break;
		case OPT_HOOK_TIMEOUT:
			if (parse_uint(optarg, 3600, &v) || !v)
				return usage_error("--hook-timeout wants 1 to 3600 seconds, not '%s'", optarg);
			o.hooks.timeout_s = v;
			break;
		case OPT_UNIX_RECONNECT:
			if (optarg && (!*optarg || (*optarg != '/' && *optarg != '@') ||
				       strlen(optarg) > 107))
				return usage_error("--unix-reconnect=%s: want an absolute path or "
						   "@abstract-name of at most 107 bytes", optarg);
			if (sock_unix_reconnect_add(optarg))
				return usage_error("%s", "--unix-reconnect: out of memory");
			net_opts = true;
			break;
		case 'v': verbose++; break;
		case 'h': fputs(usage, stdout); return 0;
		default:
			return usage_error("%s", getopt_problem(argv, optind, optopt, msg, sizeof(msg)));
		}
	}
	tcp_set_mode(tcp_mode, o.leave_running);
	if (!session != (cmd < 0))
		return usage_error("%s", "--session goes with one of --pre-dump, --final, --abort");
	if (optind < argc - 1 || (optind == argc && !session))
		return usage_error("%s", "one PID expected");
	if (optind == argc - 1) {
		if (parse_uint(argv[optind], 1 << 22, &v) || v < 2)
			return usage_error("'%s' is not a process id", argv[optind]);
		pid = v;
	}
	if (net_opts && session && (cmd != SESSION_ROUND || (!to && !o.images_dir)))
		return usage_error("%s", "--move-address, --hook and --unix-reconnect go with the "
				   "first --pre-dump of a session (or a whole migration)");
	if (o.postcopy && (session || o.images_dir || o.leave_running))
		return usage_error("%s", "--postcopy goes with a whole migration --to HOST:PORT, "
				   "without --leave-running (the frozen source serves the last "
				   "pages, then goes)");
	if (o.postcopy == PC_AUTO && !o.downtime_limit_ms)
		return usage_error("%s", "--postcopy=auto acts when the downtime would not fit "
				   "--downtime-limit: give one (not 0)");
	if (o.move_addr_set && o.leave_running)
		return usage_error("%s", "--move-address with --leave-running: the source keeps "
				   "running, so its address cannot leave it");
	if (session && (cmd != SESSION_ROUND || (!to && !o.images_dir))) {
		log_init("migrate", verbose, log_file);
		log_defer_errors();
		return session_verdict(session_run(session, cmd, 0, &o, idle_s));
	}
	if (!to == !o.images_dir)
		return usage_error("%s", "give exactly one of --to HOST:PORT and --images-dir DIR");
	if (to && parse_host_port(to, host, sizeof(host), port, sizeof(port)))
		return usage_error("--to wants HOST:PORT, not '%s'", to);
	if (to && !*host)
		return usage_error("--to needs a host: '%s'", to);
	o.host = host;
	o.port = port;
	if (to && !o.tls.insecure && (!o.tls.ca || !o.tls.cert || !o.tls.key))
		return usage_error("%s", "TLS needs --tls-ca, --tls-cert and --tls-key (or --insecure)");
	log_init("migrate", verbose, log_file);
	log_defer_errors();
	if (pid && (pid == getpid() || (kill(pid, 0) && errno == ESRCH))) {
		fprintf(stderr, "migrate: no process %s to migrate\n", argv[optind]);
		return FERRY_EXIT_TARGET;
	}
	if (pid && check_migrate_needs(o.backend, msg, sizeof(msg))) {
		fprintf(stderr, "migrate: this host cannot migrate: %s is missing (see `check`)\n", msg);
		return FERRY_EXIT_LOCAL;
	}
	if (session) {
		migrate_catch_signals();
		return session_verdict(session_run(session, cmd, pid, &o, idle_s));
	}
	ret = migrate_run(pid, &o);
	if (ret == MIGRATE_IN_DOUBT)
		return MIGRATE_EXIT_IN_DOUBT;	/* migration_close said what to do */
	if (ret && proc_gone(pid)) {
		fprintf(stderr, "migrate: pid %d exited during the migration: nothing to migrate\n",
			pid);
		return FERRY_EXIT_TARGET;
	} else if (ret) {
		fprintf(stderr, "migrate: migration of pid %d failed: %s (pid %d runs on here)\n",
			pid, *log_reason() ? log_reason() : strerror(-ret), pid);
	}
	return exit_status_of(ret, FERRY_EXIT_FAILED);
}
