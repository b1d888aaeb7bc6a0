// SPDX-License-Identifier: MIT
/*
 * memwork: a test workload that is migrated and must prove afterwards that it
 * is still the same process with the same memory, files and signal state.
 *
 * The heap is a set of anonymous pages. Page i at generation g holds i, g and
 * a pattern derived from (i, g); a generation table kept in ordinary memory
 * says what every page must hold. Each tick rewrites the next N pages of the
 * heap (rotating) and bumps their generation; every K ticks the whole heap is
 * checked against the table. Progress goes to --out, opened once without
 * O_APPEND and written with write(2), so a lost file offset shows up as a
 * broken step sequence (and as an offset mismatch caught by the self-check).
 *
 * Output lines (see docs/testing.md):
 *	heap 0xADDR pages N pagesize P
 *	ready
 *	step S pid P gen G ok		S = 1, 2, 3, ... without gap or repeat
 *	usr1 COUNT			after SIGUSR1 (COUNT = signals so far)
 *	remap ok ADDR			--remap-on-usr1: after SIGUSR1 the heap moved to
 *					ADDR (mremap) and checked out there
 *	fork check ok			--fork-on-usr1: a child forked after SIGUSR1
 *					checked the whole heap it inherited
 *	usr2 COUNT altstack ok		after SIGUSR2 (handler ran on the sigaltstack)
 *	done				after --ticks N ticks
 *	gap US after step S at W	--gap-ms T: US µs passed between the end of
 *					tick S and the next, more than T ms
 *					(CLOCK_REALTIME: a stop, a migration),
 *					ending at W (µs since the epoch)
 *	FAIL reason			then exit 3
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE	2
#define EXIT_CHECK	3

/* A signal kept blocked for the whole run: the mask must survive migration. */
#define HELD_SIGNAL	SIGPWR

#define ALTSTACK_SIZE	(64 * 1024)

struct opts {
	unsigned long mem_mib;
	unsigned long dirty;
	bool scatter;		/* rewrite random pages, not the next ones */
	unsigned long hot;	/* also rewrite pages 0..hot-1 every tick */
	unsigned long gap_ms;	/* report tick gaps over this (0: never) */
	unsigned long discard;
	bool fork_on_usr1;	/* after SIGUSR1, a forked child checks the heap */
	bool remap_on_usr1;	/* after SIGUSR1, the heap moves (mremap) */
	const char *pause_file;
	unsigned long tick_ms;
	unsigned long check_every;
	unsigned long print_ms;
	unsigned long ticks;
	const char *out;
	const char *pidfile;
};

static struct opts opt = {
	.mem_mib = 64,
	.dirty = 16,
	.tick_ms = 5,
	.check_every = 100,
};

static int out_fd = -1;
static off_t out_off;		/* bytes we wrote: must equal the fd's offset */
static pid_t start_pid;

static uint64_t *heap;
static size_t page_size, page_words, npages;
static uint32_t *gens;		/* generation of every page */
static uint8_t *dropped;	/* page given back with MADV_DONTNEED: reads as zero */
static size_t drop_cursor;	/* next page to drop, half a heap ahead of cursor */
static int paused;
static uint64_t total_gen;	/* sum of gens[] */
static size_t cursor;		/* next page to rewrite */

static uint8_t *altstack;
static volatile sig_atomic_t usr1_count;
static volatile sig_atomic_t usr2_count, usr2_bad;
static sig_atomic_t usr1_seen, usr2_seen;

static void out_write(const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(out_fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* Nowhere left to report it: the exit status says it. */
			exit(EXIT_CHECK);
		}
		buf += n;
		len -= n;
		out_off += n;
	}
}

static void __attribute__((format(printf, 1, 2))) out_printf(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	if ((size_t)len >= sizeof(buf))
		len = sizeof(buf) - 1;
	out_write(buf, len);
}

