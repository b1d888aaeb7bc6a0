// SPDX-License-Identifier: MIT
/*
 * The moving service address (netaddr.h): parsing, rtnetlink requests
 * (RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE, RTM_NEWADDR, RTM_DELADDR) and the
 * announcement that makes neighbours update their caches.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if_arp.h>
#include <net/ethernet.h>
#include <netpacket/packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/netaddr.h"

size_t net_addr_len(const struct net_addr *a)
{
	return a->family == AF_INET ? 4 : 16;
}

static bool ifname_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (!n || n >= IF_NAMESIZE || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == ':' || s[i] == '@' || s[i] <= ' ' || s[i] == 0x7f)
			return false;
	return true;
}

/* Not an address a host can hand over: unspecified, loopback, multicast... */
static const char *addr_unfit(const struct net_addr *a)
{
	if (a->family == AF_INET) {
		uint32_t v = ntohl(*(const uint32_t *)a->addr);

		if (!v)
			return "the unspecified address";
		if ((v >> 24) == 127)
			return "a loopback address";
		if ((v >> 28) == 14)
			return "a multicast address";
		if ((v >> 28) == 15)
			return "a reserved or broadcast address";
		if ((v >> 16) == 0xa9fe)
			return "a link-local address";
		if (a->prefix < 31 && ((v | ((1u << (32 - a->prefix)) - 1)) == v ||
				       !(v & ((1u << (32 - a->prefix)) - 1))))
			return "the network or broadcast address of its prefix";
		return NULL;
	}
	{
		const struct in6_addr *v = (const struct in6_addr *)a->addr;

		if (IN6_IS_ADDR_UNSPECIFIED(v))
			return "the unspecified address";
		if (IN6_IS_ADDR_LOOPBACK(v))
			return "a loopback address";
		if (IN6_IS_ADDR_MULTICAST(v))
			return "a multicast address";
		if (IN6_IS_ADDR_LINKLOCAL(v))
			return "a link-local address (it belongs to its link, not to a service)";
		if (IN6_IS_ADDR_V4MAPPED(v))
			return "an IPv4-mapped address (give the IPv4 address)";
	}
	return NULL;
}

int net_addr_parse(const char *s, struct net_addr *a, char *why, size_t len)
{
	char buf[128], *slash, *at, *end;
	const char *unfit;
	unsigned long p;

	memset(a, 0, sizeof(*a));
	if (strlen(s) >= sizeof(buf)) {
		snprintf(why, len, "'%.40s...' is too long for ADDR/PREFIX[@IFACE]", s);
		return -EINVAL;
	}
	strcpy(buf, s);
	at = strchr(buf, '@');
	if (at) {
		*at++ = 0;
		if (!ifname_ok(at)) {
			snprintf(why, len, "'%s' is not an interface name (1 to %d characters, "
				 "no '/', ':', '@' or blanks)", at, IF_NAMESIZE - 1);
			return -EINVAL;
		}
		snprintf(a->ifname, sizeof(a->ifname), "%s", at);
	}
	slash = strchr(buf, '/');
	if (!slash) {
		snprintf(why, len, "'%s' has no prefix length: want ADDR/PREFIX[@IFACE], e.g. "
			 "10.0.0.5/24 or fd00::5/64@eth0", s);
		return -EINVAL;
	}
	*slash++ = 0;
	if (inet_pton(AF_INET, buf, a->addr) == 1) {
		a->family = AF_INET;
	} else if (inet_pton(AF_INET6, buf, a->addr) == 1) {
		a->family = AF_INET6;
	} else {
		snprintf(why, len, "'%s' is not an IPv4 or IPv6 address", buf);
		return -EINVAL;
	}
	errno = 0;
	p = strtoul(slash, &end, 10);
	if (errno || end == slash || *end || *slash < '0' || *slash > '9' ||
	    p > (a->family == AF_INET ? 32 : 128) || p == 0) {
		snprintf(why, len, "'%s' is not a prefix length for %s (1 to %d)", slash,
			 a->family == AF_INET ? "IPv4" : "IPv6", a->family == AF_INET ? 32 : 128);
		return -EINVAL;
	}
	a->prefix = p;
	unfit = addr_unfit(a);
	if (unfit) {
		snprintf(why, len, "%s/%lu is %s: only a unicast service address can move", buf,
			 p, unfit);
		return -EINVAL;
	}
	return 0;
}

