#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 150
#
# Local checkpoint and restore of a CPython process (pyloop.py): several
# rounds into `migrate --images-dir` (parent links), source gone, `restore
# --images-dir` brings it back with the same pid; steps go on without gap
# or repeat in the same file, pyloop's own checks (state recomputed from
# scratch, pid, file offset) pass several times, SIGUSR1 is handled, the
# restored maps equal the source's, and `pyloop.py --verify` accepts the
# whole out file (every hash recomputed).
. "$(dirname "$0")/lib.sh"

e2e_need migrate restore
TMP=$(e2e_tmpdir)
CHECK_EVERY=5

e2e_start_workload pyloop '^step 50 ' python3 "$E2E_PYLOOP" --out "$TMP/out" --pidfile "$TMP/pid" \
	--interval-ms 10 --check-every $CHECK_EVERY
cat "/proc/$pid/maps" >"$TMP/maps.src" || e2e_fail "cannot read /proc/$pid/maps"

# --small-dirty 0: go on with pre-copy rounds while anything is dirty (the
# interpreter dirties few pages; the dirty set must stop shrinking instead).
e2e_checkpoint_json "$pid" --small-dirty 0 --max-rounds 6

[ "$rounds" -ge 3 ] || e2e_fail "only $rounds rounds"
pages1=$(stat -c %s "$stack/1/pages-$pid.img") || e2e_fail "no round 1 pages file"
for ((k = 2; k <= rounds; k++)); do
	[ "$(readlink "$stack/$k/parent")" = "../$((k - 1))" ] ||
		e2e_fail "round $k: parent -> '$(readlink "$stack/$k/parent")', expected ../$((k - 1))"
	sz=$(stat -c %s "$stack/$k/pages-$pid.img" 2>/dev/null || echo 0)
	e2e_log "round $k pages file: $sz bytes (round 1: $pages1)"
	((sz * 4 < pages1)) || e2e_fail "round $k pages file ($sz bytes) not much smaller than round 1's ($pages1)"
done

e2e_wait_pid_gone "$pid" 10 || e2e_fail "source pid $pid still there after migrate"
last=$(grep '^step ' "$TMP/out" | tail -n 1 | awk '{ print $2 }')

e2e_restore_verbose "$stack/$rounds" "$pid"
grep -q pyloop "/proc/$pid/cmdline" 2>/dev/null || e2e_fail "pid $pid is not pyloop after restore"
e2e_wait_for_line "$TMP/out" "^step $((last + 1)) " 5 ||
	e2e_fail "no step $((last + 1)) after restore (last before: $last)"

e2e_assert_same_maps "$TMP/maps.src" "$pid"

kill -USR1 "$pid" || e2e_fail "cannot signal the restored process"
e2e_wait_for_line "$TMP/out" '^usr1 1$' 5 || e2e_fail "no 'usr1 1' after restore"

# pyloop recomputes its whole state every $CHECK_EVERY steps: let it do so
# a good number of times.
e2e_wait_for_line "$TMP/out" "^step $((last + 20 * CHECK_EVERY)) " 30 ||
	e2e_fail "restored pyloop stalled: $(tail -n 2 "$TMP/out")"
[ "$(_e2e_state "$pid")" != Z ] && [ -e "/proc/$pid" ] ||
	e2e_fail "restored pyloop died: $(grep -a FAIL "$TMP/out")"
e2e_stop_pyloop "$pid" $((last + 20 * CHECK_EVERY))
echo "checkpoint/restore of pyloop ok: $rounds rounds, pid $pid, continued after step $last"
