#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 240
#
# Connections closed by this end whose FIN the peer has not acknowledged
# yet move too (docs/tcp.md, "Half-closed connections"). tcpwork fserver in
# the source namespace, three qclients in the client namespace:
#   0  the server sent 64 KiB, the client waits;
#   1  the client sent "hello" and shut its write side (CLOSE_WAIT here);
#   2  the client sent "hello" and waits;
#   3  the server wrote until the client's window and its send buffer are
#      full (the client reads nothing yet).
# Then the client namespace drops the server's packets (an nft rule of the
# test) and the server shuts its write side of all three: its FINs are
# lost; 0 is FIN_WAIT1, 1 LAST_ACK; client 2 then shuts its side: its FIN,
# which does not acknowledge the server's, makes 2 CLOSING; 3 is FIN_WAIT1
# with its FIN queued behind unsent data (SIOCOUTQNSD, inside; ss outside). migrate with a freeze hook that hands the address over. After
# it, from outside: the destination holds them in FIN_WAIT1, LAST_ACK and
# CLOSING. The test lets the server's packets through: its FINs arrive and
# are acknowledged, 0 becomes FIN_WAIT2, 1 is closed, 2 TIME_WAIT (ss);
# client 3 reads all the server wrote (every word checked) and the end of
# file, 3 becomes FIN_WAIT2; from inside (SIGUSR1): TCP_INFO says
# FIN_WAIT2, CLOSE, CLOSE, FIN_WAIT2; client 0 reads
# its 64 KiB and the end of file, then sends "bye" on its open side and
# closes: the server reads it and the end of file.
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

TCP_ROLE=fserver TCP_OWN_IPC=1 tcp_start_server --shut-after "$TMP/shut"
tcp_start_qclient 0 --late bye
cport0=$cport
e2e_wait_for_line "$TMP/srv.out" '^accepted 0 ' 20 || e2e_fail "server: $(cat "$TMP/srv.out")"
tcp_start_qclient 1 --shut
cport1=$cport
e2e_wait_for_line "$TMP/srv.out" '^request 1 ' 20 || e2e_fail "server: $(cat "$TMP/srv.out")"
tcp_start_qclient 2 --shut-wait
cport2=$cport
e2e_wait_for_line "$TMP/srv.out" '^accepted 2 ' 20 || e2e_fail "server: $(cat "$TMP/srv.out")"
tcp_start_qclient 3 --wait --late end
cport3=$cport
e2e_wait_for_line "$TMP/srv.out" '^all$' 40 || e2e_fail "server: $(cat "$TMP/srv.out")"

# the server's packets to the clients dropped (the test's own table)
printf 'table inet t_finack {\n chain in {\n  type filter hook input priority 0;\n  tcp sport %s drop\n }\n}\n' \
	"$sport" | tcp_in_cli nft -f - || e2e_fail "cannot drop the server's packets"
touch "$TMP/shut"
e2e_wait_for_line "$TMP/srv.out" '^shut$' 20 || e2e_fail "server: $(cat "$TMP/srv.out")"
kill -USR1 "$(cat "$TMP/cli2.pidf")" || e2e_fail "client 2 is gone"
e2e_wait_for_line "$TMP/cli2.out" '^shut$' 20 || e2e_fail "client 2: $(cat "$TMP/cli2.out")"
tcp_wait_state fin-wait-1 "$E2E_SRC_NS" "$cport0"
tcp_wait_state last-ack "$E2E_SRC_NS" "$cport1"
tcp_wait_state closing "$E2E_SRC_NS" "$cport2"
tcp_wait_state fin-wait-1 "$E2E_SRC_NS" "$cport3"
unsent=$(sed -n 's/^unsent 3 //p' "$TMP/srv.out")
[ "${unsent:-0}" -gt 1 ] || e2e_fail "connection 3 has no unsent data behind its FIN: $(cat "$TMP/srv.out")"

tcp_migrate_moving
tcp_wait_state fin-wait-1 "$E2E_DST_NS" "$cport0"
tcp_wait_state last-ack "$E2E_DST_NS" "$cport1"
tcp_wait_state closing "$E2E_DST_NS" "$cport2"
tcp_wait_state fin-wait-1 "$E2E_DST_NS" "$cport3"

