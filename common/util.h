/* SPDX-License-Identifier: MIT */
#ifndef FERRY_UTIL_H
#define FERRY_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <dirent.h>
#include <sys/types.h>

#ifndef PAGE_SIZE
#define PAGE_SIZE 4096UL
#endif
#define TASK_SIZE_MAX 0x7ffffffff000ULL

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* @x rounded up to a whole page */
static inline uint64_t page_up(uint64_t x)
{
	return (x + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1);
}

/* Loop over short reads/writes and EINTR: 0 or -errno (-EIO on early EOF). */
int read_full(int fd, void *buf, size_t len);
int write_full(int fd, const void *buf, size_t len);
int pread_full(int fd, void *buf, size_t len, off_t off);
int pwrite_full(int fd, const void *buf, size_t len, off_t off);

/*
 * Room for one more element in a growing array (*pp holding nr of *cap,
 * elements of @size bytes): doubles it when full. 0 or -ENOMEM.
 */
int grow_array(void *pp, size_t *cap, size_t nr, size_t size);

/*
 * Call @fn for every data extent [start, end) of file @fd below @size, holes
 * (SEEK_DATA/SEEK_HOLE) skipped. Stops at the first non-zero return.
 */
int for_each_data_extent(int fd, uint64_t size,
			 int (*fn)(void *arg, uint64_t start, uint64_t end), void *arg);

/* Monotonic clock in microseconds. */
uint64_t now_us(void);
/*
 * The Internet checksum (RFC 1071): inet_csum_add sums @len bytes as
 * big-endian 16-bit words (an odd last byte padded) into @sum, which
 * inet_csum_fold folds and complements, in network byte order. For up to
 * 64 KiB at a time (the 32-bit sum does not overflow).
 */
uint32_t inet_csum_add(uint32_t sum, const void *p, size_t len);
uint16_t inet_csum_fold(uint32_t sum);

/* "HOST:PORT", "[V6]:PORT" or ":PORT"/"PORT" (host NULL): 0 or -EINVAL. */
int parse_host_port(const char *s, char *host, size_t hlen, char *port, size_t plen);

/*
 * Directory @name under @dirfd opened for readdir (@flags added to
 * O_RDONLY | O_DIRECTORY | O_CLOEXEC); closedir() closes it. NULL with errno.
 */
DIR *opendirat(int dirfd, const char *name, int flags);

/* Read a small /proc file into buf (NUL-terminated): bytes read or -errno. */
ssize_t read_small_file(const char *path, char *buf, size_t len);
/* The same, reading until EOF (or @len - 1 bytes): files that come a page per read. */
ssize_t read_whole_file(const char *path, char *buf, size_t len);
/* What pipe @fd holds (up to @cap bytes), copied with tee so it stays: *buf malloc'd, or NULL. */
int pipe_peek_data(int fd, size_t cap, uint8_t **buf, size_t *len);

#endif
