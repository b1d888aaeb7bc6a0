// SPDX-License-Identifier: MIT
/*
 * Seed corpora for the fuzz targets: `seeds DIR` writes DIR/pagemap/,
 * DIR/image/ and DIR/frame/, each a few valid inputs (and a few broken ones)
 * in the input layout of its target (fuzz.h). Built with the normal compiler.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"
#include "proto/image.h"
#include "transport/frame.h"
#include "tests/fuzz/fuzz.h"

#define PG PAGE_SIZE

static const char *out_dir;

static void put_file(const char *target, int n, const void *pre, size_t pre_len,
		     const void *data, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", out_dir, target);
	if (mkdir(path, 0755) && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/seed-%02d", out_dir, target, n);
	f = fopen(path, "w");
	if (!f || fwrite(pre, 1, pre_len, f) != pre_len || fwrite(data, 1, len, f) != len ||
	    fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void check(int ret, const char *what)
{
	if (ret) {
		fprintf(stderr, "seeds: %s: %s\n", what, strerror(-ret));
		exit(1);
	}
}

/* ---- pagemap ---- */

static void pagemap_seed(int n, const struct pagemap *pm, uint64_t pages_size)
{
	uint8_t hdr[FUZZ_PM_HDR];
	struct img_buf b;

	put_le64(hdr, pages_size);
	check(pagemap_build(pm, pages_size, &b), "pagemap_build");
	put_file("pagemap", n, hdr, sizeof(hdr), b.data, b.len);
	img_buf_free(&b);
}

static void pagemap_seeds(void)
{
	struct pm_ext e[40];
	struct pagemap pm = { .pid = 1234, .ext = e };
	uint64_t off = 0;
	size_t i;

	pm.nr = 0;
	pagemap_seed(0, &pm, 0);
	e[0] = (struct pm_ext){ 0x400000, 4, PE_FLAGS__PE_PRESENT, 0 };
	e[1] = (struct pm_ext){ 0x404000, 2, PE_FLAGS__PE_ZERO, 0 };
	e[2] = (struct pm_ext){ 0x7f0000000000ULL, 16, PE_FLAGS__PE_PARENT, 0 };
	e[3] = (struct pm_ext){ 0x7f0000020000ULL, 1, PE_FLAGS__PE_PRESENT, 4 * PG };
	e[4] = (struct pm_ext){ TASK_SIZE_MAX - PG, 1, PE_FLAGS__PE_ZERO, 0 };
	pm.nr = 5;
	pagemap_seed(1, &pm, 5 * PG);
	for (i = 0; i < 40; i++) {
		e[i].vaddr = 0x10000000 + i * 3 * PG;
		e[i].nr_pages = 1 + i % 3;
		e[i].flags = 1u << (i % 3);
		e[i].off = 0;
		if (e[i].flags == PE_FLAGS__PE_PRESENT) {
			e[i].off = off;
			off += e[i].nr_pages * PG;
		}
	}
	pm.nr = 40;
	pagemap_seed(2, &pm, off);
	/* the same with a pages file one byte short */
	pagemap_seed(3, &pm, off - 1);
	/* post-copy: REMOTE runs (no data) between PRESENT and ZERO ones */
	e[0] = (struct pm_ext){ 0x400000, 4, PE_FLAGS__PE_PRESENT, 0 };
	e[1] = (struct pm_ext){ 0x404000, 8, PE_FLAGS__PE_REMOTE, 0 };
	e[2] = (struct pm_ext){ 0x40c000, 2, PE_FLAGS__PE_ZERO, 0 };
	e[3] = (struct pm_ext){ 0x7f0000000000ULL, 1, PE_FLAGS__PE_REMOTE, 0 };
	pm.nr = 4;
	pagemap_seed(4, &pm, 4 * PG);
}

/* ---- image ---- */

static size_t desc_index(const ProtobufCMessageDescriptor *d)
{
	size_t i;

	for (i = 0; i < FUZZ_NR_IMG_DESC; i++)
		if (fuzz_img_desc[i] == d)
			return i;
	fprintf(stderr, "seeds: %s not in fuzz_img_desc\n", d->name);
	exit(1);
}

