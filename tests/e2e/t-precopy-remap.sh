#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 90
#
# A region unmapped and mapped again at the same address between pre-copy
# rounds (remapwork.py, every 20 ms; found with the asyncio server of
# t-svc-asyncio, whose allocator does it). The uffd-wp scan of the new VMA,
# at a range seen before but no longer registered, failed with EPERM and
# the migration with it. Now it is registered again and sent whole. Checked:
# migrate --images-dir succeeds, restore brings it back, and its own check
# (every byte of the region holds the step's byte) goes on passing, its
# steps continuous.
. "$(dirname "$0")/lib.sh"

e2e_need migrate restore
TMP=$(e2e_tmpdir)
e2e_start_workload remap '^step 20$' python3 "$FERRY_ROOT/tests/workloads/remapwork.py" \
	"$TMP/out" "$TMP/pid"
"$MIGRATE" -v --images-dir "$TMP/img" "$pid" >"$TMP/migrate.out" 2>"$TMP/migrate.err" ||
	e2e_fail "checkpoint failed: $(tail -n 1 "$TMP/migrate.err")"
e2e_wait_pid_gone "$pid" 10 || e2e_fail "source still there"
grep -q 'was mapped again: sending it whole' "$TMP/migrate.err" ||
	e2e_log "no round found the region mapped again (timing): the test proves less this time"
last=$(grep -c '^step ' "$TMP/out")
e2e_restore "$TMP/img" "$pid" remapwork
e2e_wait_for_line "$TMP/out" "^step $((last + 20))\$" 20 || e2e_fail "no 20 steps after the restore"
e2e_assert_no_fail "$TMP/out"
e2e_assert_steps_continuous "$TMP/out" $((last + 20))
echo "PASS: a region mapped again between rounds migrated ($(grep -c 'mapped again' "$TMP/migrate.err") rescans)"
