// SPDX-License-Identifier: MIT
/*
 * Sockets: a listening or bound one made again on its address; both ends
 * of a connected unix socket of the tree from one socketpair, with the
 * data that waited on each; one connected to a peer outside the tree
 * (--unix-reconnect) connected again to the same address.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/filter.h>

#include "common/log.h"
#include "common/util.h"
#include "dest-agent/restore.h"

static bool sock_paired(const FdEntry *f)
{
	return f->type == FD_TYPE__FD_SOCK && f->sock && f->sock->has_peer_ino &&
	       !f->sock->has_reconnect_addr;
}

static int set_opt(int s, int level, int name, bool has, bool v)
{
	int i = v;

	return has && setsockopt(s, level, name, &i, sizeof(i)) ? -errno : 0;
}

/*
 * The options that differed from a new socket's, set again. The buffer
 * sizes were read doubled by the kernel: half goes in, with the *FORCE
 * variant (past rmem_max/wmem_max, as SO_RCVBUFFORCE may have set them).
 */
int sock_set_opts(int s, const FdEntry *f)
{
	const SockEntry *se = f->sock;
	size_t i;

	/* the classic BPF filter first: SO_LOCK_FILTER, an option, locks it */
	if (se->has_filter) {
		struct sock_fprog prog = {
			.len = se->filter.len / sizeof(struct sock_filter),
			.filter = (struct sock_filter *)se->filter.data,
		};

		if (!se->filter.len || se->filter.len % sizeof(struct sock_filter) ||
		    prog.len > BPF_MAXINSNS) {
			pr_err("fd %u: a socket filter of %zu bytes is no BPF program", f->fd,
			       se->filter.len);
			return -EINVAL;
		}
		if (setsockopt(s, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog))) {
			pr_err("fd %u: cannot attach its BPF socket filter again "
			       "(SO_ATTACH_FILTER): %s", f->fd, strerror(errno));
			return -errno;
		}
	}

	for (i = 0; i < se->n_opts; i++) {
		const SockOpt *o = se->opts[i];
		int name = o->name, half, ret;

		if (o->level == SOL_SOCKET && (name == SO_RCVBUF || name == SO_SNDBUF) &&
		    o->val.len == sizeof(int)) {
			memcpy(&half, o->val.data, sizeof(half));
			half /= 2;
			name = name == SO_RCVBUF ? SO_RCVBUFFORCE : SO_SNDBUFFORCE;
			ret = setsockopt(s, o->level, name, &half, sizeof(half));
		} else {
			ret = setsockopt(s, o->level, name, o->val.data, o->val.len);
		}
		if (ret) {
			pr_err("fd %u: cannot set socket option %u of level %u again: %s", f->fd,
			       o->name, o->level, strerror(errno));
			return -errno;
		}
	}
	return 0;
}

/*
 * @s (AF_INET or AF_INET6) bound to se->addr even if that address is not
 * (yet) one of this host's: a service address handed over with the
 * migration arrives after the restore. IP_FREEBIND is on for the bind
 * only, then as the saved options say.
 */
int sock_bind_freebind(int s, const SockEntry *se)
{
	int level = se->family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
	int name = se->family == AF_INET6 ? IPV6_FREEBIND : IP_FREEBIND;
	socklen_t len = sizeof(int);
	int was = 0, on = 1, ret = 0;

	if (getsockopt(s, level, name, &was, &len) ||
	    setsockopt(s, level, name, &on, sizeof(on)))
		return -errno;
	if (bind(s, (const struct sockaddr *)se->addr.data, se->addr.len))
		ret = -errno;
	if (setsockopt(s, level, name, &was, sizeof(was)))
		ret = ret ?: -errno;
	return ret;
}

/*
 * A listening or bound socket again: same family, type, options and
 * address (a unix socket file left behind by the source is replaced; an IP
 * address this host does not have yet is bound with IP_FREEBIND).
 * Connections that waited in the source's accept queue are not here.
 */
