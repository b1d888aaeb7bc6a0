// SPDX-License-Identifier: MIT
/* JSON for protobuf-c messages, one encoder and one decoder driven by descriptors. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "show/pbjson.h"

/* --- output buffer ------------------------------------------------------ */

static int jbuf_reserve(struct jbuf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 1024;
	char *s;

	if (b->err)
		return b->err;
	if (b->len + more + 1 <= b->cap)
		return 0;
	while (cap < b->len + more + 1)
		cap *= 2;
	s = realloc(b->s, cap);
	if (!s) {
		b->err = -ENOMEM;
		return b->err;
	}
	b->s = s;
	b->cap = cap;
	return 0;
}

static void jbuf_putn(struct jbuf *b, const char *s, size_t n)
{
	if (jbuf_reserve(b, n))
		return;
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = 0;
}

void jbuf_puts(struct jbuf *b, const char *s)
{
	jbuf_putn(b, s, strlen(s));
}

void jbuf_printf(struct jbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || jbuf_reserve(b, n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, n + 1, fmt, ap);
	va_end(ap);
	b->len += n;
}

void jbuf_free(struct jbuf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

void jbuf_str(struct jbuf *b, const char *s, size_t len)
{
	static const char esc[] = { ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r',
				    ['\t'] = 't', ['"'] = '"', ['\\'] = '\\' };
	size_t i, run = 0;

	jbuf_putn(b, "\"", 1);
	for (i = 0; i < len; i++) {
		unsigned char c = s[i];
		char e[8];

		if (c >= 0x20 && c != 0x7f && c != '"' && c != '\\')
			continue;
		jbuf_putn(b, s + run, i - run);
		run = i + 1;
		if (c < sizeof(esc) && esc[c]) {
			e[0] = '\\';
			e[1] = esc[c];
			jbuf_putn(b, e, 2);
		} else {
			snprintf(e, sizeof(e), "\\u%04x", c);
			jbuf_putn(b, e, 6);
		}
	}
	jbuf_putn(b, s + run, len - run);
	jbuf_putn(b, "\"", 1);
}

static void jbuf_hex(struct jbuf *b, const uint8_t *d, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	if (jbuf_reserve(b, 2 * len + 2))
		return;
	b->s[b->len++] = '"';
	for (i = 0; i < len; i++) {
		b->s[b->len++] = digits[d[i] >> 4];
		b->s[b->len++] = digits[d[i] & 15];
	}
	b->s[b->len++] = '"';
	b->s[b->len] = 0;
}

static void jbuf_indent(struct jbuf *b, int level)
{
	if (jbuf_reserve(b, 1 + 2 * level))
		return;
	b->s[b->len++] = '\n';
	memset(b->s + b->len, ' ', 2 * level);
	b->len += 2 * level;
	b->s[b->len] = 0;
}

/* --- descriptors -------------------------------------------------------- */

size_t pbjson_elem_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_FLOAT:
		return 4;
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	return 0;
}

#define MEMBER(m, off)	((void *)((char *)(m) + (off)))

/* Set in @m? Mirrors protobuf-c's own rule for what it packs. */
static bool field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	const void *p = MEMBER(m, f->offset);

	switch (f->label) {
	case PROTOBUF_C_LABEL_REQUIRED:
		return true;
	case PROTOBUF_C_LABEL_REPEATED:
		return *(const size_t *)MEMBER(m, f->quantifier_offset) > 0;
	case PROTOBUF_C_LABEL_OPTIONAL:
		if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_MESSAGE) {
			const void *ptr = *(const void *const *)p;

			return ptr && ptr != f->default_value;
		}
		return *(const protobuf_c_boolean *)MEMBER(m, f->quantifier_offset);
	default:
		return true;	/* proto3 (no label): always written */
	}
}

static bool utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		uint32_t cp;
		int n, k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= (size_t)n)
			return false;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		/* no overlong forms, no surrogates, nothing past U+10FFFF */
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += n + 1;
	}
	return true;
}

