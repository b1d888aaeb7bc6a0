#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""remapwork: a region unmapped and mapped again at the same address over
and over (as an allocator returning an arena and taking it back does).

  remapwork.py OUT PIDFILE

Each step fills the 1 MiB anonymous region with the byte step % 256, writes
"step N", sleeps 20 ms, checks every byte still holds it (a restore that
brought back an older copy of the region is caught: "FAIL ...", exit 3),
then munmaps it and maps it again at the same address (MAP_FIXED_NOREPLACE).
"""
import ctypes
import os
import sys
import time

SZ = 1 << 20
PROT_RW, MAP_PRIVATE_ANON, MAP_FIXED_NOREPLACE = 3, 0x22, 0x100000


def main():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    out = open(sys.argv[1], "w", buffering=1)
    a = libc.mmap(None, SZ, PROT_RW, MAP_PRIVATE_ANON, -1, 0)
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    n = 0
    while True:
        n += 1
        ctypes.memset(a, n & 0xff, SZ)
        out.write("step %d\n" % n)
        time.sleep(0.02)
        if ctypes.string_at(a, SZ) != bytes([n & 0xff]) * SZ:
            out.write("FAIL step %d: the region does not hold its byte\n" % n)
            return 3
        libc.munmap(a, SZ)
        if libc.mmap(a, SZ, PROT_RW, MAP_PRIVATE_ANON | MAP_FIXED_NOREPLACE, -1, 0) != a:
            out.write("FAIL step %d: cannot map the region again\n" % n)
            return 3


if __name__ == "__main__":
    sys.exit(main())
