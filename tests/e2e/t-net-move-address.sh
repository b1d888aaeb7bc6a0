#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 180
#
# migrate --move-address between the "hosts" of e2e_net_bridge (a client, a
# source and a destination namespace on one bridge). A service (netsvc.py:
# UDP echo and a listening TCP socket, both bound to the service address
# itself, no client connected at the freeze) runs on the source with the
# service address as a secondary address of its eth0. Checked:
#   a. the client reaches it at the service address (count 1)
#   b. bad --move-address arguments are refused with a reason, before anything
#      (exit 2; an address that is not on the source as asked (absent, another
#      prefix, no such interface): exit 6, this host's problem; nothing frozen)
#   c. migrate --move-address: the address is gone from the source, on the
#      destination's eth0; the client (whose ARP cache still names the
#      source) reaches the same pid at the same address, over UDP and TCP,
#      with its request counter going on (count 3, 4): the state moved; the
#      gratuitous ARP alone re-pointed the client's ARP entry (checked before
#      the client sends anything)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"

e2e_need migrate pageserver restore
TMP=$(e2e_tmpdir)
mig_net_start 4 7001

# --- a. before --------------------------------------------------------------------
got=$(mig_ask udp) || e2e_fail "the client gets no answer from the service on the source"
[ "$got" = "pid $pid count 1" ] || e2e_fail "a. answer '$got', expected 'pid $pid count 1'"
e2e_in_cli ip neigh show "$E2E_SVC_IP" | grep -q lladdr || e2e_fail "a. no ARP entry at the client"
src_mac=$(ip -n "$E2E_SRC_NS" link show eth0 | awk '/link\/ether/ { print $2 }')
dst_mac=$(ip -n "$E2E_DST_NS" link show eth0 | awk '/link\/ether/ { print $2 }')
e2e_in_cli ip neigh show "$E2E_SVC_IP" | grep -q "$src_mac" || e2e_fail "a. client's ARP entry is not the source's"

# --- b. bad arguments -----------------------------------------------------------------
bad()
{
	local want=$1 arg=$2 rc

	e2e_in_src "$MIGRATE" --to "$E2E_DST_IP:$port" "${CLI_TLS[@]}" --move-address "$arg" "$pid" \
		>"$TMP/bad.out" 2>"$TMP/bad.err"
	rc=$?
	e2e_log "--move-address '$arg': exit $rc: $(cat "$TMP/bad.err")"
	[ $rc -eq "$want" ] || e2e_fail "b. --move-address '$arg' exited $rc, expected $want"
	[ "$(wc -l <"$TMP/bad.err")" -ge 1 ] || e2e_fail "b. --move-address '$arg': no reason"
	grep -q '^TracerPid:[[:space:]]*0$' "/proc/$pid/status" || e2e_fail "b. source traced after '$arg'"
}
bad 2 "$E2E_SVC_IP"
bad 2 "$E2E_SVC_IP/33"
bad 2 "$E2E_SVC_IP/0"
bad 2 "nonsense/24"
bad 2 "224.0.0.5/24"
bad 2 "127.0.0.5/8"
bad 2 "$SVC@"
bad 2 "$SVC@bad/name"
bad 2 "fe80::1/64"
bad 6 "${E2E_SVC_IP%.*}.77/24"
grep -q 'not on any interface' "$TMP/bad.err" || e2e_fail "b. absent address: reason not said"
bad 6 "$E2E_SVC_IP/16"
grep -q 'prefix /24, not /16' "$TMP/bad.err" || e2e_fail "b. wrong prefix: reason not said"
bad 6 "$SVC@nosuch0"
grep -q 'no interface nosuch0' "$TMP/bad.err" || e2e_fail "b. unknown interface: reason not said"
mig_has_addr "$E2E_SRC_NS" || e2e_fail "b. the address left the source"
got=$(mig_ask udp) || e2e_fail "b. no answer after the refusals"
[ "$got" = "pid $pid count 2" ] || e2e_fail "b. answer '$got', expected 'pid $pid count 2'"

# --- c. the migration ---------------------------------------------------------------------
mig_run e2e_in_src "$MIGRATE" --json --to "$E2E_DST_IP:$port" "${CLI_TLS[@]}" \
	--move-address "$SVC@eth0" "$pid"
grep -q '"event":"done"' "$TMP/migrate.json" || e2e_fail "c. no done line"
e2e_wait_pid_gone "$pid" 10 || e2e_fail "c. source still there"
mig_has_addr "$E2E_SRC_NS" && e2e_fail "c. the service address is still on the source"
mig_has_addr "$E2E_DST_NS" || e2e_fail "c. the service address is not on the destination's eth0"
grep -q "service address $SVC added on eth0" "$TMP/dest.log" ||
	e2e_fail "c. the restore did not say it added the address"
# before any packet from the client: the announcement alone re-pointed its cache
e2e_in_cli ip neigh show "$E2E_SVC_IP" | grep -q "$dst_mac" ||
	e2e_fail "c. the client's ARP entry does not name the destination: $(e2e_in_cli ip neigh show "$E2E_SVC_IP")"
outer=$(outer_pid "$pid") || e2e_fail "c. no pid $pid at the destination"
e2e_track_pid "$outer"
got=$(mig_ask udp 20) || e2e_fail "c. the client gets no UDP answer at $SVC_IP after the migration"
[ "$got" = "pid $pid count 3" ] || e2e_fail "c. UDP answer '$got', expected 'pid $pid count 3'"
e2e_in_cli ip neigh show "$E2E_SVC_IP" | grep -q "$dst_mac" ||
	e2e_fail "c. the client's ARP entry does not name the destination: $(e2e_in_cli ip neigh show "$E2E_SVC_IP")"
got=$(mig_ask tcp 20) || e2e_fail "c. the client cannot connect over TCP after the migration"
[ "$got" = "pid $pid count 4" ] || e2e_fail "c. TCP answer '$got', expected 'pid $pid count 4'"
grep -q '^served 4 tcp$' "$TMP/out" || e2e_fail "c. the out file does not go on: $(tail -n 2 "$TMP/out")"
echo "move-address ok: pid $pid answers at $E2E_SVC_IP from the destination (count 4)"
