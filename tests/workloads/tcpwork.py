#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""tcpwork: two ends of TCP connections streaming both ways, checked byte
for byte, with data left in every queue (both ends read slower than the
other writes, so send and receive buffers stay full).

  tcpwork.py server --addr A --port P --out OUT --pidfile F [--conns N]
  tcpwork.py client --addr A --port P --out OUT [--pidfile F] [--bind B] [--conns N]
  tcpwork.py pair --addr A --port P --out OUT --out2 OUT2 --pidfile F [--conns N]
      (a server whose client is its own child, writing OUT2: a connection
      whose both ends are in one process tree)
  tcpwork.py aserver --addr A --port P --out OUT --pidfile F
      the server as an asyncio program (asyncio.start_server, a reader and
      a writer coroutine per connection, every connection it is given)

  tcpwork.py qserver --addr A --port P --out OUT --pidfile F [--hold-accept FILE]
          [--reply N]
      request and reply, one connection at a time: accepts (with
      --hold-accept only once FILE exists: connections wait in its accept
      queue; a file, not a signal: a signal to a process ferry traces waits
      for ferry), reads a request line, writes N bytes of the word stream
      (default 65536) and closes. Writes "accepted K peer P", "request K
      LINE", "replied K N".
  tcpwork.py qclient --addr A --port P --out OUT --pidfile F [--wait] [--shut]
          [--shut-wait] [--late TEXT]
      connects ("conn 0 local L peer P", then the pidfile), with --wait
      waits for SIGUSR1, sends "hello", with --shut shuts its write side
      down ("shut"; --shut-wait: on SIGUSR1), reads the reply until end of file, checking every word, and
      writes "done N" (N bytes); with --late then waits for SIGUSR1, sends
      TEXT and closes ("sent TEXT"); exits 0.
  tcpwork.py hserver --addr A --port P --out OUT --pidfile F
      two half-closed connections: the first client shuts its write side
      after "hello" (CLOSE_WAIT here), the second gets a 64 KiB reply and
      this end shuts its write side (FIN_WAIT2 here); "half" then. On
      SIGUSR1 it checks from inside: "state K S" (TCP_INFO), a read of the
      first gives end of file again ("eof 0"), it gets 1 MiB and is closed
      ("replied 0 1048576"); the second is read to its end ("got 1 TEXT").
  tcpwork.py fserver --addr A --port P --out OUT --pidfile F --shut-after FILE
      four connections closed by this end while its FINs are lost: the
      first gets 64 KiB after "hello", the second is read to its end of
      file, the third reads "hello", the fourth is written to until the
      client's window and our send buffer are full ("wrote 3 N", "sndbuf 3
      SO_SNDBUF"); "all"
      then; once FILE exists (the test drops the packets to the clients
      first) it shuts the write side of all ("unsent 3 N": SIOCOUTQNSD of
      the fourth, then "shut": FIN_WAIT1, LAST_ACK, CLOSING once the third
      client shuts its side too, and FIN_WAIT1 with the FIN behind unsent
      data). On SIGUSR1: "sndbuf 3 SO_SNDBUF" again, "state K S" of each
      (TCP_INFO), then
      the first is read to its end ("got 0 TEXT").

The stream of each direction is 8-byte little-endian words 0, 1, 2, ...;
the receiver checks every word, so a lost, repeated or changed byte is
caught at once. Each end writes to OUT (line buffered):

  ready                        (server) listening; then the pidfile (the
                               client writes its own once connected)
  conn K local L peer P        once per connection (K from 0)
  stat K sent S recv R         every 200 ms per connection
  quiet                        after SIGUSR1: it stops sending (keeps reading)
  FAIL ...                     any error, end of file or wrong byte (exit 3)
  lost K: ERROR                with --again, an error or end of file on
                               connection K: the server accepts, the client
                               makes, a new one (numbered on from the last)

