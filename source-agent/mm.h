/* SPDX-License-Identifier: MIT */
#ifndef FERRY_MM_H
#define FERRY_MM_H

#include <stdbool.h>
#include <sys/types.h>

#include "source-agent/proc.h"
#include "transport/sink.h"

struct parasite_ctl;

struct file_ids;
/* mm-<pid>.img of the final dump: mm fields (brk from the parasite), auxv, exe, VMAs. */
int dump_mm(pid_t pid, struct parasite_ctl *ctl, const struct vma_list *vl,
	    const struct proc_stat *ps, struct file_ids *files, struct sink *sink);

/* mm-<pid>.img of a pre-copy round: only the VMAs (the destination maps memory early). */
int dump_vmas(pid_t pid, const struct vma_list *vl, struct sink *sink);
struct dirty_tracker;
/* Frozen, after the round's dirty scan: the VMF_* flags of @vl where a VMA may have any. */
int mm_read_vmflags(pid_t pid, const struct dirty_tracker *dt, struct vma_list *vl);
/* Backed by huge pages (hugetlbfs, MAP_HUGETLB, MFD_HUGETLB)? */
bool vma_is_hugetlb(pid_t pid, const struct vma *v);

#endif
