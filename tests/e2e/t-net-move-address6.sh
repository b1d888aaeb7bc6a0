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
# UDP and TCP with its counter going on.
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

mig_run e2e_in_src "$MIGRATE" --json --to "$E2E_DST_IP:$port" "${CLI_TLS[@]}" --move-address "$SVC" "$pid"
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
