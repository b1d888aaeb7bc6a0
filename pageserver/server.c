// SPDX-License-Identifier: MIT
/*
 * Page server, the server layer: listening, accepting a connection as
 * pending (before hello: at most MAX_PENDING, MAX_PENDING_PER_ADDR per
 * address, the oldest dropped to make room), a session slot at hello (at
 * most MAX_SESSIONS, a stalled one evicted when full), the deadlines of a
 * session (its timer ticks), and its lifetime (references, dropping,
 * freeing, waking a session that waits for the same migration id).
 */
#include <errno.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pageserver/session.h"

/* --- lifetime --- */

void session_get(struct session *s)
{
	s->refs++;
}

/* A session waiting for this one's migration id may open it now. */
static void wake_waiter(struct session *gone)
{
	struct session *s;

	if (!gone->id[0])
		return;
	for (s = gone->srv->sessions; s; s = s->next) {
		if (s->wait_id && !s->closing && !strcmp(s->id, gone->id)) {
			s->wait_id = false;
			session_open_stack(s);
			return;
		}
	}
}

static void session_free(struct session *s)
{
	struct server *srv = s->srv;
	unsigned int i;

	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	srv->nr_sessions--;
	wake_waiter(s);
	if (srv->once)
		srv->exit_code = s->failed || !(s->completed || s->rounds_done) ? 1 : 0;
	if (srv->once || srv->stopping)
		server_stop(srv, "--once: the session is over");
	if (s->ssl)
		SSL_free(s->ssl);	/* frees both BIOs */
	else if (s->rbio)
		BIO_free(s->rbio);
	if (s->fbuf) {
		srv->file_bytes -= s->fsize;
		free(s->fbuf);
	}
	for (i = 0; i < s->nr_free; i++)
		free(s->pool[i]);
	free(s->rx);
	free(s->scratch);
	free(s);
}

void session_put(struct session *s)
{
	if (--s->refs == 0)
		session_free(s);
}

static void on_handle_closed(uv_handle_t *h)
{
	session_put(h->data);
}

/*
 * End the session's connection. Work in flight finishes; then the stack
 * is closed (an open round aborted) by a teardown item.
 */
void session_drop(struct session *s, bool failed, const char *why)
{
	struct ps_work *w;

	if (s->closing)
		return;
	s->closing = true;
	s->failed |= failed;
	if (s->pending)
		s->srv->nr_pending--;
	if (s->active)
		s->srv->nr_active--;
	s->pending = s->active = false;
	if (failed)
		sess_err(s, "dropped: %s", why);
	else
		sess_info(s, "closed: %s", why);
	uv_read_stop((uv_stream_t *)&s->tcp);
	s->reading = false;
	uv_timer_stop(&s->timer);
	uv_close((uv_handle_t *)&s->timer, on_handle_closed);
	uv_close((uv_handle_t *)&s->tcp, on_handle_closed);
	session_restore_abort(s);
	session_queue_discard(s);
	w = work_new(W_TEARDOWN);
	if (w)
		session_queue(s, w);
	else
		sess_err(s, "out of memory: stack of %s left open", s->id);
}

int sess_proto(struct session *s, const char *fmt, const char *arg)
{
	char why[256];

	snprintf(why, sizeof(why), fmt, arg);
	session_drop(s, true, why);
	return -EPROTO;
}

/* --- accept --- */

