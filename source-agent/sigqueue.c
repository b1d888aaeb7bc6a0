// SPDX-License-Identifier: MIT
/* Signals queued on a thread or a process, read without taking them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>

#include "common/compat.h"
#include "common/log.h"
#include "source-agent/sigqueue.h"

#define MAX_PENDING 1024

int sigqueue_peek(pid_t tid, bool shared, struct sigqueue *q)
{
	struct { uint64_t off; uint32_t flags; int32_t nr; } arg = { 0, shared ? 1 : 0, 32 };
	size_t i;
	long n;

	memset(q, 0, sizeof(*q));
	q->raw = malloc(MAX_PENDING * sizeof(*q->raw));
	q->e = calloc(MAX_PENDING, sizeof(*q->e));
	q->p = calloc(MAX_PENDING, sizeof(*q->p));
	if (!q->raw || !q->e || !q->p)
		return -ENOMEM;
	do {
		if (q->nr + arg.nr > MAX_PENDING) {
			pr_err("tid %d has more than %d pending signals", tid, MAX_PENDING);
			return -EOPNOTSUPP;
		}
		n = ptrace(PTRACE_PEEKSIGINFO, tid, &arg, q->raw[q->nr]);
		if (n < 0)
			return -errno;
		q->nr += n;
		arg.off += n;
	} while (n == arg.nr);
	for (i = 0; i < q->nr; i++) {
		siginfo_entry__init(&q->e[i]);
		q->e[i].raw.data = q->raw[i];
		q->e[i].raw.len = sizeof(q->raw[i]);
		q->e[i].shared = shared;
		q->p[i] = &q->e[i];
	}
	return 0;
}

void sigqueue_free(struct sigqueue *q)
{
	free(q->raw);
	free(q->e);
	free(q->p);
}
