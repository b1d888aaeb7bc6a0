/* SPDX-License-Identifier: MIT */
/*
 * Exit statuses of every ferry command (migrate, check, restore, pageserver,
 * ferry-show), documented in the README and the man pages. Each command maps
 * its error to one of these at its exit points: a script can tell whose
 * problem it is without parsing the message.
 */
#ifndef FERRY_EXITCODE_H
#define FERRY_EXITCODE_H

#include <errno.h>

enum ferry_exit {
	FERRY_EXIT_OK		= 0,
	FERRY_EXIT_FAILED	= 1,	/* anything not classified below */
	FERRY_EXIT_USAGE	= 2,	/* bad command line (usage_error returns it) */
	FERRY_EXIT_IN_DOUBT	= 3,	/* migrate: link lost after commit (docs/handover.md) */
	FERRY_EXIT_TARGET	= 4,	/* the target: no such process or file, object refused, bad image */
	FERRY_EXIT_PEER	= 5,	/* the other host: unreachable, refused, restore failed there */
	FERRY_EXIT_LOCAL	= 6,	/* this host: permission, disk, memory, missing kernel feature */
};

/* An errno that says "this host cannot": permission, space, resources. */
static inline int exit_is_local_errno(int err)
{
	switch (err < 0 ? -err : err) {
	case EPERM: case EACCES: case ENOSPC: case EDQUOT: case EROFS: case EIO:
	case ENOMEM: case EMFILE: case ENFILE: case ENOSYS:
		return 1;
	}
	return 0;
}

/* @err (-errno) as an exit status: local for the errnos above, else @other. */
static inline int exit_status_of(int err, int other)
{
	if (!err)
		return FERRY_EXIT_OK;
	return exit_is_local_errno(err) ? FERRY_EXIT_LOCAL : other;
}

#endif