static void __attribute__((noreturn, format(printf, 1, 2))) fail(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int len;

	len = snprintf(buf, sizeof(buf), "FAIL ");
	va_start(ap, fmt);
	len += vsnprintf(buf + len, sizeof(buf) - len - 1, fmt, ap);
	va_end(ap);
	if ((size_t)len > sizeof(buf) - 2)
		len = sizeof(buf) - 2;
	buf[len++] = '\n';
	if (out_fd >= 0)
		out_write(buf, len);
	fprintf(stderr, "memwork: %.*s", len, buf);
	exit(EXIT_CHECK);
}

/* splitmix64 finaliser: a good 64-bit mix of a 64-bit value. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

static uint64_t page_seed(size_t idx, uint32_t gen)
{
	return mix64(((uint64_t)idx << 32 | gen) ^ 0x6d656d776f726b00ULL);
}

#define STEP_MUL	UINT64_C(0x9e3779b97f4a7c15)

/* Word 0: index, word 1: generation, then seed + w * STEP_MUL. Never zero. */
static void page_fill(size_t idx, uint32_t gen)
{
	uint64_t *p = heap + idx * page_words;
	uint64_t v = page_seed(idx, gen);
	size_t w;

	p[0] = idx;
	p[1] = gen;
	for (w = 2; w < page_words; w++)
		p[w] = v + w * STEP_MUL;
}

static void page_check(size_t idx)
{
	const uint64_t *p = heap + idx * page_words;
	uint32_t gen = gens[idx];
	uint64_t v = page_seed(idx, gen);
	size_t w;

	if (dropped[idx]) {
		for (w = 0; w < page_words; w++)
			if (p[w])
				fail("dropped page %zu at %p: word %zu is 0x%016" PRIx64
				     ", expected zero", idx, (void *)p, w, p[w]);
		return;
	}
	if (p[0] != idx || p[1] != gen)
		fail("page %zu at %p: header index %" PRIu64 " gen %" PRIu64
		     ", expected gen %" PRIu32, idx, (void *)p, p[0], p[1], gen);
	for (w = 2; w < page_words; w++) {
		if (p[w] != v + w * STEP_MUL)
			fail("page %zu at %p gen %" PRIu32 ": word %zu is 0x%016" PRIx64
			     ", expected 0x%016" PRIx64, idx, (void *)p, gen, w, p[w],
			     v + w * STEP_MUL);
	}
}

static void on_usr1(int sig)
{
	(void)sig;
	usr1_count++;
}

static void on_usr2(int sig, siginfo_t *si, void *uc)
{
	uint8_t here;

	(void)uc;
	if (sig != SIGUSR2 || !si || si->si_signo != SIGUSR2 ||
	    (uintptr_t)&here < (uintptr_t)altstack ||
	    (uintptr_t)&here >= (uintptr_t)altstack + ALTSTACK_SIZE)
		usr2_bad = 1;
	usr2_count++;
}

static void setup_signals(void)
{
	struct sigaction sa;
	stack_t ss;
	sigset_t set;

	altstack = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (altstack == MAP_FAILED) {
		perror("memwork: mmap altstack");
		exit(1);
	}
	ss.ss_sp = altstack;
	ss.ss_size = ALTSTACK_SIZE;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL)) {
		perror("memwork: sigaltstack");
		exit(1);
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL)) {
		perror("memwork: sigaction SIGUSR1");
		exit(1);
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_usr2;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGUSR1);
	if (sigaction(SIGUSR2, &sa, NULL)) {
		perror("memwork: sigaction SIGUSR2");
		exit(1);
	}

	sigemptyset(&set);
	sigaddset(&set, HELD_SIGNAL);
	if (sigprocmask(SIG_BLOCK, &set, NULL)) {
		perror("memwork: sigprocmask");
		exit(1);
	}
}

