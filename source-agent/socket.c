// SPDX-License-Identifier: MIT
/*
 * Sockets a process holds. Those that only wait for peers travel: bound
 * and listening TCP or unix stream sockets, bound and unconnected UDP or
 * unix datagram sockets. The restore makes them again on the same address.
 * Connected unix sockets whose peer is in the tree too (socketpairs, the
 * self-pipe of an event loop) travel with the stream data waiting on them.
 * With --unix-reconnect, one connected to a peer outside the tree at a named
 * address is connected again to that address at the destination.
 * TCP connections are tcp.c's; other connected sockets are refused, and so
 * is a listening TCP socket with connections in its accept queue.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <linux/sockios.h>
#include <linux/rtnetlink.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/log.h"
#include "common/util.h"
#include "source-agent/files.h"
#include "source-agent/proc.h"

static int opt_int(int s, int level, int name, int *v)
{
	socklen_t len = sizeof(*v);

	return getsockopt(s, level, name, v, &len) ? -errno : 0;
}

static bool sock_connected(int s)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	return !getpeername(s, (struct sockaddr *)&ss, &len);
}

/*
 * A socket made in @pid's network namespace (setns there and back, this
 * thread only): sock_diag answers for the namespace its netlink socket was
 * made in, and a new socket's defaults (TTL, keepalive...) are per
 * namespace. The fd or -errno.
 */
int netns_socket(pid_t pid, int domain, int type, int proto)
{
	struct stat them, us;
	char path[64];
	int ns = -1, self = -1, s = -1, err = 0;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	if (stat(path, &them) || stat("/proc/self/ns/net", &us))
		return -errno;
	if (them.st_ino == us.st_ino && them.st_dev == us.st_dev) {
		s = socket(domain, type | SOCK_CLOEXEC, proto);
		return s < 0 ? -errno : s;
	}
	ns = open(path, O_RDONLY | O_CLOEXEC);
	self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ns < 0 || self < 0 || setns(ns, CLONE_NEWNET)) {
		err = -errno;
		goto out;
	}
	s = socket(domain, type | SOCK_CLOEXEC, proto);
	if (s < 0)
		err = -errno;
	if (setns(self, CLONE_NEWNET)) {
		/* stuck in the target's namespace: nothing after this would be right */
		pr_perror("cannot return to our own network namespace");
		abort();
	}
out:
	if (ns >= 0)
		close(ns);
	if (self >= 0)
		close(self);
	return err ? err : s;
}

int sock_diag_open(pid_t pid)
{
	return netns_socket(pid, AF_NETLINK, SOCK_DGRAM, NETLINK_SOCK_DIAG);
}

/*
 * A unix socket as sock_diag sees it: the inode of its other end (0: none)
 * and what of it is shut down (RCV_SHUTDOWN 1, SEND_SHUTDOWN 2).
 */
static int unix_diag(pid_t pid, uint64_t ino, uint64_t *peer, uint32_t *shut)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST },
		.r = { .sdiag_family = AF_UNIX, .udiag_ino = ino, .udiag_states = ~0U,
		       .udiag_show = UDIAG_SHOW_PEER, .udiag_cookie = { ~0U, ~0U } },
	};
	union { struct nlmsghdr nlh; char buf[8192]; } resp;
	struct unix_diag_msg *m;
	struct rtattr *a;
	ssize_t n;
	int len, nl, ret = -ENOENT;

	*peer = 0;
	*shut = 0;
	nl = sock_diag_open(pid);
	if (nl < 0)
		return nl;
	if (send(nl, &req, sizeof(req), 0) != sizeof(req))
		goto out;
	n = recv(nl, &resp, sizeof(resp), 0);
	if (n < (ssize_t)NLMSG_LENGTH(sizeof(*m)) || !NLMSG_OK(&resp.nlh, n) ||
	    resp.nlh.nlmsg_type != SOCK_DIAG_BY_FAMILY)
		goto out;
	ret = 0;
	m = NLMSG_DATA(&resp.nlh);
	len = resp.nlh.nlmsg_len - NLMSG_LENGTH(sizeof(*m));
	for (a = (struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == UNIX_DIAG_PEER)
			*peer = *(uint32_t *)RTA_DATA(a);
		else if (a->rta_type == UNIX_DIAG_SHUTDOWN)
			*shut = *(uint8_t *)RTA_DATA(a);
	}
