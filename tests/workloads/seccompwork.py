#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""seccompwork: a python3 program sandboxed with seccomp filters.

After start-up the parent installs a filter that answers mkdir with EPERM
and socket with EACCES (as root, without no_new_privs, with
SECCOMP_FILTER_FLAG_LOG); then it forks a
child, which inherits that filter, sets no_new_privs and stacks one of its
own (getppid answers ENOENT). Every 20 ms the parent writes "step N" after checking that mkdir
and socket are refused with their errnos and that reading a file still
works; the child does its own checks and writes "child N". A check that
fails writes "FAIL ..." and exits 3. Usage: seccompwork.py OUT PIDFILE
"""
import ctypes
import errno
import os
import socket
import struct
import sys
import time

AUDIT_ARCH_X86_64 = 0xC000003E
NR_SOCKET, NR_MKDIR, NR_GETPPID = 41, 83, 110
PR_SET_NO_NEW_PRIVS, NR_SECCOMP, SECCOMP_SET_MODE_FILTER = 38, 317, 1
RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000
LD_W_ABS, JEQ_K, RET_K = 0x20, 0x15, 0x06
FLAG_LOG = 2                                            # SECCOMP_FILTER_FLAG_LOG


def insn(code, jt, jf, k):
    return struct.pack("<HBBI", code, jt, jf, k)


def deny(rules):
    """A filter answering each (nr, errno) of rules; any other call is allowed."""
    prog = insn(LD_W_ABS, 0, 0, 4)                      # seccomp_data.arch
    prog += insn(JEQ_K, 1, 0, AUDIT_ARCH_X86_64)
    prog += insn(RET_K, 0, 0, RET_ALLOW)
    prog += insn(LD_W_ABS, 0, 0, 0)                     # seccomp_data.nr
    for nr, err in rules:
        prog += insn(JEQ_K, 0, 1, nr) + insn(RET_K, 0, 0, RET_ERRNO | err)
    prog += insn(RET_K, 0, 0, RET_ALLOW)
    return prog


def install(prog, nnp, flags):
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(prog, len(prog))

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fp = Fprog(len(prog) // 8, ctypes.addressof(buf))
    if (nnp and libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) or \
            libc.syscall(NR_SECCOMP, SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(fp)):
        raise OSError(ctypes.get_errno(), "seccomp")


def refused(fn, want):
    try:
        fn()
    except OSError as e:
        return e.errno == want
    return False


def checks(scratch):
    ok = refused(lambda: os.mkdir(scratch), errno.EPERM)
    ok = ok and refused(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM), errno.EACCES)
    with open("/proc/self/status") as f:
        ok = ok and "Seccomp:\t2" in f.read()
    return ok


def main():
    out = open(sys.argv[1], "w", buffering=1)
    scratch = sys.argv[1] + ".d"
    libc = ctypes.CDLL(None, use_errno=True)
    install(deny([(NR_MKDIR, errno.EPERM), (NR_SOCKET, errno.EACCES)]), False, FLAG_LOG)
    child = os.fork()
    if child == 0:
        install(deny([(NR_GETPPID, errno.ENOENT)]), True, 0)
        n = 0
        while True:
            n += 1
            ctypes.set_errno(0)
            if not checks(scratch) or libc.syscall(NR_GETPPID) != -1 or ctypes.get_errno() != errno.ENOENT:
                out.write("FAIL child %d: a filter is not in force\n" % n)
                os._exit(3)
            out.write("child %d\n" % n)
            time.sleep(0.02)
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
    n = 0
    while True:
        n += 1
        if not checks(scratch) or os.getppid() <= 0:
            out.write("FAIL step %d: the filter is not in force\n" % n)
            sys.exit(3)
        out.write("step %d\n" % n)
        time.sleep(0.02)


if __name__ == "__main__":
    main()
