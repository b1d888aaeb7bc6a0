/* SPDX-License-Identifier: MIT */
/*
 * System V IPC (ipc.c): which objects are the tree's, ipc.img. The check
 * itself is ipc_check (preflight.h).
 */
#ifndef FERRY_SRC_IPC_H
#define FERRY_SRC_IPC_H

#include <sys/types.h>

#include "proto/image.h"
#include "transport/sink.h"

/* The tree's root: what "a process of the tree" means to ipc_check and ipc_dump. */
void ipc_tree_set(pid_t root);
/* ipc.img, ipc-msg.img (final round, frozen): the sets and queues only the tree uses. */
int ipc_dump(struct sink *sink);
/* A SysV segment's entry (shm.c's objects): identity, SHM_LOCKED, SHM_DEST, last attacher. */
int ipc_shm_entry(long id, SysvShm *s, SysvPerm *perm);
/* The source is gone, the destination has them: remove here what ipc_dump took. */
void ipc_remove_moved(void);

#endif
