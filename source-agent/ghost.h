/* SPDX-License-Identifier: MIT */
#ifndef FERRY_GHOST_H
#define FERRY_GHOST_H

#include <stdint.h>
#include <sys/types.h>

#include "transport/sink.h"

/*
 * Image @name (a ghost_file_entry): the size, mode and data of the file open
 * as @fd in @pid, a @what (for messages) at @path; up to 8 MiB of data.
 */
int dump_file_data(pid_t pid, int fd, const char *name, const char *what, const char *path,
		   struct sink *sink);
/* ghost-<file_id>.img: the data of the unlinked file open as @fd in @pid. */
int dump_ghost(pid_t pid, int fd, uint32_t file_id, const char *path, struct sink *sink);

#endif
