#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""unixcli: a client of unixpeer.py (docs/testing.md) whose unix sockets are
connected to a peer outside its process tree.

unixcli.py --stream PATH --dgram PATH --out FILE --pidfile FILE: connects a
unix stream socket to --stream and a unix datagram socket to --dgram once,
then every 100 ms (step N = 1, 2, ...) sends "ping N pid P" on the stream,
reads the answer "pong N", and sends the datagram "log N pid P". Writes
"ready", then the pidfile, then "step N pid P" per step to --out. SIGUSR2
toggles a pause: it then only writes "idle" (reads nothing, so what the peer
sends unasked stays unread). A line "unsolicited" from the peer is written
as "extra unsolicited". A wrong answer or a lost peer: "FAIL ...", exit 3.
"""
import argparse
import os
import signal
import socket
import sys
import time

paused = False


def on_usr2(*_):
    global paused
    paused = not paused


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stream", required=True)
    ap.add_argument("--dgram", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--pidfile", required=True)
    a = ap.parse_args()
    out = open(a.out, "w")

    def say(s):
        out.write(s + "\n")
        out.flush()

    st = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    st.connect(a.stream)
    dg = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dg.connect(a.dgram)
    rf = st.makefile("rb")
    signal.signal(signal.SIGUSR2, on_usr2)
    say("ready")
    with open(a.pidfile + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(a.pidfile + ".tmp", a.pidfile)
    pid = os.getpid()
    n = 0
    while True:
        time.sleep(0.1)
        if paused:
            say("idle")
            continue
        n += 1
        try:
            st.sendall(("ping %d pid %d\n" % (n, pid)).encode())
            while True:
                line = rf.readline().decode(errors="replace").strip()
                if line != "unsolicited":
                    break
                say("extra unsolicited")
            dg.send(("log %d pid %d" % (n, pid)).encode())
        except OSError as e:
            say("FAIL step %d: %s" % (n, e))
            sys.exit(3)
        if line != "pong %d" % n:
            say("FAIL step %d: answer %r" % (n, line))
            sys.exit(3)
        say("step %d pid %d" % (n, pid))


if __name__ == "__main__":
    main()
