// SPDX-License-Identifier: MIT
/*
 * TCP connections again (docs/tcp.md). A new socket in repair mode gets
 * the saved options, is bound to the connection's local address (with
 * IP_TRANSPARENT: the address may arrive here only at the hand-over), gets its sequence
 * numbers, is "connected" (in repair mode connect sends no SYN: the socket
 * is established at once), gets the negotiated options and timestamp, its
 * receive queue, the part of its send queue the peer may have seen, and
 * its window. It stays in repair mode while the tree is held: it sends
 * nothing, and a socket closed in repair mode (a discarded restore) goes
 * silently; its packets are dropped meanwhile (tcp_lock). When the tree is
 * let go it leaves repair mode (a window probe goes out), the lock goes,
 * and the never-sent tail of its send queue is sent normally.
 *
 * With migrate --tcp-close the fd gets instead a socket of the same family
 * whose connection was reset (see tcp_reset_socket).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/nft.h"
#include "common/tcpstate.h"
#include "common/util.h"
#include "dest-agent/restore.h"

static int set_int(int s, int level, int name, int v)
{
	return setsockopt(s, level, name, &v, sizeof(v)) ? -errno : 0;
}

/*
 * A connected socket of @family that received a reset: a loopback
 * connection whose accepted end is closed with SO_LINGER 0 (an RST). The
 * program's first read or write on it fails with ECONNRESET, later reads
 * see end of file and writes EPIPE; poll says POLLIN|POLLERR|POLLHUP.
 */
static int tcp_reset_socket(int family)
{
	struct sockaddr_storage ss = { .ss_family = family };
	struct linger lg = { 1, 0 };
	socklen_t len = family == AF_INET6 ? sizeof(struct sockaddr_in6) :
					     sizeof(struct sockaddr_in);
	struct pollfd pfd;
	int l, c = -1, a = -1, ret;

	if (family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	else
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	if (l < 0)
		return -errno;
	if (bind(l, (struct sockaddr *)&ss, len) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&ss, &len))
		goto fail;
	c = socket(family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	if (c < 0 || connect(c, (struct sockaddr *)&ss, len))
		goto fail;
	a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	if (a < 0 || setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)))
		goto fail;
	close(a);
	a = -1;
	pfd = (struct pollfd){ .fd = c, .events = POLLIN };
	if (poll(&pfd, 1, 5000) != 1 || !(pfd.revents & POLLERR)) {
		errno = ETIMEDOUT;	/* loopback: the reset is there at once */
		goto fail;
	}
	close(l);
	return c;
fail:
	ret = -errno;
	if (a >= 0)
		close(a);
	if (c >= 0)
		close(c);
	close(l);
	return ret;
}

static int repair_queue(int s, int q)
{
	return set_int(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, q);
}

/*
 * @len bytes into queue @q (repair mode: they go straight in, nothing is
 * sent). The kernel may refuse a big piece at once: halved until it takes.
 */
static int fill_queue(int s, int q, const uint8_t *buf, size_t len)
{
	size_t chunk = len;
	int ret = repair_queue(s, q);

	while (!ret && len) {
		ssize_t n = send(s, buf, len < chunk ? len : chunk, MSG_NOSIGNAL);

		if (n < 0 && (errno == ENOMEM || errno == EAGAIN) && chunk > 1024) {
			chunk /= 2;
			continue;
		}
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		buf += n;
		len -= n;
	}
	return ret;
}

