// SPDX-License-Identifier: MIT
/*
 * TCP connections (docs/tcp.md). An established connection is read in the
 * kernel's repair mode at the final dump: first its packets are dropped
 * (netlock.c), then our copy of the socket (pidfd_getfd) goes into
 * TCP_REPAIR, which stops it sending anything, and its sequence numbers,
 * queues (unacknowledged and unsent data, received and unread data),
 * negotiated options, window and timestamp are read. The sockets stay in
 * repair mode until the migration ends: killed with the source (a socket
 * closed in repair mode goes silently, no FIN, no RST), or taken out of it
 * on a rollback, when they work on as before. Half-closed connections
 * travel with their state (the FINs are counted in the sequence numbers);
 * other states (connecting, half-open) are refused by name before
 * anything is frozen.
 * With --tcp-close nothing is read: the destination gets a reset socket.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <unistd.h>

#include "common/log.h"
#include "common/nft.h"
#include "common/tcpstate.h"
#include "common/util.h"
#include "source-agent/files.h"
#include "source-agent/netlock.h"
#include "source-agent/proc.h"
#include "source-agent/tree.h"

static enum tcp_mode tcp_mode = TCP_MODE_CARRY;
static bool tcp_leave_running;
static unsigned int accept_wait_ms = TCP_ACCEPT_WAIT_MS_DEFAULT;

/* Our copies of the sockets put in repair mode, until the migration ends. */
static int *held;
static size_t nr_held, cap_held;

void tcp_set_mode(enum tcp_mode mode, bool leave_running)
{
	tcp_mode = mode;
	tcp_leave_running = leave_running;
}

static const char *const state_names[] = {
	[TCP_ESTABLISHED] = "established",
	[TCP_SYN_SENT] = "connecting (SYN sent)",
	[TCP_SYN_RECV] = "half-open (SYN received)",
	[TCP_FIN_WAIT1] = "half-closed by this end (FIN_WAIT1)",
	[TCP_FIN_WAIT2] = "half-closed by this end (FIN_WAIT2)",
	[TCP_TIME_WAIT] = "closed (TIME_WAIT)",
	[TCP_CLOSE] = "closed",
	[TCP_CLOSE_WAIT] = "half-closed by its peer (CLOSE_WAIT)",
	[TCP_LAST_ACK] = "closing (LAST_ACK)",
	[TCP_LISTEN] = "listening",
	[TCP_CLOSING] = "closing (CLOSING)",
};

static const char *state_name(unsigned int st)
{
	return st < ARRAY_SIZE(state_names) && state_names[st] ? state_names[st] : "unknown";
}

static int tcp_info_of(int s, struct tcp_info *ti)
{
	socklen_t len = sizeof(*ti);

	memset(ti, 0, sizeof(*ti));
	return getsockopt(s, IPPROTO_TCP, TCP_INFO, ti, &len) ? -errno : 0;
}

/* A TCP socket that has (or had) a peer: not listening, not just made or bound. */
static bool tcp_match(const struct fd_dump *d)
{
	struct tcp_info ti;
	int s, domain = 0, proto = 0;
	socklen_t len = sizeof(int);
	bool ret = false;

	if (!S_ISSOCK(d->st.st_mode))
		return false;
	s = proc_take_fd(d->pid, d->fd);
	if (s < 0)
		return false;	/* socket.c's row says why */
	if (!getsockopt(s, SOL_SOCKET, SO_DOMAIN, &domain, &len) &&
	    (domain == AF_INET || domain == AF_INET6) &&
	    !getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &proto, &len) && proto == IPPROTO_TCP &&
	    !tcp_info_of(s, &ti))
		ret = ti.tcpi_state != TCP_LISTEN && ti.tcpi_state != TCP_CLOSE;
	close(s);
	return ret;
}

/*
 * The inode of the socket at the other end of @local <-> @peer when that
 * end is in @pid's network namespace too (a local connection), else 0:
 * sock_diag looks the reversed 4-tuple up.
 */