/* --- encoder ------------------------------------------------------------ */

static int encode_value(struct jbuf *b, const ProtobufCFieldDescriptor *f, const void *p, int indent)
{
	const ProtobufCEnumValue *ev;
	double d;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
		jbuf_printf(b, "%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
		jbuf_printf(b, "%" PRIu32, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
		jbuf_printf(b, "%" PRId64, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
		jbuf_printf(b, "%" PRIu64, *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT: case PROTOBUF_C_TYPE_DOUBLE:
		d = f->type == PROTOBUF_C_TYPE_FLOAT ? *(const float *)p : *(const double *)p;
		if (!isfinite(d))
			return -EDOM;	/* JSON has no NaN or infinity */
		jbuf_printf(b, f->type == PROTOBUF_C_TYPE_FLOAT ? "%.9g" : "%.17g", d);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		jbuf_puts(b, *(const protobuf_c_boolean *)p ? "true" : "false");
		break;
	case PROTOBUF_C_TYPE_ENUM:
		ev = protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
		if (ev)
			jbuf_str(b, ev->name, strlen(ev->name));
		else
			jbuf_printf(b, "%d", *(const int *)p);
		break;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(const char *const *)p;
		size_t len = s ? strlen(s) : 0;

		if (utf8_valid((const unsigned char *)s, len)) {
			jbuf_str(b, s ? s : "", len);
		} else {
			jbuf_puts(b, "{\"hex\": ");
			jbuf_hex(b, (const uint8_t *)s, len);
			jbuf_puts(b, "}");
		}
		break;
	}
	case PROTOBUF_C_TYPE_BYTES:
		jbuf_hex(b, ((const ProtobufCBinaryData *)p)->data, ((const ProtobufCBinaryData *)p)->len);
		break;
	case PROTOBUF_C_TYPE_MESSAGE:
		return pbjson_encode(b, *(const ProtobufCMessage *const *)p, indent);
	}
	return b->err;
}

int pbjson_encode(struct jbuf *b, const ProtobufCMessage *msg, int indent)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	bool first = true;
	unsigned i;
	int ret;

	jbuf_puts(b, "{");
	for (i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const void *p = MEMBER(msg, f->offset);

		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
			return -EOPNOTSUPP;	/* images.proto has none */
		if (!field_present(msg, f))
			continue;
		jbuf_puts(b, first ? "" : ",");
		jbuf_indent(b, indent + 1);
		jbuf_str(b, f->name, strlen(f->name));
		jbuf_puts(b, ": ");
		first = false;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)MEMBER(msg, f->quantifier_offset), k;
			const char *arr = *(const char *const *)p;
			bool nested = f->type == PROTOBUF_C_TYPE_MESSAGE;

			jbuf_puts(b, "[");
			for (k = 0; k < n; k++) {
				jbuf_puts(b, k ? (nested ? "," : ", ") : "");
				if (nested)
					jbuf_indent(b, indent + 2);
				ret = encode_value(b, f, arr + k * pbjson_elem_size(f->type), indent + 2);
				if (ret)
					return ret;
			}
			if (nested)
				jbuf_indent(b, indent + 1);
			jbuf_puts(b, "]");
			continue;
		}
		ret = encode_value(b, f, p, indent + 1);
		if (ret)
			return ret;
	}
	if (!first)
		jbuf_indent(b, indent);
	jbuf_puts(b, "}");
	return b->err;
}

/* --- parser ------------------------------------------------------------- */

void jparse_init(struct jparse *jp, const char *text, size_t len)
{
	memset(jp, 0, sizeof(*jp));
	jp->p = jp->start = text;
	jp->end = text + len;
}

