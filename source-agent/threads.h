/* SPDX-License-Identifier: MIT */
/* Every thread of the target, seized and stopped together. */
#ifndef FERRY_THREADS_H
#define FERRY_THREADS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct thread_set {
	pid_t pid;
	pid_t *tids;		/* tids[0] == pid */
	size_t nr;
};

/*
 * Stop every thread: seize the ones not seized yet, interrupt the others,
 * and list the threads again until no new one appears (a running thread
 * may spawn more while we stop the rest). Threads that died are dropped.
 */
int threads_freeze(struct thread_set *ts);
/* Resume (still seized) or let go of every thread. */
int threads_resume(struct thread_set *ts);
void threads_detach(struct thread_set *ts);
/* SIGKILL it and reap the traced threads. */
void threads_kill(struct thread_set *ts);
void threads_free(struct thread_set *ts);

#endif
