/* SPDX-License-Identifier: MIT */
#ifndef FERRY_GHOST_H
#define FERRY_GHOST_H

#include <stdint.h>
#include <sys/types.h>

#include "transport/sink.h"

/* A ghost's data goes as one image file, which the wire takes up to 16 MiB. */
#define GHOST_MAX_DATA	(8u << 20)

/*
 * Image @name (a ghost_file_entry): the size, mode and data of the file
 * @link (/proc/PID/fd/N, /proc/PID/map_files/A-B) leads to, a @what (for
 * messages) at @path; up to GHOST_MAX_DATA of data.
 */
int dump_file_data(const char *link, const char *name, const char *what, const char *path,
		   struct sink *sink);
/* ghost-<file_id>.img: the data of the unlinked file open as @fd in @pid. */
int dump_ghost(pid_t pid, int fd, uint32_t file_id, const char *path, struct sink *sink);

#endif
