// SPDX-License-Identifier: MIT
/*
 * psclient: test client of the page server.
 *
 *   psclient send   --to HOST:PORT [TLS] [model] [--id ID] [--rounds N] [--final]
 *                   [--inband-zero] [--files] [--vanish|--kill] [--pause MS] [--id-file F]
 *   psclient verify --stack DIR/<id> [model]
 *   psclient hostile --to HOST:PORT [TLS] --mode garbage|truncate|huge|badtype|badbatch|lz4bomb
 *   psclient stall  --to HOST:PORT [TLS] [--pause MS]   (hello, then silence for MS, 60 s)
 *   psclient bench  --to HOST:PORT [TLS] --mb N --kind K
 *   psclient bench-raw --to HOST:PORT --mb N --kind K   (plain TCP, no framing)
 *   psclient raw-recv --listen PORT                     (discard what bench-raw sends)
 *
 * The model: pids 1000.., each with --pages pages in two regions. Round 1
 * sends every page, round r > 1 rewrites --dirty percent of them. A page's
 * content is a pure function of (seed, pid, page, round it was last
 * written), so `verify` can recompute what the top of a stack must hold.
 */
#include <errno.h>
#include <getopt.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "common/log.h"
#include "common/util.h"
#include "imgstack/view.h"
#include "transport/conn.h"
#include "transport/frame.h"
#include "transport/sink.h"

#define PG		4096u
#define RUN_MAX		512	/* pages per add_pages call (the sink splits to 256) */
#define REGION_GAP	0x40000000ull

enum kind { K_MIXED, K_RANDOM, K_TYPICAL };
enum cls { C_ZERO, C_TEXT, C_RANDOM };

struct model {
	uint64_t seed;
	unsigned int pids, pages, dirty;
	enum kind kind;
	bool files, inband_zero;
};

struct opts {
	struct model m;
	struct tls_opts tls;
	const char *to, *id, *stack, *mode, *id_file;
	unsigned int rounds, vanish, mb, pause_ms;
	bool final, kill_mid;
	int listen_port;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static uint64_t hash4(uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
	return mix(a ^ mix(b ^ mix(c ^ mix(d + 0x9e3779b97f4a7c15ull))));
}

static uint64_t page_vaddr(unsigned int k, unsigned int i, unsigned int n)
{
	uint64_t base = 0x10000000ull + (uint64_t)k * 0x100000000ull;

	return i < n / 2 ? base + (uint64_t)i * PG : base + REGION_GAP + (uint64_t)(i - n / 2) * PG;
}

static bool dirty(const struct model *m, unsigned int k, unsigned int i, uint32_t r)
{
	return r == 1 || hash4(m->seed, k, i, r) % 100 < m->dirty;
}

/* Round in which page i of pid k was last written, as of round r. */
static uint32_t version(const struct model *m, unsigned int k, unsigned int i, uint32_t r)
{
	for (; r > 1; r--)
		if (dirty(m, k, i, r))
			return r;
	return 1;
}

static enum cls page_class(const struct model *m, unsigned int k, unsigned int i, uint32_t v)
{
	uint64_t h = hash4(m->seed ^ 0xc1a55, k, i, v);

