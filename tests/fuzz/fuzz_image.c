// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: img_reader_init() + img_read_msg() over arbitrary bytes.
 * Input: one byte picking the message type (fuzz.h), then the image file.
 * Every message read is written again with img_buf_add(); that image must
 * read back to as many messages, and writing those gives the same bytes.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/log.h"
#include "proto/image.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_defer_errors();
	return 0;
}

/*
 * Read every message of @data, appending each to @out: img_read_msg's last
 * return. *odd: a message protobuf-c cannot write back faithfully (fuzz.h).
 */
static int read_rewrite(const void *data, size_t len, const ProtobufCMessageDescriptor *d,
			struct img_buf *out, size_t *nr, bool *odd)
{
	struct img_reader r;
	void *m;
	int ret;

	*nr = 0;
	FUZZ_ASSERT(img_buf_init(out) == 0);
	ret = img_reader_init(&r, "fuzz.img", data, len);
	if (ret) {
		FUZZ_ASSERT(ret == -EINVAL);
		return ret;
	}
	while ((ret = img_read_msg(&r, d, &m)) == 1) {
		FUZZ_ASSERT(r.pos <= r.len);
		FUZZ_ASSERT(((ProtobufCMessage *)m)->descriptor == d);
		*odd |= fuzz_has_tag0(m);
		FUZZ_ASSERT(img_buf_add(out, m) == 0);
		protobuf_c_message_free_unpacked(m, NULL);
		++*nr;
	}
	FUZZ_ASSERT(ret == 0 || ret == -EINVAL);
	FUZZ_ASSERT(r.pos <= r.len);
	if (!ret)
		FUZZ_ASSERT(r.pos == r.len);
	return ret;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor *d;
	struct img_buf out, again;
	bool odd = false;
	size_t nr, nr2;
	int ret;

	if (!size)
		return 0;
	d = fuzz_img_desc[data[0] % FUZZ_NR_IMG_DESC];
	ret = read_rewrite(data + 1, size - 1, d, &out, &nr, &odd);
	if ((ret && !nr) || odd) {
		img_buf_free(&out);
		return 0;
	}
	FUZZ_ASSERT(read_rewrite(out.data, out.len, d, &again, &nr2, &odd) == 0);
	FUZZ_ASSERT(nr2 == nr);
	FUZZ_ASSERT(again.len == out.len && !memcmp(again.data, out.data, out.len));
	img_buf_free(&out);
	img_buf_free(&again);
	return 0;
}
