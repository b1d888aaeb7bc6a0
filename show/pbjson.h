/* SPDX-License-Identifier: MIT */
/*
 * JSON for protobuf-c messages, driven by their descriptors (protobuf-c has
 * no JSON of its own), so one encoder and one decoder cover every message
 * type of proto/images.proto. The mapping (docs/ferry-show.md):
 *
 *   integers, bools   JSON numbers (64-bit ones exact: never via double),
 *                     true/false
 *   enums             the value's name, or its number if it has none
 *   strings           JSON strings if valid UTF-8, else {"hex": "..."}
 *   bytes             lower-case hex strings
 *   messages          objects; repeated fields are arrays
 *   optional fields   left out when not set
 *
 * Decoding is strict: unknown or repeated keys, wrong types, out-of-range
 * numbers, missing required fields, bad escapes, invalid UTF-8, nesting past
 * PBJSON_MAX_DEPTH and trailing garbage are refused with a message naming
 * the offset, never a crash.
 */
#ifndef FERRY_PBJSON_H
#define FERRY_PBJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

#define PBJSON_MAX_DEPTH	32

/* A growing text buffer (NUL-terminated while len < cap). */
struct jbuf {
	char *s;
	size_t len, cap;
	int err;		/* first -ENOMEM, sticky */
};

void jbuf_puts(struct jbuf *b, const char *s);
void jbuf_printf(struct jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal of @len bytes (valid UTF-8 expected; control bytes escaped). */
void jbuf_str(struct jbuf *b, const char *s, size_t len);
void jbuf_free(struct jbuf *b);

/* Bytes of one element of a field of type @t (a repeated field's array). */
size_t pbjson_elem_size(ProtobufCType t);

/* @msg as JSON, indented by @indent levels (two spaces each). 0 or -errno. */
int pbjson_encode(struct jbuf *b, const ProtobufCMessage *msg, int indent);

/* A JSON text being parsed (the decoder's cursor). */
struct jparse {
	const char *p, *start, *end;
	int depth;
	char err[200];
};

void jparse_init(struct jparse *jp, const char *text, size_t len);
/* Skip blanks; the next byte, or 0 at the end. */
int jp_peek(struct jparse *jp);
/* Consume @c (after blanks) or fail: 0 or -EINVAL. */
int jp_expect(struct jparse *jp, char c);
/* A string into a new NUL-terminated buffer (*out, *len); refuses embedded NULs. */
int jp_string(struct jparse *jp, char **out, size_t *len);
/* Only blanks left: 0, else -EINVAL. */
int jp_end(struct jparse *jp);
/* Record the first error, with the offset it happened at; returns -EINVAL. */
int jp_fail(struct jparse *jp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Parse one JSON object at the cursor into a new message of type @d (free
 * with protobuf_c_message_free_unpacked). 0, or -EINVAL with jp->err set
 * (-ENOMEM likewise).
 */
int pbjson_decode(struct jparse *jp, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out);

#endif