	switch (m->kind) {
	case K_RANDOM:
		return C_RANDOM;
	case K_TYPICAL:
		return h % 2 ? C_ZERO : C_TEXT;
	default:
		return h % 4 == 0 ? C_ZERO : h % 4 == 1 ? C_TEXT : C_RANDOM;
	}
}

static void fill_text(uint8_t *p, uint64_t s)
{
	static const char *const words[] = {
		"the ", "page ", "server ", "round ", "migrate ", "ferry ", "process ",
		"memory ", "dirty ", "restore ", "stack ", "image ", "=", "0x7f", "\n",
		"lorem ", "ipsum ", "dolor ", "{\"key\": ", "null, ", "42, ",
	};
	unsigned int off = 0, n;
	const char *w;

	while (off < PG) {
		s = mix(s + 1);
		w = words[s % (sizeof(words) / sizeof(words[0]))];
		n = strlen(w);
		if (n > PG - off)
			n = PG - off;
		memcpy(p + off, w, n);
		off += n;
	}
}

static void fill_page(const struct model *m, uint8_t *p, unsigned int k, unsigned int i,
		      uint32_t v)
{
	uint64_t s = hash4(m->seed, k + 1000, i, v), *q = (uint64_t *)p;
	unsigned int j;

	switch (page_class(m, k, i, v)) {
	case C_ZERO:
		memset(p, 0, PG);
		break;
	case C_TEXT:
		fill_text(p, s);
		break;
	case C_RANDOM:
		for (j = 0; j < PG / 8; j++) {
			s ^= s << 13;
			s ^= s >> 7;
			s ^= s << 17;
			q[j] = s | 1;
		}
	}
}

/* Per-round image files: a small core file per pid, a big one to exercise chunking. */
static size_t file_content(const struct model *m, uint32_t r, unsigned int which, uint8_t **out)
{
	size_t len = which ? 100 + (r * 37 + which) % 500 : (3u << 19) + r;
	uint8_t *p = malloc(len);
	size_t j;

	for (j = 0; p && j < len; j++)
		p[j] = hash4(m->seed, r, which, j / 8) >> (j % 8 * 8);
	*out = p;
	return p ? len : 0;
}

static void file_name(char *buf, size_t len, unsigned int which)
{
	if (which)
		snprintf(buf, len, "core-%u.img", 999 + which);
	else
		snprintf(buf, len, "ghost-1.img");
}

/* --- send --- */

struct run {
	uint8_t *buf;
	unsigned int n, pid;
	uint64_t vaddr;
	bool null;
};

static int run_flush(struct sink *s, struct run *run)
{
	int ret = 0;

	if (run->n)
		ret = s->ops->add_pages(s, run->pid, run->vaddr, run->n,
					run->null ? NULL : run->buf);
	run->n = 0;
	if (ret)
		fprintf(stderr, "psclient: add_pages: %s (%s)\n", strerror(-ret), s->error);
	return ret;
}

static int send_pid(struct sink *s, const struct opts *o, unsigned int k, uint32_t r,
		    struct run *run, unsigned int limit)
{
	const struct model *m = &o->m;
	unsigned int i;
	uint64_t va;
	bool null;
	int ret;

