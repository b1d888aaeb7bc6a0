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
/* The same for every thread of @pid, read with the parasite (before round 1). */
int core_pdeath_check_threads(struct parasite_ctl *ctl, const struct thread_set *ts);

/*
 * core-<pid>.img: creds, rlimits, sigactions, itimers, cwd, root, umask,
 * personality, queued signals and every thread's state. After the cure:
 * @t are the registers as frozen (the task's own again).
 */
int dump_core(pid_t pid, const struct thread_set *ts, const struct tracee *t,
	      const struct parasite_data *pd, const struct proc_stat *ps, struct sink *sink);

#endif