/* The peer's IP address into buf; its port. */
static int peer_addr(uv_tcp_t *tcp, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	int n = sizeof(ss);

	snprintf(buf, len, "?");
	if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &n))
		return 0;
	if (ss.ss_family == AF_INET6) {
		uv_ip6_name((struct sockaddr_in6 *)&ss, buf, len);
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	uv_ip4_name((struct sockaddr_in *)&ss, buf, len);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void peer_name(uv_tcp_t *tcp, char *buf, size_t len)
{
	char host[64];
	int port = peer_addr(tcp, host, sizeof(host));

	snprintf(buf, len, "%s:%d", host, port);
}

static int session_tls_init(struct session *s)
{
	if (!s->srv->ssl_ctx) {
		s->rbio = BIO_new(BIO_s_mem());
		if (!s->rbio || session_pending_rx(s))
			return -ENOMEM;
		s->state = S_HELLO;
		return 0;
	}
	s->ssl = SSL_new(s->srv->ssl_ctx);
	s->rbio = BIO_new(BIO_s_mem());
	s->wbio = BIO_new(BIO_s_mem());
	if (!s->ssl || !s->rbio || !s->wbio) {
		BIO_free(s->rbio);
		BIO_free(s->wbio);
		s->rbio = s->wbio = NULL;
		return -ENOMEM;
	}
	SSL_set_bio(s->ssl, s->rbio, s->wbio);
	SSL_set_accept_state(s->ssl);
	s->state = S_HANDSHAKE;
	return 0;
}

/* --- deadlines --- */

/*
 * Every TICK_MS: a pending connection has HANDSHAKE_TIMEOUT_MS to say
 * hello; a session we wait on has IDLE_TIMEOUT_MS between frames; while
 * we work (or the disk holds reading back) the source waits on us: no
 * deadline, and a ping every PING_INTERVAL_MS keeps its read deadline off.
 */
static void on_tick(uv_timer_t *t)
{
	struct session *s = t->data;
	uint64_t now = uv_now(s->srv->loop);
	char why[120];

	if (s->closing)
		return;
	if (s->pending) {
		if (now - s->t_conn < HANDSHAKE_TIMEOUT_MS)
			return;
		snprintf(why, sizeof(why), "no hello within %u s of connecting (handshake "
			 "timeout)", HANDSHAKE_TIMEOUT_MS / 1000);
		session_drop(s, true, why);
		return;
	}
	if (session_working(s)) {
		s->last_rx = now;
		if ((s->state == S_RESTORING || s->state == S_HELD) && s->restore_t0 &&
		    now - s->restore_t0 >= s->srv->restore_timeout_s * 1000ULL) {
			s->restore_t0 = 0;
			session_restore_expire(s);
			return;
		}
		if (now - s->last_tx >= PING_INTERVAL_MS && session_send_ping(s))
			session_drop(s, true, "cannot send ping");
		return;
	}
	if (!s->reading) {
		s->last_rx = now;	/* the disk is behind: not the source's fault */
		return;
	}
	if (now - s->last_rx < IDLE_TIMEOUT_MS)
		return;
	snprintf(why, sizeof(why), "idle: no frame from the source for %u s",
		 IDLE_TIMEOUT_MS / 1000);
	session_drop(s, s->state == S_DONE ? false : s->state != S_IDLE || !s->rounds_done,
		     why);
}

/* A session we wait on that has sent nothing for STALL_MS, the most silent. */
static struct session *stalled_session(struct server *srv, uint64_t now)
{
	struct session *s, *worst = NULL;

	for (s = srv->sessions; s; s = s->next) {
		if (!s->active || s->closing || session_working(s))
			continue;
		if (now - s->last_rx > STALL_MS && (!worst || s->last_rx < worst->last_rx))
			worst = s;
	}
	return worst;
}

int session_take_slot(struct session *s, char *why, size_t len)
{
	struct server *srv = s->srv;
	uint64_t now = uv_now(srv->loop);
	struct session *victim;
	char msg[160];

	if (srv->nr_active >= MAX_SESSIONS) {
		victim = stalled_session(srv, now);
		if (!victim) {
			snprintf(why, len, "busy: %u sessions active", MAX_SESSIONS);
			return -EBUSY;
		}
		snprintf(msg, sizeof(msg), "evicted: silent for %llu s with all %u sessions "
			 "active, for session %lu", (unsigned long long)(now - victim->last_rx) / 1000,
			 MAX_SESSIONS, s->sid);
		session_drop(victim, true, msg);
	}
	if (session_pool_init(s)) {
		snprintf(why, len, "page server out of memory");
		return -ENOMEM;
	}
	s->pending = false;
	srv->nr_pending--;
	s->active = true;
	srv->nr_active++;
	s->last_rx = now;
	return 0;
}

/* --- accept --- */

static void on_refused_closed(uv_handle_t *h)
{
	free(h);
}

static void refuse_conn(struct server *srv, const char *why)
{
	uv_tcp_t *tcp = malloc(sizeof(*tcp));
	char peer[80];

	if (!tcp)
		return;
	uv_tcp_init(srv->loop, tcp);
	if (!uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)tcp)) {
		peer_name(tcp, peer, sizeof(peer));
		pr_warn("refusing connection from %s: %s", peer, why);
	}
	uv_close((uv_handle_t *)tcp, on_refused_closed);
}

static unsigned int pending_from(struct server *srv, const char *addr)
{
	struct session *s;
	unsigned int n = 0;

	for (s = srv->sessions; s; s = s->next)
		n += s->pending && !strcmp(s->addr, addr);
	return n;
}

