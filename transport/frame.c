// SPDX-License-Identifier: MIT
/* Framing and page batch codec: pure functions over byte buffers. */
#include <errno.h>
#include <string.h>
#include <lz4.h>

#include "transport/frame.h"

static const char *const type_names[] = {
	[FRAME_HELLO]		= "hello",
	[FRAME_HELLO_REPLY]	= "hello_reply",
	[FRAME_ROUND_BEGIN]	= "round_begin",
	[FRAME_PAGES]		= "pages",
	[FRAME_FILE_HEAD]	= "file_head",
	[FRAME_FILE_DATA]	= "file_data",
	[FRAME_ROUND_END]	= "round_end",
	[FRAME_ROUND_ACK]	= "round_ack",
	[FRAME_RESTORE_RESULT]	= "restore_result",
	[FRAME_PING]		= "ping",
	[FRAME_COMMIT]		= "commit",
	[FRAME_PAGE_REQUEST]	= "page_request",
	[FRAME_POSTCOPY_DONE]	= "postcopy_done",
};

/* Which protobuf message each control type carries. */
static const ProtobufCMessageDescriptor *const type_desc[] = {
	[FRAME_HELLO]		= &hello__descriptor,
	[FRAME_HELLO_REPLY]	= &hello_reply__descriptor,
	[FRAME_ROUND_BEGIN]	= &round_begin__descriptor,
	[FRAME_FILE_HEAD]	= &file_head__descriptor,
	[FRAME_ROUND_END]	= &round_end__descriptor,
	[FRAME_ROUND_ACK]	= &round_ack__descriptor,
	[FRAME_RESTORE_RESULT]	= &restore_result__descriptor,
	[FRAME_PAGE_REQUEST]	= &page_request__descriptor,
	[FRAME_POSTCOPY_DONE]	= &postcopy_done__descriptor,
};

const char *frame_type_name(uint32_t type)
{
	if (type == 0 || type > FRAME_TYPE_MAX)
		return "unknown";
	return type_names[type];
}

bool frame_type_known(uint32_t type)
{
	return type >= FRAME_HELLO && type <= FRAME_TYPE_MAX;
}

uint32_t frame_max_len(uint32_t type)
{
	switch (type) {
	case FRAME_PAGES:
		return FRAME_MAX_PAYLOAD;
	case FRAME_FILE_DATA:
		return FILE_CHUNK;
	case FRAME_HELLO ... FRAME_ROUND_BEGIN:
	case FRAME_FILE_HEAD:
	case FRAME_ROUND_END ... FRAME_RESTORE_RESULT:
	case FRAME_PAGE_REQUEST ... FRAME_POSTCOPY_DONE:
		return FRAME_CTL_MAX;
	}
	return 0;
}

static uint32_t frame_min_len(uint32_t type)
{
	if (type == FRAME_PAGES)
		return PB_HDR;
	if (type == FRAME_FILE_DATA)
		return 1;
	return 0;
}

int frame_check_header(const uint8_t *hdr, uint32_t *type, uint32_t *len, const char **why)
{
	uint32_t t = get_le32(hdr), l = get_le32(hdr + 4);
	const char *dummy;

	if (!why)
		why = &dummy;
	if (!frame_type_known(t)) {
		*why = "unknown frame type";
		return -EPROTO;
	}
	if (l > frame_max_len(t)) {
		*why = "frame longer than its type allows";
		return -EMSGSIZE;
	}
	if (l < frame_min_len(t)) {
		*why = "frame shorter than its type needs";
		return -EMSGSIZE;
	}
	*type = t;
	*len = l;
	return 0;
}

ssize_t frame_parse(const void *buf, size_t len, struct frame *f, const char **why)
{
	const uint8_t *p = buf;
	int ret;

	if (len < FRAME_HDR)
		return 0;
	ret = frame_check_header(p, &f->type, &f->len, why);
	if (ret)
		return ret;
	if (len - FRAME_HDR < f->len)
		return 0;
	f->payload = p + FRAME_HDR;
	return FRAME_HDR + f->len;
}

size_t frame_put_header(uint8_t *dst, uint32_t type, uint32_t len)
{
	put_le32(dst, type);
	put_le32(dst + 4, len);
	return FRAME_HDR;
}

