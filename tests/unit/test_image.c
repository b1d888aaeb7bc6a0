// SPDX-License-Identifier: MIT
/* Image files and pagemaps: round trips, and hostile or truncated input refused cleanly. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/endian.h"
#include "common/util.h"
#include "proto/image.h"
#include "tests/unit/unit.h"

#define PG	PAGE_SIZE
#define BASE	0x7f0000000000ULL
#define PRESENT	PE_FLAGS__PE_PRESENT
#define PARENT	PE_FLAGS__PE_PARENT
#define ZERO	PE_FLAGS__PE_ZERO
#define REMOTE	PE_FLAGS__PE_REMOTE

/* A pm that a failed parse must have cleared. */
static void poison(struct pagemap *pm)
{
	memset(pm, 0xa5, sizeof(*pm));
}

static void expect_cleared(const struct pagemap *pm, const char *what)
{
	cr_expect_eq(pm->nr, 0, "%s: nr %zu left", what, pm->nr);
	cr_expect_null(pm->ext, "%s: ext left", what);
}

/* ---- img_buf / img_reader ---- */

Test(image, buf_round_trip_of_several_messages)
{
	static const uint32_t threads[] = { 4242, 4243, 70000 };
	static uint8_t blob[300];
	InventoryEntry inv = INVENTORY_ENTRY__INIT, *inv2;
	PstreeEntry ps = PSTREE_ENTRY__INIT, *ps2;
	PipeDataEntry pd = PIPE_DATA_ENTRY__INIT, *pd2;
	PagemapHead ph = PAGEMAP_HEAD__INIT, *ph2;
	struct img_reader r;
	struct img_buf b;
	size_t i, want_len;
	void *m;

	inv.round = 7;
	inv.final = 1;
	inv.root_pid = 4242;
	inv.migration_id = "mig-abc";
	inv.page_size = 4096;
	inv.has_created_ns = 1;
	inv.created_ns = 0x123456789abcdefULL;
	ps.pid = 4242;
	ps.ppid = 1;
	ps.pgid = 4242;
	ps.sid = 17;
	ps.n_threads = ARRAY_SIZE(threads);
	ps.threads = (uint32_t *)threads;
	for (i = 0; i < sizeof(blob); i++)
		blob[i] = i * 7 + 1;
	pd.pipe_id = 99;
	pd.data.len = sizeof(blob);
	pd.data.data = blob;
	ph.pid = 4242;
	ph.pages_bytes = 1ULL << 40;

	cr_assert_eq(img_buf_init(&b), 0);
	cr_assert_eq(b.len, 4);
	cr_assert_eq(memcmp(b.data, "FRY1", 4), 0, "magic is \"FRY1\" on disk");
	cr_assert_eq(img_buf_add(&b, &inv.base), 0);
	cr_assert_eq(img_buf_add(&b, &ps.base), 0);
	cr_assert_eq(img_buf_add(&b, &pd.base), 0);
	cr_assert_eq(img_buf_add(&b, &ph.base), 0);
	want_len = 4 + 4 * 4 + protobuf_c_message_get_packed_size(&inv.base) +
		   protobuf_c_message_get_packed_size(&ps.base) +
		   protobuf_c_message_get_packed_size(&pd.base) +
		   protobuf_c_message_get_packed_size(&ph.base);
	cr_assert_eq(b.len, want_len);
	cr_assert_leq(b.len, b.cap);

	cr_assert_eq(img_reader_init(&r, "several.img", b.data, b.len), 0);
	cr_assert_eq(img_read_msg(&r, &inventory_entry__descriptor, &m), 1);
	inv2 = m;
	cr_expect_eq(inv2->round, 7);
	cr_expect(inv2->final);
	cr_expect_eq(inv2->root_pid, 4242);
	cr_expect_str_eq(inv2->migration_id, "mig-abc");
	cr_expect_eq(inv2->page_size, 4096);
	cr_expect(inv2->has_created_ns);
	cr_expect_eq(inv2->created_ns, 0x123456789abcdefULL);
	protobuf_c_message_free_unpacked(m, NULL);

	cr_assert_eq(img_read_msg(&r, &pstree_entry__descriptor, &m), 1);
	ps2 = m;
	cr_expect_eq(ps2->pid, 4242);
	cr_expect_eq(ps2->sid, 17);
	cr_assert_eq(ps2->n_threads, ARRAY_SIZE(threads));
	for (i = 0; i < ARRAY_SIZE(threads); i++)
		cr_expect_eq(ps2->threads[i], threads[i]);
	protobuf_c_message_free_unpacked(m, NULL);

	cr_assert_eq(img_read_msg(&r, &pipe_data_entry__descriptor, &m), 1);
	pd2 = m;
	/* 300 bytes of data: the length prefix needs its second byte */
	cr_expect_eq(pd2->pipe_id, 99);
	cr_assert_eq(pd2->data.len, sizeof(blob));
	cr_expect_eq(memcmp(pd2->data.data, blob, sizeof(blob)), 0);
	protobuf_c_message_free_unpacked(m, NULL);

	cr_assert_eq(img_read_msg(&r, &pagemap_head__descriptor, &m), 1);
	ph2 = m;
	cr_expect_eq(ph2->pid, 4242);
	cr_expect_eq(ph2->pages_bytes, 1ULL << 40);
	protobuf_c_message_free_unpacked(m, NULL);

	/* a clean end, and it stays the end */
	cr_expect_eq(r.pos, r.len);
	cr_expect_eq(img_read_msg(&r, &pagemap_head__descriptor, &m), 0);
	cr_expect_eq(img_read_msg(&r, &pagemap_head__descriptor, &m), 0);
	img_buf_free(&b);
	cr_expect_null(b.data);
	cr_expect_eq(b.len, 0);
}

