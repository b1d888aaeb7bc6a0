/* SPDX-License-Identifier: MIT */
#ifndef FERRY_MIGRATE_H
#define FERRY_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "source-agent/dirty.h"
#include "transport/sink.h"

struct migrate_opts {
	const char *host, *port;	/* remote page server, or */
	const char *images_dir;		/* local image stack */
	const char *id;			/* migration id (resume / name) */
	struct tls_opts tls;
	unsigned int max_rounds;	/* pre-copy rounds before the final one */
	uint64_t small_dirty_pages;	/* stop iterating below this */
	bool leave_running;
	bool json;
	enum dirty_backend backend;
};

/* Whole migration of the process at @pid: pre-copy rounds, final round, hand-over. */
int migrate_run(pid_t pid, const struct migrate_opts *o);

#endif
