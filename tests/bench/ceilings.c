// SPDX-License-Identifier: MIT
/*
 * ceilings: what this machine can do at best for each stage of a migration's
 * round 1 (read target memory, compress, encrypt, send), so the benchmark of
 * ferry itself can be compared with the slowest of them.
 *
 * Each figure is the best of --runs runs (3) over --size MiB (1024), in MiB/s
 * of payload (uncompressed bytes). Memory is pre-faulted before any timing:
 * touching fresh memory in this VM is several times slower than warm memory
 * (docs/kernel-notes.md, trap 10), and that is not what these lines measure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <lz4.h>
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/log.h"

#define MIB		(1024UL * 1024UL)
#define MAX_RUNS	16
#define READ_CHUNK	(4 * MIB)	/* process_vm_readv destination buffer */
#define NET_CHUNK	MIB		/* send()/recv() size */
#define AES_CHUNK	MIB		/* one GCM message */
#define LZ4_POOL_MAX	(64 * MIB)	/* sample data, cycled through */
#define PAGE		4096UL

struct opts {
	unsigned long size_mib;
	unsigned int runs;
	unsigned long lz4_block;
	bool json;
	const char *only;
	const char *disk_dir;
};

static struct opts opt = {
	.size_mib = 1024,
	.runs = 3,
	.lz4_block = 64 * 1024,
};

struct result {
	const char *name;
	double runs[MAX_RUNS];
	unsigned int nruns;
	unsigned long size_mib;
	char detail[160];
};

static int failures;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double best(const struct result *r)
{
	double b = 0;
	unsigned int i;

	for (i = 0; i < r->nruns; i++)
		if (r->runs[i] > b)
			b = r->runs[i];
	return b;
}

static void report(const struct result *r)
{
	unsigned int i;

	if (!opt.json) {
		printf("%-26s %9.0f MiB/s   best of %u, %lu MiB, %s\n", r->name, best(r),
		       r->nruns, r->size_mib, r->detail);
	} else {
		printf("{\"bench\":\"ceilings\",\"name\":\"%s\",\"mib_s\":%.1f,"
		       "\"size_mib\":%lu,\"runs\":[", r->name, best(r), r->size_mib);
		for (i = 0; i < r->nruns; i++)
			printf("%s%.1f", i ? "," : "", r->runs[i]);
		printf("],\"detail\":\"%s\"}\n", r->detail);
	}
	fflush(stdout);
}

static void add_run(struct result *r, size_t bytes, double secs)
{
	if (secs <= 0)
		secs = 1e-9;
	r->runs[r->nruns++] = bytes / (double)MIB / secs;
}

/* Anonymous memory, every page written once so no timing sees a fault. */
static void *alloc_warm(size_t len, int fill)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		pr_perror("mmap %zu bytes", len);
		return NULL;
	}
	memset(p, fill, len);
	return p;
}

/* splitmix64: fast deterministic sample data. */
static uint64_t rng_state = 0x243f6a8885a308d3ULL;

static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void fill_random(uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i + 8 <= len; i += 8) {
		uint64_t v = rng();

		memcpy(p + i, &v, 8);
	}
	for (; i < len; i++)
		p[i] = rng();
}

/* Text-like: words from a small vocabulary, numbers, punctuation, newlines. */
static void fill_text(uint8_t *p, size_t len)
{
	static const char *const words[] = {
		"the", "process", "memory", "page", "round", "dirty", "server", "error",
		"connection", "value", "name", "id", "user", "request", "time", "data",
		"file", "state", "count", "buffer", "true", "false", "null", "status",
		"size", "offset", "config", "return", "function", "static", "int", "char",
	};
	size_t i = 0;

	while (i < len) {
		uint64_t r = rng();
		char tmp[32];
		int n;

		if ((r & 7) == 0)
			n = snprintf(tmp, sizeof(tmp), "%u", (unsigned int)(r >> 40) % 100000);
		else
			n = snprintf(tmp, sizeof(tmp), "%s",
				     words[(r >> 8) % (sizeof(words) / sizeof(words[0]))]);
		tmp[n++] = (r >> 32) % 11 == 0 ? '\n' : ((r >> 36) % 7 == 0 ? ',' : ' ');
		if ((size_t)n > len - i)
			n = len - i;
		memcpy(p + i, tmp, n);
		i += n;
	}
}

/* Typical process memory, crudely: half zero pages, half text-like pages. */
static void fill_typical(uint8_t *p, size_t len)
{
	size_t off;

	for (off = 0; off < len; off += PAGE) {
		size_t n = len - off < PAGE ? len - off : PAGE;

		if (rng() & 1)
			memset(p + off, 0, n);
		else
			fill_text(p + off, n);
	}
}