Test(image, length_prefix_is_little_endian)
{
	static uint8_t blob[1000];
	PipeDataEntry pd = PIPE_DATA_ENTRY__INIT;
	struct img_buf b;
	size_t sz;

	pd.pipe_id = 1;
	pd.data.len = sizeof(blob);
	pd.data.data = blob;
	sz = protobuf_c_message_get_packed_size(&pd.base);
	cr_assert_gt(sz, 255);
	cr_assert_eq(img_buf_init(&b), 0);
	cr_assert_eq(img_buf_add(&b, &pd.base), 0);
	cr_expect_eq(b.data[4], sz & 0xff);
	cr_expect_eq(b.data[5], (sz >> 8) & 0xff);
	cr_expect_eq(b.data[6], 0);
	cr_expect_eq(b.data[7], 0);
	img_buf_free(&b);
}

Test(image, buf_grows_over_many_messages)
{
	PagemapEntry e = PAGEMAP_ENTRY__INIT;
	struct img_reader r;
	struct img_buf b;
	uint32_t i, n = 5000;
	void *m;

	cr_assert_eq(img_buf_init(&b), 0);
	for (i = 0; i < n; i++) {
		e.vaddr = BASE + (uint64_t)i * PG;
		e.nr_pages = i + 1;
		e.flags = ZERO;
		cr_assert_eq(img_buf_add(&b, &e.base), 0);
	}
	cr_assert_eq(img_reader_init(&r, "many.img", b.data, b.len), 0);
	for (i = 0; i < n; i++) {
		cr_assert_eq(img_read_msg(&r, &pagemap_entry__descriptor, &m), 1);
		cr_assert_eq(((PagemapEntry *)m)->nr_pages, i + 1);
		cr_assert_eq(((PagemapEntry *)m)->vaddr, BASE + (uint64_t)i * PG);
		protobuf_c_message_free_unpacked(m, NULL);
	}
	cr_assert_eq(img_read_msg(&r, &pagemap_entry__descriptor, &m), 0);
	img_buf_free(&b);
}

Test(image, magic_only_is_an_empty_image)
{
	struct img_reader r;
	struct img_buf b;
	void *m = (void *)1;

	cr_assert_eq(img_buf_init(&b), 0);
	cr_assert_eq(img_reader_init(&r, "empty.img", b.data, b.len), 0);
	cr_expect_eq(img_read_msg(&r, &inventory_entry__descriptor, &m), 0);
	img_buf_free(&b);
}

Test(image, reader_rejects_bad_magic)
{
	static const char *const bad[] = { "FRY2", "1YRF", "\0\0\0\0", "\x46\x52\x59\x31" "x" };
	static const size_t lens[] = { 4, 4, 4, 5 };
	struct img_reader r;
	uint8_t buf[8];
	size_t i;

	for (i = 0; i < 3; i++)
		cr_expect_eq(img_reader_init(&r, "bad.img", bad[i], lens[i]), -EINVAL,
			     "case %zu", i);
	/* the real magic followed by a lone byte passes the header check only */
	cr_expect_eq(img_reader_init(&r, "odd.img", bad[3], lens[3]), 0);
	/* every single-bit flip of the magic is refused */
	for (i = 0; i < 32; i++) {
		put_le32(buf, IMG_MAGIC ^ (1u << i));
		cr_expect_eq(img_reader_init(&r, "flip.img", buf, 4), -EINVAL, "bit %zu", i);
	}
}

Test(image, reader_rejects_shorter_than_magic)
{
	struct img_reader r;
	uint8_t buf[4];
	size_t len;

	put_le32(buf, IMG_MAGIC);
	for (len = 0; len < 4; len++)
		cr_expect_eq(img_reader_init(&r, "short.img", buf, len), -EINVAL, "%zu bytes", len);
	/* a NULL buffer of length 0 (an empty file) must not be dereferenced */
	cr_expect_eq(img_reader_init(&r, "null.img", NULL, 0), -EINVAL);
}

/* A well formed image with one inventory message, then @extra bytes appended. */
static size_t one_inventory(uint8_t *out, size_t cap)
{
	InventoryEntry inv = INVENTORY_ENTRY__INIT;
	struct img_buf b;
	size_t len;

	inv.round = 1;
	inv.migration_id = "x";
	inv.page_size = 4096;
	cr_assert_eq(img_buf_init(&b), 0);
	cr_assert_eq(img_buf_add(&b, &inv.base), 0);
	cr_assert_leq(b.len, cap);
	memcpy(out, b.data, b.len);
	len = b.len;
	img_buf_free(&b);
	return len;
}