out:
	close(nl);
	return ret;
}

/*
 * A UDP socket's shutdown bits (RCV 1, SEND 2): inet_diag lists the UDP
 * sockets of @family, this one found by its inode @ino: 0, or -ENOENT when
 * it is not seen (its state would be guessed: refused).
 */
static int udp_shutdown(pid_t pid, int family, uint64_t ino, uint32_t *shut)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.r = { .sdiag_family = family, .sdiag_protocol = IPPROTO_UDP, .idiag_states = ~0U },
	};
	union { struct nlmsghdr nlh; char buf[32768]; } resp;
	bool done = false, seen = false;
	int nl;

	*shut = 0;
	nl = sock_diag_open(pid);
	if (nl < 0)
		return nl;
	if (send(nl, &req, sizeof(req), 0) != sizeof(req))
		done = true;
	while (!done) {
		ssize_t n = recv(nl, &resp, sizeof(resp), 0);
		struct nlmsghdr *h;

		if (n <= 0)
			break;
		for (h = &resp.nlh; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			struct inet_diag_msg *m = NLMSG_DATA(h);
			struct rtattr *a;
			int len;

			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) {
				done = true;	/* NLMSG_DONE or an error */
				break;
			}
			if (m->idiag_inode != ino)
				continue;
			seen = true;
			len = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));
			for (a = (struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len))
				if (a->rta_type == INET_DIAG_SHUTDOWN)
					*shut = *(uint8_t *)RTA_DATA(a);
		}
	}
	close(nl);
	return seen ? 0 : -ENOENT;
}

#define MAX_QUEUED (1u << 20)

/*
 * Every byte waiting on stream socket @s, peeked without moving anything:
 * SO_PEEK_OFF (which a peek would advance) is off for the peek and put
 * back. A peek stops at fds or credentials in flight (SCM_RIGHTS,
 * SO_PASSCRED), which cannot travel: then it sees less than SIOCINQ says,
 * or a control message, and the socket is refused (-EOPNOTSUPP).
 */
static ssize_t sock_peek_all(int s, uint8_t *buf, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	int off = -1, none = -1, inq = 0;
	socklen_t olen = sizeof(off);
	ssize_t n;

	if (!getsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &off, &olen) && off >= 0)
		setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &none, sizeof(none));
	n = recvmsg(s, &mh, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0)
		n = errno == EAGAIN ? 0 : -errno;
	if (off >= 0)
		setsockopt(s, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off));
	if (n <= 0)
		return n;	/* nothing: the kernel left msg_controllen as it was */
	if (ioctl(s, SIOCINQ, &inq))
		return -errno;
	if (mh.msg_controllen || (mh.msg_flags & MSG_CTRUNC) || (n < (ssize_t)len && n != inq)) {
		pr_err("a unix socket has file descriptors or credentials in flight among its "
		       "unread data (SCM_RIGHTS, SO_PASSCRED): ferry cannot move them yet");
		return -EOPNOTSUPP;
	}
	return n;
}

/*
 * Has unix socket @s a name of its own or a named peer? A pair of the tree
 * is made again with socketpair(2), without names: one accepted from a
 * bound socket (its name the listener's path, its client's peer name too),
 * or connected to a bound datagram socket, would lose them.
 */
static bool sock_named_pair(int s)
{
	struct sockaddr_un a;
	socklen_t l = sizeof(a);

	if (!getsockname(s, (struct sockaddr *)&a, &l) && l > offsetof(struct sockaddr_un, sun_path))
		return true;
	l = sizeof(a);
	return !getpeername(s, (struct sockaddr *)&a, &l) &&
	       l > offsetof(struct sockaddr_un, sun_path);
}

/*
 * A connected unix socket: its peer @peer (it must be in the tree: checked
 * when restoring) and what waits unread on this end, peeked, not taken.
 */
