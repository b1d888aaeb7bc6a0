#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 150
#
# Migration of memwork (256 MiB, dirtying pages) over mutual TLS to a real
# page server. The two "hosts" are the network namespaces of lib.sh
# (e2e_netns_pair, a veth pair); the destination also has its own PID
# namespace, so the restored process gets its old pid there while the
# source still exists. pageserver --once receives several rounds, restores
# the final one, and reports; migrate then kills the source. Checked: the
# stack at the destination (rounds, parent links), migrate's JSON
# (restore_ms in the last line), the source gone, and inside the
# destination namespace a memwork with the same pid whose steps continue
# the source's without gap or repeat, answering signals, self-checks passing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"

e2e_need migrate pageserver restore memwork
TMP=$(e2e_tmpdir)
CHECK_EVERY=40
e2e_tls_certs
e2e_netns_pair
port=$(e2e_port)
mig_start_dest "$E2E_DST_IP" netns

e2e_start_workload memwork '^step 100 ' "$E2E_MEMWORK" --mem 256 --dirty 16 --tick-ms 5 \
	--check-every $CHECK_EVERY --out "$TMP/out" --pidfile "$TMP/pid"
in_dest test -e "/proc/$pid" && e2e_fail "pid $pid already exists in the destination namespace"

mig_run e2e_in_src "$MIGRATE" --json --to "$E2E_DST_IP:$port" "${CLI_TLS[@]}" "$pid"

mig_check_report $((64 * 1024 * 1024))
mig_check_stack

# --- the source is gone, the destination runs it ----------------------------
mig_check_restored memwork " pid $pid "
kill -USR1 "$outer"
e2e_wait_for_line "$TMP/out" '^usr1 1$' 5 || e2e_fail "no 'usr1 1' at the destination"
kill -USR2 "$outer"
e2e_wait_for_line "$TMP/out" '^usr2 1 altstack ok$' 5 || e2e_fail "no 'usr2 1 altstack ok' at the destination"
e2e_wait_for_line "$TMP/out" "^step $((last + 4 * CHECK_EVERY)) pid $pid " 30 ||
	e2e_fail "restored memwork stalled: $(tail -n 1 "$TMP/out")"
in_dest test -e "/proc/$pid" || e2e_fail "restored memwork died: $(grep -a FAIL "$TMP/out")"
e2e_assert_no_fail "$TMP/out"
e2e_assert_steps_continuous "$TMP/out" $((last + 4 * CHECK_EVERY))
if grep '^step ' "$TMP/out" | grep -vq " pid $pid "; then
	e2e_fail "a step line with another pid"
fi
echo "migrate memwork over TLS ok: $rounds rounds, $wire wire bytes, pid $pid restored in the destination namespace"