void net_addr_str(const struct net_addr *a, char *buf, size_t len)
{
	char s[INET6_ADDRSTRLEN] = "?";

	inet_ntop(a->family, a->addr, s, sizeof(s));
	snprintf(buf, len, "%s/%u", s, a->prefix);
}

/* ---- rtnetlink ---- */

#define NL_TIMEOUT_MS	5000
#define NL_BUF		65536	/* a dump part the kernel sends is at most 32 KiB */

struct nl_req {
	struct nlmsghdr nh;
	union {
		struct ifaddrmsg ifa;
		struct ifinfomsg ifi;
		struct rtmsg rtm;
	};
	char attrs[256];
};

static void nl_attr(struct nl_req *r, int type, const void *data, size_t len)
{
	struct rtattr *rta = (struct rtattr *)((char *)r + NLMSG_ALIGN(r->nh.nlmsg_len));

	rta->rta_type = type;
	rta->rta_len = RTA_LENGTH(len);
	memcpy(RTA_DATA(rta), data, len);
	r->nh.nlmsg_len = NLMSG_ALIGN(r->nh.nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

/*
 * Send @r and read the answers until the ack, the error or the end of a
 * dump, calling @fn for every other message (it returns 1 to have the rest
 * ignored). 0 or -errno (the kernel's error for the request).
 */
static int nl_talk(int nl, struct nl_req *r, int (*fn)(struct nlmsghdr *, void *), void *arg)
{
	static uint32_t seq;
	struct pollfd pfd = { .fd = nl, .events = POLLIN };
	char buf[NL_BUF];	/* not malloc: a forked child of a threaded process calls this */
	int ret = -EIO, done = 0;

	r->nh.nlmsg_seq = ++seq;
	if (send(nl, r, r->nh.nlmsg_len, 0) != (ssize_t)r->nh.nlmsg_len)
		return -errno;
	while (!done) {
		struct nlmsghdr *h;
		ssize_t n;
		int pr;

		pr = poll(&pfd, 1, NL_TIMEOUT_MS);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			ret = pr ? -errno : -ETIMEDOUT;
			break;
		}
		n = recv(nl, buf, NL_BUF, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n ? -errno : -EIO;
			break;
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != r->nh.nlmsg_seq)
				continue;	/* a late answer to an earlier request */
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);

				ret = e->error;
				done = 1;
				break;
			}
			if (h->nlmsg_type == NLMSG_DONE) {
				ret = 0;
				done = 1;
				break;
			}
			if (fn && fn(h, arg) == 1 && !(h->nlmsg_flags & NLM_F_MULTI)) {
				ret = 0;
				done = 1;
				break;
			}
			if (!(h->nlmsg_flags & NLM_F_MULTI) && !(r->nh.nlmsg_flags & NLM_F_ACK)) {
				ret = 0;
				done = 1;
				break;
			}
		}
	}
	return ret;
}

static int link_index_cb(struct nlmsghdr *h, void *arg)
{
	struct ifinfomsg *ifi = NLMSG_DATA(h);

	if (h->nlmsg_type != RTM_NEWLINK)
		return 0;
	*(int *)arg = ifi->ifi_index;
	return 1;
}

int nl_link_index(int nl, const char *name)
{
	struct nl_req r = { 0 };
	int idx = 0, ret;

	r.nh.nlmsg_len = NLMSG_LENGTH(sizeof(r.ifi));
	r.nh.nlmsg_type = RTM_GETLINK;
	r.nh.nlmsg_flags = NLM_F_REQUEST;
	r.ifi.ifi_family = AF_UNSPEC;
	nl_attr(&r, IFLA_IFNAME, name, strlen(name) + 1);
	ret = nl_talk(nl, &r, link_index_cb, &idx);
	if (ret == -ENODEV || (!ret && idx <= 0))
		return -ENODEV;
	return ret ? ret : idx;
}

struct find_ctx {
	const struct net_addr *a;
	struct net_addr_found *f;
	bool seen;
	/* IPv4 subnets with secondaries: (ifindex, network, prefix) */
	struct { int ifindex; uint32_t net; unsigned int prefix; } sec[64];
	size_t nr_sec;
};

