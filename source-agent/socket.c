// SPDX-License-Identifier: MIT
/*
 * Sockets a process holds. Those that only wait for peers travel: bound
 * and listening TCP or unix stream sockets, bound and unconnected UDP or
 * unix datagram sockets. The restore makes them again on the same address.
 * Connected unix sockets whose peer is in the tree too (socketpairs, the
 * self-pipe of an event loop) travel with the stream data waiting on them.
 * Other connected sockets are refused (TCP connections cannot move yet).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/log.h"
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

/* The inode of the other end of a connected unix socket (sock_diag), 0: none. */
static uint64_t unix_peer(uint64_t ino)
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
	uint64_t peer = 0;
	ssize_t n;
	int len, nl;

	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return 0;
	if (send(nl, &req, sizeof(req), 0) != sizeof(req))
		goto out;
	n = recv(nl, &resp, sizeof(resp), 0);
	if (n < (ssize_t)NLMSG_LENGTH(sizeof(*m)) || !NLMSG_OK(&resp.nlh, n) ||
	    resp.nlh.nlmsg_type != SOCK_DIAG_BY_FAMILY)
		goto out;
	m = NLMSG_DATA(&resp.nlh);
	len = resp.nlh.nlmsg_len - NLMSG_LENGTH(sizeof(*m));
	for (a = (struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == UNIX_DIAG_PEER)
			peer = *(uint32_t *)RTA_DATA(a);
out:
	close(nl);
	return peer;
}

#define MAX_QUEUED (1u << 20)

/*
 * A connected unix socket: its peer (it must be in the tree: checked when
 * restoring) and what waits unread on this end, peeked, not taken.
 */
static int sock_connected_unix(int s, int type, uint64_t ino, SockEntry *se, uint8_t **queued)
{
	ssize_t n;

	se->has_ino = se->has_peer_ino = 1;
	se->ino = ino;
	se->peer_ino = unix_peer(ino);
	if (!se->peer_ino)
		return -EOPNOTSUPP;
	*queued = malloc(MAX_QUEUED);
	if (!*queued)
		return -ENOMEM;
	n = recv(s, *queued, MAX_QUEUED, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && errno != EAGAIN)
		return -errno;
	if (n > 0 && (type != SOCK_STREAM || n == MAX_QUEUED))
		return -EOPNOTSUPP;	/* messages: a peek sees only the first */
	se->has_queued = 1;
	se->queued.data = *queued;
	se->queued.len = n > 0 ? n : 0;
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

/* A BPF filter attached (SO_ATTACH_FILTER or _BPF): it cannot travel yet. */
static int sock_refuse_filter(int s, pid_t pid, int fd)
{
	socklen_t len = 0;

	if (getsockopt(s, SOL_SOCKET, SO_GET_FILTER, NULL, &len) ? errno == ENOPROTOOPT : !len)
		return 0;	/* none (an eBPF one gives EACCES) */
	pr_err("pid %d: fd %d is a socket with a BPF filter attached: ferry cannot move socket "
	       "filters yet", pid, fd);
	return -EOPNOTSUPP;
}

/* What this socket is, and whether ferry can make it again. */
static int sock_describe(int s, pid_t pid, int fd, uint64_t ino, SockEntry *se,
			 struct sockaddr_storage *ss, uint8_t **queued)
{
	socklen_t len = sizeof(*ss);
	int domain, type, proto, acc, v;

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
	if (domain == AF_UNIX && sock_connected(s) &&
	    !sock_connected_unix(s, type, ino, se, queued))
		return 0;
	if ((domain != AF_INET && domain != AF_INET6 && domain != AF_UNIX) ||
	    (acc == 0 && type == SOCK_STREAM) || sock_connected(s) ||
	    (domain == AF_UNIX && len <= sizeof(sa_family_t))) {
		pr_err("pid %d: fd %d is %s socket ferry cannot move yet (only bound listening "
		       "or unconnected ones)", pid, fd, sock_name(s, domain, type, ss, len));
		return -EOPNOTSUPP;
	}
	if (sock_refuse_queue(s, pid, fd, domain, type))
		return -EOPNOTSUPP;
	se->listening = acc;
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
 * Describe socket @fd (inode @ino) of @pid in @se (its address kept in @ss,
 * data waiting on it in *queued, to free), or refuse it.
 */
static int dump_socket(pid_t pid, int fd, uint64_t ino, SockEntry *se,
		       struct sockaddr_storage *ss, uint8_t **queued)
{
	int s, ret;

	s = proc_take_fd(pid, fd);  /* same socket: read only its settings */
	if (s < 0) {
		pr_err("pid %d: cannot look at socket fd %d: %s", pid, fd, strerror(-s));
		return s;
	}
	ret = sock_describe(s, pid, fd, ino, se, ss, queued);
	close(s);
	return ret;
}

/* What a socket's entry points to, alive until files-<pid>.img is sent. */
struct sock_store {
	SockEntry se;
	struct sockaddr_storage ss;
	uint8_t *queued;
};

static bool sock_match(const struct fd_dump *d)
{
	return S_ISSOCK(d->st.st_mode);
}

static int sock_dump(struct fd_dump *d)
{
	struct sock_store *s = calloc(1, sizeof(*s));
	int ret;

	if (!s)
		return -ENOMEM;
	sock_entry__init(&s->se);
	d->priv = s;
	d->e.type = FD_TYPE__FD_SOCK;
	d->e.sock = &s->se;
	ret = dump_socket(d->pid, d->fd, d->st.st_ino, &s->se, &s->ss, &s->queued);
	if (!ret && s->se.has_peer_ino)
		ret = file_ids_add_peer(d->ids, s->se.peer_ino, d->pid, d->fd);
	return ret;
}

static void sock_free(struct fd_dump *d)
{
	struct sock_store *s = d->priv;

	if (s)
		free(s->queued);
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