static int tcp_local_peer(pid_t pid, const struct sockaddr_storage *local,
			  const struct sockaddr_storage *peer, uint64_t *ino)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST },
		.r = { .sdiag_family = local->ss_family, .sdiag_protocol = IPPROTO_TCP,
		       .idiag_states = ~0U,
		       .id.idiag_cookie = { INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE } },
	};
	union { struct nlmsghdr nlh; char buf[4096]; } resp;
	struct inet_diag_msg *m;
	ssize_t n;
	int nl;

	*ino = 0;
	if (local->ss_family == AF_INET) {
		const struct sockaddr_in *l = (const void *)local, *p = (const void *)peer;

		req.r.id.idiag_sport = p->sin_port;
		req.r.id.idiag_dport = l->sin_port;
		memcpy(req.r.id.idiag_src, &p->sin_addr, 4);
		memcpy(req.r.id.idiag_dst, &l->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *l = (const void *)local, *p = (const void *)peer;

		req.r.id.idiag_sport = p->sin6_port;
		req.r.id.idiag_dport = l->sin6_port;
		memcpy(req.r.id.idiag_src, &p->sin6_addr, 16);
		memcpy(req.r.id.idiag_dst, &l->sin6_addr, 16);
	}
	nl = sock_diag_open(pid);
	if (nl < 0)
		return nl;
	if (send(nl, &req, sizeof(req), 0) != sizeof(req)) {
		close(nl);
		return -errno;
	}
	n = recv(nl, &resp, sizeof(resp), 0);
	close(nl);
	if (n < 0)
		return -errno;
	if (!NLMSG_OK(&resp.nlh, n) || resp.nlh.nlmsg_type != SOCK_DIAG_BY_FAMILY ||
	    resp.nlh.nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return 0;	/* NLMSG_ERROR (ENOENT): the peer is elsewhere */
	m = NLMSG_DATA(&resp.nlh);
	*ino = m->idiag_inode;
	return 0;
}

/* What a TCP connection's entry points to, alive until files-<pid>.img is sent. */
struct tcp_store {
	SockEntry se;
	TcpEntry te;
	struct sockaddr_storage local, peer;
	uint8_t *sendq, *recvq;
	void *opts;
};

static int tcp_addrs(int s, struct tcp_store *st)
{
	socklen_t llen = sizeof(st->local), plen = sizeof(st->peer);

	if (getsockname(s, (struct sockaddr *)&st->local, &llen) ||
	    getpeername(s, (struct sockaddr *)&st->peer, &plen))
		return -errno;
	st->se.addr.data = (uint8_t *)&st->local;
	st->se.addr.len = llen;
	st->te.peer.data = (uint8_t *)&st->peer;
	st->te.peer.len = plen;
	return 0;
}

/*
 * Urgent (out-of-band) data the peer sent, not read yet (or announced, not
 * arrived): what, or NULL. Repair mode has no urgent pointer to restore,
 * and a peek of the receive queue stops at the mark. (Ours, sent with
 * MSG_OOB and not yet acknowledged, cannot be seen: docs/tcp.md.)
 */
static const char *tcp_urgent(int s)
{
	char c;
	ssize_t n = recv(s, &c, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT);

	/* EINVAL: none, read already, or SO_OOBINLINE (then the peek stops at the mark) */
	if (n > 0)
		return "not read yet";
	return n < 0 && errno == EAGAIN ? "announced by its peer, not arrived" : NULL;
}

/*
 * Whatever the dump would refuse, on the running tree (nothing frozen, our
 * copy of the socket only looked at) and again, frozen, before the dump.
 */
static int tcp_check(struct fd_dump *d)
{
	struct tcp_store st = { 0 };
	const char *urgent = NULL;
	struct tcp_info ti;
	uint64_t ino = 0;
	int s, ret;

	s = proc_take_fd(d->pid, d->fd);
	if (s < 0)
		return s;
	ret = tcp_info_of(s, &ti);
	if (!ret)
		ret = sock_refuse_filter(s, d->pid, d->fd);
	/* a connection being made has no peer yet: refused below, by its state */
	if (!ret && tcp_state_carried(ti.tcpi_state))
		ret = tcp_addrs(s, &st);
	if (!ret)
		urgent = tcp_urgent(s);
	close(s);
	if (ret)
		return ret;
	if (tcp_mode == TCP_MODE_REFUSE) {
		pr_err("pid %d: fd %d is a connected TCP socket (%s): refused (--tcp-refuse)",
		       d->pid, d->fd, state_name(ti.tcpi_state));
		return -EOPNOTSUPP;
	}
	if (tcp_mode == TCP_MODE_CLOSE)
		return 0;	/* any state: the destination gets a reset socket */
	if (tcp_leave_running) {
		pr_err("pid %d: fd %d is an established TCP connection and --leave-running keeps "
		       "the source running: two copies cannot own one connection (--tcp-close "
		       "gives the copy a reset socket)", d->pid, d->fd);
		return -EOPNOTSUPP;
	}
	if (!tcp_state_carried(ti.tcpi_state)) {
		pr_err("pid %d: fd %d is a TCP connection %s: ferry moves established and "
		       "half-closed ones only (--tcp-close replaces it by a reset socket)", d->pid,
		       d->fd, state_name(ti.tcpi_state));
		return -EOPNOTSUPP;
	}
	if (!nft_available()) {
		pr_err("pid %d: fd %d is an established TCP connection and the nft command "
		       "(Debian package nftables) is not here: ferry cannot lock the network "
		       "to move it (install nftables, or use --tcp-close or --tcp-refuse)",
		       d->pid, d->fd);
		return -EOPNOTSUPP;
	}
	if (urgent) {
		pr_err("pid %d: fd %d is a TCP connection with urgent (out-of-band) data %s: "
		       "ferry cannot carry urgent data", d->pid, d->fd, urgent);
		return -EOPNOTSUPP;
	}
	/* a connection to this host's own socket: that socket must come along */
	ret = tcp_local_peer(d->pid, &st.local, &st.peer, &ino);
	if (!ret && ino && d->ids)
		ret = file_ids_add_peer(d->ids, ino, d->pid, d->fd, "local TCP connection", false,
				       false);
	return ret;
}

static int repair_queue(int s, int q)
{
	return setsockopt(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, &q, sizeof(q)) ? -errno : 0;
}

/* The sequence number of queue @q: TCP_SEND_QUEUE write_seq, TCP_RECV_QUEUE rcv_nxt. */
static int queue_seq(int s, int q, uint32_t *seq)
{
	socklen_t len = sizeof(*seq);
	int ret = repair_queue(s, q);

	if (!ret && getsockopt(s, IPPROTO_TCP, TCP_QUEUE_SEQ, seq, &len))
		ret = -errno;
	return ret;
}

/* The @len bytes of queue @q, peeked (repair mode: MSG_PEEK reads that queue). */
static int peek_queue(int s, int q, uint32_t len, uint8_t **buf)
{
	ssize_t n;
	int ret;

	*buf = NULL;
	if (!len)
		return 0;
	*buf = malloc(len);
	if (!*buf)
		return -ENOMEM;
	ret = repair_queue(s, q);
	if (ret)
		return ret;
	n = recv(s, *buf, len, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	if ((uint32_t)n == len)
		return 0;
	if (q != TCP_RECV_QUEUE)
		return -EIO;
	/* a peek stops at an urgent mark (SO_OOBINLINE, or a byte read with MSG_OOB) */
	pr_err("its receive queue holds %u bytes but a peek gives %zd: an urgent "
	       "(out-of-band) mark: ferry cannot carry urgent data", len, n);
	return -EOPNOTSUPP;
}

/* In repair mode: everything of the connection that travels. */
static int tcp_read_conn(int s, struct tcp_store *st)
{
	TcpEntry *te = &st->te;
	struct tcp_repair_window w;
	struct tcp_info ti;
	socklen_t len;
	int inq, outq, unsent, ret;
	uint32_t v;

	ret = tcp_info_of(s, &ti);
	if (ret)
		return ret;
	/* locked since tcp_check: a FIN that came in between is carried too */
	if (!tcp_state_carried(ti.tcpi_state))
		return -EOPNOTSUPP;
	te->state = ti.tcpi_state;
	te->has_opt_mask = 1;
	te->opt_mask = ti.tcpi_options & (TCPI_OPT_SACK | TCPI_OPT_WSCALE | TCPI_OPT_TIMESTAMPS);
	te->has_snd_wscale = te->has_rcv_wscale = 1;
	te->snd_wscale = ti.tcpi_snd_wscale;
	te->rcv_wscale = ti.tcpi_rcv_wscale;
	len = sizeof(v);
	if (getsockopt(s, IPPROTO_TCP, TCP_MAXSEG, &v, &len))	/* repair mode: mss_clamp */
		return -errno;
	te->has_mss_clamp = 1;
	te->mss_clamp = v;
	len = sizeof(v);
	if (te->opt_mask & TCPI_OPT_TIMESTAMPS) {
		if (getsockopt(s, IPPROTO_TCP, TCP_TIMESTAMP, &v, &len))
			return -errno;
		te->has_timestamp = 1;
		te->timestamp = v;
	}
	len = sizeof(w);
	if (getsockopt(s, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &len))
		return -errno;
	te->has_snd_wl1 = te->has_snd_wnd = te->has_max_window = 1;
	te->has_rcv_wnd = te->has_rcv_wup = 1;
	te->snd_wl1 = w.snd_wl1;
	te->snd_wnd = w.snd_wnd;
	te->max_window = w.max_window;
	te->rcv_wnd = w.rcv_wnd;
	te->rcv_wup = w.rcv_wup;
	/* SIOCOUTQ: write_seq - snd_una; SIOCOUTQNSD: write_seq - snd_nxt (never sent) */
	if (ioctl(s, SIOCINQ, &inq) || ioctl(s, SIOCOUTQ, &outq) || ioctl(s, SIOCOUTQNSD, &unsent))
		return -errno;
	if (inq < 0 || outq < 0 || unsent < 0 || unsent > outq)
		return -EIO;
	/*
	 * SIOCINQ counts data, not the peer's FIN. SIOCOUTQ (write_seq -
	 * snd_una) counts our FIN while it is not acknowledged: the bytes are
	 * one fewer (FIN_WAIT2: none).
	 */
	if (te->state == TCP_FIN_WAIT2 && outq)
		return -EIO;
	if (tcp_state_fin_out(te->state) && te->state != TCP_FIN_WAIT2) {
		if (!outq)
			return -EIO;
		outq--;
		/*
		 * Not sent yet (the FIN is last; SIOCOUTQNSD counts it too): it
		 * goes after the unsent data at the release. Not in CLOSING,
		 * where the peer's FIN came after our shutdown: made again in the
		 * other order, it would be LAST_ACK.
		 */
		if (unsent) {
			if (te->state == TCP_CLOSING) {
				pr_err("its FIN is not sent yet (closing (CLOSING), %d bytes "
				       "unsent): ferry cannot make that state again", unsent - 1);
				return -EOPNOTSUPP;
			}
			unsent--;
			te->has_fin_unsent = 1;
			te->fin_unsent = 1;
		}
	}
	te->has_snd_seq = te->has_rcv_seq = 1;
	ret = queue_seq(s, TCP_SEND_QUEUE, &te->snd_seq);
	if (!ret)
		ret = queue_seq(s, TCP_RECV_QUEUE, &te->rcv_seq);
	if (!ret)
		ret = peek_queue(s, TCP_SEND_QUEUE, outq, &st->sendq);
	if (!ret)
		ret = peek_queue(s, TCP_RECV_QUEUE, inq, &st->recvq);
	if (!ret)
		ret = repair_queue(s, TCP_NO_QUEUE);
	if (ret)
		return ret;
	te->has_send_queue = te->has_unsent = te->has_recv_queue = 1;
	te->send_queue.data = st->sendq;
	te->send_queue.len = outq;
	te->unsent = unsent;
	te->recv_queue.data = st->recvq;
	te->recv_queue.len = inq;
	return 0;
}

/* Lock the connection's packets, then repair mode; @s is kept until the end. */
static int tcp_freeze_conn(struct fd_dump *d, int s, struct tcp_store *st)
{
	int on = TCP_REPAIR_ON, ret;

	if (grow_array(&held, &cap_held, nr_held, sizeof(*held)))
		return -ENOMEM;
	ret = netlock_add(d->sink->migration_id, d->pid, (struct sockaddr *)&st->local,
			  (struct sockaddr *)&st->peer, (const char **)&st->te.netlock);
	if (ret)
		return ret;
	if (setsockopt(s, IPPROTO_TCP, TCP_REPAIR, &on, sizeof(on))) {
		ret = -errno;
		pr_err("pid %d: fd %d: cannot put its TCP connection in repair mode: %s", d->pid,
		       d->fd, strerror(errno));
		return ret;
	}
	held[nr_held++] = s;
	return 0;
}

static int tcp_dump(struct fd_dump *d)
{
	struct tcp_store *st = calloc(1, sizeof(*st));
	int s, v, ret;
	socklen_t len = sizeof(v);

	if (!st)
		return -ENOMEM;
	sock_entry__init(&st->se);
	tcp_entry__init(&st->te);
	d->priv = st;
	d->e.type = FD_TYPE__FD_TCP;
	d->e.sock = &st->se;
	d->e.tcp = &st->te;
	s = proc_take_fd(d->pid, d->fd);
	if (s < 0)
		return s;
	st->se.type = SOCK_STREAM;
	st->se.protocol = IPPROTO_TCP;
	ret = tcp_addrs(s, st);
	st->se.family = st->local.ss_family;
	if (!ret && !getsockopt(s, SOL_SOCKET, SO_REUSEADDR, &v, &len)) {
		st->se.has_reuseaddr = 1;
		st->se.reuseaddr = v;
	}
	if (!ret)
		ret = sock_opts_read(d->pid, s, &st->se, &st->opts);
	st->te.state = TCP_ESTABLISHED;		/* tcp_read_conn: the state read */
	if (ret || tcp_mode == TCP_MODE_CLOSE) {
		st->te.has_close = 1;
		st->te.close = 1;
		close(s);
		return ret;	/* --tcp-close: nothing more (its state is whatever it is) */
	}
	ret = tcp_freeze_conn(d, s, st);
	if (ret) {
		close(s);
		return ret;
	}
	ret = tcp_read_conn(s, st);
	if (ret)
		pr_err("pid %d: fd %d: cannot read its TCP connection in repair mode: %s", d->pid,
		       d->fd, strerror(-ret));
	return ret;
}

static void tcp_free(struct fd_dump *d)
{
	struct tcp_store *st = d->priv;

	if (st) {
		free(st->sendq);
		free(st->recvq);
		free(st->opts);
	}
	free(st);
}

int tcp_lock_listener(struct fd_dump *d, const struct sockaddr *local, const char **table)
{
	*table = NULL;
	if (!d->sink || tcp_mode != TCP_MODE_CARRY || tcp_leave_running || !nft_available())
		return 0;
	return netlock_add_listener(d->sink->migration_id, d->pid, local, table);
}

/* The lock of socket @s (of @pid) if it is an established TCP connection or a listener. */
static int tcp_prepare_lock(struct sink *sink, pid_t pid, int s, void *arg)
{
	struct sockaddr_storage local, peer;
	socklen_t llen = sizeof(local), plen = sizeof(peer), len = sizeof(int);
	int domain = 0, proto = 0;
	struct tcp_info ti;

	(void)arg;
	if (getsockopt(s, SOL_SOCKET, SO_DOMAIN, &domain, &len) ||
	    (domain != AF_INET && domain != AF_INET6) ||
	    getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &proto, &len) || proto != IPPROTO_TCP ||
	    tcp_info_of(s, &ti) || getsockname(s, (struct sockaddr *)&local, &llen))
		return 0;	/* not one: the per-fd dump says what it is */
	if (ti.tcpi_state == TCP_LISTEN)
		return netlock_prepare_listener(sink->migration_id, pid, (struct sockaddr *)&local);
	if (!tcp_state_carried(ti.tcpi_state) || getpeername(s, (struct sockaddr *)&peer, &plen))
		return 0;	/* refused by tcp_check */
	return netlock_prepare(sink->migration_id, pid, (struct sockaddr *)&local,
			       (struct sockaddr *)&peer);
}

/* @fn on (our copy of) every socket of tree @t, until one returns non-zero. */
static int tcp_walk_tree(const struct tree *t, struct sink *sink,
			 int (*fn)(struct sink *sink, pid_t pid, int s, void *arg), void *arg)
{
	char path[64];
	size_t i, k, nr;
	struct stat st;
	pid_t *fds = NULL;
	int s, ret = 0;

	for (i = 0; i < t->nr && !ret; i++) {
		snprintf(path, sizeof(path), "/proc/%d/fd", t->p[i].pid);
		nr = 0;
		ret = proc_read_dir_numbers(path, &fds, &nr);
		for (k = 0; k < nr && !ret; k++) {
			s = proc_take_fd(t->p[i].pid, fds[k]);
			if (s < 0)
				continue;	/* the per-fd dump says why */
			if (!fstat(s, &st) && S_ISSOCK(st.st_mode))
				ret = fn(sink, t->p[i].pid, s, arg);
			close(s);
		}
		free(fds);
		fds = NULL;
	}
	return ret;
}

int tcp_lock_tree(const struct tree *t, struct sink *sink)
{
	int ret;

	if (tcp_mode != TCP_MODE_CARRY || tcp_leave_running || !nft_available())
		return 0;
	ret = tcp_walk_tree(t, sink, tcp_prepare_lock, NULL);
	return ret ? ret : netlock_commit();
}

static int tcp_add_queued(struct sink *sink, pid_t pid, int s, void *arg)
{
	int domain = 0, proto = 0, inq = 0, outq = 0;
	socklen_t len = sizeof(int);
	struct tcp_info ti;

	(void)sink;
	(void)pid;
	if (!getsockopt(s, SOL_SOCKET, SO_DOMAIN, &domain, &len) &&
	    (domain == AF_INET || domain == AF_INET6) &&
	    !getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &proto, &len) && proto == IPPROTO_TCP &&
	    !tcp_info_of(s, &ti) && tcp_state_carried(ti.tcpi_state) &&
	    !ioctl(s, SIOCINQ, &inq) && !ioctl(s, SIOCOUTQ, &outq) && inq >= 0 && outq >= 0)
		*(uint64_t *)arg += (uint64_t)inq + outq;
	return 0;
}

