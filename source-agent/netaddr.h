/* SPDX-License-Identifier: MIT */
#ifndef FERRY_SRC_NETADDR_H
#define FERRY_SRC_NETADDR_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/netaddr.h"
#include "transport/sink.h"

/*
 * migrate --move-address (docs/network.md): the service address leaves the
 * source's interface at the freeze and comes back to it on a rollback.
 */
struct addr_move {
	bool on;			/* --move-address given */
	struct net_addr a;
	int nl, ann;			/* rtnetlink, announce sockets in the target's netns */
	int ifindex;			/* where it is here */
	char ifname[IF_NAMESIZE];
	bool removed;			/* taken off here, not given back */
	pid_t keeper;			/* puts it back should we die before the commit */
	int keeper_fd;			/* our end of its pipe, or -1 */
};

/*
 * Before anything is opened or frozen: address @a is on an interface in
 * @pid's network namespace (the one given, if given), with that prefix, and
 * can be taken off alone. Keeps the sockets it needs. 0 or -errno, said.
 */
int netaddr_prepare(struct addr_move *mv, const struct net_addr *a, pid_t pid);
/* At the freeze: off this host, and netaddr.img into the final round. */
int netaddr_leave(struct addr_move *mv, struct sink *sink);
/*
 * The destination holds the restored tree (and has added the address):
 * something on the link must answer for it (ARP probe, neighbour
 * solicitation), else -EHOSTUNREACH, said: the migration rolls back.
 */
int netaddr_arrived(struct addr_move *mv);
/*
 * Just before the commit: from here on the address follows the hand-over
 * (in doubt, it stays off), so the keeper that would put it back if we died
 * is let go. Also done by netaddr_close.
 */
void netaddr_release(struct addr_move *mv);
/* Rollback: back on its interface here, announced. */
void netaddr_return(struct addr_move *mv);
/* In doubt: what the operator must do about the address (one line). */
void netaddr_in_doubt(const struct addr_move *mv);
void netaddr_close(struct addr_move *mv);

#endif
