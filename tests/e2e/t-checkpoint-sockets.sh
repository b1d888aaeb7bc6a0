#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 60
#
# A server's listening sockets (TCP on loopback and a unix socket) travel:
# sockwork.py serves clients before the checkpoint, is restored, and serves
# new clients on the same address and path afterwards, its counter going on.
# A process whose TCP connection its peer closed (CLOSE_WAIT) is refused
# with --tcp-refuse, with a clear reason, and keeps running (carried by
# default since: t-tcp-halfclosed; here in the host's network namespace).
. "$(dirname "$0")/lib.sh"

TMP=$(e2e_tmpdir)
port=$(e2e_port)
sock=$TMP/srv.sock
e2e_start_bg srv python3 "$FERRY_ROOT/tests/workloads/sockwork.py" "$TMP/out" "$TMP/pid" "$port" "$sock"
e2e_wait_file "$TMP/pid" 20 || e2e_fail "sockwork never wrote its pidfile"
pid=$(cat "$TMP/pid")
ask() { python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX if sys.argv[1] == 'unix' else socket.AF_INET)
s.settimeout(5)
s.connect(sys.argv[2] if sys.argv[1] == 'unix' else ('127.0.0.1', int(sys.argv[2])))
print(s.recv(100).decode().strip())" "$@"; }
[ "$(ask tcp "$port")" = "hello 1 pid $pid" ] || e2e_fail "no answer over TCP before"
[ "$(ask unix "$sock")" = "hello 2 pid $pid" ] || e2e_fail "no answer over the unix socket before"

# a connection the server closed (CLOSE_WAIT here) is refused (--tcp-refuse), the server runs
# on (it served that client too: its counter is 3 now)
python3 -c "
import socket, time
s = socket.create_connection(('127.0.0.1', $port))
while s.recv(100):	# until the server's FIN: CLOSE_WAIT for sure
    pass
open('$TMP/connected', 'w').write('1')
time.sleep(30)" &
holder=$!
e2e_track_pid "$holder"
e2e_wait_file "$TMP/connected" 10 || e2e_fail "the client did not connect"
if "$FERRY_BUILD/migrate" --tcp-refuse --images-dir "$TMP/refused" "$holder" 2>"$TMP/refused.err"; then
	e2e_fail "a connected socket was not refused"
fi
grep -q 'connected TCP socket (half-closed by its peer (CLOSE_WAIT)): refused (--tcp-refuse)' "$TMP/refused.err" || e2e_fail "reason: $(cat "$TMP/refused.err")"
kill -0 "$holder" || e2e_fail "the refused process died"
kill "$holder"

e2e_checkpoint "$TMP/img" "$pid"
e2e_restore "$TMP/img" "$pid"
[ "$(ask tcp "$port")" = "hello 4 pid $pid" ] || e2e_fail "no answer over TCP after the restore"
[ "$(ask unix "$sock")" = "hello 5 pid $pid" ] || e2e_fail "no answer over the unix socket after"
last=$(grep -c '^step ' "$TMP/out")
e2e_wait_for_line "$TMP/out" "^step $((last + 20)) " 10 || e2e_fail "restored sockwork stalled"
e2e_assert_steps_continuous "$TMP/out" $((last + 20))
echo "listening TCP and unix sockets restored: clients served before and after"