uint64_t tcp_queued_bytes(const struct tree *t)
{
	uint64_t bytes = 0;

	if (tcp_mode == TCP_MODE_CARRY && !tcp_leave_running)
		tcp_walk_tree(t, NULL, tcp_add_queued, &bytes);
	return bytes;
}

void tcp_set_accept_wait(unsigned int ms)
{
	accept_wait_ms = ms;
}

bool tcp_drains_accept(void)
{
	return tcp_mode == TCP_MODE_CARRY && !tcp_leave_running && accept_wait_ms &&
	       nft_available();
}

/* Handshakes under way to local port @port (network byte order) in @pid's namespace. */
static unsigned int tcp_handshakes(pid_t pid, uint16_t port)
{
	static const char *const files[] = { "tcp", "tcp6" };
	unsigned int n = 0, lport, st;
	char path[64], line[512];
	size_t i;
	FILE *f;

	for (i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(path, sizeof(path), "/proc/%d/net/%s", pid, files[i]);
		f = fopen(path, "re");
		if (!f)
			continue;
		/* "sl: local:port remote:port st ...", in hex; the header does not match */
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, " %*u: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %x", &lport,
				   &st) == 2 && st == TCP_SYN_RECV && lport == ntohs(port))
				n++;
		fclose(f);
	}
	return n;
}

