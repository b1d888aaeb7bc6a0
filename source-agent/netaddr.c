// SPDX-License-Identifier: MIT
/*
 * migrate --move-address (docs/network.md). The address is found in the
 * target's network namespace before anything happens, taken off its
 * interface at the freeze (the final round then carries netaddr.img: the
 * restore adds it at the destination before the tree runs), and put back
 * and announced here on any rollback. The sockets are made once, in the
 * target's namespace, so a rollback works even if the target died.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/netlink.h>

#include "common/log.h"
#include "source-agent/dump.h"
#include "source-agent/files.h"
#include "source-agent/netaddr.h"

int netaddr_prepare(struct addr_move *mv, const struct net_addr *a, pid_t pid)
{
	struct net_addr_found f;
	struct ifreq ifr = { 0 };
	char s[64];
	int domain, type, proto, want = 0, ret;

	memset(mv, 0, sizeof(*mv));
	mv->nl = mv->ann = mv->keeper_fd = -1;
	mv->a = *a;
	mv->on = true;
	net_addr_str(a, s, sizeof(s));
	mv->nl = netns_socket(pid, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	net_addr_announce_socket(a, &domain, &type, &proto);
	mv->ann = netns_socket(pid, domain, type, proto);
	if (mv->nl < 0 || mv->ann < 0) {
		ret = mv->nl < 0 ? mv->nl : mv->ann;
		pr_err("--move-address %s: cannot open a netlink or %s socket in pid %d's network "
		       "namespace: %s", s, a->family == AF_INET ? "packet" : "ICMPv6", pid,
		       strerror(-ret));
		return ret;
	}
	if (a->ifname[0]) {
		want = nl_link_index(mv->nl, a->ifname);
		if (want < 0) {
			pr_err("--move-address %s: no interface %s here (pid %d's network namespace)",
			       s, a->ifname, pid);
			return want == -ENODEV || want == -ENOENT ? -EADDRNOTAVAIL : want;
		}
	}
	ret = nl_addr_find(mv->nl, a, &f);
	if (ret) {
		if (ret == -ENOENT)
			pr_err("--move-address %s: this address is not on any interface here (pid "
			       "%d's network namespace): nothing to move", s, pid);
		else
			pr_err("--move-address %s: cannot list the addresses here: %s", s,
			       strerror(-ret));
		return ret == -ENOENT ? -EADDRNOTAVAIL : ret;
	}
	if (want && f.ifindex != want) {
		pr_err("--move-address %s: the address is here, but not on %s", s, a->ifname);
		return -EADDRNOTAVAIL;
	}
	if (f.prefix != a->prefix) {
		pr_err("--move-address %s: the address is here with prefix /%u, not /%u", s,
		       f.prefix, a->prefix);
		return -EADDRNOTAVAIL;	/* not here as asked: this host's (exit 6), as above */
	}
	if (f.primary_with_secondaries) {
		/* the kernel deletes the secondaries of a deleted primary (unless promote_secondaries) */
		pr_err("--move-address %s: it is the primary address of its subnet on its interface, "
		       "with secondary addresses: taking it off would take them too; make the "
		       "service address a secondary one", s);
		return -EADDRNOTAVAIL;
	}
	mv->ifindex = f.ifindex;
	ifr.ifr_ifindex = f.ifindex;	/* its name there, for the messages */
	if (ioctl(mv->ann, SIOCGIFNAME, &ifr))
		snprintf(mv->ifname, sizeof(mv->ifname), "#%d", f.ifindex);
	else
		snprintf(mv->ifname, sizeof(mv->ifname), "%s", ifr.ifr_name);
	pr_info("--move-address %s: on %s here, leaves at the freeze", s, mv->ifname);
	return 0;
}

/*
 * The keeper: should migrate die (SIGKILL) between taking the address off
 * and the commit, the kernel lets the source run on (or the destination
 * discards), yet its address would be gone from both hosts. A child that
 * holds nothing but its pipe from us and the two sockets (made in the
 * target's namespace) waits; a word on the pipe lets it go, the end of the
 * pipe without one means we died: it puts the address back and announces
 * it. It must not hold the connection to the page server (the destination
 * would not see us die), so every other fd is closed. We may have threads:
 * the child of a threaded process may only make async-signal-safe calls
 * (a lock another thread held stays held), so its messages are formatted
 * before the fork and it only writes them (no malloc, no stdio).
 */
struct keeper_msgs {
	char back[256], not_back[256];
	size_t back_len, not_back_len;
};

static void keeper_main(struct addr_move *mv, int rfd, const struct keeper_msgs *m)
{
	int keep[3] = { rfd, mv->nl, mv->ann }, null, i, j, t, ret;
	unsigned int from = 3;
	ssize_t n;
	char c;

	for (i = 0; i < 3; i++)		/* sorted, to close the gaps between them */
		for (j = i + 1; j < 3; j++)
			if (keep[j] < keep[i]) {
				t = keep[i];
				keep[i] = keep[j];
				keep[j] = t;
			}
	for (i = 0; i < 3; i++) {
		if ((unsigned int)keep[i] > from)
			close_range(from, keep[i] - 1, 0);
		from = keep[i] + 1;
	}
	close_range(from, ~0U, 0);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);	/* a $(migrate ...) must not wait for us */
	}
	do
		n = read(rfd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1)
		_exit(0);
	ret = nl_addr_add(mv->nl, &mv->a, mv->ifindex);
	if (!ret || ret == -EEXIST) {
		net_addr_announce(mv->ann, &mv->a, mv->ifindex);
		n = write(2, m->back, m->back_len);
	} else {
		n = write(2, m->not_back, m->not_back_len);
	}
	(void)n;	/* nothing else to tell it to */
	_exit(0);
}

