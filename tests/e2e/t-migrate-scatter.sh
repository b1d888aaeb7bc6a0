#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 240
#
# Correctness (not timing) of a migration whose pre-copy rounds leave a
# fragmented stack: memwork (256 MiB) rewriting random pages every tick, as
# a hash table does, and giving pages back (zero pages), migrated over
# mutual TLS to a page server in its own PID namespace (the network
# namespaces of lib.sh) over many rounds (--small-dirty 0: no round is
# ever small enough to stop early). Checked: many rounds, each pre-copy
# round prefilled at the destination, the final step applied only the
# final round's changes over the prefilled tree (the restore's "final
# memory" line), and inside the destination memwork's own check of its
# whole heap (every page's index, generation and pattern against its
# table, discarded pages zero) passing again and again after the restore.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"

e2e_need migrate pageserver restore memwork
TMP=$(e2e_tmpdir)
CHECK_EVERY=20
ROUNDS=12
e2e_tls_certs
e2e_netns_pair
port=$(e2e_port)
mig_start_dest "$E2E_DST_IP" netns

e2e_start_workload memwork '^step 50 ' "$E2E_MEMWORK" --mem 256 --scatter --dirty 64 \
	--discard 2 --tick-ms 5 --check-every $CHECK_EVERY --out "$TMP/out" --pidfile "$TMP/pid"

mig_run e2e_in_src "$MIGRATE" --json --max-rounds $ROUNDS --small-dirty 0 \
	--to "$E2E_DST_IP:$port" "${CLI_TLS[@]}" "$pid"

mig_check_report $((64 * 1024 * 1024))
mig_check_stack
[ "$rounds" -ge 5 ] || e2e_fail "only $rounds rounds: the stack is not fragmented"

# every pre-copy round but the last few was prefilled, and the final step
# took only the final round's changes
prefilled=$(grep -c 'restore: prefilled round ' "$TMP/dest.log")
[ "$prefilled" -ge 4 ] || e2e_fail "only $prefilled rounds prefilled at the destination"
grep -q "final memory: [0-9]* ops (the final round's changes over the prefill)" "$TMP/dest.log" ||
	e2e_fail "the final restore did not apply the final round alone: $(grep 'final memory' "$TMP/dest.log")"
e2e_log "$(grep -o 'final memory: .*' "$TMP/dest.log")"

# scattered: a round after the first has a pagemap of many runs (a round's
# pagemap lists its own runs only: the final one may hold few pages)
stack=$TMP/dst/$id
most=0
for ((k = 2; k <= rounds; k++)); do
	sz=$(stat -c %s "$stack/$k/pagemap-$pid.img" 2>/dev/null) || continue
	[ "$sz" -gt "$most" ] && most=$sz
done
[ "$most" -gt 2000 ] || e2e_fail "largest pagemap after round 1: $most bytes: writes were not scattered"

# --- the destination runs it, and its whole heap checks out, many times ------
mig_check_restored memwork " pid $pid "
e2e_wait_for_line "$TMP/out" "^step $((last + 5 * CHECK_EVERY)) pid $pid " 60 ||
	e2e_fail "restored memwork stalled: $(tail -n 1 "$TMP/out")"
in_dest test -e "/proc/$pid" || e2e_fail "restored memwork died: $(grep -a FAIL "$TMP/out")"
e2e_assert_no_fail "$TMP/out"
e2e_assert_steps_continuous "$TMP/out" $((last + 5 * CHECK_EVERY))
echo "migrate scatter ok: $rounds rounds, $prefilled prefilled, pid $pid restored, heap checked 5 times after"
