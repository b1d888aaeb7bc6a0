// SPDX-License-Identifier: MIT
/* Memory operation lists for the restorer blob, and sorted address ranges. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "dest-agent/restore.h"

int ops_add(struct ops *o, uint32_t type, uint64_t addr, uint64_t len)
{
	struct rst_op *last = o->nr ? &o->op[o->nr - 1] : NULL;

	/* adjacent reads of one file, or discards, become one op */
	if (last && last->type == type && last->addr + last->len == addr &&
	    (type == RST_OP_DISCARD || type == RST_OP_ZERO)) {
		last->len += len;
		return 0;
	}
	if (grow_array(&o->op, &o->cap, o->nr, sizeof(*o->op)))
		return -ENOMEM;
	o->op[o->nr++] = (struct rst_op){ .type = type, .addr = addr, .len = len };
	return 0;
}

/* Paths repeat (one pages file, many reads): keep the last one only once. */
int ops_set_path(struct ops *o, const char *path)
{
	size_t len = strlen(path) + 1, last = 0;
	struct rst_op *op = &o->op[o->nr - 1];

	if (o->nr > 1 && o->op[o->nr - 2].path) {
		last = o->op[o->nr - 2].path - 1;
		if (!strcmp(o->str + last, path)) {
			op->path = last + 1;
			return 0;
		}
	}
	if (o->str_len + len > o->str_cap) {
		size_t cap = o->str_cap ? o->str_cap * 2 : 4096;
		char *n;

		while (cap < o->str_len + len)
			cap *= 2;
		n = realloc(o->str, cap);
		if (!n)
			return -ENOMEM;
		o->str = n;
		o->str_cap = cap;
	}
	memcpy(o->str + o->str_len, path, len);
	op->path = o->str_len + 1;
	o->str_len += len;
	return 0;
}

/* A read continuing the previous one in the file and in memory extends it. */
static void ops_merge_read(struct ops *o)
{
	struct rst_op *a, *b;

	if (o->nr < 2)
		return;
	a = &o->op[o->nr - 2];
	b = &o->op[o->nr - 1];
	if ((a->type == RST_OP_READ || a->type == RST_OP_READ_CMP) && b->type == a->type &&
	    a->path == b->path &&
	    a->addr + a->len == b->addr && a->off + a->len == b->off) {
		a->len += b->len;
		o->nr--;
	}
}

void ops_free(struct ops *o)
{
	free(o->op);
	free(o->str);
	memset(o, 0, sizeof(*o));
}

size_t ops_payload_size(const struct ops *o)
{
	return o->nr * sizeof(struct rst_op) + o->str_len;
}

void ops_to_payload(const struct ops *o, uint8_t *buf, uint64_t addr)
{
	uint64_t str_addr = addr + o->nr * sizeof(struct rst_op);
	struct rst_op *op = (struct rst_op *)buf;
	size_t i;

	memcpy(buf, o->op, o->nr * sizeof(*op));
	memcpy(buf + o->nr * sizeof(*op), o->str, o->str_len);
	for (i = 0; i < o->nr; i++)
		if (op[i].path)
			op[i].path = str_addr + op[i].path - 1;
}

int ranges_add(struct ranges *rs, uint64_t start, uint64_t end)
{
	struct range *last = rs->nr ? &rs->r[rs->nr - 1] : NULL;

	if (start >= end)
		return 0;
	if (last && start < last->end)
		return -EINVAL;		/* callers add in address order */
	if (last && start == last->end) {
		last->end = end;
		return 0;
	}
	if (grow_array(&rs->r, &rs->cap, rs->nr, sizeof(*rs->r)))
		return -ENOMEM;
	rs->r[rs->nr++] = (struct range){ start, end };
	return 0;
}

int ranges_and(const struct ranges *a, const struct ranges *b, struct ranges *out)
{
	struct ranges rest;
	int ret;

	ret = ranges_sub(a, b, &rest);
	if (ret)
		return ret;
	ret = ranges_sub(a, &rest, out);
	ranges_free(&rest);
	return ret;
}

int ranges_sub(const struct ranges *a, const struct ranges *b, struct ranges *out)
{
	size_t i, j = 0;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < a->nr && !ret; i++) {
		uint64_t s = a->r[i].start, e = a->r[i].end;

		while (j < b->nr && b->r[j].end <= s)
			j++;
		for (size_t k = j; k < b->nr && b->r[k].start < e && !ret; k++) {
			ret = ranges_add(out, s, b->r[k].start > s ? b->r[k].start : s);
			if (b->r[k].end > s)
				s = b->r[k].end;
		}
		if (!ret && s < e)
			ret = ranges_add(out, s, e);
	}
	if (ret)
		ranges_free(out);
	return ret;
}

void ranges_free(struct ranges *rs)
{
	free(rs->r);
	memset(rs, 0, sizeof(*rs));
}

int ops_add_read(struct ops *o, uint32_t type, uint64_t addr, uint64_t len, const char *path,
		 uint64_t off)
{
	int ret = ops_add(o, type, addr, len);

	if (ret)
		return ret;
	o->op[o->nr - 1].off = off;
	ret = ops_set_path(o, path);
	if (!ret)
		ops_merge_read(o);
	return ret;
}

int ops_add_read_ref(struct ops *o, uint32_t type, uint64_t addr, uint64_t len, uint64_t path_ref,
		     uint64_t off)
{
	int ret = ops_add(o, type, addr, len);

	if (ret)
		return ret;
	o->op[o->nr - 1].off = off;
	o->op[o->nr - 1].path = path_ref;
	ops_merge_read(o);
	return 0;
}
