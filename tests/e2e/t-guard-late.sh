#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 60
#
# A guard region (MADV_GUARD_INSTALL) installed after the last pre-copy
# round (guardwork.py, between two rounds of a session): its page is in the
# final round's dirty set (a fresh guard marker is "written"), must not be
# read (it cannot be: the final round would fail), and must come back a
# guard region, with its neighbours' contents, checked from inside.
. "$(dirname "$0")/lib.sh"

e2e_need migrate restore
TMP=$(e2e_tmpdir)

# answer: create the check file, print guardwork's answer (5 s)
answer()
{
	local n

	n=$(grep -c . "$TMP/out")
	touch "$TMP/check"
	e2e_wait_for_line "$TMP/out" '^(ok|bad)' 5 >/dev/null
	for _ in $(seq 50); do
		[ "$(grep -c . "$TMP/out")" -gt "$n" ] && break
		sleep 0.1
	done
	tail -n 1 "$TMP/out"
}

e2e_start_workload guardwork '^ready$' python3 "$FERRY_ROOT/tests/workloads/guardwork.py" "$TMP"
"$FERRY_BUILD/migrate" --pre-dump --session "$TMP/s" --images-dir "$TMP/img" "$pid" >&2 ||
	e2e_fail "round 1 failed"
touch "$TMP/go"
e2e_wait_for_line "$TMP/out" '^(installed|skip)' 5 || e2e_fail "guardwork did not install its guard"
grep -q '^skip' "$TMP/out" && e2e_skip "$(grep '^skip' "$TMP/out")"
got=$(answer)
[ "$got" = ok ] || e2e_fail "before the migration: $got"
"$FERRY_BUILD/migrate" --final --session "$TMP/s" >&2 || e2e_fail "the final round failed"
e2e_wait_pid_gone "$pid" 10 || e2e_fail "source still there"
e2e_restore "$TMP/img" "$pid" guardwork
got=$(answer)
[ "$got" = ok ] || e2e_fail "after the restore: $got"
echo "a guard region installed after the last pre-copy round came back, from inside: $got"
