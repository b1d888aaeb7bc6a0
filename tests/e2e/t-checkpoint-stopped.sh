#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 60
#
# A process stopped by job control (SIGSTOP) stays stopped through pre-copy
# rounds, a scripted session and its restore, and goes on at SIGCONT.
. "$(dirname "$0")/lib.sh"

TMP=$(e2e_tmpdir)
e2e_start_workload memwork '^step 5 ' "$E2E_MEMWORK" --mem 32 --out "$TMP/out" --pidfile "$TMP/pid" --print-ms 50
state() { awk '/^State:/ { print $2 }' "/proc/$1/status"; }
kill -STOP "$pid"
sleep 0.2
[ "$(state "$pid")" = T ] || e2e_fail "memwork is not stopped"
steps=$(grep -c '^step ' "$TMP/out")
"$FERRY_BUILD/migrate" --pre-dump --session "$TMP/s" --images-dir "$TMP/sess" "$pid" >&2 ||
	e2e_fail "scripted round failed"
[ "$(state "$pid")" = T ] || e2e_fail "not stopped between scripted rounds: $(state "$pid")"
"$FERRY_BUILD/migrate" --abort --session "$TMP/s" >&2 || e2e_fail "abort failed"
[ "$(state "$pid")" = T ] || e2e_fail "not stopped after the session: $(state "$pid")"
e2e_checkpoint "$TMP/img" "$pid"
[ "$(grep -c '^step ' "$TMP/out")" = "$steps" ] || e2e_fail "the stopped process ran during the migration"
e2e_restore "$TMP/img" "$pid"
sleep 0.3
[ "$(state "$pid")" = T ] || e2e_fail "restored, but not stopped: $(state "$pid")"
[ "$(grep -c '^step ' "$TMP/out")" = "$steps" ] || e2e_fail "the restored process ran before SIGCONT"
kill -CONT "$pid"
e2e_wait_for_line "$TMP/out" "^step $((steps + 10)) " 10 || e2e_fail "no progress after SIGCONT"
e2e_assert_no_fail "$TMP/out"
e2e_assert_steps_continuous "$TMP/out" $((steps + 10))
echo "job-control stop kept through a session, a checkpoint and the restore"
