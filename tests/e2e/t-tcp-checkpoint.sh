#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 240
#
# TCP connections through a checkpoint to disk and a restore on the same
# host (issue 10):
#   a. a server whose client is in another network namespace (tcp-lib.sh
#      topology, the address staying at the source): migrate --images-dir
#      kills the server and leaves the connection locked (nft table
#      ferry_lock_<id>: a packet of the client would otherwise meet no
#      socket and be answered with a reset); `restore` brings the server
#      back with its pid and removes the lock; the client never noticed
#      more than a pause (same port, no error) and the streams match;
#   b. a connection whose both ends are in the tree (tcpwork pair: the
#      client is the server's child, over 127.0.0.1), 3 connections:
#      both ends come back, the streams go on and match.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tcp-lib.sh"

e2e_need migrate restore
command -v nft >/dev/null || e2e_skip "no nft (Debian package nftables)"
TMP=$(e2e_tmpdir)
tcp_topology 4
child=

# checkpoint_restore CASE: migrate --images-dir $TMP/CASE of $pid in the
# source namespace, the lock there meanwhile, restore there, the lock gone.
checkpoint_restore()
{
	e2e_in_src "$MIGRATE" --images-dir "$TMP/$1" "$pid" >"$TMP/$1.out" 2>"$TMP/$1.err" ||
		e2e_fail "$1: migrate --images-dir failed: $(cat "$TMP/$1.err")"
	for p in $pid $child; do	# reaped late (kernel-notes trap 11): the restore needs them
		e2e_wait_pid_gone "$p" 10 || e2e_fail "$1: $p still there after the checkpoint"
	done
	e2e_in_src nft list tables | grep -q ferry_lock_ ||
		e2e_fail "$1: no network lock between checkpoint and restore"
	sleep 1		# the peers retransmit into the lock meanwhile
	e2e_in_src "$RESTORE" --images-dir "$(e2e_stack_top "$TMP/$1")" >"$TMP/$1.rst" 2>&1 ||
		e2e_fail "$1: restore failed: $(cat "$TMP/$1.rst")"
	e2e_track_pid "$pid"
	[ -e "/proc/$pid" ] || e2e_fail "$1: no pid $pid after the restore"
	tcp_no_lock "$E2E_SRC_NS"
}

# --- a. a client elsewhere --------------------------------------------------
tcp_start_server
tcp_start_client
tcp_wait_progress "$TMP/cli.out" $((2 * 1024 * 1024)) 30
checkpoint_restore a
tcp_wait_progress "$TMP/cli.out" $((3 * 1024 * 1024)) 60
tcp_wait_progress "$TMP/srv.out" $((3 * 1024 * 1024)) 60
[ "$(grep -c '^conn ' "$TMP/cli.out")" = 1 ] || e2e_fail "a. the client connected again"
e2e_in_src ss -tn state established | grep -q ":$cport\b" ||
	e2e_fail "a. no connection from client port $cport after the restore"
tcp_check_streams "$pid" 60
e2e_log "a. a client in another namespace: ok"
kill "$pid" "$(cat "$TMP/cli.pidf")"
e2e_wait_pid_gone "$pid" 10

# --- b. both ends in the tree -----------------------------------------------
rm -f "$TMP/pid"
lport=$(e2e_port)
e2e_start_bg pair e2e_in_src python3 "$TCPWORK" pair --addr 127.0.0.1 --port "$lport" \
	--out "$TMP/srv.out" --out2 "$TMP/cli.out" --pidfile "$TMP/pid" --conns 3
e2e_wait_file "$TMP/pid" 20 || e2e_fail "b. no tcpwork pair"
pid=$(cat "$TMP/pid")
e2e_wait_for_line "$TMP/cli.out" '^conn 2 ' 20 || e2e_fail "b. the child did not connect"
child=$(pgrep -P "$pid")
[ -n "$child" ] || e2e_fail "b. no child"
echo "$child" >"$TMP/cli.pidf"
tcp_wait_progress "$TMP/cli.out" $((1024 * 1024)) 30 2
checkpoint_restore b
[ -e "/proc/$child" ] && [ "$(cat "/proc/$child/status" | sed -n 's/^PPid:\t//p')" = "$pid" ] ||
	e2e_fail "b. the child $child is not back under $pid"
for k in 0 1 2; do
	tcp_wait_progress "$TMP/cli.out" $((1024 * 1024)) 60 $k
	tcp_wait_progress "$TMP/srv.out" $((1024 * 1024)) 60 $k
done
tcp_check_streams "$pid" 60 3
echo "PASS: TCP connections through checkpoint and restore (a client elsewhere; both ends in the tree)"