/*
 * Listener @s's connections the program has not taken yet: those in its
 * accept queue (on a listener, TCP_INFO's tcpi_unacked is the queue's
 * length) and, if @handshakes, the handshakes under way (SYN received,
 * SYN-ACK sent: request sockets, which /proc/PID/net/tcp lists as SYN_RECV
 * on the listener's port; another listener on the same port at another
 * address counts too: a wait too long, never a miss).
 */
static unsigned int tcp_pending(pid_t pid, int s, bool handshakes)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct tcp_info ti;
	unsigned int n = 0;

	if (!tcp_info_of(s, &ti) && ti.tcpi_state == TCP_LISTEN)
		n = ti.tcpi_unacked;
	if (handshakes && !getsockname(s, (struct sockaddr *)&ss, &len))
		n += tcp_handshakes(pid, ss.ss_family == AF_INET6 ?
					 ((struct sockaddr_in6 *)&ss)->sin6_port :
					 ((struct sockaddr_in *)&ss)->sin_port);
	return n;
}

/* The listeners of the tree, held while their accept queues drain. */
struct drain {
	struct { pid_t pid; int s; } *l;
	size_t nr, cap;
};

static int tcp_drain_add(struct sink *sink, pid_t pid, int s, void *arg)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);
	struct drain *dr = arg;
	struct tcp_info ti;
	int ret;

	if (tcp_info_of(s, &ti) || ti.tcpi_state != TCP_LISTEN ||
	    getsockname(s, (struct sockaddr *)&local, &len) ||
	    (local.ss_family != AF_INET && local.ss_family != AF_INET6))
		return 0;
	if (grow_array(&dr->l, &dr->cap, dr->nr, sizeof(*dr->l)))
		return -ENOMEM;
	ret = netlock_prepare_listener(sink->migration_id, pid, (struct sockaddr *)&local);
	if (ret)
		return ret;
	dr->l[dr->nr].s = dup(s);
	if (dr->l[dr->nr].s < 0)
		return -errno;
	dr->l[dr->nr++].pid = pid;
	return 0;
}

