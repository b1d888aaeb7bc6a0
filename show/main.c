// SPDX-License-Identifier: MIT
/* `ferry-show`: look inside image stacks (decode, encode, summary, page). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/exitcode.h"
#include "common/log.h"
#include "common/util.h"
#include "show/imgjson.h"
#include "show/show.h"

static const char usage[] =
	"usage: ferry-show decode [--kind K] FILE.img an image file as JSON (stdout)\n"
	"       ferry-show encode FILE.json OUT.img   JSON (from decode) back to an image\n"
	"       ferry-show summary [--json] DIR       a stack: rounds, processes, pages, space\n"
	"       ferry-show page [--json] DIR PID ADDR which round, file and offset hold a page\n"
	"\n"
	"Reads the image stacks written by `pageserver` and `migrate --images-dir`\n"
	"(docs/image-format.md). decode prints any image file of a round (inventory,\n"
	"pstree, core, mm, files, pagemap, pipe, shmem, ghost, stats, netaddr) as\n"
	"JSON; encode turns that JSON back into the same bytes. FILE.json may be\n"
	"- (stdin).\n"
	"The kind of image comes from its file name, or from --kind.\n"
	"DIR is a stack DIR/<id> (its highest complete round is the top) or a round\n"
	"directory DIR/<id>/<k>. ADDR is hexadecimal (0x...) or decimal.\n"
	"\n"
	"  --json                machine-readable output (summary, page)\n"
	"  --kind K              decode FILE as an image of kind K whatever its name:\n"
	"                        inventory, pagemap, pstree, core, mm, files, pipe,\n"
	"                        shmem, ghost, stats or netaddr\n"
	"  -v, --verbose         more detail on stderr (repeat for debug)\n"
	"  --log-file FILE       detailed log\n"
	"  -h, --help            this text\n"
	"\n"
	"Exit status: 0 done, 2 bad usage, 4 bad input (no such file, not an image,\n"
	"a broken stack, a pid or page not in the stack, JSON refused), 6 a local\n"
	"problem (permission, disk, memory), 1 anything else.\n";

enum { OPT_JSON = 256, OPT_LOG, OPT_KIND };

static const struct option long_opts[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "kind", required_argument, NULL, OPT_KIND },
	{ "verbose", no_argument, NULL, 'v' },
	{ "log-file", required_argument, NULL, OPT_LOG },
	{ "help", no_argument, NULL, 'h' },
	{ 0 }
};

/* A whole file (or stdin: "-") into memory, at most @max bytes. */
static int slurp(const char *path, size_t max, char **out, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = NULL, *p;
	ssize_t k;
	int fd, ret = 0;

	fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : 0;
	if (fd < 0)
		return -errno;
	for (;;) {
		if (!buf || n == cap) {
			cap = buf ? 2 * cap : cap;
			p = cap > max + 1 ? NULL : realloc(buf, cap);
			if (!p) {
				ret = cap > max + 1 ? -EFBIG : -ENOMEM;
				break;
			}
			buf = p;
		}
		k = read(fd, buf + n, cap - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			ret = k < 0 ? -errno : 0;
			break;
		}
		n += k;
	}
	if (fd)
		close(fd);
	if (ret) {
		free(buf);
		return ret;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* Bad input is the target's problem; permission, disk, memory are ours. */
static int verdict(int ret)
{
	return exit_status_of(ret, FERRY_EXIT_TARGET);
}

static int cmd_decode(const char *path, const struct img_kind *k)
{
	struct jbuf b = { 0 };
	size_t len;
	char *data;
	int ret;

	if (!k) {
		const char *base = strrchr(path, '/');

		base = base ? base + 1 : path;
		pr_err("%s: %s", path, !strncmp(base, "pages-", 6) ?
		       "raw page data, not an image (see: ferry-show page)" :
		       "not a ferry image name (inventory.img, core-<pid>.img, ...; or give --kind)");
		return FERRY_EXIT_TARGET;
	}
	ret = slurp(path, IMG_MAX_FILE, &data, &len);
	if (ret) {
		pr_err("cannot read %s: %s", path, strerror(-ret));
		return verdict(ret);
	}
	ret = img_to_json(k, path, data, len, &b);
	free(data);
	if (!ret && (fputs(b.s, stdout) == EOF || fflush(stdout)))
		ret = -errno;
	jbuf_free(&b);
	if (ret)
		pr_err("%s: cannot decode: %s", path, strerror(-ret));
	return verdict(ret);
}

static int cmd_encode(const char *in, const char *out)
{
	struct img_buf img;
	char err[256], *text;
	size_t len;
	int ret, fd;

	ret = slurp(in, 4ULL * IMG_MAX_FILE, &text, &len);
	if (ret) {
		pr_err("cannot read %s: %s", in, strerror(-ret));
		return verdict(ret);
	}
	ret = img_from_json(text, len, &img, NULL, err, sizeof(err));
	free(text);
	if (ret) {
		pr_err("%s: %s", in, err);
		return verdict(ret);
	}
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ret = fd < 0 ? -errno : write_full(fd, img.data, img.len);
	if (fd >= 0 && close(fd) && !ret)
		ret = -errno;
	img_buf_free(&img);
	if (ret) {
		pr_err("cannot write %s: %s", out, strerror(-ret));
		return exit_status_of(ret, FERRY_EXIT_LOCAL);
	}
	return 0;
}

static int parse_u64(const char *s, int base, uint64_t max, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, base);
	return errno || end == s || *end || *s == '-' || *v > max ? -EINVAL : 0;
}

int main(int argc, char **argv)
{
	const char *log_file = NULL, *cmd, *kind = NULL;
	const struct img_kind *k = NULL;
	int verbose = 0, c, nargs;
	bool json = false;
	uint64_t pid, addr;
	char msg[160];

	log_init("ferry-show", 0, NULL);
	opterr = 0;
	while ((c = getopt_long(argc, argv, "vh", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON: json = true; break;
		case OPT_LOG: log_file = optarg; break;
		case OPT_KIND: kind = optarg; break;
		case 'v': verbose++; break;
		case 'h': fputs(usage, stdout); return 0;
		default:
			return usage_error("%s", getopt_problem(argv, optind, optopt, msg, sizeof(msg)));
		}
	}
	if (optind == argc)
		return usage_error("%s", "a command expected: decode, encode, summary or page");
	cmd = argv[optind++];
	log_init("ferry-show", verbose, log_file);
	nargs = argc - optind;
	argv += optind;
	if (!strcmp(cmd, "decode") || !strcmp(cmd, "encode")) {
		if (json)
			return usage_error("--json goes with summary and page (%s prints JSON anyway)", cmd);
		if (nargs != (cmd[0] == 'd' ? 1 : 2))
			return usage_error("%s", cmd[0] == 'd' ? "decode wants one FILE.img" :
					   "encode wants FILE.json and OUT.img");
		if (kind && cmd[0] == 'e')
			return usage_error("%s", "--kind goes with decode (encode reads the kind from the JSON)");
		if (kind && !(k = img_kind_by_name(kind)))
			return usage_error("unknown image kind '%s'", kind);
		if (cmd[0] == 'd')
			return cmd_decode(argv[0], k ? k : img_kind_of_file(argv[0]));
		return cmd_encode(argv[0], argv[1]);
	}
	if (kind)
		return usage_error("%s", "--kind goes with decode");
	if (!strcmp(cmd, "summary")) {
		if (nargs != 1)
			return usage_error("%s", "summary wants one DIR");
		return verdict(show_summary(argv[0], json));
	}
	if (!strcmp(cmd, "page")) {
		if (nargs != 3)
			return usage_error("%s", "page wants DIR PID ADDR");
		if (parse_u64(argv[1], 10, UINT32_MAX, &pid))
			return usage_error("'%s' is not a pid", argv[1]);
		if (parse_u64(argv[2], 0, UINT64_MAX, &addr))
			return usage_error("'%s' is not an address", argv[2]);
		return verdict(show_page(argv[0], pid, addr, json));
	}
	return usage_error("unknown command '%s' (decode, encode, summary, page)", cmd);
}