static int open_sock(const FdEntry *f)
{
	const SockEntry *se = f->sock;
	const struct sockaddr_un *un;
	struct stat st;
	int s, ret;

	if (!se || se->addr.len > sizeof(struct sockaddr_storage)) {
		pr_err("fd %u: socket without a usable description", f->fd);
		return -EINVAL;
	}
	s = socket(se->family, se->type | SOCK_CLOEXEC, se->protocol);
	if (s < 0)
		return -errno;
	un = (const struct sockaddr_un *)se->addr.data;
	if (se->family == AF_UNIX && un->sun_path[0] && !lstat(un->sun_path, &st) &&
	    S_ISSOCK(st.st_mode))
		unlink(un->sun_path);
	ret = set_opt(s, SOL_SOCKET, SO_REUSEADDR, se->has_reuseaddr, se->reuseaddr);
	if (!ret)
		ret = set_opt(s, SOL_SOCKET, SO_REUSEPORT, se->has_reuseport, se->reuseport);
	if (!ret)
		ret = set_opt(s, IPPROTO_IPV6, IPV6_V6ONLY, se->has_v6only, se->v6only);
	if (!ret)
		ret = sock_set_opts(s, f);
	if (!ret && bind(s, (const struct sockaddr *)se->addr.data, se->addr.len))
		ret = -errno;
	if (ret == -EADDRNOTAVAIL && (se->family == AF_INET || se->family == AF_INET6))
		ret = sock_bind_freebind(s, se);
	/* held back at the source: new connections wait here too until the release */
	if (!ret && se->listening && se->netlock && *se->netlock)
		ret = tcp_lock(f);
	if (!ret && se->listening && listen(s, SOMAXCONN))
		ret = -errno;
	if (!ret && fcntl(s, F_SETFL, f->flags & O_NONBLOCK))
		ret = -errno;
	if (ret) {
		pr_err("fd %u: cannot make its socket again here: %s", f->fd, strerror(-ret));
		close(s);
		return ret;
	}
	return s;
}

#define RECONNECT_TIMEOUT_S	5	/* a peer whose backlog stays full */

/*
 * A unix socket whose peer was outside the tree (migrate --unix-reconnect):
 * a new one, with its options (and abstract name, if it had one), connected
 * to the same address here, where the same service listens.
 */
static int open_sock_reconnect(const FdEntry *f)
{
	const SockEntry *se = f->sock;
	struct timeval tv = { .tv_sec = RECONNECT_TIMEOUT_S }, old;
	socklen_t olen = sizeof(old);
	struct sockaddr_un to = { 0 };
	char name[sizeof(to.sun_path) + 1];
	size_t i, n;
	int s, ret = 0;

	if (se->family != AF_UNIX || se->reconnect_addr.len > sizeof(to) ||
	    se->reconnect_addr.len <= offsetof(struct sockaddr_un, sun_path) + 1 ||
	    se->addr.len > sizeof(struct sockaddr_un)) {
		pr_err("fd %u: socket to reconnect without a usable address", f->fd);
		return -EINVAL;
	}
	memcpy(&to, se->reconnect_addr.data, se->reconnect_addr.len);
	n = se->reconnect_addr.len - offsetof(struct sockaddr_un, sun_path);
	for (i = 0; i < n && i + 1 < sizeof(name); i++)
		name[i] = to.sun_path[i] ? to.sun_path[i] : '@';
	name[to.sun_path[0] ? strnlen(to.sun_path, n) : i] = 0;
	s = socket(AF_UNIX, se->type | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	ret = sock_set_opts(s, f);
	/* connect waits SO_SNDTIMEO for a full backlog: bounded, then put back */
	if (!ret && (getsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &old, &olen) ||
		     setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv))))
		ret = -errno;
	if (!ret && se->addr.len > offsetof(struct sockaddr_un, sun_path) + 1 &&
	    bind(s, (const struct sockaddr *)se->addr.data, se->addr.len))
		ret = -errno;	/* its abstract name (the source refuses a path) */
	if (!ret && connect(s, (struct sockaddr *)&to, se->reconnect_addr.len)) {
		ret = -errno;
		pr_err("fd %u: cannot connect its unix socket again to %s here: %s", f->fd, name,
		       strerror(-ret));
		close(s);
		return ret;
	}
	if (!ret && setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &old, sizeof(old)))
		ret = -errno;
	if (!ret && fcntl(s, F_SETFL, f->flags & O_NONBLOCK))
		ret = -errno;
	if (ret) {
		pr_err("fd %u: cannot make its unix socket to %s again: %s", f->fd, name,
		       strerror(-ret));
		close(s);
		return ret;
	}
	pr_info("fd %u: unix socket connected again to %s", f->fd, name);
	return s;
}