int tcp_drain_accept(const struct tree *t, struct sink *sink)
{
	uint64_t t0 = now_us(), deadline = t0 + accept_wait_ms * 1000ULL;
	struct drain dr = { 0 };
	unsigned int left = 0, first = 0;
	bool polled = false;
	size_t i;
	int ret;

	if (!tcp_drains_accept())
		return 0;
	ret = tcp_walk_tree(t, sink, tcp_drain_add, &dr);
	if (!ret && dr.nr)
		ret = netlock_commit();	/* from now on no new connection comes in */
	while (!ret && dr.nr) {
		for (i = 0, left = 0; i < dr.nr; i++)
			left += tcp_pending(dr.l[i].pid, dr.l[i].s, true);
		if (!polled)
			first = left;
		polled = true;
		if (!left || now_us() >= deadline)
			break;
		usleep(2000);
	}
	if (!ret && left)
		pr_warn("%u connection(s) still waiting to be accepted after %u ms (--accept-wait): "
			"the final dump refuses them", left, accept_wait_ms);
	else if (!ret && first)
		pr_info("%u connection(s) waiting to be accepted: the program took them in %.1f ms "
			"(new connections wait from now on)", first, (now_us() - t0) / 1e3);
	for (i = 0; i < dr.nr; i++)
		close(dr.l[i].s);
	free(dr.l);
	return ret;
}

