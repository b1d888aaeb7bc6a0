#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 60
#
# Signals queued (blocked) at the freeze travel: sigwork.py blocks SIGUSR2
# and SIGRTMIN+2; three SIGRTMIN+2 and one SIGUSR2 wait in its queue while
# it is checkpointed and restored; afterwards it takes all four with
# sigtimedwait, with their sender pid and si_code.
. "$(dirname "$0")/lib.sh"

TMP=$(e2e_tmpdir)
e2e_start_workload sigwork '^step 5 ' python3 "$FERRY_ROOT/tests/workloads/sigwork.py" "$TMP/out" "$TMP/pid" "$TMP/go"
rt=$(($(kill -l SIGRTMIN) + 2))
sender=$BASHPID
kill -"$rt" "$pid"; kill -"$rt" "$pid"; kill -"$rt" "$pid"; kill -USR2 "$pid"
pending=$(awk '/^ShdPnd:/ { print $2 }' "/proc/$pid/status")
[ "$pending" = 0000000800000800 ] || e2e_fail "signals not pending: ShdPnd $pending"
e2e_checkpoint "$TMP/img" "$pid"
e2e_restore "$TMP/img" "$pid"
after=$(awk '/^ShdPnd:/ { print $2 }' "/proc/$pid/status")
[ "$after" = "$pending" ] || e2e_fail "pending after the restore: $after, before: $pending"
touch "$TMP/go"
e2e_wait_for_line "$TMP/out" '^pending done' 10 || e2e_fail "sigwork did not take its signals"
grep -qx 'pending done 4' "$TMP/out" || e2e_fail "$(grep 'pending done' "$TMP/out")"
[ "$(grep -c "^got $rt from $sender code 0\$" "$TMP/out")" = 3 ] || e2e_fail "RT signals: $(grep ^got "$TMP/out")"
grep -q "^got $(kill -l USR2) from $sender code 0\$" "$TMP/out" || e2e_fail "no SIGUSR2 after the restore"
echo "4 queued signals carried over with their sender and code"
