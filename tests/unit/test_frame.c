// SPDX-License-Identifier: MIT
/* Framing and page batch codec: round trips, lz4 choice, and hostile input. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/unit.h"
#include "transport/frame.h"

#define PG WIRE_PAGE_SIZE

static uint8_t frame_buf[FRAME_MAX];
static uint8_t pages[PB_MAX_DATA];
static uint8_t out[PB_MAX_DATA];

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	return xorshift64(&rng);
}

static void fill_random(uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = rnd() >> 11;
}

static void fill_text(uint8_t *p, size_t len)
{
	static const char txt[] = "the quick brown fox jumps over the lazy page server; ";
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = txt[(i + i / 97) % (sizeof(txt) - 1)];
}

/* Encode, parse the frame, parse the batch, decode: must give back the pages. */
static struct page_batch round_trip(uint32_t nr, const void *data)
{
	struct page_batch pb;
	struct frame f;
	ssize_t n, m;

	n = frame_put_pages(frame_buf, sizeof(frame_buf), 1234, 0x7f0000000000ull, nr, data);
	cr_assert_gt(n, 0);
	m = frame_parse(frame_buf, n, &f, NULL);
	cr_assert_eq(m, n);
	cr_assert_eq(f.type, FRAME_PAGES);
	cr_assert_eq(page_batch_parse(f.payload, f.len, &pb, NULL), 0);
	cr_assert_eq(pb.pid, 1234);
	cr_assert_eq(pb.vaddr, 0x7f0000000000ull);
	cr_assert_eq(pb.nr_pages, nr);
	memset(out, 0xee, sizeof(out));
	cr_assert_eq(page_batch_decode(&pb, out, sizeof(out), NULL), 0);
	if (data)
		cr_assert_eq(memcmp(out, data, nr * PG), 0);
	return pb;
}

Test(frame, header_round_trip)
{
	struct frame f;
	uint8_t b[16];

	cr_assert_eq(frame_put_header(b, FRAME_ROUND_END, 5), FRAME_HDR);
	memset(b + FRAME_HDR, 7, 5);
	cr_assert_eq(frame_parse(b, 13, &f, NULL), 13);
	cr_assert_eq(f.type, FRAME_ROUND_END);
	cr_assert_eq(f.len, 5);
	cr_assert_eq(f.payload, b + FRAME_HDR);
	/* Little endian on the wire whatever the host. */
	cr_assert_eq(b[0], FRAME_ROUND_END);
	cr_assert_eq(b[4], 5);
}

Test(frame, truncated_frames_need_more)
{
	struct frame f;
	ssize_t n, i;

	fill_random(pages, PG);
	n = frame_put_pages(frame_buf, sizeof(frame_buf), 1, 0, 1, pages);
	cr_assert_gt(n, 0);
	for (i = 0; i < n; i++)
		cr_assert_eq(frame_parse(frame_buf, i, &f, NULL), 0, "prefix %zd", i);
	cr_assert_eq(frame_parse(frame_buf, n, &f, NULL), n);
}

Test(frame, huge_lengths_rejected_from_the_header)
{
	static const uint32_t types[] = {
		FRAME_HELLO, FRAME_HELLO_REPLY, FRAME_ROUND_BEGIN, FRAME_PAGES, FRAME_FILE_HEAD,
		FRAME_FILE_DATA, FRAME_ROUND_END, FRAME_ROUND_ACK, FRAME_RESTORE_RESULT,
		FRAME_PING,
	};
	const char *why = NULL;
	struct frame f;
	uint8_t b[FRAME_HDR];
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		frame_put_header(b, types[i], frame_max_len(types[i]) + 1);
		cr_assert_eq(frame_parse(b, sizeof(b), &f, &why), -EMSGSIZE);
		cr_assert_not_null(why);
		frame_put_header(b, types[i], 0xffffffffu);
		cr_assert_eq(frame_parse(b, sizeof(b), &f, NULL), -EMSGSIZE);
	}
	cr_assert_leq(frame_max_len(FRAME_PAGES) + FRAME_HDR, FRAME_MAX);
}

