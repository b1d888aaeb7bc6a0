// SPDX-License-Identifier: MIT
/* Scripted pre-copy rounds through a session daemon: see session.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/log.h"
#include "common/util.h"
#include "source-agent/preflight.h"
#include "source-agent/session.h"

static const char *const cmd_names[] = { "round", "final", "abort" };

static int session_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path)) {
		pr_err("session path %s is too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa->sun_path, path);
	return 0;
}

/* A unix socket at @path, connected (client) or listening (daemon). */
static int session_socket(const char *path, bool listening)
{
	struct sockaddr_un sa;
	int fd, ret;

	ret = session_addr(path, &sa);
	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (listening)
		unlink(path);	/* a stale socket of a dead session: it did not answer connect */
	if (listening ? bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4)
		      : connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

/* Send the command, copy the daemon's lines to stdout; its last line is the verdict. */
static int session_request(int fd, enum session_cmd cmd, bool json)
{
	char line[1024];
	FILE *f;
	int ret = -EPIPE;

	dprintf(fd, "%s%s\n", cmd_names[cmd], json ? " json" : "");
	f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		if (!strcmp(line, "ok\n")) {
			ret = 0;
		} else if (!strncmp(line, "error: ", 7)) {
			fprintf(stderr, "migrate: session: %s", line + 7);
			ret = strncmp(line + 7, "IN DOUBT:", 9) ? -EIO : MIGRATE_IN_DOUBT;
		} else {
			fputs(line, stdout);
		}
	}
	fclose(f);
	if (ret == -EPIPE)
		pr_err("the session daemon went away without an answer");
	fflush(stdout);
	return ret;
}

/* "round", "final" or "abort", then " json" for JSON lines. */
static int read_cmd(int cfd, enum session_cmd *cmd, bool *json)
{
	char buf[32];
	ssize_t n = read(cfd, buf, sizeof(buf) - 1);
	size_t i;

	if (n <= 0)
		return -EINVAL;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	*json = strstr(buf, " json") != NULL;
	buf[strcspn(buf, " ")] = 0;
	for (i = 0; i < ARRAY_SIZE(cmd_names); i++) {
		if (!strcmp(buf, cmd_names[i])) {
			*cmd = i;
			return 0;
		}
	}
	return -EINVAL;
}

/* One request; returns 1 when the session is over. */
static int serve_one(struct migration *m, int cfd)
{
	struct round_report r;
	enum session_cmd cmd;
	char doubt[800];
	FILE *out;
	int ret, done = 0;

	if (read_cmd(cfd, &cmd, &m->json)) {
		dprintf(cfd, "error: unknown session command\n");
		return 0;
	}
	out = fdopen(dup(cfd), "w");
	if (!out)
		return 0;
	m->out = out;
	switch (cmd) {
	case SESSION_ROUND:
		ret = migration_precopy(m, &r);
		break;
	case SESSION_FINAL:
		ret = migration_final(m);
		done = 1;
		break;
	default:
		ret = -ECANCELED;
		done = 1;
		break;
	}
	if (ret)
		done = 1;	/* a failed round ends the session: the target is let go */
	if (ret == MIGRATE_IN_DOUBT)	/* before the tree is let go: it names its pids */
		migration_in_doubt_msg(m, doubt, sizeof(doubt));
	if (done)
		migration_close(m, cmd == SESSION_FINAL ? ret : -ECANCELED);
	if (ret == MIGRATE_IN_DOUBT)
		fprintf(out, "error: %s\n", doubt);
	else if (ret && cmd != SESSION_ABORT)
		fprintf(out, "error: %s round failed: %s; the target runs on, session ended\n",
			cmd_names[cmd], *log_reason() ? log_reason() : strerror(-ret));
	else
		fprintf(out, "ok\n");
	fclose(out);
	m->out = stdout;
	return done;
}

/* The page server drops a silent session (its idle deadline): ping it. */
#define PING_INTERVAL_MS	5000