static int tcp_check_entry(const FdEntry *f)
{
	const SockEntry *se = f->sock;
	const TcpEntry *te = f->tcp;

	if (!se || !te || se->addr.len > sizeof(struct sockaddr_storage) ||
	    te->peer.len > sizeof(struct sockaddr_storage) ||
	    (se->family != AF_INET && se->family != AF_INET6) ||
	    (!te->close && (!te->has_snd_seq || !te->has_rcv_seq || !te->has_mss_clamp ||
			    /* RFC 7323's largest shift (a larger one is undefined in C too) */
			    te->snd_wscale > 14 || te->rcv_wscale > 14 ||
			    te->unsent > te->send_queue.len || !tcp_state_carried(te->state) ||
			    (te->state == TCP_FIN_WAIT2 && te->send_queue.len) ||
			    (te->fin_unsent && te->state != TCP_FIN_WAIT1 &&
			     te->state != TCP_LAST_ACK)))) {
		pr_err("fd %u: TCP connection without a usable description", f->fd);
		return -EINVAL;
	}
	return 0;
}

/* The connection's negotiated options, as TCP_REPAIR_OPTIONS takes them. */
static int tcp_set_conn_opts(int s, const TcpEntry *te)
{
	struct tcp_repair_opt o[4];
	int n = 0;

	if (te->opt_mask & TCPI_OPT_SACK)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_SACK_PERMITTED, 0 };
	if (te->opt_mask & TCPI_OPT_WSCALE)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_WINDOW,
						  te->snd_wscale | (te->rcv_wscale << 16) };
	if (te->opt_mask & TCPI_OPT_TIMESTAMPS)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_TIMESTAMP, 0 };
	o[n++] = (struct tcp_repair_opt){ TCPOPT_MAXSEG, te->mss_clamp };
	if (setsockopt(s, IPPROTO_TCP, TCP_REPAIR_OPTIONS, o, n * sizeof(o[0])))
		return -errno;
	if (te->has_timestamp &&
	    setsockopt(s, IPPROTO_TCP, TCP_TIMESTAMP, &te->timestamp, sizeof(te->timestamp)))
		return -errno;
	return 0;
}

/*
 * The network lock here (docs/tcp.md): from before a connection's socket
 * exists until the tree is let go, its packets are dropped, in the same
 * nft table as at the source (te->netlock, by name): a held copy must not
 * acknowledge what a rollback would then lose. A checkpoint's table is the
 * source's own, still there: it goes at the release too. Tables made
 * here are removed at exit if the restore fails.
 * Every lock of the images is gathered first (tcp_lock_prepare) and made
 * in one nft run (tcp_lock_commit), before any socket is made: a fork+exec
 * of nft per connection cost tens of ms each of downtime. The per-socket
 * locks then find theirs made and run nothing.
 */
static struct dst_lock {
	char name[104];
	struct nft_script made;		/* applied: the table and its rules */
	struct nft_script pending;	/* to apply at the next commit */
} locked[8];
static size_t nr_locked;

void tcp_unlock_all(void)
{
	struct nft_script un = { 0 };
	size_t i;
	int ret = 0;

	/* every table in one run: this is the release, the tree waits on it */
	for (i = 0; i < nr_locked && !ret; i++)
		ret = nft_script_unlock(&un, locked[i].name);
	if (!ret && un.len)
		ret = nft_run(-1, un.buf, false);
	if (ret)
		for (i = 0; i < nr_locked; i++)
			pr_err("cannot remove the network lock (nft table inet %s) here",
			       locked[i].name);
	for (i = 0; i < nr_locked; i++) {
		nft_script_free(&locked[i].made);
		nft_script_free(&locked[i].pending);
	}
	nft_script_free(&un);
	nr_locked = 0;
}