static uint32_t v4_net(const uint8_t *addr, unsigned int prefix)
{
	uint32_t v = ntohl(*(const uint32_t *)addr);

	return prefix ? v & ~((prefix >= 32 ? 0 : 0xffffffffu >> prefix)) : 0;
}

static int addr_find_cb(struct nlmsghdr *h, void *arg)
{
	struct find_ctx *c = arg;
	struct ifaddrmsg *ifa = NLMSG_DATA(h);
	int len = h->nlmsg_len - NLMSG_LENGTH(sizeof(*ifa));
	const uint8_t *local = NULL, *address = NULL, *v;
	uint32_t flags = ifa->ifa_flags;
	struct rtattr *rta;

	if (h->nlmsg_type != RTM_NEWADDR || ifa->ifa_family != c->a->family)
		return 0;
	for (rta = IFA_RTA(ifa); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
		if (RTA_PAYLOAD(rta) < net_addr_len(c->a) && rta->rta_type != IFA_FLAGS)
			continue;
		if (rta->rta_type == IFA_LOCAL)
			local = RTA_DATA(rta);
		else if (rta->rta_type == IFA_ADDRESS)
			address = RTA_DATA(rta);
		else if (rta->rta_type == IFA_FLAGS && RTA_PAYLOAD(rta) >= 4)
			flags = *(uint32_t *)RTA_DATA(rta);
	}
	v = local ? local : address;	/* IPv4: IFA_LOCAL is ours (IFA_ADDRESS the peer on p2p) */
	if (!v)
		return 0;
	if (c->a->family == AF_INET && (flags & IFA_F_SECONDARY) && c->nr_sec < 64) {
		c->sec[c->nr_sec].ifindex = ifa->ifa_index;
		c->sec[c->nr_sec].net = v4_net(v, ifa->ifa_prefixlen);
		c->sec[c->nr_sec].prefix = ifa->ifa_prefixlen;
		c->nr_sec++;
	}
	if (memcmp(v, c->a->addr, net_addr_len(c->a)) || c->seen)
		return 0;
	c->seen = true;
	c->f->ifindex = ifa->ifa_index;
	c->f->prefix = ifa->ifa_prefixlen;
	c->f->primary_with_secondaries = c->a->family == AF_INET && !(flags & IFA_F_SECONDARY);
	return 0;
}

int nl_addr_find(int nl, const struct net_addr *a, struct net_addr_found *f)
{
	struct find_ctx *c = calloc(1, sizeof(*c));
	struct nl_req r = { 0 };
	bool with_sec = false;
	size_t i;
	int ret;

	if (!c)
		return -ENOMEM;
	memset(f, 0, sizeof(*f));
	c->a = a;
	c->f = f;
	r.nh.nlmsg_len = NLMSG_LENGTH(sizeof(r.ifa));
	r.nh.nlmsg_type = RTM_GETADDR;
	r.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	r.ifa.ifa_family = a->family;
	ret = nl_talk(nl, &r, addr_find_cb, c);
	if (!ret && !c->seen)
		ret = -ENOENT;
	if (!ret && f->primary_with_secondaries) {
		for (i = 0; i < c->nr_sec; i++)
			if (c->sec[i].ifindex == f->ifindex && c->sec[i].prefix == f->prefix &&
			    c->sec[i].net == v4_net(a->addr, f->prefix))
				with_sec = true;
		f->primary_with_secondaries = with_sec;
	}
	free(c);
	return ret;
}

struct route_ctx {
	int oif;
	bool gateway;
};

static int route_cb(struct nlmsghdr *h, void *arg)
{
	struct route_ctx *c = arg;
	struct rtmsg *rtm = NLMSG_DATA(h);
	int len = h->nlmsg_len - NLMSG_LENGTH(sizeof(*rtm));
	struct rtattr *rta;

	if (h->nlmsg_type != RTM_NEWROUTE)
		return 0;
	for (rta = RTM_RTA(rtm); RTA_OK(rta, len); rta = RTA_NEXT(rta, len)) {
		if (rta->rta_type == RTA_OIF && RTA_PAYLOAD(rta) >= 4)
			c->oif = *(int *)RTA_DATA(rta);
		else if (rta->rta_type == RTA_GATEWAY || rta->rta_type == RTA_VIA)
			c->gateway = true;
	}
	if (rtm->rtm_type != RTN_UNICAST)
		c->oif = rtm->rtm_type == RTN_LOCAL ? -EEXIST : -ENETUNREACH;
	return 1;
}

