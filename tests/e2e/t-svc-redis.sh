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
# destination namespace (TLS) with --move-address. First a migration that
# fails after the destination held the restored copy (a restored hook exits
# 1): the address and the connections are back at the source, the clients
# go on there (same sockets), no lock is left. Then the real one. Checked from the client
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
MIG_DEST_MANY=1 mig_net_setup 4
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

# writer_n: the writes acknowledged so far (its last "n" line)
writer_n() { awk '$1 == "n" { n = $2 } END { print n + 0 }' "$TMP/writer.out"; }

# writer_goes_on WHAT: 200 more writes acknowledged within 30 s, no client
# failed or connected again
writer_goes_on()
{
	local n0 c

	n0=$(writer_n)
	_e2e_deadline 30
	until [ "$(writer_n)" -ge $((n0 + 200)) ]; do
		_e2e_expired "$_E2E_DL" && e2e_fail "$1: the writer does not go on: $(tail -n 2 "$TMP/writer.out")"
		sleep 0.2
	done
	for c in ping1 ping2 writer; do
		e2e_assert_no_fail "$TMP/$c.out"
		[ "$(grep -c '^conn ' "$TMP/$c.out")" = 1 ] || e2e_fail "$1: client $c connected again"
	done
}

# --- a failed migration first: the destination held the restored copy --------
# (its connections in repair mode, the address added there), then the restored
# hook fails: everything goes back to the source, the clients notice nothing
e2e_in_src "$MIGRATE" --json --to "$DEST" "${CLI_TLS[@]}" --move-address "$SVC@eth0" \
	--hook 'restored=exit 1' "$pid" >"$TMP/rollback.json" 2>"$TMP/rollback.err"
rc=$?
[ $rc -eq 1 ] || e2e_fail "rollback: migrate exited $rc, expected 1: $(tail -n 3 "$TMP/rollback.err")"
grep -q 'restored' "$TMP/rollback.err" || e2e_fail "rollback: the reason does not name the hook"
grep -q '^TracerPid:[[:space:]]*0$' "/proc/$pid/status" || e2e_fail "rollback: the source is gone or traced"
mig_has_addr "$E2E_SRC_NS" || e2e_fail "rollback: the address is not back on the source"
_e2e_deadline 10
while mig_has_addr "$E2E_DST_NS"; do
	_e2e_expired "$_E2E_DL" && e2e_fail "rollback: the address is still on the destination"
	sleep 0.1
done
writer_goes_on rollback
tcp_no_lock "$E2E_SRC_NS"
# the destination discards its copy (kills it, closes its sockets in repair
# mode, removes its lock) on its own time
_e2e_deadline 20
while e2e_in_dst nft list tables | grep -q ferry_lock_; do
	_e2e_expired "$_E2E_DL" && break
	sleep 0.1
done
tcp_no_lock "$E2E_DST_NS"
rcli CLIENT LIST >"$TMP/clients.rollback"
for p in "${ports[@]}"; do
	grep -q "addr=$E2E_CLI_IP:$p " "$TMP/clients.rollback" ||
		e2e_fail "rollback: client port $p not in the source's CLIENT LIST"
done
e2e_log "rollback: the source runs on with its clients, writer at $(writer_n)"

# --- the migration, the writer writing ---------------------------------------
e2e_in_src "$MIGRATE" --json --to "$DEST" "${CLI_TLS[@]}" --move-address "$SVC@eth0" "$pid" \
	>"$TMP/migrate.json" 2>"$TMP/migrate.err"
rc=$?
cat "$TMP/migrate.json" "$TMP/migrate.err" >&2
[ $rc -eq 0 ] || e2e_fail "migrate exited $rc: $(tail -n 1 "$TMP/migrate.err")"
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
writer_goes_on migration
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
