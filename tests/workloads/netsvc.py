#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""netsvc: a network service for the network tests (docs/testing.md).

Binds a UDP socket and a listening TCP socket to --addr:--port (the service
address, which must be on this host when it starts) and serves both from one
select loop with a request counter in its memory:

- UDP: a datagram "ping TAG" is answered "pong TAG pid PID count N";
- TCP: an accepted connection gets "hello pid PID count N\\n" and is closed.

N counts every request served since the start, so a client sees it go on
where it was when the process has moved. PID is os.getpid(). Writes "ready"
to --out, then --pidfile (atomically), then a line "served N KIND" for each
request. SIGTERM ends it (exit 0).
"""
import argparse
import os
import select
import signal
import socket
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--pidfile")
    a = ap.parse_args()

    fam = socket.AF_INET6 if ":" in a.addr else socket.AF_INET
    out = open(a.out, "w")
    udp = socket.socket(fam, socket.SOCK_DGRAM)
    udp.bind((a.addr, a.port))
    tcp = socket.socket(fam, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((a.addr, a.port))
    tcp.listen(16)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    count = 0
    out.write("ready\n")
    out.flush()
    if a.pidfile:
        with open(a.pidfile + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(a.pidfile + ".tmp", a.pidfile)
    while True:
        r, _, _ = select.select([udp, tcp], [], [], 1.0)
        if udp in r:
            data, peer = udp.recvfrom(512)
            words = data.decode(errors="replace").split()
            if len(words) == 2 and words[0] == "ping":
                count += 1
                udp.sendto(("pong %s pid %d count %d" % (words[1], os.getpid(), count)).encode(),
                           peer)
                out.write("served %d udp\n" % count)
                out.flush()
        if tcp in r:
            try:
                c, _ = tcp.accept()
            except OSError:
                continue
            count += 1
            try:
                c.sendall(("hello pid %d count %d\n" % (os.getpid(), count)).encode())
            except OSError:
                pass
            c.close()
            out.write("served %d tcp\n" % count)
            out.flush()


if __name__ == "__main__":
    main()