static void image_seed(int n, const ProtobufCMessage *const *msgs, size_t nr)
{
	uint8_t sel = desc_index(msgs[0]->descriptor);
	struct img_buf b;
	size_t i;

	check(img_buf_init(&b), "img_buf_init");
	for (i = 0; i < nr; i++)
		check(img_buf_add(&b, msgs[i]), "img_buf_add");
	put_file("image", n, &sel, 1, b.data, b.len);
	img_buf_free(&b);
}

static void image_seeds(void)
{
	static uint32_t threads[] = { 100, 101, 102 };
	static uint64_t auxv[] = { 6, 4096, 0, 0 };
	static uint8_t bytes[64] = "unread pipe data";
	static char cwd[] = "/", exe[] = "/usr/bin/python3", path[] = "/usr/lib/libc.so.6";
	InventoryEntry inv = INVENTORY_ENTRY__INIT;
	PstreeEntry ps[2] = { PSTREE_ENTRY__INIT, PSTREE_ENTRY__INIT };
	PipeDataEntry pd = PIPE_DATA_ENTRY__INIT;
	GhostChunk gc = GHOST_CHUNK__INIT, *gcs[1] = { &gc };
	GhostFileEntry gf = GHOST_FILE_ENTRY__INIT;
	VmaEntry v = VMA_ENTRY__INIT, *vs[1] = { &v };
	MmEntry mm = MM_ENTRY__INIT;
	FdEntry fd = FD_ENTRY__INIT, *fds[1] = { &fd };
	FilesEntry fe = FILES_ENTRY__INIT;
	CredsEntry cr = CREDS_ENTRY__INIT;
	ThreadCore tc = THREAD_CORE__INIT, *tcs[1] = { &tc };
	ProcCore pc = PROC_CORE__INIT;
	const ProtobufCMessage *m[3];

	inv.round = 3;
	inv.final = 1;
	inv.root_pid = 100;
	inv.migration_id = "mig-1";
	inv.page_size = 4096;
	m[0] = &inv.base;
	image_seed(0, m, 1);

	ps[0].pid = 100;
	ps[0].ppid = 1;
	ps[0].pgid = 100;
	ps[0].sid = 100;
	ps[0].n_threads = 3;
	ps[0].threads = threads;
	ps[1] = ps[0];
	ps[1].pid = 101;
	ps[1].ppid = 100;
	ps[1].n_threads = 1;
	m[0] = &ps[0].base;
	m[1] = &ps[1].base;
	image_seed(1, m, 2);

	pd.pipe_id = 77;
	pd.data.data = bytes;
	pd.data.len = sizeof(bytes);
	m[0] = &pd.base;
	image_seed(2, m, 1);

	gc.off = 8192;
	gc.data.data = bytes;
	gc.data.len = sizeof(bytes);
	gf.size = 1 << 20;
	gf.mode = 0644;
	gf.n_chunks = 1;
	gf.chunks = gcs;
	m[0] = &gf.base;
	image_seed(3, m, 1);

	v.start = 0x7f0000000000ULL;
	v.end = v.start + 16 * PG;
	v.prot = 5;
	v.flags = 2;
	v.kind = VMA_KIND__VMA_FILE;
	v.path = path;
	mm.exe = exe;
	mm.n_auxv = 4;
	mm.auxv = auxv;
	mm.n_vmas = 1;
	mm.vmas = vs;
	m[0] = &mm.base;
	image_seed(4, m, 1);

	fd.fd = 3;
	fd.type = FD_TYPE__FD_REG;
	fd.path = path;
	fd.has_pos = 1;
	fd.pos = 12;
	fe.n_fds = 1;
	fe.fds = fds;
	m[0] = &fe.base;
	image_seed(5, m, 1);

	tc.tid = 100;
	tc.regs.data = bytes;
	tc.regs.len = sizeof(bytes);
	tc.xstate.data = bytes;
	tc.xstate.len = 16;
	pc.pid = 100;
	pc.n_threads = 1;
	pc.threads = tcs;
	pc.creds = &cr;
	pc.cwd = cwd;
	pc.root = cwd;
	pc.comm = "python3";
	m[0] = &pc.base;
	image_seed(6, m, 1);
}

