// SPDX-License-Identifier: MIT
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

/*
 * The loop behind the four *_full calls: retries on EINTR and short
 * transfers; at *OFF (advanced as it goes) or, OFF NULL, at the file
 * position. A read that meets end of file is -EIO.
 */
static int rw_full(int fd, char *p, size_t len, off_t *off, bool wr)
{
	while (len) {
		ssize_t n;

		if (off)
			n = wr ? pwrite(fd, p, len, *off) : pread(fd, p, len, *off);
		else
			n = wr ? write(fd, p, len) : read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0 && !wr)
			return -EIO;
		p += n;
		if (off)
			*off += n;
		len -= n;
	}
	return 0;
}

int read_full(int fd, void *buf, size_t len)
{
	return rw_full(fd, buf, len, NULL, false);
}

/* rw_full only reads from p when writing: the cast drops const safely. */
int write_full(int fd, const void *buf, size_t len)
{
	return rw_full(fd, (char *)buf, len, NULL, true);
}

int pread_full(int fd, void *buf, size_t len, off_t off)
{
	return rw_full(fd, buf, len, &off, false);
}

int pwrite_full(int fd, const void *buf, size_t len, off_t off)
{
	return rw_full(fd, (char *)buf, len, &off, true);
}

int grow_array(void *pp, size_t *cap, size_t nr, size_t size)
{
	void **p = pp, *n;
	size_t ncap;

	if (nr < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	if (ncap > SIZE_MAX / size)
		return -ENOMEM;
	n = realloc(*p, ncap * size);
	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = ncap;
	return 0;
}

int for_each_data_extent(int fd, uint64_t size,
			 int (*fn)(void *arg, uint64_t start, uint64_t end), void *arg)
{
	uint64_t off = 0;
	int ret = 0;

	while (off < size && !ret) {
		off_t data = lseek(fd, off, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			break;		/* only a hole is left */
		if (data < 0)
			return -errno;
		if ((uint64_t)data >= size)
			break;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		if ((uint64_t)hole > size)
			hole = size;
		ret = fn(arg, data, hole);
		off = hole;
	}
	return ret;
}

uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
}

int parse_host_port(const char *s, char *host, size_t hlen, char *port, size_t plen)
{
	const char *colon, *h = s;
	size_t n;

	if (*s == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return -EINVAL;
		h = s + 1;
		n = end - h;
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		n = colon ? (size_t)(colon - s) : 0;
	}
	if (n >= hlen)
		return -EINVAL;
	memcpy(host, h, n);
	host[n] = 0;
	s = colon ? colon + 1 : s;
	if (!*s || strlen(s) >= plen || strspn(s, "0123456789") != strlen(s) || atoi(s) > 65535)
		return -EINVAL;
	strcpy(port, s);
	return 0;
}

ssize_t read_small_file(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		n = -errno;
	else
		buf[n] = 0;
	close(fd);
	return n;
}

/*
 * A /proc file made of records (a seq_file walked with an iterator, such as
 * /proc/PID/timers) gives about a page per read: read until EOF.
 */
ssize_t read_whole_file(const char *path, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	while (got < len - 1) {
		n = read(fd, buf + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			err = -errno;
		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	buf[got] = 0;
	return err ? err : (ssize_t)got;
}

/*
 * What pipe @fd holds, up to @cap bytes, copied with tee(2) so the pipe
 * keeps it: *@buf (malloc'd; NULL when empty), *@len.
 */
int pipe_peek_data(int fd, size_t cap, uint8_t **buf, size_t *len)
{
	int tmp[2], ret = 0;
	ssize_t n;

	*buf = NULL;
	*len = 0;
	if (pipe2(tmp, O_NONBLOCK | O_CLOEXEC))
		return -errno;
	if (fcntl(tmp[1], F_SETPIPE_SZ, cap) < 0) {
		ret = -errno;
		goto out;
	}
	n = tee(fd, tmp[1], cap, SPLICE_F_NONBLOCK);
	if (n < 0) {
		ret = errno == EAGAIN ? 0 : -errno;	/* EAGAIN: empty */
		goto out;
	}
	if (!n)
		goto out;
	*buf = malloc(n);
	ret = *buf ? read_full(tmp[0], *buf, n) : -ENOMEM;
	if (ret) {
		free(*buf);
		*buf = NULL;
	} else {
		*len = n;
	}
out:
	close(tmp[0]);
	close(tmp[1]);
	return ret;
}

DIR *opendirat(int dirfd, const char *name, int flags)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | flags);
	DIR *d;

	if (fd < 0)
		return NULL;
	d = fdopendir(fd);
	if (!d) {
		int err = errno;

		close(fd);
		errno = err;
	}
	return d;
}

uint32_t inet_csum_add(uint32_t sum, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (; len > 1; b += 2, len -= 2)
		sum += (uint32_t)b[0] << 8 | b[1];
	if (len)
		sum += (uint32_t)b[0] << 8;
	return sum;
}

uint16_t inet_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons(~sum & 0xffff);
}
