// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the wire frame decoder (transport/frame.h) over an
 * arbitrary byte stream, as a receiver meets it: frame_parse() frame after
 * frame; page batches through page_batch_parse() and page_batch_decode(),
 * then encoded again; control frames unpacked, packed and unpacked again.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/frame.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t frame_buf[FRAME_MAX];
static uint8_t pages_out[PB_MAX_DATA];

static const ProtobufCMessageDescriptor *ctl_desc(uint32_t type)
{
	switch (type) {
	case FRAME_HELLO:
		return &hello__descriptor;
	case FRAME_HELLO_REPLY:
		return &hello_reply__descriptor;
	case FRAME_ROUND_BEGIN:
		return &round_begin__descriptor;
	case FRAME_FILE_HEAD:
		return &file_head__descriptor;
	case FRAME_ROUND_END:
		return &round_end__descriptor;
	case FRAME_ROUND_ACK:
		return &round_ack__descriptor;
	case FRAME_RESTORE_RESULT:
		return &restore_result__descriptor;
	case FRAME_PAGE_REQUEST:
		return &page_request__descriptor;
	case FRAME_POSTCOPY_DONE:
		return &postcopy_done__descriptor;
	}
	return NULL;
}

/* The decoded pages, encoded again by frame_put_pages(), decode to the same bytes. */
static void reencode(const struct page_batch *pb, const uint8_t *pages)
{
	struct page_batch pb2;
	struct frame f;
	ssize_t n;

	n = frame_put_pages(frame_buf, sizeof(frame_buf), pb->pid, pb->vaddr, pb->nr_pages,
			    pb->codec == CODEC_ZERO ? NULL : pages);
	FUZZ_ASSERT(n > 0);
	FUZZ_ASSERT(frame_parse(frame_buf, n, &f, NULL) == n);
	FUZZ_ASSERT(f.type == FRAME_PAGES);
	FUZZ_ASSERT(page_batch_parse(f.payload, f.len, &pb2, NULL) == 0);
	FUZZ_ASSERT(pb2.pid == pb->pid && pb2.vaddr == pb->vaddr &&
		    pb2.nr_pages == pb->nr_pages && pb2.raw_len == pb->raw_len);
	FUZZ_ASSERT(page_batch_decode(&pb2, pages_out, sizeof(pages_out), NULL) == 0);
	FUZZ_ASSERT(!memcmp(pages_out, pages, pb->raw_len));
}

static void check_pages(const struct frame *f)
{
	const char *why = NULL;
	struct page_batch pb;
	uint8_t *out;
	int ret;

	if (page_batch_parse(f->payload, f->len, &pb, &why)) {
		FUZZ_ASSERT(why);
		return;
	}
	FUZZ_ASSERT(pb.pid && pb.nr_pages && pb.nr_pages <= PB_MAX_PAGES);
	FUZZ_ASSERT(pb.vaddr % WIRE_PAGE_SIZE == 0);
	FUZZ_ASSERT(pb.data + pb.data_len == f->payload + f->len);
	if (pb.codec == CODEC_ZERO || pb.codec == CODEC_REMOTE)
		FUZZ_ASSERT(!pb.raw_len && !pb.data_len);
	else
		FUZZ_ASSERT(pb.raw_len == pb.nr_pages * WIRE_PAGE_SIZE);
	/* an exact-size heap buffer: ASan sees a byte written past it */
	out = malloc(pb.raw_len ? pb.raw_len : 1);
	FUZZ_ASSERT(out);
	if (pb.raw_len)
		FUZZ_ASSERT(page_batch_decode(&pb, out, pb.raw_len - 1, NULL) == -ENOBUFS);
	why = NULL;
	ret = page_batch_decode(&pb, out, pb.raw_len, &why);
	/* REMOTE pages have no data to decode (post-copy): always refused */
	if (pb.codec == CODEC_REMOTE)
		FUZZ_ASSERT(ret == -EBADMSG && why);
	else if (ret)
		FUZZ_ASSERT(ret == -EBADMSG && why && pb.codec == CODEC_LZ4);
	else
		reencode(&pb, out);
	free(out);
}

static void check_control(const struct frame *f, const ProtobufCMessageDescriptor *d)
{
	const ProtobufCMessageDescriptor *wrong;
	const char *why = NULL;
	ProtobufCMessage *m, *m2;
	struct frame f2;
	ssize_t n;

	m = frame_unpack_msg(f, d, &why);
	if (!m) {
		FUZZ_ASSERT(why);
	} else {
		n = frame_put_msg(frame_buf, sizeof(frame_buf), f->type, m);
		if (n > 0 && !fuzz_has_tag0(m)) {
			FUZZ_ASSERT(frame_parse(frame_buf, n, &f2, NULL) == n);
			FUZZ_ASSERT(f2.type == f->type);
			m2 = frame_unpack_msg(&f2, d, NULL);
			FUZZ_ASSERT(m2);
			protobuf_c_message_free_unpacked(m2, NULL);
		} else if (n < 0) {
			FUZZ_ASSERT(n == -EMSGSIZE);
		}
		protobuf_c_message_free_unpacked(m, NULL);
	}
	wrong = d == &hello__descriptor ? &round_end__descriptor : &hello__descriptor;
	why = NULL;
	FUZZ_ASSERT(!frame_unpack_msg(f, wrong, &why) && why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor *d;
	size_t pos = 0;

	while (pos < size) {
		const char *why = NULL;
		uint32_t type, len;
		struct frame f;
		ssize_t n;

		n = frame_parse(data + pos, size - pos, &f, &why);
		if (n < 0) {
			FUZZ_ASSERT((n == -EPROTO || n == -EMSGSIZE) && why);
			FUZZ_ASSERT(frame_check_header(data + pos, &type, &len, NULL) == n);
			break;
		}
		if (n == 0) {
			/* only a partial frame left */
			FUZZ_ASSERT(size - pos < FRAME_HDR || size - pos < FRAME_HDR + f.len);
			break;
		}
		FUZZ_ASSERT((size_t)n == FRAME_HDR + f.len && (size_t)n <= size - pos);
		FUZZ_ASSERT(f.payload == data + pos + FRAME_HDR);
		FUZZ_ASSERT(frame_type_known(f.type) && f.len <= frame_max_len(f.type));
		FUZZ_ASSERT(frame_type_name(f.type));
		d = ctl_desc(f.type);
		if (f.type == FRAME_PAGES)
			check_pages(&f);
		else if (d)
			check_control(&f, d);
		else
			FUZZ_ASSERT((f.type == FRAME_FILE_DATA && f.len) ||
				    ((f.type == FRAME_PING || f.type == FRAME_COMMIT) && !f.len));
		pos += n;
	}
	return 0;
}