int nl_route_dev(int nl, const struct net_addr *a)
{
	struct route_ctx c = { 0 };
	struct nl_req r = { 0 };
	int ret;

	r.nh.nlmsg_len = NLMSG_LENGTH(sizeof(r.rtm));
	r.nh.nlmsg_type = RTM_GETROUTE;
	r.nh.nlmsg_flags = NLM_F_REQUEST;
	r.rtm.rtm_family = a->family;
	r.rtm.rtm_dst_len = a->family == AF_INET ? 32 : 128;
	nl_attr(&r, RTA_DST, a->addr, net_addr_len(a));
	ret = nl_talk(nl, &r, route_cb, &c);
	if (ret)
		return ret == -ENETUNREACH || ret == -EHOSTUNREACH ? -ENETUNREACH : ret;
	if (c.oif < 0)
		return c.oif;
	if (!c.oif)
		return -ENETUNREACH;
	return c.gateway ? -EHOSTUNREACH : c.oif;
}

static int addr_change(int nl, const struct net_addr *a, int ifindex, int type)
{
	struct nl_req r = { 0 };
	uint32_t flags = a->family == AF_INET6 ? IFA_F_NODAD : 0;

	r.nh.nlmsg_len = NLMSG_LENGTH(sizeof(r.ifa));
	r.nh.nlmsg_type = type;
	r.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK |
			   (type == RTM_NEWADDR ? NLM_F_CREATE | NLM_F_EXCL : 0);
	r.ifa.ifa_family = a->family;
	r.ifa.ifa_prefixlen = a->prefix;
	r.ifa.ifa_flags = flags;
	r.ifa.ifa_scope = RT_SCOPE_UNIVERSE;
	r.ifa.ifa_index = ifindex;
	nl_attr(&r, IFA_LOCAL, a->addr, net_addr_len(a));
	nl_attr(&r, IFA_ADDRESS, a->addr, net_addr_len(a));
	if (flags)
		nl_attr(&r, IFA_FLAGS, &flags, sizeof(flags));
	return nl_talk(nl, &r, NULL, NULL);
}

int nl_addr_add(int nl, const struct net_addr *a, int ifindex)
{
	return addr_change(nl, a, ifindex, RTM_NEWADDR);
}

int nl_addr_del(int nl, const struct net_addr *a, int ifindex)
{
	return addr_change(nl, a, ifindex, RTM_DELADDR);
}

/* ---- announcements ---- */

struct arp_pkt {
	struct arphdr h;
	uint8_t sha[ETH_ALEN], spa[4], tha[ETH_ALEN], tpa[4];
} __attribute__((packed));

void net_addr_announce_socket(const struct net_addr *a, int *domain, int *type, int *proto)
{
	if (a->family == AF_INET) {
		*domain = AF_PACKET;
		*type = SOCK_DGRAM;
		*proto = 0;	/* sends only: no packet is queued to it */
	} else {
		*domain = AF_INET6;
		*type = SOCK_RAW;
		*proto = IPPROTO_ICMPV6;
	}
}

/* The Ethernet address of @ifindex, asked through @sock (in its namespace). */
static int if_hwaddr(int sock, int ifindex, uint8_t mac[ETH_ALEN])
{
	struct ifreq ifr = { .ifr_ifindex = ifindex };

	if (ioctl(sock, SIOCGIFNAME, &ifr) || ioctl(sock, SIOCGIFHWADDR, &ifr))
		return -errno;
	if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
		return -EOPNOTSUPP;
	memcpy(mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	return 0;
}

/* ARP request for ourselves, sender = target = @a, to the broadcast address. */
static int announce_arp(int sock, const struct net_addr *a, int ifindex, const uint8_t *mac)
{
	struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ARP),
				  .sll_ifindex = ifindex, .sll_halen = ETH_ALEN };
	struct arp_pkt p = {
		.h = { .ar_hrd = htons(ARPHRD_ETHER), .ar_pro = htons(ETH_P_IP),
		       .ar_hln = ETH_ALEN, .ar_pln = 4, .ar_op = htons(ARPOP_REQUEST) },
	};

	memset(to.sll_addr, 0xff, ETH_ALEN);
	memcpy(p.sha, mac, ETH_ALEN);
	memcpy(p.spa, a->addr, 4);
	memcpy(p.tpa, a->addr, 4);
	if (sendto(sock, &p, sizeof(p), 0, (struct sockaddr *)&to, sizeof(to)) != sizeof(p))
		return -errno;
	return 0;
}