/* ---- frame ---- */

static uint8_t stream[1 << 17];
static size_t stream_len;

static void frame_msg(uint32_t type, const ProtobufCMessage *msg)
{
	ssize_t n = frame_put_msg(stream + stream_len, sizeof(stream) - stream_len, type, msg);

	check(n < 0 ? (int)n : 0, "frame_put_msg");
	stream_len += n;
}

static void frame_pages(uint32_t nr, const void *data)
{
	ssize_t n = frame_put_pages(stream + stream_len, sizeof(stream) - stream_len, 100,
				    0x7f0000000000ULL, nr, data);

	check(n < 0 ? (int)n : 0, "frame_put_pages");
	stream_len += n;
}

static void frame_seeds(void)
{
	static uint8_t pages[4 * PG], noise[20 * PG];
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	Hello h = HELLO__INIT;
	RoundBegin rb = ROUND_BEGIN__INIT;
	FileHead fh = FILE_HEAD__INIT;
	RoundEnd re = ROUND_END__INIT;
	RoundAck ra = ROUND_ACK__INIT;
	PageRequest rq = PAGE_REQUEST__INIT;
	PostcopyDone pd = POSTCOPY_DONE__INIT;
	uint8_t hdr[FRAME_HDR];
	ssize_t len;
	size_t i;
	int n = 0;

	for (i = 0; i < sizeof(pages); i++)
		pages[i] = "ferry pages "[i % 12];
	for (i = 0; i < sizeof(noise); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		noise[i] = x >> 32;
	}
	h.version = WIRE_VERSION;
	h.root_pid = 100;
	h.source_host = "src";
	rb.round = 1;
	fh.name = "core-100.img";
	fh.size = 3;
	re.round = 1;
	re.pages_sent = 7;
	ra.round = 1;
	ra.ok = 1;
	ra.has_pages_stored = 1;
	ra.pages_stored = 7;

	/* one frame of each kind on its own */
	stream_len = 0;
	frame_msg(FRAME_HELLO, &h.base);
	put_file("frame", n++, "", 0, stream, stream_len);
	stream_len = 0;
	frame_pages(2, pages);			/* text: lz4 */
	put_file("frame", n++, "", 0, stream, stream_len);
	stream_len = 0;
	frame_pages(1, noise);			/* random: raw */
	put_file("frame", n++, "", 0, stream, stream_len);
	stream_len = 0;
	frame_pages(3, NULL);			/* zero */
	put_file("frame", n++, "", 0, stream, stream_len);
	stream_len = 0;
	frame_msg(FRAME_ROUND_ACK, &ra.base);
	put_file("frame", n++, "", 0, stream, stream_len);
	stream_len = 0;
	frame_pages(20, noise);			/* raw, lz4 not even tried */
	put_file("frame", n++, "", 0, stream, stream_len);

	/* a whole round as a source sends it, keepalives included */
	stream_len = 0;
	frame_msg(FRAME_HELLO, &h.base);
	stream_len += frame_put_header(stream + stream_len, FRAME_PING, 0);
	frame_msg(FRAME_ROUND_BEGIN, &rb.base);
	frame_pages(2, pages);
	frame_pages(1, NULL);
	frame_msg(FRAME_FILE_HEAD, &fh.base);
	stream_len += frame_put_header(stream + stream_len, FRAME_FILE_DATA, 3);
	memcpy(stream + stream_len, "abc", 3);
	stream_len += 3;
	frame_msg(FRAME_ROUND_END, &re.base);
	put_file("frame", n++, "", 0, stream, stream_len);

	/* post-copy: a final round's REMOTE batch, a page request, the end */
	len = frame_put_remote(stream, sizeof(stream), 100, 0x7f0000004000ULL, 9);
	check(len < 0 ? (int)len : 0, "frame_put_remote");
	stream_len = len;
	rq.pid = 100;
	rq.vaddr = 0x7f0000004000ULL;
	rq.nr_pages = 16;
	frame_msg(FRAME_PAGE_REQUEST, &rq.base);
	pd.ok = 1;
	pd.has_pages = pd.has_faults = 1;
	pd.pages = 9;
	pd.faults = 1;
	frame_msg(FRAME_POSTCOPY_DONE, &pd.base);
	put_file("frame", n++, "", 0, stream, stream_len);

	/* a ping alone, a commit alone (both empty) */
	frame_put_header(hdr, FRAME_PING, 0);
	put_file("frame", n++, "", 0, hdr, sizeof(hdr));
	frame_put_header(hdr, FRAME_COMMIT, 0);
	put_file("frame", n++, "", 0, hdr, sizeof(hdr));

	/* a header alone, and one of an unknown type */
	frame_put_header(hdr, FRAME_PAGES, PB_HDR + 100);
	put_file("frame", n++, "", 0, hdr, sizeof(hdr));
	frame_put_header(hdr, 0x16030100, 5);
	put_file("frame", n++, "", 0, hdr, sizeof(hdr));
}