/* Between rounds: keep the page server's session alive. false if it is lost. */
static bool session_keepalive(struct migration *m)
{
	struct sink *sk = m->sink;

	if (!sk || !sk->ops->keepalive || !sk->ops->keepalive(sk))
		return true;
	pr_err("session: keepalive to the page server failed: %s", sk->error);
	return false;
}

/*
 * Serve requests until the session ends: by --final/--abort, a failed round,
 * a signal, @idle_s without a request, the target exiting (its pidfd), or
 * the page server lost (a keepalive, every PING_INTERVAL_MS, failed).
 */
static void session_serve(struct migration *m, int lfd, const char *path, unsigned int idle_s)
{
	struct pollfd p[2] = {
		{ .fd = lfd, .events = POLLIN },
		{ .fd = (int)syscall(__NR_pidfd_open, m->pid, 0), .events = POLLIN },
	};
	uint64_t last_req = now_us(), last_ping = last_req;
	const char *why = NULL;

	for (;;) {
		int n = poll(p, 2, PING_INTERVAL_MS), cfd;
		uint64_t now = now_us();

		if (migrate_stop_requested())
			why = "signalled";
		else if (idle_s && now - last_req >= idle_s * 1000000ULL)
			why = "idle too long";
		else if (n > 0 && p[1].revents)
			why = "the target exited";
		else if (now - last_ping >= PING_INTERVAL_MS * 1000ULL &&
			 (last_ping = now, !session_keepalive(m)))
			why = "lost the page server";
		if (why) {
			pr_err("session %s: %s: abandoned, target let go", path, why);
			migration_close(m, -ECANCELED);
			break;
		}
		if (n < 0 || !(p[0].revents & POLLIN))
			continue;
		cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0)
			continue;
		n = serve_one(m, cfd);
		close(cfd);
		last_req = last_ping = now_us();
		if (n)
			break;
	}
	if (p[1].fd >= 0)
		close(p[1].fd);
	close(lfd);
	unlink(path);
}

/* Fork the daemon; it reports "ok" or an error line through @pipe before serving. */
static int session_start(const char *path, pid_t pid, const struct migrate_opts *o,
			 unsigned int idle_s)
{
	struct migration m;
	char msg[256] = "";
	int p[2], lfd, ret, devnull;
	ssize_t n;
	pid_t d;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	fflush(stdout);
	d = fork();
	if (d < 0)
		return -errno;
	if (d > 0) {
		close(p[1]);
		n = read(p[0], msg, sizeof(msg) - 1);
		close(p[0]);
		if (n > 0 && !strncmp(msg, "ok", 2))
			return 0;
		pr_err("cannot start session: %s", n > 0 ? msg : "daemon died");
		return -EIO;
	}
	close(p[0]);
	setsid();
	devnull = open("/dev/null", O_RDWR);
	dup2(devnull, 0);
	dup2(devnull, 1);
	lfd = session_socket(path, true);
	ret = lfd < 0 ? lfd : migration_open(&m, pid, o);
	if (ret) {
		dprintf(p[1], "%s", strerror(-ret));
		_exit(1);
	}
	m.detach_between_rounds = true;
	dprintf(p[1], "ok");
	close(p[1]);
	dup2(devnull, 2);	/* from now on errors go to the client or the log file */
	session_serve(&m, lfd, path, idle_s);
	_exit(0);
}

int session_run(const char *path, enum session_cmd cmd, pid_t pid, const struct migrate_opts *o,
		unsigned int idle_timeout_s)
{
	int fd, ret;

	fd = session_socket(path, false);
	if (fd < 0 && cmd != SESSION_ROUND) {
		pr_err("no session at %s (%s)", path, strerror(-fd));
		return fd;
	}
	if (fd < 0) {
		if (!pid) {
			pr_err("no session at %s: the first --pre-dump needs the PID", path);
			return -EINVAL;
		}
		ret = preflight_tree(pid);	/* refusals before the first round */
		if (!ret)
			ret = session_start(path, pid, o, idle_timeout_s);
		if (ret)
			return ret;
		fd = session_socket(path, false);
		if (fd < 0)
			return fd;
	}
	return session_request(fd, cmd, o->json);
}