static int sock_connected_unix(int s, int type, uint64_t ino, uint64_t peer, SockEntry *se,
			       uint8_t **queued)
{
	ssize_t n;

	if (!peer)
		return -EOPNOTSUPP;
	se->has_ino = se->has_peer_ino = 1;
	se->ino = ino;
	se->peer_ino = peer;
	/* messages: a peek sees only the first (SIOCINQ counts them all) */
	if (type != SOCK_STREAM) {
		int inq = 0;

		if (ioctl(s, SIOCINQ, &inq))
			return -errno;
		if (inq > 0) {
			pr_err("a connected unix %s socket has messages queued unread: ferry "
			       "cannot move them yet", type == SOCK_SEQPACKET ? "seqpacket" :
			       "datagram");
			return -EOPNOTSUPP;
		}
	}
	*queued = malloc(MAX_QUEUED);
	if (!*queued)
		return -ENOMEM;
	n = sock_peek_all(s, *queued, MAX_QUEUED);
	if (n < 0)
		return n;
	if (n > 0 && (type != SOCK_STREAM || n == MAX_QUEUED))
		return -EOPNOTSUPP;	/* messages: a peek sees only the first */
	se->has_queued = 1;
	se->queued.data = *queued;
	se->queued.len = n > 0 ? n : 0;
	return 0;
}

/*
 * --unix-reconnect: the peer addresses whose connections are made again at
 * the destination (the peer being a service that runs on both hosts), or
 * every one (reconnect_all).
 */
static char **reconnect_paths;
static size_t nr_reconnect;
static bool reconnect_all;