/* ping and commit (docs/handover.md) are empty frames; nothing after commit is known. */
Test(frame, ping_and_commit_are_empty)
{
	static const struct { uint32_t type; const char *name; } t[] = {
		{ FRAME_PING, "ping" }, { FRAME_COMMIT, "commit" },
	};
	uint8_t b[FRAME_HDR + 1] = { 0 };
	const char *why;
	struct frame f;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		why = NULL;
		cr_assert(frame_type_known(t[i].type));
		cr_assert_eq(frame_max_len(t[i].type), 0);
		cr_assert_str_eq(frame_type_name(t[i].type), t[i].name);
		frame_put_header(b, t[i].type, 0);
		cr_assert_eq(frame_parse(b, FRAME_HDR, &f, NULL), FRAME_HDR);
		cr_assert_eq(f.type, t[i].type);
		cr_assert_eq(f.len, 0);
		frame_put_header(b, t[i].type, 1);
		cr_assert_eq(frame_parse(b, sizeof(b), &f, &why), -EMSGSIZE);
		cr_assert_not_null(why);
	}
	cr_assert_not(frame_type_known(FRAME_TYPE_MAX + 1));
}

Test(frame, bad_types_rejected)
{
	static const uint32_t bad[] = { 0, FRAME_TYPE_MAX + 1, 0x16030100, 0xffffffff };
	const char *why = NULL;
	struct frame f;
	uint8_t b[FRAME_HDR];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		frame_put_header(b, bad[i], 0);
		cr_assert_eq(frame_parse(b, sizeof(b), &f, &why), -EPROTO);
		cr_assert_str_eq(why, "unknown frame type");
	}
}

Test(frame, short_page_batch_rejected)
{
	struct frame f;
	uint8_t b[FRAME_HDR + PB_HDR];

	frame_put_header(b, FRAME_PAGES, PB_HDR - 1);
	cr_assert_eq(frame_parse(b, sizeof(b), &f, NULL), -EMSGSIZE);
	frame_put_header(b, FRAME_FILE_DATA, 0);
	cr_assert_eq(frame_parse(b, sizeof(b), &f, NULL), -EMSGSIZE);
}

Test(frame, control_message_round_trip)
{
	RoundAck ack = ROUND_ACK__INIT, *got;
	const char *why = NULL;
	struct frame f;
	ssize_t n;

	ack.round = 7;
	ack.ok = false;
	ack.error = "No space left on device";
	n = frame_put_msg(frame_buf, sizeof(frame_buf), FRAME_ROUND_ACK, &ack.base);
	cr_assert_gt(n, FRAME_HDR);
	cr_assert_eq(frame_parse(frame_buf, n, &f, NULL), n);
	got = frame_unpack_msg(&f, &round_ack__descriptor, &why);
	cr_assert_not_null(got);
	cr_assert_eq(got->round, 7);
	cr_assert_eq(got->ok, false);
	cr_assert_str_eq(got->error, "No space left on device");
	round_ack__free_unpacked(got, NULL);
	/* The frame's type must match the message asked for. */
	cr_assert_null(frame_unpack_msg(&f, &hello__descriptor, &why));
	cr_assert_str_eq(why, "unexpected frame type");
}

Test(frame, control_message_too_big_for_frame)
{
	FileHead fh = FILE_HEAD__INIT;
	static char name[FRAME_CTL_MAX + 10];

	memset(name, 'a', sizeof(name) - 1);
	fh.name = name;
	fh.size = 1;
	cr_assert_eq(frame_put_msg(frame_buf, sizeof(frame_buf), FRAME_FILE_HEAD, &fh.base),
		     -EMSGSIZE);
}

Test(frame, garbage_protobuf_rejected)
{
	const char *why = NULL;
	struct frame f = { .type = FRAME_HELLO, .payload = frame_buf };
	int i;

	for (i = 0; i < 2000; i++) {
		void *m;

		f.len = rnd() % 64;
		fill_random(frame_buf, f.len);
		m = frame_unpack_msg(&f, &hello__descriptor, &why);
		if (m)	/* rarely valid by chance: then it must be a whole hello */
			hello__free_unpacked(m, NULL);
	}
	f.len = 0;	/* required fields missing */
	cr_assert_null(frame_unpack_msg(&f, &hello__descriptor, &why));
}

