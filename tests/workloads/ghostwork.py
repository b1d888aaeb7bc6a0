#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ghostwork: holds an unlinked (ghost) file open and keeps using it.

Makes DIR/scratch.bin with data at 0 and at 10 MiB (a hole between),
unlinks it, then every 20 ms appends a numbered record through the same fd
and checks the whole file: head, hole, tail, last record and size. Writes
"step N pid P" lines to OUT (opened once), "FAIL ..." and exit 3 on a
mismatch. Usage: ghostwork.py OUT PIDFILE DIR
"""
import os
import sys
import time

HOLE = 10 << 20


def main():
    out = open(sys.argv[1], "w")
    path = os.path.join(sys.argv[3], "scratch.bin")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o640)
    os.pwrite(fd, b"head" * 1024, 0)
    os.pwrite(fd, b"tail" * 1024, HOLE)
    os.unlink(path)
    os.lseek(fd, 0, os.SEEK_END)
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    n = 0
    while True:
        n += 1
        os.write(fd, b"%08d\n" % n)
        end = os.lseek(fd, 0, os.SEEK_CUR)
        ok = (end == HOLE + 4096 + 9 * n and os.fstat(fd).st_size == end and
              os.pread(fd, 16, 0) == b"head" * 4 and os.pread(fd, 4, HOLE) == b"tail" and
              os.pread(fd, 9, end - 9) == b"%08d\n" % n and
              os.pread(fd, 4, HOLE // 2) == b"\0" * 4)
        if not ok:
            out.write("FAIL ghost file content at record %d\n" % n)
            out.flush()
            sys.exit(3)
        out.write("step %d pid %d\n" % (n, os.getpid()))
        out.flush()
        time.sleep(0.02)


main()