ssize_t frame_put_msg(uint8_t *dst, size_t cap, uint32_t type, const ProtobufCMessage *msg)
{
	size_t len = protobuf_c_message_get_packed_size(msg);

	if (len > frame_max_len(type) || cap < FRAME_HDR + len)
		return -EMSGSIZE;
	frame_put_header(dst, type, len);
	protobuf_c_message_pack(msg, dst + FRAME_HDR);
	return FRAME_HDR + len;
}

void *frame_unpack_msg(const struct frame *f, const ProtobufCMessageDescriptor *d,
		       const char **why)
{
	const char *dummy;
	void *msg;

	if (!why)
		why = &dummy;
	if (f->type > FRAME_TYPE_MAX || type_desc[f->type] != d) {
		*why = "unexpected frame type";
		return NULL;
	}
	msg = protobuf_c_message_unpack(d, NULL, f->len, f->payload);
	if (!msg)
		*why = "malformed protobuf payload";
	return msg;
}

bool page_is_zero(const void *page)
{
	const uint64_t *p = page;
	uint64_t acc = 0;
	size_t i;

	/* Eight words at a time: cheap next to lz4, exits early on data. */
	for (i = 0; i < WIRE_PAGE_SIZE / 8; i += 8) {
		acc |= p[i] | p[i + 1] | p[i + 2] | p[i + 3] |
		       p[i + 4] | p[i + 5] | p[i + 6] | p[i + 7];
		if (acc)
			return false;
	}
	return true;
}

static void put_pb_header(uint8_t *p, uint32_t pid, uint64_t vaddr, uint32_t nr,
			  uint32_t codec, uint32_t raw_len)
{
	put_le64(p, vaddr);
	put_le32(p + 8, pid);
	put_le32(p + 12, nr);
	put_le32(p + 16, codec);
	put_le32(p + 20, raw_len);
}

/*
 * lz4 gives up only at the end of a batch it cannot shrink: on incompressible
 * memory that is a whole pass for nothing. A few sample pages decide: if none
 * of them shrinks by a sixteenth, the batch goes raw without a try.
 */
#define LZ4_SAMPLE_MIN	16	/* smaller batches are just tried */

static bool page_compresses(const uint8_t *page)
{
	char out[WIRE_PAGE_SIZE];

	return LZ4_compress_default((const char *)page, out, WIRE_PAGE_SIZE,
				    WIRE_PAGE_SIZE - WIRE_PAGE_SIZE / 16) > 0;
}

static bool worth_lz4(const uint8_t *data, uint32_t nr_pages)
{
	if (nr_pages < LZ4_SAMPLE_MIN)
		return true;
	return page_compresses(data) ||
	       page_compresses(data + nr_pages / 2 * WIRE_PAGE_SIZE) ||
	       page_compresses(data + (nr_pages - 1) * WIRE_PAGE_SIZE);
}

/* A batch without data: zero or REMOTE pages. */
static ssize_t put_nodata(uint8_t *dst, size_t cap, uint32_t pid, uint64_t vaddr, uint32_t nr,
			  uint32_t codec)
{
	if (cap < FRAME_HDR + PB_HDR)
		return -ENOBUFS;
	frame_put_header(dst, FRAME_PAGES, PB_HDR);
	put_pb_header(dst + FRAME_HDR, pid, vaddr, nr, codec, 0);
	return FRAME_HDR + PB_HDR;
}

ssize_t frame_put_remote(uint8_t *dst, size_t cap, uint32_t pid, uint64_t vaddr,
			 uint32_t nr_pages)
{
	if (!nr_pages || nr_pages > PB_MAX_PAGES || vaddr % WIRE_PAGE_SIZE)
		return -EINVAL;
	return put_nodata(dst, cap, pid, vaddr, nr_pages, CODEC_REMOTE);
}

