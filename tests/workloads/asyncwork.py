#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""asyncwork: an asyncio program (epoll, its self-pipe socketpair) fed by a
child over another socketpair, with an eventfd and a signalfd besides.

The child writes "child N" every 50 ms into a socketpair; the parent's
asyncio loop reads the lines and writes "got child N" to OUT. A line was
left queued in the socketpair before the fork ("got queued-before"). The
eventfd holds 5 and must still hold 5 when GO appears; the signalfd waits
for SIGUSR1, which is blocked: on GO, "eventfd 5 signalfd N" is written
(N: SIGUSR1s read from the signalfd). Usage: asyncwork.py OUT PIDFILE GO
"""
import asyncio
import os
import signal
import socket
import struct
import sys
import time


def main():
    out = open(sys.argv[1], "w")
    a, b = socket.socketpair()
    b.sendall(b"queued-before\n")
    child = os.fork()
    if child == 0:
        a.close()
        n = 0
        while True:
            n += 1
            b.sendall(b"child %d\n" % n)
            time.sleep(0.05)
    b.close()
    efd = os.eventfd(5, os.EFD_NONBLOCK)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    # signalfd is not in the os module: libc through ctypes
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    mask = ctypes.c_uint64(1 << (signal.SIGUSR1 - 1))
    sfd = libc.signalfd(-1, ctypes.byref(mask), os.O_NONBLOCK | os.O_CLOEXEC)
    if sfd < 0:
        out.write("FAIL signalfd\n")
        sys.exit(3)
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])

    async def go_watch():
        while not os.path.exists(sys.argv[3]):
            await asyncio.sleep(0.05)
        count = struct.unpack("Q", os.read(efd, 8))[0]
        sigs = 0
        while True:
            try:
                os.read(sfd, 128)
                sigs += 1
            except BlockingIOError:
                break
        out.write("eventfd %d signalfd %d\n" % (count, sigs))
        out.flush()

    async def reader():
        r, _ = await asyncio.open_connection(sock=a)
        while True:
            line = await r.readline()
            out.write("got " + line.decode())
            out.flush()

    async def both():
        await asyncio.gather(reader(), go_watch())

    asyncio.run(both())


main()
