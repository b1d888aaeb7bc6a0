#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""netask: the client side of netsvc.py (docs/testing.md).

netask.py udp ADDR PORT [TIMEOUT]: sends "ping TAG" (a fresh TAG each try,
one try a second) until a "pong TAG ..." comes back or TIMEOUT seconds (10)
pass; prints the answer after the TAG ("pid P count N"), exit 0; 1 on
timeout.
netask.py tcp ADDR PORT [TIMEOUT]: connects (retrying) and prints the line
netsvc sends ("hello pid P count N"), exit 0; 1 on timeout.
"""
import socket
import sys
import time


def main():
    kind, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 10.0
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    end = time.monotonic() + timeout
    n = 0
    while time.monotonic() < end:
        n += 1
        try:
            if kind == "udp":
                s = socket.socket(fam, socket.SOCK_DGRAM)
                s.settimeout(1.0)
                tag = "t%d" % n
                s.sendto(("ping " + tag).encode(), (addr, port))
                while True:
                    data = s.recv(512).decode(errors="replace").split(None, 2)
                    if len(data) == 3 and data[0] == "pong" and data[1] == tag:
                        print(data[2])
                        return 0
            else:
                s = socket.create_connection((addr, port), timeout=1.0)
                s.settimeout(2.0)
                line = s.makefile().readline().strip()
                if line.startswith("hello "):
                    print(line[len("hello "):])
                    return 0
        except OSError:
            time.sleep(0.2)
    return 1


if __name__ == "__main__":
    sys.exit(main())
