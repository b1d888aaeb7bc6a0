/* SPDX-License-Identifier: MIT */
/*
 * Little-endian integers in byte buffers: image files and wire frames are
 * little endian whatever the host, and the buffers need not be aligned.
 */
#ifndef FERRY_ENDIAN_H
#define FERRY_ENDIAN_H

#include <stdint.h>

static inline void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = v;
	p[1] = v >> 8;
	p[2] = v >> 16;
	p[3] = v >> 24;
}

static inline uint32_t get_le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, v);
	put_le32(p + 4, v >> 32);
}

static inline uint64_t get_le64(const uint8_t *p)
{
	return get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

#endif
