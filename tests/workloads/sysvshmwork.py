#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""sysvshmwork: a PostgreSQL-like tree around one System V shared memory segment.

The parent makes a 1 MiB segment of its key (shmget, ctypes), fills a
pattern, then forks 3 workers that inherit the attachment. Each worker bumps
its counter slot every 2 ms, first checking that the slot still holds what it
wrote last (a page lost by a migration shows as a stale slot). The parent
writes "step N id I nattch A c0 c1 c2" every 20 ms, checks the pattern, that
its key names the same id, that every worker's counter moves and that no
worker saw a stale slot. "FAIL ..." and exit 3 on a broken check.
Usage: sysvshmwork.py OUT PIDFILE
"""
import ctypes
import os
import sys
import time

SIZE = 1 << 20
WORKERS = 3
IPC_CREAT, IPC_STAT = 0o1000, 2

libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]


def nattch(sid):
    ds = ctypes.create_string_buffer(512)       # struct shmid_ds, x86_64 layout
    if libc.shmctl(sid, IPC_STAT, ds) != 0:
        return -1
    return int.from_bytes(ds.raw[88:96], "little")      # shm_nattch


def main():
    out = open(sys.argv[1], "w")
    key = 0x53560000 | (os.getpid() & 0xffff)
    sid = libc.shmget(key, SIZE, IPC_CREAT | 0o600)
    base = libc.shmat(sid, None, 0) if sid >= 0 else None
    if base is None or base == ctypes.c_void_p(-1).value:
        out.write("FAIL shmget/shmat: errno %d\n" % ctypes.get_errno())
        out.flush()
        sys.exit(3)
    mem = (ctypes.c_uint64 * (SIZE // 8)).from_address(base)
    for i in range(64, SIZE // 8, 61):
        mem[i] = i * 2654435761 % (1 << 64)
    for w in range(WORKERS):
        if os.fork() == 0:
            last = 0
            while True:
                if mem[w] != last:
                    mem[16 + w] = 1     # stale
                last += 1
                mem[w] = last
                time.sleep(0.002)
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    step, seen = 0, [0] * WORKERS
    while True:
        time.sleep(0.02)
        step += 1
        c = [mem[w] for w in range(WORKERS)]
        if libc.shmget(key, 0, 0) != sid:
            fail = "key %#x names %d, not %d" % (key, libc.shmget(key, 0, 0), sid)
        elif any(mem[16 + w] for w in range(WORKERS)):
            fail = "a worker found its counter stale (a lost page)"
        elif any(mem[i] != i * 2654435761 % (1 << 64) for i in range(64, SIZE // 8, 61)):
            fail = "the pattern differs"
        elif step % 25 == 0 and any(c[w] <= seen[w] for w in range(WORKERS)):
            fail = "a worker's counter stopped: %s after %s" % (c, seen)
        else:
            fail = None
        if fail:
            out.write("FAIL %s\n" % fail)
            out.flush()
            sys.exit(3)
        if step % 25 == 0:
            seen = c
        out.write("step %d id %d nattch %d %s\n" % (step, sid, nattch(sid), " ".join(map(str, c))))
        out.flush()


main()
