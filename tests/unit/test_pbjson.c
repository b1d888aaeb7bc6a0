// SPDX-License-Identifier: MIT
/*
 * ferry-show's JSON codec: every message type of images.proto (and
 * wire.proto), every field populated, goes to JSON and back to the same
 * packed bytes; every kind of image file round-trips byte for byte; hostile
 * JSON is refused with a message, never a crash.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "proto/image.h"
#include "show/imgjson.h"
#include "show/pbjson.h"
#include "tests/unit/unit.h"
#include "wire.pb-c.h"

#define D(x) &x##__descriptor
static const ProtobufCMessageDescriptor *const all_msgs[] = {
	D(inventory_entry), D(pagemap_head), D(pagemap_entry), D(pstree_entry),
	D(sigaction_entry), D(timeval_pair), D(rlimit_entry), D(creds_entry), D(siginfo_entry),
	D(thread_core), D(seccomp_filter), D(proc_core), D(vma_entry), D(mm_entry), D(epoll_tfd),
	D(sock_opt), D(sock_entry), D(file_lock), D(fd_entry), D(ghost_chunk), D(ghost_file_entry),
	D(files_entry),
	D(shmem_entry), D(pipe_data_entry), D(round_stats_entry), D(tcp_entry), D(net_addr_entry),
	D(hello), D(hello_reply), D(round_begin), D(file_head), D(round_end), D(round_ack),
	D(restore_result), D(posix_timer_entry), D(timerfd_entry), D(inotify_watch), D(tty_entry),
	D(sysv_perm), D(sysv_sem_entry), D(sysv_msg), D(sysv_msg_entry), D(sysv_shm),
};

/* Strings that test the escapes, multi-byte UTF-8, and one that is not UTF-8. */
static const char *const strings[] = {
	"/usr/bin/python3", "quote \" backslash \\ tab \t nl \n del \x7f ctl \x01",
	"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x9a\xa2", "bad \xff\xfe utf-8 \xc3", "",
};

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	cr_assert(p);
	return p;
}

/* One value of @f's type at @dst, from the stream @seed; messages filled recursively. */
static ProtobufCMessage *fill(const ProtobufCMessageDescriptor *d, uint64_t *seed, int depth);

static void fill_value(const ProtobufCFieldDescriptor *f, void *dst, uint64_t *seed, int depth)
{
	uint64_t r = xorshift64(seed);
	const ProtobufCEnumDescriptor *ed;
	ProtobufCBinaryData *bd;
	size_t i;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
		*(int32_t *)dst = r % 3 == 0 ? INT32_MIN : r % 3 == 1 ? -(int32_t)(r >> 40) : INT32_MAX;
		break;
	case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
		*(uint32_t *)dst = r % 2 ? UINT32_MAX : (uint32_t)(r >> 7);
		break;
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
		*(int64_t *)dst = r % 2 ? INT64_MIN : (int64_t)(r >> 1);
		break;
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
		/* past 2^53: a double would lose it */
		*(uint64_t *)dst = r % 3 == 0 ? UINT64_MAX : r % 3 == 1 ? (1ULL << 53) + 1 : r;
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		*(float *)dst = (float)(r % 100000) / 7.0f;
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		*(double *)dst = (double)r / 3.0;
		break;
	case PROTOBUF_C_TYPE_BOOL:
		*(protobuf_c_boolean *)dst = 1;		/* true: false is the default */
		break;
	case PROTOBUF_C_TYPE_ENUM:
		ed = f->descriptor;
		*(int *)dst = ed->values[r % ed->n_values].value;
		break;
	case PROTOBUF_C_TYPE_STRING:
		*(char **)dst = strdup(strings[r % ARRAY_SIZE(strings)]);
		break;
	case PROTOBUF_C_TYPE_BYTES:
		bd = dst;
		bd->len = r % 200;
		bd->data = xmalloc(bd->len);
		for (i = 0; i < bd->len; i++)
			bd->data[i] = xorshift64(seed);
		break;
	case PROTOBUF_C_TYPE_MESSAGE:
		*(ProtobufCMessage **)dst = fill(f->descriptor, seed, depth + 1);
		break;
	}
}

