/* SPDX-License-Identifier: MIT */
/*
 * Scripted pre-copy: `migrate --pre-dump --session SOCK ... PID` runs one
 * round per call. The first call leaves a small session daemon behind that
 * holds the dirty-tracking userfaultfd and the connection to the
 * destination; between rounds the target is not traced and holds nothing of
 * ours. `migrate --final --session SOCK` runs the final round and ends the
 * session, `--abort` ends it and leaves the target as it was.
 */
#ifndef FERRY_SESSION_H
#define FERRY_SESSION_H

#include <sys/types.h>

#include "source-agent/migrate.h"

enum session_cmd { SESSION_ROUND, SESSION_FINAL, SESSION_ABORT };

/* pid is needed only when the session does not exist yet (first --pre-dump). */
int session_run(const char *path, enum session_cmd cmd, pid_t pid, const struct migrate_opts *o,
		unsigned int idle_timeout_s);

#endif
