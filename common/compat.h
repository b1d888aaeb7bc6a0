/* SPDX-License-Identifier: MIT */
/*
 * Kernel interfaces newer than Debian 12's 6.1 uapi headers. Values are the
 * kernel's uapi ones (include/uapi/linux/fs.h, userfaultfd.h, sched.h).
 */
#ifndef FERRY_COMPAT_H
#define FERRY_COMPAT_H

#include <linux/types.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PAGEMAP_SCAN
#define PAGE_IS_WPALLOWED	(1 << 0)
#define PAGE_IS_WRITTEN		(1 << 1)
#define PAGE_IS_FILE		(1 << 2)
#define PAGE_IS_PRESENT		(1 << 3)
#define PAGE_IS_SWAPPED		(1 << 4)
#define PAGE_IS_PFNZERO		(1 << 5)
#define PAGE_IS_HUGE		(1 << 6)
#define PAGE_IS_SOFT_DIRTY	(1 << 7)

struct page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};

#define PM_SCAN_WP_MATCHING	(1 << 0)
#define PM_SCAN_CHECK_WPASYNC	(1 << 1)

struct pm_scan_arg {
	__u64 size;
	__u64 flags;
	__u64 start;
	__u64 end;
	__u64 walk_end;
	__u64 vec;
	__u64 vec_len;
	__u64 max_pages;
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};

#define PAGEMAP_SCAN	_IOWR('f', 16, struct pm_scan_arg)
#endif

/* 6.14: a guard region's pages (MADV_GUARD_INSTALL) */
#ifndef PAGE_IS_GUARD
#define PAGE_IS_GUARD		(1 << 8)
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL	102
#endif

#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED	(1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC		(1 << 15)
#endif

#ifndef __NR_clone3
#define __NR_clone3 435
#endif
#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif
#ifndef __NR_rseq
#define __NR_rseq 334
#endif

#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif

/* struct clone_args as of Linux 5.5 (set_tid). */
struct ferry_clone_args {
	__u64 flags;
	__u64 pidfd;
	__u64 child_tid;
	__u64 parent_tid;
	__u64 exit_signal;
	__u64 stack;
	__u64 stack_size;
	__u64 tls;
	__u64 set_tid;
	__u64 set_tid_size;
	__u64 cgroup;
};

#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION	0x420f
#endif
/* Own name: glibc may or may not declare the uapi struct. */
struct ferry_rseq_config {
	__u64 rseq_abi_pointer;
	__u32 rseq_abi_size;
	__u32 signature;
	__u32 flags;
	__u32 pad;
};

#ifndef ARCH_MAP_VDSO_64
#define ARCH_MAP_VDSO_64 0x2003
#endif

#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE		0x08	/* 6.11: pages the kernel may drop (read as zero) */
#endif

/* membarrier(2): the registration commands the mm has issued (6.3) */
#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)
#endif
/* the REGISTER_* commands: GLOBAL_EXPEDITED, PRIVATE_EXPEDITED, _SYNC_CORE, _RSEQ */
#define FERRY_MEMBARRIER_REGISTRATIONS	((1 << 2) | (1 << 4) | (1 << 6) | (1 << 8))

/* prctl: timer_create takes the id from *timer_id while on (6.15; 1 on, 0 off, 2 get) */
#define FERRY_PR_TIMER_CREATE_RESTORE_IDS	77
#define FERRY_PR_TIMER_CREATE_RESTORE_IDS_GET	2
/* timerfd: set the unread expirations (CONFIG_CHECKPOINT_RESTORE) */
#define FERRY_TFD_IOC_SET_TICKS		_IOW('T', 0, __u64)

/* Kernel-internal restart codes (include/linux/errno.h), seen by ptrace. */
#ifndef ERESTARTSYS
#define ERESTARTSYS		512
#define ERESTARTNOINTR		513
#define ERESTARTNOHAND		514
#define ERESTART_RESTARTBLOCK	516
#endif

/* struct sched_attr (linux/sched/types.h clashes with glibc's sched_param) */
struct sched_attr_k {
	__u32 size;
	__u32 sched_policy;
	__u64 sched_flags;
	__s32 sched_nice;
	__u32 sched_priority;
	__u64 sched_runtime;
	__u64 sched_deadline;
	__u64 sched_period;
	__u32 sched_util_min;
	__u32 sched_util_max;
};

#endif
