// SPDX-License-Identifier: MIT
/*
 * Ghost files: regular files a process holds open or maps after they were
 * deleted. No path leads to them at the destination, so their data travels
 * in the images (ghost-<id>.img, once per file however many fds and
 * mappings), holes left out (SEEK_DATA/SEEK_HOLE).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "proto/image.h"
#include "source-agent/files.h"
#include "source-agent/ghost.h"


struct chunks {
	GhostChunk *c;
	GhostChunk **p;
	size_t nr;
	uint64_t bytes;
};

static void chunks_free(struct chunks *ch)
{
	size_t i;

	for (i = 0; i < ch->nr; i++)
		free(ch->c[i].data.data);
	free(ch->c);
	free(ch->p);
}

static int chunk_add(struct chunks *ch, int fd, uint64_t off, uint64_t len)
{
	GhostChunk *c;
	int ret;

	c = realloc(ch->c, (ch->nr + 1) * sizeof(*c));
	if (!c)
		return -ENOMEM;
	ch->c = c;
	c = &ch->c[ch->nr];
	ghost_chunk__init(c);
	c->off = off;
	c->data.len = len;
	c->data.data = malloc(len ? len : 1);
	if (!c->data.data)
		return -ENOMEM;
	ch->nr++;
	ret = pread_full(fd, c->data.data, len, off);
	ch->bytes += len;
	return ret;
}

struct extent_ctx {
	struct chunks *ch;
	int fd;
	const char *what, *path;
};

/* One data extent of the file; holes stay holes. */
static int add_extent(void *arg, uint64_t start, uint64_t end)
{
	struct extent_ctx *x = arg;

	if (x->ch->bytes + (end - start) > GHOST_MAX_DATA) {
		pr_err("%s %s holds more than %u MiB of data: not supported yet", x->what,
		       x->path, GHOST_MAX_DATA >> 20);
		return -EOPNOTSUPP;
	}
	return chunk_add(x->ch, x->fd, start, end - start);
}

int dump_file_data(const char *link, const char *name, const char *what, const char *path,
		   struct sink *sink)
{
	GhostFileEntry ge = GHOST_FILE_ENTRY__INIT;
	struct chunks ch = { 0 };
	struct img_buf b = { 0 };
	struct stat st;
	size_t i;
	int gfd, ret;

	gfd = open(link, O_RDONLY | O_CLOEXEC);
	if (gfd < 0 || fstat(gfd, &st)) {
		ret = -errno;
		pr_perror("cannot read %s %s", what, path);
		goto out;
	}
	{
		struct extent_ctx x = { &ch, gfd, what, path };

		ret = for_each_data_extent(gfd, st.st_size, add_extent, &x);
	}
	if (ret)
		goto out;
	ch.p = calloc(ch.nr + 1, sizeof(*ch.p));
	if (!ch.p) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < ch.nr; i++)
		ch.p[i] = &ch.c[i];
	ge.size = st.st_size;
	ge.mode = st.st_mode & 07777;
	ge.has_uid = ge.has_gid = 1;
	ge.uid = st.st_uid;
	ge.gid = st.st_gid;
	ge.chunks = ch.p;
	ge.n_chunks = ch.nr;
	ret = img_buf_init(&b);
	if (!ret)
		ret = img_buf_add(&b, &ge.base);
	if (!ret)
		ret = sink->ops->add_file(sink, name, b.data, b.len);
out:
	img_buf_free(&b);
	chunks_free(&ch);
	if (gfd >= 0)
		close(gfd);
	return ret;
}

int ghost_note(struct file_ids *ids, pid_t pid, int fd, const char *link, const struct stat *st,
	       const char *path, struct sink *sink, uint32_t *id)
{
	struct held *o;
	char name[64];
	uint32_t n;
	int ret;

	ret = file_ids_add_held(ids, pid, fd, st, path, GHOST_KIND, &n);
	if (id)
		*id = n;
	o = &ids->held[n - 1];
	if (ret || !sink || o->sent)
		return ret;
	o->sent = true;
	snprintf(name, sizeof(name), "ghost-%u.img", n);
	return dump_file_data(link, name, GHOST_KIND, path, sink);
}
