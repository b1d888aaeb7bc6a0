#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""sockwork: a tiny server whose listening sockets must survive a migration.

Listens on TCP 127.0.0.1:PORT and on the unix socket PATH; each client gets
"hello N pid P\\n" (N counts every client served, over both sockets). Writes
"step N pid P served S" to OUT every 20 ms.
Usage: sockwork.py OUT PIDFILE PORT PATH
"""
import os
import select
import socket
import sys
import time


def main():
    out = open(sys.argv[1], "w")
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", int(sys.argv[3])))
    tcp.listen(16)
    unx = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unx.bind(sys.argv[4])
    unx.listen(16)
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    served = 0
    n = 0
    while True:
        ready, _, _ = select.select([tcp, unx], [], [], 0.02)
        for s in ready:
            c, _ = s.accept()
            served += 1
            c.sendall(b"hello %d pid %d\n" % (served, os.getpid()))
            c.close()
        n += 1
        out.write("step %d pid %d served %d\n" % (n, os.getpid(), served))
        out.flush()


main()
