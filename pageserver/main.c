// SPDX-License-Identifier: MIT
/* The `pageserver` command: receive migrations into image stacks; offline dedup. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/exitcode.h"
#include "common/log.h"
#include "common/util.h"
#include "proto/restore_ctl.h"
#include "imgstack/dedup.h"
#include "pageserver/session.h"
#include "transport/tls.h"

static const char usage[] =
"usage: pageserver --listen [HOST:]PORT --images-dir DIR [options]\n"
"       pageserver dedup DIR/<migration-id>\n"
"\n"
"Receive migrations: each gets DIR/<migration-id>/ with one directory per\n"
"round. On the final round, restore the process tree and report to the source.\n"
"\n"
"  --listen [HOST:]PORT   address to listen on (default host: all IPv4)\n"
"  --images-dir DIR       where image stacks live\n"
"  --auto-dedup           punch pages a newer round replaces out of older rounds\n"
"  --no-restore           keep the final round, do not restore it\n"
"  --no-stream            restore only after the final round (default: `restore\n"
"                         --stream` prepares the process from the first round on)\n"
"  --no-lazy-fill         the final restore waits until the earlier rounds are in\n"
"                         memory (default: what is missing is served on first\n"
"                         touch after the process runs: restore --lazy-fill)\n"
"  --restore-cmd PATH     restore command (default: `restore` next to this binary)\n"
"  --restore-timeout S    kill a final restore that has not reported in S\n"
"                         seconds and report the failure (default 60)\n"
"  --hold-timeout S       a restored tree held for the source's commit is\n"
"                         discarded after S seconds without it (default 30;\n"
"                         docs/handover.md)\n"
"  --once                 exit after one session (0 if it went well)\n"
"  --tls-ca FILE          CA that signed the clients' certificates\n"
"  --tls-cert FILE        this server's certificate\n"
"  --tls-key FILE         its private key\n"
"  --insecure             plain TCP, no authentication (trusted links only)\n"
"  -v, --verbose          more detail (twice: debug)\n"
"  --log-file FILE        log everything to FILE as well\n"
"  -h, --help             this text\n"
"\n"
"dedup: punch holes in every round below the top where a newer round holds\n"
"the same pages (what --auto-dedup does online).\n"
"\n"
"Exit status: 0 done (with --once: the one session went well), 1 the session\n"
"failed (--once), 2 bad usage, 4 dedup: not a stack or a broken one, 6 a\n"
"problem of this host (images dir, TLS files, cannot listen, disk).\n";

enum {
	OPT_LISTEN = 256, OPT_IMAGES, OPT_DEDUP, OPT_NO_RESTORE, OPT_NO_STREAM, OPT_NO_LAZY, OPT_RESTORE_CMD,
	OPT_ONCE, OPT_CA, OPT_CERT, OPT_KEY, OPT_INSECURE, OPT_LOG_FILE, OPT_RESTORE_TIMEOUT,
	OPT_HOLD_TIMEOUT,
};

static const struct option long_opts[] = {
	{ "listen",	 required_argument, NULL, OPT_LISTEN },
	{ "images-dir",	 required_argument, NULL, OPT_IMAGES },
	{ "auto-dedup",	 no_argument,	    NULL, OPT_DEDUP },
	{ "no-restore",	 no_argument,	    NULL, OPT_NO_RESTORE },
	{ "no-stream",	 no_argument,	    NULL, OPT_NO_STREAM },
	{ "no-lazy-fill", no_argument,	    NULL, OPT_NO_LAZY },
	{ "restore-cmd", required_argument, NULL, OPT_RESTORE_CMD },
	{ "restore-timeout", required_argument, NULL, OPT_RESTORE_TIMEOUT },
	{ "hold-timeout", required_argument, NULL, OPT_HOLD_TIMEOUT },
	{ "once",	 no_argument,	    NULL, OPT_ONCE },
	{ "tls-ca",	 required_argument, NULL, OPT_CA },
	{ "tls-cert",	 required_argument, NULL, OPT_CERT },
	{ "tls-key",	 required_argument, NULL, OPT_KEY },
	{ "insecure",	 no_argument,	    NULL, OPT_INSECURE },
	{ "verbose",	 no_argument,	    NULL, 'v' },
	{ "log-file",	 required_argument, NULL, OPT_LOG_FILE },
	{ "help",	 no_argument,	    NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct opts {
	const char *listen, *images_dir, *restore_cmd, *log_file;
	struct tls_opts tls;
	bool auto_dedup, no_restore, no_stream, once, no_lazy_fill;
	unsigned int restore_timeout_s, hold_timeout_s;
	int verbose;
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
	char msg[160];
	int c;

	log_init("pageserver", 0, NULL);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "vh", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:	o->listen = optarg; break;
		case OPT_IMAGES:	o->images_dir = optarg; break;
		case OPT_DEDUP:		o->auto_dedup = true; break;
		case OPT_NO_RESTORE:	o->no_restore = true; break;
		case OPT_NO_STREAM:	o->no_stream = true; break;
		case OPT_NO_LAZY:	o->no_lazy_fill = true; break;
		case OPT_RESTORE_CMD:	o->restore_cmd = optarg; break;
		case OPT_RESTORE_TIMEOUT: {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (!*optarg || *end || !v || v > 86400)
				return usage_error("--restore-timeout: want 1..86400 seconds, "
						   "not '%s'", optarg);
			o->restore_timeout_s = v;
			break;
		}
		case OPT_HOLD_TIMEOUT: {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);

			if (!*optarg || *end || !v || v > 3600)
				return usage_error("--hold-timeout: want 1..3600 seconds, not '%s'",
						   optarg);
			o->hold_timeout_s = v;
			break;
		}
		case OPT_ONCE:		o->once = true; break;
		case OPT_CA:		o->tls.ca = optarg; break;
		case OPT_CERT:		o->tls.cert = optarg; break;
		case OPT_KEY:		o->tls.key = optarg; break;
		case OPT_INSECURE:	o->tls.insecure = true; break;
		case OPT_LOG_FILE:	o->log_file = optarg; break;
		case 'v':		o->verbose++; break;
		case 'h':		fputs(usage, stdout); exit(0);
		default:
			return usage_error("%s", getopt_problem(argv, optind, optopt, msg,
								sizeof(msg)));
		}
	}
	return 0;
}

static int cmd_dedup(int argc, char **argv)
{
	struct opts o = { 0 };
	uint64_t punched = 0;
	int ret;

	if (parse_opts(argc, argv, &o))
		return 2;
	if (optind + 1 != argc)
		return usage_error("usage: pageserver dedup DIR/<migration-id>");
	log_init("pageserver", o.verbose, o.log_file);
	ret = stack_dedup(argv[optind], &punched);
	if (ret) {
		pr_err("dedup of %s failed: %s", argv[optind], strerror(-ret));
		return exit_status_of(ret, FERRY_EXIT_TARGET);
	}
	printf("%s: %llu bytes punched\n", argv[optind], (unsigned long long)punched);
	return 0;
}

/* The `restore` binary next to ours, unless --restore-cmd says otherwise. */
static int find_restore(struct server *srv, const char *opt)
{
	char self[PATH_MAX];
	ssize_t n;

	if (opt) {
		snprintf(srv->restore_cmd, sizeof(srv->restore_cmd), "%s", opt);
		return 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0) {
		pr_perror("cannot read /proc/self/exe");
		return -errno;
	}
	self[n] = 0;
	snprintf(srv->restore_cmd, sizeof(srv->restore_cmd), "%.*s/restore",
		 (int)(sizeof(srv->restore_cmd) - 16), dirname(self));
	return 0;
}

