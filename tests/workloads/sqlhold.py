#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""sqlhold: an sqlite3 writer holding an open write transaction.

Creates DB (table t), commits ROWS rows, then BEGIN IMMEDIATE and inserts
ROWS more without committing: sqlite holds its RESERVED lock (POSIX locks on
the database file) and the rollback journal is open. Then it writes
"step N" to --out every 50 ms until the file --commit appears; then it
commits and writes "committed COUNT SUM" (or "FAIL reason") and exits 0.
Lines: "ready", "step N", "committed COUNT SUM", "FAIL ...".
"""
import argparse
import os
import sqlite3
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--pidfile", required=True)
    ap.add_argument("--commit", required=True)
    ap.add_argument("--rows", type=int, default=500)
    a = ap.parse_args()
    out = open(a.out, "w", buffering=1)
    con = sqlite3.connect(a.db, isolation_level=None, timeout=0)
    con.execute("CREATE TABLE t (i INTEGER PRIMARY KEY, v TEXT)")
    con.execute("BEGIN")
    con.executemany("INSERT INTO t VALUES (?, ?)",
                    ((i, "before %d" % i) for i in range(a.rows)))
    con.execute("COMMIT")
    con.execute("BEGIN IMMEDIATE")
    con.executemany("INSERT INTO t VALUES (?, ?)",
                    ((i, "held %d" % i) for i in range(a.rows, 2 * a.rows)))
    with open(a.pidfile + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(a.pidfile + ".tmp", a.pidfile)
    out.write("ready\n")
    n = 0
    while not os.path.exists(a.commit):
        n += 1
        out.write("step %d\n" % n)
        time.sleep(0.05)
    try:
        con.execute("COMMIT")
        count, total = con.execute("SELECT count(*), sum(i) FROM t").fetchone()
        out.write("committed %d %d\n" % (count, total))
    except sqlite3.Error as e:
        out.write("FAIL commit: %s\n" % e)
        sys.exit(1)


if __name__ == "__main__":
    main()
