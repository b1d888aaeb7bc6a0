#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Downtime with and without the lazy fill (docs/benchmarks.md, "Lazy fill"):
# memwork (BENCH_MIB, default 1024) migrated over TLS to a page server in its
# own namespaces, once with the default (restore --lazy-fill) and once with
# pageserver --no-lazy-fill, for each prefill delay in BENCH_DELAYS (ms added
# per 16 MiB prefilled, the test hook FERRY_TEST_PREFILL_DELAY_MS; 0: this
# host as it is). Prints one "BENCH" line per run: rounds, total, frozen (the
# tool's clock), the largest gap memwork saw between two ticks (its own
# clock, µs) and the lazy fill's figures. As root, after make:
#
#	BENCH_DELAYS="0 400" BENCH_MIB=1024 bash tools/bench-lazy-fill.sh
. "$(dirname "$0")/../tests/e2e/lib.sh"
. "$(dirname "$0")/../tests/e2e/migrate-lib.sh"
e2e_need migrate pageserver restore memwork
e2e_tls_certs
e2e_netns_pair
for delay in ${BENCH_DELAYS:-0 300}; do
for mode in lazy nolazy; do
	TMP=$(e2e_tmpdir)
	port=$(e2e_port)
	extra=()
	[ "$mode" = nolazy ] && extra=(--no-lazy-fill)
	export FERRY_TEST_PREFILL_DELAY_MS=$delay
	[ "$delay" = 0 ] && unset FERRY_TEST_PREFILL_DELAY_MS
	mkdir -p "$TMP/dst"; export C
	e2e_start_bg dest e2e_in_dst unshare --pid --fork --mount-proc --kill-child -- \
		bash -c 'e2e_pidns_pageserver "$@"' _ "$E2E_DST_IP:$port" "$TMP/dst" --once "${extra[@]}"
	e2e_wait_port "$port" 10 "$E2E_DST_NS" || e2e_fail "no pageserver"
	unset FERRY_TEST_PREFILL_DELAY_MS
	e2e_start_workload memwork '^step 50 ' "$E2E_MEMWORK" --mem ${BENCH_MIB:-1024} --dirty 256 \
		--tick-ms 5 --check-every 0 --gap-ms 30 --out "$TMP/out" --pidfile "$TMP/pid"
	e2e_in_src "$MIGRATE" --json --to "$E2E_DST_IP:$port" "${CLI_TLS[@]}" "$pid" >"$TMP/m.json" 2>"$TMP/m.err"
	echo "migrate rc $?: $(tail -n 1 "$TMP/m.err")"
	grep -q '"event":"done"' "$TMP/m.json" || e2e_fail "migrate: $(tail -n 2 "$TMP/m.err")"
	e2e_wait_for_line "$TMP/dest.log" '^pageserver exited' 120
	done_line=$(grep '"event":"done"' "$TMP/m.json")
	frozen=$(sed -n 's/.*"frozen_ms":\([0-9.]*\).*/\1/p' <<<"$done_line")
	rms=$(sed -n 's/.*"restore_ms":\([0-9.]*\).*/\1/p' <<<"$done_line")
	rounds=$(sed -n 's/.*"rounds":\([0-9]*\).*/\1/p' <<<"$done_line")
	total=$(sed -n 's/.*"total_ms":\([0-9.]*\).*/\1/p' <<<"$done_line")
	gap=$(sed -n 's/^gap \([0-9]*\) .*/\1/p' "$TMP/out" | sort -n | tail -n 1)
	fill=$(grep -o 'lazy fill: [0-9]* pages copied in [0-9.]* ms.*' "$TMP/dest.log")
	cut=$(grep -cE 'cut short|not prefilled' "$TMP/dest.log")
	echo "BENCH mib=${BENCH_MIB:-1024} prefill_delay=$delay mode=$mode rounds=$rounds total_ms=$total frozen_ms=$frozen restore_ms=$rms max_gap_inside_us=$gap cut/skipped=$cut $fill"
	grep -q FAIL "$TMP/out" && e2e_fail "memwork FAIL: $(grep FAIL "$TMP/out")"
	kill -KILL -- -"$(cat "$TMP/dest.pid")" 2>/dev/null; sleep 1
done
done
