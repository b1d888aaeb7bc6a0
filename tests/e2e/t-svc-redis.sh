#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 150
#
# redis-server (Debian package) moves with its clients connected (issue 10,
# "Done when"). e2e_net_bridge: a client, a source and a destination
# namespace on one bridge; redis on the source listens on the service
# address only (no persistence, no daemon), holds 50,000 keys, and has three
# clients in the client namespace (tests/workloads/respcli.py, RESP over a
# raw socket): two send PING every 100 ms, one runs a write loop (INCR ctr,
# SET seq:N N) through the migration. migrate --to the page server in the
# destination namespace (TLS) with --move-address. Checked from the client
# side: no client saw an error or reconnected (each keeps its one socket);
# the writer's INCR always answered one more than the INCRs acknowledged
# before, and at the end GET ctr equals them and every seq:N is there; the
# destination's CLIENT LIST shows the three original client ports; INFO's
# process_id is the source's pid; DBSIZE is 50,000 + the writer's keys + 1;
# no nft lock is left at either end.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"
. "$(dirname "$0")/tcp-lib.sh"

command -v redis-server >/dev/null || e2e_skip "no redis-server"
command -v nft >/dev/null || e2e_skip "no nft (Debian package nftables)"
e2e_need migrate pageserver restore
RESPCLI=$FERRY_ROOT/tests/workloads/respcli.py
TMP=$(e2e_tmpdir)
mig_net_setup 4
rport=$(e2e_port)
cat >"$TMP/redis.conf" <<EOF2
bind $SVC_IP
port $rport
protected-mode no
daemonize no
pidfile $TMP/redis.pid
save ""
appendonly no
dir $TMP
logfile ""
EOF2
e2e_start_bg redis e2e_in_src redis-server "$TMP/redis.conf"
e2e_wait_file "$TMP/redis.pid" 20 || e2e_fail "redis-server did not start: $(tail -n 5 "$TMP/redis.log")"
e2e_wait_port "$rport" 20 "$E2E_SRC_NS" || e2e_fail "redis-server does not listen"
pid=$(cat "$TMP/redis.pid")
rcli() { e2e_in_cli timeout 20 redis-cli -h "$SVC_IP" -p "$rport" "$@"; }

e2e_in_cli timeout 60 python3 "$RESPCLI" load --addr "$SVC_IP" --port "$rport" --keys 50000 ||
	e2e_fail "cannot load the keys"
[ "$(rcli DBSIZE)" = 50000 ] || e2e_fail "DBSIZE $(rcli DBSIZE) after loading 50000 keys"

ports=()
for c in ping1 ping2 writer; do
	mode=${c%[0-9]}; [ "$mode" = writer ] && mode=write
	e2e_start_bg "$c" e2e_in_cli python3 "$RESPCLI" "$mode" --addr "$SVC_IP" --port "$rport" \
		--out "$TMP/$c.out" --pidfile "$TMP/$c.pidf"
	e2e_wait_file "$TMP/$c.pidf" 20 || e2e_fail "client $c did not connect: $(cat "$TMP/$c.log")"
	ports+=("$(sed -n 's/^conn local //p' "$TMP/$c.out")")
done
e2e_wait_for_line "$TMP/writer.out" '^n [0-9]{3,} ' 30 || e2e_fail "the writer makes no progress"
rcli CLIENT LIST >"$TMP/clients.before"
for p in "${ports[@]}"; do
	grep -q "addr=$E2E_CLI_IP:$p " "$TMP/clients.before" || e2e_fail "no client $p at the source"
done
e2e_log "redis pid $pid, clients ${ports[*]}, writer at $(tail -n 1 "$TMP/writer.out")"

# --- the migration, the writer writing ---------------------------------------
mig_run e2e_in_src "$MIGRATE" --json --to "$DEST" "${CLI_TLS[@]}" --move-address "$SVC@eth0" "$pid"
grep -q '"event":"done"' "$TMP/migrate.json" || e2e_fail "no done line"
e2e_wait_pid_gone "$pid" 10 || e2e_fail "source $pid still there after the migration"
outer=$(outer_pid "$pid") || e2e_fail "no pid $pid at the destination"
e2e_track_pid "$outer"
grep -q redis-server <(in_dest cat "/proc/$pid/cmdline") || e2e_fail "pid $pid there is not redis-server"
mig_has_addr "$E2E_SRC_NS" && e2e_fail "the service address is still on the source"
mig_has_addr "$E2E_DST_NS" || e2e_fail "the service address is not on the destination"
tcp_no_lock "$E2E_SRC_NS"
tcp_no_lock "$E2E_DST_NS"

# --- after: the same connections go on --------------------------------------
n0=$(tail -n 1 "$TMP/writer.out" | awk '$1 == "n" { print $2 }')
e2e_wait_for_line "$TMP/writer.out" "^n ($((n0 + 200))|[0-9]{$((${#n0} + 1)),}) " 30 ||
	e2e_fail "the writer does not go on: $(tail -n 2 "$TMP/writer.out")"
for c in ping1 ping2 writer; do
	e2e_assert_no_fail "$TMP/$c.out"
	[ "$(grep -c '^conn ' "$TMP/$c.out")" = 1 ] || e2e_fail "client $c connected again"
done
rcli CLIENT LIST >"$TMP/clients.after" || e2e_fail "CLIENT LIST fails at the destination"
for p in "${ports[@]}"; do
	grep -q "addr=$E2E_CLI_IP:$p " "$TMP/clients.after" ||
		e2e_fail "client port $p not in the destination's CLIENT LIST: $(cat "$TMP/clients.after")"
done
e2e_in_dst ss -tn state established | grep -q ":${ports[2]}\b" ||
	e2e_fail "the destination has no connection from client port ${ports[2]}"
ipid=$(rcli INFO server | tr -d '\r' | sed -n 's/^process_id://p')
[ "$ipid" = "$pid" ] || e2e_fail "INFO process_id '$ipid', expected $pid"
for c in ping1 ping2 writer; do
	kill -USR1 "$(cat "$TMP/$c.pidf")" || e2e_fail "client $c is gone"
done
e2e_wait_for_line "$TMP/writer.out" '^(verify ok|FAIL)' 30 || e2e_fail "the writer does not verify"
e2e_assert_no_fail "$TMP/writer.out"
acked=$(sed -n 's/^verify ok acked //p' "$TMP/writer.out")
for c in ping1 ping2; do
	e2e_wait_for_line "$TMP/$c.out" '^(done|FAIL)' 10 || e2e_fail "client $c does not stop"
	e2e_assert_no_fail "$TMP/$c.out"
done
size=$(rcli DBSIZE)
[ "$size" = $((50000 + acked + 1)) ] || e2e_fail "DBSIZE $size, expected 50000 + $acked + 1"
maxwait=$(awk '$1 == "n" { m = $4 } END { print m }' "$TMP/writer.out")
echo "PASS: redis-server pid $pid moved with 3 clients (ports ${ports[*]}); $acked writes acknowledged, none lost; DBSIZE $size; longest reply wait ${maxwait} ms"
