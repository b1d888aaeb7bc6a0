/* SPDX-License-Identifier: MIT */
/*
 * The process tree being migrated: the root and every descendant, parents
 * before children. Each process has its threads (seized together) and its
 * own dirty tracking (a userfaultfd made inside it by its parasite).
 */
#ifndef FERRY_TREE_H
#define FERRY_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "source-agent/dirty.h"
#include "source-agent/threads.h"

struct tree_proc {
	pid_t pid;
	struct thread_set ts;
	struct dirty_tracker dt;
	bool tracking;
	bool stopped;		/* stopped by job control when we came: stays so */
	int stop_signal;	/* the signal that stopped it (SIGSTOP, SIGTSTP...), 0: unknown */
};

struct tree {
	pid_t root;
	enum dirty_backend backend;
	struct tree_proc *p;
	size_t nr;
	bool execed;		/* an exec was seen and said (tree_exec_check) */
};

/*
 * Stop every thread of every process of the tree: the known ones first,
 * then children that appeared meanwhile (a stopped parent forks no more),
 * whose dirty tracking starts here (their memory is all new to us). A
 * process that left the tree is dropped; the root leaving is -ESRCH.
 */
int tree_freeze(struct tree *t);
/*
 * A process of the tree that executed a new program since it was seized
 * (its memory is another program's now): named, -ENOEXEC. tree_freeze
 * checks; a failed round checks too, as the exec may be why it failed.
 */
int tree_exec_check(struct tree *t);
/* Resume every thread (still seized), or let go of them all. */
int tree_resume(struct tree *t);
void tree_detach(struct tree *t);
/* The destination has it: SIGKILL the whole tree and reap what we traced. */
void tree_kill(struct tree *t);
/* Stop tracking, let go, forget: the tree runs on as if nothing happened. */
void tree_release(struct tree *t);
const struct thread_set *tree_threads(const struct tree *t, size_t i);

#endif
