/* SPDX-License-Identifier: MIT */
#ifndef FERRY_NETLOCK_H
#define FERRY_NETLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/* The network lock of moving TCP connections (netlock.c, docs/tcp.md). */

/*
 * Drop the packets of TCP connection @local <-> @peer (of @pid, a process
 * of the tree, migration @id) both ways, from now until netlock_remove;
 * *@table: the name of the nft table (inet family) that does it. 0 or
 * -errno (with a message).
 */
int netlock_add(const char *id, pid_t pid, const struct sockaddr *local,
		const struct sockaddr *peer, const char **table);
/* New connections to the listener on @local wait (their SYNs are dropped). */
int netlock_add_listener(const char *id, pid_t pid, const struct sockaddr *local,
			 const char **table);
/*
 * The same locks gathered (nothing run yet), then all made by
 * netlock_commit, one nft run per network namespace; netlock_add* of a
 * lock made so runs nothing. 0 or -errno (with a message).
 */
int netlock_prepare(const char *id, pid_t pid, const struct sockaddr *local,
		    const struct sockaddr *peer);
int netlock_prepare_listener(const char *id, pid_t pid, const struct sockaddr *local);
int netlock_commit(void);
/* Remove every lock table: 0, or the first error (with a message). */
int netlock_remove(void);
/* Leave the tables in place (for `restore` to remove). */
void netlock_forget(void);
/* The commands that remove the tables by hand, for the in-doubt message. */
void netlock_describe(char *buf, size_t len);

#endif
