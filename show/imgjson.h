/* SPDX-License-Identifier: MIT */
/*
 * A whole image file (docs/image-format.md) as JSON and back:
 *
 *   {"image": "pagemap", "entries": [{"pagemap_head": {...}}, {"pagemap_entry": {...}}, ...]}
 *
 * The kind of image comes from the file's name (inventory.img, core-<pid>.img,
 * ...) and says which messages it holds, in which order. Encoding the JSON of
 * an image gives the image back byte for byte (protobuf-c packs fields in one
 * canonical order; an image with unknown fields comes back without them).
 */
#ifndef FERRY_IMGJSON_H
#define FERRY_IMGJSON_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

#include "proto/image.h"
#include "show/pbjson.h"

struct img_kind {
	const char *name;		/* "pagemap" */
	const char *file;		/* "pagemap-" (then <number>.img) or "pstree.img" */
	const ProtobufCMessageDescriptor *head;	/* first message, or NULL */
	const ProtobufCMessageDescriptor *entry;	/* the others */
	int one;			/* exactly one entry (no head) */
};

/* The kind of image file @name (a path: its last component counts), or NULL. */
const struct img_kind *img_kind_of_file(const char *name);
const struct img_kind *img_kind_by_name(const char *name);
/* Every kind (img_nr_kinds of them). */
extern const struct img_kind img_kinds[];
extern const size_t img_nr_kinds;

/* Image bytes of kind @k as JSON appended to @b. 0 or -errno (logged). */
int img_to_json(const struct img_kind *k, const char *name, const void *data, size_t len,
		struct jbuf *b);
/*
 * JSON text to image bytes (@out initialised here; free with img_buf_free).
 * *kind (may be NULL) gets the kind the JSON names. 0, or -EINVAL with @err.
 */
int img_from_json(const char *text, size_t len, struct img_buf *out,
		  const struct img_kind **kind, char *err, size_t errlen);

#endif
