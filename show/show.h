/* SPDX-License-Identifier: MIT */
/* ferry-show: the stack commands (summary, page). */
#ifndef FERRY_SHOW_H
#define FERRY_SHOW_H

#include <stdbool.h>
#include <stdint.h>

#include "imgstack/view.h"

/*
 * Open the stack view of @dir: a round directory (it has inventory.img),
 * or a stack DIR/<id> (its highest complete round). 0 or -errno (logged).
 */
int show_open_stack(const char *dir, struct stack_view *v);

/* `ferry-show summary DIR`: rounds, processes, pages, space, the top's memory map. */
int show_summary(const char *dir, bool json);
/* `ferry-show page DIR PID ADDR`: which round, file and offset hold that page. */
int show_page(const char *dir, uint32_t pid, uint64_t addr, bool json);

#endif