int jp_fail(struct jparse *jp, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (jp->err[0])
		return -EINVAL;
	n = snprintf(jp->err, sizeof(jp->err), "at byte %zu: ", (size_t)(jp->p - jp->start));
	va_start(ap, fmt);
	vsnprintf(jp->err + n, sizeof(jp->err) - n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int jp_peek(struct jparse *jp)
{
	while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' ||
				   *jp->p == '\r'))
		jp->p++;
	return jp->p < jp->end ? (unsigned char)*jp->p : 0;
}

int jp_expect(struct jparse *jp, char c)
{
	if (jp_peek(jp) != (unsigned char)c)
		return jp_fail(jp, "'%c' expected", c);
	jp->p++;
	return 0;
}

int jp_end(struct jparse *jp)
{
	return jp_peek(jp) ? jp_fail(jp, "trailing data after the JSON value") : 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int jp_u4(struct jparse *jp, uint32_t *v)
{
	int i, h;

	if (jp->end - jp->p < 4)
		return jp_fail(jp, "short \\u escape");
	for (*v = 0, i = 0; i < 4; i++) {
		h = hexval((unsigned char)jp->p[i]);
		if (h < 0)
			return jp_fail(jp, "bad \\u escape");
		*v = *v << 4 | h;
	}
	jp->p += 4;
	return 0;
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = 0xc0 | cp >> 6;
		o[1] = 0x80 | (cp & 0x3f);
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = 0xe0 | cp >> 12;
		o[1] = 0x80 | ((cp >> 6) & 0x3f);
		o[2] = 0x80 | (cp & 0x3f);
		return 3;
	}
	o[0] = 0xf0 | cp >> 18;
	o[1] = 0x80 | ((cp >> 12) & 0x3f);
	o[2] = 0x80 | ((cp >> 6) & 0x3f);
	o[3] = 0x80 | (cp & 0x3f);
	return 4;
}

