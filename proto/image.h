/* SPDX-License-Identifier: MIT */
/*
 * Image files: u32 magic, then messages each prefixed by a u32 length
 * (little endian). Built in memory (so the source can ship them over the
 * wire or write them locally) and parsed from memory with bounds checks.
 */
#ifndef FERRY_IMAGE_H
#define FERRY_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include "images.pb-c.h"

#define IMG_MAGIC	0x31595246u	/* "FRY1" */
#define IMG_MAX_ENTRY	(16u << 20)	/* no single message is larger */
#define IMG_MAX_FILE	(1u << 30)

struct img_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

int img_buf_init(struct img_buf *b);
int img_buf_add(struct img_buf *b, const ProtobufCMessage *msg);
void img_buf_free(struct img_buf *b);

struct img_reader {
	const uint8_t *data;
	size_t len;
	size_t pos;
	const char *name;	/* for error messages */
};

/* Checks the magic: -EINVAL with a logged reason on a bad or short header. */
int img_reader_init(struct img_reader *r, const char *name, const void *data, size_t len);
/* 1: *msg set (free with protobuf_c_message_free_unpacked); 0: end; -errno: bad input. */
int img_read_msg(struct img_reader *r, const ProtobufCMessageDescriptor *d, void **msg);

/* Whole-file helpers relative to a directory fd. */
int img_load_file(int dirfd, const char *name, void **data, size_t *len);
int img_write_file(int dirfd, const char *name, const void *data, size_t len);

/* Read exactly one message from a file (core-*.img, mm-*.img, ...). */
int img_load_one(int dirfd, const char *name, const ProtobufCMessageDescriptor *d, void **msg);

/* pagemap-<pid>.img, validated: sorted, non-overlapping, PRESENT data inside pages-<pid>.img. */
struct pagemap {
	uint32_t pid;
	size_t nr;
	struct pm_ext {
		uint64_t vaddr;
		uint64_t nr_pages;
		uint32_t flags;		/* PE_* */
		uint64_t off;		/* PRESENT: offset in pages file */
	} *ext;
};

int pagemap_load(int round_dirfd, uint32_t pid, struct pagemap *pm);
int pagemap_parse(const char *name, const void *data, size_t len, uint64_t pages_file_size,
		  struct pagemap *pm);
int pagemap_build(const struct pagemap *pm, uint64_t pages_bytes, struct img_buf *out);
void pagemap_free(struct pagemap *pm);

/* Pages of shared memory object id are those of this pseudo pid + id (shmem.img). */
#define SHM_PID_BASE	0x40000000u

/*
 * fd_entry.watches (inotify): the numbers a restore reaches, and the mask
 * bits carried: IN_ALL_EVENTS | IN_EXCL_UNLINK | IN_ONESHOT.
 */
/* thread_core.cpu_affinity: a mask of at most this many bytes (1024 CPUs) */
#define THREAD_CPU_MASK_BYTES	128
#define INOTIFY_WD_MAX		65536
#define INOTIFY_MASK_CARRIED	0x84000fffu

#define PAGEMAP_NAME_FMT "pagemap-%u.img"
#define PAGES_NAME_FMT	 "pages-%u.img"

#endif