/* The lock table @name, its making pending if new. */
static int lock_table(const char *name, uint32_t fd, struct dst_lock **out)
{
	size_t i, len = strlen(name);
	int ret;

	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '_')
			break;
	if (!len || i < len || len >= sizeof(locked[0].name)) {
		pr_err("fd %u: bad network lock name in the images", fd);
		return -EINVAL;
	}
	if (!nft_available()) {
		pr_err("fd %u: a TCP connection or listener locked at the source and no nft "
		       "command here to lock it until the hand-over (Debian package nftables)", fd);
		return -EOPNOTSUPP;
	}
	for (i = 0; i < nr_locked && strcmp(locked[i].name, name); i++)
		;
	if (i < nr_locked) {
		*out = &locked[i];
		return 0;
	}
	if (nr_locked == ARRAY_SIZE(locked))
		return -E2BIG;
	memset(&locked[i], 0, sizeof(locked[i]));
	ret = nft_script_table(&locked[i].pending, name);
	if (ret)
		return ret;
	if (!nr_locked)
		atexit(tcp_unlock_all);
	snprintf(locked[i].name, sizeof(locked[0].name), "%s", name);
	nr_locked++;
	*out = &locked[i];
	return 0;
}

int tcp_lock_commit(void)
{
	size_t i;
	int ret = 0;

	for (i = 0; i < nr_locked && !ret; i++) {
		struct dst_lock *t = &locked[i];

		if (!t->pending.len)
			continue;
		/* one transaction: all of it or nothing */
		ret = nft_run(-1, t->pending.buf, false);
		if (ret)
			t->pending.len = 0;
		else
			ret = nft_script_move(&t->made, &t->pending);
	}
	return ret;
}

/* An address of the images, as nft_script_* reads it: NULL if too short. */
static const struct sockaddr *entry_addr(const ProtobufCBinaryData *a)
{
	const struct sockaddr *sa = (const struct sockaddr *)a->data;

	if (a->len < sizeof(struct sockaddr_in) || a->len > sizeof(struct sockaddr_storage) ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) ||
	    (sa->sa_family == AF_INET6 && a->len < sizeof(struct sockaddr_in6)))
		return NULL;
	return sa;
}

/* The lock of @f (a carried connection or a held-back listener), pending; none: 0. */
static int lock_entry(const FdEntry *f)
{
	const struct sockaddr *local, *peer = NULL;
	const char *name = NULL;
	struct dst_lock *t;
	int ret;

	if (f->type == FD_TYPE__FD_TCP && f->sock && f->tcp && !f->tcp->close)
		name = f->tcp->netlock;
	else if (f->type == FD_TYPE__FD_SOCK && f->sock && f->sock->listening)
		name = f->sock->netlock;
	if (!name || !*name)
		return 0;	/* not locked at the source (an older migrate) */
	local = entry_addr(&f->sock->addr);
	if (f->type == FD_TYPE__FD_TCP)
		peer = entry_addr(&f->tcp->peer);
	if (!local || (f->type == FD_TYPE__FD_TCP && !peer)) {
		pr_err("fd %u: locked TCP socket without a usable address", f->fd);
		return -EINVAL;
	}
	ret = lock_table(name, f->fd, &t);
	if (ret)
		return ret;
	if (peer)
		return nft_script_conn(&t->pending, &t->made, t->name, local, peer);
	return nft_script_listener(&t->pending, &t->made, t->name, local);
}

int tcp_lock_prepare(const FilesEntry *fe)
{
	size_t i;
	int ret = 0;

	for (i = 0; fe && i < fe->n_fds && !ret; i++)
		ret = lock_entry(fe->fds[i]);
	return ret;
}

int tcp_lock(const FdEntry *f)
{
	int ret = lock_entry(f);

	return ret ? ret : tcp_lock_commit();	/* nothing to run once prepared */
}

#ifndef IPV6_HDRINCL
#define IPV6_HDRINCL 36
#endif

/* The IPv4 address of @sa (AF_INET, or an IPv4-mapped AF_INET6): false if none. */
static bool addr_v4(const struct sockaddr *sa, struct in_addr *a)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

	if (sa->sa_family == AF_INET) {
		*a = ((const struct sockaddr_in *)sa)->sin_addr;
		return true;
	}
	if (!IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		return false;
	memcpy(a, &s6->sin6_addr.s6_addr[12], 4);
	return true;
}