ssize_t frame_put_pages(uint8_t *dst, size_t cap, uint32_t pid, uint64_t vaddr,
			uint32_t nr_pages, const void *data)
{
	uint32_t raw_len = nr_pages * WIRE_PAGE_SIZE, limit;
	uint8_t *body = dst + FRAME_HDR + PB_HDR;
	int clen;

	if (!nr_pages || nr_pages > PB_MAX_PAGES || vaddr % WIRE_PAGE_SIZE)
		return -EINVAL;
	if (!data)
		return put_nodata(dst, cap, pid, vaddr, nr_pages, CODEC_ZERO);
	if (cap < FRAME_HDR + PB_HDR + raw_len)
		return -ENOBUFS;
	/* Worth it only if it saves a sixteenth: else raw is cheaper to take. */
	limit = raw_len - raw_len / 16;
	clen = worth_lz4(data, nr_pages) ?
	       LZ4_compress_default(data, (char *)body, raw_len, limit) : 0;
	if (clen > 0) {
		frame_put_header(dst, FRAME_PAGES, PB_HDR + clen);
		put_pb_header(dst + FRAME_HDR, pid, vaddr, nr_pages, CODEC_LZ4, raw_len);
		return FRAME_HDR + PB_HDR + clen;
	}
	memcpy(body, data, raw_len);
	frame_put_header(dst, FRAME_PAGES, PB_HDR + raw_len);
	put_pb_header(dst + FRAME_HDR, pid, vaddr, nr_pages, CODEC_RAW, raw_len);
	return FRAME_HDR + PB_HDR + raw_len;
}

static int check_lengths(const struct page_batch *pb, const char **why)
{
	uint32_t want = pb->nr_pages * WIRE_PAGE_SIZE;

	switch (pb->codec) {
	case CODEC_RAW:
		if (pb->raw_len != want || pb->data_len != want) {
			*why = "raw batch length does not match its page count";
			return -EBADMSG;
		}
		return 0;
	case CODEC_LZ4:
		if (pb->raw_len != want || !pb->data_len || pb->data_len >= want) {
			*why = "lz4 batch length does not match its page count";
			return -EBADMSG;
		}
		return 0;
	case CODEC_ZERO:
	case CODEC_REMOTE:
		if (pb->raw_len || pb->data_len) {
			*why = "zero or remote batch carries data";
			return -EBADMSG;
		}
		return 0;
	}
	*why = "unknown page codec";
	return -EBADMSG;
}

int page_batch_parse(const uint8_t *payload, uint32_t len, struct page_batch *pb,
		     const char **why)
{
	const char *dummy;

	if (!why)
		why = &dummy;
	if (len < PB_HDR || len > FRAME_MAX_PAYLOAD) {
		*why = "page batch size out of bounds";
		return -EBADMSG;
	}
	pb->vaddr = get_le64(payload);
	pb->pid = get_le32(payload + 8);
	pb->nr_pages = get_le32(payload + 12);
	pb->codec = get_le32(payload + 16);
	pb->raw_len = get_le32(payload + 20);
	pb->data = payload + PB_HDR;
	pb->data_len = len - PB_HDR;
	if (!pb->pid) {
		*why = "page batch for pid 0";
		return -EBADMSG;
	}
	if (!pb->nr_pages || pb->nr_pages > PB_MAX_PAGES) {
		*why = "page batch count out of bounds";
		return -EBADMSG;
	}
	if (pb->vaddr % WIRE_PAGE_SIZE ||
	    pb->vaddr > UINT64_MAX - (uint64_t)pb->nr_pages * WIRE_PAGE_SIZE) {
		*why = "page batch address unaligned or wrapping";
		return -EBADMSG;
	}
	return check_lengths(pb, why);
}

int page_batch_decode(const struct page_batch *pb, void *out, size_t cap, const char **why)
{
	const char *dummy;
	int n;

	if (!why)
		why = &dummy;
	if (cap < pb->raw_len) {
		*why = "decode buffer too small";
		return -ENOBUFS;
	}
	switch (pb->codec) {
	case CODEC_RAW:
		memcpy(out, pb->data, pb->raw_len);
		return 0;
	case CODEC_ZERO:
		return 0;
	case CODEC_LZ4:
		n = LZ4_decompress_safe((const char *)pb->data, out, pb->data_len, pb->raw_len);
		if (n != (int)pb->raw_len) {
			*why = "corrupt lz4 data";
			return -EBADMSG;
		}
		return 0;
	}
	*why = "unknown page codec";
	return -EBADMSG;
}