/* Unsolicited NA (override, not solicited) for @a to ff02::1, hop limit 255. */
static int announce_na(int sock, const struct net_addr *a, int ifindex, const uint8_t *mac)
{
	struct sockaddr_in6 to = { .sin6_family = AF_INET6, .sin6_scope_id = ifindex };
	struct {
		struct nd_neighbor_advert na;
		struct nd_opt_hdr opt;
		uint8_t mac[ETH_ALEN];
	} __attribute__((packed)) p = { 0 };
	int hops = 255;

	/* ff02::1, set by hand: a forked child of a threaded process calls this */
	to.sin6_addr.s6_addr[0] = 0xff;
	to.sin6_addr.s6_addr[1] = 0x02;
	to.sin6_addr.s6_addr[15] = 1;
	if (setsockopt(sock, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops)) ||
	    setsockopt(sock, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof(ifindex)))
		return -errno;
	p.na.nd_na_type = ND_NEIGHBOR_ADVERT;
	p.na.nd_na_flags_reserved = ND_NA_FLAG_OVERRIDE;
	memcpy(&p.na.nd_na_target, a->addr, 16);
	p.opt.nd_opt_type = ND_OPT_TARGET_LINKADDR;
	p.opt.nd_opt_len = 1;	/* units of 8 bytes: type, len, 6 bytes of MAC */
	memcpy(p.mac, mac, ETH_ALEN);
	/* the kernel fills in the ICMPv6 checksum of a raw IPPROTO_ICMPV6 socket */
	if (sendto(sock, &p, sizeof(p), 0, (struct sockaddr *)&to, sizeof(to)) != sizeof(p))
		return -errno;
	return 0;
}

int net_addr_announce(int sock, const struct net_addr *a, int ifindex)
{
	uint8_t mac[ETH_ALEN];
	int ret;

	ret = if_hwaddr(sock, ifindex, mac);
	if (ret)
		return ret;
	return a->family == AF_INET ? announce_arp(sock, a, ifindex, mac) :
	       announce_na(sock, a, ifindex, mac);
}

/* ---- probes: does the link have someone answering for the address? ---- */

/* What waited on @sock before the probe (an ICMPv6 socket sees all ICMPv6). */
static void drain(int sock)
{
	char buf[512];

	while (recv(sock, buf, sizeof(buf), MSG_DONTWAIT) >= 0)
		;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

/*
 * Send @pkt to @to up to @tries times; after each, wait @wait_ms for a
 * datagram @match takes as the answer for @a. 0, -ETIMEDOUT or -errno.
 */
static int probe_rounds(int sock, const void *pkt, size_t len, const void *to, socklen_t tolen,
			int tries, int wait_ms, const struct net_addr *a,
			bool (*match)(const uint8_t *buf, ssize_t n, const struct sockaddr_storage *from,
				      const struct net_addr *a))
{
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	int t;

	for (t = 0; t < tries; t++) {
		uint64_t end = now_ms() + wait_ms, now;

		if (sendto(sock, pkt, len, 0, to, tolen) != (ssize_t)len)
			return -errno;
		while ((now = now_ms()) < end) {
			struct sockaddr_storage from = { 0 };
			socklen_t flen = sizeof(from);
			uint8_t buf[256];
			ssize_t n;

			if (poll(&pfd, 1, end - now) <= 0)
				continue;	/* the deadline (or EINTR) */
			n = recvfrom(sock, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
				     &flen);
			if (n > 0 && match(buf, n, &from, a))
				return 0;
		}
	}
	return -ETIMEDOUT;
}

static bool arp_answers(const uint8_t *buf, ssize_t n, const struct sockaddr_storage *from,
			const struct net_addr *a)
{
	const struct arp_pkt *r = (const struct arp_pkt *)buf;

	return n >= (ssize_t)sizeof(*r) &&
	       ((const struct sockaddr_ll *)from)->sll_pkttype != PACKET_OUTGOING &&
	       r->h.ar_op == htons(ARPOP_REPLY) && !memcmp(r->spa, a->addr, 4);
}

/* ARP probe (RFC 5227: sender 0.0.0.0) for @a; a reply from @a answers. */
static int probe_arp(int sock, const struct net_addr *a, int ifindex, const uint8_t *mac,
		     int tries, int wait_ms)
{
	struct sockaddr_ll me = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ARP),
				  .sll_ifindex = ifindex };
	struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ARP),
				  .sll_ifindex = ifindex, .sll_halen = ETH_ALEN };
	struct arp_pkt p = {
		.h = { .ar_hrd = htons(ARPHRD_ETHER), .ar_pro = htons(ETH_P_IP),
		       .ar_hln = ETH_ALEN, .ar_pln = 4, .ar_op = htons(ARPOP_REQUEST) },
	};
	int ret;

	if (bind(sock, (struct sockaddr *)&me, sizeof(me)))	/* from now on: its ARP */
		return -errno;
	memset(to.sll_addr, 0xff, ETH_ALEN);
	memcpy(p.sha, mac, ETH_ALEN);
	memcpy(p.tpa, a->addr, 4);
	ret = probe_rounds(sock, &p, sizeof(p), &to, sizeof(to), tries, wait_ms, a, arp_answers);
	me.sll_protocol = 0;	/* receive nothing again */
	bind(sock, (struct sockaddr *)&me, sizeof(me));
	return ret;
}

