/* SPDX-License-Identifier: MIT */
#ifndef FERRY_SIGQUEUE_H
#define FERRY_SIGQUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "images.pb-c.h"

/* Queued signals of a thread (or of the process: @shared), read without taking them. */
struct sigqueue {
	uint8_t (*raw)[128];
	SiginfoEntry *e;
	SiginfoEntry **p;
	size_t nr;
};

/* More than 1024 queued: -EOPNOTSUPP. */
int sigqueue_peek(pid_t tid, bool shared, struct sigqueue *q);
void sigqueue_free(struct sigqueue *q);

#endif
