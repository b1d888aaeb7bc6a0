/* SPDX-License-Identifier: MIT */
/*
 * Shared memory of the tree: shared anonymous mappings, memfds and System V
 * segments (whose identity ipc.c checks and describes). Each
 * object (known by the inode of its shmem file) is migrated once, whatever
 * maps it: its pages go as an image "process" of their own (pseudo pid
 * SHM_PID_BASE + id, addresses are offsets in the object), shmem.img lists
 * the objects, and every VMA mapping one names it (vma_entry.shmid).
 */
#ifndef FERRY_SHM_H
#define FERRY_SHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/image.h"
#include "source-agent/dirty.h"
#include "source-agent/pages.h"
#include "source-agent/proc.h"
#include "transport/sink.h"

struct shm_obj {
	uint32_t id;
	uint64_t dev, ino, size;
	int fd;			/* the shmem file, through /proc/PID/map_files */
	bool memfd;
	bool full;		/* send it whole this round (new, or writable by write(2)) */
	int seals;		/* F_GET_SEALS, -1: not a memfd that has them */
	long sysv;		/* a System V segment's shmid, -1: not one */
	char name[64];
	struct shm_range { uint64_t start, end; } *r;	/* offsets written this round */
	size_t nr, cap;
};

struct shm_set {
	struct shm_obj *o;
	size_t nr, cap;
};

/* Is this VMA a mapping of shared memory ferry migrates (SysV segments too)? */
bool vma_is_shm(const struct vma *v);
/*
 * Note the objects @pid maps (setting vl's shm_id) and move the dirty
 * ranges that fall in them out of @ds, as offsets in their object.
 */
int shm_collect(struct shm_set *ss, pid_t pid, struct vma_list *vl, struct dirty_set *ds);
/* Each object's pages of this round, and shmem.img. */
int shm_send(struct shm_set *ss, struct sink *sink, struct copy_stats *st);
/* The id of the object with this shmem inode, 0: none. */
uint32_t shm_lookup(const struct shm_set *ss, uint64_t dev, uint64_t ino);
void shm_free(struct shm_set *ss);

#endif
