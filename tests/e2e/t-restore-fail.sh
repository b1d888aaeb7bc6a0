#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 120
#
# `restore` refuses what it cannot restore faithfully, with a non-zero exit
# and a one-line reason, and leaves nothing behind (no process with the
# pid, the stack untouched), so that a correct restore still works after:
# and the exit status of its class (README, Exit status):
#   a. the pid is taken here (the original still runs: --leave-running): 6
#   b. a pre-copy (non-final) round: 4
#   c. a final round without its core image: 4
#   d. a final round whose parent link is gone: 4
#   e. a mapped file (the executable) changed since the checkpoint (mtime): 1
#   f. a directory that does not exist (4), bad usage (2)
#   g. then the real restore: same pid, steps continuous, self-checks pass.
. "$(dirname "$0")/lib.sh"

e2e_need migrate restore memwork
TMP=$(e2e_tmpdir)
CHECK_EVERY=20
# our own copy of the executable, so its mtime can change (case e)
cp "$E2E_MEMWORK" "$TMP/mw" || e2e_fail "cannot copy memwork"
touch -r "$TMP/mw" "$TMP/mw.ref"
NOT_ONE_LINE=()

# refused NAME EXPECTED_RC DIR...: restore ARGS must fail with EXPECTED_RC
# and one line on stderr; no process may be left with the pid.
refused()
{
	local name=$1 want=$2 rc

	shift 2
	timeout -k 5 30 "$RESTORE" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
	rc=$?
	e2e_log "case $name: restore exited $rc: $(cat "$TMP/$name.err")"
	[ $rc -ne 124 ] && [ $rc -ne 137 ] || e2e_fail "$name: restore hung"
	[ $rc -eq "$want" ] || e2e_fail "$name: restore exited $rc, expected $want"
	[ -s "$TMP/$name.err" ] || e2e_fail "$name: no reason on stderr"
	[ "$(wc -l <"$TMP/$name.err")" -eq 1 ] || NOT_ONE_LINE+=("$name ($(wc -l <"$TMP/$name.err") lines)")
	grep -q "^restored" "$TMP/$name.out" && e2e_fail "$name: restore says it restored"
	return 0
}

# nothing_left WHAT: no process has the pid (the source is gone by then).
nothing_left()
{
	sleep 0.2
	if [ -e "/proc/$pid" ]; then
		e2e_track_pid "$pid"
		e2e_fail "$1: a process with pid $pid is left: $(tr '\0' ' ' <"/proc/$pid/cmdline") ($(_e2e_state "$pid"))"
	fi
}

e2e_start_workload memwork '^step 20 ' "$TMP/mw" --mem 64 --dirty 32 --check-every $CHECK_EVERY \
	--out "$TMP/out" --pidfile "$TMP/pid"

# --- a. the pid is taken: the original still runs ------------------------------
"$MIGRATE" --leave-running --images-dir "$TMP/s1" --id s1 "$pid" >"$TMP/m1.out" 2>"$TMP/m1.err" ||
	e2e_fail "migrate --leave-running failed: $(tail -n 1 "$TMP/m1.err")"
top1=$TMP/s1/s1/$(ls "$TMP/s1/s1" | sort -n | tail -n 1)
[ -f "$top1/core-$pid.img" ] || e2e_fail "no final round in $TMP/s1/s1"
refused pid-taken 6 --images-dir "$top1"
grep -qi 'pid\|exist' "$TMP/pid-taken.err" || e2e_fail "a. the reason does not say the pid is taken"
grep -q '^TracerPid:[[:space:]]*0$' "/proc/$pid/status" || e2e_fail "a. the original is traced"
n=$(grep -c '^step ' "$TMP/out")
e2e_wait_for_line "$TMP/out" "^step $((n + 2 * CHECK_EVERY)) pid $pid " 10 ||
	e2e_fail "a. the original stalled"
e2e_assert_no_fail "$TMP/out"
e2e_assert_steps_continuous "$TMP/out" $((n + 2 * CHECK_EVERY))

# --- the real checkpoint for the rest: the source is killed --------------------------
"$MIGRATE" --images-dir "$TMP/s2" --id s2 "$pid" >"$TMP/m2.out" 2>"$TMP/m2.err" ||
	e2e_fail "migrate --images-dir failed: $(tail -n 1 "$TMP/m2.err")"
e2e_wait_pid_gone "$pid" 10 || e2e_fail "source still there after migrate"
stack=$TMP/s2/s2
N=$(ls "$stack" | sort -n | tail -n 1)
[ "$N" -ge 2 ] || e2e_fail "only $N rounds"
top=$stack/$N
last=$(grep '^step ' "$TMP/out" | tail -n 1 | awk '{ print $2 }')
(cd "$stack" && find . -type f -exec sha256sum {} + | sort -k 2) >"$TMP/stack.sum"

# --- b. a pre-copy round -------------------------------------------------------------
refused precopy-round 4 --images-dir "$stack/1"
nothing_left "b. pre-copy round"

# --- c, d: broken copies of the stack ----------------------------------------------------
cp -a "$stack" "$TMP/nocore"
rm -f "$TMP/nocore/$N/core-$pid.img"
refused no-core 4 --images-dir "$TMP/nocore/$N"
nothing_left "c. no core image"
cp -a "$stack" "$TMP/noparent"
rm -f "$TMP/noparent/$N/parent"
refused no-parent 4 --images-dir "$TMP/noparent/$N"
nothing_left "d. no parent link"

# --- e. the executable changed (mtime) ------------------------------------------------------
touch "$TMP/mw"
refused exe-changed 1 --images-dir "$top"
grep -q "$TMP/mw" "$TMP/exe-changed.err" || e2e_fail "e. the reason does not name the changed file"
nothing_left "e. executable changed"
touch -r "$TMP/mw.ref" "$TMP/mw"

# --- f. no such directory; bad usage ---------------------------------------------------------
refused no-dir 4 --images-dir "$TMP/does-not-exist"
refused usage 2 --no-such-option
nothing_left "f. bad arguments"

# the failures changed nothing in the stack
(cd "$stack" && find . -type f -exec sha256sum {} + | sort -k 2) >"$TMP/stack.sum2"
diff "$TMP/stack.sum" "$TMP/stack.sum2" >&2 || e2e_fail "a failed restore changed the stack"

# --- g. the real restore ----------------------------------------------------------------------
"$RESTORE" --images-dir "$top" >"$TMP/ok.out" 2>"$TMP/ok.err"
rc=$?
cat "$TMP/ok.out" "$TMP/ok.err" >&2
[ $rc -eq 0 ] || e2e_fail "g. restore after the failures exited $rc: $(tail -n 1 "$TMP/ok.err")"
e2e_track_pid "$pid"
e2e_wait_for_line "$TMP/out" "^step $((last + 3 * CHECK_EVERY)) pid $pid " 20 ||
	e2e_fail "g. restored memwork does not run on: $(tail -n 1 "$TMP/out")"
e2e_assert_no_fail "$TMP/out"
e2e_assert_steps_continuous "$TMP/out" $((last + 3 * CHECK_EVERY))
kill -KILL "$pid"

[ ${#NOT_ONE_LINE[@]} -eq 0 ] || e2e_fail "the reason was not one line on stderr in: ${NOT_ONE_LINE[*]}"
echo "restore failures ok"
