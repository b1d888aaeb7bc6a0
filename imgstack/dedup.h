/* SPDX-License-Identifier: MIT */
/*
 * Offline dedup of a whole stack, on top of the view and the punch list.
 */
#ifndef FERRY_DEDUP_H
#define FERRY_DEDUP_H

#include <stdint.h>

/* Offline dedup of DIR/<id> (every round below the top is punched where a newer one covers it). */
int stack_dedup(const char *stack_dir, uint64_t *bytes_punched);

#endif
