/* SPDX-License-Identifier: MIT */
/* Command area shared by migrate and the parasite blob (fixed layout). */
#ifndef FERRY_PARASITE_PROTO_H
#define FERRY_PARASITE_PROTO_H

#include <stdint.h>

#define PRS_NSIG 64

enum prs_cmd {
	PRS_CMD_NONE = 0,
	PRS_CMD_SIGACTIONS,
	PRS_CMD_ITIMERS,
	PRS_CMD_SIGALTSTACK,
	PRS_CMD_BRK,
	PRS_CMD_UFFD_CREATE,
	PRS_CMD_CLOSE_FD,
};

/* As the kernel's struct sigaction for rt_sigaction (x86-64). */
struct prs_sigaction {
	uint64_t handler;
	uint64_t flags;
	uint64_t restorer;
	uint64_t mask;
};

struct prs_area {
	uint32_t cmd;
	int32_t ret;		/* 0 or -errno from the blob */
	uint64_t arg[4];
	union {
		struct prs_sigaction sa[PRS_NSIG];	/* index sig-1 */
		struct { int64_t interval_sec, interval_usec, value_sec, value_usec; } it[3];
		struct { uint64_t sp; int32_t flags; int32_t pad; uint64_t size; } ss;
		uint64_t brk;
		struct { int32_t fd; int32_t pad; uint64_t features; } uffd;
	} u;
};

#endif