/* The signal state the process set up must still be in place. */
static void check_signals(void)
{
	struct sigaction sa;
	sigset_t set;
	stack_t ss;

	if (sigaction(SIGUSR1, NULL, &sa) || sa.sa_handler != on_usr1 ||
	    !(sa.sa_flags & SA_RESTART))
		fail("SIGUSR1 action lost (handler %p flags 0x%x)",
		     (void *)sa.sa_handler, sa.sa_flags);
	if (sigaction(SIGUSR2, NULL, &sa) || sa.sa_sigaction != on_usr2 ||
	    (sa.sa_flags & (SA_SIGINFO | SA_ONSTACK)) != (SA_SIGINFO | SA_ONSTACK) ||
	    !sigismember(&sa.sa_mask, SIGUSR1))
		fail("SIGUSR2 action lost (handler %p flags 0x%x)",
		     (void *)sa.sa_sigaction, sa.sa_flags);
	if (sigaltstack(NULL, &ss) || ss.ss_sp != altstack ||
	    ss.ss_size != ALTSTACK_SIZE || (ss.ss_flags & SS_DISABLE))
		fail("sigaltstack lost (sp %p size %zu flags 0x%x)",
		     ss.ss_sp, ss.ss_size, ss.ss_flags);
	if (sigprocmask(SIG_BLOCK, NULL, &set) || !sigismember(&set, HELD_SIGNAL))
		fail("signal mask lost (signal %d no longer blocked)", HELD_SIGNAL);
}

static void check_state(void)
{
	off_t off;

	if (getpid() != start_pid)
		fail("pid changed from %d to %d", (int)start_pid, (int)getpid());
	off = lseek(out_fd, 0, SEEK_CUR);
	if (off != out_off)
		fail("out file offset is %lld, expected %lld",
		     (long long)off, (long long)out_off);
	check_signals();
}

static void check_heap(void)
{
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < npages; i++) {
		page_check(i);
		sum += gens[i];
	}
	if (sum != total_gen)
		fail("generation table sums to %" PRIu64 ", expected %" PRIu64,
		     sum, total_gen);
}

/* The heap moves to a new address (mremap onto a placeholder), then is checked there. */
static void heap_move(void)
{
	size_t len = npages * page_size;
	void *to = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), *got;

	if (to == MAP_FAILED)
		fail("mmap a place for the heap: %s", strerror(errno));
	got = mremap(heap, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (got != to)
		fail("mremap the heap: %s", strerror(errno));
	heap = to;
	check_heap();
	out_printf("remap ok %p\n", to);
}

/*
 * A child gets a copy of the heap (after a migration, perhaps while its
 * pages are still being filled): it checks every page and says nothing
 * unless one is wrong (its FAIL line, exit 3).
 */
static void fork_check(void)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		fail("fork: %s", strerror(errno));
	if (!pid) {
		check_heap();
		_exit(0);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		fail("the forked child's heap check failed (status 0x%x)", st);
	out_printf("fork check ok\n");
}

/* xorshift64: the pages a hash table or an allocator would touch. */
static uint64_t scatter_next(void)
{
	static uint64_t x = 0x9e3779b97f4a7c15ULL;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

static void tick(void)
{
	size_t i;

	for (i = 0; i < opt.dirty; i++) {
		size_t idx = opt.scatter ? scatter_next() % npages : cursor;

		/* Check the page before rewriting it: cheap and immediate. */
		page_check(idx);
		gens[idx]++;
		total_gen++;
		dropped[idx] = 0;
		page_fill(idx, gens[idx]);
		if (++cursor == npages)
			cursor = 0;
	}
	/* A hot writer: the same small set, every tick. */
	for (i = 0; i < opt.hot; i++) {
		page_check(i);
		gens[i]++;
		total_gen++;
		dropped[i] = 0;
		page_fill(i, gens[i]);
	}
	/* Pages given back to the kernel must come back as zero pages. */
	for (i = 0; i < opt.discard; i++) {
		size_t idx = drop_cursor;

		page_check(idx);
		if (madvise(heap + idx * page_words, page_size, MADV_DONTNEED))
			fail("madvise(MADV_DONTNEED): %s", strerror(errno));
		dropped[idx] = 1;
		if (++drop_cursor == npages)
			drop_cursor = 0;
	}
}

static void write_pidfile(void)
{
	char tmp[4096], buf[32];
	int fd, len;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp%d", opt.pidfile,
			     (int)start_pid) >= sizeof(tmp)) {
		fprintf(stderr, "memwork: pidfile path too long\n");
		exit(1);
	}
	len = snprintf(buf, sizeof(buf), "%d\n", (int)start_pid);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, buf, len) != len || close(fd) ||
	    rename(tmp, opt.pidfile)) {
		perror("memwork: pidfile");
		exit(1);
	}
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Wall clock: the same across hosts, where CLOCK_MONOTONIC is not. */
static uint64_t real_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
}