/*
 * Both ends of a connected unix socket of the tree from one socketpair (the
 * other end is registered for whoever holds it).
 */
static int open_sock_pair(struct open_files *of, const FdEntry *f, uint64_t key)
{
	int sv[2], ret;

	if (socketpair(AF_UNIX, f->sock->type | SOCK_CLOEXEC, 0, sv))
		return -errno;
	ret = of_add(of, key, sv[0]);
	if (!ret)
		ret = of_add(of, KEY_SOCK | f->sock->peer_ino, sv[1]);
	if (ret) {
		close(sv[0]);
		close(sv[1]);
		return ret;
	}
	return sv[0];
}

/* @len bytes into @fd, blocking for it even if its description does not block. */
static int write_blocking(int fd, const void *buf, size_t len)
{
	int fl = fcntl(fd, F_GETFL), ret;

	if (fl < 0)
		return -errno;
	if (fl & O_NONBLOCK && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK))
		return -errno;
	ret = write_full(fd, buf, len);
	if (fl & O_NONBLOCK && fcntl(fd, F_SETFL, fl))
		ret = ret ?: -errno;
	return ret;
}

/* What waited unread on this end goes in again, written by its peer, once. */
static int sock_feed(struct open_files *of, const FdEntry *f)
{
	struct open_file *me = of_entry(of, KEY_SOCK | f->sock->ino);
	int peer = of_find(of, KEY_SOCK | f->sock->peer_ino);

	if (!me || me->fed || !f->sock->queued.len)
		return 0;
	me->fed = true;
	if (peer < 0) {
		pr_err("fd %u: its unix socket's peer is not in the restored tree", f->fd);
		return -ENOTCONN;
	}
	return write_blocking(peer, f->sock->queued.data, f->sock->queued.len);
}

/* A connected unix socket of the tree: keyed by its inode, so its peer finds it. */
static uint64_t sock_key(const FdEntry *f)
{
	return sock_paired(f) ? KEY_SOCK | f->sock->ino : 0;
}

static int sock_open(const struct fd_open *o, const FdEntry *f, uint64_t key)
{
	if (sock_paired(f))
		return open_sock_pair(o->of, f, key);
	if (f->sock && f->sock->has_reconnect_addr)
		return open_sock_reconnect(f);
	return open_sock(f);
}

static int sock_opened(struct open_files *of, const FdEntry *f)
{
	return sock_paired(f) ? sock_feed(of, f) : 0;
}

/*
 * Once every end has its data in: a connected pair's options (a smaller
 * SO_SNDBUF set before could have blocked the writes), then shut down again
 * as it was (a shut down end takes no more). Both ends of a pair agree.
 */
static int sock_ready(int fd, const FdEntry *f)
{
	uint32_t shut = f->sock ? f->sock->shutdown & 3 : 0;
	int ret;

	ret = sock_paired(f) ? sock_set_opts(fd, f) : 0;
	if (ret)
		return ret;
	/* RCV 1 -> SHUT_RD 0, SEND 2 -> SHUT_WR 1; unconnected UDP says ENOTCONN, yet is */
	if (shut && shutdown(fd, shut - 1) && (errno != ENOTCONN || f->sock->family == AF_UNIX)) {
		pr_err("fd %u: cannot shut its socket down again: %s", f->fd, strerror(errno));
		return -errno;
	}
	return 0;
}

/* The tree is let go: a held-back listener takes new connections again. */
static void sock_resume(int fd, const FdEntry *f)
{
	(void)fd;
	if (f->sock && f->sock->netlock)
		tcp_unlock_all();
}

const struct fd_restore_ops sock_restore_ops = {
	.type = FD_TYPE__FD_SOCK,
	.name = "socket",
	.key = sock_key,
	.open = sock_open,
	.opened = sock_opened,
	.ready = sock_ready,
	.resume = sock_resume,
};