/* Read messages until the reader stops: the last return value, messages freed. */
static int read_all(const void *data, size_t len, const ProtobufCMessageDescriptor *d,
		    int *nr_msgs)
{
	struct img_reader r;
	void *m;
	int ret;

	*nr_msgs = 0;
	ret = img_reader_init(&r, "hostile.img", data, len);
	if (ret)
		return ret;
	while ((ret = img_read_msg(&r, d, &m)) == 1) {
		protobuf_c_message_free_unpacked(m, NULL);
		++*nr_msgs;
	}
	return ret;
}

Test(image, reader_rejects_truncated_length_prefix)
{
	uint8_t buf[64];
	size_t len, k;
	int n;

	len = one_inventory(buf, sizeof(buf));
	for (k = 1; k < 4; k++) {
		memset(buf + len, 0, k);
		cr_expect_eq(read_all(buf, len + k, &inventory_entry__descriptor, &n), -EINVAL,
			     "%zu header bytes", k);
		cr_expect_eq(n, 1, "the whole message before it is read");
	}
}

Test(image, reader_rejects_entry_past_the_end)
{
	uint8_t buf[64];
	size_t len, full, cut;
	int n;

	len = one_inventory(buf, sizeof(buf));
	/* every prefix of a valid two-message image that cuts the second message */
	memcpy(buf + len, buf + 4, len - 4);
	full = 2 * len - 4;
	for (cut = len + 4; cut < full; cut++) {
		cr_expect_eq(read_all(buf, cut, &inventory_entry__descriptor, &n), -EINVAL,
			     "cut at %zu of %zu", cut, full);
		cr_expect_eq(n, 1);
	}
	cr_expect_eq(read_all(buf, full, &inventory_entry__descriptor, &n), 0);
	cr_expect_eq(n, 2);

	/* a length of 2^32-1 announced with a few bytes behind it */
	put_le32(buf + 4, 0xffffffffu);
	cr_expect_eq(read_all(buf, 16, &inventory_entry__descriptor, &n), -EINVAL);
	/* one byte more than there is */
	put_le32(buf + 4, 9);
	cr_expect_eq(read_all(buf, 16, &inventory_entry__descriptor, &n), -EINVAL);
}

Test(image, entry_size_limit)
{
	PipeDataEntry pd = PIPE_DATA_ENTRY__INIT;
	struct img_reader r;
	struct img_buf b;
	uint8_t *data, *big;
	size_t sz;
	void *m;
	int n;

	/* a message of exactly IMG_MAX_ENTRY bytes is fine, one byte more is not */
	data = calloc(1, IMG_MAX_ENTRY);
	big = calloc(1, IMG_MAX_ENTRY + 16);
	cr_assert(data && big);
	pd.pipe_id = 1;
	pd.data.data = data;
	pd.data.len = IMG_MAX_ENTRY - 16;
	while ((sz = protobuf_c_message_get_packed_size(&pd.base)) < IMG_MAX_ENTRY)
		pd.data.len++;
	cr_assert_eq(sz, IMG_MAX_ENTRY);
	cr_assert_eq(img_buf_init(&b), 0);
	cr_assert_eq(img_buf_add(&b, &pd.base), 0);
	cr_assert_eq(read_all(b.data, b.len, &pipe_data_entry__descriptor, &n), 0);
	cr_expect_eq(n, 1);
	img_buf_free(&b);

	pd.data.len++;
	cr_assert_eq(protobuf_c_message_get_packed_size(&pd.base), IMG_MAX_ENTRY + 1);
	cr_assert_eq(img_buf_init(&b), 0);
	cr_expect_eq(img_buf_add(&b, &pd.base), -E2BIG);
	cr_expect_eq(b.len, 4, "a refused message leaves the buffer as it was");
	img_buf_free(&b);

	/* the reader refuses an oversized message even when it is whole and valid */
	put_le32(big, IMG_MAGIC);
	put_le32(big + 4, IMG_MAX_ENTRY + 1);
	cr_assert_eq(protobuf_c_message_pack(&pd.base, big + 8), IMG_MAX_ENTRY + 1);
	cr_assert_eq(img_reader_init(&r, "huge.img", big, IMG_MAX_ENTRY + 9), 0);
	cr_expect_eq(img_read_msg(&r, &pipe_data_entry__descriptor, &m), -EINVAL);
	put_le32(big + 4, 0x80000000u);
	cr_assert_eq(img_reader_init(&r, "huge.img", big, 16), 0);
	cr_expect_eq(img_read_msg(&r, &pipe_data_entry__descriptor, &m), -EINVAL);
	free(big);
	free(data);
}

