#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""pyloop: a Python test workload for migration.

Keeps its state in a dict (step count, per-bucket counts, a running hash of
every step), writes "step N hash H" to --out every --interval-ms (the file is
opened once, mode 'w', never reopened, so its offset must survive a
migration), and every --check-every steps recomputes the whole state from
scratch and compares: on a mismatch it writes "FAIL ..." and exits 3.

Lines: "ready", "step N hash H" (N = 1, 2, 3, ...), "usr1 COUNT" after
SIGUSR1, "done" after --steps N, "FAIL reason". `pyloop.py --verify FILE`
checks such a file from outside (every H recomputed).
"""
import argparse
import hashlib
import os
import signal
import sys
import time

NBUCKETS = 17


def new_state():
    return {"steps": 0, "hash": hashlib.sha256(b"pyloop").hexdigest(),
            "buckets": {b: 0 for b in range(NBUCKETS)}, "pid": os.getpid()}


def advance(state):
    n = state["steps"] + 1
    state["steps"] = n
    state["buckets"][n % NBUCKETS] += 1
    h = hashlib.sha256(("%s %d" % (state["hash"], n)).encode())
    state["hash"] = h.hexdigest()


def state_digest(state):
    """H: a function of the whole dict, not just the hash chain."""
    b = ",".join("%d" % state["buckets"][k] for k in range(NBUCKETS))
    s = "%d|%s|%s" % (state["steps"], state["hash"], b)
    return hashlib.sha256(s.encode()).hexdigest()[:16]


def recompute(steps, pid):
    ref = new_state()
    ref["pid"] = pid
    for _ in range(steps):
        advance(ref)
    return ref


def verify(path):
    """Check a finished or running out file from outside: steps consecutive,
    each hash equal to the one a fresh run computes. Exit 0 or 1."""
    state = new_state()
    seen = 0
    with open(path, errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.endswith("\n"):
                break           # the line being written right now
            parts = line.split()
            if parts and parts[0] == "FAIL":
                print("pyloop verify: line %d: %s" % (lineno, line.strip()))
                return 1
            if len(parts) != 4 or parts[0] != "step" or parts[2] != "hash":
                continue
            advance(state)
            if parts[1] != str(state["steps"]):
                print("pyloop verify: line %d: step %s, expected %d" %
                      (lineno, parts[1], state["steps"]))
                return 1
            if parts[3] != state_digest(state):
                print("pyloop verify: line %d: step %s hash %s, expected %s" %
                      (lineno, parts[1], parts[3], state_digest(state)))
                return 1
            seen += 1
    if not seen:
        print("pyloop verify: no step lines in %s" % path)
        return 1
    print("pyloop verify: %d steps ok" % seen)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--verify", metavar="FILE",
                    help="check an out file (steps and hashes) and exit")
    ap.add_argument("--out", help="progress file")
    ap.add_argument("--pidfile", help="write the pid here once running")
    ap.add_argument("--interval-ms", type=int, default=50)
    ap.add_argument("--check-every", type=int, default=20,
                    help="recompute and compare every K steps (0: never)")
    ap.add_argument("--steps", type=int, default=0,
                    help="exit 0 after N steps (default: run until killed)")
    args = ap.parse_args()
    if args.verify:
        return verify(args.verify)
    if not args.out:
        ap.error("--out FILE is required")

    out = open(args.out, "w")
    usr1 = [0]
    signal.signal(signal.SIGUSR1, lambda s, f: usr1.__setitem__(0, usr1[0] + 1))

    written = [0]

    def put(line):
        out.write(line + "\n")
        out.flush()
        written[0] += len(line) + 1

    def fail(msg):
        put("FAIL " + msg)
        sys.stderr.write("pyloop: FAIL %s\n" % msg)
        sys.exit(3)

    state = new_state()
    put("ready")
    if args.pidfile:
        tmp = "%s.tmp%d" % (args.pidfile, os.getpid())
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(tmp, args.pidfile)

    usr1_seen = 0
    while True:
        advance(state)
        put("step %d hash %s" % (state["steps"], state_digest(state)))
        if usr1[0] != usr1_seen:
            usr1_seen = usr1[0]
            put("usr1 %d" % usr1_seen)
        n = state["steps"]
        if args.check_every and n % args.check_every == 0:
            if os.getpid() != state["pid"]:
                fail("pid changed from %d to %d" % (state["pid"], os.getpid()))
            ref = recompute(n, state["pid"])
            if ref != state:
                fail("state at step %d differs from its recomputation" % n)
            off = os.lseek(out.fileno(), 0, os.SEEK_CUR)
            if off != written[0]:
                fail("out file offset %d, expected %d" % (off, written[0]))
        if args.steps and n >= args.steps:
            put("done")
            return 0
        time.sleep(args.interval_ms / 1000.0)


if __name__ == "__main__":
    sys.exit(main())
