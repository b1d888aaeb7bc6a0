/* SPDX-License-Identifier: MIT */
/* Shared by the fuzz targets and the seed writer: input layouts and checks. */
#ifndef FERRY_FUZZ_H
#define FERRY_FUZZ_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/endian.h"
#include "images.pb-c.h"

/* A broken invariant: say which, then abort so libFuzzer keeps the input. */
#define FUZZ_ASSERT(cond) do {								\
	if (!(cond)) {									\
		fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__,	\
			#cond);								\
		abort();								\
	}										\
} while (0)

/*
 * fuzz_image input: one byte picking the message type the reader is asked
 * for (index modulo the table), then the image file.
 */
static const ProtobufCMessageDescriptor *const fuzz_img_desc[] = {
	&inventory_entry__descriptor,
	&pagemap_head__descriptor,
	&pagemap_entry__descriptor,
	&pstree_entry__descriptor,
	&proc_core__descriptor,
	&mm_entry__descriptor,
	&files_entry__descriptor,
	&pipe_data_entry__descriptor,
	&ghost_file_entry__descriptor,
};
#define FUZZ_NR_IMG_DESC (sizeof(fuzz_img_desc) / sizeof(fuzz_img_desc[0]))

/* fuzz_pagemap input: u64 size of the pages file (little endian), then the pagemap file. */
#define FUZZ_PM_HDR 8

/*
 * protobuf-c 1.4 unpacks a field number 0 written as an overlong varint
 * (0x80 0x00) into an unknown field, then packs it back as 0x00, which it
 * refuses to unpack. Ferry never packs a message it has read, so the
 * round-trip checks leave such messages out.
 */
static inline bool fuzz_has_tag0(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const char *base = (const char *)m;
	unsigned int i;
	size_t k;

	for (i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return true;
	for (i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];

		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(base + f->quantifier_offset);
			ProtobufCMessage *const *sub =
				*(ProtobufCMessage *const *const *)(base + f->offset);

			for (k = 0; k < n; k++)
				if (fuzz_has_tag0(sub[k]))
					return true;
		} else {
			const ProtobufCMessage *sub =
				*(const ProtobufCMessage *const *)(base + f->offset);

			if (sub && fuzz_has_tag0(sub))
				return true;
		}
	}
	return false;
}

#endif
