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

/*
 * @err (-errno) as an exit status, by what the errno says: permission,
 * space and resources are this host's; a refused, reset, unreachable or
 * silent connection and a failed restore there (-EREMOTEIO) the peer's; a
 * process that is gone (-ESRCH) or an object ferry refuses (-EOPNOTSUPP,
 * the preflight's refusals) the target's; anything else is @other. Callers
 * that know better (which file was missing) decide before calling this.
 */
static inline int exit_status_of(int err, int other)
{
	switch (err < 0 ? -err : err) {
	case 0:
		return FERRY_EXIT_OK;
	case EPERM: case EACCES: case ENOSPC: case EDQUOT: case EROFS:
	case ENOMEM: case EMFILE: case ENFILE: case ENOSYS: case EADDRINUSE: case EADDRNOTAVAIL:
		return FERRY_EXIT_LOCAL;
	case ECONNREFUSED: case ECONNRESET: case ECONNABORTED: case EHOSTUNREACH:
	case ENETUNREACH: case EHOSTDOWN: case ETIMEDOUT: case EPROTO: case EPIPE:
	case ENOTCONN: case EREMOTEIO:
		return FERRY_EXIT_PEER;
	case ESRCH: case EOPNOTSUPP:
		return FERRY_EXIT_TARGET;
	}
	return other;
}

#endif