/* Relative sleep: EINTR (a handler ran, or a restart was lost) is fine. */
static void sleep_ms(unsigned long ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (long)(ms % 1000) * 1000000L,
	};
	int err;

	err = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
	if (err && err != EINTR)
		fail("clock_nanosleep returned error %d (%s)", err, strerror(err));
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: memwork --out FILE [options]\n"
		"  --mem MIB          heap size (default 64)\n"
		"  --dirty N          pages rewritten per tick (default 16)\n"
		"  --scatter          rewrite random pages (a hash table), not the next ones\n"
		"  --hot N            also rewrite the first N pages every tick (a hot writer)\n"
		"  --gap-ms T         print \"gap US after step S at W\" when more than T ms pass\n"
		"                     between two ticks' ends (the downtime seen from inside;\n"
		"                     W: its end, wall clock µs)\n"
		"  --discard N        pages dropped per tick with MADV_DONTNEED (default 0)\n"
		"  --remap-on-usr1    after SIGUSR1, move the heap elsewhere with mremap and\n"
		"                     check it there (\"remap ok ADDR\"), after --fork-on-usr1\n"
		"  --fork-on-usr1     after SIGUSR1, fork a child that checks the whole heap it\n"
		"                     inherited (\"fork check ok\", or FAIL)\n"
		"  --pause-file F     while F exists, touch no memory (\"paused\" line)\n"
		"  --tick-ms T        sleep between ticks (default 5)\n"
		"  --check-every K    verify the whole heap every K ticks (default 100, 0: never)\n"
		"  --print-ms M       write a step line at most every M ms (default 0: every tick)\n"
		"  --ticks N          exit 0 after N ticks (default: run until killed)\n"
		"  --pidfile FILE     write the pid here once the heap is populated\n"
		"  --out FILE         progress file (opened once, no O_APPEND)\n"
		"Exit: 0 done, 1 setup error, 2 usage, 3 self-check failed (FAIL line in --out).\n");
}

static unsigned long parse_num(const char *name, const char *s)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-') {
		fprintf(stderr, "memwork: bad number for --%s: '%s'\n", name, s);
		exit(EXIT_USAGE);
	}
	return v;
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "mem",         required_argument, NULL, 'm' },
		{ "dirty",       required_argument, NULL, 'd' },
		{ "scatter",     no_argument,       NULL, 'S' },
		{ "hot",         required_argument, NULL, 'H' },
		{ "gap-ms",      required_argument, NULL, 'G' },
		{ "discard",     required_argument, NULL, 'D' },
		{ "fork-on-usr1", no_argument,      NULL, 'F' },
		{ "remap-on-usr1", no_argument,     NULL, 'R' },
		{ "pause-file",  required_argument, NULL, 'Q' },
		{ "tick-ms",     required_argument, NULL, 't' },
		{ "check-every", required_argument, NULL, 'k' },
		{ "print-ms",    required_argument, NULL, 'P' },
		{ "ticks",       required_argument, NULL, 'n' },
		{ "out",         required_argument, NULL, 'o' },
		{ "pidfile",     required_argument, NULL, 'p' },
		{ "help",        no_argument,       NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': opt.mem_mib = parse_num("mem", optarg); break;
		case 'd': opt.dirty = parse_num("dirty", optarg); break;
		case 'S': opt.scatter = true; break;
		case 'H': opt.hot = parse_num("hot", optarg); break;
		case 'G': opt.gap_ms = parse_num("gap-ms", optarg); break;
		case 'D': opt.discard = parse_num("discard", optarg); break;
		case 'F': opt.fork_on_usr1 = true; break;
		case 'R': opt.remap_on_usr1 = true; break;
		case 'Q': opt.pause_file = optarg; break;
		case 't': opt.tick_ms = parse_num("tick-ms", optarg); break;
		case 'k': opt.check_every = parse_num("check-every", optarg); break;
		case 'P': opt.print_ms = parse_num("print-ms", optarg); break;
		case 'n': opt.ticks = parse_num("ticks", optarg); break;
		case 'o': opt.out = optarg; break;
		case 'p': opt.pidfile = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(EXIT_USAGE);
		}
	}
	if (optind != argc || !opt.out) {
		fprintf(stderr, "memwork: %s\n", optind != argc ?
			"unexpected argument" : "--out FILE is required");
		usage(stderr);
		exit(EXIT_USAGE);
	}
	if (!opt.mem_mib || opt.mem_mib > (1UL << 20)) {
		fprintf(stderr, "memwork: --mem must be 1..1048576 MiB\n");
		exit(EXIT_USAGE);
	}
}

