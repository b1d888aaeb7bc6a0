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
 * The final dump first gathers the locks of all the tree's connections and
 * listeners (netlock_prepare*), then makes them in one nft run per
 * namespace (netlock_commit): the per-fd netlock_add* then finds its lock
 * made and runs nothing.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
	struct nft_script made;		/* applied: the table and its rules */
	struct nft_script pending;	/* to apply at the next commit */
} *tables;
static size_t nr_tables, cap_tables;

/* The table of @pid's network namespace, made on first use. */
static int lock_table(const char *id, pid_t pid, struct lock_table **out)
{
	struct lock_table *t;
	char path[64];
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
	/* made with the first commit; removed on every exit path from now on */
	ret = nft_script_table(&t->pending, t->name);
	if (ret) {
		close(t->nsfd);
		return ret;
	}
	nr_tables++;
	*out = t;
	return 0;
}

/* The pending locks of @t in one nft run (one transaction: all or none). */
static int table_commit(struct lock_table *t)
{
	int ret;

	if (!t->pending.len)
		return 0;
	ret = nft_run(t->nsfd, t->pending.buf, false);
	if (ret) {
		pr_err("cannot lock the network of pid %d's TCP connections (nft table %s)",
		       t->pid, t->name);
		t->pending.len = 0;	/* nothing of it was applied: the table again first */
		if (!t->made.len && nft_script_table(&t->pending, t->name))
			pr_err("out of memory for the nft script");
		return ret;
	}
	return nft_script_move(&t->made, &t->pending);
}

int netlock_prepare(const char *id, pid_t pid, const struct sockaddr *local,
		    const struct sockaddr *peer)
{
	struct lock_table *t = NULL;
	int ret;

	ret = lock_table(id, pid, &t);
	return ret ? ret : nft_script_conn(&t->pending, &t->made, t->name, local, peer);
}

int netlock_prepare_listener(const char *id, pid_t pid, const struct sockaddr *local)
{
	struct lock_table *t = NULL;
	int ret;

	ret = lock_table(id, pid, &t);
	return ret ? ret : nft_script_listener(&t->pending, &t->made, t->name, local);
}

int netlock_commit(void)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < nr_tables && !ret; i++)
		ret = table_commit(&tables[i]);
	return ret;
}

int netlock_add(const char *id, pid_t pid, const struct sockaddr *local,
		const struct sockaddr *peer, const char **table)
{
	struct lock_table *t = NULL;
	int ret;

	ret = lock_table(id, pid, &t);
	if (!ret)
		ret = nft_script_conn(&t->pending, &t->made, t->name, local, peer);
	if (ret)
		return ret;
	*table = t->name;
	return table_commit(t);		/* nothing to run when netlock_commit made it */
}

int netlock_add_listener(const char *id, pid_t pid, const struct sockaddr *local,
			 const char **table)
{
	struct lock_table *t = NULL;
	int ret;

	ret = lock_table(id, pid, &t);
	if (!ret)
		ret = nft_script_listener(&t->pending, &t->made, t->name, local);
	if (ret)
		return ret;
	*table = t->name;
	return table_commit(t);
}

void netlock_forget(void)
{
	size_t i;

	for (i = 0; i < nr_tables; i++) {
		close(tables[i].nsfd);
		nft_script_free(&tables[i].made);
		nft_script_free(&tables[i].pending);
	}
	nr_tables = 0;
}

int netlock_remove(void)
{
	size_t i;
	int ret = 0, r;

	for (i = 0; i < nr_tables; i++) {
		struct nft_script un = { 0 };

		r = nft_script_unlock(&un, tables[i].name);
		if (!r)
			r = nft_run(tables[i].nsfd, un.buf, false);
		nft_script_free(&un);
		close(tables[i].nsfd);
		nft_script_free(&tables[i].made);
		nft_script_free(&tables[i].pending);
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