/* One escape after the backslash, appended at @o: bytes written or -EINVAL. */
static int jp_escape(struct jparse *jp, char *o)
{
	static const char simple[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
	uint32_t cp, lo;
	const char *s;
	char c;

	if (jp->p >= jp->end)
		return jp_fail(jp, "unterminated string");
	c = *jp->p++;
	for (s = simple; *s; s += 2)
		if (c == s[0]) {
			o[0] = s[1];
			return 1;
		}
	if (c != 'u')
		return jp_fail(jp, "bad escape '\\%c'", c);
	if (jp_u4(jp, &cp))
		return -EINVAL;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return jp_fail(jp, "lone low surrogate");
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (jp->end - jp->p < 2 || jp->p[0] != '\\' || jp->p[1] != 'u')
			return jp_fail(jp, "lone high surrogate");
		jp->p += 2;
		if (jp_u4(jp, &lo))
			return -EINVAL;
		if (lo < 0xdc00 || lo > 0xdfff)
			return jp_fail(jp, "bad surrogate pair");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	if (!cp)
		return jp_fail(jp, "\\u0000 in a string");
	return put_utf8(o, cp);
}

int jp_string(struct jparse *jp, char **out, size_t *len)
{
	const char *q;
	size_t n = 0;
	char *s;
	int k;

	if (jp_expect(jp, '"'))
		return -EINVAL;
	/* the decoded string is never longer than its source */
	for (q = jp->p; q < jp->end && *q != '"'; q++)
		if (*q == '\\' && q + 1 < jp->end)
			q++;
	if (q >= jp->end)
		return jp_fail(jp, "unterminated string");
	s = malloc(q - jp->p + 1);
	if (!s)
		return -ENOMEM;
	while (*jp->p != '"') {
		unsigned char c = *jp->p;

		if (c < 0x20) {
			free(s);
			return jp_fail(jp, "control character in a string");
		}
		if (c == '\\') {
			jp->p++;
			k = jp_escape(jp, s + n);
			if (k < 0) {
				free(s);
				return k;
			}
			n += k;
			continue;
		}
		s[n++] = c;
		jp->p++;
	}
	jp->p++;
	s[n] = 0;
	if (!utf8_valid((unsigned char *)s, n)) {
		free(s);
		return jp_fail(jp, "invalid UTF-8 in a string");
	}
	*out = s;
	*len = n;
	return 0;
}

/* A hex string into bytes (*data malloc'ed, at least 1 byte). */
static int jp_hex(struct jparse *jp, uint8_t **data, size_t *len)
{
	size_t n, i;
	char *s;
	int ret;

	ret = jp_string(jp, &s, &n);
	if (ret)
		return ret;
	if (n % 2) {
		free(s);
		return jp_fail(jp, "odd number of hex digits");
	}
	for (i = 0; i < n; i += 2) {
		int hi = hexval((unsigned char)s[i]), lo = hexval((unsigned char)s[i + 1]);

		if (hi < 0 || lo < 0) {
			free(s);
			return jp_fail(jp, "not a hex string");
		}
		s[i / 2] = hi << 4 | lo;
	}
	*data = (uint8_t *)s;
	*len = n / 2;
	return 0;
}

/* The bytes of a number token (JSON grammar checked by the callers' parsers). */
static int jp_token(struct jparse *jp, char *buf, size_t size)
{
	size_t n = 0;

	jp_peek(jp);
	while (jp->p < jp->end && strchr("+-0123456789.eE", *jp->p) && *jp->p) {
		if (n + 1 >= size)
			return jp_fail(jp, "number too long");
		buf[n++] = *jp->p++;
	}
	buf[n] = 0;
	if (!n)
		return jp_fail(jp, "number expected");
	return 0;
}

/* A JSON integer in [min, max] (as a sign and a magnitude: exact on 64 bits). */
static int jp_int(struct jparse *jp, bool neg_ok, uint64_t max_pos, uint64_t max_neg,
		  bool *neg, uint64_t *mag)
{
	char tok[48], *t = tok;
	uint64_t v = 0;

	if (jp_token(jp, tok, sizeof(tok)))
		return -EINVAL;
	*neg = *t == '-';
	t += *neg;
	if (*neg && !neg_ok)
		return jp_fail(jp, "negative value for an unsigned field");
	if (!*t || (t[0] == '0' && t[1]))
		return jp_fail(jp, "bad integer '%s'", tok);
	for (; *t; t++) {
		if (*t < '0' || *t > '9')
			return jp_fail(jp, "integer expected, not '%s'", tok);
		if (v > (UINT64_MAX - (*t - '0')) / 10)
			return jp_fail(jp, "integer '%s' out of range", tok);
		v = v * 10 + (*t - '0');
	}
	if (v > (*neg ? max_neg : max_pos))
		return jp_fail(jp, "integer '%s' out of range", tok);
	*mag = v;
	return 0;
}

static int jp_float(struct jparse *jp, double *d)
{
	char tok[64], *t = tok, *end;

	if (jp_token(jp, tok, sizeof(tok)))
		return -EINVAL;
	/* JSON's number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
	t += *t == '-';
	if (*t == '0')
		t++;
	else if (*t >= '1' && *t <= '9')
		while (*t >= '0' && *t <= '9')
			t++;
	else
		return jp_fail(jp, "bad number '%s'", tok);
	if (*t == '.') {
		if (*++t < '0' || *t > '9')
			return jp_fail(jp, "bad number '%s'", tok);
		while (*t >= '0' && *t <= '9')
			t++;
	}
	if (*t == 'e' || *t == 'E') {
		t += t[1] == '+' || t[1] == '-';
		if (*++t < '0' || *t > '9')
			return jp_fail(jp, "bad number '%s'", tok);
		while (*t >= '0' && *t <= '9')
			t++;
	}
	if (*t)
		return jp_fail(jp, "bad number '%s'", tok);
	*d = strtod(tok, &end);
	if (!isfinite(*d))
		return jp_fail(jp, "number '%s' out of range", tok);
	return 0;
}

static bool jp_literal(struct jparse *jp, const char *lit)
{
	size_t n = strlen(lit);

	jp_peek(jp);
	if ((size_t)(jp->end - jp->p) < n || memcmp(jp->p, lit, n))
		return false;
	jp->p += n;
	return true;
}

static int decode_string(struct jparse *jp, char **out)
{
	uint8_t *data;
	size_t len;
	char *key;
	int ret;

	if (jp_peek(jp) == '"')
		return jp_string(jp, out, &len);
	/* {"hex": "..."}: a string that is not valid UTF-8 */
	if (jp_expect(jp, '{'))
		return -EINVAL;
	ret = jp_string(jp, &key, &len);
	if (ret)
		return ret;
	ret = strcmp(key, "hex") ? jp_fail(jp, "a string or {\"hex\": ...} expected") : 0;
	free(key);
	if (!ret)
		ret = jp_expect(jp, ':');
	if (!ret)
		ret = jp_hex(jp, &data, &len);
	if (ret)
		return ret;
	if (memchr(data, 0, len) || jp_expect(jp, '}')) {
		free(data);
		return jp_fail(jp, "bad hex string (a NUL byte, or no closing brace)");
	}
	data[len] = 0;	/* room: the hex text was twice as long */
	*out = (char *)data;
	return 0;
}

/* One value of field @f's type into @dst (a member, or an element of a repeated one). */
static int decode_value(struct jparse *jp, const ProtobufCFieldDescriptor *f, void *dst)
{
	const ProtobufCEnumValue *ev;
	uint64_t mag;
	bool neg;
	double d = 0;
	char *s;
	size_t len;
	int ret;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
		ret = jp_int(jp, true, INT32_MAX, 1ULL << 31, &neg, &mag);
		if (!ret)
			*(int32_t *)dst = neg ? (int32_t)(0 - mag) : (int32_t)mag;
		return ret;
	case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
		ret = jp_int(jp, false, UINT32_MAX, 0, &neg, &mag);
		if (!ret)
			*(uint32_t *)dst = mag;
		return ret;
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
		ret = jp_int(jp, true, INT64_MAX, 1ULL << 63, &neg, &mag);
		if (!ret)
			*(int64_t *)dst = neg ? (int64_t)(0 - mag) : (int64_t)mag;
		return ret;
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
		ret = jp_int(jp, false, UINT64_MAX, 0, &neg, &mag);
		if (!ret)
			*(uint64_t *)dst = mag;
		return ret;
	case PROTOBUF_C_TYPE_FLOAT: case PROTOBUF_C_TYPE_DOUBLE:
		ret = jp_float(jp, &d);
		if (!ret && f->type == PROTOBUF_C_TYPE_FLOAT)
			*(float *)dst = d;
		else if (!ret)
			*(double *)dst = d;
		return ret;
	case PROTOBUF_C_TYPE_BOOL:
		if (jp_literal(jp, "true"))
			*(protobuf_c_boolean *)dst = 1;
		else if (jp_literal(jp, "false"))
			*(protobuf_c_boolean *)dst = 0;
		else
			return jp_fail(jp, "%s: true or false expected", f->name);
		return 0;
	case PROTOBUF_C_TYPE_ENUM:
		if (jp_peek(jp) != '"') {
			ret = jp_int(jp, true, INT32_MAX, 1ULL << 31, &neg, &mag);
			if (!ret)
				*(int *)dst = neg ? (int)(0 - mag) : (int)mag;
			return ret;
		}
		ret = jp_string(jp, &s, &len);
		if (ret)
			return ret;
		ev = protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, s);
		free(s);
		if (!ev)
			return jp_fail(jp, "%s: unknown enum value", f->name);
		*(int *)dst = ev->value;
		return 0;
	case PROTOBUF_C_TYPE_STRING:
		return decode_string(jp, (char **)dst);
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData *bd = dst;

		return jp_hex(jp, &bd->data, &bd->len);
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		return pbjson_decode(jp, f->descriptor, (ProtobufCMessage **)dst);
	}
	return jp_fail(jp, "%s: unsupported field type", f->name);
}

