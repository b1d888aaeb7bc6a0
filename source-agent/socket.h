/* SPDX-License-Identifier: MIT */
#ifndef FERRY_SOCKET_H
#define FERRY_SOCKET_H

#include <sys/socket.h>
#include <sys/types.h>

#include "images.pb-c.h"

/*
 * Describe socket @fd (inode @ino) of @pid in @se (its address kept in @ss,
 * data waiting on it in *queued, to free), or refuse it.
 */
int dump_socket(pid_t pid, int fd, uint64_t ino, SockEntry *se, struct sockaddr_storage *ss,
		uint8_t **queued);

#endif
