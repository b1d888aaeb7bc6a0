#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 60
#
# A process with KSM memory (objwork mergeable: MADV_MERGEABLE on one page;
# merge_any: PR_SET_MEMORY_MERGE) restored where the kernel has no KSM:
# the restore refuses, naming KSM, and leaves no process behind. "No KSM"
# is a private mount namespace where a tmpfs hides /sys/kernel/mm (the
# restore looks for /sys/kernel/mm/ksm). The checkpoint's source is gone
# (migrate --images-dir), so the pid must stay free.
. "$(dirname "$0")/lib.sh"

e2e_need migrate restore objwork
TMP=$(e2e_tmpdir)

for mode in mergeable merge_any; do
	d=$TMP/$mode
	mkdir -p "$d"
	e2e_start_bg "objwork-$mode" "$FERRY_BUILD/tests/workloads/objwork" "$mode" \
		--out "$d/out" --pidfile "$d/pid" --check "$d/check"
	e2e_wait_file "$d/pid" 20 || e2e_fail "$mode: objwork never wrote its pidfile"
	grep -q '^skip' "$d/out" && e2e_skip "$(grep '^skip' "$d/out")"
	pid=$(cat "$d/pid")
	e2e_checkpoint "$d/img" "$pid" "$mode"
	top=$(e2e_stack_top "$d/img")
	if unshare -m sh -c 'mount -t tmpfs none /sys/kernel/mm && exec "$0" --images-dir "$1"' \
		"$FERRY_BUILD/restore" "$top" 2>"$d/restore.err"; then
		e2e_track_pid "$pid"
		e2e_fail "$mode: restored without KSM"
	fi
	cat "$d/restore.err" >&2
	grep -q 'KSM' "$d/restore.err" || e2e_fail "$mode: the restore's failure does not name KSM"
	[ -e "/proc/$pid" ] && e2e_fail "$mode: pid $pid left behind by the failed restore"
	echo "$mode: refused where there is no KSM: $(grep KSM "$d/restore.err" | head -n 1)"
done
