/* SPDX-License-Identifier: MIT */
/*
 * A service address that moves with a migration (docs/network.md): parsing
 * "ADDR/PREFIX[@IFACE]", and the rtnetlink and neighbour-announcement
 * mechanics both sides use. Every function works on sockets the caller made
 * in the network namespace it means (the source agent makes them in the
 * target's namespace, the restore in its own), so nothing here switches
 * namespaces.
 */
#ifndef FERRY_NETADDR_H
#define FERRY_NETADDR_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct net_addr {
	int family;			/* AF_INET or AF_INET6 */
	uint8_t addr[16];		/* 4 or 16 bytes used */
	unsigned int prefix;		/* 0..32 or 0..128 */
	char ifname[IF_NAMESIZE];	/* "" when not given */
};

/*
 * "10.0.0.5/24", "10.0.0.5/24@eth0", "fd00::5/64@eth0": 0, or -EINVAL with
 * the reason in @why. The address must be a unicast host address (not
 * 0.0.0.0, a broadcast, multicast, loopback or link-local one), the prefix
 * explicit, the interface name a valid one.
 */
int net_addr_parse(const char *s, struct net_addr *a, char *why, size_t len);
/* "10.0.0.5/24" (without the interface) into @buf. */
void net_addr_str(const struct net_addr *a, char *buf, size_t len);
size_t net_addr_len(const struct net_addr *a);

/* An rtnetlink socket (NETLINK_ROUTE) is what @nl is, below. */

/* The index of interface @name: >0, or -ENODEV. */
int nl_link_index(int nl, const char *name);
/*
 * Where @a is configured: 0 with its interface index and prefix length, and
 * whether it is an IPv4 primary address with secondaries of its subnet on
 * the same interface (deleting it would delete them); -ENOENT if nowhere.
 */
struct net_addr_found {
	int ifindex;
	unsigned int prefix;
	bool primary_with_secondaries;
};
int nl_addr_find(int nl, const struct net_addr *a, struct net_addr_found *f);
/*
 * The interface a route to @a leaves by: its index, -ENETUNREACH when no
 * route, -EHOSTUNREACH when the route goes through a gateway (not on a link
 * of this host).
 */
int nl_route_dev(int nl, const struct net_addr *a);
/* Add / delete @a on @ifindex (IPv6: without duplicate address detection). 0 or -errno. */
int nl_addr_add(int nl, const struct net_addr *a, int ifindex);
int nl_addr_del(int nl, const struct net_addr *a, int ifindex);

/*
 * Tell the link that @a is at @ifindex now: a gratuitous ARP request (IPv4,
 * @sock a packet socket, AF_PACKET/SOCK_DGRAM/ETH_P_ARP) or an unsolicited
 * neighbour advertisement with the override flag to all nodes (IPv6, @sock
 * a raw ICMPv6 socket). 0, -EOPNOTSUPP when the interface has no Ethernet
 * address (loopback, tun: nothing to announce), or -errno.
 */
int net_addr_announce(int sock, const struct net_addr *a, int ifindex);
/*
 * Does anyone on the link of @ifindex answer for @a now? An ARP probe
 * (sender 0.0.0.0) or a neighbour solicitation, @tries times, each waiting
 * @wait_ms for the answer: 0 when one came, -ETIMEDOUT if none, -EOPNOTSUPP
 * without an Ethernet address, or -errno. @sock as for net_addr_announce.
 */
int net_addr_probe(int sock, const struct net_addr *a, int ifindex, int tries, int wait_ms);
/* The socket net_addr_announce wants for @a's family: domain, type, protocol. */
void net_addr_announce_socket(const struct net_addr *a, int *domain, int *type, int *proto);

#endif
