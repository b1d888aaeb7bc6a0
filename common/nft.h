/* SPDX-License-Identifier: MIT */
#ifndef FERRY_NFT_H
#define FERRY_NFT_H

#include <stdbool.h>

/* The nftables command (`nft`, Debian package nftables), for network locks. */

/* Is it installed? */
bool nft_available(void);
/*
 * `nft -f -` with @script on its stdin, in the network namespace @nsfd (an
 * open /proc/PID/ns/net; -1: ours). It must exit 0 within 10 s (else it is
 * killed): 0 or -errno, with a message unless @quiet.
 */
int nft_run(int nsfd, const char *script, bool quiet);

#endif
