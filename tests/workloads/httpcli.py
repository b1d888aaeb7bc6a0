#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""httpcli: HTTP/1.1 clients on one raw TCP socket each (no reconnect, ever),
for the service migration tests.

  httpcli.py keepalive --addr A --port P --path PATH --body-sha256 H --out OUT --pidfile F
      one keep-alive connection: GET PATH every 100 ms, each answer must be
      200 with a body whose SHA-256 is H
  httpcli.py download --addr A --port P --path PATH --body-sha256 H --out OUT --pidfile F
                      [--rate BYTES_PER_S] [--rcvbuf BYTES]
      one GET of a large file read slowly: a small receive buffer (set
      before connect, so the window stays small) and at most --rate bytes a
      second (default 262144) until SIGUSR2, then as fast as it comes

Lines of OUT (line buffered): "conn local PORT" once connected (then the
pidfile); keepalive: "n N" every 200 ms (requests answered), "done N" after
SIGUSR1; download: "got BYTES of LENGTH" every 200 ms, then "complete BYTES
sha256 ok". Any error, end of file, wrong status or checksum: "FAIL ..."
and exit 3. A read may wait up to 90 s (a migration's freeze).
"""
import argparse
import hashlib
import os
import signal
import socket
import sys
import time

stop = False
fast = False


def on_usr1(signum, frame):
    global stop
    stop = True


def on_usr2(signum, frame):
    global fast
    fast = True


class Conn:
    def __init__(self, addr, port, rcvbuf=0):
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(90)
        self.sock.connect((addr, port))
        self.buf = b""

    def request(self, addr, path):
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, addr)).encode())

    def headers(self):
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("end of file in the headers")
            self.buf += data
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 200"):
            raise RuntimeError("status %r" % lines[0])
        hdr = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdr[k.strip().lower()] = v.strip()
        if "content-length" not in hdr:
            raise RuntimeError("no Content-Length")
        return int(hdr["content-length"])

    def body(self, length, step=None):
        h = hashlib.sha256()
        got = 0
        while got < length:
            if self.buf:
                data, self.buf = self.buf[:length - got], self.buf[length - got:]
            else:
                data = self.sock.recv(min(65536, length - got))
                if not data:
                    raise EOFError("end of file after %d of %d body bytes" % (got, length))
            h.update(data)
            got += len(data)
            if step:
                step(got, len(data))
        return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["keepalive", "download"])
    ap.add_argument("--addr", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", required=True)
    ap.add_argument("--body-sha256", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--rate", type=int, default=262144)
    ap.add_argument("--rcvbuf", type=int, default=8192)
    a = ap.parse_args()

    out = open(a.out, "w", buffering=1)
    signal.signal(signal.SIGUSR1, on_usr1)
    signal.signal(signal.SIGUSR2, on_usr2)
    try:
        c = Conn(a.addr, a.port, a.rcvbuf if a.mode == "download" else 0)
        out.write("conn local %d\n" % c.sock.getsockname()[1])
        with open(a.pidfile + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(a.pidfile + ".tmp", a.pidfile)
        if a.mode == "keepalive":
            n = 0
            last = 0.0
            while not stop:
                c.request(a.addr, a.path)
                if c.body(c.headers()) != a.body_sha256:
                    raise RuntimeError("answer %d: wrong body" % (n + 1))
                n += 1
                if time.monotonic() - last >= 0.2:
                    out.write("n %d\n" % n)
                    last = time.monotonic()
                time.sleep(0.1)
            out.write("done %d\n" % n)
            return 0
        c.request(a.addr, a.path)
        length = c.headers()
        t0 = time.monotonic()
        state = {"last": 0.0}

        def step(got, n):
            now = time.monotonic()
            if now - state["last"] >= 0.2:
                out.write("got %d of %d\n" % (got, length))
                state["last"] = now
            if not fast:
                # at most --rate bytes a second since the start
                ahead = got / a.rate - (now - t0)
                if ahead > 0:
                    time.sleep(min(ahead, 0.2))
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
        digest = c.body(length, step)
        if digest != a.body_sha256:
            raise RuntimeError("body sha256 %s, expected %s" % (digest, a.body_sha256))
        out.write("complete %d sha256 ok\n" % length)
        return 0
    except Exception as e:      # noqa: BLE001 -- any error is the test's failure
        out.write("FAIL %s: %s\n" % (type(e).__name__, e))
        return 3


if __name__ == "__main__":
    sys.exit(main())
