// SPDX-License-Identifier: MIT
/* Exit statuses (common/exitcode.h): each errno class lands where the README says. */
#include <criterion/criterion.h>
#include <errno.h>

#include "common/exitcode.h"

Test(exitcode, classes)
{
	static const struct { int err, want; } cases[] = {
		{ 0, FERRY_EXIT_OK },
		{ -EPERM, FERRY_EXIT_LOCAL }, { -EACCES, FERRY_EXIT_LOCAL },
		{ -ENOSPC, FERRY_EXIT_LOCAL }, { -ENOMEM, FERRY_EXIT_LOCAL },
		{ -EADDRINUSE, FERRY_EXIT_LOCAL },
		{ -ECONNREFUSED, FERRY_EXIT_PEER }, { -ETIMEDOUT, FERRY_EXIT_PEER },
		{ -ECONNRESET, FERRY_EXIT_PEER }, { -EPROTO, FERRY_EXIT_PEER },
		{ -EREMOTEIO, FERRY_EXIT_PEER }, { -EHOSTUNREACH, FERRY_EXIT_PEER },
		{ -ESRCH, FERRY_EXIT_TARGET }, { -EOPNOTSUPP, FERRY_EXIT_TARGET },
		{ -EINTR, FERRY_EXIT_FAILED }, { -EINVAL, FERRY_EXIT_FAILED },
		{ -EIO, FERRY_EXIT_FAILED },	/* no class of its own: anyone's */
		{ EPERM, FERRY_EXIT_LOCAL },	/* positive errno too */
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_expect_eq(exit_status_of(cases[i].err, FERRY_EXIT_FAILED), cases[i].want,
			     "errno %d: %d, want %d", cases[i].err,
			     exit_status_of(cases[i].err, FERRY_EXIT_FAILED), cases[i].want);
	/* the fallback is the caller's */
	cr_expect_eq(exit_status_of(-EINVAL, FERRY_EXIT_TARGET), FERRY_EXIT_TARGET);
	/* migrate's in-doubt status is the one handover.md documents */
	cr_expect_eq(FERRY_EXIT_IN_DOUBT, 3);
	cr_expect_eq(FERRY_EXIT_USAGE, 2);
}