/*
 * A segment from the peer to our restored socket, with no payload and no
 * option, as the peer sent it before: @flags (TH_ACK, TH_FIN), @seq,
 * @ack, @win (as on the wire, unscaled). Sent on a raw socket to the local
 * address (the loopback delivers it), marked to pass the lock (NFT_PASS_MARK).
 */
static int tcp_inject(const struct sockaddr *local, const struct sockaddr *peer, uint8_t flags,
		      uint32_t seq, uint32_t ack, uint16_t win)
{
	struct {
		union { struct iphdr v4; struct ip6_hdr v6; } ip;
		struct tcphdr th;
	} __attribute__((packed)) pkt4, pkt6;
	struct sockaddr_storage to = { 0 };
	struct tcphdr th = { 0 };
	struct in_addr l4, p4;
	uint32_t sum, mark = NFT_PASS_MARK;
	size_t len, tolen;
	void *buf;
	int s, ret = 0, on = 1;
	bool v4 = addr_v4(local, &l4) && addr_v4(peer, &p4);

	th.source = local->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)peer)->sin6_port :
						   ((const struct sockaddr_in *)peer)->sin_port;
	th.dest = local->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)local)->sin6_port :
						 ((const struct sockaddr_in *)local)->sin_port;
	th.seq = htonl(seq);
	th.ack_seq = htonl(ack);
	th.doff = sizeof(th) / 4;
	th.ack = !!(flags & TH_ACK);
	th.fin = !!(flags & TH_FIN);
	th.window = htons(win);
	memset(&pkt4, 0, sizeof(pkt4));
	memset(&pkt6, 0, sizeof(pkt6));
	if (v4) {
		struct sockaddr_in *t = (struct sockaddr_in *)&to;

		/* the pseudo-header: addresses, protocol, TCP length */
		sum = inet_csum_add(0, &p4, 4);
		sum = inet_csum_add(sum, &l4, 4);
		sum += IPPROTO_TCP + sizeof(th);
		sum = inet_csum_add(sum, &th, sizeof(th));
		th.check = inet_csum_fold(sum);
		pkt4.ip.v4 = (struct iphdr){ .version = 4, .ihl = 5, .ttl = 64,
					     .protocol = IPPROTO_TCP,
					     .tot_len = htons(sizeof(struct iphdr) + sizeof(th)),
					     .saddr = p4.s_addr, .daddr = l4.s_addr };
		memcpy((uint8_t *)&pkt4 + sizeof(struct iphdr), &th, sizeof(th));
		buf = &pkt4;
		len = sizeof(struct iphdr) + sizeof(th);
		t->sin_family = AF_INET;
		t->sin_addr = l4;
		tolen = sizeof(*t);
		s = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);	/* IP_HDRINCL */
	} else {
		const struct in6_addr *la = &((const struct sockaddr_in6 *)local)->sin6_addr;
		const struct in6_addr *pa = &((const struct sockaddr_in6 *)peer)->sin6_addr;
		struct sockaddr_in6 *t = (struct sockaddr_in6 *)&to;

		sum = inet_csum_add(0, pa, 16);
		sum = inet_csum_add(sum, la, 16);
		sum += IPPROTO_TCP + sizeof(th);
		sum = inet_csum_add(sum, &th, sizeof(th));
		th.check = inet_csum_fold(sum);
		pkt6.ip.v6.ip6_flow = htonl(6U << 28);
		pkt6.ip.v6.ip6_plen = htons(sizeof(th));
		pkt6.ip.v6.ip6_nxt = IPPROTO_TCP;
		pkt6.ip.v6.ip6_hlim = 64;
		pkt6.ip.v6.ip6_src = *pa;
		pkt6.ip.v6.ip6_dst = *la;
		memcpy((uint8_t *)&pkt6 + sizeof(struct ip6_hdr), &th, sizeof(th));
		buf = &pkt6;
		len = sizeof(struct ip6_hdr) + sizeof(th);
		t->sin6_family = AF_INET6;
		t->sin6_addr = *la;
		tolen = sizeof(*t);
		s = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
		if (s >= 0 && setsockopt(s, IPPROTO_IPV6, IPV6_HDRINCL, &on, sizeof(on)))
			ret = -errno;
	}
	if (s < 0)
		return -errno;
	if (!ret && setsockopt(s, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)))
		ret = -errno;
	if (!ret && sendto(s, buf, len, 0, (struct sockaddr *)&to, tolen) != (ssize_t)len)
		ret = -errno;
	close(s);
	return ret;
}