/* --- memory read: process_vm_readv from a child holding a warm buffer ---- */

static void bench_memread(void)
{
	struct result r = { .name = "memread_process_vm_readv", .size_mib = opt.size_mib };
	size_t len = opt.size_mib * MIB;
	int ready[2], hold[2];
	uint8_t *remote, *local;
	unsigned int run;
	char c;
	pid_t pid;

	if (pipe(ready) || pipe(hold)) {
		pr_perror("pipe");
		failures++;
		return;
	}
	/* The child's buffer address is the same in the parent (fork). */
	remote = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (remote == MAP_FAILED) {
		pr_perror("mmap %zu bytes", len);
		failures++;
		return;
	}
	pid = fork();
	if (pid < 0) {
		pr_perror("fork");
		failures++;
		return;
	}
	if (pid == 0) {
		close(ready[0]);
		close(hold[1]);
		memset(remote, 0x5a, len);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		/* Hold the memory until the parent closes its end. */
		while (read(hold[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	munmap(remote, len);	/* the parent never needs its own copy */

	local = alloc_warm(READ_CHUNK, 1);
	if (!local || read(ready[0], &c, 1) != 1) {
		pr_err("memread: the child did not get ready");
		failures++;
		goto out;
	}

	for (run = 0; run < opt.runs; run++) {
		double t0 = now_s();
		size_t off;

		for (off = 0; off < len; off += READ_CHUNK) {
			size_t n = len - off < READ_CHUNK ? len - off : READ_CHUNK;
			struct iovec l = { .iov_base = local, .iov_len = n };
			struct iovec rv = { .iov_base = remote + off, .iov_len = n };
			ssize_t got = process_vm_readv(pid, &l, 1, &rv, 1, 0);

			if (got != (ssize_t)n) {
				pr_perror("process_vm_readv at offset %zu returned %zd", off, got);
				failures++;
				goto out;
			}
		}
		add_run(&r, len, now_s() - t0);
	}
	if (local[0] != 0x5a || local[READ_CHUNK - 1] != 0x5a) {
		pr_err("memread: read back the wrong data");
		failures++;
		goto out;
	}
	snprintf(r.detail, sizeof(r.detail),
		 "child's warm buffer, %lu MiB reads into a warm buffer", READ_CHUNK / MIB);
	report(&r);
out:
	close(hold[1]);
	close(ready[0]);
	waitpid(pid, NULL, 0);
	if (local)
		munmap(local, READ_CHUNK);
}

/* --- loopback TCP ---------------------------------------------------------- */

struct tcp_sender {
	struct sockaddr_in addr;
	size_t len;
	uint8_t *buf;
	int err;
};

static void *tcp_send_thread(void *arg)
{
	struct tcp_sender *s = arg;
	size_t sent = 0;
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&s->addr, sizeof(s->addr))) {
		s->err = errno;
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	while (sent < s->len) {
		size_t n = s->len - sent < NET_CHUNK ? s->len - sent : NET_CHUNK;
		ssize_t w = send(fd, s->buf, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			s->err = errno;
			break;
		}
		sent += w;
	}
	close(fd);
	return NULL;
}

static void bench_tcp(void)
{
	struct result r = { .name = "tcp_loopback", .size_mib = opt.size_mib };
	struct tcp_sender s = { .len = opt.size_mib * MIB };
	socklen_t alen = sizeof(s.addr);
	uint8_t *rbuf = NULL;
	unsigned int run;
	int lfd, one = 1;

	s.addr.sin_family = AF_INET;
	s.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&s.addr, sizeof(s.addr)) || listen(lfd, 4) ||
	    getsockname(lfd, (struct sockaddr *)&s.addr, &alen)) {
		pr_perror("tcp: listen on 127.0.0.1");
		failures++;
		goto out;
	}
	s.buf = alloc_warm(NET_CHUNK, 0);
	rbuf = alloc_warm(NET_CHUNK, 0);
	if (!s.buf || !rbuf) {
		failures++;
		goto out;
	}
	fill_random(s.buf, NET_CHUNK);

	for (run = 0; run < opt.runs; run++) {
		size_t got = 0;
		pthread_t th;
		double t0;
		int cfd;

		s.err = 0;
		t0 = now_s();
		if (pthread_create(&th, NULL, tcp_send_thread, &s)) {
			pr_err("tcp: cannot start the sender thread");
			failures++;
			goto out;
		}
		cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0) {
			pr_perror("tcp: accept");
			failures++;
			pthread_join(th, NULL);
			goto out;
		}
		while (got < s.len) {
			ssize_t n = recv(cfd, rbuf, NET_CHUNK, 0);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += n;
		}
		add_run(&r, got, now_s() - t0);
		close(cfd);
		pthread_join(th, NULL);
		if (s.err || got != s.len) {
			errno = s.err;
			pr_perror("tcp: received %zu of %zu bytes", got, s.len);
			failures++;
			goto out;
		}
	}
	snprintf(r.detail, sizeof(r.detail),
		 "127.0.0.1, 1 connection, sender and receiver threads, %lu MiB send/recv",
		 NET_CHUNK / MIB);
	report(&r);
out:
	if (lfd >= 0)
		close(lfd);
	if (s.buf)
		munmap(s.buf, NET_CHUNK);
	if (rbuf)
		munmap(rbuf, NET_CHUNK);
}

