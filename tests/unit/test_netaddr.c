// SPDX-License-Identifier: MIT
/* --move-address ADDR/PREFIX[@IFACE]: what is taken, what is refused and why. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "common/netaddr.h"

Test(netaddr, parse_good)
{
	static const struct { const char *in, *str, *ifname; int family; unsigned int prefix; } t[] = {
		{ "10.0.0.5/24", "10.0.0.5/24", "", AF_INET, 24 },
		{ "10.0.0.5/24@eth0", "10.0.0.5/24", "eth0", AF_INET, 24 },
		{ "192.168.1.7/32", "192.168.1.7/32", "", AF_INET, 32 },
		{ "10.0.0.1/31", "10.0.0.1/31", "", AF_INET, 31 },
		{ "fd00::5/64@br-lan.10", "fd00::5/64", "br-lan.10", AF_INET6, 64 },
		{ "2001:db8::1/128", "2001:db8::1/128", "", AF_INET6, 128 },
		{ "10.0.0.5/24@abcdefghijklmno", "10.0.0.5/24", "abcdefghijklmno", AF_INET, 24 },
	};
	struct net_addr a;
	char why[200], s[64];
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		cr_assert_eq(net_addr_parse(t[i].in, &a, why, sizeof(why)), 0, "%s: %s", t[i].in, why);
		net_addr_str(&a, s, sizeof(s));
		cr_assert_str_eq(s, t[i].str);
		cr_assert_str_eq(a.ifname, t[i].ifname);
		cr_assert_eq(a.family, t[i].family);
		cr_assert_eq(a.prefix, t[i].prefix);
		cr_assert_eq(net_addr_len(&a), t[i].family == AF_INET ? 4u : 16u);
	}
}

Test(netaddr, parse_bad)
{
	static const struct { const char *in, *reason; } t[] = {
		{ "10.0.0.5", "no prefix length" },
		{ "10.0.0.5/", "not a prefix length" },
		{ "10.0.0.5/0", "not a prefix length" },
		{ "10.0.0.5/33", "not a prefix length" },
		{ "10.0.0.5/-1", "not a prefix length" },
		{ "10.0.0.5/+8", "not a prefix length" },
		{ "10.0.0.5/24x", "not a prefix length" },
		{ "fd00::5/129", "not a prefix length" },
		{ "10.0.0.256/24", "not an IPv4 or IPv6 address" },
		{ "host/24", "not an IPv4 or IPv6 address" },
		{ "/24", "not an IPv4 or IPv6 address" },
		{ "0.0.0.0/8", "unspecified" },
		{ "127.0.0.2/8", "loopback" },
		{ "224.0.0.1/4", "multicast" },
		{ "255.255.255.255/32", "broadcast" },
		{ "169.254.1.1/16", "link-local" },
		{ "10.0.0.0/24", "network or broadcast" },
		{ "10.0.0.255/24", "network or broadcast" },
		{ "::/64", "unspecified" },
		{ "::1/128", "loopback" },
		{ "ff02::1/64", "multicast" },
		{ "fe80::1/64", "link-local" },
		{ "::ffff:10.0.0.5/96", "IPv4-mapped" },
		{ "10.0.0.5/24@", "not an interface name" },
		{ "10.0.0.5/24@a/b", "not an interface name" },
		{ "10.0.0.5/24@a:1", "not an interface name" },
		{ "10.0.0.5/24@a b", "not an interface name" },
		{ "10.0.0.5/24@..", "not an interface name" },
		{ "10.0.0.5/24@abcdefghijklmnop", "not an interface name" },
		{ "10.0.0.5/24@eth0@eth1", "not an interface name" },
	};
	char why[200], big[300];
	struct net_addr a;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		why[0] = 0;
		cr_assert_eq(net_addr_parse(t[i].in, &a, why, sizeof(why)), -EINVAL, "%s accepted", t[i].in);
		cr_assert(strstr(why, t[i].reason), "%s: '%s' does not say '%s'", t[i].in, why,
			  t[i].reason);
	}
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	cr_assert_eq(net_addr_parse(big, &a, why, sizeof(why)), -EINVAL);
	cr_assert(strstr(why, "too long"));
}