/* Every field set: optional ones too, repeated ones with three values. */
static ProtobufCMessage *fill(const ProtobufCMessageDescriptor *d, uint64_t *seed, int depth)
{
	ProtobufCMessage *m = xmalloc(d->sizeof_message);
	unsigned i, k;

	d->message_init(m);
	for (i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		char *base = (char *)m;

		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t es = pbjson_elem_size(f->type), n = 3;
			char *arr = xmalloc(n * es);

			for (k = 0; k < n; k++)
				fill_value(f, arr + k * es, seed, depth);
			*(size_t *)(base + f->quantifier_offset) = n;
			*(char **)(base + f->offset) = arr;
			continue;
		}
		fill_value(f, base + f->offset, seed, depth);
		if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
		    f->type != PROTOBUF_C_TYPE_MESSAGE)
			*(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
	}
	cr_assert(protobuf_c_message_check(m), "%s: filled message incomplete", d->name);
	return m;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
	uint8_t *b;

	*len = protobuf_c_message_get_packed_size(m);
	b = xmalloc(*len);
	protobuf_c_message_pack(m, b);
	return b;
}

/* @m to JSON and back: the same bytes when packed. */
static void roundtrip_msg(const ProtobufCMessage *m)
{
	struct jbuf b = { 0 };
	struct jparse jp;
	ProtobufCMessage *back;
	uint8_t *p1, *p2;
	size_t l1, l2;

	cr_assert_eq(pbjson_encode(&b, m, 0), 0, "%s: encode", m->descriptor->name);
	jparse_init(&jp, b.s, b.len);
	cr_assert_eq(pbjson_decode(&jp, m->descriptor, &back), 0, "%s: decode: %s\n%s",
		     m->descriptor->name, jp.err, b.s);
	cr_assert_eq(jp_end(&jp), 0);
	p1 = pack(m, &l1);
	p2 = pack(back, &l2);
	cr_assert(l1 == l2 && !memcmp(p1, p2, l1), "%s: bytes differ after JSON\n%s",
		  m->descriptor->name, b.s);
	free(p1);
	free(p2);
	protobuf_c_message_free_unpacked(back, NULL);
	jbuf_free(&b);
}

Test(pbjson, every_message_type_populated)
{
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	size_t i;
	int k;

	for (i = 0; i < ARRAY_SIZE(all_msgs); i++) {
		for (k = 0; k < 8; k++) {
			ProtobufCMessage *m = fill(all_msgs[i], &seed, 0);

			roundtrip_msg(m);
			protobuf_c_message_free_unpacked(m, NULL);
		}
	}
}

Test(pbjson, empty_optionals_stay_unset)
{
	PstreeEntry pe = PSTREE_ENTRY__INIT;
	FdEntry fd = FD_ENTRY__INIT;
	struct jbuf b = { 0 };

	pe.pid = 7;
	roundtrip_msg(&pe.base);
	cr_assert_eq(pbjson_encode(&b, &pe.base, 0), 0);
	cr_expect_null(strstr(b.s, "stopped"), "unset optional field printed: %s", b.s);
	jbuf_free(&b);
	fd.type = FD_TYPE__FD_SOCK;
	roundtrip_msg(&fd.base);
	/* set to the default value is not the same as unset */
	fd.has_pos = 1;
	roundtrip_msg(&fd.base);
}

/* Every message of images.proto is in all_msgs (a new one gets tested too). */
Test(pbjson, list_covers_images_proto)
{
	FILE *f = fopen("proto/images.proto", "r");
	char line[256], name[128];
	size_t i, seen = 0;

	if (!f)
		cr_skip_test("proto/images.proto not found (run from the tree's root)");
	while (fgets(line, sizeof(line), f)) {
		bool found = false;

		if (sscanf(line, "message %127s", name) != 1)
			continue;
		for (i = 0; i < ARRAY_SIZE(all_msgs); i++)
			found |= !strcmp(all_msgs[i]->name, name);
		cr_expect(found, "message %s of images.proto is not round-tripped", name);
		seen++;
	}
	fclose(f);
	cr_assert_gt(seen, 20);
}

/* A file of kind @k: its head and entries (one if the kind has one), filled. */
static void make_image(const struct img_kind *k, uint64_t *seed, struct img_buf *out)
{
	ProtobufCMessage *m;
	int i, n = k->one ? 1 : 4;

	cr_assert_eq(img_buf_init(out), 0);
	for (i = 0; i < n; i++) {
		m = fill(!i && k->head ? k->head : k->entry, seed, 0);
		cr_assert_eq(img_buf_add(out, m), 0);
		protobuf_c_message_free_unpacked(m, NULL);
	}
}

