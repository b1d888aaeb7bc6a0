/* SPDX-License-Identifier: MIT */
#ifndef FERRY_CHECK_H
#define FERRY_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "source-agent/dirty.h"

/*
 * Report the kernel features and capabilities ferry uses, as text or as one
 * JSON object. 0, or FERRY_EXIT_LOCAL if migration cannot work here.
 */
int check_run(FILE *out, bool json);
/*
 * What `migrate` (the source side) needs and this host lacks, before it
 * opens or seizes anything: 0, or -errno with @buf naming what is missing.
 * A missing uffd-wp is a warning only (every round then resends all).
 */
int check_migrate_needs(enum dirty_backend want, char *buf, size_t len);
/* `check [--json]` (argv[0] is "check"): its exit status. */
int check_main(int argc, char **argv);

#endif
