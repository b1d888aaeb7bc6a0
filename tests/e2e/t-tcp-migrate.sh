#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 240
#
# An established TCP connection moves with its server (issue 10). tcpwork
# server (python, epoll) in the source network namespace, its client in a
# third namespace, streaming both ways with every byte checked and both
# ends reading slower than the other writes (so the send queues, unsent
# and unacknowledged, and the receive queues are full at the freeze).
# migrate --to a page server in the destination namespace (own PID
# namespace); while the destination holds the restored copy
# (FERRY_TEST_PAUSE_AT=held: its connection in repair mode and locked
# there too, its listener's new connections held back) the service address is handed over (tcp-lib.sh
# tcp_move_service). Checked: migrate succeeds; the server runs at the
# destination with its pid; the client never saw an error, its connection
# (same local port) is the one it had and goes on (several MB more both
# ways); once both stop sending, what each end sent is what the other
# received; no nft lock is left at either end. TCP_FAM=6 (t-tcp-ipv6.sh)
# runs the same over IPv6; TCP_CONNS=N (t-tcp-many.sh: 8) streams N
# connections at once, each locked, moved and checked alike.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"
. "$(dirname "$0")/tcp-lib.sh"

e2e_need migrate pageserver restore
command -v nft >/dev/null || e2e_skip "no nft (Debian package nftables)"
TMP=$(e2e_tmpdir)
e2e_tls_certs
tcp_topology "${TCP_FAM:-4}"
port=$(e2e_port)
mig_start_dest "$E2E_DST_IP" netns

conns=${TCP_CONNS:-1}
tcp_start_server --conns "$conns"
tcp_start_client --conns "$conns"
for ((k = 0; k < conns; k++)); do
	tcp_wait_progress "$TMP/cli.out" $((2 * 1024 * 1024 / conns)) 30 $k
done
e2e_in_src ss -tni >"$TMP/ss.before"

# --- migrate, the address moving while the destination holds ----------------
e2e_in_src env FERRY_TEST_PAUSE_AT=held "$MIGRATE" --json --to "$E2E_DST_IP:$port" \
	"${CLI_TLS[@]}" "$pid" >"$TMP/migrate.json" 2>"$TMP/migrate.err" &
mpid=$!
e2e_wait_for_line "$TMP/migrate.err" 'paused at held' 90 ||
	e2e_fail "migrate never held: $(tail -n 3 "$TMP/migrate.err")"
e2e_in_dst nft list ruleset >"$TMP/dst.nft"
for p in $(sed -n 's/^conn [0-9]* local .*[:.]\([0-9]*\) peer .*/\1/p' "$TMP/cli.out"); do
	grep -q "sport $sport .*dport $p drop" "$TMP/dst.nft" ||
		e2e_fail "the held copy's connection $p is not locked at the destination: $(cat "$TMP/dst.nft")"
done
grep -q "tcp dport $sport tcp flags syn / syn,ack drop" "$TMP/dst.nft" ||
	e2e_fail "the held copy's listener is not held back at the destination: $(cat "$TMP/dst.nft")"
tcp_move_service
wait $mpid
rc=$?
cat "$TMP/migrate.json" "$TMP/migrate.err" >&2
[ $rc -eq 0 ] || e2e_fail "migrate exited $rc: $(tail -n 1 "$TMP/migrate.err")"
grep -q '"event":"done"' "$TMP/migrate.json" || e2e_fail "no done line"
# the downtime prediction counts the queues the final round carries (MBs here)
q=$(grep -o '"tcp_queued_bytes":[0-9]*' "$TMP/migrate.json" | cut -d: -f2 | sort -n | tail -n 1)
[ "${q:-0}" -ge 262144 ] || e2e_fail "the prediction counts ${q:-no} TCP queued bytes"
e2e_log "predicted with $q bytes in TCP queues"
tcp_no_lock "$E2E_SRC_NS"
tcp_no_lock "$E2E_DST_NS"

# --- the server runs at the destination, same pid, same connection ---------
e2e_wait_pid_gone "$pid" 10 || e2e_fail "source $pid still there after the migration"
in_dest test -e "/proc/$pid" || e2e_fail "no pid $pid in the destination namespace"
grep -q tcpwork <(in_dest cat "/proc/$pid/cmdline") || e2e_fail "pid $pid there is not tcpwork"
outer=$(outer_pid "$pid")
[ -n "$outer" ] || e2e_fail "no process outside with NSpid ... $pid"
e2e_track_pid "$outer"
for ((k = 0; k < conns; k++)); do
	tcp_wait_progress "$TMP/cli.out" $((3 * 1024 * 1024 / conns)) 60 $k
	tcp_wait_progress "$TMP/srv.out" $((3 * 1024 * 1024 / conns)) 60 $k
done
e2e_in_dst ss -tn state established | grep -q ":$cport\b" ||
	e2e_fail "the destination has no connection from client port $cport: $(e2e_in_dst ss -tn)"
[ "$(grep -c '^conn ' "$TMP/cli.out")" = "$conns" ] || e2e_fail "the client connected again"
tcp_check_streams "$outer" 60 "$conns"
echo "PASS: $conns TCP connection(s) (first client port $cport) moved with pid $pid over IPv${TCP_FAM:-4}"