static bool na_answers(const uint8_t *buf, ssize_t n, const struct sockaddr_storage *from,
		       const struct net_addr *a)
{
	const struct nd_neighbor_advert *na = (const struct nd_neighbor_advert *)buf;

	(void)from;
	return n >= (ssize_t)sizeof(*na) && na->nd_na_type == ND_NEIGHBOR_ADVERT &&
	       !memcmp(&na->nd_na_target, a->addr, 16);
}

/* Neighbour solicitation for @a to its solicited-node group; an NA for it answers. */
static int probe_ns(int sock, const struct net_addr *a, int ifindex, const uint8_t *mac,
		    int tries, int wait_ms)
{
	struct sockaddr_in6 to = { .sin6_family = AF_INET6, .sin6_scope_id = ifindex };
	struct {
		struct nd_neighbor_solicit ns;
		struct nd_opt_hdr opt;
		uint8_t mac[ETH_ALEN];
	} __attribute__((packed)) p = { 0 };
	struct icmp6_filter f;
	int hops = 255, ret;

	ICMP6_FILTER_SETBLOCKALL(&f);
	ICMP6_FILTER_SETPASS(ND_NEIGHBOR_ADVERT, &f);
	if (setsockopt(sock, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof(f)) ||
	    setsockopt(sock, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops)) ||
	    setsockopt(sock, IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof(ifindex)))
		return -errno;
	drain(sock);
	inet_pton(AF_INET6, "ff02::1:ff00:0", &to.sin6_addr);
	memcpy(&to.sin6_addr.s6_addr[13], a->addr + 13, 3);
	p.ns.nd_ns_type = ND_NEIGHBOR_SOLICIT;
	memcpy(&p.ns.nd_ns_target, a->addr, 16);
	p.opt.nd_opt_type = ND_OPT_SOURCE_LINKADDR;
	p.opt.nd_opt_len = 1;
	memcpy(p.mac, mac, ETH_ALEN);
	ret = probe_rounds(sock, &p, sizeof(p), &to, sizeof(to), tries, wait_ms, a, na_answers);
	ICMP6_FILTER_SETBLOCKALL(&f);	/* queue nothing more */
	setsockopt(sock, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof(f));
	return ret;
}

int net_addr_probe(int sock, const struct net_addr *a, int ifindex, int tries, int wait_ms)
{
	uint8_t mac[ETH_ALEN];
	int ret;

	ret = if_hwaddr(sock, ifindex, mac);
	if (ret)
		return ret;
	return a->family == AF_INET ? probe_arp(sock, a, ifindex, mac, tries, wait_ms) :
	       probe_ns(sock, a, ifindex, mac, tries, wait_ms);
}
