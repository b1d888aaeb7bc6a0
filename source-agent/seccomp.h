/* SPDX-License-Identifier: MIT */
/*
 * Seccomp of each thread: its mode and, in filter mode, its chain of
 * classic BPF programs (PTRACE_SECCOMP_GET_FILTER, oldest first) with the
 * flags the kernel keeps (SECCOMP_FILTER_FLAG_LOG). A process keeps each
 * program once (same code, same flags); a thread names its chain by index.
 */
#ifndef FERRY_SECCOMP_H
#define FERRY_SECCOMP_H

#include <sys/types.h>

#include "images.pb-c.h"
#include "source-agent/threads.h"

struct seccomp_table {
	SeccompFilter *f;
	size_t nr, cap;
};

/*
 * Mode and chain of the stopped thread @tid into @tc (its chain allocated,
 * freed by seccomp_thread_free), new programs into @st. A filter that can
 * hand a syscall to a listener (SECCOMP_RET_USER_NOTIF) is refused:
 * -EOPNOTSUPP with the reason logged.
 */
int seccomp_dump_thread(pid_t pid, pid_t tid, struct seccomp_table *st, ThreadCore *tc);
void seccomp_thread_free(ThreadCore *tc);
void seccomp_table_free(struct seccomp_table *st);

/*
 * Filters shared by some threads of the process but not all (a thread made
 * more threads after installing one): the restore installs the filters
 * every thread has once, the rest per thread, so that sharing would be
 * lost (a later TSYNC would fail). Refused: -EOPNOTSUPP, logged.
 */
int seccomp_check_sharing(pid_t pid, ThreadCore *const *tc, size_t n);

/* What seccomp_dump_thread would refuse, for every stopped thread of @ts (first seize). */
int seccomp_check_seized(const struct thread_set *ts);

#endif