/* ---- json (ferry-show encode): a few valid documents of several kinds ---- */

static void json_seeds(void)
{
	static const char *const docs[] = {
		"{\"image\": \"inventory\", \"entries\": [{\"inventory_entry\": {\"round\": 3, "
		"\"final\": true, \"root_pid\": 4242, \"migration_id\": \"m-1\", "
		"\"page_size\": 4096, \"created_ns\": 18446744073709551615}}]}",
		"{\"image\": \"pagemap\", \"entries\": [{\"pagemap_head\": {\"pid\": 7, "
		"\"pages_bytes\": 8192}}, {\"pagemap_entry\": {\"vaddr\": 4096, \"nr_pages\": 2, "
		"\"flags\": 1, \"off\": 0}}, {\"pagemap_entry\": {\"vaddr\": 12288, "
		"\"nr_pages\": 1, \"flags\": 4}}]}",
		"{\"image\": \"pstree\", \"entries\": [{\"pstree_entry\": {\"pid\": 1, \"ppid\": 0, "
		"\"pgid\": 1, \"sid\": 1, \"threads\": [1, 2], \"stopped\": false}}]}",
		"{\"image\": \"files\", \"entries\": [{\"files_entry\": {\"fds\": [{\"fd\": 0, "
		"\"type\": 1, \"flags\": 2, \"cloexec\": false, \"path\": \"/tmp/caf\u00e9 \\\"x\\\"\", "
		"\"sock\": {\"family\": 1, \"type\": 1, \"protocol\": 0, \"addr\": \"0100\", "
		"\"listening\": true, \"opts\": [{\"level\": 1, \"name\": 2, \"val\": \"01000000\"}]}}, "
		"{\"fd\": 1, \"type\": 4, \"flags\": 0, \"cloexec\": true, \"path\": {\"hex\": \"2fff\"}}]}}]}",
		"{\"image\": \"core\", \"entries\": [{\"proc_core\": {\"pid\": 5, \"threads\": [], "
		"\"umask\": 18, \"personality\": 0, \"creds\": {\"uid\": 0, \"euid\": 0, \"suid\": 0, "
		"\"fsuid\": 0, \"gid\": 0, \"egid\": 0, \"sgid\": 0, \"fsgid\": 0}, \"cwd\": \"/\", "
		"\"root\": \"/\", \"comm\": \"x\", \"oom_score_adj\": -1000}}]}",
		"{\"image\": \"stats\", \"entries\": [{\"round_stats_entry\": {\"round\": 1, "
		"\"final\": false, \"pages_sent\": 10}}]}",
	};
	size_t i;

	for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
		put_file("json", i, "", 0, docs[i], strlen(docs[i]));
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: seeds DIR\n");
		return 2;
	}
	out_dir = argv[1];
	if (mkdir(out_dir, 0755) && errno != EEXIST) {
		perror(out_dir);
		return 1;
	}
	pagemap_seeds();
	image_seeds();
	frame_seeds();
	json_seeds();
	return 0;
}
