// SPDX-License-Identifier: MIT
/* Image files: magic + length-prefixed protobuf messages, built and parsed in memory. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/endian.h"
#include "common/log.h"
#include "common/util.h"
#include "proto/image.h"

static int img_buf_reserve(struct img_buf *b, size_t more)
{
	size_t cap = b->cap ? b->cap : 4096;
	uint8_t *p;

	if (b->len + more <= b->cap)
		return 0;
	while (cap < b->len + more)
		cap *= 2;
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int img_buf_init(struct img_buf *b)
{
	memset(b, 0, sizeof(*b));
	if (img_buf_reserve(b, 4))
		return -ENOMEM;
	put_le32(b->data, IMG_MAGIC);
	b->len = 4;
	return 0;
}

int img_buf_add(struct img_buf *b, const ProtobufCMessage *msg)
{
	size_t sz = protobuf_c_message_get_packed_size(msg);

	if (sz > IMG_MAX_ENTRY)
		return -E2BIG;
	if (img_buf_reserve(b, sz + 4))
		return -ENOMEM;
	put_le32(b->data + b->len, sz);
	protobuf_c_message_pack(msg, b->data + b->len + 4);
	b->len += sz + 4;
	return 0;
}

void img_buf_free(struct img_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

int img_reader_init(struct img_reader *r, const char *name, const void *data, size_t len)
{
	r->data = data;
	r->len = len;
	r->pos = 4;
	r->name = name;
	if (len < 4 || get_le32(data) != IMG_MAGIC) {
		pr_err("%s: not a ferry image (bad magic)", name);
		return -EINVAL;
	}
	return 0;
}

int img_read_msg(struct img_reader *r, const ProtobufCMessageDescriptor *d, void **msg)
{
	uint32_t sz;

	if (r->pos == r->len)
		return 0;
	if (r->len - r->pos < 4) {
		pr_err("%s: truncated entry header at offset %zu", r->name, r->pos);
		return -EINVAL;
	}
	sz = get_le32(r->data + r->pos);
	if (sz > IMG_MAX_ENTRY) {
		pr_err("%s: entry of %u bytes at offset %zu is too large", r->name, sz, r->pos);
		return -EINVAL;
	}
	if (r->len - r->pos - 4 < sz) {
		pr_err("%s: truncated entry at offset %zu (%u bytes announced)", r->name, r->pos, sz);
		return -EINVAL;
	}
	*msg = protobuf_c_message_unpack(d, NULL, sz, r->data + r->pos + 4);
	if (!*msg) {
		pr_err("%s: malformed %s entry at offset %zu", r->name, d->name, r->pos);
		return -EINVAL;
	}
	r->pos += 4 + sz;
	return 1;
}

int img_load_file(int dirfd, const char *name, void **data, size_t *len)
{
	struct stat st;
	void *buf = NULL;
	int fd, ret;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		ret = -errno;
		goto out;
	}
	if (st.st_size > IMG_MAX_FILE) {
		pr_err("%s: image file too large (%lld bytes)", name, (long long)st.st_size);
		ret = -EFBIG;
		goto out;
	}
	buf = malloc(st.st_size ? st.st_size : 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	ret = read_full(fd, buf, st.st_size);
	if (ret)
		goto out;
	*data = buf;
	*len = st.st_size;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return ret;
}

int img_write_file(int dirfd, const char *name, const void *data, size_t len)
{
	int fd, ret;

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	ret = write_full(fd, data, len);
	if (close(fd) && !ret)
		ret = -errno;
	return ret;
}

int img_load_one(int dirfd, const char *name, const ProtobufCMessageDescriptor *d, void **msg)
{
	struct img_reader r;
	size_t len;
	void *data;
	int ret;

	ret = img_load_file(dirfd, name, &data, &len);
	if (ret) {
		errno = -ret;
		pr_perror("cannot read image %s", name);
		return ret;
	}
	ret = img_reader_init(&r, name, data, len);
	if (!ret) {
		ret = img_read_msg(&r, d, msg);
		if (ret == 0) {
			pr_err("%s: empty image", name);
			ret = -EINVAL;
		} else if (ret == 1 && r.pos != r.len) {
			pr_err("%s: data after its one entry", name);
			protobuf_c_message_free_unpacked(*msg, NULL);
			ret = -EINVAL;
		} else if (ret == 1) {
			ret = 0;
		}
	}
	free(data);
	return ret;
}
