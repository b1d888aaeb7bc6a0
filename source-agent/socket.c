// SPDX-License-Identifier: MIT
/*
 * Sockets a process holds. Those that only wait for peers travel: bound
 * and listening TCP or unix stream sockets, bound and unconnected UDP or
 * unix datagram sockets. The restore makes them again on the same address.
 * Connected sockets are refused (their peer and queues cannot be moved yet).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/log.h"
#include "source-agent/socket.h"

/* Our own copy of the process's socket (same socket: read only its settings). */
static int take_socket(pid_t pid, int fd)
{
	int pfd = syscall(__NR_pidfd_open, pid, 0), sfd;

	if (pfd < 0)
		return -errno;
	sfd = syscall(__NR_pidfd_getfd, pfd, fd, 0);
	close(pfd);
	return sfd < 0 ? -errno : sfd;
}

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

/* What this socket is, and whether ferry can make it again. */
static int sock_describe(int s, pid_t pid, int fd, SockEntry *se, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);
	int domain, type, proto, acc, v;

	if (opt_int(s, SOL_SOCKET, SO_DOMAIN, &domain) || opt_int(s, SOL_SOCKET, SO_TYPE, &type) ||
	    opt_int(s, SOL_SOCKET, SO_PROTOCOL, &proto) ||
	    opt_int(s, SOL_SOCKET, SO_ACCEPTCONN, &acc) ||
	    getsockname(s, (struct sockaddr *)ss, &len))
		return -errno;
	if ((domain != AF_INET && domain != AF_INET6 && domain != AF_UNIX) ||
	    (acc == 0 && type == SOCK_STREAM) || sock_connected(s) ||
	    (domain == AF_UNIX && len <= sizeof(sa_family_t))) {
		pr_err("pid %d: fd %d is a %s socket ferry cannot move yet (only bound listening "
		       "or unconnected ones)", pid, fd,
		       domain == AF_UNIX ? "unix" : domain == AF_INET || domain == AF_INET6 ?
		       (type == SOCK_STREAM ? "connected TCP" : "connected or unbound") : "such a");
		return -EOPNOTSUPP;
	}
	se->family = domain;
	se->type = type;
	se->protocol = proto;
	se->addr.data = (uint8_t *)ss;
	se->addr.len = len;
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

int dump_socket(pid_t pid, int fd, SockEntry *se, struct sockaddr_storage *ss)
{
	int s, ret;

	s = take_socket(pid, fd);
	if (s < 0) {
		pr_err("pid %d: cannot look at socket fd %d: %s", pid, fd, strerror(-s));
		return s;
	}
	ret = sock_describe(s, pid, fd, se, ss);
	close(s);
	return ret;
}