static int check_opts(struct opts *o, char *host, char *port)
{
	char err[256];

	if (!o->listen || !o->images_dir) {
		pr_err("--listen and --images-dir are required (see --help)");
		return -EINVAL;
	}
	if (parse_host_port(o->listen, host, 256, port, 16)) {
		pr_err("bad --listen address %s (want [HOST:]PORT)", o->listen);
		return -EINVAL;
	}
	if (access(o->images_dir, W_OK | X_OK)) {
		pr_perror("images dir %s", o->images_dir);
		return -EACCES;
	}
	if (tls_opts_check(&o->tls, err, sizeof(err))) {
		pr_err("%s", err);
		return -EINVAL;
	}
	return 0;
}

static void on_signal(uv_signal_t *sig, int signum)
{
	server_stop(sig->data, signum == SIGINT ? "interrupted" : "terminated");
}

static int server_init(struct server *srv, struct opts *o)
{
	char err[256];

	srv->loop = uv_default_loop();
	srv->images_dir = o->images_dir;
	srv->auto_dedup = o->auto_dedup;
	srv->no_restore = o->no_restore;
	srv->no_stream = o->no_stream;
	srv->no_lazy_fill = o->no_lazy_fill;
	srv->once = o->once;
	srv->restore_timeout_s = o->restore_timeout_s ? o->restore_timeout_s : RESTORE_TIMEOUT_S;
	srv->hold_timeout_s = o->hold_timeout_s ? o->hold_timeout_s : RCTL_HOLD_TIMEOUT_S;
	if (find_restore(srv, o->restore_cmd))
		return -EINVAL;
	if (o->tls.insecure) {
		pr_warn("INSECURE: --insecure given: sessions are plain TCP, neither side is "
			"authenticated and pages cross the wire unencrypted");
	} else {
		srv->ssl_ctx = tls_ctx_new(&o->tls, true, err, sizeof(err));
		if (!srv->ssl_ctx) {
			pr_err("%s", err);
			return -EINVAL;
		}
	}
	uv_signal_init(srv->loop, &srv->sig_int);
	uv_signal_init(srv->loop, &srv->sig_term);
	srv->sig_int.data = srv->sig_term.data = srv;
	uv_signal_start(&srv->sig_int, on_signal, SIGINT);
	uv_signal_start(&srv->sig_term, on_signal, SIGTERM);
	return 0;
}

int main(int argc, char **argv)
{
	static struct server srv;
	struct opts o = { 0 };
	char host[256], port[16];
	int ret;

	if (argc > 1 && !strcmp(argv[1], "dedup"))
		return cmd_dedup(argc - 1, argv + 1);
	if (parse_opts(argc, argv, &o))
		return 2;
	if (optind != argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	log_init("pageserver", o.verbose, o.log_file);
	signal(SIGPIPE, SIG_IGN);
	ret = check_opts(&o, host, port);
	if (ret)
		return ret == -EINVAL ? FERRY_EXIT_USAGE : FERRY_EXIT_LOCAL;
	if (server_init(&srv, &o) || server_listen(&srv, host, port))
		return FERRY_EXIT_LOCAL;
	uv_run(srv.loop, UV_RUN_DEFAULT);
	uv_loop_close(srv.loop);
	if (srv.ssl_ctx)
		SSL_CTX_free(srv.ssl_ctx);
	return srv.once ? srv.exit_code : 0;
}
