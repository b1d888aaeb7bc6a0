#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 150
#
# A Python asyncio server streaming both ways with data in flight moves
# with --move-address (issue 10, "Done when"; t-tcp-migrate does the same
# with the selectors server, the address handed over by the test itself).
# e2e_net_bridge: a client, a source and a destination namespace on one
# bridge. tcpwork.py aserver (asyncio.start_server, a reader and a writer
# coroutine per connection, StreamWriter.drain) on the service address of
# the source; tcpwork.py client in the client namespace with two
# connections; both directions are checked word by word, and both ends read
# slower than the other writes, so the kernel's send and receive queues and
# asyncio's transport buffer are full at the freeze. migrate --to the page
# server in the destination namespace (TLS) with --move-address. Checked:
# the server runs at the destination with its pid; the client never saw an
# error or reconnected (same ports, the destination has them); both
# connections stream several MB more; once both ends stop sending, what each
# sent is what the other received; no nft lock is left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"
. "$(dirname "$0")/tcp-lib.sh"

command -v nft >/dev/null || e2e_skip "no nft (Debian package nftables)"
e2e_need migrate pageserver restore
TMP=$(e2e_tmpdir)
mig_net_setup "${SVC_FAM:-4}"
sport=$(e2e_port)
e2e_start_bg srv e2e_in_src python3 "$TCPWORK" aserver --addr "$SVC_IP" --port "$sport" \
	--out "$TMP/srv.out" --pidfile "$TMP/pid"
e2e_wait_file "$TMP/pid" 20 || e2e_fail "the asyncio server did not start: $(cat "$TMP/srv.log")"
pid=$(cat "$TMP/pid")
e2e_start_bg cli e2e_in_cli python3 "$TCPWORK" client --addr "$SVC_IP" --port "$sport" --conns 2 \
	--out "$TMP/cli.out" --pidfile "$TMP/cli.pidf"
e2e_wait_file "$TMP/cli.pidf" 20 || e2e_fail "the client did not connect: $(cat "$TMP/cli.log")"
cports=$(echo $(sed -n 's/^conn [0-9] local .*[:.]\([0-9]*\) peer .*/\1/p' "$TMP/cli.out"))
tcp_wait_progress "$TMP/cli.out" $((1024 * 1024)) 30 1
tcp_wait_progress "$TMP/srv.out" $((1024 * 1024)) 30 1

mig_run e2e_in_src "$MIGRATE" --json --to "$DEST" "${CLI_TLS[@]}" --move-address "$SVC@eth0" "$pid"
grep -q '"event":"done"' "$TMP/migrate.json" || e2e_fail "no done line"
e2e_wait_pid_gone "$pid" 10 || e2e_fail "source $pid still there after the migration"
outer=$(outer_pid "$pid") || e2e_fail "no pid $pid at the destination"
e2e_track_pid "$outer"
grep -q tcpwork <(in_dest cat "/proc/$pid/cmdline") || e2e_fail "pid $pid there is not tcpwork"
mig_has_addr "$E2E_DST_NS" || e2e_fail "the service address is not on the destination"
tcp_no_lock "$E2E_SRC_NS"
tcp_no_lock "$E2E_DST_NS"

for k in 0 1; do
	tcp_wait_progress "$TMP/cli.out" $((2 * 1024 * 1024)) 60 $k
	tcp_wait_progress "$TMP/srv.out" $((2 * 1024 * 1024)) 60 $k
done
for p in $cports; do
	e2e_in_dst ss -tn state established | grep -q ":$p\b" ||
		e2e_fail "the destination has no connection from client port $p: $(e2e_in_dst ss -tn)"
done
[ "$(grep -c '^conn ' "$TMP/cli.out")" = 2 ] || e2e_fail "the client connected again"
tcp_check_streams "$outer" 60 2
echo "PASS: asyncio server pid $pid moved with --move-address, client ports $cports streaming both ways"