/* --- AES-256-GCM ------------------------------------------------------------ */

static void bench_aes(void)
{
	struct result r = { .name = "aes_256_gcm_encrypt", .size_mib = opt.size_mib };
	unsigned char key[32], iv[12], tag[16];
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t *in = NULL, *out = NULL;
	size_t len = opt.size_mib * MIB;
	unsigned int run;

	in = alloc_warm(AES_CHUNK, 0);
	out = alloc_warm(AES_CHUNK + 16, 0);
	ctx = EVP_CIPHER_CTX_new();
	if (!in || !out || !ctx || RAND_bytes(key, sizeof(key)) != 1 ||
	    RAND_bytes(iv, sizeof(iv)) != 1 ||
	    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, iv) != 1) {
		pr_err("aes: cannot set up AES-256-GCM");
		failures++;
		goto out;
	}
	fill_random(in, AES_CHUNK);

	for (run = 0; run < opt.runs; run++) {
		double t0 = now_s();
		size_t off;

		for (off = 0; off < len; off += AES_CHUNK) {
			int n, fin;

			/* A fresh nonce per message, as a record layer would. */
			memcpy(iv, &off, sizeof(off));
			iv[11] = run;
			if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) != 1 ||
			    EVP_EncryptUpdate(ctx, out, &n, in, AES_CHUNK) != 1 ||
			    EVP_EncryptFinal_ex(ctx, out + n, &fin) != 1 ||
			    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, sizeof(tag), tag) != 1) {
				pr_err("aes: encryption failed");
				failures++;
				goto out;
			}
		}
		add_run(&r, len, now_s() - t0);
	}
	snprintf(r.detail, sizeof(r.detail), "OpenSSL EVP, 1 thread, %lu MiB messages",
		 AES_CHUNK / MIB);
	report(&r);
out:
	EVP_CIPHER_CTX_free(ctx);
	if (in)
		munmap(in, AES_CHUNK);
	if (out)
		munmap(out, AES_CHUNK + 16);
}

/* --- lz4 ------------------------------------------------------------------- */

struct lz4_sample {
	uint8_t *data;		/* pool of sample data */
	size_t pool;		/* its size, a multiple of the block size */
	uint8_t *comp;		/* every block compressed, one slot of bound bytes each */
	int *csize;
	size_t nblocks;
	int bound;
};

static bool lz4_prepare(struct lz4_sample *s, bool typical)
{
	size_t blk = opt.lz4_block, i;

	s->pool = opt.size_mib * MIB < LZ4_POOL_MAX ? opt.size_mib * MIB : LZ4_POOL_MAX;
	s->pool -= s->pool % blk;
	if (!s->pool)
		s->pool = blk;
	s->nblocks = s->pool / blk;
	s->bound = LZ4_compressBound(blk);
	s->data = alloc_warm(s->pool, 0);
	s->comp = alloc_warm(s->nblocks * s->bound, 0);
	s->csize = calloc(s->nblocks, sizeof(*s->csize));
	if (!s->data || !s->comp || !s->csize)
		return false;
	if (typical)
		fill_typical(s->data, s->pool);
	else
		fill_random(s->data, s->pool);
	for (i = 0; i < s->nblocks; i++) {
		s->csize[i] = LZ4_compress_default((char *)s->data + i * blk,
						   (char *)s->comp + i * s->bound, blk, s->bound);
		if (s->csize[i] <= 0)
			return false;
	}
	return true;
}

static void lz4_release(struct lz4_sample *s)
{
	if (s->data)
		munmap(s->data, s->pool);
	if (s->comp)
		munmap(s->comp, s->nblocks * s->bound);
	free(s->csize);
	memset(s, 0, sizeof(*s));
}

