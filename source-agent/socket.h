/* SPDX-License-Identifier: MIT */
#ifndef FERRY_SOCKET_H
#define FERRY_SOCKET_H

#include <sys/socket.h>
#include <sys/types.h>

#include "images.pb-c.h"

/* Describe socket @fd of @pid in @se (its address kept in @ss), or refuse it. */
int dump_socket(pid_t pid, int fd, SockEntry *se, struct sockaddr_storage *ss);

#endif