Test(image, reader_rejects_malformed_protobuf)
{
	static const struct {
		const char *what;
		size_t len;
		uint8_t bytes[12];
	} bad[] = {
		{ "bad varint", 3, { 0xff, 0xff, 0xff } },
		{ "empty message (required fields missing)", 0, { 0 } },
		{ "only some required fields", 2, { 0x08, 0x01 } },
		{ "field number 0", 2, { 0x00, 0x01 } },
		{ "string longer than the entry", 4, { 0x22, 0x10, 'a', 'b' } },
		{ "wire type 7", 2, { 0x0f, 0x01 } },
		{ "varint of 11 bytes", 12, { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					     0xff, 0xff, 0x01 } },
		{ "truncated fixed64", 5, { 0x31, 1, 2, 3, 4 } },
	};
	uint8_t buf[64];
	size_t i;
	int n;

	put_le32(buf, IMG_MAGIC);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		put_le32(buf + 4, bad[i].len);
		memcpy(buf + 8, bad[i].bytes, bad[i].len);
		cr_expect_eq(read_all(buf, 8 + bad[i].len, &inventory_entry__descriptor, &n),
			     -EINVAL, "%s", bad[i].what);
		cr_expect_eq(n, 0, "%s", bad[i].what);
	}
}

/* ---- pagemap_parse ---- */

struct raw_pe {
	uint64_t vaddr;
	uint32_t nr_pages;
	uint32_t flags;
	bool has_off;
	uint64_t off;
};

/* Written as is: the entries may be anything pagemap_build would never write. */
static void raw_pagemap(struct img_buf *b, bool head, uint32_t pid, const struct raw_pe *e,
			size_t n)
{
	PagemapHead h = PAGEMAP_HEAD__INIT;
	size_t i;

	cr_assert_eq(img_buf_init(b), 0);
	if (head) {
		h.pid = pid;
		h.pages_bytes = 0;
		cr_assert_eq(img_buf_add(b, &h.base), 0);
	}
	for (i = 0; i < n; i++) {
		PagemapEntry pe = PAGEMAP_ENTRY__INIT;

		pe.vaddr = e[i].vaddr;
		pe.nr_pages = e[i].nr_pages;
		pe.flags = e[i].flags;
		pe.has_off = e[i].has_off;
		pe.off = e[i].off;
		cr_assert_eq(img_buf_add(b, &pe.base), 0);
	}
}

static int parse_raw(const struct raw_pe *e, size_t n, uint64_t pages_size, struct pagemap *pm)
{
	struct img_buf b;
	int ret;

	raw_pagemap(&b, true, 77, e, n);
	poison(pm);
	ret = pagemap_parse("pagemap-77.img", b.data, b.len, pages_size, pm);
	img_buf_free(&b);
	return ret;
}

#define expect_rejected(what, pages_size, ...) do {					\
	static const struct raw_pe ents_[] = { __VA_ARGS__ };				\
	struct pagemap pm_;								\
											\
	cr_expect_eq(parse_raw(ents_, ARRAY_SIZE(ents_), pages_size, &pm_), -EINVAL,	\
		     "%s: not refused", what);						\
	expect_cleared(&pm_, what);							\
} while (0)

#define expect_accepted(what, pages_size, ...) do {					\
	static const struct raw_pe ents_[] = { __VA_ARGS__ };				\
	struct pagemap pm_;								\
	size_t i_;									\
											\
	cr_assert_eq(parse_raw(ents_, ARRAY_SIZE(ents_), pages_size, &pm_), 0,		\
		     "%s: refused", what);						\
	cr_assert_eq(pm_.pid, 77);							\
	cr_assert_eq(pm_.nr, ARRAY_SIZE(ents_), "%s: %zu entries", what, pm_.nr);	\
	for (i_ = 0; i_ < pm_.nr; i_++) {						\
		cr_expect_eq(pm_.ext[i_].vaddr, ents_[i_].vaddr, "%s [%zu]", what, i_);	\
		cr_expect_eq(pm_.ext[i_].nr_pages, ents_[i_].nr_pages);		\
		cr_expect_eq(pm_.ext[i_].flags, ents_[i_].flags);			\
		cr_expect_eq(pm_.ext[i_].off, ents_[i_].has_off ? ents_[i_].off : 0);	\
	}										\
	pagemap_free(&pm_);								\
	cr_expect_null(pm_.ext);							\
	cr_expect_eq(pm_.nr, 0);							\
} while (0)

Test(pagemap, accepts_valid_and_gives_back_its_entries)
{
	expect_accepted("mixed", 16 * PG,
			{ BASE, 4, PRESENT, true, 0 },
			{ BASE + 4 * PG, 2, ZERO, false, 0 },		/* touching */
			{ BASE + 6 * PG, 10, PARENT, false, 0 },
			{ BASE + 100 * PG, 12, PRESENT, true, 4 * PG },	/* to the end */
			{ TASK_SIZE_MAX - 2 * PG, 2, ZERO, false, 0 });	/* to the top */
	expect_accepted("first page", 0, { 0, 1, PARENT, false, 0 });
	/* the pages file may end with a partial page after the data */
	expect_accepted("unaligned file size", PG + 100, { BASE, 1, PRESENT, true, 0 });
	expect_accepted("present, empty file irrelevant for others", 0,
			{ BASE, 1, ZERO, false, 0 }, { BASE + PG, 1, PARENT, false, 0 });
	/* PRESENT entries may share data (dedup of identical runs) */
	expect_accepted("shared offsets", PG,
			{ BASE, 1, PRESENT, true, 0 }, { BASE + 2 * PG, 1, PRESENT, true, 0 });
	expect_accepted("max nr_pages", 0, { 0, UINT32_MAX, ZERO, false, 0 });
	/* REMOTE (post-copy): no data here, so no offset and no pages file needed */
	expect_accepted("remote", 0,
			{ BASE, 3, REMOTE, false, 0 }, { BASE + 3 * PG, 1, ZERO, false, 0 },
			{ BASE + 4 * PG, 2, REMOTE, false, 0 });
	expect_accepted("remote to the top", 0, { TASK_SIZE_MAX - PG, 1, REMOTE, false, 0 });
}