Test(codec, random_pages_go_raw)
{
	struct page_batch pb;

	fill_random(pages, PB_MAX_DATA);
	pb = round_trip(PB_MAX_PAGES, pages);
	cr_assert_eq(pb.codec, CODEC_RAW);
	cr_assert_eq(pb.data_len, PB_MAX_DATA);
}

Test(codec, text_pages_go_lz4)
{
	struct page_batch pb;

	fill_text(pages, 16 * PG);
	pb = round_trip(16, pages);
	cr_assert_eq(pb.codec, CODEC_LZ4);
	cr_assert_lt(pb.data_len, 16 * PG / 2);
}

Test(codec, zero_batch_carries_no_data)
{
	struct page_batch pb = round_trip(PB_MAX_PAGES, NULL);

	cr_assert_eq(pb.codec, CODEC_ZERO);
	cr_assert_eq(pb.data_len, 0);
	cr_assert_eq(pb.raw_len, 0);
}

/* Post-copy: REMOTE pages go as address and count only, and never decode into data. */
Test(codec, remote_batch_carries_no_data)
{
	struct page_batch pb;
	const char *why = NULL;
	struct frame f;
	ssize_t n;

	n = frame_put_remote(frame_buf, sizeof(frame_buf), 77, 0x7f0000004000ull, PB_MAX_PAGES);
	cr_assert_eq(n, FRAME_HDR + PB_HDR);
	cr_assert_eq(frame_parse(frame_buf, n, &f, NULL), n);
	cr_assert_eq(f.type, FRAME_PAGES);
	cr_assert_eq(page_batch_parse(f.payload, f.len, &pb, NULL), 0);
	cr_assert_eq(pb.codec, CODEC_REMOTE);
	cr_assert_eq(pb.pid, 77);
	cr_assert_eq(pb.nr_pages, PB_MAX_PAGES);
	cr_assert_eq(pb.raw_len, 0);
	cr_assert_eq(pb.data_len, 0);
	cr_assert_eq(page_batch_decode(&pb, out, sizeof(out), &why), -EBADMSG);
	cr_assert_not_null(why);
	cr_assert_eq(frame_put_remote(frame_buf, sizeof(frame_buf), 1, 0, 0), -EINVAL);
	cr_assert_eq(frame_put_remote(frame_buf, sizeof(frame_buf), 1, 0, PB_MAX_PAGES + 1),
		     -EINVAL);
	cr_assert_eq(frame_put_remote(frame_buf, sizeof(frame_buf), 1, 4095, 1), -EINVAL);
	cr_assert_eq(frame_put_remote(frame_buf, FRAME_HDR + PB_HDR - 1, 1, 0, 1), -ENOBUFS);
}