static double lz4_ratio(const struct lz4_sample *s)
{
	size_t total = 0, i;

	for (i = 0; i < s->nblocks; i++)
		total += s->csize[i];
	return total / (double)s->pool;
}

/* One lz4 call on block I of S, output in DST: false if it failed. */
typedef bool (*lz4_block_fn)(struct lz4_sample *s, size_t i, char *dst);

static bool lz4_compress_block(struct lz4_sample *s, size_t i, char *dst)
{
	return LZ4_compress_default((char *)s->data + i * opt.lz4_block, dst, opt.lz4_block,
				    s->bound) > 0;
}

static bool lz4_decompress_block(struct lz4_sample *s, size_t i, char *dst)
{
	return LZ4_decompress_safe((char *)s->comp + i * s->bound, dst, s->csize[i],
				   opt.lz4_block) == (int)opt.lz4_block;
}

/*
 * opt.runs timed runs into R, each calling FN on the sample's blocks in turn
 * until opt.size_mib MiB went through. False (counted in failures, logged
 * as "lz4: WHAT failed") if a call fails.
 */
static bool lz4_time(struct lz4_sample *s, lz4_block_fn fn, char *dst, struct result *r,
		     const char *what)
{
	size_t len = opt.size_mib * MIB, blk = opt.lz4_block;
	unsigned int run;

	for (run = 0; run < opt.runs; run++) {
		double t0 = now_s();
		size_t done = 0, i = 0;

		while (done < len) {
			if (!fn(s, i, dst)) {
				pr_err("lz4: %s failed", what);
				failures++;
				return false;
			}
			done += blk;
			if (++i == s->nblocks)
				i = 0;
		}
		add_run(r, done, now_s() - t0);
	}
	return true;
}

static void bench_lz4_compress(struct lz4_sample *s, const char *name, const char *what)
{
	struct result r = { .name = name, .size_mib = opt.size_mib };
	size_t blk = opt.lz4_block;
	char *dst = alloc_warm(s->bound, 0);

	if (!dst) {
		failures++;
		return;
	}
	if (lz4_time(s, lz4_compress_block, dst, &r, "compression")) {
		snprintf(r.detail, sizeof(r.detail), "%s, %lu KiB blocks, ratio %.2f, 1 thread",
			 what, blk / 1024, lz4_ratio(s));
		report(&r);
	}
	munmap(dst, s->bound);
}

static void bench_lz4_decompress(struct lz4_sample *s, const char *name, const char *what)
{
	struct result r = { .name = name, .size_mib = opt.size_mib };
	size_t blk = opt.lz4_block;
	char *dst = alloc_warm(blk, 0);

	if (!dst) {
		failures++;
		return;
	}
	if (!lz4_decompress_block(s, 0, dst) || memcmp(dst, s->data, blk)) {
		pr_err("lz4: a block does not decompress to its data");
		failures++;
	} else if (lz4_time(s, lz4_decompress_block, dst, &r, "decompression")) {
		snprintf(r.detail, sizeof(r.detail),
			 "%s, %lu KiB blocks, MiB/s of output, 1 thread", what, blk / 1024);
		report(&r);
	}
	munmap(dst, blk);
}

static void bench_lz4(bool do_comp, bool do_decomp)
{
	struct lz4_sample s = { 0 };

	if (do_comp) {
		if (!lz4_prepare(&s, false)) {
			pr_err("lz4: cannot prepare incompressible sample data");
			failures++;
		} else {
			bench_lz4_compress(&s, "lz4_compress_random",
					   "incompressible (random) data");
		}
		lz4_release(&s);
	}
	if (!lz4_prepare(&s, true)) {
		pr_err("lz4: cannot prepare typical sample data");
		failures++;
		lz4_release(&s);
		return;
	}
	if (do_comp)
		bench_lz4_compress(&s, "lz4_compress_typical",
				   "typical: half zero pages, half text-like pages");
	if (do_decomp)
		bench_lz4_decompress(&s, "lz4_decompress_typical",
				     "typical: half zero pages, half text-like pages");
	lz4_release(&s);
}

/* --- disk (only with --disk DIR) ------------------------------------------- */

