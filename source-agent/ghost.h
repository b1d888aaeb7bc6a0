/* SPDX-License-Identifier: MIT */
#ifndef FERRY_GHOST_H
#define FERRY_GHOST_H

#include <stdint.h>
#include <sys/types.h>

#include "transport/sink.h"

/* ghost-<file_id>.img: the data of the unlinked file open as @fd in @pid. */
int dump_ghost(pid_t pid, int fd, uint32_t file_id, const char *path, struct sink *sink);

#endif