# --- the server's packets through: its FINs arrive, acknowledged ---------------
tcp_in_cli nft delete table inet t_finack || e2e_fail "cannot remove the test's drop"
for ((i = 0; i < 300; i++)); do
	e2e_in_dst ss -Htan | grep -q "[:.]$cport1\b" || break
	sleep 0.1
done
e2e_in_dst ss -Htan | grep -q "[:.]$cport1\b" &&
	e2e_fail "connection 1 not closed at the destination: $(e2e_in_dst ss -tan)"
# CLOSING, its FIN acknowledged: TIME_WAIT (the kernel's, the fd's socket closed)
tcp_wait_state time-wait "$E2E_DST_NS" "$cport2"
tcp_wait_state fin-wait-2 "$E2E_DST_NS" "$cport0"
# the client of 3 reads everything written at the source, then the FIN
kill -USR1 "$(cat "$TMP/cli3.pidf")" || e2e_fail "client 3 is gone"
e2e_wait_for_line "$TMP/cli3.out" '^done ' 60 || e2e_fail "client 3: $(cat "$TMP/cli3.out")"
wrote=$(sed -n 's/^wrote 3 //p' "$TMP/srv.out")
grep -q "^done $wrote\$" "$TMP/cli3.out" ||
	e2e_fail "client 3 read $(grep '^done' "$TMP/cli3.out"), the server wrote $wrote"
tcp_wait_state fin-wait-2 "$E2E_DST_NS" "$cport3"
kill -USR1 "$outer" || e2e_fail "the server is gone"
e2e_wait_for_line "$TMP/srv.out" '^state 3 ' 20 || e2e_fail "server: $(cat "$TMP/srv.out")"
grep -q '^state 3 5$' "$TMP/srv.out" || e2e_fail "connection 3 not FIN_WAIT2 inside: $(cat "$TMP/srv.out")"
# its send buffer, grown at the release for the unsent data, has its size back
[ "$(grep -c "^sndbuf 3 $(sed -n 's/^sndbuf 3 //p' "$TMP/srv.out" | head -n 1)\$" "$TMP/srv.out")" = 2 ] ||
	e2e_fail "connection 3's SO_SNDBUF changed: $(grep '^sndbuf' "$TMP/srv.out")"
grep -q '^state 0 5$' "$TMP/srv.out" || e2e_fail "connection 0 not FIN_WAIT2 inside: $(cat "$TMP/srv.out")"
grep -q '^state 1 7$' "$TMP/srv.out" || e2e_fail "connection 1 not closed inside: $(cat "$TMP/srv.out")"
grep -q '^state 2 7$' "$TMP/srv.out" || e2e_fail "connection 2 not closed inside: $(cat "$TMP/srv.out")"
e2e_wait_for_line "$TMP/cli0.out" '^done ' 20 || e2e_fail "client 0: $(cat "$TMP/cli0.out")"
grep -q '^done 65536$' "$TMP/cli0.out" || e2e_fail "client 0: $(cat "$TMP/cli0.out")"
grep -q '^done 0$' "$TMP/cli2.out" || e2e_fail "client 2: $(cat "$TMP/cli2.out")"
kill -USR1 "$(cat "$TMP/cli0.pidf")" || e2e_fail "client 0 is gone"
e2e_wait_for_line "$TMP/srv.out" '^got 0 bye$' 60 || e2e_fail "server: $(cat "$TMP/srv.out")"
grep -q '^FAIL' "$TMP/cli0.out" "$TMP/cli1.out" "$TMP/cli2.out" "$TMP/cli3.out" &&
	e2e_fail "a client failed"
cat "$TMP/srv.out" >&2
echo "PASS: FIN_WAIT1, LAST_ACK, CLOSING and FIN_WAIT1 with its FIN behind $unsent unsent bytes (client ports $cport0 $cport1 $cport2 $cport3) moved with pid $pid; their FINs acknowledged at the destination"