static void bench_disk(void)
{
	struct result r = { .name = "disk_write_fdatasync", .size_mib = opt.size_mib };
	size_t len = opt.size_mib * MIB;
	char path[4096];
	uint8_t *buf;
	unsigned int run;
	int fd = -1;

	snprintf(path, sizeof(path), "%s/ferry-ceilings.%d.tmp", opt.disk_dir, (int)getpid());
	buf = alloc_warm(MIB, 0);
	if (!buf) {
		failures++;
		return;
	}
	fill_random(buf, MIB);
	for (run = 0; run < opt.runs; run++) {
		double t0;
		size_t off;

		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0) {
			pr_perror("disk: open %s", path);
			failures++;
			goto out;
		}
		t0 = now_s();
		for (off = 0; off < len; off += MIB) {
			if (write(fd, buf, MIB) != (ssize_t)MIB) {
				pr_perror("disk: write %s", path);
				failures++;
				goto out;
			}
		}
		if (fdatasync(fd)) {
			pr_perror("disk: fdatasync %s", path);
			failures++;
			goto out;
		}
		add_run(&r, len, now_s() - t0);
		close(fd);
		fd = -1;
		unlink(path);
	}
	snprintf(r.detail, sizeof(r.detail), "%s, 1 MiB writes, then fdatasync", opt.disk_dir);
	report(&r);
out:
	if (fd >= 0)
		close(fd);
	unlink(path);
	munmap(buf, MIB);
}

/* --- main ------------------------------------------------------------------ */

static void print_env(void)
{
	double load[3] = { 0 };
	struct utsname u;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	uname(&u);
	if (getloadavg(load, 3) < 0)
		load[0] = load[1] = load[2] = -1;
	if (!opt.json)
		printf("# ceilings: %ld CPUs, load %.2f %.2f %.2f, kernel %s, %s, lz4 %s, "
		       "size %lu MiB, best of %u\n", cpus, load[0], load[1], load[2],
		       u.release, OpenSSL_version(OPENSSL_VERSION), LZ4_versionString(),
		       opt.size_mib, opt.runs);
	else
		printf("{\"bench\":\"ceilings\",\"name\":\"env\",\"cpus\":%ld,"
		       "\"load\":[%.2f,%.2f,%.2f],\"kernel\":\"%s\",\"openssl\":\"%s\","
		       "\"lz4\":\"%s\",\"size_mib\":%lu,\"runs\":%u}\n", cpus, load[0],
		       load[1], load[2], u.release, OpenSSL_version(OPENSSL_VERSION),
		       LZ4_versionString(), opt.size_mib, opt.runs);
	fflush(stdout);
}

static bool wanted(const char *name)
{
	const char *p = opt.only;
	size_t n = strlen(name);

	if (!p)
		return true;
	while (*p) {
		size_t len = strcspn(p, ",");

		if (len == n && !strncmp(p, name, n))
			return true;
		p += len;
		if (*p == ',')
			p++;
	}
	return false;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ceilings [--size MIB] [--runs N] [--json] [--only LIST] [--disk DIR]\n"
		"Measures this machine's ceilings for each stage of a migration, in MiB/s.\n"
		"  --size MIB       bytes per run (default 1024)\n"
		"  --runs N         runs per figure, the best is printed (default 3)\n"
		"  --lz4-block KIB  lz4 block size (default 64)\n"
		"  --json           one JSON object per line\n"
		"  --only LIST      comma-separated subset of: memread,tcp,aes,lz4c,lz4d,disk\n"
		"  --disk DIR       also measure writing to DIR (write + fdatasync)\n");
}

static unsigned long parse_num(const char *name, const char *s, unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || !v || v > max) {
		fprintf(stderr, "ceilings: --%s must be a number in 1..%lu\n", name, max);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "size",      required_argument, NULL, 's' },
		{ "runs",      required_argument, NULL, 'r' },
		{ "lz4-block", required_argument, NULL, 'b' },
		{ "json",      no_argument,       NULL, 'j' },
		{ "only",      required_argument, NULL, 'o' },
		{ "disk",      required_argument, NULL, 'd' },
		{ "help",      no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	log_init("ceilings", 0, NULL);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 's': opt.size_mib = parse_num("size", optarg, 1UL << 20); break;
		case 'r': opt.runs = parse_num("runs", optarg, MAX_RUNS); break;
		case 'b': opt.lz4_block = parse_num("lz4-block", optarg, 64 * 1024) * 1024; break;
		case 'j': opt.json = true; break;
		case 'o': opt.only = optarg; break;
		case 'd': opt.disk_dir = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "ceilings: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);

	print_env();
	if (wanted("memread"))
		bench_memread();
	if (wanted("tcp"))
		bench_tcp();
	if (wanted("aes"))
		bench_aes();
	if (wanted("lz4c") || wanted("lz4d"))
		bench_lz4(wanted("lz4c"), wanted("lz4d"));
	if (opt.disk_dir && wanted("disk"))
		bench_disk();
	if (failures) {
		fprintf(stderr, "ceilings: %d measurement(s) failed\n", failures);
		return 1;
	}
	return 0;
}