Test(pagemap, accepts_many_entries)
{
	static struct raw_pe e[1000];
	struct pagemap pm;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(e); i++) {
		e[i].vaddr = BASE + i * 3 * PG;
		e[i].nr_pages = 1 + i % 2;
		e[i].flags = i % 3 == 0 ? PRESENT : i % 3 == 1 ? ZERO : PARENT;
		e[i].has_off = e[i].flags == PRESENT;
		e[i].off = e[i].has_off ? i * 2 * PG : 0;
	}
	cr_assert_eq(parse_raw(e, ARRAY_SIZE(e), ARRAY_SIZE(e) * 2 * PG, &pm), 0);
	cr_assert_eq(pm.nr, ARRAY_SIZE(e));
	for (i = 0; i < pm.nr; i++) {
		cr_assert_eq(pm.ext[i].vaddr, e[i].vaddr);
		cr_assert_eq(pm.ext[i].nr_pages, e[i].nr_pages);
		cr_assert_eq(pm.ext[i].flags, e[i].flags);
		cr_assert_eq(pm.ext[i].off, e[i].off);
	}
	pagemap_free(&pm);
}

Test(pagemap, rejects_unsorted_and_overlapping)
{
	expect_rejected("descending", 0,
			{ BASE + 8 * PG, 1, ZERO, false, 0 }, { BASE, 1, ZERO, false, 0 });
	expect_rejected("same address twice", 0,
			{ BASE, 1, ZERO, false, 0 }, { BASE, 1, PARENT, false, 0 });
	expect_rejected("overlap by one page", 0,
			{ BASE, 4, ZERO, false, 0 }, { BASE + 3 * PG, 4, PARENT, false, 0 });
	expect_rejected("inside the one before", 0,
			{ BASE, 16, ZERO, false, 0 }, { BASE + 3 * PG, 1, PARENT, false, 0 });
	expect_rejected("a bad pair after good ones", 0,
			{ BASE, 1, ZERO, false, 0 }, { BASE + PG, 1, ZERO, false, 0 },
			{ BASE + 4 * PG, 1, ZERO, false, 0 }, { BASE + 2 * PG, 4, ZERO, false, 0 });
	expect_rejected("wraps below an earlier entry", 0,
			{ BASE, 1, ZERO, false, 0 }, { 0, 1, ZERO, false, 0 });
}

Test(pagemap, rejects_bad_addresses_and_sizes)
{
	expect_rejected("unaligned vaddr", 0, { BASE + 1, 1, ZERO, false, 0 });
	expect_rejected("vaddr off by half a page", 0, { BASE + PG / 2, 1, ZERO, false, 0 });
	expect_rejected("unaligned after good", 0,
			{ BASE, 1, ZERO, false, 0 }, { BASE + 2 * PG + 8, 1, ZERO, false, 0 });
	expect_rejected("zero pages", 0, { BASE, 0, ZERO, false, 0 });
	expect_rejected("zero pages after good", 0,
			{ BASE, 1, ZERO, false, 0 }, { BASE + PG, 0, ZERO, false, 0 });
	expect_rejected("vaddr at TASK_SIZE_MAX", 0, { TASK_SIZE_MAX, 1, ZERO, false, 0 });
	expect_rejected("one page over TASK_SIZE_MAX", 0,
			{ TASK_SIZE_MAX - PG, 2, ZERO, false, 0 });
	expect_rejected("kernel address", 0, { 0xffffffff81000000ULL, 1, ZERO, false, 0 });
	expect_rejected("non-canonical", 0, { 0x0000800000000000ULL, 1, PARENT, false, 0 });
	expect_rejected("wraps around", 0, { 0xfffffffffffff000ULL, 2, ZERO, false, 0 });
	expect_rejected("wraps around far", 0,
			{ 0xfffffff000000000ULL, UINT32_MAX, ZERO, false, 0 });
	expect_rejected("last page of 2^64", 0, { 0xfffffffffffff000ULL, 1, ZERO, false, 0 });
	expect_rejected("huge count from a valid address", 0, { BASE, UINT32_MAX, ZERO, false, 0 });
}

