/* SPDX-License-Identifier: MIT */
#ifndef FERRY_DUMP_H
#define FERRY_DUMP_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "source-agent/files.h"
#include "source-agent/mm.h"
#include "source-agent/proc.h"
#include "source-agent/threads.h"
#include "source-agent/tree.h"
#include "transport/sink.h"

/*
 * The state of one frozen (seized and stopped) process other than its memory
 * pages, as image files handed to @sink: core-<pid>.img (threads, signals,
 * creds...), mm-<pid>.img (mm fields and VMAs), files-<pid>.img (fd table)
 * and what its fds send of their own (pipe-<pipe_id>.img, ghost-<file_id>.img).
 * Infects and cures the target on the way.
 * @vl: its VMAs as read for the final memory scan. Refuses what ferry cannot
 * restore yet with -EOPNOTSUPP and a message naming it.
 */
struct shm_set;
int dump_process(pid_t pid, const struct thread_set *ts, const struct vma_list *vl,
		 struct file_ids *files, const struct shm_set *shm, struct sink *sink);

/* pstree.img and inventory.img of a round. */
int dump_pstree(const struct tree *t, struct sink *sink);
int dump_inventory(struct sink *sink, uint32_t round, pid_t root, int final);

/* Helpers of the object files: @msg as the image file @name of the round. */
int sink_add_msg(struct sink *sink, const char *name, const ProtobufCMessage *msg);
uint64_t stat_mtime_ns(const struct stat *st);

#endif
