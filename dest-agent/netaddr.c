// SPDX-License-Identifier: MIT
/*
 * migrate --move-address at the destination (docs/network.md): the final
 * round's netaddr.img names the service address. It is added here once the
 * tree is restored, before it is held or runs, on the interface named or
 * else the one the route to it leaves by, and announced (gratuitous ARP,
 * unsolicited NA) so the neighbours send to this host. A tree discarded
 * (abort, the page server gone, the hold deadline) takes it off again: the
 * source puts it back on its side. We run in the page server's network
 * namespace, the destination host's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>

#include "common/log.h"
#include "dest-agent/restore.h"
#include "proto/image.h"

#define NETADDR_IMG	"netaddr.img"

/* netaddr.img into @ra->a: 0, or -EINVAL for an entry that is not one address. */
static int addr_load(struct rst_addr *ra, int dirfd)
{
	NetAddrEntry *e;
	int ret;

	ret = img_load_one(dirfd, NETADDR_IMG, &net_addr_entry__descriptor, (void **)&e);
	if (ret)
		return ret;
	memset(&ra->a, 0, sizeof(ra->a));
	ra->a.family = e->family;
	ra->a.prefix = e->prefix;
	if ((e->family != AF_INET && e->family != AF_INET6) ||
	    e->addr.len != net_addr_len(&ra->a) || e->prefix < 1 ||
	    e->prefix > e->addr.len * 8 || (e->ifname && strlen(e->ifname) >= IF_NAMESIZE)) {
		pr_err("%s: not an address ferry can add", NETADDR_IMG);
		ret = -EINVAL;
	} else {
		memcpy(ra->a.addr, e->addr.data, e->addr.len);
		if (e->ifname)
			snprintf(ra->a.ifname, sizeof(ra->a.ifname), "%s", e->ifname);
	}
	protobuf_c_message_free_unpacked(&e->base, NULL);
	return ret;
}

/* Where it goes here: the interface named, or the one its route leaves by. */
static int addr_where(struct rst_addr *ra, const char *s)
{
	struct net_addr_found f;
	struct ifreq ifr = { 0 };
	int idx;

	if (!nl_addr_find(ra->nl, &ra->a, &f)) {
		pr_err("cannot add the service address %s here: this host has it already", s);
		return -EADDRINUSE;
	}
	if (ra->a.ifname[0]) {
		idx = nl_link_index(ra->nl, ra->a.ifname);
		if (idx < 0)
			pr_err("cannot add the service address %s here: no interface %s", s,
			       ra->a.ifname);
	} else {
		idx = nl_route_dev(ra->nl, &ra->a);
		if (idx == -EHOSTUNREACH)
			pr_err("cannot add the service address %s here: its route goes through a "
			       "gateway, no interface of this host is on its network (name one: "
			       "--move-address ADDR/PREFIX@IFACE)", s);
		else if (idx < 0)
			pr_err("cannot add the service address %s here: no route to it tells which "
			       "interface (name one: --move-address ADDR/PREFIX@IFACE): %s", s,
			       strerror(-idx));
	}
	if (idx < 0)
		return idx;
	ra->ifindex = idx;
	ifr.ifr_ifindex = idx;
	if (ioctl(ra->ann, SIOCGIFNAME, &ifr))
		snprintf(ra->ifname, sizeof(ra->ifname), "#%d", idx);
	else
		snprintf(ra->ifname, sizeof(ra->ifname), "%s", ifr.ifr_name);
	return 0;
}

int rst_addr_arrive(struct rst_addr *ra, int dirfd)
{
	int domain, type, proto, ret;
	char s[64];

	memset(ra, 0, sizeof(*ra));
	ra->nl = ra->ann = -1;
	if (faccessat(dirfd, NETADDR_IMG, F_OK, 0))
		return 0;
	ra->on = true;
	ret = addr_load(ra, dirfd);
	if (ret)
		return ret;
	net_addr_str(&ra->a, s, sizeof(s));
	net_addr_announce_socket(&ra->a, &domain, &type, &proto);
	ra->nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	ra->ann = socket(domain, type | SOCK_CLOEXEC, proto);
	if (ra->nl < 0 || ra->ann < 0) {
		ret = -errno;
		pr_err("cannot add the service address %s here: no netlink or %s socket: %s", s,
		       domain == AF_PACKET ? "packet" : "ICMPv6", strerror(-ret));
		return ret;
	}
	ret = addr_where(ra, s);
	if (ret)
		return ret;
	ret = nl_addr_add(ra->nl, &ra->a, ra->ifindex);
	if (ret) {
		pr_err("cannot add the service address %s on %s here: %s", s, ra->ifname,
		       strerror(-ret));
		return ret;
	}
	ra->added = true;
	ret = net_addr_announce(ra->ann, &ra->a, ra->ifindex);
	if (ret && ret != -EOPNOTSUPP)
		pr_warn("service address %s added on %s, but the announcement failed: %s", s,
			ra->ifname, strerror(-ret));
	fprintf(stderr, "restore: service address %s added on %s\n", s, ra->ifname);
	return 0;
}

static void addr_close(struct rst_addr *ra)
{
	if (ra->nl >= 0)
		close(ra->nl);
	if (ra->ann >= 0)
		close(ra->ann);
	ra->nl = ra->ann = -1;
}

void rst_addr_leave(struct rst_addr *ra)
{
	char s[64];
	int ret;

	if (ra->on && ra->added) {
		net_addr_str(&ra->a, s, sizeof(s));
		ret = nl_addr_del(ra->nl, &ra->a, ra->ifindex);
		if (ret && ret != -EADDRNOTAVAIL)
			pr_err("cannot take the service address %s off %s again: %s (the source "
			       "puts it back: take it off here by hand)", s, ra->ifname,
			       strerror(-ret));
		else
			fprintf(stderr, "restore: service address %s taken off %s again\n", s,
				ra->ifname);
		ra->added = false;
	}
	addr_close(ra);
}

void rst_addr_done(struct rst_addr *ra)
{
	/* a neighbour that missed the first one (the tree was held a while) */
	if (ra->on && ra->added)
		net_addr_announce(ra->ann, &ra->a, ra->ifindex);
	addr_close(ra);
}
