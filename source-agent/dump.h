/* SPDX-License-Identifier: MIT */
#ifndef FERRY_DUMP_H
#define FERRY_DUMP_H

#include <stdint.h>
#include <sys/types.h>

#include "source-agent/proc.h"
#include "source-agent/threads.h"
#include "source-agent/tree.h"
#include "transport/sink.h"

/*
 * The state of one frozen (seized and stopped) process other than its memory
 * pages, as image files handed to @sink: core-<pid>.img (threads, signals,
 * creds...), mm-<pid>.img (mm fields and VMAs), files-<pid>.img (fd table)
 * and pipes-data-<pid>.img. Infects and cures the target on the way.
 * @vl: its VMAs as read for the final memory scan. Refuses what ferry cannot
 * restore yet with -EOPNOTSUPP and a message naming it.
 */
/*
 * Open file descriptions seen in the tree so far: fds of any process that
 * share one (dup, fork, SCM_RIGHTS) get one id, so the restore makes one
 * description for them and its offset stays shared.
 */
struct file_ids {
	struct fid {
		pid_t pid;
		int fd;
		uint64_t dev, ino;
		uint32_t id;
	} *v;
	size_t nr, cap;
	uint32_t next;
	uint64_t *peers;	/* inodes the tree's connected unix sockets talk to */
	size_t nr_peers, cap_peers;
};

void file_ids_free(struct file_ids *f);
/* Every connected unix socket's peer is in the tree too: else -EOPNOTSUPP. */
int file_ids_check_peers(const struct file_ids *f);

struct shm_set;
int dump_process(pid_t pid, const struct thread_set *ts, const struct vma_list *vl,
		 struct file_ids *files, const struct shm_set *shm, struct sink *sink);

/* mm-<pid>.img of a pre-copy round: only the VMAs (the destination maps memory early). */
int dump_vmas(pid_t pid, const struct vma_list *vl, struct sink *sink);

/* pstree.img and inventory.img of a round. */
int dump_pstree(const struct tree *t, struct sink *sink);
int dump_inventory(struct sink *sink, uint32_t round, pid_t root, int final);

#endif
