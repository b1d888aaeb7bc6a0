#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 180
#
# Unix sockets connected to a peer outside the process tree (like /dev/log or
# a daemon's socket). unixcli.py holds a stream socket and a datagram socket
# connected to unixpeer.py, a daemon that "runs on both hosts". Checked:
#   a. without --unix-reconnect: refused (exit 4) naming the option, the
#      client runs on untraced, talking to its peer
#   b. --unix-reconnect with data the client has not read yet (the peer sent
#      a line unasked while the client paused): refused, saying so; once the
#      client reads again it gets that line, nothing lost
#   c. --unix-reconnect=PATH naming only the stream peer: the datagram one
#      is still refused
#   d. --unix-reconnect: checkpointed (the source killed); the peer is
#      stopped and a new one started on the same paths (the other "host"'s);
#      restored: the same pid connects to the new peer on both sockets and its
#      steps go on: the new peer's pings and datagrams take up exactly after
#      the old one's last (none lost, none twice), no FAIL
. "$(dirname "$0")/lib.sh"

e2e_need migrate restore
TMP=$(e2e_tmpdir)
PEER=$FERRY_ROOT/tests/workloads/unixpeer.py
CLI=$FERRY_ROOT/tests/workloads/unixcli.py
SP=$TMP/peer.sock
DP=$TMP/log.sock

e2e_start_bg peer1 python3 "$PEER" --stream "$SP" --dgram "$DP" --log "$TMP/peer1.log"
peer1=$E2E_LAST_PID
e2e_wait_for_line "$TMP/peer1.log" '^ready$' 10 || e2e_fail "peer not ready"
e2e_start_workload cli '^step 5 ' python3 "$CLI" --stream "$SP" --dgram "$DP" \
	--out "$TMP/out" --pidfile "$TMP/pid"

steps() { grep -c '^step ' "$TMP/out"; }
# runs_on WHAT: the client is untraced and makes 5 more steps
runs_on()
{
	local n

	grep -q '^TracerPid:[[:space:]]*0$' "/proc/$pid/status" || e2e_fail "$1: the client is traced"
	n=$(steps)
	e2e_wait_for_line "$TMP/out" "^step $((n + 5)) pid $pid$" 10 || e2e_fail "$1: the client stalled"
	e2e_assert_no_fail "$TMP/out"
}
# refused NAME OPTION...: migrate --images-dir must exit 4 (a refused object) with one reason
refused()
{
	local name=$1 rc

	shift
	"$MIGRATE" --images-dir "$TMP/$name" "$@" "$pid" >"$TMP/$name.out" 2>"$TMP/$name.err"
	rc=$?
	e2e_log "$name: exit $rc: $(cat "$TMP/$name.err")"
	[ $rc -eq 4 ] || e2e_fail "$name: migrate exited $rc, expected 4"
}

# --- a. no option: refused -------------------------------------------------------------
refused plain
grep -q 'connected to one outside the tree.*--unix-reconnect' "$TMP/plain.err" ||
	e2e_fail "a. the refusal does not name --unix-reconnect"
runs_on "a. after the refusal"

# --- b. unread data: refused -------------------------------------------------------------
kill -USR2 "$pid"
e2e_wait_for_line "$TMP/out" '^idle$' 10 || e2e_fail "b. the client does not pause"
kill -USR1 "$peer1"
e2e_wait_for_line "$TMP/peer1.log" '^sent unsolicited$' 10 || e2e_fail "b. the peer sent nothing"
sleep 0.3
refused unread --unix-reconnect
grep -q "connected to $SP with 12 bytes it has not read yet" "$TMP/unread.err" ||
	e2e_fail "b. the refusal does not say there is unread data"
kill -USR2 "$pid"
e2e_wait_for_line "$TMP/out" '^extra unsolicited$' 10 || e2e_fail "b. the unread line was lost"
runs_on "b. after the refusal"

# --- c. only the stream path named: the datagram socket is refused ----------------------
refused onepath "--unix-reconnect=$SP"
grep -q 'connected to one outside the tree' "$TMP/onepath.err" ||
	e2e_fail "c. the datagram socket was not refused"
runs_on "c. after the refusal"

# --- d. reconnected to the peer on "the other host" ----------------------------------------
# (frozen between the peer's answer and the client's read, it is refused, rightly: try again)
for ((try = 1; try <= 5; try++)); do
	"$MIGRATE" --images-dir "$TMP/images" --unix-reconnect "$pid" 2>"$TMP/d.err" && break
	grep -q 'has not read yet' "$TMP/d.err" || e2e_fail "d. migrate --unix-reconnect failed: $(cat "$TMP/d.err")"
	e2e_log "d. try $try caught an answer not read yet: again"
done
[ -e "/proc/$pid" ] && [ $try -gt 5 ] && e2e_fail "d. migrate --unix-reconnect refused 5 times"
e2e_wait_pid_gone "$pid" 10 || e2e_fail "d. the source is still there"
last=$(grep '^step ' "$TMP/out" | tail -n 1 | awk '{ print $2 }')
kill -TERM "$peer1"
e2e_wait_pid_gone "$peer1" 10 || e2e_fail "d. the first peer does not stop"
e2e_start_bg peer2 python3 "$PEER" --stream "$SP" --dgram "$DP" --log "$TMP/peer2.log"
e2e_wait_for_line "$TMP/peer2.log" '^ready$' 10 || e2e_fail "d. the second peer is not ready"
"$RESTORE" -v --images-dir "$(e2e_stack_top "$TMP/images")" 2>"$TMP/restore.err" ||
	e2e_fail "d. restore failed: $(tail -n 1 "$TMP/restore.err")"
e2e_track_pid "$pid"
grep -q "unix socket connected again to $SP" "$TMP/restore.err" || e2e_fail "d. restore did not say it reconnected"
e2e_wait_for_line "$TMP/out" "^step $((last + 10)) pid $pid$" 10 || e2e_fail "d. the restored client stalled"
# each message exactly once: the new peer's first ping and datagram follow the old one's last
# (the client may have been frozen between its ping and its step line, or before its datagram)
for kind in ping log; do
	a=$(grep "^$kind " "$TMP/peer1.log" | tail -n 1 | awk '{ print $2 }')
	b=$(grep "^$kind " "$TMP/peer2.log" | head -n 1 | awk '{ print $2 }')
	[ -n "$b" ] && [ "$b" -eq $((a + 1)) ] ||
		e2e_fail "d. the old peer's last $kind was $a, the new peer's first '$b'"
	grep "^$kind " "$TMP/peer2.log" | grep -v " pid $pid$" && e2e_fail "d. a $kind from another pid"
	grep "^$kind " "$TMP/peer2.log" | awk -v k="$b" '$2 != k++ { bad = 1 } END { exit bad }' ||
		e2e_fail "d. the new peer's ${kind}s are not consecutive"
done
e2e_assert_no_fail "$TMP/out"
grep -c '^accepted$' "$TMP/peer2.log" | grep -qx 1 || e2e_fail "d. the new peer did not get exactly one connection"
echo "unix reconnect ok: pid $pid talks to the new peer from ping $b"
