/* SPDX-License-Identifier: MIT */
/*
 * Control of the parasite: a freestanding blob (parasite/) run inside the
 * stopped target to do what only the target itself can. Injected into a
 * shared anonymous area made by an injected mmap, driven in trap mode
 * (migrate sets rip to the entry, the blob runs one command and stops
 * with a SIGTRAP it sends itself), cured afterwards: area unmapped, registers, xstate and sigmask put
 * back, no fd or mapping left.
 */
#ifndef FERRY_PARASITE_CTL_H
#define FERRY_PARASITE_CTL_H

#include <signal.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>

#include "parasite/parasite.h"

struct parasite_ctl;

/* @pid: thread-group leader, already seized and stopped (tracee_seize). */
int parasite_infect(pid_t pid, struct parasite_ctl **out);
int parasite_get_sigactions(struct parasite_ctl *ctl, struct prs_sigaction sa[PRS_NSIG]);
int parasite_get_itimers(struct parasite_ctl *ctl, struct itimerval it[3]);
int parasite_get_sigaltstack(struct parasite_ctl *ctl, stack_t *ss);
int parasite_get_brk(struct parasite_ctl *ctl, uint64_t *brk);
/* One syscall injected into the leader (tracee_syscall at the vdso's `syscall`). */
int parasite_syscall(struct parasite_ctl *ctl, long nr, long *ret, long a1, long a2, long a3,
		     long a4, long a5, long a6);
/*
 * Create a userfaultfd inside the target with @features (UFFDIO_API done
 * there), take it into this process (pidfd_getfd) and close the target's
 * copy. Returns our fd.
 */
int parasite_create_uffd(struct parasite_ctl *ctl, uint64_t features, uint64_t *got_features,
			 int *fd);
struct prs_thread_info {
	stack_t ss;
	uint64_t clear_tid;
	int32_t pdeathsig;
	int32_t securebits;
	int32_t subreaper;	/* the leader only: PR_GET_CHILD_SUBREAPER */
	int32_t thp_disable;	/* the leader only: PR_GET_THP_DISABLE */
	int32_t dumpable;	/* the leader only: PR_GET_DUMPABLE */
	int32_t membarrier;	/* the leader only: the mm's membarrier registrations, or -errno */
	int32_t tsc_mode;	/* PR_GET_TSC */
	int32_t mce_kill;	/* PR_MCE_KILL_GET */
	int32_t keyrings;	/* KEYRINGS_*: keyrings of its own (keyctl) */
};

#define KEYRINGS_THREAD		1	/* KEY_SPEC_THREAD_KEYRING */
#define KEYRINGS_PROCESS	2	/* KEY_SPEC_PROCESS_KEYRING (the leader's answer) */

/*
 * Per-thread state only the thread itself can tell (its sigaltstack,
 * clear_child_tid address, parent-death signal, securebits; the leader: the
 * process's child-subreaper flag, THP disable, dumpable flag and membarrier
 * registrations), by syscalls injected into thread @tid (any
 * stopped thread of the infected process, the leader too), with the
 * results in the parasite's area.
 */
int parasite_thread_info(struct parasite_ctl *ctl, pid_t tid, struct prs_thread_info *ti);
/* Remove the parasite; the target is left exactly as it was seized. */
/* timer_gettime and timer_getoverrun of POSIX timer @id, injected into the leader. */
int parasite_timer_get(struct parasite_ctl *ctl, int32_t id, struct itimerspec *its,
		       int *overrun);
int parasite_cure(struct parasite_ctl *ctl);

#endif