Test(imgjson, every_kind_byte_identical)
{
	uint64_t seed = 42;
	size_t i;

	for (i = 0; i < img_nr_kinds; i++) {
		const struct img_kind *k = &img_kinds[i], *back;
		struct img_buf img, img2;
		struct jbuf b = { 0 };
		char err[256];

		make_image(k, &seed, &img);
		cr_assert_eq(img_to_json(k, k->file, img.data, img.len, &b), 0, "%s", k->name);
		cr_assert_eq(img_from_json(b.s, b.len, &img2, &back, err, sizeof(err)), 0,
			     "%s: %s\n%s", k->name, err, b.s);
		cr_assert_eq(back, k);
		cr_assert(img.len == img2.len && !memcmp(img.data, img2.data, img.len),
			  "%s: image bytes differ after JSON", k->name);
		img_buf_free(&img);
		img_buf_free(&img2);
		jbuf_free(&b);
	}
}

Test(imgjson, kinds_from_file_names)
{
	cr_expect_eq(img_kind_of_file("/x/3/core-1234.img"), img_kind_by_name("core"));
	cr_expect_eq(img_kind_of_file("pagemap-1073741825.img"), img_kind_by_name("pagemap"));
	cr_expect_eq(img_kind_of_file("stats.img"), img_kind_by_name("stats"));
	cr_expect_null(img_kind_of_file("pages-12.img"));
	cr_expect_null(img_kind_of_file("core-.img"));
	cr_expect_null(img_kind_of_file("core-12x.img"));
	cr_expect_null(img_kind_of_file("parent"));
}

static void expect_refused(const char *json, const char *what)
{
	struct img_buf img = { 0 };
	char err[256] = "";
	int ret;

	ret = img_from_json(json, strlen(json), &img, NULL, err, sizeof(err));
	cr_expect_eq(ret, -EINVAL, "%s: accepted (%d): %s", what, ret, json);
	cr_expect(err[0], "%s: refused without a reason", what);
	cr_expect_null(img.data, "%s: buffer left allocated", what);
}

#define INV(fields) "{\"image\": \"inventory\", \"entries\": [{\"inventory_entry\": {" fields "}}]}"
#define INV_OK "\"round\": 1, \"final\": true, \"root_pid\": 5, \"migration_id\": \"m\", \"page_size\": 4096"

Test(imgjson, hostile_json_refused)
{
	static const struct { const char *json, *what; } bad[] = {
		{ "", "empty" },
		{ "{", "cut short" },
		{ "[]", "not an object" },
		{ "{\"image\": \"nope\", \"entries\": []}", "unknown kind" },
		{ "{\"entries\": [], \"image\": \"inventory\"}", "keys out of order" },
		{ "{\"image\": \"inventory\", \"entries\": []}", "no entry in a one-entry kind" },
		{ "{\"image\": \"pagemap\", \"entries\": [{\"pagemap_entry\": {\"vaddr\": 0, "
		  "\"nr_pages\": 1, \"flags\": 1}}]}", "pagemap without its head" },
		{ "{\"image\": \"inventory\", \"entries\": [{\"pstree_entry\": {}}]}", "wrong message" },
		{ INV(INV_OK) " x", "trailing garbage" },
		{ INV(INV_OK ", \"bogus\": 1"), "unknown field" },
		{ INV(INV_OK ", \"round\": 2"), "field twice" },
		{ INV("\"round\": 1, \"final\": true"), "required fields missing" },
		{ INV("\"round\": \"1\", \"final\": true, \"root_pid\": 5, \"migration_id\": \"m\", "
		      "\"page_size\": 4096"), "string for a number" },
		{ INV("\"round\": -1, \"final\": true, \"root_pid\": 5, \"migration_id\": \"m\", "
		      "\"page_size\": 4096"), "negative unsigned" },
		{ INV("\"round\": 4294967296, \"final\": true, \"root_pid\": 5, \"migration_id\": "
		      "\"m\", \"page_size\": 4096"), "uint32 overflow" },
		{ INV(INV_OK ", \"created_ns\": 18446744073709551616"), "uint64 overflow" },
		{ INV(INV_OK ", \"created_ns\": 99999999999999999999999999999999999999999999999999"),
		  "long number" },
		{ INV(INV_OK ", \"created_ns\": 01"), "leading zero" },
		{ INV(INV_OK ", \"created_ns\": 1.5"), "fraction for an integer" },
		{ INV(INV_OK ", \"created_ns\": 1e3"), "exponent for an integer" },
		{ INV(INV_OK ", \"created_ns\": NaN"), "NaN" },
		{ INV("\"round\": 1, \"final\": 1, \"root_pid\": 5, \"migration_id\": \"m\", "
		      "\"page_size\": 4096"), "number for a bool" },
		{ INV("\"round\": 1, \"final\": true, \"root_pid\": 5, \"migration_id\": \"a\\qb\", "
		      "\"page_size\": 4096"), "bad escape" },
		{ INV("\"round\": 1, \"final\": true, \"root_pid\": 5, \"migration_id\": \"a\\u0000\", "
		      "\"page_size\": 4096"), "NUL escape" },
		{ INV("\"round\": 1, \"final\": true, \"root_pid\": 5, \"migration_id\": \"\\ud800\", "
		      "\"page_size\": 4096"), "lone surrogate" },
		{ INV("\"round\": 1, \"final\": true, \"root_pid\": 5, \"migration_id\": \"\xff\", "
		      "\"page_size\": 4096"), "invalid UTF-8" },
		{ INV("\"round\": 1, \"final\": true, \"root_pid\": 5, \"migration_id\": \"a\nb\", "
		      "\"page_size\": 4096"), "raw control character" },
		{ INV("\"round\": 1, \"final\": true, \"root_pid\": 5, \"migration_id\": \"abc"),
		  "unterminated string" },
		{ INV("\"round\": 1, \"final\": true, \"root_pid\": 5, \"migration_id\": {\"hex\": "
		      "\"610062\"}, \"page_size\": 4096"), "NUL in a hex string" },
		{ INV("\"round\": 1, \"final\": true, \"root_pid\": 5, \"migration_id\": {\"hex\": "
		      "\"6\"}, \"page_size\": 4096"), "odd hex" },
		{ "{\"image\": \"pipe\", \"entries\": [{\"pipe_data_entry\": {\"pipe_id\": 1, "
		  "\"data\": \"zz\"}}]}", "not hex" },
		{ "{\"image\": \"pipe\", \"entries\": [{\"pipe_data_entry\": {\"pipe_id\": 1, "
		  "\"data\": [1, 2]}}]}", "array for bytes" },
		{ "{\"image\": \"files\", \"entries\": [{\"files_entry\": {\"fds\": [{\"fd\": 1}]}}]}",
		  "nested message incomplete" },
		{ "{\"image\": \"files\", \"entries\": [{\"files_entry\": {\"fds\": [[[[[[[[[[[[[[[[[["
		  "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
		  "]]]]]]]]]}}]}", "deep arrays" },
		{ "{\"image\": \"files\", \"entries\": [{\"files_entry\": {\"fds\": [,]}}]}",
		  "empty array element" },
		{ "{\"image\": \"mm\", \"entries\": [{\"mm_entry\": {\"auxv\": [1, 2,]}}]}",
		  "trailing comma" },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++)
		expect_refused(bad[i].json, bad[i].what);
}