int main(int argc, char **argv)
{
	uint64_t step = 0, last_print = 0, ticks = 0, last_tick = 0;
	size_t heap_bytes, i;

	parse_args(argc, argv);
	start_pid = getpid();

	out_fd = open(opt.out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out_fd < 0) {
		fprintf(stderr, "memwork: cannot open %s: %m\n", opt.out);
		return 1;
	}

	page_size = sysconf(_SC_PAGESIZE);
	page_words = page_size / sizeof(uint64_t);
	heap_bytes = opt.mem_mib << 20;
	npages = heap_bytes / page_size;
	if (opt.dirty > npages)
		opt.dirty = npages;
	if (opt.discard > npages)
		opt.discard = npages;
	if (opt.hot > npages)
		opt.hot = npages;
	drop_cursor = npages / 2;

	setup_signals();

	heap = mmap(NULL, heap_bytes, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	gens = calloc(npages, sizeof(*gens));
	dropped = calloc(npages, 1);
	if (heap == MAP_FAILED || !gens || !dropped) {
		fprintf(stderr, "memwork: cannot allocate %lu MiB: %m\n", opt.mem_mib);
		return 1;
	}
	for (i = 0; i < npages; i++)
		page_fill(i, 0);

	out_printf("heap %p pages %zu pagesize %zu\n", (void *)heap, npages, page_size);
	out_printf("ready\n");
	if (opt.pidfile)
		write_pidfile();

	for (;;) {
		uint64_t t;

		if (opt.pause_file && !access(opt.pause_file, F_OK)) {
			/* quiescent: nothing of ours changes in memory until the file goes */
			if (!paused) {
				paused = 1;
				out_printf("paused\n");
			}
			sleep_ms(opt.tick_ms);
			continue;
		}
		if (paused) {
			paused = 0;
			out_printf("resumed\n");
		}
		tick();
		ticks++;
		if (opt.gap_ms) {
			uint64_t t = real_us();

			if (last_tick && t - last_tick > opt.gap_ms * 1000)
				out_printf("gap %" PRIu64 " after step %" PRIu64 " at %" PRIu64 "\n",
					   t - last_tick, step, t);
			last_tick = t;
		}

		if (usr1_seen != usr1_count) {
			usr1_seen = usr1_count;
			out_printf("usr1 %d\n", (int)usr1_seen);
			if (opt.fork_on_usr1)
				fork_check();
			if (opt.remap_on_usr1)
				heap_move();
		}
		if (usr2_seen != usr2_count) {
			usr2_seen = usr2_count;
			if (usr2_bad)
				fail("SIGUSR2 handler did not run on the sigaltstack "
				     "or got a bad siginfo");
			out_printf("usr2 %d altstack ok\n", (int)usr2_seen);
		}
		if (opt.check_every && ticks % opt.check_every == 0) {
			check_state();
			check_heap();
		}

		t = now_ns();
		if (!opt.print_ms || t - last_print >= opt.print_ms * 1000000ULL) {
			last_print = t;
			out_printf("step %" PRIu64 " pid %d gen %" PRIu64 " ok\n",
				   ++step, (int)getpid(), total_gen);
		}

		if (opt.ticks && ticks >= opt.ticks) {
			check_state();
			check_heap();
			out_printf("done\n");
			return 0;
		}
		sleep_ms(opt.tick_ms);
	}
}
