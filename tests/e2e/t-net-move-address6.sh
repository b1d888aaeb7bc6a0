#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 150
#
# migrate --move-address with an IPv6 service address, no interface named
# (the destination picks the interface its route to the address leaves by),
# between the "hosts" of e2e_net_bridge. netsvc.py (UDP and TCP bound to the
# address) runs on the source; the client talks to it once, so its neighbour
# cache names the source. After the migration: the address is off the
# source and on the destination's eth0; before the client sends anything its
# neighbour entry names the destination (the unsolicited neighbour
# advertisement with the override flag did it); the same pid answers over
# UDP and TCP with its counter going on. The migration is a scripted session
# (--move-address and a freeze hook on its first --pre-dump; refused on
# --final).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"

e2e_need migrate pageserver restore
TMP=$(e2e_tmpdir)
mig_net_start 6 7003
neigh() { e2e_in_cli ip -6 neigh show "$E2E_SVC_IP6"; }

got=$(mig_ask udp) || e2e_fail "no answer from the service on the source"
[ "$got" = "pid $pid count 1" ] || e2e_fail "answer '$got', expected 'pid $pid count 1'"
src_mac=$(ip -n "$E2E_SRC_NS" link show eth0 | awk '/link\/ether/ { print $2 }')
dst_mac=$(ip -n "$E2E_DST_NS" link show eth0 | awk '/link\/ether/ { print $2 }')
neigh | grep -q "$src_mac" || e2e_fail "the client's neighbour entry is not the source's: $(neigh)"

# through a scripted session: the address goes with the first --pre-dump
S=$TMP/session.sock
e2e_in_src "$MIGRATE" --pre-dump --session "$S" --to "$DEST" "${CLI_TLS[@]}" --move-address "$SVC" \
	--hook "freeze=echo \$FERRY_PHASE \$FERRY_MOVE_ADDRESS >>$TMP/hooks.log" "$pid" >&2 ||
	e2e_fail "the first --pre-dump failed"
mig_has_addr "$E2E_SRC_NS" || e2e_fail "the address left the source before the freeze"
e2e_in_src "$MIGRATE" --pre-dump --session "$S" >&2 || e2e_fail "the second --pre-dump failed"
e2e_in_src "$MIGRATE" --final --session "$S" --move-address "$SVC" 2>"$TMP/late.err"
[ $? -eq 2 ] || e2e_fail "--move-address on --final accepted"
e2e_in_src "$MIGRATE" --final --session "$S" >&2 || e2e_fail "migrate --final failed"
e2e_wait_for_line "$TMP/dest.log" '^pageserver exited' 10 || e2e_fail "pageserver --once did not exit"
grep -qx 'pageserver exited 0' "$TMP/dest.log" || e2e_fail "$(grep '^pageserver exited' "$TMP/dest.log")"
grep -qx "freeze $SVC" "$TMP/hooks.log" || e2e_fail "the session's freeze hook: $(cat "$TMP/hooks.log" 2>&1)"
e2e_wait_pid_gone "$pid" 10 || e2e_fail "source still there"
mig_has_addr "$E2E_SRC_NS" && e2e_fail "the service address is still on the source"
mig_has_addr "$E2E_DST_NS" || e2e_fail "the service address is not on the destination's eth0"
neigh | grep -q "$dst_mac" || e2e_fail "the client's neighbour entry does not name the destination: $(neigh)"
outer=$(outer_pid "$pid") || e2e_fail "no pid $pid at the destination"
e2e_track_pid "$outer"
got=$(mig_ask udp 20) || e2e_fail "no UDP answer at $SVC_IP after the migration"
[ "$got" = "pid $pid count 2" ] || e2e_fail "UDP answer '$got', expected 'pid $pid count 2'"
got=$(mig_ask tcp 20) || e2e_fail "no TCP connection to $SVC_IP after the migration"
[ "$got" = "pid $pid count 3" ] || e2e_fail "TCP answer '$got', expected 'pid $pid count 3'"
echo "move-address IPv6 ok: pid $pid answers at $E2E_SVC_IP6 from the destination"
