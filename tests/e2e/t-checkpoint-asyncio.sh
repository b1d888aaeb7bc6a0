#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 90
#
# An asyncio program (epoll and its self-pipe socketpair), fed by its child
# over a socketpair that held unread data, with an eventfd and a signalfd,
# checkpointed and restored twice: every line from the child arrives once
# and in order, the queued line was not lost, the eventfd keeps its count
# and a SIGUSR1 queued for the signalfd is read after the restores.
. "$(dirname "$0")/lib.sh"

TMP=$(e2e_tmpdir)
e2e_start_workload asyncwork '^got child 5$' python3 "$FERRY_ROOT/tests/workloads/asyncwork.py" "$TMP/out" "$TMP/pid" "$TMP/go"
child=$(pgrep -P "$pid" | head -n 1)
e2e_track_pid "$child"
kill -USR1 "$pid"
for n in 1 2; do
	e2e_checkpoint "$TMP/img$n" "$pid" "$n"
	e2e_wait_pid_gone "$child" 10 || e2e_fail "child still there ($n)"
	last=$(grep -c '^got child' "$TMP/out")
	e2e_restore "$TMP/img$n" "$pid" "$n"
	e2e_wait_for_line "$TMP/out" "^got child $((last + 10))\$" 10 ||
		e2e_fail "no lines from the child after restore $n"
done
grep -qx 'got queued-before' "$TMP/out" || e2e_fail "the line queued in the socketpair was lost"
awk '/^got child/ { if (p && $3 != p + 1) { print "gap " p " -> " $3; bad = 1 } p = $3 }
	END { exit bad }' "$TMP/out" >&2 || e2e_fail "lines from the child lost or repeated"
echo 1 >"$TMP/go"
e2e_wait_for_line "$TMP/out" '^eventfd ' 10 || e2e_fail "asyncwork did not read its eventfd"
grep -qx 'eventfd 5 signalfd 1' "$TMP/out" || e2e_fail "$(grep '^eventfd' "$TMP/out")"
e2e_assert_no_fail "$TMP/out"
echo "asyncio with epoll, socketpairs, eventfd and signalfd: two round trips, nothing lost"