/* Whether @sa is an address of this host (in this network namespace). */
static bool addr_is_local(const struct sockaddr *sa, socklen_t len)
{
	struct sockaddr_storage a;
	bool ret;
	int s;

	if (len > sizeof(a))
		return false;
	s = socket(sa->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return false;
	memcpy(&a, sa, len);
	if (a.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&a)->sin6_port = 0;
	else
		((struct sockaddr_in *)&a)->sin_port = 0;
	ret = !bind(s, (struct sockaddr *)&a, len);
	close(s);
	return ret;
}

/* Wait (up to 2 s: the loopback delivers in a softirq) for @s to be in @state. */
static int tcp_wait_state(int s, uint32_t state)
{
	struct tcp_info ti;
	socklen_t len;
	int i;

	for (i = 0; i < 200; i++) {
		len = sizeof(ti);
		if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &len))
			return -errno;
		if (ti.tcpi_state == state)
			return 0;
		usleep(10000);
	}
	return -ETIMEDOUT;
}

/* Our FIN into the send queue, as sent (repair mode: nothing goes out). */
static int tcp_shut_sent(int s)
{
	int ret = repair_queue(s, TCP_SEND_QUEUE);

	if (!ret && shutdown(s, SHUT_WR))
		ret = -errno;
	return ret ? ret : repair_queue(s, TCP_NO_QUEUE);
}

/*
 * A half-closed connection's FINs, once it is established again with
 * sequence numbers before them (docs/tcp.md, "Half-closed connections"),
 * in the order they crossed the wire: ours by shutdown in repair mode (as
 * sent), the peer's FIN (and its ACK of ours, in FIN_WAIT2) as segments
 * the peer sent, made here. The state must then be the saved one.
 */
static int tcp_restore_fins(int s, const FdEntry *f, uint32_t snd_una)
{
	const struct sockaddr *local = (const struct sockaddr *)f->sock->addr.data;
	const struct sockaddr *peer = (const struct sockaddr *)f->tcp->peer.data;
	const TcpEntry *te = f->tcp;
	uint16_t win = te->snd_wnd >> te->snd_wscale > 0xffff ? 0xffff :
		       te->snd_wnd >> te->snd_wscale;
	int ret = 0;

	if (te->state == TCP_ESTABLISHED || (te->state == TCP_FIN_WAIT1 && te->fin_unsent))
		return 0;
	if ((tcp_state_fin_in(te->state) || te->state == TCP_FIN_WAIT2) &&
	    !addr_is_local(local, f->sock->addr.len)) {
		pr_err("fd %u: a half-closed TCP connection needs its local address on this host "
		       "at the restore (its peer's FIN or ACK is given to it here): it is not "
		       "(migrate --move-address adds it in time)", f->fd);
		return -EADDRNOTAVAIL;
	}
	/* CLOSING: ours went first; LAST_ACK: theirs; not sent yet: at the release */
	if (tcp_state_fin_out(te->state) && te->state != TCP_LAST_ACK && !te->fin_unsent)
		ret = tcp_shut_sent(s);
	/* a duplicate ACK: acknowledges nothing new (in CLOSING not our FIN either) */
	if (!ret && tcp_state_fin_in(te->state))
		ret = tcp_inject(local, peer, TH_FIN | TH_ACK, te->rcv_seq - 1, snd_una, win);
	if (!ret && te->state == TCP_LAST_ACK && !te->fin_unsent)
		ret = tcp_shut_sent(s);
	if (!ret && te->state == TCP_FIN_WAIT2)
		ret = tcp_inject(local, peer, TH_ACK, te->rcv_seq, te->snd_seq, win);
	/* until the release, a FIN not sent yet is not there */
	if (!ret)
		ret = tcp_wait_state(s, !te->fin_unsent ? te->state :
				     te->state == TCP_LAST_ACK ? TCP_CLOSE_WAIT : TCP_ESTABLISHED);
	return ret;
}

