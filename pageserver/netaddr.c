// SPDX-License-Identifier: MIT
/*
 * migrate --move-address, the page server's part (docs/network.md): the
 * restore adds the service address of the final round's netaddr.img and
 * takes it off again when it discards its tree. A restore killed by a
 * signal while it held the tree cannot; its tree died with it and the
 * source takes the address back, so the address must leave this host:
 * found by its value (we run in the same network namespace as the
 * restore), deleted. Blocking, but a few netlink calls only.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>

#include "common/netaddr.h"
#include "pageserver/session.h"
#include "proto/image.h"

void session_netaddr_drop(struct session *s)
{
	char dir[PATH_MAX + 80], str[64];
	struct net_addr a = { 0 };
	struct net_addr_found f;
	NetAddrEntry *e = NULL;
	int dirfd, nl = -1, ret;

	if ((size_t)snprintf(dir, sizeof(dir), "%s/%s/%u", s->srv->images_dir, s->id,
			     s->round) >= sizeof(dir)) {
		sess_warn(s, "%s", "the round's path is too long: its service address is not looked at");
		return;
	}
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0 || faccessat(dirfd, "netaddr.img", F_OK, 0))
		goto out;
	if (img_load_one(dirfd, "netaddr.img", &net_addr_entry__descriptor, (void **)&e))
		goto out;
	a.family = e->family;
	a.prefix = e->prefix;
	if ((a.family != AF_INET && a.family != AF_INET6) || e->addr.len != net_addr_len(&a))
		goto out;
	memcpy(a.addr, e->addr.data, e->addr.len);
	net_addr_str(&a, str, sizeof(str));
	nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (nl < 0 || nl_addr_find(nl, &a, &f))
		goto out;	/* not here (any more): nothing to do */
	ret = nl_addr_del(nl, &a, f.ifindex);
	if (ret)
		sess_err(s, "the restore died holding its tree: cannot take the service address "
			 "%s off here: %s (take it off by hand: the source has it again)", str,
			 strerror(-ret));
	else
		sess_warn(s, "the restore died holding its tree: service address %s taken off "
			  "here", str);
out:
	if (e)
		protobuf_c_message_free_unpacked(&e->base, NULL);
	if (nl >= 0)
		close(nl);
	if (dirfd >= 0)
		close(dirfd);
}
