#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""sigwork: keeps signals pending across a migration.

Blocks SIGUSR2 and SIGRTMIN+2 and writes "step N pid P" to OUT every 20 ms.
Once the file GO exists it takes every pending signal with sigtimedwait and
writes "got SIG from PID code CODE" for each, then "pending done N".
Usage: sigwork.py OUT PIDFILE GO
"""
import os
import signal
import sys
import time

out = open(sys.argv[1], "w")
sigs = {signal.SIGUSR2, signal.SIGRTMIN + 2}
signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write("%d\n" % os.getpid())
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
n = 0
while not os.path.exists(sys.argv[3]):
    n += 1
    out.write("step %d pid %d\n" % (n, os.getpid()))
    out.flush()
    time.sleep(0.02)
got = 0
while True:
    info = signal.sigtimedwait(sigs, 0.5)
    if info is None:
        break
    got += 1
    out.write("got %d from %d code %d\n" % (info.si_signo, info.si_pid, info.si_code))
out.write("pending done %d\n" % got)
out.flush()
