/* SPDX-License-Identifier: MIT */
#ifndef FERRY_RESTORE_H
#define FERRY_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "images.pb-c.h"
#include "pageserver/stack.h"
#include "restorer/restorer.h"

struct restore_opts {
	const char *images_dir;		/* a round directory: the top of a stack */
	bool pidns;			/* into a fresh PID namespace */
};

/* Everything known about one process to restore. */
struct rst_proc {
	PstreeEntry *pe;
	ProcCore *core;
	MmEntry *mm;
	FilesEntry *files;
	int work_fd_base;		/* our fds are moved at or above this */
	int work_fds[RST_MAX_CLOSE];	/* closed by the restorer at the end */
	uint32_t nr_work_fds;
	/* the blob's mapping, built in memory at its final addresses */
	uint64_t region_addr;
	size_t region_len;
	uint8_t *region;
	struct rst_args *args;		/* inside region (local copy) */
	uint64_t args_addr;		/* where it will be in the new process */
	struct rst_thread *threads;	/* inside region (local copy) */
	uint64_t stack_top;
};

int restore_run(const struct restore_opts *o);

/* dest-agent/memory.c: VMAs and fills from the images and the stack of rounds. */
int rst_build_region(struct rst_proc *p, struct stack_view *sv);
/* dest-agent/sigframe.c: the rt_sigframe the blob returns through. */
int rst_build_sigframe(struct rst_proc *p, size_t idx, struct rst_thread *t, uint8_t *frame_local,
		       uint64_t xsave_addr, uint8_t *xsave_local);
size_t rst_sigframe_size(void);
size_t rst_xsave_size(void);
int rst_probe_xstate(void);
/* dest-agent/files.c */
int rst_check_files(const struct rst_proc *p);
int rst_open_fds(struct rst_proc *p, int round_dirfd);
int rst_work_fd(struct rst_proc *p, int fd);

#endif
