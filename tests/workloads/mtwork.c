// SPDX-License-Identifier: MIT
/*
 * mtwork: a multi-threaded migration workload. N worker threads each bump
 * their own counter every --tick-ms and check their thread-local storage;
 * the main thread writes "step S pid P threads N sum C ok" lines to --out
 * (opened once, no O_APPEND), checks that every worker keeps advancing, and
 * with --ticks T stops the workers and joins them (which needs the kernel's
 * clear_child_tid wake-up of each thread) before writing "done".
 * Exit: 0 done, 1 setup error, 2 usage, 3 FAIL (a line says why).
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wl.h"

#define MAX_WORKERS 64

static int nr_workers = 4;
static long tick_ms = 2;
static atomic_long counts[MAX_WORKERS];
static atomic_int stop;
static __thread long my_index = -1;
static __thread char tls_pattern[64];

static void *worker(void *arg)
{
	long i = (long)arg;

	my_index = i;
	snprintf(tls_pattern, sizeof(tls_pattern), "worker-%ld-tls", i);
	while (!atomic_load(&stop)) {
		char want[64];

		snprintf(want, sizeof(want), "worker-%ld-tls", i);
		if (my_index != i || strcmp(tls_pattern, want)) {
			say("FAIL worker %ld lost its thread-local storage\n", i);
			_exit(3);
		}
		atomic_fetch_add(&counts[i], 1);
		sleep_ms(tick_ms);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long prev[MAX_WORKERS] = { 0 }, ticks = 0, step = 0, i;
	const char *out = NULL, *pidfile = NULL;
	pthread_t th[MAX_WORKERS];
	int stalled[MAX_WORKERS] = { 0 };

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--out") && i + 1 < argc)
			out = argv[++i];
		else if (!strcmp(argv[i], "--pidfile") && i + 1 < argc)
			pidfile = argv[++i];
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			nr_workers = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--ticks") && i + 1 < argc)
			ticks = atol(argv[++i]);
		else if (!strcmp(argv[i], "--tick-ms") && i + 1 < argc)
			tick_ms = atol(argv[++i]);
		else {
			fprintf(stderr, "usage: mtwork --out FILE [--pidfile F] [--threads N] "
					"[--ticks T] [--tick-ms MS]\n");
			return 2;
		}
	}
	if (!out || nr_workers < 1 || nr_workers > MAX_WORKERS || tick_ms < 1) {
		fprintf(stderr, "mtwork: --out FILE needed, 1..%d threads\n", MAX_WORKERS);
		return 2;
	}
	out_fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out_fd < 0)
		return 1;
	for (i = 0; i < nr_workers; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)i))
			return 1;
	say("ready\n");
	if (pidfile && write_pidfile(pidfile))
		return 1;
	for (step = 1; !ticks || step <= ticks; step++) {
		long sum = 0;

		sleep_ms(100);
		for (i = 0; i < nr_workers; i++) {
			long c = atomic_load(&counts[i]);

			/* a worker may miss a beat (a migration), not several */
			stalled[i] = c == prev[i] ? stalled[i] + 1 : 0;
			if (stalled[i] > 20) {
				say("FAIL worker %ld stopped at %ld\n", i, c);
				return 3;
			}
			prev[i] = c;
			sum += c;
		}
		say("step %ld pid %d threads %d sum %ld ok\n", step, getpid(), nr_workers, sum);
	}
	atomic_store(&stop, 1);
	for (i = 0; i < nr_workers; i++)
		pthread_join(th[i], NULL);
	say("done\n");
	return 0;
}
