/* SPDX-License-Identifier: MIT */
#ifndef FERRY_CHECK_H
#define FERRY_CHECK_H

#include <stdio.h>

/* Report the kernel features and capabilities ferry uses; non-zero if migration can't work. */
int check_run(FILE *out);

#endif
