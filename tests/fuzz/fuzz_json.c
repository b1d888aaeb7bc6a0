// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: ferry-show's JSON decoder (img_from_json, show/pbjson.c)
 * over arbitrary text. It refuses with a reason and nothing allocated, or
 * what it accepts, decoded again (img_to_json) and encoded again, gives the
 * same image bytes.
 */
#include <stdint.h>
#include <string.h>

#include "common/log.h"
#include "show/imgjson.h"
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct img_kind *k;
	struct img_buf img, img2;
	struct jbuf b = { 0 };
	char err[256] = "";

	if (img_from_json((const char *)data, size, &img, &k, err, sizeof(err))) {
		FUZZ_ASSERT(err[0] && !img.data);
		return 0;
	}
	FUZZ_ASSERT(img_to_json(k, k->file, img.data, img.len, &b) == 0);
	FUZZ_ASSERT(img_from_json(b.s, b.len, &img2, NULL, err, sizeof(err)) == 0);
	FUZZ_ASSERT(img.len == img2.len && !memcmp(img.data, img2.data, img.len));
	img_buf_free(&img);
	img_buf_free(&img2);
	jbuf_free(&b);
	return 0;
}