int tcp_check_listener(struct fd_dump *d)
{
	bool drains = tcp_drains_accept();
	unsigned int n;
	int s;

	if (!d->sink && drains)
		return 0;	/* preflight: the final freeze waits for them first */
	s = proc_take_fd(d->pid, d->fd);
	if (s < 0)
		return s;
	/* locked at the final dump: no new handshake starts, one under way would be lost */
	n = tcp_pending(d->pid, s, d->sink && drains);
	close(s);
	if (!n)
		return 0;
	if (drains)
		pr_err("pid %d: fd %d is a listening TCP socket with %u connection(s) waiting in "
		       "its accept queue or being set up at the freeze, after waiting up to %u ms "
		       "for the program to accept them (--accept-wait): an accept queue cannot "
		       "travel", d->pid, d->fd, n, accept_wait_ms);
	else
		pr_err("pid %d: fd %d is a listening TCP socket with %u connection(s) waiting in "
		       "its accept queue: an accept queue cannot travel (with --accept-wait 0, "
		       "or without the network lock, ferry does not wait for it to drain)", d->pid, d->fd, n);
	return -EOPNOTSUPP;
}

void tcp_migration_end(enum tcp_end how)
{
	int off = TCP_REPAIR_OFF;
	char cmd[512];
	size_t i;

	/* a checkpoint without connections: no restore will look for the lock */
	if (how == TCP_END_CHECKPOINT && !nr_held)
		how = TCP_END_DONE;
	for (i = 0; i < nr_held; i++) {
		/* out of repair mode, it sends a window probe and runs on as before */
		if (how == TCP_END_ROLLBACK &&
		    setsockopt(held[i], IPPROTO_TCP, TCP_REPAIR, &off, sizeof(off)))
			pr_perror("a TCP connection of the source cannot leave repair mode");
		close(held[i]);		/* in repair mode (killed source): no FIN, no RST */
	}
	nr_held = 0;
	netlock_describe(cmd, sizeof(cmd));
	if (how == TCP_END_IN_DOUBT && *cmd)
		pr_err("the source's TCP connections stay locked and in repair mode: if the "
		       "destination does not run the process, they are lost; remove the lock "
		       "with: %s", cmd);
	else if (how == TCP_END_CHECKPOINT && *cmd)
		pr_info("the checkpointed TCP connections stay locked until `restore` brings "
			"them back (or: %s)", cmd);
	if (how == TCP_END_ROLLBACK || how == TCP_END_DONE)
		netlock_remove();
	else
		netlock_forget();
}

const struct fd_dump_ops tcp_dump_ops = {
	.type = FD_TYPE__FD_TCP,
	.name = "TCP connection",
	.match = tcp_match,
	.check = tcp_check,
	.dump = tcp_dump,
	.free = tcp_free,
};
