#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""guardwork: a guard region installed between two rounds of a session.

  guardwork.py DIR

Maps 3 pages, fills them with 0x5a, writes its pid to DIR/pid and "ready"
to DIR/out. When DIR/go appears it installs a guard region
(MADV_GUARD_INSTALL) on the middle page (after the round that copied it,
so only the next scan sees it) and writes "installed". On each DIR/check
(removed when answered) it checks from inside: the middle page is a guard
(/proc/self/pagemap bit 58) and reading it faults (in a child, which dies
of SIGSEGV), the neighbours still hold 0x5a: "ok" or "bad WHY".
"""
import ctypes
import os
import signal
import sys
import time

PSZ = 4096
MADV_GUARD_INSTALL = 102


def check(a):
    fd = os.open("/proc/self/pagemap", os.O_RDONLY)
    e = int.from_bytes(os.pread(fd, 8, (a + PSZ) // PSZ * 8), "little")
    os.close(fd)
    if not (e >> 58) & 1:
        return "bad the middle page is no guard region (pagemap bit 58)"
    if ctypes.string_at(a, PSZ) != b"\x5a" * PSZ or ctypes.string_at(a + 2 * PSZ, PSZ) != b"\x5a" * PSZ:
        return "bad the neighbour pages lost their contents"
    pid = os.fork()
    if not pid:
        ctypes.string_at(a + PSZ, 1)
        os._exit(0)
    _, st = os.waitpid(pid, 0)
    if not os.WIFSIGNALED(st) or os.WTERMSIG(st) != signal.SIGSEGV:
        return "bad the guard page can be read"
    return "ok"


def main():
    d = sys.argv[1]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    out = open(os.path.join(d, "out"), "w", buffering=1)
    a = libc.mmap(None, 3 * PSZ, 3, 0x22, -1, 0)
    ctypes.memset(a, 0x5a, 3 * PSZ)
    with open(os.path.join(d, "pid.tmp"), "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(os.path.join(d, "pid.tmp"), os.path.join(d, "pid"))
    out.write("ready\n")
    while not os.path.exists(os.path.join(d, "go")):
        time.sleep(0.02)
    if libc.madvise(a + PSZ, PSZ, MADV_GUARD_INSTALL):
        out.write("skip MADV_GUARD_INSTALL: %s\n" % os.strerror(ctypes.get_errno()))
        return
    out.write("installed\n")
    while True:
        c = os.path.join(d, "check")
        if os.path.exists(c):
            os.unlink(c)
            out.write(check(a) + "\n")
        time.sleep(0.02)


main()
