/* SPDX-License-Identifier: MIT */
#ifndef FERRY_NFT_H
#define FERRY_NFT_H

#include <stdbool.h>
#include <sys/socket.h>

/* The nftables command (`nft`, Debian package nftables), for network locks. */

/* Is it installed? */
bool nft_available(void);
/*
 * `nft -f -` with @script on its stdin, in the network namespace @nsfd (an
 * open /proc/PID/ns/net; -1: ours). It must exit 0 within 10 s (else it is
 * killed): 0 or -errno, with a message unless @quiet.
 */
int nft_run(int nsfd, const char *script, bool quiet);

/*
 * Network locks of TCP connections: table inet @table (letters, digits,
 * '_') with an input and an output chain at priority -300 (before
 * conntrack), made if it is not there; a connection's packets both ways
 * dropped by two rules; the table removed (no error if it is not there).
 */
int nft_lock_table(int nsfd, const char *table);
int nft_lock_conn(int nsfd, const char *table, const struct sockaddr *local,
		  const struct sockaddr *peer);
/* New connections to a listener on @local: their SYNs dropped (retried by the clients). */
int nft_lock_listener(int nsfd, const char *table, const struct sockaddr *local);
int nft_unlock_table(int nsfd, const char *table, bool quiet);

#endif
