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
 * conntrack); a connection's packets both ways dropped by two rules; new
 * connections to a listener held back (their SYNs dropped, retried by the
 * clients); the table removed (no error if it is not there).
 * Each fork+exec of nft costs tens of ms on a loaded host, inside the
 * freeze: the locks are written into a script first (struct nft_script)
 * and every lock of a namespace goes in one nft run (nft -f applies a
 * script as one transaction: all of it or nothing).
 */
struct nft_script {
	char *buf;
	size_t len, cap;
};

/*
 * Packets with this mark (SO_MARK) pass the lock: the FIN or ACK that
 * ferry's restore gives a half-closed connection it makes (dest-agent/tcp.c).
 */
#define NFT_PASS_MARK 0x46525259

/*
 * Append the table (its first rule lets NFT_PASS_MARK pass), a connection's two rules, or a listener's rule to @s,
 * unless that text is in @s or in @have already (NULL: none): 0 or -ENOMEM.
 */
int nft_script_table(struct nft_script *s, const char *table);
int nft_script_conn(struct nft_script *s, const struct nft_script *have, const char *table,
		    const struct sockaddr *local, const struct sockaddr *peer);
int nft_script_listener(struct nft_script *s, const struct nft_script *have,
			const char *table, const struct sockaddr *local);
/* The removal of table @table (made first: no error when it is not there). */
int nft_script_unlock(struct nft_script *s, const char *table);
/* Move @from's text to the end of @to (@from left empty): 0 or -ENOMEM. */
int nft_script_move(struct nft_script *to, struct nft_script *from);
void nft_script_free(struct nft_script *s);

#endif