The server is one single-threaded process (selectors: epoll) holding its
listening socket and the accepted connections. A client never reconnects.
"""
import argparse
import fcntl
import os
import selectors
import signal
import socket
import struct
import sys
import time

CHUNK = 32768       # written per tick at most
READ = 16384        # read per tick at most: slower than the writer
TICK = 0.01


class Stream:
    def __init__(self, k, sock, out):
        self.k, self.sock, self.out = k, sock, out
        self.sent = 0
        self.recv = 0
        self.pending = b""
        self.tail = b""

    def gen(self, n):
        # the next n bytes of the outgoing stream, from self.sent on
        first = self.sent // 8
        words = (self.sent + n + 7) // 8 - first
        raw = b"".join(struct.pack("<Q", first + i) for i in range(words))
        off = self.sent - first * 8
        return raw[off:off + n]

    def write_some(self):
        if not self.pending:
            self.pending = self.gen(CHUNK)
        try:
            n = self.sock.send(self.pending)
        except BlockingIOError:
            return
        self.sent += n
        self.pending = self.pending[n:]

    def read_some(self):
        try:
            data = self.sock.recv(READ)
        except BlockingIOError:
            return
        if not data:
            raise EOFError("end of file after %d bytes" % self.recv)
        self.take(data)

    def take(self, data):
        # check the received bytes against the stream (word by word)
        buf = self.tail + data
        start = self.recv - len(self.tail)      # stream offset of buf[0], word aligned
        whole = len(buf) // 8 * 8
        for i in range(0, whole, 8):
            (w,) = struct.unpack_from("<Q", buf, i)
            if w != (start + i) // 8:
                fail(self.out, "conn %d: word at offset %d is %d, expected %d"
                     % (self.k, start + i, w, (start + i) // 8))
        self.tail = buf[whole:]
        self.recv += len(data)


def write_pidfile(path):
    if path:
        with open(path + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(path + ".tmp", path)


def fail(out, msg):
    out.write("FAIL %s\n" % msg)
    out.flush()
    sys.exit(3)


def run(streams, out, quiet, again):
    last = 0.0
    nk = len(streams)
    while True:
        for i, s in enumerate(streams):
            try:
                if not quiet[0]:
                    s.write_some()
                s.read_some()
            except (OSError, EOFError) as e:
                if not again:
                    fail(out, "conn %d: %s" % (s.k, e))
                out.write("lost %d: %s\n" % (s.k, e))
                s.sock.close()
                streams[i] = again(nk)
                nk += 1
        now = time.monotonic()
        if now - last >= 0.2:
            last = now
            for s in streams:
                out.write("stat %d sent %d recv %d\n" % (s.k, s.sent, s.recv))
            out.flush()
        time.sleep(TICK)


def aserver(a, fam, out):
    """The server as an asyncio program: asyncio.start_server, one reader
    and one writer coroutine per connection (StreamWriter.drain: flow
    control, so data also waits in the transport's own buffer), a stats
    task; SIGUSR1 through loop.add_signal_handler (its self-pipe)."""
    import asyncio

    streams = []
    quiet = asyncio.Event()

    async def conn(reader, writer):
        s = Stream(len(streams), writer.get_extra_info("socket"), out)
        streams.append(s)
        l, p = writer.get_extra_info("sockname"), writer.get_extra_info("peername")
        out.write("conn %d local %s:%d peer %s:%d\n" % (s.k, l[0], l[1], p[0], p[1]))

        async def write_loop():
            while not quiet.is_set():
                data = s.gen(CHUNK)
                s.sent += len(data)
                writer.write(data)
                await writer.drain()
                await asyncio.sleep(TICK)

        async def read_loop():
            while True:
                data = await reader.read(READ)
                if not data:
                    raise EOFError("end of file after %d bytes" % s.recv)
                s.take(data)
                await asyncio.sleep(TICK)
        try:
            await asyncio.gather(write_loop(), read_loop())
        except (OSError, EOFError) as e:
            fail(out, "conn %d: %s" % (s.k, e))

    async def stats():
        while True:
            await asyncio.sleep(0.2)
            for s in streams:
                out.write("stat %d sent %d recv %d\n" % (s.k, s.sent, s.recv))

    def on_usr1():
        quiet.set()
        out.write("quiet\n")

    async def amain():
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, on_usr1)
        srv = await asyncio.start_server(conn, a.addr, a.port, family=fam, reuse_address=True)
        out.write("ready\n")
        write_pidfile(a.pidfile)
        async with srv:
            await stats()
    asyncio.run(amain())


def usr1_flag():
    # [True] once SIGUSR1 came
    go = [False]
    signal.signal(signal.SIGUSR1, lambda sig, frame: go.__setitem__(0, True))
    return go


def listen_ready(a, fam, out):
    # the listening socket on A:P, then "ready" and the pidfile
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.addr, a.port))
    ls.listen(8)
    out.write("ready\n")
    write_pidfile(a.pidfile)
    return ls


def read_to_eof(c):
    buf = b""
    while True:
        data = c.recv(READ)
        if not data:
            return buf
        buf += data


def qserver(a, fam, out):
    ls = listen_ready(a, fam, out)
    k = 0
    while True:
        while a.hold_accept and not os.path.exists(a.hold_accept):
            time.sleep(TICK)
        c, p = ls.accept()
        out.write("accepted %d peer %s:%d\n" % (k, p[0], p[1]))
        buf = b""
        while b"\n" not in buf:
            data = c.recv(READ)
            if not data:
                fail(out, "conn %d: end of file before the request" % k)
            buf += data
        out.write("request %d %s\n" % (k, buf.split(b"\n")[0].decode(errors="replace")))
        c.sendall(Stream(k, c, out).gen(a.reply))
        c.close()
        out.write("replied %d %d\n" % (k, a.reply))
        k += 1


def tcp_state(c):
    return c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def hserver(a, fam, out):
    go = usr1_flag()
    ls = listen_ready(a, fam, out)
    cw, p = ls.accept()
    out.write("accepted 0 peer %s:%d\n" % (p[0], p[1]))
    out.write("request 0 %s\n" % read_to_eof(cw).decode(errors="replace").strip())
    fw, p = ls.accept()
    out.write("accepted 1 peer %s:%d\n" % (p[0], p[1]))
    while b"\n" not in fw.recv(READ):
        pass
    fw.sendall(Stream(1, fw, out).gen(65536))
    fw.shutdown(socket.SHUT_WR)
    out.write("half\n")
    while not go[0]:
        time.sleep(TICK)
    out.write("state 0 %d\nstate 1 %d\n" % (tcp_state(cw), tcp_state(fw)))
    if cw.recv(READ) == b"":
        out.write("eof 0\n")
    cw.sendall(Stream(0, cw, out).gen(1048576))
    cw.close()
    out.write("replied 0 1048576\n")
    buf = read_to_eof(fw)
    fw.close()
    out.write("got 1 %s\n" % buf.decode(errors="replace").strip())
    while True:
        time.sleep(1)


def fserver(a, fam, out):
    go = usr1_flag()
    ls = listen_ready(a, fam, out)
    fw, p = ls.accept()
    out.write("accepted 0 peer %s:%d\n" % (p[0], p[1]))
    while b"\n" not in fw.recv(READ):
        pass
    fw.sendall(Stream(0, fw, out).gen(65536))
    la, p = ls.accept()
    out.write("accepted 1 peer %s:%d\n" % (p[0], p[1]))
    out.write("request 1 %s\n" % read_to_eof(la).decode(errors="replace").strip())
    cl, p = ls.accept()
    out.write("accepted 2 peer %s:%d\n" % (p[0], p[1]))
    while b"\n" not in cl.recv(READ):
        pass
    fu, p = ls.accept()
    out.write("accepted 3 peer %s:%d\n" % (p[0], p[1]))
    # written until the client's window and our send buffer are full
    fu.setblocking(False)
    st, idle = Stream(3, fu, out), 0
    while idle < 50:
        n = st.sent
        st.write_some()
        idle = idle + 1 if st.sent == n else 0
        time.sleep(TICK * 2)
    out.write("wrote 3 %d\n" % st.sent)
    out.write("sndbuf 3 %d\n" % fu.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
    out.write("all\n")
    while not os.path.exists(a.shut_after):
        time.sleep(TICK)
    for c in (fw, la, cl, fu):
        c.shutdown(socket.SHUT_WR)
    # SIOCOUTQNSD: bytes (and the FIN) not sent yet
    nsd = struct.unpack("i", fcntl.ioctl(fu.fileno(), 0x894B, struct.pack("i", 0)))[0]
    out.write("unsent 3 %d\n" % nsd)
    out.write("shut\n")
    while not go[0]:
        time.sleep(TICK)
    out.write("sndbuf 3 %d\n" % fu.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
    out.write("state 0 %d\nstate 1 %d\nstate 2 %d\nstate 3 %d\n" %
              (tcp_state(fw), tcp_state(la), tcp_state(cl), tcp_state(fu)))
    buf = read_to_eof(fw)
    out.write("got 0 %s\n" % buf.decode(errors="replace").strip())
    while True:
        time.sleep(1)


def qclient(a, fam, out):
    go = usr1_flag()
    c = socket.socket(fam, socket.SOCK_STREAM)
    c.connect((a.addr, a.port))
    l, p = c.getsockname(), c.getpeername()
    out.write("conn 0 local %s:%d peer %s:%d\n" % (l[0], l[1], p[0], p[1]))
    write_pidfile(a.pidfile)
    while a.wait and not go[0]:
        time.sleep(TICK)
    c.sendall(b"hello\n")
    go[0] = False
    while a.shut_wait and not go[0]:
        time.sleep(TICK)
    if a.shut or a.shut_wait:
        c.shutdown(socket.SHUT_WR)
        out.write("shut\n")
    s = Stream(0, c, out)
    while True:
        data = c.recv(READ)
        if not data:
            break
        s.take(data)
    out.write("done %d\n" % s.recv)
    if a.late:
        go[0] = False
        while not go[0]:
            time.sleep(TICK)
        c.sendall(a.late.encode() + b"\n")
        c.close()
        out.write("sent %s\n" % a.late)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=["server", "client", "pair", "aserver", "qserver", "qclient",
                                       "hserver", "fserver"])
    ap.add_argument("--out2")
    ap.add_argument("--addr", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bind")
    ap.add_argument("--out", required=True)
    ap.add_argument("--pidfile")
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--again", action="store_true")
    ap.add_argument("--hold-accept")
    ap.add_argument("--reply", type=int, default=65536)
    ap.add_argument("--wait", action="store_true")
    ap.add_argument("--shut", action="store_true")
    ap.add_argument("--late")
    ap.add_argument("--shut-after")
    ap.add_argument("--shut-wait", action="store_true")
    a = ap.parse_args()
    out = open(a.out, "w", buffering=1)
    fam = socket.AF_INET6 if ":" in a.addr else socket.AF_INET
    quiet = [False]

    if a.role == "aserver":
        return aserver(a, fam, out)
    if a.role == "qserver":
        return qserver(a, fam, out)
    if a.role == "qclient":
        return qclient(a, fam, out)
    if a.role == "hserver":
        return hserver(a, fam, out)
    if a.role == "fserver":
        return fserver(a, fam, out)

    def on_usr1(sig, frame):
        quiet[0] = True
        out.write("quiet\n")
    signal.signal(signal.SIGUSR1, on_usr1)

    streams = []

    def announce(s):
        l, p = s.sock.getsockname(), s.sock.getpeername()
        out.write("conn %d local %s:%d peer %s:%d\n" % (s.k, l[0], l[1], p[0], p[1]))
        return s

    def accept(k):
        c, _ = ls.accept()
        c.setblocking(False)
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return announce(Stream(k, c, out))

    def connect(k):
        while True:
            c = socket.socket(fam, socket.SOCK_STREAM)
            if a.bind:
                c.bind((a.bind, 0))
            try:
                c.connect((a.addr, a.port))
                break
            except OSError as e:
                if k < a.conns:
                    raise
                out.write("connect: %s\n" % e)  # reconnecting: try again
                c.close()
                time.sleep(0.5)
        c.setblocking(False)
        return announce(Stream(k, c, out))

    if a.role in ("server", "pair"):
        ls = socket.socket(fam, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((a.addr, a.port))
        ls.listen(8)
        if a.role == "pair" and os.fork() == 0:
            # the client end, a child: both ends of the connections in one tree
            ls.close()
            out = open(a.out2, "w", buffering=1)
            for k in range(a.conns):
                streams.append(connect(k))
            run(streams, out, quiet, None)
        out.write("ready\n")
        write_pidfile(a.pidfile)
        sel = selectors.DefaultSelector()
        sel.register(ls, selectors.EVENT_READ)
        while len(streams) < a.conns:
            sel.select()
            streams.append(accept(len(streams)))
        sel.close()
    else:
        for k in range(a.conns):
            streams.append(connect(k))
        write_pidfile(a.pidfile)
    again = None
    if a.again:
        again = accept if a.role == "server" else connect
    run(streams, out, quiet, again)


if __name__ == "__main__":
    main()
