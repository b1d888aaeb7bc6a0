#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 120
#
# What ferry does not carry of TCP is refused by name, before anything is
# frozen, the process untouched (issue 10). In the source namespace of
# e2e_netns_pair, one process per case, checkpointed with migrate
# --images-dir, which must exit 4 (the target's problem) naming it:
#   refuse     --tcp-refuse and an established connection
#   synsent    a connection being made (SYN sent, none answered: the
#              listener's accept queue is full; half-closed ones travel now,
#              t-tcp-halfclosed)
#   urgent     a connection with urgent (out-of-band) data not read
#   backlog    a listening socket with a connection in its accept queue the
#              program never accepts: refused at the final freeze, after
#              --accept-wait (here 300 ms) ms; with --accept-wait 0 at once
#              (preflight)
#   localpeer  a connection to a socket of this host outside the tree
#   leave      --leave-running and an established connection
# and migrate --tcp-close --tcp-refuse is a usage error (exit 2). After each
# refusal the process runs on, untraced, and no lock table was made.
. "$(dirname "$0")/lib.sh"

e2e_need migrate
TMP=$(e2e_tmpdir)
e2e_netns_pair

# The peer: a listener on the source address that accepts and holds its
# connections; it is not part of any checkpointed tree.
cat >"$TMP/peer.py" <<'PY'
import socket, sys, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], int(sys.argv[2]))); l.listen(8)
open(sys.argv[3], "w").write("up\n")
held = []
while True:
    c, _ = l.accept()
    if c.recv(16) == b"urg":
        c.send(b"!", socket.MSG_OOB)	# urgent data the target does not read
    held.append(c)
PY
# The target: MODE, then writes ready and sleeps.
cat >"$TMP/target.py" <<'PY'
import socket, sys, time
mode, addr, port, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
keep = []
if mode == "synsent":
    l = socket.socket(); l.bind((addr, 0)); l.listen(0)
    f = socket.socket(); f.connect(l.getsockname())    # fills the queue: SYNs dropped
    c = socket.socket(); c.setblocking(False)
    try:
        c.connect(l.getsockname())
    except BlockingIOError:
        pass
    keep += [l, f, c]
elif mode == "backlog":
    l = socket.socket(); l.bind((addr, 0)); l.listen(4)
    c = socket.socket(); c.connect(l.getsockname())   # never accepted
    keep += [l, c]
    # the client end is ours too: only the listener's queue is at stake
else:
    c = socket.socket(); c.connect((addr, port))
    c.send(b"urg" if mode == "urgent" else b"hold")
    keep.append(c)
time.sleep(0.5)
open(out, "w").write("ready\n")
while True:
    time.sleep(1)
PY

pport=$(e2e_port)
e2e_start_bg peer e2e_in_src python3 "$TMP/peer.py" "$E2E_SRC_IP" "$pport" "$TMP/peer.up"
e2e_wait_file "$TMP/peer.up" 10 || e2e_fail "no peer"
lport=$(e2e_port)
e2e_start_bg lpeer e2e_in_src python3 "$TMP/peer.py" 127.0.0.1 "$lport" "$TMP/lpeer.up"
e2e_wait_file "$TMP/lpeer.up" 10 || e2e_fail "no local peer"

# refused CASE MODE PATTERN [OPTION...]
refused()
{
	local name=$1 mode=$2 pattern=$3 addr=$E2E_SRC_IP port=$pport tpid

	shift 3
	if [ "$mode" = localpeer ]; then
		addr=127.0.0.1
		port=$lport
	fi
	e2e_start_bg "t-$name" e2e_in_src python3 "$TMP/target.py" "$mode" "$addr" "$port" \
		"$TMP/$name.ready"
	e2e_wait_file "$TMP/$name.ready" 10 || e2e_fail "$name: target not ready"
	tpid=$(pgrep -f "target.py $mode $addr $port" | head -n 1)
	[ -n "$tpid" ] || e2e_fail "$name: no target"
	e2e_in_src "$MIGRATE" "$@" --images-dir "$TMP/img-$name" "$tpid" >"$TMP/$name.out" \
		2>"$TMP/$name.err"
	rc=$?
	e2e_log "$name: exit $rc: $(cat "$TMP/$name.err")"
	[ $rc = 4 ] || e2e_fail "$name: migrate exited $rc, want 4 (refused)"
	grep -q -- "$pattern" "$TMP/$name.err" || e2e_fail "$name: no '$pattern' in: $(cat "$TMP/$name.err")"
	[ -e "/proc/$tpid" ] || e2e_fail "$name: the target is gone"
	grep -q '^TracerPid:[[:space:]]*0$' "/proc/$tpid/status" || e2e_fail "$name: target traced"
	e2e_in_src nft list tables 2>/dev/null | grep -q ferry_lock_ && e2e_fail "$name: a lock was made"
	kill "$tpid"
	e2e_wait_pid_gone "$tpid" 10 || e2e_fail "$name: the target does not end"
}

refused refuse hold 'connected TCP socket (established): refused (--tcp-refuse)' --tcp-refuse
refused synsent synsent 'TCP connection connecting (SYN sent): ferry moves established and half-closed ones only'
refused urgent urgent 'TCP connection with urgent (out-of-band) data not read yet: ferry cannot carry urgent data'
refused backlog backlog 'connection(s) waiting in its accept queue or being set up at the freeze, after waiting up to 300 ms' --accept-wait 300
refused backlog0 backlog 'waiting in its accept queue: an accept queue cannot travel (with --accept-wait 0, or without the network lock, ferry does not wait' --accept-wait 0
refused localpeer localpeer 'local TCP connection connected to one outside the tree'
refused leave hold 'two copies cannot own one connection' --leave-running

"$MIGRATE" --tcp-close --tcp-refuse --images-dir "$TMP/x" 1 >/dev/null 2>"$TMP/usage.err"
rc=$?
[ $rc = 2 ] && grep -q 'at most one of --tcp-close and --tcp-refuse' "$TMP/usage.err" ||
	e2e_fail "--tcp-close --tcp-refuse: exit $rc: $(cat "$TMP/usage.err")"
echo "PASS: TCP refusals by name, the targets untouched"
