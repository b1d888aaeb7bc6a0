// SPDX-License-Identifier: MIT
/* Running the nft command (see nft.h). */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/nft.h"
#include "common/util.h"

#define NFT_DEADLINE_US	(10 * 1000000ULL)

static const char *const nft_paths[] = { "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft" };

static const char *nft_path(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(nft_paths); i++)
		if (!access(nft_paths[i], X_OK))
			return nft_paths[i];
	return NULL;
}

bool nft_available(void)
{
	return nft_path() != NULL;
}

int nft_run(int nsfd, const char *script, bool quiet)
{
	const char *nft = nft_path();
	uint64_t start = now_us(), deadline = start + NFT_DEADLINE_US;
	int p[2], status = 0;
	pid_t c, w;

	if (!nft)
		return -ENOENT;
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	c = fork();
	if (c == 0) {
		int null = open("/dev/null", O_WRONLY);

		if ((nsfd >= 0 && setns(nsfd, CLONE_NEWNET)) || dup2(p[0], 0) < 0 || null < 0 ||
		    dup2(null, 1) < 0 || (quiet && dup2(null, 2) < 0))
			_exit(126);
		execl(nft, "nft", "-f", "-", (char *)NULL);
		_exit(127);
	}
	close(p[0]);
	if (c < 0) {
		close(p[1]);
		return -errno;
	}
	signal(SIGPIPE, SIG_IGN);
	write_full(p[1], script, strlen(script));
	close(p[1]);
	while ((w = waitpid(c, &status, WNOHANG)) == 0 && now_us() < deadline)
		usleep(2000);
	if (w == 0) {
		kill(c, SIGKILL);
		waitpid(c, &status, 0);
		if (!quiet)
			pr_err("nft did not finish within %llu s", NFT_DEADLINE_US / 1000000ULL);
		return -ETIMEDOUT;
	}
	/* each run is inside the freeze: the verbose log tells what they cost */
	pr_debug("nft run: %zu bytes of script, %llu us", strlen(script),
		 (unsigned long long)(now_us() - start));
	if (w < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
		if (!quiet)
			pr_err("nft failed (status %#x) on: %s", status, script);
		return -EIO;
	}
	return 0;
}

/* @text (its lines whole) is in @s already. */
static bool script_has(const struct nft_script *s, const char *text)
{
	return s && s->len && strstr(s->buf, text);
}

static int script_append(struct nft_script *s, const char *text)
{
	size_t n = strlen(text);

	while (s->len + n >= s->cap)	/* and its NUL */
		if (grow_array(&s->buf, &s->cap, s->cap, 1))
			return -ENOMEM;
	memcpy(s->buf + s->len, text, n + 1);
	s->len += n;
	return 0;
}

static int script_add(struct nft_script *s, const struct nft_script *have, const char *text)
{
	if (script_has(s, text) || script_has(have, text))
		return 0;	/* a socket shared by two fds or processes: locked once */
	return script_append(s, text);
}

int nft_script_table(struct nft_script *s, const char *table)
{
	char text[512];

	/* before conntrack (-200) and any filter: nothing of these packets is seen */
	snprintf(text, sizeof(text),
		 "table inet %s {\n"
		 "  chain in { type filter hook input priority -300; policy accept; }\n"
		 "  chain out { type filter hook output priority -300; policy accept; }\n"
		 "}\n"
		 "insert rule inet %s in meta mark 0x%x accept\n", table, table, NFT_PASS_MARK);
	return script_append(s, text);
}

static void addr_str(const struct sockaddr *sa, char *ip, size_t len, int *port)
{
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, len);
		*port = ntohs(s6->sin6_port);
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, ip, len);
		*port = ntohs(s4->sin_port);
	}
}

int nft_script_conn(struct nft_script *s, const struct nft_script *have, const char *table,
		    const struct sockaddr *local, const struct sockaddr *peer)
{
	char lip[INET6_ADDRSTRLEN], pip[INET6_ADDRSTRLEN], text[1024];
	const char *ip;
	int lport, pport;

	addr_str(local, lip, sizeof(lip), &lport);
	addr_str(peer, pip, sizeof(pip), &pport);
	/* an IPv4-mapped IPv6 socket talks IPv4 on the wire */
	ip = local->sa_family == AF_INET6 && !strchr(lip, '.') ? "ip6" : "ip";
	if (local->sa_family == AF_INET6 && strchr(lip, '.')) {
		memmove(lip, lip + 7, strlen(lip + 7) + 1);	/* "::ffff:" */
		memmove(pip, pip + 7, strlen(pip + 7) + 1);
	}
	snprintf(text, sizeof(text),
		 "add rule inet %s in %s saddr %s %s daddr %s tcp sport %d tcp dport %d drop\n"
		 "add rule inet %s out %s saddr %s %s daddr %s tcp sport %d tcp dport %d drop\n",
		 table, ip, pip, ip, lip, pport, lport, table, ip, lip, ip, pip, lport, pport);
	return script_add(s, have, text);
}

int nft_script_listener(struct nft_script *s, const struct nft_script *have,
			const char *table, const struct sockaddr *local)
{
	char lip[INET6_ADDRSTRLEN], daddr[INET6_ADDRSTRLEN + 16] = "", text[512];
	bool any;
	int lport;

	addr_str(local, lip, sizeof(lip), &lport);
	any = !strcmp(lip, "0.0.0.0") || !strcmp(lip, "::");
	if (!any && strchr(lip, '.'))
		snprintf(daddr, sizeof(daddr), "ip daddr %s ",
			 strncmp(lip, "::ffff:", 7) ? lip : lip + 7);
	else if (!any)
		snprintf(daddr, sizeof(daddr), "ip6 daddr %s ", lip);
	/* a new connection's first segment: SYN without ACK */
	snprintf(text, sizeof(text),
		 "add rule inet %s in %stcp dport %d tcp flags & (syn | ack) == syn drop\n",
		 table, daddr, lport);
	return script_add(s, have, text);
}

int nft_script_unlock(struct nft_script *s, const char *table)
{
	char text[256];

	snprintf(text, sizeof(text), "add table inet %s\ndelete table inet %s\n", table, table);
	return script_append(s, text);
}

int nft_script_move(struct nft_script *to, struct nft_script *from)
{
	int ret = 0;

	if (from->len)
		ret = script_append(to, from->buf);
	if (!ret)
		from->len = 0;
	return ret;
}

void nft_script_free(struct nft_script *s)
{
	free(s->buf);
	memset(s, 0, sizeof(*s));
}
