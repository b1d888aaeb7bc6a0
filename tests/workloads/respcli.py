#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""respcli: a redis client speaking RESP over one raw TCP socket (no redis
module needed), for the service migration tests.

  respcli.py load  --addr A --port P --keys N
      SET key:0 .. key:N-1 (pipelined), every reply checked; prints
      "loaded N" and exits
  respcli.py ping  --addr A --port P --out OUT --pidfile F
      one connection; PING every 100 ms, each answer must be PONG
  respcli.py write --addr A --port P --out OUT --pidfile F
      one connection; a write loop: INCR ctr must answer the number of INCRs
      acknowledged so far plus one (a lost or repeated write is caught at
      once), then SET seq:N N must answer OK

Lines of OUT (line buffered): "conn local PORT" once connected (then the
pidfile), "n N maxwait MS" every 200 ms (N: commands acknowledged, MS: the
longest wait for a reply so far), and on SIGUSR1 the loop stops and checks:
ping: "done N"; write: GET ctr equals the INCRs acknowledged and every
seq:I (1..N) holds I, then "verify ok acked N". The client never
reconnects: any error, end of file or wrong answer writes "FAIL ..." and
exits 3. A reply may take up to 90 s (a migration's freeze).
"""
import argparse
import os
import signal
import socket
import sys
import time


class Resp:
    def __init__(self, addr, port):
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(90)
        self.sock.connect((addr, port))
        self.rf = self.sock.makefile("rb")

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def reply(self):
        line = self.rf.readline()
        if not line.endswith(b"\r\n"):
            raise EOFError("end of file from the server")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError("error reply: " + rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.rf.read(n + 2)
            if len(data) != n + 2:
                raise EOFError("end of file in a bulk string")
            return data[:-2].decode()
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError("bad reply line %r" % line)

    def call(self, *args):
        self.sock.sendall(self.encode(*args))
        return self.reply()

    def pipeline(self, cmds):
        self.sock.sendall(b"".join(self.encode(*c) for c in cmds))
        return [self.reply() for _ in cmds]


stop = False


def on_usr1(signum, frame):
    global stop
    stop = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["load", "ping", "write"])
    ap.add_argument("--addr", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--keys", type=int, default=50000)
    ap.add_argument("--out")
    ap.add_argument("--pidfile")
    a = ap.parse_args()

    if a.mode == "load":
        r = Resp(a.addr, a.port)
        for first in range(0, a.keys, 1000):
            cmds = [("SET", "key:%d" % i, "value-%d" % i)
                    for i in range(first, min(first + 1000, a.keys))]
            for rep in r.pipeline(cmds):
                if rep != "OK":
                    sys.exit("SET answered %r" % rep)
        print("loaded %d" % a.keys)
        return 0

    out = open(a.out, "w", buffering=1)
    signal.signal(signal.SIGUSR1, on_usr1)
    try:
        r = Resp(a.addr, a.port)
        out.write("conn local %d\n" % r.sock.getsockname()[1])
        if a.pidfile:
            with open(a.pidfile + ".tmp", "w") as f:
                f.write("%d\n" % os.getpid())
            os.rename(a.pidfile + ".tmp", a.pidfile)
        n = 0
        maxwait = 0.0
        last = time.monotonic()
        while not stop:
            t0 = time.monotonic()
            if a.mode == "ping":
                rep = r.call("PING")
                if rep != "PONG":
                    raise RuntimeError("PING answered %r" % rep)
                n += 1
            else:
                rep = r.call("INCR", "ctr")
                if rep != n + 1:
                    raise RuntimeError("INCR answered %r after %d acknowledged" % (rep, n))
                rep2 = r.call("SET", "seq:%d" % rep, rep)
                if rep2 != "OK":
                    raise RuntimeError("SET seq:%d answered %r" % (rep, rep2))
                n = rep
            now = time.monotonic()
            maxwait = max(maxwait, now - t0)
            if now - last >= 0.2:
                out.write("n %d maxwait %d\n" % (n, maxwait * 1000))
                last = now
            time.sleep(0.1 if a.mode == "ping" else 0.005)
        if a.mode == "ping":
            out.write("done %d\n" % n)
            return 0
        ctr = r.call("GET", "ctr")
        if int(ctr or 0) != n:
            raise RuntimeError("GET ctr is %r, %d INCRs acknowledged" % (ctr, n))
        for first in range(1, n + 1, 1000):
            keys = ["seq:%d" % i for i in range(first, min(first + 1000, n + 1))]
            vals = r.call("MGET", *keys)
            for k, v in zip(keys, vals):
                if v != k[4:]:
                    raise RuntimeError("%s holds %r" % (k, v))
        out.write("verify ok acked %d\n" % n)
        return 0
    except Exception as e:      # noqa: BLE001 -- any error is the test's failure
        out.write("FAIL %s: %s\n" % (type(e).__name__, e))
        return 3


if __name__ == "__main__":
    sys.exit(main())