Test(pagemap, rejects_bad_flags)
{
	expect_rejected("no flag", 0, { BASE, 1, 0, false, 0 });
	expect_rejected("present and parent", PG, { BASE, 1, PRESENT | PARENT, true, 0 });
	expect_rejected("parent and zero", 0, { BASE, 1, PARENT | ZERO, false, 0 });
	expect_rejected("all three", PG, { BASE, 1, PRESENT | PARENT | ZERO, true, 0 });
	expect_rejected("unknown flag 16", 0, { BASE, 1, 16, false, 0 });
	expect_rejected("remote and present", PG, { BASE, 1, REMOTE | PRESENT, true, 0 });
	expect_rejected("remote and parent", 0, { BASE, 1, REMOTE | PARENT, false, 0 });
	expect_rejected("remote and zero", 0, { BASE, 1, REMOTE | ZERO, false, 0 });
	expect_rejected("remote plus unknown", 0, { BASE, 1, REMOTE | 0x10000, false, 0 });
	expect_rejected("top bit", 0, { BASE, 1, 0x80000000u, false, 0 });
	expect_rejected("known plus unknown", 0, { BASE, 1, ZERO | 0x100, false, 0 });
	expect_rejected("all bits", PG, { BASE, 1, 0xffffffffu, true, 0 });
	expect_rejected("bad flags after good", 0,
			{ BASE, 1, ZERO, false, 0 }, { BASE + PG, 1, 3, false, 0 });
}

Test(pagemap, rejects_present_outside_its_pages_file)
{
	expect_rejected("present without off", 16 * PG, { BASE, 1, PRESENT, false, 0 });
	expect_rejected("empty pages file", 0, { BASE, 1, PRESENT, true, 0 });
	expect_rejected("one page past the end", 4 * PG, { BASE, 5, PRESENT, true, 0 });
	expect_rejected("starts at the end", 4 * PG, { BASE, 1, PRESENT, true, 4 * PG });
	expect_rejected("starts past the end", 4 * PG, { BASE, 1, PRESENT, true, 8 * PG });
	expect_rejected("ends one byte short of a page", 2 * PG - 1,
			{ BASE, 2, PRESENT, true, 0 });
	expect_rejected("unaligned off", 16 * PG, { BASE, 1, PRESENT, true, 100 });
	expect_rejected("off one byte into a page", 16 * PG, { BASE, 1, PRESENT, true, PG + 1 });
	expect_rejected("off + len wraps", UINT64_MAX,
			{ BASE, 2, PRESENT, true, 0xfffffffffffff000ULL });
	expect_rejected("off huge, file huge", UINT64_MAX - PG + 1,
			{ BASE, 2, PRESENT, true, UINT64_MAX - PG + 1 });
	expect_rejected("second entry past the end", 2 * PG,
			{ BASE, 1, PRESENT, true, 0 }, { BASE + PG, 2, PRESENT, true, PG });
}

Test(pagemap, rejects_missing_or_bad_head)
{
	static const struct raw_pe e = { BASE, 1, ZERO, false, 0 };
	struct pagemap pm;
	struct img_buf b;
	uint8_t raw[16];

	/* magic only */
	cr_assert_eq(img_buf_init(&b), 0);
	poison(&pm);
	cr_expect_eq(pagemap_parse("p.img", b.data, b.len, 0, &pm), -EINVAL);
	expect_cleared(&pm, "magic only");
	img_buf_free(&b);

	/* nothing at all, a short file, a bad magic */
	poison(&pm);
	cr_expect_eq(pagemap_parse("p.img", NULL, 0, 0, &pm), -EINVAL);
	expect_cleared(&pm, "empty file");
	put_le32(raw, IMG_MAGIC);
	poison(&pm);
	cr_expect_eq(pagemap_parse("p.img", raw, 3, 0, &pm), -EINVAL);
	expect_cleared(&pm, "3 bytes");
	raw_pagemap(&b, true, 5, &e, 1);
	b.data[0] ^= 1;
	poison(&pm);
	cr_expect_eq(pagemap_parse("p.img", b.data, b.len, 0, &pm), -EINVAL);
	expect_cleared(&pm, "bad magic");
	img_buf_free(&b);

	/* a head that is not a head: garbage, truncated */
	put_le32(raw + 4, 2);
	raw[8] = 0xff;
	raw[9] = 0xff;
	poison(&pm);
	cr_expect_eq(pagemap_parse("p.img", raw, 10, 0, &pm), -EINVAL);
	expect_cleared(&pm, "garbage head");
	raw_pagemap(&b, true, 5, &e, 1);
	poison(&pm);
	cr_expect_eq(pagemap_parse("p.img", b.data, 6, 0, &pm), -EINVAL);
	expect_cleared(&pm, "truncated head");
	img_buf_free(&b);

	/* entries and no head: the first entry must not pass for the head */
	{
		static const struct raw_pe two[] = { { BASE, 3, ZERO, false, 0 },
						     { BASE + 0x10000, 1, ZERO, false, 0 } };

		raw_pagemap(&b, false, 0, two, 2);
		poison(&pm);
		cr_expect_eq(pagemap_parse("p.img", b.data, b.len, 0, &pm), -EINVAL);
		expect_cleared(&pm, "entries without a head");
		img_buf_free(&b);
	}
}

