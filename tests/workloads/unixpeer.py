#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""unixpeer: the outside peer of unixcli.py (docs/testing.md), a "daemon that
runs on both hosts" for the --unix-reconnect test.

unixpeer.py --stream PATH --dgram PATH --log FILE: listens on the unix stream
socket PATH (answers each line "ping N pid P" with "pong N") and receives on
the unix datagram socket PATH (like /dev/log). Writes to --log: "ready",
"accepted", "ping N pid P", "log N pid P" (a datagram), "closed", and
"sent unsolicited" after SIGUSR1, which sends the line "unsolicited" to every
stream connection (data its client has not asked for). Stale socket files at
the paths are replaced. SIGTERM ends it.
"""
import argparse
import os
import select
import signal
import socket
import sys

usr1 = False


def on_usr1(*_):
    global usr1
    usr1 = True


def main():
    global usr1
    ap = argparse.ArgumentParser()
    ap.add_argument("--stream", required=True)
    ap.add_argument("--dgram", required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    log = open(a.log, "a")

    def say(s):
        log.write(s + "\n")
        log.flush()

    for p in (a.stream, a.dgram):
        if os.path.exists(p):
            os.unlink(p)
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(a.stream)
    ls.listen(8)
    ds = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ds.bind(a.dgram)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGUSR1, on_usr1)
    conns = {}
    say("ready")
    while True:
        if usr1:
            usr1 = False
            for c in conns:
                c.sendall(b"unsolicited\n")
            say("sent unsolicited")
        try:
            r, _, _ = select.select([ls, ds] + list(conns), [], [], 0.5)
        except InterruptedError:
            continue
        for s in r:
            if s is ls:
                c, _ = ls.accept()
                conns[c] = b""
                say("accepted")
            elif s is ds:
                say(ds.recv(512).decode(errors="replace").strip())
            else:
                data = s.recv(4096)
                if not data:
                    del conns[s]
                    s.close()
                    say("closed")
                    continue
                conns[s] += data
                while b"\n" in conns[s]:
                    line, conns[s] = conns[s].split(b"\n", 1)
                    words = line.decode(errors="replace").split()
                    say(" ".join(words))
                    if len(words) == 4 and words[0] == "ping":
                        s.sendall(("pong %s\n" % words[1]).encode())


if __name__ == "__main__":
    main()
