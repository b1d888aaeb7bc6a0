#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""shmwork: a parent and a child sharing memory, migrated together.

A 1 MiB shared anonymous mapping and a 64 KiB memfd mapping are shared by
the parent and a forked child. The child bumps a counter in each every
10 ms and checks a fixed pattern in the anonymous one; the parent writes
"step N pid P anon A memfd M" every 20 ms and checks that both counters
keep moving (the memory is still shared with a live child) and never go
back. "FAIL ..." and exit 3 on a broken check. Usage: shmwork.py OUT PIDFILE
"""
import mmap
import os
import struct
import sys
import time

SIZE = 1 << 20


def pattern_ok(m):
    for page in (1, 7, 100, 255):
        if m[page * 4096:page * 4096 + 16] != bytes([page % 251]) * 16:
            return False
    return True


def main():
    out = open(sys.argv[1], "w")
    anon = mmap.mmap(-1, SIZE)      # MAP_SHARED | MAP_ANONYMOUS
    fd = os.memfd_create("shmwork")
    os.ftruncate(fd, 65536)
    mfd = mmap.mmap(fd, 65536)
    for page in range(1, SIZE // 4096):
        anon[page * 4096:page * 4096 + 16] = bytes([page % 251]) * 16
    child = os.fork()
    if child == 0:
        while True:
            a = struct.unpack_from("Q", anon, 0)[0]
            struct.pack_into("Q", anon, 0, a + 1)
            m = struct.unpack_from("Q", mfd, 0)[0]
            struct.pack_into("Q", mfd, 0, m + 1)
            if not pattern_ok(anon):
                os._exit(3)
            time.sleep(0.01)
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    last = (0, 0)
    still = 0
    n = 0
    while True:
        n += 1
        time.sleep(0.02)
        cur = (struct.unpack_from("Q", anon, 0)[0], struct.unpack_from("Q", mfd, 0)[0])
        if cur[0] < last[0] or cur[1] < last[1]:
            out.write("FAIL counters went back: %s -> %s\n" % (last, cur))
            out.flush()
            sys.exit(3)
        still = still + 1 if cur == last else 0
        if still > 100 or not pattern_ok(anon):
            out.write("FAIL shared memory dead or broken: %s\n" % (cur,))
            out.flush()
            sys.exit(3)
        last = cur
        out.write("step %d pid %d anon %d memfd %d\n" % (n, os.getpid(), cur[0], cur[1]))
        out.flush()


main()