/* The keeper's two possible last words, "back on" or not, into @m. */
static void keeper_format(const struct addr_move *mv, struct keeper_msgs *m)
{
	static const char *how[2] = { "back on", "NOT back on (add it by hand)" };
	char *buf[2] = { m->back, m->not_back };
	size_t *len[2] = { &m->back_len, &m->not_back_len };
	char s[64];
	int i, n;

	net_addr_str(&mv->a, s, sizeof(s));
	for (i = 0; i < 2; i++) {
		n = snprintf(buf[i], sizeof(m->back),
			     "migrate: migrate died before the commit: the service address %s is %s %s\n",
			     s, how[i], mv->ifname);
		*len[i] = n < 0 ? 0 : (size_t)n < sizeof(m->back) ? (size_t)n : sizeof(m->back) - 1;
	}
}

static int keeper_start(struct addr_move *mv)
{
	struct keeper_msgs m;
	int p[2];
	pid_t pid;

	keeper_format(mv, &m);
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -errno;
	}
	if (!pid) {
		close(p[1]);
		keeper_main(mv, p[0], &m);
	}
	close(p[0]);
	mv->keeper = pid;
	mv->keeper_fd = p[1];
	return 0;
}

void netaddr_release(struct addr_move *mv)
{
	if (!mv->on || mv->keeper_fd < 0)
		return;
	if (write(mv->keeper_fd, "q", 1) != 1)
		pr_warn("--move-address: cannot tell the keeper to go: %s", strerror(errno));
	close(mv->keeper_fd);
	mv->keeper_fd = -1;
	waitpid(mv->keeper, NULL, 0);
}

int netaddr_leave(struct addr_move *mv, struct sink *sink)
{
	NetAddrEntry e = NET_ADDR_ENTRY__INIT;
	char s[64];
	int ret;

	if (!mv->on)
		return 0;
	net_addr_str(&mv->a, s, sizeof(s));
	ret = nl_addr_del(mv->nl, &mv->a, mv->ifindex);
	if (ret) {
		pr_err("--move-address %s: cannot take it off %s here: %s", s, mv->ifname,
		       strerror(-ret));
		return ret;
	}
	mv->removed = true;
	pr_info("--move-address %s: taken off %s here", s, mv->ifname);
	ret = keeper_start(mv);
	if (ret) {
		pr_err("--move-address %s: cannot start the process that puts it back should we "
		       "die: %s", s, strerror(-ret));
		return ret;
	}
	e.family = mv->a.family;
	e.addr.data = mv->a.addr;
	e.addr.len = net_addr_len(&mv->a);
	e.prefix = mv->a.prefix;
	e.ifname = mv->a.ifname[0] ? mv->a.ifname : NULL;
	return sink_add_msg(sink, "netaddr.img", &e.base);
}

#define PROBE_TRIES	5
#define PROBE_WAIT_MS	400

int netaddr_arrived(struct addr_move *mv)
{
	char s[64];
	int ret;

	if (!mv->on || !mv->removed)
		return 0;
	net_addr_str(&mv->a, s, sizeof(s));
	ret = net_addr_probe(mv->ann, &mv->a, mv->ifindex, PROBE_TRIES, PROBE_WAIT_MS);
	if (ret == -EOPNOTSUPP) {
		pr_info("--move-address %s: %s has no Ethernet address: arrival not checked", s,
			mv->ifname);
		return 0;
	}
	if (ret == -ETIMEDOUT) {
		pr_err("--move-address %s: nothing on the link of %s answers for the address after "
		       "the destination restored the process (is the destination on the same link? "
		       "does its ferry know --move-address?)", s, mv->ifname);
		return -EHOSTUNREACH;
	}
	if (ret) {
		pr_err("--move-address %s: cannot ask the link of %s who has it: %s", s, mv->ifname,
		       strerror(-ret));
		return ret;
	}
	pr_info("--move-address %s: the destination answers for it on the link", s);
	return 0;
}

void netaddr_return(struct addr_move *mv)
{
	char s[64];
	int ret;

	if (!mv->on || !mv->removed)
		return;
	net_addr_str(&mv->a, s, sizeof(s));
	ret = nl_addr_add(mv->nl, &mv->a, mv->ifindex);
	if (ret && ret != -EEXIST) {
		pr_err("--move-address %s: cannot put it back on %s here: %s (add it by hand)", s,
		       mv->ifname, strerror(-ret));
		return;
	}
	mv->removed = false;
	ret = net_addr_announce(mv->ann, &mv->a, mv->ifindex);
	if (ret && ret != -EOPNOTSUPP)
		pr_warn("--move-address %s: back on %s, but the announcement failed: %s", s,
			mv->ifname, strerror(-ret));
	pr_info("--move-address %s: back on %s here", s, mv->ifname);
}

void netaddr_in_doubt(const struct addr_move *mv)
{
	char s[64];

	if (!mv->on || !mv->removed)
		return;
	net_addr_str(&mv->a, s, sizeof(s));
	fprintf(stderr, "migrate: the service address %s was taken off %s here: if you resume the "
		"source here, add it back (ip addr add %s dev %s) once the destination "
		"does not have it\n", s, mv->ifname, s, mv->ifname);
}

void netaddr_close(struct addr_move *mv)
{
	if (!mv->on)
		return;
	netaddr_release(mv);
	if (mv->nl >= 0)
		close(mv->nl);
	if (mv->ann >= 0)
		close(mv->ann);
	mv->nl = mv->ann = -1;
}