Test(pagemap, rejects_bad_entry_bytes)
{
	static const struct raw_pe e[] = {
		{ BASE, 1, ZERO, false, 0 }, { BASE + PG, 1, PARENT, false, 0 },
	};
	struct pagemap pm;
	struct img_buf b;
	size_t cut;

	raw_pagemap(&b, true, 5, e, ARRAY_SIZE(e));
	/* every truncation inside the entries: refused, nothing kept */
	for (cut = b.len - 1; cut > 4; cut--) {
		int ret;

		poison(&pm);
		ret = pagemap_parse("p.img", b.data, cut, 0, &pm);
		if (ret == 0) {
			/* a cut exactly between two messages is a shorter valid pagemap */
			cr_expect_lt(pm.nr, ARRAY_SIZE(e));
			pagemap_free(&pm);
			continue;
		}
		cr_expect_eq(ret, -EINVAL, "cut at %zu", cut);
		expect_cleared(&pm, "truncated");
	}
	img_buf_free(&b);

	/* an entry of length 0: its required fields are missing */
	raw_pagemap(&b, true, 5, e, 1);
	cr_assert_leq(b.len + 4, b.cap);
	put_le32(b.data + b.len, 0);
	b.len += 4;
	poison(&pm);
	cr_expect_eq(pagemap_parse("p.img", b.data, b.len, 0, &pm), -EINVAL);
	expect_cleared(&pm, "empty entry");
	img_buf_free(&b);
}

Test(pagemap, build_then_parse_round_trip)
{
	struct pagemap pm = { .pid = 31337 }, back;
	struct img_buf b;
	uint64_t va = BASE, off = 0;
	uint64_t rng = 0x9e3779b97f4a7c15ULL;
	size_t i;

	pm.nr = 777;
	pm.ext = calloc(pm.nr, sizeof(*pm.ext));
	cr_assert_not_null(pm.ext);
	for (i = 0; i < pm.nr; i++) {
		xorshift64(&rng);
		va += (rng % 3) * PG;		/* sometimes touching, sometimes a gap */
		pm.ext[i].vaddr = va;
		pm.ext[i].nr_pages = 1 + (rng >> 8) % 300;
		pm.ext[i].flags = 1u << ((rng >> 20) % 3);
		if (pm.ext[i].flags == PRESENT) {
			pm.ext[i].off = off;
			off += pm.ext[i].nr_pages * PG;
		}
		va += pm.ext[i].nr_pages * PG;
	}
	cr_assert_eq(pagemap_build(&pm, off, &b), 0);
	cr_assert_eq(pagemap_parse("rt.img", b.data, b.len, off, &back), 0);
	cr_assert_eq(back.pid, pm.pid);
	cr_assert_eq(back.nr, pm.nr);
	for (i = 0; i < pm.nr; i++) {
		cr_assert_eq(back.ext[i].vaddr, pm.ext[i].vaddr, "[%zu]", i);
		cr_assert_eq(back.ext[i].nr_pages, pm.ext[i].nr_pages, "[%zu]", i);
		cr_assert_eq(back.ext[i].flags, pm.ext[i].flags, "[%zu]", i);
		cr_assert_eq(back.ext[i].off, pm.ext[i].off, "[%zu]", i);
	}
	pagemap_free(&back);
	/* the same pagemap with one page less of pages file: the last PRESENT run is out */
	if (off) {
		poison(&back);
		cr_expect_eq(pagemap_parse("rt.img", b.data, b.len, off - 1, &back), -EINVAL);
		expect_cleared(&back, "short pages file");
	}
	img_buf_free(&b);

	/* an empty pagemap */
	free(pm.ext);
	pm.ext = NULL;
	pm.nr = 0;
	cr_assert_eq(pagemap_build(&pm, 0, &b), 0);
	poison(&back);
	cr_assert_eq(pagemap_parse("rt0.img", b.data, b.len, 0, &back), 0);
	cr_expect_eq(back.pid, 31337);
	cr_expect_eq(back.nr, 0);
	pagemap_free(&back);
	img_buf_free(&b);
}

/* ---- files: img_load_one, img_load_file, pagemap_load ---- */

static char tmp_dir[PATH_MAX];
static int tmp_fd = -1;