/* An array for a repeated field, kept consistent in @m at every step (for freeing). */
static int decode_repeated(struct jparse *jp, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	size_t *n = MEMBER(m, f->quantifier_offset), cap = 0, es = pbjson_elem_size(f->type);
	char **arr = MEMBER(m, f->offset);
	int ret;

	if (jp_expect(jp, '['))
		return -EINVAL;
	if (jp_peek(jp) == ']') {
		jp->p++;
		return 0;
	}
	for (;;) {
		if (*n == cap) {
			char *p;

			cap = cap ? 2 * cap : 8;
			p = realloc(*arr, cap * es);
			if (!p)
				return -ENOMEM;
			*arr = p;
		}
		memset(*arr + *n * es, 0, es);
		ret = decode_value(jp, f, *arr + *n * es);
		if (ret)
			return ret;
		(*n)++;
		if (jp_peek(jp) == ']') {
			jp->p++;
			return 0;
		}
		if (jp_expect(jp, ','))
			return -EINVAL;
	}
}

static int decode_fields(struct jparse *jp, ProtobufCMessage *m, unsigned char *seen)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	const ProtobufCFieldDescriptor *f;
	size_t len;
	char *key;
	unsigned i;
	int ret;

	if (jp_expect(jp, '{'))
		return -EINVAL;
	if (jp_peek(jp) == '}') {
		jp->p++;
		goto required;
	}
	for (;;) {
		ret = jp_string(jp, &key, &len);
		if (ret)
			return ret;
		f = protobuf_c_message_descriptor_get_field_by_name(d, key);
		if (!f)
			ret = jp_fail(jp, "%s has no field '%s'", d->name, key);
		else if (seen[f - d->fields])
			ret = jp_fail(jp, "%s: field '%s' given twice", d->name, key);
		else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
			ret = jp_fail(jp, "%s: oneof fields are not supported", d->name);
		free(key);
		if (!ret)
			ret = jp_expect(jp, ':');
		if (ret)
			return ret;
		seen[f - d->fields] = 1;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			ret = decode_repeated(jp, m, f);
		} else {
			ret = decode_value(jp, f, MEMBER(m, f->offset));
			if (!ret && f->label == PROTOBUF_C_LABEL_OPTIONAL &&
			    f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
				*(protobuf_c_boolean *)MEMBER(m, f->quantifier_offset) = 1;
		}
		if (ret)
			return ret;
		if (jp_peek(jp) == '}') {
			jp->p++;
			break;
		}
		if (jp_expect(jp, ','))
			return -EINVAL;
	}
