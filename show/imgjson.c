// SPDX-License-Identifier: MIT
/* Image files as JSON and back: which messages each kind of image holds. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "show/imgjson.h"

const struct img_kind img_kinds[] = {
	{ "inventory",	"inventory.img",	NULL, &inventory_entry__descriptor, 1 },
	{ "pagemap",	"pagemap-",	&pagemap_head__descriptor, &pagemap_entry__descriptor, 0 },
	{ "pstree",	"pstree.img",		NULL, &pstree_entry__descriptor, 0 },
	{ "core",	"core-",		NULL, &proc_core__descriptor, 1 },
	{ "mm",		"mm-",			NULL, &mm_entry__descriptor, 1 },
	{ "files",	"files-",		NULL, &files_entry__descriptor, 1 },
	{ "pipe",	"pipe-",		NULL, &pipe_data_entry__descriptor, 1 },
	{ "fifo",	"fifo-",		NULL, &pipe_data_entry__descriptor, 1 },
	{ "shmem",	"shmem.img",		NULL, &shmem_entry__descriptor, 0 },
	{ "ghost",	"ghost-",		NULL, &ghost_file_entry__descriptor, 1 },
	{ "memfd",	"memfd-",		NULL, &ghost_file_entry__descriptor, 1 },
	{ "stats",	"stats.img",		NULL, &round_stats_entry__descriptor, 1 },
	{ "netaddr",	"netaddr.img",		NULL, &net_addr_entry__descriptor, 1 },
	{ "ipc",	"ipc.img",		NULL, &sysv_sem_entry__descriptor, 0 },
	{ "ipc-msg",	"ipc-msg.img",		NULL, &sysv_msg_entry__descriptor, 0 },
};
const size_t img_nr_kinds = ARRAY_SIZE(img_kinds);

/* "<digits>.img" */
static bool is_number_img(const char *s)
{
	const char *p = s;

	while (*p >= '0' && *p <= '9')
		p++;
	return p > s && !strcmp(p, ".img");
}

const struct img_kind *img_kind_of_file(const char *name)
{
	const char *base = strrchr(name, '/');
	size_t i, n;

	base = base ? base + 1 : name;
	for (i = 0; i < img_nr_kinds; i++) {
		n = strlen(img_kinds[i].file);
		if (img_kinds[i].file[n - 1] == '-') {
			if (!strncmp(base, img_kinds[i].file, n) && is_number_img(base + n))
				return &img_kinds[i];
		} else if (!strcmp(base, img_kinds[i].file)) {
			return &img_kinds[i];
		}
	}
	return NULL;
}

const struct img_kind *img_kind_by_name(const char *name)
{
	size_t i;

	for (i = 0; i < img_nr_kinds; i++)
		if (!strcmp(img_kinds[i].name, name))
			return &img_kinds[i];
	return NULL;
}

int img_to_json(const struct img_kind *k, const char *name, const void *data, size_t len,
		struct jbuf *b)
{
	const ProtobufCMessageDescriptor *d;
	struct img_reader r;
	ProtobufCMessage *m;
	unsigned nr = 0;
	int ret;

	ret = img_reader_init(&r, name, data, len);
	if (ret)
		return ret;
	jbuf_printf(b, "{\n  \"image\": \"%s\",\n  \"entries\": [", k->name);
	for (;;) {
		d = !nr && k->head ? k->head : k->entry;
		ret = img_read_msg(&r, d, (void **)&m);
		if (ret <= 0)
			break;
		jbuf_printf(b, "%s\n    {\"%s\": ", nr ? "," : "", d->name);
		ret = pbjson_encode(b, m, 2);
		protobuf_c_message_free_unpacked(m, NULL);
		if (ret)
			return ret;
		jbuf_puts(b, "}");
		nr++;
	}
	if (ret)
		return ret;
	if ((k->one && nr != 1) || (k->head && !nr)) {
		pr_err("%s: %u entries, a %s image has %s", name, nr, k->name,
		       k->one ? "exactly one" : "a head first");
		return -EINVAL;
	}
	jbuf_puts(b, nr ? "\n  ]\n}\n" : "]\n}\n");
	return b->err;
}

/* "KEY": with KEY as expected. */
static int expect_key(struct jparse *jp, const char *want)
{
	size_t len;
	char *key;
	int ret;

	ret = jp_string(jp, &key, &len);
	if (ret)
		return ret;
	ret = strcmp(key, want) ? jp_fail(jp, "\"%s\" expected", want) : 0;
	free(key);
	return ret ? ret : jp_expect(jp, ':');
}

static int entries_from_json(struct jparse *jp, const struct img_kind *k, struct img_buf *out)
{
	const ProtobufCMessageDescriptor *d;
	ProtobufCMessage *m;
	unsigned nr = 0;
	int ret;

	if (jp_expect(jp, '['))
		return -EINVAL;
	if (jp_peek(jp) == ']') {
		jp->p++;
		goto out;
	}
	for (;;) {
		d = !nr && k->head ? k->head : k->entry;
		ret = jp_expect(jp, '{');
		if (!ret)
			ret = expect_key(jp, d->name);
		if (!ret)
			ret = pbjson_decode(jp, d, &m);
		if (ret)
			return ret;
		ret = img_buf_add(out, m);
		protobuf_c_message_free_unpacked(m, NULL);
		if (ret == -E2BIG)
			return jp_fail(jp, "entry larger than %u bytes", IMG_MAX_ENTRY);
		if (!ret && out->len > IMG_MAX_FILE)
			return jp_fail(jp, "image larger than %u bytes", IMG_MAX_FILE);
		if (ret)
			return ret;
		nr++;
		if (jp_expect(jp, '}'))
			return -EINVAL;
		if (jp_peek(jp) == ']') {
			jp->p++;
			break;
		}
		if (jp_expect(jp, ','))
			return -EINVAL;
	}
out:
	if ((k->one && nr != 1) || (k->head && !nr))
		return jp_fail(jp, "a %s image has %s", k->name,
			       k->one ? "exactly one entry" : "a head first");
	return 0;
}

int img_from_json(const char *text, size_t len, struct img_buf *out,
		  const struct img_kind **kind, char *err, size_t errlen)
{
	const struct img_kind *k = NULL;
	struct jparse jp;
	size_t n;
	char *name = NULL;
	int ret;

	jparse_init(&jp, text, len);
	ret = img_buf_init(out);
	if (ret)
		return ret;
	ret = jp_expect(&jp, '{');
	if (!ret)
		ret = expect_key(&jp, "image");
	if (!ret)
		ret = jp_string(&jp, &name, &n);
	if (!ret) {
		k = img_kind_by_name(name);
		if (!k)
			ret = jp_fail(&jp, "unknown image kind '%s'", name);
		free(name);
	}
	if (!ret)
		ret = jp_expect(&jp, ',');
	if (!ret)
		ret = expect_key(&jp, "entries");
	if (!ret)
		ret = entries_from_json(&jp, k, out);
	if (!ret)
		ret = jp_expect(&jp, '}');
	if (!ret)
		ret = jp_end(&jp);
	if (ret) {
		snprintf(err, errlen, "%s", jp.err[0] ? jp.err : strerror(-ret));
		img_buf_free(out);
		return ret;
	}
	if (kind)
		*kind = k;
	return 0;
}