/* The post-copy control frames: bounded like every control frame, typed. */
Test(frame, postcopy_control_frames)
{
	PageRequest rq = PAGE_REQUEST__INIT, *rq2;
	PostcopyDone pd = POSTCOPY_DONE__INIT, *pd2;
	const char *why = NULL;
	struct frame f;
	ssize_t n;

	cr_assert_str_eq(frame_type_name(FRAME_PAGE_REQUEST), "page_request");
	cr_assert_str_eq(frame_type_name(FRAME_POSTCOPY_DONE), "postcopy_done");
	cr_assert_eq(frame_max_len(FRAME_PAGE_REQUEST), FRAME_CTL_MAX);
	cr_assert_eq(frame_max_len(FRAME_POSTCOPY_DONE), FRAME_CTL_MAX);
	rq.pid = 9;
	rq.vaddr = 0x1000;
	rq.nr_pages = 3;
	n = frame_put_msg(frame_buf, sizeof(frame_buf), FRAME_PAGE_REQUEST, &rq.base);
	cr_assert_gt(n, 0);
	cr_assert_eq(frame_parse(frame_buf, n, &f, NULL), n);
	rq2 = frame_unpack_msg(&f, &page_request__descriptor, NULL);
	cr_assert_not_null(rq2);
	cr_assert_eq(rq2->pid, 9);
	cr_assert_eq(rq2->vaddr, 0x1000);
	cr_assert_eq(rq2->nr_pages, 3);
	page_request__free_unpacked(rq2, NULL);
	/* read as the other post-copy frame: refused */
	cr_assert_null(frame_unpack_msg(&f, &postcopy_done__descriptor, &why));
	cr_assert_str_eq(why, "unexpected frame type");
	pd.ok = true;
	pd.has_pages = pd.has_faults = true;
	pd.pages = 1 << 20;
	pd.faults = 12;
	n = frame_put_msg(frame_buf, sizeof(frame_buf), FRAME_POSTCOPY_DONE, &pd.base);
	cr_assert_gt(n, 0);
	cr_assert_eq(frame_parse(frame_buf, n, &f, NULL), n);
	pd2 = frame_unpack_msg(&f, &postcopy_done__descriptor, NULL);
	cr_assert_not_null(pd2);
	cr_assert(pd2->ok);
	cr_assert_eq(pd2->pages, 1 << 20);
	cr_assert_eq(pd2->faults, 12);
	postcopy_done__free_unpacked(pd2, NULL);
	/* a page_request without its required fields is garbage */
	frame_put_header(frame_buf, FRAME_PAGE_REQUEST, 2);
	frame_buf[FRAME_HDR] = 0x08;	/* field 1, varint */
	frame_buf[FRAME_HDR + 1] = 0x09;
	cr_assert_eq(frame_parse(frame_buf, FRAME_HDR + 2, &f, NULL), FRAME_HDR + 2);
	cr_assert_null(frame_unpack_msg(&f, &page_request__descriptor, &why));
	/* longer than a control frame may be */
	frame_put_header(frame_buf, FRAME_POSTCOPY_DONE, FRAME_CTL_MAX + 1);
	cr_assert_eq(frame_parse(frame_buf, sizeof(frame_buf), &f, &why), -EMSGSIZE);
}

Test(codec, page_is_zero)
{
	memset(pages, 0, PG);
	cr_assert(page_is_zero(pages));
	pages[PG - 1] = 1;
	cr_assert_not(page_is_zero(pages));
	pages[PG - 1] = 0;
	pages[0] = 0x80;
	cr_assert_not(page_is_zero(pages));
}

Test(codec, encoder_refuses_bad_batches)
{
	fill_random(pages, PG);
	cr_assert_eq(frame_put_pages(frame_buf, sizeof(frame_buf), 1, 0, 0, pages), -EINVAL);
	cr_assert_eq(frame_put_pages(frame_buf, sizeof(frame_buf), 1, 0, PB_MAX_PAGES + 1, NULL),
		     -EINVAL);
	cr_assert_eq(frame_put_pages(frame_buf, sizeof(frame_buf), 1, 100, 1, pages), -EINVAL);
	cr_assert_eq(frame_put_pages(frame_buf, FRAME_HDR + PB_HDR + 10, 1, 0, 1, pages),
		     -ENOBUFS);
}

/* Patch one header field of a valid batch and expect a rejection. */
static void expect_bad_batch(uint32_t off, uint64_t val, int width)
{
	uint8_t b[FRAME_HDR + PB_HDR + PG];
	struct page_batch pb;
	const char *why = NULL;
	ssize_t n;

	fill_random(pages, PG);
	n = frame_put_pages(b, sizeof(b), 1, 0x1000, 1, pages);
	cr_assert_gt(n, 0);
	if (width == 8)
		put_le64(b + FRAME_HDR + off, val);
	else
		put_le32(b + FRAME_HDR + off, val);
	cr_assert_eq(page_batch_parse(b + FRAME_HDR, n - FRAME_HDR, &pb, &why), -EBADMSG,
		     "offset %u value %llu", off, (unsigned long long)val);
	cr_assert_not_null(why);
}

Test(codec, bad_batch_headers_rejected)
{
	expect_bad_batch(0, 0x1001, 8);			/* unaligned vaddr */
	expect_bad_batch(0, UINT64_MAX & ~4095ull, 8);	/* wraps */
	expect_bad_batch(8, 0, 4);			/* pid 0 */
	expect_bad_batch(12, 0, 4);			/* no pages */
	expect_bad_batch(12, 2, 4);			/* count vs data */
	expect_bad_batch(12, 100000, 4);		/* too many pages */
	expect_bad_batch(16, 0, 4);			/* codec 0 */
	expect_bad_batch(16, 9, 4);			/* unknown codec */
	expect_bad_batch(16, CODEC_ZERO, 4);		/* zero with data */
	expect_bad_batch(16, CODEC_REMOTE, 4);		/* remote with data */
	expect_bad_batch(16, CODEC_REMOTE + 1, 4);	/* the next unknown codec */
	expect_bad_batch(16, CODEC_LZ4, 4);		/* "lz4" as big as raw */
	expect_bad_batch(20, PG - 1, 4);		/* raw_len mismatch */
}