Test(imgjson, hostile_sizes_refused)
{
	/* one entry past IMG_MAX_ENTRY: refused, not written */
	size_t n = IMG_MAX_ENTRY + 16, i;
	const char *head = "{\"image\": \"pipe\", \"entries\": [{\"pipe_data_entry\": {\"pipe_id\": 1, \"data\": \"";
	const char *tail = "\"}}]}";
	char *j = xmalloc(strlen(head) + 2 * n + strlen(tail) + 1), *p = j;

	p += sprintf(p, "%s", head);
	for (i = 0; i < n; i++, p += 2)
		memcpy(p, "ab", 2);
	strcpy(p, tail);
	expect_refused(j, "entry too large");
	free(j);
}

/* Mutated valid JSON: accepted or refused with a reason, never a crash or a leak of state. */
Test(imgjson, mutations_never_crash)
{
	static const char noise[] = "{}[]\",:0123456789-.eE\\u tfnx\xff";
	uint64_t seed = 7;
	size_t i, k;

	for (i = 0; i < img_nr_kinds; i++) {
		struct img_buf img, out;
		struct jbuf b = { 0 };
		char err[256];

		make_image(&img_kinds[i], &seed, &img);
		cr_assert_eq(img_to_json(&img_kinds[i], img_kinds[i].file, img.data, img.len, &b), 0);
		for (k = 0; k < 300; k++) {
			char *t = strdup(b.s);
			size_t len = b.len, pos;
			int ret, flips = 1 + xorshift64(&seed) % 3;

			while (flips--) {
				pos = xorshift64(&seed) % len;
				t[pos] = noise[xorshift64(&seed) % (sizeof(noise) - 1)];
			}
			if (xorshift64(&seed) % 4 == 0)
				len = xorshift64(&seed) % len;	/* cut short too */
			err[0] = 0;
			ret = img_from_json(t, len, &out, NULL, err, sizeof(err));
			if (ret)
				cr_expect(err[0], "refused without a reason");
			else
				img_buf_free(&out);
			free(t);
		}
		img_buf_free(&img);
		jbuf_free(&b);
	}
}