	run->pid = 1000 + k;
	for (i = 0; i < limit; i++) {
		if (!dirty(m, k, i, r))
			continue;
		va = page_vaddr(k, i, m->pages);
		null = !m->inband_zero && page_class(m, k, i, r) == C_ZERO;
		if (run->n && (run->vaddr + (uint64_t)run->n * PG != va || run->null != null ||
			       run->n == RUN_MAX)) {
			ret = run_flush(s, run);
			if (ret)
				return ret;
		}
		if (!run->n) {
			run->vaddr = va;
			run->null = null;
		}
		fill_page(m, run->buf + (size_t)run->n * PG, k, i, r);
		run->n++;
	}
	return run_flush(s, run);
}

static int send_files(struct sink *s, const struct opts *o, uint32_t r)
{
	unsigned int w;
	char name[64];
	uint8_t *data;
	size_t len;
	int ret;

	for (w = 0; w <= o->m.pids; w++) {
		len = file_content(&o->m, r, w, &data);
		if (!data)
			return -ENOMEM;
		file_name(name, sizeof(name), w);
		ret = s->ops->add_file(s, name, data, len);
		free(data);
		if (ret) {
			fprintf(stderr, "psclient: add_file %s: %s\n", name, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

/* Leave in the middle of a round: a clean close, or a crash mid-frame. */
static void vanish(struct sink *s, const struct opts *o)
{
	printf("vanished in round %u\n", s->next_round);
	fflush(stdout);
	if (o->kill_mid) {
		usleep(200000);	/* let the sender thread get part of the round out */
		raise(SIGKILL);
	}
	s->ops->close(s);
	exit(0);
}

static int send_round(struct sink *s, const struct opts *o, uint32_t r, bool final, bool cut)
{
	struct run run = { 0 };
	struct round_stats st;
	uint64_t t0 = now_us(), wire0 = s->stats.wire_bytes, us;
	unsigned int k;
	int ret;

	run.buf = malloc((size_t)RUN_MAX * PG);
	if (!run.buf)
		return -ENOMEM;
	ret = s->ops->round_begin(s, r, final);
	for (k = 0; !ret && k < o->m.pids; k++) {
		ret = send_pid(s, o, k, r, &run, cut && k == 0 ? o->m.pages / 2 : o->m.pages);
		if (!ret && cut)
			vanish(s, o);
	}
	if (!ret && o->m.files)
		ret = send_files(s, o, r);
	free(run.buf);
	if (ret)
		return ret;
	ret = s->ops->round_end(s, &st);
	if (ret) {
		fprintf(stderr, "psclient: round %u: %s\n", r, s->error);
		return ret;
	}
	us = now_us() - t0 + 1;
	printf("round %u: stored %llu zero %llu written %llu punched %llu wire %llu time_us %llu\n",
	       r, (unsigned long long)st.pages_present, (unsigned long long)st.pages_zero,
	       (unsigned long long)st.bytes_written, (unsigned long long)st.bytes_punched,
	       (unsigned long long)(s->stats.wire_bytes - wire0), (unsigned long long)us);
	return 0;
}

static int wait_restore(struct sink *s)
{
	struct restore_report rep;
	int ret = s->ops->wait_restore(s, &rep);

	if (!ret && rep.ok && rep.held)	/* nothing to hand over here: let it run */
		ret = s->ops->commit(s, &rep);
	if (ret) {
		fprintf(stderr, "psclient: no restore result: %s\n", s->error);
		return 1;
	}
	printf("restore ok=%d us=%llu error=%s\n", rep.ok, (unsigned long long)rep.restore_us,
	       rep.error);
	return rep.ok ? 0 : 4;
}

static int split_to(const char *to, char *host, char *port)
{
	if (!to || parse_host_port(to, host, 256, port, 16)) {
		fprintf(stderr, "psclient: --to HOST:PORT needed\n");
		return -EINVAL;
	}
	if (!*host)
		strcpy(host, "127.0.0.1");
	return 0;
}

static int cmd_send(struct opts *o)
{
	char host[256], port[16];
	struct sink *s;
	unsigned int j;
	int ret, rc = 0;

	if (split_to(o->to, host, port))
		return 2;
	ret = sink_remote_open(host, port, &o->tls, o->id, 1000, false, &s);
	if (ret) {
		fprintf(stderr, "psclient: cannot open session: %s\n", sink_open_error());
		return 1;
	}
	printf("id=%s next_round=%u\n", s->migration_id, s->next_round);
	fflush(stdout);
	if (o->id_file) {
		FILE *f = fopen(o->id_file, "w");

		if (f) {
			fprintf(f, "%s\n", s->migration_id);
			fclose(f);
		}
	}
	for (j = 0; j < o->rounds; j++) {
		bool last = j + 1 == o->rounds;

		ret = send_round(s, o, s->next_round, o->final && last, o->vanish && last);
		if (ret) {
			rc = 1;
			break;
		}
		if (!last && o->pause_ms)
			usleep(o->pause_ms * 1000);
	}
	if (!rc && o->final)
		rc = wait_restore(s);
	printf("wire_bytes=%llu raw_bytes=%llu\n", (unsigned long long)s->stats.wire_bytes,
	       (unsigned long long)s->stats.raw_bytes);
	s->ops->close(s);
	return rc;
}

/* --- verify --- */

static int find_top(const char *dir, uint32_t *top)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	char *end;
	unsigned long r;
	int ret = 0;

	if (!d) {
		fprintf(stderr, "psclient: %s: %s\n", dir, strerror(errno));
		return -errno;
	}
	*top = 0;
	while ((de = readdir(d))) {
		if (!strncmp(de->d_name, ".tmp", 4)) {
			fprintf(stderr, "psclient: %s/%s: a round was left half-written\n", dir,
				de->d_name);
			ret = -EEXIST;
		}
		r = strtoul(de->d_name, &end, 10);
		if (!*end && r > *top)
			*top = r;
	}
	closedir(d);
	return ret;
}

static int verify_page(struct stack_view *v, const struct model *m, unsigned int k,
		       unsigned int i, uint8_t *want, uint8_t *got)
{
	const struct pg_index *idx = stack_view_index(v, 1000 + k);
	uint64_t va = page_vaddr(k, i, m->pages);
	const struct pg_extent *e = idx ? pg_index_find(idx, va) : NULL;
	uint32_t ver = version(m, k, i, v->top_round);
	int fd;

	if (!e) {
		fprintf(stderr, "pid %u page %#llx: not in the stack\n", 1000 + k,
			(unsigned long long)va);
		return -ENOENT;
	}
	fill_page(m, want, k, i, ver);
	if (!e->round) {
		memset(got, 0, PG);
	} else {
		fd = stack_view_pages_fd(v, 1000 + k, e->round);
		if (fd < 0 || pread_full(fd, got, PG, e->file_off + (va - e->vaddr))) {
			fprintf(stderr, "pid %u page %#llx: cannot read round %u\n", 1000 + k,
				(unsigned long long)va, e->round);
			return -EIO;
		}
	}
	if (memcmp(want, got, PG)) {
		fprintf(stderr, "pid %u page %#llx: content differs (written in round %u, "
			"stored in round %u)\n", 1000 + k, (unsigned long long)va, ver, e->round);
		return -EBADMSG;
	}
	return 0;
}

static int verify_files(const struct opts *o, const char *top_dir, uint32_t r)
{
	char name[64], path[4200];
	unsigned int w;
	uint8_t *want, *got;
	size_t len;
	int fd, ret = 0;

	for (w = 0; !ret && w <= o->m.pids; w++) {
		len = file_content(&o->m, r, w, &want);
		got = malloc(len + 1);
		file_name(name, sizeof(name), w);
		snprintf(path, sizeof(path), "%s/%s", top_dir, name);
		fd = open(path, O_RDONLY);
		if (!want || !got || fd < 0 || read_full(fd, got, len) ||
		    read(fd, got + len, 1) != 0 || memcmp(want, got, len)) {
			fprintf(stderr, "psclient: %s missing or wrong\n", path);
			ret = -EBADMSG;
		}
		if (fd >= 0)
			close(fd);
		free(want);
		free(got);
	}
	return ret;
}

static int cmd_verify(struct opts *o)
{
	struct stack_view v;
	char top_dir[4096];
	uint8_t want[PG], got[PG];
	unsigned int k, i, bad = 0;
	uint32_t top = 0;
	int ret;

	if (!o->stack || find_top(o->stack, &top) || !top) {
		fprintf(stderr, "psclient: no complete round in %s\n", o->stack ? o->stack : "?");
		return 1;
	}
	snprintf(top_dir, sizeof(top_dir), "%s/%u", o->stack, top);
	ret = stack_view_open(top_dir, &v);
	if (ret) {
		fprintf(stderr, "psclient: cannot open %s: %s\n", top_dir, strerror(-ret));
		return 1;
	}
	for (k = 0; k < o->m.pids; k++)
		for (i = 0; i < o->m.pages && bad < 10; i++)
			bad += !!verify_page(&v, &o->m, k, i, want, got);
	if (!bad && o->m.files && verify_files(o, top_dir, top))
		bad++;
	stack_view_close(&v);
	if (bad) {
		fprintf(stderr, "psclient: verify of %s FAILED\n", top_dir);
		return 1;
	}
	printf("verify ok: top round %u, %u pids x %u pages\n", top, o->m.pids, o->m.pages);
	return 0;
}

/* --- hostile peers --- */

static int put_msg(struct conn *c, uint32_t type, const ProtobufCMessage *msg)
{
	uint8_t buf[FRAME_HDR + FRAME_CTL_MAX];
	ssize_t n = frame_put_msg(buf, sizeof(buf), type, msg);

	return n < 0 ? n : conn_write(c, buf, n);
}

/* Hello and its reply: 0 with the next round, or -errno. */
static int hello(struct conn *c, const struct opts *o, uint32_t *next_round)
{
	uint8_t buf[FRAME_HDR + FRAME_CTL_MAX];
	Hello h = HELLO__INIT;
	HelloReply *hr;
	struct frame f;
	int ret;

	h.version = WIRE_VERSION;
	h.migration_id = (char *)o->id;
	h.root_pid = 1000;
	ret = put_msg(c, FRAME_HELLO, &h.base);
	if (!ret)
		ret = conn_read_frame(c, buf, sizeof(buf), &f);
	if (ret)
		return ret;
	hr = frame_unpack_msg(&f, &hello_reply__descriptor, NULL);
	if (!hr || !hr->ok) {
		fprintf(stderr, "psclient: hello refused%s%s\n", hr && hr->error ? ": " : "",
			hr && hr->error ? hr->error : "");
		if (hr)
			hello_reply__free_unpacked(hr, NULL);
		return -ECONNREFUSED;
	}
	*next_round = hr->next_round;
	printf("id=%s next_round=%u\n", hr->migration_id, hr->next_round);
	fflush(stdout);
	hello_reply__free_unpacked(hr, NULL);
	return 0;
}

/* Handshake, hello, round_begin: then the mode's bad bytes. */
static int hostile_prelude(struct conn *c, const struct opts *o)
{
	RoundBegin rb = ROUND_BEGIN__INIT;
	int ret = hello(c, o, &rb.round);

	return ret ? ret : put_msg(c, FRAME_ROUND_BEGIN, &rb.base);
}

/* A source that says hello and then nothing at all (not even pings). */
static int cmd_stall(struct opts *o)
{
	char host[256], port[16];
	uint32_t next;
	struct conn c;
	int ret;

	if (split_to(o->to, host, port)) {
		fprintf(stderr, "psclient: stall needs --to\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (conn_open(&c, host, port, &o->tls)) {
		fprintf(stderr, "psclient: %s\n", c.error);
		return 1;
	}
	ret = hello(&c, o, &next);
	if (!ret)
		usleep((o->pause_ms ? o->pause_ms : 60000) * 1000ull);
	conn_close(&c);
	return ret ? 1 : 0;
}

static int hostile_bytes(const char *mode, uint8_t *buf, size_t cap, size_t *len)
{
	uint8_t page[PG];
	ssize_t n;
	size_t i;

	memset(page, 0x5a, sizeof(page));
	if (!strcmp(mode, "garbage")) {
		for (i = 0; i < cap; i++)
			buf[i] = mix(i) >> 7;
		*len = cap;
	} else if (!strcmp(mode, "truncate")) {
		n = frame_put_pages(buf, cap, 1000, 0x10000000, 1, page);
		*len = n / 2;
	} else if (!strcmp(mode, "huge")) {
		frame_put_header(buf, FRAME_PAGES, 0xfffffff0u);
		*len = FRAME_HDR;
	} else if (!strcmp(mode, "badtype")) {
		frame_put_header(buf, 77, 4);
		*len = FRAME_HDR + 4;
	} else if (!strcmp(mode, "badbatch")) {
		n = frame_put_pages(buf, cap, 1000, 0x10000000, 1, NULL);
		put_le32(buf + FRAME_HDR + 12, 100000);	/* nr_pages out of bounds */
		*len = n;
	} else if (!strcmp(mode, "lz4bomb")) {
		memset(page, 0, sizeof(page));
		page[0] = 1;
		n = frame_put_pages(buf, cap, 1000, 0x10000000, 1, page);
		buf[FRAME_HDR + PB_HDR] ^= 0xff;	/* corrupt the lz4 stream */
		*len = n;
	} else {
		return -EINVAL;
	}
	return 0;
}

static int cmd_hostile(struct opts *o)
{
	char host[256], port[16];
	uint8_t buf[FRAME_HDR + PB_HDR + PG], rd[64];
	struct conn c;
	size_t len;
	int ret;

	if (split_to(o->to, host, port) || !o->mode ||
	    hostile_bytes(o->mode, buf, sizeof(buf), &len)) {
		fprintf(stderr, "psclient: hostile needs --to and a known --mode\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (conn_open(&c, host, port, &o->tls)) {
		fprintf(stderr, "psclient: %s\n", c.error);
		return 1;
	}
	ret = hostile_prelude(&c, o);
	if (!ret)
		ret = conn_write(&c, buf, len);
	if (!ret && strcmp(o->mode, "truncate")) {
		/* The server must hang up on us: a read sees EOF or a reset, not data. */
		ret = conn_read(&c, rd, sizeof(rd));
		printf("server %s\n", ret ? "hung up" : "kept talking");
		ret = ret ? 0 : -EPROTO;
	}
	conn_close(&c);
	return ret ? 1 : 0;
}

/* --- bench --- */

static uint8_t *bench_pool(const struct model *m, size_t pages)
{
	uint8_t *p = malloc(pages * PG);
	size_t i;

	for (i = 0; p && i < pages; i++)
		fill_page(m, p + i * PG, 0, i, 1);
	return p;
}

#define POOL_PAGES 4096		/* 16 MiB of content, sent over and over */

static int cmd_bench(struct opts *o)
{
	char host[256], port[16];
	uint64_t total = (uint64_t)o->mb << 8, i, t0, us;
	uint8_t *pool = bench_pool(&o->m, POOL_PAGES);
	struct round_stats st;
	struct sink *s;
	int ret;

	if (!pool || split_to(o->to, host, port))
		return 2;
	ret = sink_remote_open(host, port, &o->tls, NULL, 1000, false, &s);
	if (ret) {
		fprintf(stderr, "psclient: %s\n", sink_open_error());
		return 1;
	}
	t0 = now_us();
	ret = s->ops->round_begin(s, s->next_round, false);
	for (i = 0; !ret && i < total; i += RUN_MAX)
		ret = s->ops->add_pages(s, 1000, 0x10000000 + i * PG, RUN_MAX,
					pool + (i % POOL_PAGES) * PG);
	if (!ret)
		ret = s->ops->round_end(s, &st);
	us = now_us() - t0 + 1;
	if (ret)
		fprintf(stderr, "psclient: bench: %s\n", s->error);
	else
		printf("%.1f MiB/s (%u MiB in %.3f s, wire %.1f%% of raw)\n",
		       o->mb / (us / 1e6), o->mb, us / 1e6,
		       100.0 * s->stats.wire_bytes / ((double)total * PG));
	s->ops->close(s);
	free(pool);
	return ret ? 1 : 0;
}

static int cmd_bench_raw(struct opts *o)
{
	char host[256], port[16];
	uint64_t total = (uint64_t)o->mb << 8, i, t0, us;
	uint8_t *pool = bench_pool(&o->m, POOL_PAGES);
	struct tls_opts plain = { .insecure = true };
	struct conn c;
	int ret = 0;
	char ack;

	if (!pool || split_to(o->to, host, port))
		return 2;
	if (conn_open(&c, host, port, &plain)) {
		fprintf(stderr, "psclient: %s\n", c.error);
		return 1;
	}
	t0 = now_us();
	for (i = 0; !ret && i < total; i += RUN_MAX)
		ret = conn_write(&c, pool + (i % POOL_PAGES) * PG, RUN_MAX * PG);
	shutdown(c.fd, SHUT_WR);
	if (!ret)
		ret = conn_read(&c, &ack, 1);	/* receiver has read it all */
	us = now_us() - t0 + 1;
	if (!ret)
		printf("%.1f MiB/s (%u MiB in %.3f s, raw TCP)\n", o->mb / (us / 1e6), o->mb,
		       us / 1e6);
	conn_close(&c);
	free(pool);
	return ret ? 1 : 0;
}

static int cmd_raw_recv(struct opts *o)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(o->listen_port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	static char buf[1 << 20];
	int lfd, fd, one = 1;
	ssize_t n;

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 1)) {
		perror("psclient: raw-recv");
		return 1;
	}
	fd = accept(lfd, NULL, NULL);
	while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
		;
	if (fd >= 0 && write(fd, "k", 1) != 1)
		perror("psclient: raw-recv ack");
	close(fd);
	close(lfd);
	return 0;
}

/* --- options --- */

enum {
	O_TO = 256, O_ID, O_ROUNDS, O_FINAL, O_SEED, O_PIDS, O_PAGES, O_DIRTY, O_KIND,
	O_FILES, O_INBAND, O_VANISH, O_KILL, O_STACK, O_MODE, O_MB, O_LISTEN, O_IDFILE,
	O_CA, O_CERT, O_KEY, O_INSECURE, O_PAUSE,
};

static const struct option long_opts[] = {
	{ "to", 1, NULL, O_TO }, { "id", 1, NULL, O_ID }, { "rounds", 1, NULL, O_ROUNDS },
	{ "final", 0, NULL, O_FINAL }, { "seed", 1, NULL, O_SEED }, { "pids", 1, NULL, O_PIDS },
	{ "pages", 1, NULL, O_PAGES }, { "dirty", 1, NULL, O_DIRTY }, { "kind", 1, NULL, O_KIND },
	{ "files", 0, NULL, O_FILES }, { "inband-zero", 0, NULL, O_INBAND },
	{ "vanish", 0, NULL, O_VANISH }, { "kill", 0, NULL, O_KILL },
	{ "stack", 1, NULL, O_STACK }, { "mode", 1, NULL, O_MODE }, { "mb", 1, NULL, O_MB },
	{ "listen", 1, NULL, O_LISTEN }, { "id-file", 1, NULL, O_IDFILE },
	{ "tls-ca", 1, NULL, O_CA }, { "tls-cert", 1, NULL, O_CERT }, { "tls-key", 1, NULL, O_KEY },
	{ "insecure", 0, NULL, O_INSECURE }, { "verbose", 0, NULL, 'v' },
	{ "pause", 1, NULL, O_PAUSE },
	{ NULL, 0, NULL, 0 },
};

static int parse_kind(const char *s, enum kind *k)
{
	if (!strcmp(s, "mixed"))
		*k = K_MIXED;
	else if (!strcmp(s, "random"))
		*k = K_RANDOM;
	else if (!strcmp(s, "typical"))
		*k = K_TYPICAL;
	else
		return -EINVAL;
	return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o, int *verbose)
{
	int c;

	while ((c = getopt_long(argc, argv, "v", long_opts, NULL)) != -1) {
		switch (c) {
		case O_TO: o->to = optarg; break;
		case O_ID: o->id = optarg; break;
		case O_ROUNDS: o->rounds = atoi(optarg); break;
		case O_FINAL: o->final = true; break;
		case O_SEED: o->m.seed = strtoull(optarg, NULL, 0); break;
		case O_PIDS: o->m.pids = atoi(optarg); break;
		case O_PAGES: o->m.pages = atoi(optarg); break;
		case O_DIRTY: o->m.dirty = atoi(optarg); break;
		case O_KIND:
			if (parse_kind(optarg, &o->m.kind))
				return -EINVAL;
			break;
		case O_FILES: o->m.files = true; break;
		case O_INBAND: o->m.inband_zero = true; break;
		case O_VANISH: o->vanish = 1; break;
		case O_KILL: o->vanish = 1; o->kill_mid = true; break;
		case O_STACK: o->stack = optarg; break;
		case O_MODE: o->mode = optarg; break;
		case O_MB: o->mb = atoi(optarg); break;
		case O_LISTEN: o->listen_port = atoi(optarg); break;
		case O_IDFILE: o->id_file = optarg; break;
		case O_CA: o->tls.ca = optarg; break;
		case O_CERT: o->tls.cert = optarg; break;
		case O_KEY: o->tls.key = optarg; break;
		case O_INSECURE: o->tls.insecure = true; break;
		case O_PAUSE: o->pause_ms = atoi(optarg); break;
		case 'v': (*verbose)++; break;
		default: return -EINVAL;
		}
	}
	return optind == argc ? 0 : -EINVAL;
}

static const struct {
	const char *name;
	int (*run)(struct opts *o);
} cmds[] = {
	{ "send", cmd_send },
	{ "verify", cmd_verify },
	{ "hostile", cmd_hostile },
	{ "stall", cmd_stall },
	{ "bench", cmd_bench },
	{ "bench-raw", cmd_bench_raw },
	{ "raw-recv", cmd_raw_recv },
};

int main(int argc, char **argv)
{
	struct opts o = { .m = { .seed = 1, .pids = 2, .pages = 1024, .dirty = 25 },
			  .rounds = 1, .mb = 256 };
	const char *cmd = argc > 1 ? argv[1] : "";
	int verbose = 0;
	size_t i;

	if (parse_opts(argc - 1, argv + 1, &o, &verbose) || !o.m.pids || !o.m.pages) {
		fprintf(stderr, "usage: psclient send|verify|hostile|stall|bench|bench-raw|raw-recv "
			"[options] (see the comment at the top of tests/tools/psclient.c)\n");
		return 2;
	}
	log_init("psclient", verbose, NULL);
	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		if (!strcmp(cmd, cmds[i].name))
			return cmds[i].run(&o);
	}
	fprintf(stderr, "psclient: unknown command '%s'\n", cmd);
	return 2;
}
