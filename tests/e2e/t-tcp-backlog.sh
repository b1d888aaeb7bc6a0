#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 240
#
# A listening socket with a connection in its accept queue (docs/tcp.md,
# "The accept queue"). tcpwork qserver --hold-accept in the source namespace
# accepts nothing until a file exists; a qclient in the client namespace connects
# (the handshake done by the kernel: the connection waits in the server's
# accept queue, seen from outside by ss: Recv-Q 1 on the listener) and sends
# nothing yet. migrate --to a page server in the destination namespace: at
# its final round it locks the listener (a SYN drop rule in the source's
# ferry_lock_ table, seen from outside) and waits for the queue to drain;
# only then does the test let the server accept (the file). The migration
# succeeds, migrate says one connection was waiting; the address is handed
# over while the destination holds the copy. Then the client sends its
# request: the server, at the destination with its pid, serves it on the
# connection it accepted at the source (same client port), the client
# reads the whole reply (64 KiB of checked words) and the end of file.
# Also: a server that never accepts is refused at the final dump
# (--accept-wait 300) and runs on, its client still queued, no lock left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"
. "$(dirname "$0")/tcp-lib.sh"

e2e_need migrate pageserver restore
command -v nft >/dev/null || e2e_skip "no nft (Debian package nftables)"
TMP=$(e2e_tmpdir)
e2e_tls_certs
tcp_topology 4
port=$(e2e_port)
mig_start_dest "$E2E_DST_IP" netns

# listener_queue: the source listener's Recv-Q (its accept queue's length)
listener_queue()
{
	e2e_in_src ss -Hltn "sport = :$sport" | awk '{ print $2 }'
}

TCP_ROLE=qserver TCP_OWN_IPC=1 tcp_start_server --hold-accept "$TMP/accept"
tcp_start_qclient 0 --wait
for ((i = 0; i < 50; i++)); do
	[ "$(listener_queue)" = 1 ] && break
	sleep 0.1
done
[ "$(listener_queue)" = 1 ] || e2e_fail "no connection in the accept queue: $(e2e_in_src ss -ltn)"

# --- refused: the server does not accept within --accept-wait ---------------
e2e_in_src "$MIGRATE" --accept-wait 300 --images-dir "$TMP/img-refused" "$pid" \
	>"$TMP/refused.out" 2>"$TMP/refused.err"
rc=$?
e2e_log "never accepted: exit $rc: $(cat "$TMP/refused.err")"
[ $rc = 4 ] || e2e_fail "a queue never accepted: migrate exited $rc, want 4"
grep -q 'waiting in its accept queue or being set up at the freeze, after waiting up to 300 ms' \
	"$TMP/refused.err" || e2e_fail "refusal not named: $(cat "$TMP/refused.err")"
[ -e "/proc/$pid" ] || e2e_fail "the server is gone after the refusal"
grep -q '^TracerPid:[[:space:]]*0$' "/proc/$pid/status" || e2e_fail "the server is still traced"
tcp_no_lock "$E2E_SRC_NS"
[ "$(listener_queue)" = 1 ] || e2e_fail "the queued connection is gone: $(e2e_in_src ss -ltn)"

# --- migrated: the server accepts while migrate waits -------------------------
e2e_in_src env FERRY_TEST_PAUSE_AT=held "$MIGRATE" -v --accept-wait 60000 \
	--to "$E2E_DST_IP:$port" "${CLI_TLS[@]}" "$pid" >"$TMP/migrate.out" 2>"$TMP/migrate.err" &
mpid=$!
for ((i = 0; i < 600; i++)); do
	e2e_in_src nft list ruleset 2>/dev/null | grep -q "tcp dport $sport tcp flags syn / syn,ack drop" &&
		break
	kill -0 $mpid 2>/dev/null || break
	sleep 0.1
done
e2e_in_src nft list ruleset | grep -q "tcp dport $sport tcp flags syn / syn,ack drop" ||
	e2e_fail "the listener was never locked: $(tail -n 3 "$TMP/migrate.err")"
[ "$(listener_queue)" = 1 ] || e2e_fail "the queue drained before the server accepted"
grep -q 'paused at held' "$TMP/migrate.err" && e2e_fail "migrate froze with a queued connection"
touch "$TMP/accept"
e2e_wait_for_line "$TMP/migrate.err" 'paused at held' 90 ||
	e2e_fail "migrate never held: $(tail -n 3 "$TMP/migrate.err")"
tcp_move_service
wait $mpid
rc=$?
cat "$TMP/migrate.out" "$TMP/migrate.err" >&2
[ $rc -eq 0 ] || e2e_fail "migrate exited $rc: $(tail -n 1 "$TMP/migrate.err")"
grep -q '1 connection(s) waiting to be accepted: the program took them in' "$TMP/migrate.err" ||
	e2e_fail "migrate does not say it waited for the accept queue"
grep -q "^accepted 0 peer .*:$cport\$" "$TMP/srv.out" ||
	e2e_fail "the server did not accept client port $cport: $(cat "$TMP/srv.out")"
tcp_migrated

# --- the client is served by the destination ----------------------------------
e2e_in_dst ss -tn state established | grep -q ":$cport\b" ||
	e2e_fail "the destination has no connection from client port $cport: $(e2e_in_dst ss -tn)"
kill -USR1 "$(cat "$TMP/cli0.pidf")" || e2e_fail "the client is gone"
e2e_wait_for_line "$TMP/cli0.out" '^done ' 60 ||
	e2e_fail "the client was not served: $(cat "$TMP/cli0.out" "$TMP/cli0.log")"
grep -q '^FAIL' "$TMP/cli0.out" && e2e_fail "client: $(grep '^FAIL' "$TMP/cli0.out")"
grep -q '^done 65536$' "$TMP/cli0.out" || e2e_fail "client: $(grep '^done' "$TMP/cli0.out")"
grep -q '^request 0 hello$' "$TMP/srv.out" || e2e_fail "server: $(cat "$TMP/srv.out")"
grep -q '^replied 0 65536$' "$TMP/srv.out" || e2e_fail "server did not reply: $(cat "$TMP/srv.out")"
echo "PASS: a connection queued at the listener was accepted before the freeze and served at the destination (client port $cport)"
