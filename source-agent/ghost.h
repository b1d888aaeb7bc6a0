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
#define GHOST_KIND "deleted file"

struct file_ids;
struct stat;
/*
 * The deleted file @st (@pid's @fd, or a mapping of it: @fd -1; reached by
 * @link, at @path) is one of the tree's: its number in *@id. The first time
 * it is seen, with a @sink (the final dump), its data go as ghost-<id>.img.
 */
int ghost_note(struct file_ids *ids, pid_t pid, int fd, const char *link, const struct stat *st,
	       const char *path, struct sink *sink, uint32_t *id);

#endif
