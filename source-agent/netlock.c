// SPDX-License-Identifier: MIT
/*
 * The network lock of the TCP connections a migration moves (docs/tcp.md):
 * from the final freeze on, the packets of each moving connection (its
 * 4-tuple, both ways) are dropped, not answered, in the network namespace
 * of the process, by an nftables table of our own, "ferry_lock_<migration
 * id>", made by the `nft` command run in that namespace.
 * Dropped packets are retransmitted by the peer later: to the destination
 * once the address has moved, or to the source again after a rollback.
 * The table goes whatever the outcome, except when the hand-over is in
 * doubt (the source must then stay silent until the operator decides) and
 * after a checkpoint, where `restore` removes it once the connections are
 * back (until then a packet of theirs would meet no socket: a reset).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/nft.h"
#include "common/util.h"
#include "source-agent/netlock.h"

/* One table per network namespace the tree's connections live in. */
static struct lock_table {
	dev_t dev;
	ino_t ino;
	int nsfd;		/* the namespace (held: the tree may be gone when we unlock) */
	pid_t pid;		/* a process of the tree in it, for messages */
	char name[96];
} *tables;
static size_t nr_tables, cap_tables;

bool netlock_available(void)
{
	return nft_available();
}

/* The table of @pid's network namespace, made on first use. */
static int lock_table(const char *id, pid_t pid, struct lock_table **out)
{
	struct lock_table *t;
	char path[64], script[512];
	struct stat st;
	size_t i;
	int ret, n;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	if (stat(path, &st))
		return -errno;
	for (i = 0; i < nr_tables; i++) {
		if (tables[i].dev == st.st_dev && tables[i].ino == st.st_ino) {
			*out = &tables[i];
			return 0;
		}
	}
	if (grow_array(&tables, &cap_tables, nr_tables, sizeof(*tables)))
		return -ENOMEM;
	t = &tables[nr_tables];
	memset(t, 0, sizeof(*t));
	t->dev = st.st_dev;
	t->ino = st.st_ino;
	t->pid = pid;
	t->nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (t->nsfd < 0)
		return -errno;
	/* the migration's id, as nft takes a name: letters, digits, '_' */
	n = snprintf(t->name, sizeof(t->name), "ferry_lock_%.60s", id);
	for (i = strlen("ferry_lock_"); i < (size_t)n; i++)
		if (!isalnum((unsigned char)t->name[i]))
			t->name[i] = '_';
	if (nr_tables)	/* the tree spans namespaces: one table each */
		snprintf(t->name + n, sizeof(t->name) - n, "_%zu", nr_tables);
	/* before conntrack (-200) and any filter: nothing of these packets is seen */
	snprintf(script, sizeof(script),
		 "table inet %s {\n"
		 "  chain in { type filter hook input priority -300; policy accept; }\n"
		 "  chain out { type filter hook output priority -300; policy accept; }\n"
		 "}\n", t->name);
	ret = nft_run(t->nsfd, script, false);
	if (ret) {
		close(t->nsfd);
		pr_err("cannot lock the network of pid %d's TCP connections (nft table %s)", pid,
		       t->name);
		return ret;
	}
	nr_tables++;
	*out = t;
	return 0;
}

static void addr_str(const struct sockaddr *sa, char *ip, size_t len, int *port)
{
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, len);
		*port = ntohs(s6->sin6_port);
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, ip, len);
		*port = ntohs(s4->sin_port);
	}
}

int netlock_add(const char *id, pid_t pid, const struct sockaddr *local,
		const struct sockaddr *peer, const char **table)
{
	char lip[INET6_ADDRSTRLEN], pip[INET6_ADDRSTRLEN], script[1024];
	struct lock_table *t = NULL;
	const char *ip;
	int lport, pport, ret;

	ret = lock_table(id, pid, &t);
	if (ret)
		return ret;
	*table = t->name;
	addr_str(local, lip, sizeof(lip), &lport);
	addr_str(peer, pip, sizeof(pip), &pport);
	/* an IPv4-mapped IPv6 socket talks IPv4 on the wire */
	ip = local->sa_family == AF_INET6 && !strchr(lip, '.') ? "ip6" : "ip";
	if (local->sa_family == AF_INET6 && strchr(lip, '.')) {
		memmove(lip, lip + 7, strlen(lip + 7) + 1);	/* "::ffff:" */
		memmove(pip, pip + 7, strlen(pip + 7) + 1);
	}
	snprintf(script, sizeof(script),
		 "add rule inet %s in %s saddr %s %s daddr %s tcp sport %d tcp dport %d drop\n"
		 "add rule inet %s out %s saddr %s %s daddr %s tcp sport %d tcp dport %d drop\n",
		 t->name, ip, pip, ip, lip, pport, lport,
		 t->name, ip, lip, ip, pip, lport, pport);
	ret = nft_run(t->nsfd, script, false);
	if (ret)
		pr_err("cannot lock TCP connection %s:%d <-> %s:%d", lip, lport, pip, pport);
	return ret;
}

void netlock_forget(void)
{
	size_t i;

	for (i = 0; i < nr_tables; i++)
		close(tables[i].nsfd);
	nr_tables = 0;
}

int netlock_remove(void)
{
	char script[128];
	size_t i;
	int ret = 0, r;

	for (i = 0; i < nr_tables; i++) {
		snprintf(script, sizeof(script), "delete table inet %s\n", tables[i].name);
		r = nft_run(tables[i].nsfd, script, false);
		close(tables[i].nsfd);
		if (r) {
			pr_err("cannot remove the network lock (nft table inet %s in the network "
			       "namespace of pid %d): remove it by hand", tables[i].name,
			       tables[i].pid);
			ret = ret ?: r;
		}
	}
	nr_tables = 0;
	return ret;
}

void netlock_describe(char *buf, size_t len)
{
	size_t i, off = 0;

	buf[0] = 0;
	for (i = 0; i < nr_tables && off < len; i++)
		off += snprintf(buf + off, len - off, "%snft delete table inet %s", i ? "; " : "",
				tables[i].name);
}