static void make_tmp(void)
{
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/ferry-image-XXXXXX");
	cr_assert_not_null(mkdtemp(tmp_dir));
	tmp_fd = open(tmp_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(tmp_fd, 0);
}

static void remove_tmp(void)
{
	if (tmp_fd >= 0)
		close(tmp_fd);
	tmp_fd = -1;
	rm_tree(tmp_dir);
}

TestSuite(files, .init = make_tmp, .fini = remove_tmp);

Test(files, load_one_missing_file)
{
	void *m = NULL;

	cr_expect_eq(img_load_one(tmp_fd, "core-1.img", &proc_core__descriptor, &m), -ENOENT);
	cr_expect_null(m);
}

Test(files, load_one_empty_images)
{
	uint8_t magic[4];
	void *m = NULL;

	/* a zero-byte file: no magic */
	cr_assert_eq(img_write_file(tmp_fd, "zero.img", "", 0), 0);
	cr_expect_eq(img_load_one(tmp_fd, "zero.img", &inventory_entry__descriptor, &m), -EINVAL);
	/* the magic and nothing else */
	put_le32(magic, IMG_MAGIC);
	cr_assert_eq(img_write_file(tmp_fd, "empty.img", magic, 4), 0);
	cr_expect_eq(img_load_one(tmp_fd, "empty.img", &inventory_entry__descriptor, &m), -EINVAL);
	/* a directory where a file should be */
	cr_assert_eq(mkdirat(tmp_fd, "dir.img", 0700), 0);
	cr_expect_lt(img_load_one(tmp_fd, "dir.img", &inventory_entry__descriptor, &m), 0);
	cr_expect_null(m);
}

Test(files, load_one_reads_the_message)
{
	InventoryEntry inv = INVENTORY_ENTRY__INIT, *got;
	struct img_buf b;
	void *m = NULL;

	inv.round = 3;
	inv.final = 1;
	inv.root_pid = 1234;
	inv.migration_id = "m";
	inv.page_size = 4096;
	cr_assert_eq(img_buf_init(&b), 0);
	cr_assert_eq(img_buf_add(&b, &inv.base), 0);
	cr_assert_eq(img_write_file(tmp_fd, "inventory.img", b.data, b.len), 0);
	cr_assert_eq(img_load_one(tmp_fd, "inventory.img", &inventory_entry__descriptor, &m), 0);
	got = m;
	cr_expect_eq(got->round, 3);
	cr_expect(got->final);
	cr_expect_eq(got->root_pid, 1234);
	cr_expect_str_eq(got->migration_id, "m");
	protobuf_c_message_free_unpacked(m, NULL);

	/* the same bytes cut short, or read as the wrong message */
	cr_assert_eq(img_write_file(tmp_fd, "cut.img", b.data, b.len - 1), 0);
	cr_expect_eq(img_load_one(tmp_fd, "cut.img", &inventory_entry__descriptor, &m), -EINVAL);
	cr_expect_eq(img_load_one(tmp_fd, "inventory.img", &mm_entry__descriptor, &m), -EINVAL);
	img_buf_free(&b);
}

Test(files, load_file_round_trip)
{
	static uint8_t data[3 * 4096 + 5];
	size_t i, len = 0;
	void *got = NULL;

	for (i = 0; i < sizeof(data); i++)
		data[i] = i ^ (i >> 8);
	cr_assert_eq(img_write_file(tmp_fd, "blob.img", data, sizeof(data)), 0);
	cr_assert_eq(img_load_file(tmp_fd, "blob.img", &got, &len), 0);
	cr_assert_eq(len, sizeof(data));
	cr_expect_eq(memcmp(got, data, len), 0);
	free(got);
	/* rewriting truncates */
	cr_assert_eq(img_write_file(tmp_fd, "blob.img", data, 10), 0);
	cr_assert_eq(img_load_file(tmp_fd, "blob.img", &got, &len), 0);
	cr_expect_eq(len, 10);
	free(got);
	cr_expect_eq(img_load_file(tmp_fd, "nope.img", &got, &len), -ENOENT);
}

static void write_pages_file(const char *name, off_t size)
{
	int fd = openat(tmp_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, size), 0);
	close(fd);
}

Test(files, pagemap_load_checks_pid_and_pages_file)
{
	struct pagemap pm = { .pid = 42 }, got;
	struct pm_ext e[2] = {
		{ BASE, 2, PRESENT, 0 },
		{ BASE + 4 * PG, 1, ZERO, 0 },
	};
	struct img_buf b;

	pm.nr = 2;
	pm.ext = e;
	cr_assert_eq(pagemap_build(&pm, 2 * PG, &b), 0);
	cr_assert_eq(img_write_file(tmp_fd, "pagemap-42.img", b.data, b.len), 0);
	/* held under another pid's name */
	cr_assert_eq(img_write_file(tmp_fd, "pagemap-43.img", b.data, b.len), 0);
	img_buf_free(&b);

	/* no pages file yet: the PRESENT entry points past an empty file */
	poison(&got);
	cr_expect_eq(pagemap_load(tmp_fd, 42, &got), -EINVAL);
	expect_cleared(&got, "no pages file");
	write_pages_file("pages-42.img", 2 * PG - 1);
	poison(&got);
	cr_expect_eq(pagemap_load(tmp_fd, 42, &got), -EINVAL);
	expect_cleared(&got, "short pages file");
	write_pages_file("pages-42.img", 2 * PG);
	cr_assert_eq(pagemap_load(tmp_fd, 42, &got), 0);
	cr_expect_eq(got.pid, 42);
	cr_assert_eq(got.nr, 2);
	cr_expect_eq(got.ext[0].nr_pages, 2);
	cr_expect_eq(got.ext[1].flags, ZERO);
	pagemap_free(&got);

	write_pages_file("pages-43.img", 2 * PG);
	poison(&got);
	cr_expect_eq(pagemap_load(tmp_fd, 43, &got), -EINVAL);
	expect_cleared(&got, "wrong pid");
	poison(&got);
	cr_expect_eq(pagemap_load(tmp_fd, 44, &got), -ENOENT);
}
