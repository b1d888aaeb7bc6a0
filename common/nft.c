// SPDX-License-Identifier: MIT
/* Running the nft command (see nft.h). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/nft.h"
#include "common/util.h"

#define NFT_DEADLINE_US	(10 * 1000000ULL)

static const char *const nft_paths[] = { "/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft" };

static const char *nft_path(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(nft_paths); i++)
		if (!access(nft_paths[i], X_OK))
			return nft_paths[i];
	return NULL;
}

bool nft_available(void)
{
	return nft_path() != NULL;
}

int nft_run(int nsfd, const char *script, bool quiet)
{
	const char *nft = nft_path();
	uint64_t deadline = now_us() + NFT_DEADLINE_US;
	int p[2], status = 0;
	pid_t c, w;

	if (!nft)
		return -ENOENT;
	if (pipe2(p, O_CLOEXEC))
		return -errno;
	c = fork();
	if (c == 0) {
		int null = open("/dev/null", O_WRONLY);

		if ((nsfd >= 0 && setns(nsfd, CLONE_NEWNET)) || dup2(p[0], 0) < 0 || null < 0 ||
		    dup2(null, 1) < 0 || (quiet && dup2(null, 2) < 0))
			_exit(126);
		execl(nft, "nft", "-f", "-", (char *)NULL);
		_exit(127);
	}
	close(p[0]);
	if (c < 0) {
		close(p[1]);
		return -errno;
	}
	signal(SIGPIPE, SIG_IGN);
	write_full(p[1], script, strlen(script));
	close(p[1]);
	while ((w = waitpid(c, &status, WNOHANG)) == 0 && now_us() < deadline)
		usleep(2000);
	if (w == 0) {
		kill(c, SIGKILL);
		waitpid(c, &status, 0);
		if (!quiet)
			pr_err("nft did not finish within %llu s", NFT_DEADLINE_US / 1000000ULL);
		return -ETIMEDOUT;
	}
	if (w < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
		if (!quiet)
			pr_err("nft failed (status %#x) on: %s", status, script);
		return -EIO;
	}
	return 0;
}