/* The order matters: seqs before connect, queues after, the window last. */
static int tcp_repair_open(const FdEntry *f)
{
	const SockEntry *se = f->sock;
	const TcpEntry *te = f->tcp;
	uint32_t sent = te->send_queue.len - te->unsent;
	/* a FIN takes a sequence number: the queues start before it */
	uint32_t snd_una = te->snd_seq - tcp_state_fin_out(te->state) - te->send_queue.len;
	uint32_t rcv_nxt = te->rcv_seq - tcp_state_fin_in(te->state);
	struct tcp_repair_window w = { te->snd_wl1, te->snd_wnd, te->max_window, te->rcv_wnd,
				       te->rcv_wup };
	int tr_level = se->family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP;
	int tr_name = se->family == AF_INET6 ? IPV6_TRANSPARENT : IP_TRANSPARENT;
	const char *step = "socket";
	socklen_t len = sizeof(int);
	int s, ret = 0, was_tr = 0;

	s = socket(se->family, SOCK_STREAM | SOCK_CLOEXEC, IPPROTO_TCP);
	if (s < 0)
		return -errno;
	if (se->has_reuseaddr)
		ret = set_int(s, SOL_SOCKET, SO_REUSEADDR, se->reuseaddr);
	if (!ret && (step = "options"))
		ret = sock_set_opts(s, f);
	/* after SO_REUSEADDR: repair mode forces the reuse of a listener's port */
	if (!ret && (step = "repair mode"))
		ret = set_int(s, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_ON);
	/*
	 * The local address may come only with the hand-over: bind and
	 * connect (which routes from it) need IP_TRANSPARENT meanwhile.
	 */
	if (!ret && (step = "transparent"))
		ret = getsockopt(s, tr_level, tr_name, &was_tr, &len) ? -errno :
		      set_int(s, tr_level, tr_name, 1);
	if (!ret && (step = "bind") &&
	    bind(s, (const struct sockaddr *)se->addr.data, se->addr.len))
		ret = -errno;
	if (!ret && (step = "sequence numbers")) {
		ret = repair_queue(s, TCP_RECV_QUEUE);
		if (!ret)
			ret = set_int(s, IPPROTO_TCP, TCP_QUEUE_SEQ,
				      rcv_nxt - te->recv_queue.len);
		if (!ret)
			ret = repair_queue(s, TCP_SEND_QUEUE);
		if (!ret)
			ret = set_int(s, IPPROTO_TCP, TCP_QUEUE_SEQ, snd_una);
	}
	if (!ret && (step = "connect") &&
	    connect(s, (const struct sockaddr *)te->peer.data, te->peer.len))
		ret = -errno;
	if (!ret && (step = "transparent"))
		ret = set_int(s, tr_level, tr_name, was_tr);
	if (!ret && (step = "TCP options"))
		ret = tcp_set_conn_opts(s, te);
	if (!ret && (step = "receive queue"))
		ret = fill_queue(s, TCP_RECV_QUEUE, te->recv_queue.data, te->recv_queue.len);
	/* what the peer may have seen goes in as sent; the never-sent rest at the release */
	if (!ret && (step = "send queue"))
		ret = fill_queue(s, TCP_SEND_QUEUE, te->send_queue.data, sent);
	if (!ret)
		ret = repair_queue(s, TCP_NO_QUEUE);
	/* the window advertised after the peer's FIN: its left edge before it */
	if (tcp_state_fin_in(te->state) && (int32_t)(w.rcv_wup - rcv_nxt) > 0) {
		w.rcv_wnd += w.rcv_wup - rcv_nxt;
		w.rcv_wup = rcv_nxt;
	}
	if (!ret && te->has_snd_wl1 && (step = "window") &&
	    setsockopt(s, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)))
		ret = -errno;
	if (!ret && (step = "FIN"))
		ret = tcp_restore_fins(s, f, snd_una);
	if (ret) {
		pr_err("fd %u: cannot make its TCP connection again (%s): %s", f->fd, step,
		       strerror(-ret));
		close(s);
		return ret;
	}
	return s;
}

