#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 240
#
# migrate --tcp-close: the established connection is not carried (issue
# 10). The topology and workload of t-tcp-migrate.sh, both ends run with
# --again (a lost connection is logged, the server accepts a new one, the
# client makes one). Checked: no nft lock is ever made; the restored
# server's first use of its connection fails with ECONNRESET ("Connection
# reset by peer", docs/tcp.md); the client lost its connection when the
# source was killed, connected again (a new port) to the restored server
# at the destination, same pid, and the new connection streams both ways.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"
. "$(dirname "$0")/tcp-lib.sh"

e2e_need migrate pageserver restore
TMP=$(e2e_tmpdir)
e2e_tls_certs
tcp_topology 4
port=$(e2e_port)
mig_start_dest "$E2E_DST_IP" netns

tcp_start_server --again
tcp_start_client --again
tcp_wait_progress "$TMP/cli.out" $((1024 * 1024)) 30

e2e_in_src env FERRY_TEST_PAUSE_AT=held "$MIGRATE" --tcp-close --json --to "$E2E_DST_IP:$port" \
	"${CLI_TLS[@]}" "$pid" >"$TMP/migrate.json" 2>"$TMP/migrate.err" &
mpid=$!
e2e_wait_for_line "$TMP/migrate.err" 'paused at held' 90 ||
	e2e_fail "migrate never held: $(tail -n 3 "$TMP/migrate.err")"
e2e_in_src nft list tables | grep -q ferry_lock_ && e2e_fail "--tcp-close made a network lock"
tcp_move_service
wait $mpid
rc=$?
cat "$TMP/migrate.json" "$TMP/migrate.err" >&2
[ $rc -eq 0 ] || e2e_fail "migrate --tcp-close exited $rc: $(tail -n 1 "$TMP/migrate.err")"

e2e_wait_pid_gone "$pid" 10 || e2e_fail "source $pid still there after the migration"
in_dest test -e "/proc/$pid" || e2e_fail "no pid $pid in the destination namespace"
outer=$(outer_pid "$pid")
[ -n "$outer" ] || e2e_fail "no process outside with NSpid ... $pid"
e2e_track_pid "$outer"
e2e_wait_for_line "$TMP/srv.out" '^lost 0: ' 30 || e2e_fail "the restored server never lost connection 0"
grep -q '^lost 0: \[Errno 104\] Connection reset by peer$' "$TMP/srv.out" ||
	e2e_fail "the restored server saw: $(grep '^lost 0' "$TMP/srv.out") (expected ECONNRESET)"
e2e_wait_for_line "$TMP/cli.out" '^lost 0: ' 30 || e2e_fail "the client never lost connection 0"
e2e_wait_for_line "$TMP/cli.out" '^conn 1 ' 60 || e2e_fail "the client did not connect again"
e2e_wait_for_line "$TMP/srv.out" '^conn 1 ' 30 || e2e_fail "the restored server did not accept"
new=$(sed -n 's/^conn 1 local .*:\([0-9]*\) peer .*/\1/p' "$TMP/cli.out")
[ "$new" != "$cport" ] || e2e_fail "the new connection has the old port"
tcp_wait_progress "$TMP/cli.out" $((1024 * 1024)) 60 1
tcp_wait_progress "$TMP/srv.out" $((1024 * 1024)) 60 1
e2e_log "client: $(grep '^lost 0' "$TMP/cli.out"); server: $(grep '^lost 0' "$TMP/srv.out")"
echo "PASS: --tcp-close: the restored server found its connection reset, the client reconnected (port $cport -> $new)"
