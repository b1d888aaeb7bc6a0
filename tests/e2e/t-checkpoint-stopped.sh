#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 60
#
# A process stopped by job control (SIGSTOP) stays stopped through pre-copy
# rounds, a scripted session and its restore, and goes on at SIGCONT. A
# grandchild stopped by SIGTSTP (in a process group that is not orphaned,
# else the kernel drops the signal) is stopped by SIGTSTP again after the
# restore.
. "$(dirname "$0")/lib.sh"

TMP=$(e2e_tmpdir)
e2e_start_workload memwork '^step 5 ' "$E2E_MEMWORK" --mem 32 --out "$TMP/out" --pidfile "$TMP/pid" --print-ms 50
state() { awk '/^State:/ { print $2 }' "/proc/$1/status"; }
# the signal that stopped it (the exit_code field of /proc/PID/stat)
stop_sig() { awk '{ print $NF }' "/proc/$1/stat"; }
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
[ "$(stop_sig "$pid")" = 19 ] || e2e_fail "restored, stopped by signal $(stop_sig "$pid"), not SIGSTOP"
kill -CONT "$pid"
e2e_wait_for_line "$TMP/out" "^step $((steps + 10)) " 10 || e2e_fail "no progress after SIGCONT"
e2e_assert_no_fail "$TMP/out"
e2e_assert_steps_continuous "$TMP/out" $((steps + 10))

# --- a grandchild stopped by SIGTSTP-------------------------------------------
e2e_start_bg tree "$FERRY_BUILD/tests/workloads/treework" --out "$TMP/tree.out" \
	--pidfile "$TMP/tree.pid" --tick-ms 10 --child-pgrp
e2e_wait_file "$TMP/tree.pid" 20 || e2e_fail "treework never wrote its pidfile"
root=$(cat "$TMP/tree.pid")
e2e_wait_for_line "$TMP/tree.out" '^grandchild 2 ' 10 || e2e_fail "treework makes no progress"
child=$(pgrep -P "$root" | head -n 1)
grand=$(pgrep -P "$child" | head -n 1)
[ -n "$child" ] && [ -n "$grand" ] || e2e_fail "treework has no child/grandchild"
kill -TSTP "$grand"
sleep 0.2
[ "$(state "$grand")" = T ] && [ "$(stop_sig "$grand")" = 20 ] ||
	e2e_fail "the grandchild is not stopped by SIGTSTP: $(state "$grand") $(stop_sig "$grand")"
gsteps=$(grep -c '^grandchild ' "$TMP/tree.out")
"$FERRY_BUILD/migrate" --images-dir "$TMP/timg" "$root" >&2 || e2e_fail "checkpoint of the tree failed"
for p in "$root" "$child" "$grand"; do
	e2e_wait_pid_gone "$p" 10 || e2e_fail "source process $p still there"
done
"$FERRY_BUILD/restore" --images-dir "$(ls -d "$TMP"/timg/*/* | sort -V | tail -n 1)" >&2 ||
	e2e_fail "restore of the tree failed"
for p in "$root" "$child" "$grand"; do
	e2e_track_pid "$p"
done
sleep 0.3
[ "$(state "$grand")" = T ] || e2e_fail "restored grandchild not stopped: $(state "$grand")"
[ "$(stop_sig "$grand")" = 20 ] ||
	e2e_fail "restored grandchild stopped by signal $(stop_sig "$grand"), not SIGTSTP"
last=$(grep -c '^step ' "$TMP/tree.out")
e2e_wait_for_line "$TMP/tree.out" "^child $((last + 20))\$" 10 || e2e_fail "the restored tree stalled"
[ "$(grep -c '^grandchild ' "$TMP/tree.out")" = "$gsteps" ] ||
	e2e_fail "the stopped grandchild ran before SIGCONT"
kill -CONT "$grand"
e2e_wait_for_line "$TMP/tree.out" "^grandchild $((gsteps + 2)) " 10 ||
	e2e_fail "no grandchild progress after SIGCONT"
e2e_assert_no_fail "$TMP/tree.out"
echo "job-control stop (its signal too) kept through a session, a checkpoint and the restore"
