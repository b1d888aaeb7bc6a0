/* SPDX-License-Identifier: MIT */
/* The parasite's syscalls, on common/raw_syscall.h: each returns -errno on failure. */
#ifndef FERRY_PARASITE_SYSCALL_H
#define FERRY_PARASITE_SYSCALL_H

#include <asm/unistd.h>

#include "common/raw_syscall.h"

#define sys_rt_sigaction(sig, act, old, size)	raw_syscall4(__NR_rt_sigaction, sig, act, old, size)
#define sys_getitimer(which, it)		raw_syscall2(__NR_getitimer, which, it)
#define sys_sigaltstack(ss, old)		raw_syscall2(__NR_sigaltstack, ss, old)
#define sys_brk(addr)				raw_syscall1(__NR_brk, addr)
#define sys_userfaultfd(flags)			raw_syscall1(__NR_userfaultfd, flags)
#define sys_ioctl(fd, req, arg)			raw_syscall3(__NR_ioctl, fd, req, arg)
#define sys_close(fd)				raw_syscall1(__NR_close, fd)

#endif
