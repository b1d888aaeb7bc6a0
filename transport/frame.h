/* SPDX-License-Identifier: MIT */
/*
 * Wire framing (docs/wire-protocol.md). Every frame is
 *
 *	u32 type, u32 length (little endian), then length bytes of payload.
 *
 * Control payloads are protobuf (proto/wire.proto); a page batch payload is a
 * fixed 24-byte header plus its data. Parsing is pure (no I/O, no
 * allocation except protobuf unpacking) so it can be fed hostile bytes.
 */
#ifndef FERRY_FRAME_H
#define FERRY_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <protobuf-c/protobuf-c.h>

#include "common/endian.h"
#include "wire.pb-c.h"

#define WIRE_VERSION		3	/* 2: ping frames; 3: held restore, commit (handover.md) */
#define WIRE_PAGE_SIZE		4096u

enum frame_type {
	FRAME_HELLO		= 1,
	FRAME_HELLO_REPLY	= 2,
	FRAME_ROUND_BEGIN	= 3,
	FRAME_PAGES		= 4,
	FRAME_FILE_HEAD		= 5,
	FRAME_FILE_DATA		= 6,
	FRAME_ROUND_END		= 7,
	FRAME_ROUND_ACK		= 8,
	FRAME_RESTORE_RESULT	= 9,
	FRAME_PING		= 10,	/* empty keepalive, either way, any time */
	FRAME_COMMIT		= 11,	/* empty: source -> page server, run the held restore */
	FRAME_PAGE_REQUEST	= 12,	/* post-copy: page server -> source, pages wanted first */
	FRAME_POSTCOPY_DONE	= 13,	/* post-copy: page server -> source, every page is in */
	FRAME_TYPE_MAX		= FRAME_POSTCOPY_DONE,
};

enum page_codec {
	CODEC_RAW	= 1,
	CODEC_LZ4	= 2,
	CODEC_ZERO	= 3,	/* no data: nr_pages zero pages */
	CODEC_REMOTE	= 4,	/* no data: post-copy, still at the source (PE_REMOTE) */
};

#define FRAME_HDR		8u
#define PB_HDR			24u	/* vaddr u64, pid, nr_pages, codec, raw_len u32 */
#define PB_MAX_PAGES		256u
#define PB_MAX_DATA		(PB_MAX_PAGES * WIRE_PAGE_SIZE)
#define FRAME_CTL_MAX		4096u	/* any protobuf control payload */
#define FILE_CHUNK		(1u << 20)	/* file bytes per FILE_DATA frame */
#define FILE_MAX		(16u << 20)	/* largest file a round may carry */
/* Largest payload of any type, and the largest whole frame. */
#define FRAME_MAX_PAYLOAD	(PB_HDR + PB_MAX_DATA)
#define FRAME_MAX		(FRAME_HDR + FRAME_MAX_PAYLOAD)

struct frame {
	uint32_t type;
	uint32_t len;
	const uint8_t *payload;
};

/* A page batch as parsed from a FRAME_PAGES payload (data points into it). */
struct page_batch {
	uint64_t vaddr;
	uint32_t pid;
	uint32_t nr_pages;
	uint32_t codec;
	uint32_t raw_len;
	const uint8_t *data;
	uint32_t data_len;
};

const char *frame_type_name(uint32_t type);
bool frame_type_known(uint32_t type);
/* Largest payload allowed for @type (0 for ping and for an unknown type). */
uint32_t frame_max_len(uint32_t type);

/*
 * Check an 8-byte header: 0, or -EPROTO (bad type) / -EMSGSIZE (length out
 * of bounds for the type) with *why set to a reason for the log.
 */
int frame_check_header(const uint8_t *hdr, uint32_t *type, uint32_t *len, const char **why);

/*
 * Parse one frame at the start of buf: bytes consumed (> 0), 0 if buf holds
 * only part of a frame, or -errno (see frame_check_header) for a bad one.
 */
ssize_t frame_parse(const void *buf, size_t len, struct frame *f, const char **why);

/* Write a header: returns FRAME_HDR. */
size_t frame_put_header(uint8_t *dst, uint32_t type, uint32_t len);

/* Header + packed message into dst: total bytes, or -EMSGSIZE if cap is short. */
ssize_t frame_put_msg(uint8_t *dst, size_t cap, uint32_t type, const ProtobufCMessage *msg);

/* Unpack a control frame (its type must match d): NULL with *why on garbage. */
void *frame_unpack_msg(const struct frame *f, const ProtobufCMessageDescriptor *d,
		       const char **why);

/*
 * Encode one page batch frame. data NULL: nr_pages zero pages (no data).
 * Otherwise lz4 is used only when it saves at least 1/16 of the bytes,
 * else the pages go raw (lz4 is not even tried on a batch of 16 pages or
 * more whose first, middle and last pages do not compress). cap must be
 * >= FRAME_HDR + PB_HDR (+ nr * page size with data). Returns the frame
 * size or -errno.
 */
ssize_t frame_put_pages(uint8_t *dst, size_t cap, uint32_t pid, uint64_t vaddr,
			uint32_t nr_pages, const void *data);

/* A batch of nr_pages REMOTE pages (no data, post-copy): the frame size or -errno. */
ssize_t frame_put_remote(uint8_t *dst, size_t cap, uint32_t pid, uint64_t vaddr,
			 uint32_t nr_pages);

/* Validate a FRAME_PAGES payload: 0 or -EBADMSG with *why. */
int page_batch_parse(const uint8_t *payload, uint32_t len, struct page_batch *pb,
		     const char **why);

/* Expand a parsed batch into out (pb->raw_len bytes, cap >= that): 0 or -EBADMSG (REMOTE too). */
int page_batch_decode(const struct page_batch *pb, void *out, size_t cap, const char **why);

/* True if the page (WIRE_PAGE_SIZE bytes, 8-byte aligned) is all zero. */
bool page_is_zero(const void *page);

#endif
