/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the unit tests. Each test file under tests/unit is a
 * program of its own (the Makefile builds one binary per file), so these
 * are static inline.
 */
#ifndef FERRY_TESTS_UNIT_H
#define FERRY_TESTS_UNIT_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>

/* xorshift64: the next number of a reproducible stream seeded by *state. */
static inline uint64_t xorshift64(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

static inline int rm_tree_one(const char *path, const struct stat *st, int flag,
			      struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Remove DIR and all below it, not following symbolic links. */
static inline void rm_tree(const char *dir)
{
	nftw(dir, rm_tree_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