int sock_unix_reconnect_add(const char *path)
{
	char **v;

	if (!path) {
		reconnect_all = true;
		return 0;
	}
	v = realloc(reconnect_paths, (nr_reconnect + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	reconnect_paths = v;
	v[nr_reconnect++] = (char *)path;
	return 0;
}

/* A unix address as a user writes it: "/path" or "@abstract" (NUL bytes as '@'). */
static void unix_addr_str(const struct sockaddr_un *un, socklen_t len, char *buf, size_t blen)
{
	size_t n = len - offsetof(struct sockaddr_un, sun_path), i;

	if (n && un->sun_path[0]) {
		snprintf(buf, blen, "%.*s", (int)strnlen(un->sun_path, n), un->sun_path);
		return;
	}
	for (i = 0; i < n && i + 1 < blen; i++)
		buf[i] = un->sun_path[i] ? un->sun_path[i] : '@';
	buf[i] = 0;
}

static bool reconnect_match(const char *name)
{
	size_t i;

	for (i = 0; i < nr_reconnect; i++)
		if (!strcmp(reconnect_paths[i], name))
			return true;
	return reconnect_all;
}

/*
 * A connected unix socket whose peer's address --unix-reconnect names: it
 * will be connected again to that address at the destination (whether the
 * peer is outside the tree is checked once the whole tree is seen). What
 * the process has not read yet was sent by the peer here; the new peer
 * never sends it again, so a socket with unread data is refused.
 */
static int sock_unix_reconnect(int s, pid_t pid, int fd, SockEntry *se, struct sockaddr_un *pa)
{
	const struct sockaddr_un *own = (const struct sockaddr_un *)se->addr.data;
	socklen_t len = sizeof(*pa);
	char name[sizeof(pa->sun_path) + 1];

	if ((!nr_reconnect && !reconnect_all) || getpeername(s, (struct sockaddr *)pa, &len) ||
	    len <= offsetof(struct sockaddr_un, sun_path) + 1)
		return 0;	/* no option, or an unnamed peer: paired or refused */
	unix_addr_str(pa, len, name, sizeof(name));
	if (!reconnect_match(name))
		return 0;
	if (se->queued.len) {
		pr_err("pid %d: fd %d is a unix socket connected to %s with %zu bytes it has not "
		       "read yet: --unix-reconnect cannot carry them (the peer at the destination "
		       "never sent them); read them first or migrate later", pid, fd, name,
		       se->queued.len);
		return -EOPNOTSUPP;
	}
	if (se->addr.len > offsetof(struct sockaddr_un, sun_path) + 1 && own->sun_path[0]) {
		pr_err("pid %d: fd %d is a unix socket connected to %s but bound to a path of its "
		       "own (%.*s): --unix-reconnect cannot make that again", pid, fd, name,
		       (int)strnlen(own->sun_path, sizeof(own->sun_path)), own->sun_path);
		return -EOPNOTSUPP;
	}
	se->has_reconnect_addr = 1;
	se->reconnect_addr.data = (uint8_t *)pa;
	se->reconnect_addr.len = len;
	return 0;
}

/* "a connected TCP", "an unbound unix datagram"...: for a refusal. */
static const char *sock_name(int s, int domain, int type, const struct sockaddr_storage *ss,
			     socklen_t len)
{
	static char buf[96];
	const char *kind, *state;
	bool inet = domain == AF_INET || domain == AF_INET6;
	int port = !inet ? 0 : domain == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port :
		   ((const struct sockaddr_in6 *)ss)->sin6_port;

	if (domain == AF_UNIX)
		kind = type == SOCK_STREAM ? "unix stream" : type == SOCK_DGRAM ? "unix datagram" :
		       "unix seqpacket";
	else if (inet)
		kind = type == SOCK_STREAM ? "TCP" : type == SOCK_DGRAM ? "UDP" : "raw IP";
	else
		kind = NULL;
	if (sock_connected(s))
		state = "a connected";
	else if ((inet && !port) || (domain == AF_UNIX && len <= sizeof(sa_family_t)))
		state = "an unbound";
	else if (type == SOCK_STREAM)
		state = "a bound, not listening,";
	else
		state = "a";
	if (kind)
		snprintf(buf, sizeof(buf), "%s %s", state, kind);
	else
		snprintf(buf, sizeof(buf), "%s family %d", state, domain);
	return buf;
}

/* Datagrams waiting on an unconnected socket: they cannot travel yet. */
static int sock_refuse_queue(int s, pid_t pid, int fd, int domain, int type)
{
	char c;

	if (type == SOCK_STREAM || recv(s, &c, 1, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC) < 0)
		return 0;
	pr_err("pid %d: fd %d is a %s datagram socket with datagrams queued: ferry cannot move "
	       "datagram queues yet", pid, fd, domain == AF_UNIX ? "unix" : "UDP");
	return -EOPNOTSUPP;
}

/*
 * An eBPF filter (SO_ATTACH_BPF) has no instructions SO_GET_FILTER could
 * give back (EACCES): refused, naming it. A classic one travels
 * (sock_opts_read).
 */
int sock_refuse_filter(int s, pid_t pid, int fd)
{
	socklen_t len = 0;

	if (!getsockopt(s, SOL_SOCKET, SO_GET_FILTER, NULL, &len) || errno != EACCES)
		return 0;
	pr_err("pid %d: fd %d is a socket with an eBPF filter attached (SO_ATTACH_BPF): ferry "
	       "cannot move eBPF programs", pid, fd);
	return -EOPNOTSUPP;
}

/* What this socket is, and whether ferry can make it again. */
static int sock_describe(int s, pid_t pid, int fd, uint64_t ino, SockEntry *se,
			 struct sockaddr_storage *ss, uint8_t **queued, struct sockaddr_un *pa)
{
	socklen_t len = sizeof(*ss);
	int domain, type, proto, acc, v;
	uint64_t peer = 0;
	uint32_t shut = 0;

	if (opt_int(s, SOL_SOCKET, SO_DOMAIN, &domain) || opt_int(s, SOL_SOCKET, SO_TYPE, &type) ||
	    opt_int(s, SOL_SOCKET, SO_PROTOCOL, &proto) ||
	    opt_int(s, SOL_SOCKET, SO_ACCEPTCONN, &acc) ||
	    getsockname(s, (struct sockaddr *)ss, &len))
		return -errno;
	if (sock_refuse_filter(s, pid, fd))
		return -EOPNOTSUPP;
	se->family = domain;
	se->type = type;
	se->protocol = proto;
	se->addr.data = (uint8_t *)ss;
	se->addr.len = len;
	if (domain == AF_UNIX && unix_diag(pid, ino, &peer, &shut)) {
		pr_err("pid %d: fd %d: sock_diag does not show this unix socket: its peer and "
		       "shutdown state are unknown; ferry cannot move it", pid, fd);
		return -EOPNOTSUPP;
	}
	if (shut) {
		se->has_shutdown = 1;
		se->shutdown = shut;
	}
	if (domain == AF_UNIX && sock_connected(s) &&
	    !sock_connected_unix(s, type, ino, peer, se, queued))
		return sock_unix_reconnect(s, pid, fd, se, pa);
	if ((domain != AF_INET && domain != AF_INET6 && domain != AF_UNIX) ||
	    (acc == 0 && type == SOCK_STREAM) || sock_connected(s) ||
	    (domain == AF_UNIX && len <= sizeof(sa_family_t))) {
		pr_err("pid %d: fd %d is %s socket ferry cannot move yet (only bound listening "
		       "or unconnected ones)", pid, fd, sock_name(s, domain, type, ss, len));
		return -EOPNOTSUPP;
	}
	if (sock_refuse_queue(s, pid, fd, domain, type))
		return -EOPNOTSUPP;
	/* the restore binds the path again: it would be back where it is gone */
	if (domain == AF_UNIX && ((struct sockaddr_un *)ss)->sun_path[0] == '/' &&
	    access(((struct sockaddr_un *)ss)->sun_path, F_OK) && errno == ENOENT) {
		pr_err("pid %d: fd %d is a unix socket bound to %s, which was removed since: "
		       "ferry cannot move that yet", pid, fd, ((struct sockaddr_un *)ss)->sun_path);
		return -EOPNOTSUPP;
	}
	se->listening = acc;
	/* a listening TCP socket shut down for reading listens no more: only UDP's */
	if (domain != AF_UNIX && proto == IPPROTO_UDP) {
		if (udp_shutdown(pid, domain, ino, &shut)) {
			pr_err("pid %d: fd %d: sock_diag does not show this UDP socket: its "
			       "shutdown state is unknown; ferry cannot move it", pid, fd);
			return -EOPNOTSUPP;
		}
		se->has_shutdown = !!shut;
		se->shutdown = shut;
	}
	if (!opt_int(s, SOL_SOCKET, SO_REUSEADDR, &v)) {
		se->has_reuseaddr = 1;
		se->reuseaddr = v;
	}
	if (!opt_int(s, SOL_SOCKET, SO_REUSEPORT, &v)) {
		se->has_reuseport = 1;
		se->reuseport = v;
	}
	if (domain == AF_INET6 && !opt_int(s, IPPROTO_IPV6, IPV6_V6ONLY, &v)) {
		se->has_v6only = 1;
		se->v6only = v;
	}
	return 0;
}

/*
 * Options ferry carries: those a program sets on a socket it listens or
 * receives with. Each is read on the socket and on a new one of the same
 * family, type and protocol; only those that differ travel (set again
 * before bind). SO_REUSEADDR, SO_REUSEPORT and IPV6_V6ONLY have fields of
 * their own. Options not listed here (multicast memberships, filters) are
 * not seen.
 */
#define OPT_UNIX	1
#define OPT_INET	2	/* AF_INET and AF_INET6 */
#define OPT_INET6	4
#define OPT_TCP		8
#define OPT_ALL		(OPT_UNIX | OPT_INET | OPT_INET6)

static const struct sock_opt_desc {
	int level, name, kinds;
} sock_opts[] = {
	{ SOL_SOCKET, SO_BROADCAST, OPT_ALL },
	{ SOL_SOCKET, SO_KEEPALIVE, OPT_ALL },
	{ SOL_SOCKET, SO_PRIORITY, OPT_ALL },
	{ SOL_SOCKET, SO_RCVBUF, OPT_ALL },
	{ SOL_SOCKET, SO_SNDBUF, OPT_ALL },
	{ SOL_SOCKET, SO_MARK, OPT_ALL },
	{ SOL_SOCKET, SO_RCVLOWAT, OPT_ALL },
	{ SOL_SOCKET, SO_LINGER, OPT_ALL },
	{ SOL_SOCKET, SO_PASSCRED, OPT_ALL },
	{ SOL_SOCKET, SO_PASSSEC, OPT_ALL },
	{ SOL_SOCKET, SO_TIMESTAMP, OPT_ALL },
	{ SOL_SOCKET, SO_TIMESTAMPNS, OPT_ALL },
	{ SOL_SOCKET, SO_TIMESTAMPING, OPT_ALL },
	{ SOL_SOCKET, SO_RCVTIMEO, OPT_ALL },
	{ SOL_SOCKET, SO_SNDTIMEO, OPT_ALL },
	{ SOL_SOCKET, SO_OOBINLINE, OPT_ALL },
	{ SOL_SOCKET, SO_DONTROUTE, OPT_ALL },
	{ SOL_SOCKET, SO_PEEK_OFF, OPT_ALL },
	{ SOL_SOCKET, SO_RXQ_OVFL, OPT_ALL },
	{ SOL_SOCKET, SO_LOCK_FILTER, OPT_ALL },	/* after the filter (sock_set_opts) */
	{ SOL_SOCKET, SO_BINDTODEVICE, OPT_INET | OPT_INET6 },
	{ IPPROTO_IP, IP_TOS, OPT_INET | OPT_INET6 },
	{ IPPROTO_IP, IP_TTL, OPT_INET | OPT_INET6 },
	{ IPPROTO_IP, IP_OPTIONS, OPT_INET },
	{ IPPROTO_IP, IP_FREEBIND, OPT_INET | OPT_INET6 },
	{ IPPROTO_IP, IP_TRANSPARENT, OPT_INET | OPT_INET6 },
	{ IPPROTO_IP, IP_RECVERR, OPT_INET | OPT_INET6 },
	{ IPPROTO_IP, IP_PKTINFO, OPT_INET | OPT_INET6 },
	{ IPPROTO_IP, IP_RECVTOS, OPT_INET | OPT_INET6 },
	{ IPPROTO_IP, IP_RECVTTL, OPT_INET | OPT_INET6 },
	{ IPPROTO_IP, IP_RECVOPTS, OPT_INET },
	{ IPPROTO_IP, IP_RETOPTS, OPT_INET },
	{ IPPROTO_IP, IP_RECVORIGDSTADDR, OPT_INET | OPT_INET6 },
	{ IPPROTO_IP, IP_MTU_DISCOVER, OPT_INET | OPT_INET6 },
	{ IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, OPT_INET | OPT_INET6 },
	{ IPPROTO_IP, IP_MULTICAST_TTL, OPT_INET | OPT_INET6 },
	{ IPPROTO_IP, IP_MULTICAST_LOOP, OPT_INET | OPT_INET6 },
	{ IPPROTO_IP, IP_MULTICAST_IF, OPT_INET },
	{ IPPROTO_IP, IP_MULTICAST_ALL, OPT_INET | OPT_INET6 },
	{ IPPROTO_IPV6, IPV6_TCLASS, OPT_INET6 },
	{ IPPROTO_IPV6, IPV6_UNICAST_HOPS, OPT_INET6 },
	{ IPPROTO_IPV6, IPV6_MULTICAST_HOPS, OPT_INET6 },
	{ IPPROTO_IPV6, IPV6_MULTICAST_LOOP, OPT_INET6 },
	{ IPPROTO_IPV6, IPV6_MULTICAST_IF, OPT_INET6 },
	{ IPPROTO_IPV6, IPV6_RECVPKTINFO, OPT_INET6 },
	{ IPPROTO_IPV6, IPV6_RECVERR, OPT_INET6 },
	{ IPPROTO_IPV6, IPV6_RECVTCLASS, OPT_INET6 },
	{ IPPROTO_IPV6, IPV6_RECVHOPLIMIT, OPT_INET6 },
	{ IPPROTO_IPV6, IPV6_MTU_DISCOVER, OPT_INET6 },
	{ IPPROTO_IPV6, IPV6_FREEBIND, OPT_INET6 },
	{ IPPROTO_IPV6, IPV6_TRANSPARENT, OPT_INET6 },
	{ IPPROTO_IPV6, IPV6_DONTFRAG, OPT_INET6 },
	{ IPPROTO_TCP, TCP_NODELAY, OPT_TCP },
	{ IPPROTO_TCP, TCP_KEEPIDLE, OPT_TCP },
	{ IPPROTO_TCP, TCP_KEEPINTVL, OPT_TCP },
	{ IPPROTO_TCP, TCP_KEEPCNT, OPT_TCP },
	{ IPPROTO_TCP, TCP_USER_TIMEOUT, OPT_TCP },
	{ IPPROTO_TCP, TCP_SYNCNT, OPT_TCP },
	{ IPPROTO_TCP, TCP_LINGER2, OPT_TCP },
	{ IPPROTO_TCP, TCP_WINDOW_CLAMP, OPT_TCP },
	{ IPPROTO_TCP, TCP_NOTSENT_LOWAT, OPT_TCP },
	{ IPPROTO_TCP, TCP_FASTOPEN, OPT_TCP },
	{ IPPROTO_TCP, TCP_CONGESTION, OPT_TCP },
};

#define NR_SOCK_OPTS	ARRAY_SIZE(sock_opts)
#define OPT_MAX		64	/* IP_OPTIONS 40, names 16, the rest an int or two */

/* What a socket's options point to. */
struct sock_opts_mem {
	SockOpt opt[NR_SOCK_OPTS];
	SockOpt *optp[NR_SOCK_OPTS];
	uint8_t val[NR_SOCK_OPTS][OPT_MAX];
	struct sock_filter filter[];	/* SO_GET_FILTER's */
};

/* What a socket's entry points to, alive until files-<pid>.img is sent. */
struct sock_store {
	SockEntry se;
	struct sockaddr_storage ss;
	struct sockaddr_un peer_addr;	/* --unix-reconnect */
	bool named;			/* connected, with a name or a named peer */
	uint8_t *queued;
	struct sock_opts_mem *opts;
};

static int opt_kinds(const SockEntry *se)
{
	switch (se->family) {
	case AF_UNIX:
		return OPT_UNIX;
	case AF_INET:
		return OPT_INET | (se->protocol == IPPROTO_TCP ? OPT_TCP : 0);
	case AF_INET6:
		return OPT_INET6 | (se->protocol == IPPROTO_TCP ? OPT_TCP : 0);
	}
	return 0;
}

int sock_opts_read(pid_t pid, int s, SockEntry *se, void **mem)
{
	struct sock_opts_mem *st;
	int kinds = opt_kinds(se), fresh;
	socklen_t nf = 0, got;
	size_t i;

	/* a classic filter: its length in instructions first */
	if (getsockopt(s, SOL_SOCKET, SO_GET_FILTER, NULL, &nf) || nf > BPF_MAXINSNS)
		nf = 0;	/* none, or eBPF (sock_refuse_filter) */
	st = *mem = calloc(1, sizeof(*st) + nf * sizeof(st->filter[0]));
	if (!st)
		return -ENOMEM;
	got = nf;
	if (nf && (getsockopt(s, SOL_SOCKET, SO_GET_FILTER, st->filter, &got) || got != nf)) {
		pr_err("pid %d: cannot read the BPF filter of a socket (SO_GET_FILTER): %s", pid,
		       got != nf ? "it changed" : strerror(errno));
		return -EIO;
	}
	if (nf) {
		se->has_filter = 1;
		se->filter.data = (uint8_t *)st->filter;
		se->filter.len = nf * sizeof(st->filter[0]);
	}
	fresh = netns_socket(pid, se->family, se->type, se->protocol);
	if (fresh < 0)
		return fresh;
	for (i = 0; i < NR_SOCK_OPTS; i++) {
		const struct sock_opt_desc *o = &sock_opts[i];
		uint8_t def[OPT_MAX], *v = st->val[se->n_opts];
		socklen_t len = OPT_MAX, dlen = OPT_MAX;

		if (!(o->kinds & kinds) ||
		    (o->kinds & OPT_INET && se->family == AF_INET6 && !(o->kinds & OPT_INET6)))
			continue;
		/*
		 * Not on a stream socket: the kernel refuses to set them, and
		 * an accepted one reads its SYN's TTL or hop limit and
		 * incoming interface there.
		 */
		if (se->type == SOCK_STREAM &&
		    ((o->level == IPPROTO_IP &&
		      (o->name == IP_MULTICAST_TTL || o->name == IP_MULTICAST_IF)) ||
		     (o->level == IPPROTO_IPV6 &&
		      (o->name == IPV6_MULTICAST_HOPS || o->name == IPV6_MULTICAST_IF))))
			continue;
		memset(v, 0, OPT_MAX);
		memset(def, 0, OPT_MAX);
		if (getsockopt(s, o->level, o->name, v, &len))
			continue;	/* not on this kernel or this kind: nothing set */
		if (!getsockopt(fresh, o->level, o->name, def, &dlen) && dlen == len &&
		    !memcmp(v, def, len))
			continue;
		sock_opt__init(&st->opt[se->n_opts]);
		st->opt[se->n_opts].level = o->level;
		st->opt[se->n_opts].name = o->name;
		st->opt[se->n_opts].val.data = v;
		st->opt[se->n_opts].val.len = len;
		st->optp[se->n_opts] = &st->opt[se->n_opts];
		se->n_opts++;
	}
	se->opts = st->optp;
	close(fresh);
	return 0;
}

/*
 * Describe socket @fd (inode @ino) of @pid in @st (its address, the data
 * waiting on it, its options), or refuse it.
 */
static int dump_socket(pid_t pid, int fd, uint64_t ino, struct sock_store *st)
{
	int s, ret;

	s = proc_take_fd(pid, fd);  /* same socket: read only its settings */
	if (s < 0) {
		pr_err("pid %d: cannot look at socket fd %d: %s", pid, fd, strerror(-s));
		return s;
	}
	ret = sock_describe(s, pid, fd, ino, &st->se, &st->ss, &st->queued, &st->peer_addr);
	if (!ret && st->se.has_peer_ino)
		st->named = sock_named_pair(s);
	if (!ret)
		ret = sock_opts_read(pid, s, &st->se, (void **)&st->opts);
	close(s);
	return ret;
}

static bool sock_match(const struct fd_dump *d)
{
	return S_ISSOCK(d->st.st_mode);
}

/* At the final dump, a listening TCP socket's new connections wait (tcp.c). */
static int sock_lock_listener(struct fd_dump *d, const char **table)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int s, acc = 0, proto = 0, ret = 0;

	*table = NULL;
	if (!d->sink)
		return 0;
	s = proc_take_fd(d->pid, d->fd);
	if (s < 0)
		return s;
	if (!opt_int(s, SOL_SOCKET, SO_ACCEPTCONN, &acc) && acc &&
	    !opt_int(s, SOL_SOCKET, SO_PROTOCOL, &proto) && proto == IPPROTO_TCP &&
	    !getsockname(s, (struct sockaddr *)&ss, &len) &&
	    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6))
		ret = tcp_lock_listener(d, (struct sockaddr *)&ss, table);
	close(s);
	return ret;
}