static int tcp_open(const struct fd_open *o, const FdEntry *f, uint64_t key)
{
	int ret = tcp_check_entry(f);

	(void)o;
	(void)key;
	if (ret)
		return ret;
	if (!f->tcp->close) {
		ret = tcp_lock(f);	/* made already by the tree's one run: nothing to run */
		return ret ? ret : tcp_repair_open(f);
	}
	ret = tcp_reset_socket(f->sock->family);
	if (ret < 0)
		pr_err("fd %u: cannot make a reset TCP socket in its place (--tcp-close): %s",
		       f->fd, strerror(-ret));
	return ret;
}

/*
 * The tree is let go: the lock goes, out of repair mode, then the never-sent tail of the
 * send queue goes out as the program's own writes would have (it fitted in
 * the same send buffer at the source).
 */
static void tcp_resume(int fd, const FdEntry *f)
{
	const TcpEntry *te = f->tcp;
	const uint8_t *tail;
	bool grown = false;
	uint64_t room;
	int sndbuf = 0;
	socklen_t len;
	size_t left;

	if (te->close)
		return;
	/* after commit: unlocked first (once), so the window probe goes out */
	tcp_unlock_all();
	if (set_int(fd, IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF))
		pr_perror("fd %u: its TCP connection cannot leave repair mode", f->fd);
	tail = te->send_queue.data + te->send_queue.len - te->unsent;
	left = te->unsent;
	/*
	 * The kernel counts its own overhead in the send buffer, per skb: the
	 * bytes that filled it at the source may not fit it here (a tail of
	 * 650 KB took 98% of it). Room for them, then the saved size again
	 * (SO_SNDBUFFORCE doubles what it is given, as SO_SNDBUF reports):
	 * the queue over it blocks the program's writes as at the source.
	 */
	len = sizeof(sndbuf);
	if (left && !getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len)) {
		room = (uint64_t)sndbuf / 2 + 2 * (uint64_t)left;
		grown = !set_int(fd, SOL_SOCKET, SO_SNDBUFFORCE,
				 room < INT_MAX / 2 ? (int)room : INT_MAX / 2);
	}
	while (left) {
		ssize_t n = send(fd, tail, left, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n <= 0) {
			pr_err("fd %u: %zu unsent bytes of its TCP send queue are lost: %s", f->fd,
			       left, n < 0 ? strerror(errno) : "nothing taken");
			break;
		}
		tail += n;
		left -= n;
	}
	if (grown && set_int(fd, SOL_SOCKET, SO_SNDBUFFORCE, sndbuf / 2))
		pr_perror("fd %u: its TCP send buffer size cannot be set back", f->fd);
	/* our FIN was behind them: FIN_WAIT1 (LAST_ACK) again, before the program runs */
	if (te->fin_unsent && !left && shutdown(fd, SHUT_WR))
		pr_perror("fd %u: the FIN of its TCP connection is lost", f->fd);
}

const struct fd_restore_ops tcp_restore_ops = {
	.type = FD_TYPE__FD_TCP,
	.name = "TCP connection",
	.open = tcp_open,
	.resume = tcp_resume,
};
