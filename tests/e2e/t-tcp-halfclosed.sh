#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 240
#
# Half-closed connections move with their state (docs/tcp.md, "Half-closed
# connections"). tcpwork hserver in the source namespace, two qclients in
# the client namespace:
#   0  the client sends "hello" and shuts its write side down: the server
#      read the end of file, its end is CLOSE_WAIT (the client's FIN_WAIT2);
#   1  the server replied 64 KiB and shut its write side down: its end is
#      FIN_WAIT2 (the client's CLOSE_WAIT), the client read it all.
# Seen from outside with ss on both sides. First a migration without the
# address at the destination: the restore names it, the source rolls back,
# its connections as they were. Then migrate --to a page server in the
# destination namespace; a freeze hook hands the service address over (the
# restore gives a half-closed connection its FIN as a segment to its local
# address: the address must be there). After the migration, from outside:
# the destination holds both connections in the same states. Then from
# inside (SIGUSR1 to the server): TCP_INFO gives CLOSE_WAIT and FIN_WAIT2, a
# read on connection 0 gives end of file again; the server writes 1 MiB on
# it and closes: client 0 reads all of it, every word checked, and the end
# of file. Client 1 (SIGUSR1) then sends "bye" on its still open side and
# closes: the server reads it and the end of file. No lock left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"
. "$(dirname "$0")/tcp-lib.sh"

e2e_need migrate pageserver restore
command -v nft >/dev/null || e2e_skip "no nft (Debian package nftables)"
TMP=$(e2e_tmpdir)
e2e_tls_certs
tcp_topology "${TCP_FAM:-4}"
port=$(e2e_port)
MIG_DEST_MANY=1 mig_start_dest "$E2E_DST_IP" netns

TCP_ROLE=hserver TCP_OWN_IPC=1 tcp_start_server
tcp_start_qclient 0 --shut
cport0=$cport
e2e_wait_for_line "$TMP/srv.out" '^request 0 hello$' 20 || e2e_fail "server: $(cat "$TMP/srv.out")"
tcp_start_qclient 1 --late bye
cport1=$cport
e2e_wait_for_line "$TMP/srv.out" '^half$' 20 || e2e_fail "server: $(cat "$TMP/srv.out")"
e2e_wait_for_line "$TMP/cli1.out" '^done 65536$' 20 || e2e_fail "client 1: $(cat "$TMP/cli1.out")"

tcp_wait_state close-wait "$E2E_SRC_NS" "$cport0"
tcp_wait_state fin-wait-2 "$CLI_NS" "$cport0"
tcp_wait_state fin-wait-2 "$E2E_SRC_NS" "$cport1"
tcp_wait_state close-wait "$CLI_NS" "$cport1"

# --- the address not at the destination at the restore: named, rolled back ------
e2e_in_src "$MIGRATE" --to "$E2E_DST_IP:$port" "${CLI_TLS[@]}" "$pid" >"$TMP/noaddr.out" \
	2>"$TMP/noaddr.err"
rc=$?
e2e_log "without the address: exit $rc: $(cat "$TMP/noaddr.err")"
[ $rc -ne 0 ] || e2e_fail "migrated although the address was not at the destination"
grep -q 'needs its local address on this host at the restore' "$TMP/noaddr.err" "$TMP/dest.log" ||
	e2e_fail "the missing address is not named: $(cat "$TMP/noaddr.err")"
[ -e "/proc/$pid" ] || e2e_fail "the server is gone after the rollback"
grep -q '^TracerPid:[[:space:]]*0$' "/proc/$pid/status" || e2e_fail "the server is still traced"
tcp_no_lock "$E2E_SRC_NS"
tcp_no_lock "$E2E_DST_NS"
tcp_wait_state close-wait "$E2E_SRC_NS" "$cport0"
tcp_wait_state fin-wait-2 "$E2E_SRC_NS" "$cport1"

# --- migrate; the address moves at the freeze ---------------------------------
tcp_migrate_moving
tcp_wait_state close-wait "$E2E_DST_NS" "$cport0"
tcp_wait_state fin-wait-2 "$E2E_DST_NS" "$cport1"
tcp_wait_state fin-wait-2 "$CLI_NS" "$cport0"
tcp_wait_state close-wait "$CLI_NS" "$cport1"

# --- from inside: the states, the end of file, then the replies ----------------
kill -USR1 "$outer" || e2e_fail "the server is gone"
e2e_wait_for_line "$TMP/srv.out" '^replied 0 1048576$' 60 || e2e_fail "server: $(cat "$TMP/srv.out")"
grep -q '^state 0 8$' "$TMP/srv.out" || e2e_fail "connection 0 not CLOSE_WAIT inside: $(cat "$TMP/srv.out")"
grep -q '^state 1 5$' "$TMP/srv.out" || e2e_fail "connection 1 not FIN_WAIT2 inside: $(cat "$TMP/srv.out")"
grep -q '^eof 0$' "$TMP/srv.out" || e2e_fail "connection 0 does not read end of file: $(cat "$TMP/srv.out")"
e2e_wait_for_line "$TMP/cli0.out" '^done ' 60 || e2e_fail "client 0: $(cat "$TMP/cli0.out" "$TMP/cli0.log")"
grep -q '^FAIL' "$TMP/cli0.out" && e2e_fail "client 0: $(grep '^FAIL' "$TMP/cli0.out")"
grep -q '^done 1048576$' "$TMP/cli0.out" || e2e_fail "client 0: $(grep '^done' "$TMP/cli0.out")"
kill -USR1 "$(cat "$TMP/cli1.pidf")" || e2e_fail "client 1 is gone"
e2e_wait_for_line "$TMP/srv.out" '^got 1 bye$' 60 || e2e_fail "server: $(cat "$TMP/srv.out")"
grep -q '^sent bye$' "$TMP/cli1.out" || e2e_fail "client 1: $(cat "$TMP/cli1.out")"
cat "$TMP/srv.out" >&2
echo "PASS: a CLOSE_WAIT (client port $cport0) and a FIN_WAIT2 (client port $cport1) connection moved with pid $pid over IPv${TCP_FAM:-4}"