Test(codec, corrupt_lz4_rejected)
{
	struct page_batch pb;
	struct frame f;
	const char *why = NULL;
	ssize_t n;
	int i, bad = 0;

	for (i = 0; i < 200; i++) {
		fill_text(pages, 8 * PG);
		n = frame_put_pages(frame_buf, sizeof(frame_buf), 1, 0, 8, pages);
		cr_assert_gt(n, 0);
		cr_assert_eq(frame_parse(frame_buf, n, &f, NULL), n);
		cr_assert_eq(page_batch_parse(f.payload, f.len, &pb, NULL), 0);
		cr_assert_eq(pb.codec, CODEC_LZ4);
		/* Flip bytes of the compressed stream. */
		frame_buf[FRAME_HDR + PB_HDR + rnd() % pb.data_len] ^= 1 + rnd() % 255;
		frame_buf[FRAME_HDR + PB_HDR + rnd() % pb.data_len] ^= 1 + rnd() % 255;
		/* Never past the buffer, never a wrong length: either fails or decodes fully. */
		if (page_batch_decode(&pb, out, pb.raw_len, &why))
			bad++;
	}
	cr_assert_gt(bad, 0);
}

Test(codec, truncated_lz4_rejected)
{
	struct page_batch pb;
	struct frame f;
	ssize_t n;

	fill_text(pages, 8 * PG);
	n = frame_put_pages(frame_buf, sizeof(frame_buf), 1, 0, 8, pages);
	cr_assert_eq(frame_parse(frame_buf, n, &f, NULL), n);
	cr_assert_eq(page_batch_parse(f.payload, f.len, &pb, NULL), 0);
	pb.data_len /= 2;
	cr_assert_eq(page_batch_decode(&pb, out, sizeof(out), NULL), -EBADMSG);
	cr_assert_eq(page_batch_decode(&pb, out, 10, NULL), -ENOBUFS);
}

/* A stream of random bytes: the parser consumes only what it validated. */
Test(hostile, random_garbage_streams)
{
	static uint8_t buf[1 << 16];
	struct page_batch pb;
	struct frame f;
	ssize_t n;
	size_t off;
	int i, bad = 0;

	for (i = 0; i < 2000; i++) {
		size_t len = 1 + rnd() % sizeof(buf);

		fill_random(buf, len);
		/* Sometimes a plausible header, to get past the first check. */
		if (i % 2)
			frame_put_header(buf, 1 + rnd() % FRAME_TYPE_MAX, rnd() % 300);
		for (off = 0; off < len; off += n) {
			n = frame_parse(buf + off, len - off, &f, NULL);
			if (n <= 0) {
				bad += n < 0;
				break;
			}
			cr_assert_leq(off + n, len);
			cr_assert_leq(f.len, frame_max_len(f.type));
			if (f.type == FRAME_PAGES && !page_batch_parse(f.payload, f.len, &pb, NULL))
				page_batch_decode(&pb, out, sizeof(out), NULL);
		}
	}
	cr_assert_gt(bad, 0);
}

Test(hostile, random_page_batches)
{
	static uint8_t b[PB_HDR + 4096];
	struct page_batch pb;
	int i, ok = 0;

	for (i = 0; i < 20000; i++) {
		uint32_t len = PB_HDR + rnd() % 4096;

		fill_random(b, len);
		/* Keep some fields sane so deeper checks get exercised. */
		put_le32(b + 12, 1 + rnd() % 2);
		put_le32(b + 16, 1 + rnd() % 3);
		if (page_batch_parse(b, len, &pb, NULL))
			continue;
		ok++;
		cr_assert_leq(pb.data_len, len - PB_HDR);
		page_batch_decode(&pb, out, sizeof(out), NULL);
	}
	(void)ok;
}