/* All pending places are taken: the oldest goes (a renewed flood cannot lock out). */
static void drop_oldest_pending(struct server *srv)
{
	struct session *s, *old = NULL;
	char why[120];

	for (s = srv->sessions; s; s = s->next)
		if (s->pending && (!old || s->t_conn < old->t_conn ||
				   (s->t_conn == old->t_conn && s->sid < old->sid)))
			old = s;
	if (!old)
		return;
	snprintf(why, sizeof(why), "oldest of %u pending connections, dropped to make room",
		 MAX_PENDING);
	session_drop(old, true, why);
}

static void session_link(struct server *srv, struct session *s)
{
	s->srv = srv;
	s->sid = ++srv->next_sid;
	s->next = srv->sessions;
	if (s->next)
		s->next->prev = s;
	srv->sessions = s;
	srv->nr_sessions++;
}

static void on_connection(uv_stream_t *listener, int status)
{
	struct server *srv = listener->data;
	struct session *s;
	char why[160];

	if (status < 0) {
		pr_err("accept: %s", uv_strerror(status));
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		refuse_conn(srv, "out of memory");
		return;
	}
	session_link(srv, s);
	uv_tcp_init(srv->loop, &s->tcp);
	uv_timer_init(srv->loop, &s->timer);
	s->tcp.data = s->timer.data = s;
	s->refs = 2;	/* tcp + timer */
	s->t_conn = s->last_rx = s->last_tx = uv_now(srv->loop);
	if (uv_accept(listener, (uv_stream_t *)&s->tcp)) {
		session_drop(s, true, "accept failed");
		return;
	}
	peer_name(&s->tcp, s->peer, sizeof(s->peer));
	peer_addr(&s->tcp, s->addr, sizeof(s->addr));
	if (pending_from(srv, s->addr) >= MAX_PENDING_PER_ADDR) {
		snprintf(why, sizeof(why), "refused: %u connections from %s already wait for "
			 "their hello", MAX_PENDING_PER_ADDR, s->addr);
		session_drop(s, true, why);
		return;
	}
	if (srv->nr_pending >= MAX_PENDING)
		drop_oldest_pending(srv);
	s->pending = true;
	srv->nr_pending++;
	sess_info(s, "connected");
	uv_tcp_nodelay(&s->tcp, 1);
	uv_tcp_keepalive(&s->tcp, 1, 10);
	if (session_tls_init(s)) {
		session_drop(s, true, "out of memory");
		return;
	}
	uv_timer_start(&s->timer, on_tick, TICK_MS, TICK_MS);
	/* --once serves exactly one session: stop listening now. */
	if (srv->once && srv->listening) {
		srv->listening = false;
		uv_close((uv_handle_t *)&srv->listener, NULL);
	}
	session_update_reading(s);
}

static int bind_addr(const char *host, const char *port, struct sockaddr_storage *ss)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *res;
	int ret;

	ret = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (ret) {
		pr_err("cannot resolve %s: %s", host, gai_strerror(ret));
		return -EINVAL;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

int server_listen(struct server *srv, const char *host, const char *port)
{
	struct sockaddr_storage ss;
	int ret;

	if (!*host)
		host = "0.0.0.0";
	ret = bind_addr(host, port, &ss);
	if (ret)
		return ret;
	uv_tcp_init(srv->loop, &srv->listener);
	srv->listener.data = srv;
	srv->listening = true;
	ret = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0);
	if (!ret)
		ret = uv_listen((uv_stream_t *)&srv->listener, 16, on_connection);
	if (ret) {
		pr_err("cannot listen on %s:%s: %s", host, port, uv_strerror(ret));
		return ret;
	}
	pr_info("listening on %s:%s (%s), images in %s", host, port,
		srv->ssl_ctx ? "TLS 1.3, client certificates required" : "INSECURE plain TCP",
		srv->images_dir);
	return 0;
}

/* Stop listening, end every session, let the loop run dry. */
void server_stop(struct server *srv, const char *why)
{
	struct session *s;

	if (!srv->stopping)
		pr_info("stopping: %s", why);
	srv->stopping = true;
	if (srv->listening) {
		srv->listening = false;
		uv_close((uv_handle_t *)&srv->listener, NULL);
	}
	for (s = srv->sessions; s; s = s->next)
		session_drop(s, s->state != S_IDLE && s->state != S_DONE, why);
	if (!srv->nr_sessions) {
		if (!uv_is_closing((uv_handle_t *)&srv->sig_int))
			uv_close((uv_handle_t *)&srv->sig_int, NULL);
		if (!uv_is_closing((uv_handle_t *)&srv->sig_term))
			uv_close((uv_handle_t *)&srv->sig_term, NULL);
	}
}
