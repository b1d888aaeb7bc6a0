#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 120
#
# A failed migration leaves the target's timers and clocks alone (issue 8,
# case 4: a node.js server's 50 ms interval counter jumped by 1,200-1,600
# ticks during a failed attempt). A node.js event loop (tests/workloads/
# ticker.js: setInterval 50 ms, each callback logs its count and both
# clocks) is migrated to a page server whose restore never reports
# (--restore-cmd that sleeps, --restore-timeout 3): the final round keeps it
# frozen until the timeout, then migrate fails and thaws it. Afterwards:
#   - the callbacks came one by one (each count once, in order) and never in
#     a burst: at most 25 in any second (20 expected), so nothing replays
#     the intervals missed while frozen;
#   - the one long gap between two callbacks is explained by the freeze: no
#     longer than the longest "frozen" migrate reported, plus 1.5 s of
#     slack for a loaded machine;
#   - CLOCK_MONOTONIC and CLOCK_REALTIME advanced alike across it (within
#     100 ms): ferry shifts neither clock;
#   - it ticks on at its pace: 40 more callbacks within 5 s, not traced.
# A counter computed from elapsed time (as the issue's was) advances by the
# frozen time over 50 ms, and only by that: see docs/architecture.md.
. "$(dirname "$0")/lib.sh"

command -v node >/dev/null || e2e_skip "no node.js"
e2e_need migrate pageserver
TMP=$(e2e_tmpdir)
e2e_tls_certs

e2e_start_bg ticker node "$FERRY_ROOT/tests/workloads/ticker.js" "$TMP/ticks" "$TMP/pid" 64
e2e_wait_file "$TMP/pid" 30 || e2e_fail "ticker never got ready"
SRC=$(cat "$TMP/pid")
e2e_wait_for_line "$TMP/ticks" '^tick 20 ' 10 || e2e_fail "ticker does not tick"

printf '#!/bin/sh\nexec sleep 1000\n' >"$TMP/hang-restore"
chmod +x "$TMP/hang-restore"
port=$(e2e_port)
e2e_start_pageserver ps "$port" "$TMP/images" --restore-cmd "$TMP/hang-restore" \
	--no-stream --restore-timeout 3 -v

timeout -k 5 60 "$MIGRATE" --to "127.0.0.1:$port" "${CLI_TLS[@]}" "$SRC" \
	>"$TMP/migrate.out" 2>"$TMP/migrate.err"
rc=$?
cat "$TMP/migrate.out" "$TMP/migrate.err" >&2
[ $rc -ne 0 ] || e2e_fail "migrate succeeded with a restore that never reports"
[ $rc -ne 124 ] && [ $rc -ne 137 ] || e2e_fail "migrate hung"
grep -q "restore took longer than 3 s" "$TMP/migrate.err" ||
	e2e_fail "not the failure meant: $(cat "$TMP/migrate.err")"
frozen=$(sed -n 's/.*frozen \([0-9.]*\) ms.*/\1/p' "$TMP/migrate.out" | sort -g | tail -n 1)
[ -n "$frozen" ] || e2e_fail "migrate reported no frozen time"

[ -e "/proc/$SRC" ] || e2e_fail "the ticker is gone"
grep -q '^TracerPid:[[:space:]]*0$' "/proc/$SRC/status" || e2e_fail "the ticker is left traced"
last=$(tail -n 1 "$TMP/ticks" | awk '{ print $2 }')
e2e_wait_for_line "$TMP/ticks" "^tick $((last + 40)) " 5 ||
	e2e_fail "the ticker does not tick on at its pace: $(tail -n 1 "$TMP/ticks")"

# one pass over the ticks: order, bursts, the longest gap, clock drift
verdict=$(awk -v frozen="$frozen" '
	$1 != "tick" { next }
	n && $2 != n + 1 { print "count " $2 " after " n; bad = 1 }
	{
		if (n) {
			gap = $3 - mono
			if (gap > maxgap) { maxgap = gap; at = $2 }
			drift = ($4 - wall0) - ($3 - mono0)
			if (drift < 0) drift = -drift
			if (drift > maxdrift) maxdrift = drift
		} else {
			wall0 = $4; mono0 = $3
		}
		n = $2; mono = $3
		t[NR] = $3
		# callbacks in the second ending here
		k = NR; c = 0
		while (k > 0 && t[k] > $3 - 1000) { c++; k-- }
		if (c > maxsec) maxsec = c
	}
	END {
		printf "ticks %d, longest gap %.0f ms (before tick %d), frozen %.0f ms, " \
		       "at most %d callbacks in a second, clock drift %.0f ms\n",
		       n, maxgap, at, frozen, maxsec, maxdrift
		if (maxsec > 25) { print "a burst of " maxsec " callbacks in one second"; bad = 1 }
		if (maxgap > frozen + 1500) { print "a gap longer than the freeze"; bad = 1 }
		if (maxgap < 2500) { print "no freeze seen: the failure came too early"; bad = 1 }
		if (maxdrift > 100) { print "the clocks drifted apart"; bad = 1 }
		exit bad
	}' "$TMP/ticks")
ok=$?
e2e_log "$verdict"
[ $ok -eq 0 ] || e2e_fail "timers or clocks disturbed: $verdict"
kill -KILL "$SRC"
echo "PASS: a failed migration froze the ticker for ${frozen} ms and changed nothing else"
