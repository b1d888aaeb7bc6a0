#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 120
#
# A PostgreSQL-like tree around a System V shared memory segment
# (sysvshmwork.py: a parent and 3 forked workers attached, each worker
# bumping its counter and checking it was not lost), in an IPC namespace of
# the test's own (migrate, the tree and restore share it): several rounds
# into `migrate --images-dir`, the tree gone and the segment removed at the
# source; `restore` makes it again: same id by its key, 4 attachments, the
# pattern, every worker's counter moving on and never stale (the parent's
# own checks), the same maps.
[ -n "${E2E_SYSVSHM_NS:-}" ] || E2E_SYSVSHM_NS=1 exec unshare --ipc bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

e2e_need migrate restore
TMP=$(e2e_tmpdir)

e2e_start_workload sysvshm '^step 30 ' python3 "$FERRY_ROOT/tests/workloads/sysvshmwork.py" \
	"$TMP/out" "$TMP/pid"
sid=$(sed -n 's/^step 30 id \([0-9]*\) nattch \([0-9]*\) .*/\1 \2/p' "$TMP/out")
[ "${sid#* }" = 4 ] || e2e_fail "segment: '$sid', expected 4 attachments"
sid=${sid% *}
cat "/proc/$pid/maps" >"$TMP/maps.src" || e2e_fail "cannot read /proc/$pid/maps"

e2e_checkpoint_json "$pid" --small-dirty 0 --max-rounds 4
[ "$rounds" -ge 2 ] || e2e_fail "only $rounds rounds"
e2e_wait_pid_gone "$pid" 10 || e2e_fail "source pid $pid still there after migrate"
awk -v id="$sid" 'NR > 1 && $2 == id { f = 1 } END { exit f }' /proc/sysvipc/shm ||
	e2e_fail "segment $sid stayed at the source after the move"
last=$(grep '^step ' "$TMP/out" | tail -n 1 | awk '{ print $2 }')

e2e_restore_verbose "$stack/$rounds" "$pid"
e2e_wait_for_line "$TMP/out" "^step $((last + 60)) id $sid nattch 4 " 20 ||
	e2e_fail "restored tree: $(tail -n 1 "$TMP/out")"
e2e_assert_same_maps "$TMP/maps.src" "$pid"
! grep -q FAIL "$TMP/out" || e2e_fail "$(grep -m 1 FAIL "$TMP/out")"
echo "checkpoint/restore of a SysV segment tree ok: $rounds rounds, segment $sid, 4 attachments"
