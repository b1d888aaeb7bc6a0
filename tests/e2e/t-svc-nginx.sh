#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 150
#
# nginx (Debian package) moves with a keep-alive client and a slow download
# in progress (issue 10, "Done when"). e2e_net_bridge: a client, a source
# and a destination namespace on one bridge; nginx on the source (a root
# master, two workers as nobody, sendfile on) listens on the service
# address. In the client namespace (tests/workloads/httpcli.py, one raw
# socket each, never reconnecting): a keep-alive client sending GET /small
# every 100 ms on one connection, and a download of an 8 MiB random file
# read at 256 KiB/s through an 8 KiB receive buffer (so the transfer spans
# the migration; the send queue is full at the freeze). migrate --to the
# page server in the destination namespace (TLS) with --move-address, the
# master's pid given. Checked: the master and both workers run at the
# destination with their pids; the download was not finished when migrate
# returned, then (read at full speed) completes with the right SHA-256 on
# its one connection; the keep-alive connection keeps answering (same
# socket, every body checked) before and after; no nft lock is left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"
. "$(dirname "$0")/tcp-lib.sh"

command -v nginx >/dev/null || e2e_skip "no nginx"
command -v nft >/dev/null || e2e_skip "no nft (Debian package nftables)"
e2e_need migrate pageserver restore
HTTPCLI=$FERRY_ROOT/tests/workloads/httpcli.py
TMP=$(e2e_tmpdir)
mig_net_setup 4
hport=$(e2e_port)
N=$TMP/ngx
mkdir -p "$N/logs" "$N/www"
# the workers (nobody) read the files: the path must be searchable
chmod o+x "$TMP/.." "$TMP" "$N"
chmod o+rx "$N/www"
echo "hello, kept alive" >"$N/www/small"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$N/www/big"
chmod o+r "$N/www/small" "$N/www/big"
small_sha=$(sha256sum <"$N/www/small" | cut -d' ' -f1)
big_sha=$(sha256sum <"$N/www/big" | cut -d' ' -f1)
e2e_nginx_conf "$N" "sendfile on;" "keepalive_timeout 300s;" "send_timeout 120s;" \
	"server { listen $SVC_IP:$hport; root $N/www; }"
e2e_start_bg nginx e2e_in_src nginx -c "$N/nginx.conf" -p "$N/"
e2e_wait_file "$N/nginx.pid" 20 || e2e_fail "nginx did not start: $(tail -n 3 "$N/logs/error.log")"
pid=$(cat "$N/nginx.pid")
_e2e_deadline 10
until [ "$(pgrep -P "$pid" | wc -l)" -eq 2 ]; do
	_e2e_expired "$_E2E_DL" && e2e_fail "nginx has not two workers"
	sleep 0.1
done
e2e_wait_port "$hport" 20 "$E2E_SRC_NS" || e2e_fail "nginx does not listen"
workers=$(echo $(pgrep -P "$pid" | sort -n))
for w in $workers; do
	[ "$(stat -c %U "/proc/$w")" = nobody ] || e2e_fail "worker $w does not run as nobody"
done

e2e_start_bg ka e2e_in_cli python3 "$HTTPCLI" keepalive --addr "$SVC_IP" --port "$hport" \
	--path /small --body-sha256 "$small_sha" --out "$TMP/ka.out" --pidfile "$TMP/ka.pidf"
e2e_wait_for_line "$TMP/ka.out" '^n ([5-9]|[0-9]{2,})$' 20 ||
	e2e_fail "the keep-alive client gets no answers: $(cat "$TMP/ka.log" "$TMP/ka.out")"
e2e_start_bg dl e2e_in_cli python3 "$HTTPCLI" download --addr "$SVC_IP" --port "$hport" \
	--path /big --body-sha256 "$big_sha" --out "$TMP/dl.out" --pidfile "$TMP/dl.pidf"
e2e_wait_for_line "$TMP/dl.out" '^got [0-9]{6,} ' 20 ||
	e2e_fail "the download does not start: $(cat "$TMP/dl.log" "$TMP/dl.out")"
ka_port=$(sed -n 's/^conn local //p' "$TMP/ka.out")
dl_port=$(sed -n 's/^conn local //p' "$TMP/dl.out")
e2e_log "nginx master $pid, workers $workers; keep-alive port $ka_port, download port $dl_port at $(tail -n 1 "$TMP/dl.out")"

# --- the migration, the download in progress -----------------------------------
mig_run e2e_in_src "$MIGRATE" --json --to "$DEST" "${CLI_TLS[@]}" --move-address "$SVC@eth0" "$pid"
grep -q '"event":"done"' "$TMP/migrate.json" || e2e_fail "no done line"
at=$(tail -n 1 "$TMP/dl.out")
grep -q '^complete' "$TMP/dl.out" && e2e_fail "the download ended before the migration did: choose a bigger file"
e2e_wait_pid_gone "$pid" 10 || e2e_fail "source $pid still there after the migration"
outer=$(outer_pid "$pid") || e2e_fail "no pid $pid at the destination"
e2e_track_pid "$outer"
grep -q nginx <(in_dest cat "/proc/$pid/cmdline") || e2e_fail "pid $pid there is not nginx"
for w in $workers; do
	in_dest test -e "/proc/$w" || e2e_fail "worker $w is not at the destination"
done
mig_has_addr "$E2E_DST_NS" || e2e_fail "the service address is not on the destination"
tcp_no_lock "$E2E_SRC_NS"
tcp_no_lock "$E2E_DST_NS"

# --- after: both connections go on ---------------------------------------------
# ka_n: the keep-alive requests answered so far (its last "n" line)
ka_n() { awk '$1 == "n" { n = $2 } END { print n + 0 }' "$TMP/ka.out"; }
k0=$(ka_n)
_e2e_deadline 30
until [ "$(ka_n)" -ge $((k0 + 10)) ]; do
	_e2e_expired "$_E2E_DL" && e2e_fail "the keep-alive connection does not go on: $(tail -n 2 "$TMP/ka.out")"
	sleep 0.2
done
kill -USR2 "$(cat "$TMP/dl.pidf")" || e2e_fail "the download client is gone"
e2e_wait_for_line "$TMP/dl.out" '^(complete|FAIL)' 60 || e2e_fail "the download does not complete: $(tail -n 1 "$TMP/dl.out")"
e2e_assert_no_fail "$TMP/dl.out"
kill -USR1 "$(cat "$TMP/ka.pidf")" || e2e_fail "the keep-alive client is gone"
e2e_wait_for_line "$TMP/ka.out" '^(done|FAIL)' 10 || e2e_fail "the keep-alive client does not stop"
e2e_assert_no_fail "$TMP/ka.out"
for c in ka dl; do
	[ "$(grep -c '^conn ' "$TMP/$c.out")" = 1 ] || e2e_fail "client $c connected again"
done
echo "PASS: nginx master $pid (workers $workers) moved; download (port $dl_port) at '$at' when migrate returned, completed with its SHA-256; keep-alive connection (port $ka_port) $(tail -n 1 "$TMP/ka.out")"
