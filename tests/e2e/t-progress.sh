#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 180
#
# migrate's live progress line (source-agent/progress.c): on a terminal
# (script(1) gives migrate a pty) stderr shows "round N: X of Y pages,
# M MiB/s, S s left", redrawn in place; with stdout elsewhere each round
# leaves its last state on a line, and the --json output stays pure JSON
# lines; without a terminal nothing of it appears at all.
. "$(dirname "$0")/lib.sh"

command -v script >/dev/null || e2e_skip "no script(1) to give migrate a terminal"
e2e_need migrate memwork
TMP=$(e2e_tmpdir)

# start_mw NAME: a 128 MiB memwork (round 1 takes long enough to be drawn)
start_mw()
{
	rm -f "$TMP/pid" "$TMP/out"
	e2e_start_workload "$1" '^step 20 ' "$E2E_MEMWORK" --mem 128 --dirty 32 --tick-ms 5 \
		--out "$TMP/out" --pidfile "$TMP/pid"
}

# 1. stdout and stderr on the terminal: drawn in place, then erased
start_mw mw1
script -qfec "$MIGRATE --images-dir $TMP/img1 $pid" /dev/null >"$TMP/tty1" ||
	e2e_fail "migrate on a terminal failed: $(cat "$TMP/tty1")"
grep -aq $'\r\e\[Kround 1: [0-9]* of [0-9]* pages, [0-9.]* MiB/s' "$TMP/tty1" ||
	e2e_fail "no progress line on the terminal: $(cat -A "$TMP/tty1" | head -c 600)"
grep -aq '^checkpointed pid' <(tr '\r' '\n' <"$TMP/tty1") || e2e_fail "no final line"
e2e_log "terminal: $(tr '\r' '\n' <"$TMP/tty1" | grep -a -c 'MiB/s') progress draws"

# 2. stderr on the terminal, --json to a file: pure JSON there, one kept line per round
start_mw mw2
script -qfec "$MIGRATE --json --images-dir $TMP/img2 $pid >$TMP/json2" /dev/null >"$TMP/tty2" ||
	e2e_fail "migrate --json on a terminal failed: $(cat "$TMP/tty2")"
python3 - "$TMP/json2" <<'PY' || e2e_fail "--json output is not pure JSON lines: $(cat -A "$TMP/json2" | head -c 600)"
import json, sys
ev = [json.loads(l)["event"] for l in open(sys.argv[1])]
assert ev[-1] == "done" and ev.count("round") >= 2, ev
PY
grep -aq 'round 1: .* MiB/s, [0-9.]* s$' <(tr '\r' '\n' <"$TMP/tty2" | tr -d '\033' | sed 's/\[K//g') ||
	e2e_fail "round 1's line was not left on the terminal: $(cat -A "$TMP/tty2" | head -c 600)"

# 3. no terminal: not a trace of it
start_mw mw3
"$MIGRATE" --images-dir "$TMP/img3" "$pid" >"$TMP/out3" 2>"$TMP/err3" || e2e_fail "migrate failed"
! grep -aq $'MiB/s\|\r\|\e' "$TMP/err3" || e2e_fail "progress output without a terminal: $(cat -A "$TMP/err3")"
! grep -aq $'\r\|\e' "$TMP/out3" || e2e_fail "control characters on stdout: $(cat -A "$TMP/out3")"
echo "progress ok: drawn on a terminal, kept per round beside --json, absent otherwise"
