/* SPDX-License-Identifier: MIT */
#ifndef FERRY_CORE_H
#define FERRY_CORE_H

#include <signal.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/types.h>

#include "common/ptrace.h"
#include "parasite/parasite.h"
#include "source-agent/parasite.h"
#include "source-agent/proc.h"
#include "source-agent/threads.h"
#include "source-agent/timers.h"
#include "transport/sink.h"

struct parasite_ctl;

/* What only the parasite can tell, taken before it is cured. */
struct parasite_data {
	struct prs_sigaction sa[PRS_NSIG];
	struct itimerval it[3];
	struct prs_thread_info *ti;	/* per thread */
	struct posix_timers timers;	/* timers.c: injected timer_gettime */
};

int parasite_collect(struct parasite_ctl *ctl, const struct thread_set *ts,
		     struct parasite_data *pd);
void parasite_data_free(struct parasite_data *pd);

/*
 * A parent-death signal on a process whose parent stays behind (the tree's
 * root): the restored copy is reparented at once, so the kernel would send
 * it right after the restore. Refused: -EOPNOTSUPP with the reason logged.
 */
int core_pdeath_check(pid_t pid, pid_t tid, int sig);
/* A thread or process keyring of its own (KEYRINGS_* in @keyrings): refused. */
int core_keyrings_check(pid_t pid, pid_t tid, int keyrings);
/*
 * Both for every thread of @ts, read with the parasite when it is first
 * seized (before round 1); the parent-death signal on the @root only.
 */
int core_seized_check(struct parasite_ctl *ctl, const struct thread_set *ts, bool root);

/*
 * core-<pid>.img: creds, rlimits, sigactions, itimers, cwd, root, umask,
 * personality, queued signals and every thread's state. After the cure:
 * @t are the registers as frozen (the task's own again).
 */
int dump_core(pid_t pid, const struct thread_set *ts, const struct tracee *t,
	      const struct parasite_data *pd, const struct proc_stat *ps, struct sink *sink);

#endif