static int sock_dump(struct fd_dump *d)
{
	struct sock_store *s = calloc(1, sizeof(*s));
	const char *table = NULL;
	int ret;

	if (!s)
		return -ENOMEM;
	sock_entry__init(&s->se);
	d->priv = s;
	d->e.type = FD_TYPE__FD_SOCK;
	d->e.sock = &s->se;
	ret = sock_lock_listener(d, &table);
	if (!ret)
		ret = dump_socket(d->pid, d->fd, d->st.st_ino, s);
	/* its accept queue is checked after the lock: it stays empty */
	if (!ret && s->se.listening && s->se.protocol == IPPROTO_TCP)
		ret = tcp_check_listener(d);
	s->se.netlock = (char *)table;
	if (!ret && s->se.has_peer_ino)
		ret = file_ids_add_peer(d->ids, s->se.peer_ino, d->pid, d->fd, "unix socket",
					s->se.has_reconnect_addr, s->named);
	return ret;
}

static void sock_free(struct fd_dump *d)
{
	struct sock_store *s = d->priv;

	if (s) {
		free(s->queued);
		free(s->opts);
	}
	free(s);
}

/* The dump's own refusals, on a copy whose entry is thrown away. */
static int sock_check(struct fd_dump *d)
{
	struct fd_dump *t = malloc(sizeof(*t));
	int ret;

	if (!t)
		return -ENOMEM;
	*t = *d;
	t->priv = NULL;
	ret = sock_dump(t);
	sock_free(t);
	free(t);
	return ret;
}

const struct fd_dump_ops sock_dump_ops = {
	.type = FD_TYPE__FD_SOCK,
	.name = "socket",
	.match = sock_match,
	.check = sock_check,
	.dump = sock_dump,
	.free = sock_free,
};