required:
	for (i = 0; i < d->n_fields; i++)
		if (d->fields[i].label == PROTOBUF_C_LABEL_REQUIRED && !seen[i])
			return jp_fail(jp, "%s: required field '%s' missing", d->name, d->fields[i].name);
	return 0;
}

int pbjson_decode(struct jparse *jp, const ProtobufCMessageDescriptor *d, ProtobufCMessage **out)
{
	unsigned char *seen = NULL;
	ProtobufCMessage *m;
	int ret;

	*out = NULL;
	if (jp->depth >= PBJSON_MAX_DEPTH)
		return jp_fail(jp, "nested deeper than %d", PBJSON_MAX_DEPTH);
	m = malloc(d->sizeof_message);
	seen = calloc(d->n_fields + 1, 1);
	if (!m || !seen) {
		free(m);
		free(seen);
		return -ENOMEM;
	}
	d->message_init(m);
	jp->depth++;
	ret = decode_fields(jp, m, seen);
	jp->depth--;
	free(seen);
	if (!ret && !protobuf_c_message_check(m))
		ret = jp_fail(jp, "%s: incomplete message", d->name);
	if (ret) {
		protobuf_c_message_free_unpacked(m, NULL);
		if (ret == -ENOMEM && !jp->err[0])
			snprintf(jp->err, sizeof(jp->err), "out of memory");
		return ret;
	}
	*out = m;
	return 0;
}
