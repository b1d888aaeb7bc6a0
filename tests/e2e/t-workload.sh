#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 120
#
# The test workloads themselves, without ferry: memwork runs, counts steps
# without gaps, reports SIGUSR1 and SIGUSR2 (on its sigaltstack), and its
# self-check really catches a corrupted page; pyloop runs and its output
# verifies from outside.
. "$(dirname "$0")/lib.sh"

e2e_need memwork
TMP=$(e2e_tmpdir)

# 1. A clean run of about a second, with both signals.
e2e_start_bg memwork "$E2E_MEMWORK" --mem 32 --dirty 64 --check-every 20 \
	--out "$TMP/out" --pidfile "$TMP/pid"
e2e_wait_file "$TMP/pid" 20 || e2e_fail "memwork never wrote its pidfile"
grep -qx ready "$TMP/out" || e2e_fail "pidfile before 'ready'"
e2e_wait_for_line "$TMP/out" '^step 1 ' 5 || e2e_fail "memwork wrote no step"
pid=$(cat "$TMP/pid")
[ "$pid" = "$E2E_LAST_PID" ] || e2e_fail "pidfile says $pid, started $E2E_LAST_PID"
sleep 0.5
kill -USR1 "$pid"
e2e_wait_for_line "$TMP/out" '^usr1 1$' 5 || e2e_fail "no 'usr1 1' line"
kill -USR2 "$pid"
e2e_wait_for_line "$TMP/out" '^usr2 1 altstack ok$' 5 || e2e_fail "no 'usr2 1' line"
sleep 0.5
kill -0 "$pid" 2>/dev/null || e2e_fail "memwork died: $(tail -n 3 "$TMP/out")"
kill -TERM "$pid"
e2e_wait_pid_gone "$pid" 10 || e2e_fail "memwork did not exit on SIGTERM"

e2e_assert_no_fail "$TMP/out"
e2e_assert_steps_continuous "$TMP/out" 100
grep -Eq "^step [0-9]+ pid $pid gen [0-9]+ ok$" "$TMP/out" || e2e_fail "bad step line format"
if grep -E '^step ' "$TMP/out" | grep -Evq " pid $pid "; then
	e2e_fail "a step line with another pid"
fi

# 2. --ticks: runs to the end, checks once more, exits 0 with "done".
"$E2E_MEMWORK" --mem 4 --ticks 50 --tick-ms 1 --out "$TMP/short" ||
	e2e_fail "memwork --ticks exited $?"
tail -n 1 "$TMP/short" | grep -qx done || e2e_fail "no 'done' line"
e2e_assert_steps_continuous "$TMP/short" 50

# 3. The self-check catches a page changed behind its back (through
#    /proc/PID/mem): a FAIL line and exit status 3.
e2e_start_bg corrupt "$E2E_MEMWORK" --mem 16 --check-every 1 \
	--out "$TMP/bad" --pidfile "$TMP/bad.pid"
e2e_wait_file "$TMP/bad.pid" 20 || e2e_fail "memwork (2) never got ready"
bpid=$(cat "$TMP/bad.pid")
addr=$(awk '/^heap / { print $2; exit }' "$TMP/bad")
[ -n "$addr" ] || e2e_fail "no heap line"
# Page 3000, word 100: the tick cursor reaches page 3000 only after 187 ticks,
# the whole-heap check runs every tick.
printf 'XXXXXXXX' | dd of="/proc/$bpid/mem" bs=1 seek=$((addr + 4096 * 3000 + 800)) \
	conv=notrunc status=none || e2e_fail "cannot write /proc/$bpid/mem"
e2e_wait_for_line "$TMP/bad" '^FAIL' 10 || e2e_fail "memwork did not notice the corruption"
wait "$bpid"
rc=$?
[ $rc -eq 3 ] || e2e_fail "corrupted memwork exited $rc, expected 3"
grep -q '^FAIL page 3000 .* word 100 is 0x5858585858585858' "$TMP/bad" ||
	e2e_fail "unexpected FAIL line: $(grep FAIL "$TMP/bad")"

# 4. pyloop: one second of steps, SIGUSR1, verified from outside.
e2e_start_bg pyloop python3 "$E2E_PYLOOP" --out "$TMP/py" --pidfile "$TMP/py.pid" \
	--check-every 5
e2e_wait_file "$TMP/py.pid" 20 || e2e_fail "pyloop wrote no pidfile"
e2e_wait_for_line "$TMP/py" '^step 1 ' 10 || e2e_fail "pyloop wrote no step"
e2e_wait_for_line "$TMP/py" '^step 10 ' 5 || e2e_fail "pyloop too slow"
ppid_=$(cat "$TMP/py.pid")
kill -USR1 "$ppid_"
e2e_wait_for_line "$TMP/py" '^usr1 1$' 5 || e2e_fail "pyloop: no 'usr1 1' line"
e2e_wait_for_line "$TMP/py" '^step 20 ' 5 || e2e_fail "pyloop stopped"
kill -TERM "$ppid_"
e2e_wait_pid_gone "$ppid_" 10 || e2e_fail "pyloop did not exit on SIGTERM"
e2e_assert_no_fail "$TMP/py"
e2e_assert_steps_continuous "$TMP/py" 20
python3 "$E2E_PYLOOP" --verify "$TMP/py" >&2 || e2e_fail "pyloop output does not verify"

echo "workloads ok"
