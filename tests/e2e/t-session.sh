#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 150
#
# Scripted rounds through a session daemon:
#   migrate --pre-dump --session SOCK --images-dir DIR PID   (starts the daemon)
#   migrate --pre-dump --session SOCK                         (more rounds)
#   migrate --final --session SOCK   or   migrate --abort --session SOCK
# Between rounds the target runs untraced (TracerPid 0) with exactly its own
# fds and mappings (no parasite, no userfaultfd left in it), steps going on.
# After --final the stack restores (same pid, steps continuous); after
# --abort the target runs on unharmed, and the session is gone either way.
. "$(dirname "$0")/lib.sh"

e2e_need migrate restore memwork
TMP=$(e2e_tmpdir)
CHECK_EVERY=20

# fds of PID as "N -> target" lines (sorted)
fds()
{
	local f

	for f in /proc/$1/fd/*; do
		echo "${f##*/} -> $(readlink "$f")"
	done | sort
}

# The daemon serving session SOCK (its command line names the socket).
session_daemon()
{
	pgrep -f -- "--session $1( |\$)" | head -n 1
}

# between NAME PID SNAPDIR: the target as it must be between two rounds.
between()
{
	local what=$1 pid=$2 snap=$3 s

	[ -e "/proc/$pid" ] || e2e_fail "$what: target $pid gone"
	grep -q '^TracerPid:[[:space:]]*0$' "/proc/$pid/status" ||
		e2e_fail "$what: target still traced ($(grep TracerPid "/proc/$pid/status"))"
	s=$(_e2e_state "$pid")
	[ "$s" = S ] || [ "$s" = R ] || e2e_fail "$what: target in state $s"
	fds "$pid" >"$snap/fds.now"
	diff "$snap/fds.before" "$snap/fds.now" >&2 || e2e_fail "$what: the target's fds changed"
	cat "/proc/$pid/maps" >"$snap/maps.now"
	diff "$snap/maps.before" "$snap/maps.now" >&2 || e2e_fail "$what: the target's mappings changed"
	s=$(grep -c '^step ' "$snap/../out")
	e2e_wait_for_line "$snap/../out" "^step $((s + 10)) pid $pid " 5 ||
		e2e_fail "$what: target does not step on: $(tail -n 1 "$snap/../out")"
}

# start_target DIR: memwork with its out file in DIR; sets PID, snapshots.
start_target()
{
	local d=$1

	mkdir -p "$d/snap"
	e2e_start_bg "memwork-${d##*/}" "$E2E_MEMWORK" --mem 128 --dirty 32 --tick-ms 5 \
		--check-every $CHECK_EVERY --out "$d/out" --pidfile "$d/pid"
	e2e_wait_file "$d/pid" 30 || e2e_fail "memwork never got ready"
	PID=$(cat "$d/pid")
	e2e_wait_for_line "$d/out" '^step 20 ' 10 || e2e_fail "memwork makes no progress"
	fds "$PID" >"$d/snap/fds.before"
	cat "/proc/$PID/maps" >"$d/snap/maps.before"
}

# round_ok FILE N: FILE has the line of round N (not final).
round_ok()
{
	grep -Eq "^round $2: scanned [0-9]+ pages, dirty [0-9]+, sent [0-9]+" "$1" ||
		e2e_fail "no 'round $2:' line in $(basename "$1"): $(cat "$1")"
}

# open_session DIR ID: a target in DIR and round 1 of session ID on it;
# sets pid, SOCK and daemon.
open_session()
{
	local d=$1 id=$2

	mkdir -p "$d"
	start_target "$d"
	pid=$PID
	SOCK=$d/session.sock
	"$MIGRATE" --pre-dump --session "$SOCK" --images-dir "$d/images" --id "$id" "$pid" \
		>"$d/r1.out" 2>"$d/r1.err" ||
		e2e_fail "first --pre-dump ($id) failed: $(tail -n 1 "$d/r1.err")"
	round_ok "$d/r1.out" 1
	daemon=$(session_daemon "$SOCK")
	[ -n "$daemon" ] || e2e_fail "no session daemon for $SOCK"
	e2e_track_pid "$daemon"
}

# === 1. three pre-dump rounds, then --final, then restore =====================
A=$TMP/a
mkdir -p "$A"
start_target "$A"
pid=$PID
SOCK=$A/session.sock

"$MIGRATE" --pre-dump --session "$SOCK" --images-dir "$A/images" --id sess-a "$pid" \
	>"$A/r1.out" 2>"$A/r1.err"
rc=$?
cat "$A/r1.out" "$A/r1.err" >&2
[ $rc -eq 0 ] || e2e_fail "first --pre-dump exited $rc: $(tail -n 1 "$A/r1.err")"
round_ok "$A/r1.out" 1
daemon=$(session_daemon "$SOCK")
[ -n "$daemon" ] || e2e_fail "no session daemon for $SOCK after the first --pre-dump"
e2e_track_pid "$daemon"
[ -S "$SOCK" ] || e2e_fail "no session socket $SOCK"
[ -d "$A/images/sess-a/1" ] || e2e_fail "no round 1 in $A/images/sess-a"
between "after round 1" "$pid" "$A/snap"

for k in 2 3; do
	sleep 0.3
	"$MIGRATE" --pre-dump --session "$SOCK" >"$A/r$k.out" 2>"$A/r$k.err"
	rc=$?
	cat "$A/r$k.out" "$A/r$k.err" >&2
	[ $rc -eq 0 ] || e2e_fail "--pre-dump round $k exited $rc: $(tail -n 1 "$A/r$k.err")"
	round_ok "$A/r$k.out" $k
	[ -d "$A/images/sess-a/$k" ] || e2e_fail "no round $k directory"
	[ "$(readlink "$A/images/sess-a/$k/parent")" = "../$((k - 1))" ] ||
		e2e_fail "round $k has no parent -> ../$((k - 1))"
	between "after round $k" "$pid" "$A/snap"
done

"$MIGRATE" --final --session "$SOCK" >"$A/final.out" 2>"$A/final.err"
rc=$?
cat "$A/final.out" "$A/final.err" >&2
[ $rc -eq 0 ] || e2e_fail "--final exited $rc: $(tail -n 1 "$A/final.err")"
grep -Eq '^round 4 \(final\):' "$A/final.out" || e2e_fail "no 'round 4 (final)' line"
[ -f "$A/images/sess-a/4/core-$pid.img" ] || e2e_fail "round 4 holds no core image"
e2e_wait_pid_gone "$pid" 10 || e2e_fail "source $pid still there after --final"
e2e_wait_pid_gone "$daemon" 10 || e2e_fail "session daemon $daemon still there after --final"
[ ! -e "$SOCK" ] || e2e_fail "session socket left behind after --final"
"$MIGRATE" --pre-dump --session "$SOCK" >"$A/late.out" 2>"$A/late.err"
rc=$?
[ $rc -ne 0 ] || e2e_fail "--pre-dump on an ended session succeeded"
[ "$(wc -l <"$A/late.err")" -eq 1 ] || e2e_fail "not a one-line reason: $(cat "$A/late.err")"

last=$(grep '^step ' "$A/out" | tail -n 1 | awk '{ print $2 }')
"$RESTORE" --images-dir "$A/images/sess-a/4" >"$A/restore.out" 2>"$A/restore.err"
rc=$?
cat "$A/restore.out" "$A/restore.err" >&2
[ $rc -eq 0 ] || e2e_fail "restore exited $rc: $(tail -n 1 "$A/restore.err")"
e2e_track_pid "$pid"
grep -Eq "^restored pid $pid in " "$A/restore.out" || e2e_fail "restore printed no 'restored pid $pid'"
e2e_wait_for_line "$A/out" "^step $((last + 3 * CHECK_EVERY)) pid $pid " 20 ||
	e2e_fail "restored target does not run on: $(tail -n 1 "$A/out")"
kill -USR1 "$pid"
e2e_wait_for_line "$A/out" '^usr1 1$' 5 || e2e_fail "restored target: no 'usr1 1'"
e2e_assert_no_fail "$A/out"
e2e_assert_steps_continuous "$A/out" $((last + 3 * CHECK_EVERY))
diff "$A/snap/maps.before" "/proc/$pid/maps" >&2 || e2e_fail "restored mappings differ from the source's"
kill -KILL "$pid"
e2e_log "session A: 3 pre-dumps + final + restore ok"

# === 2. two pre-dump rounds, then --abort: the target runs on unharmed ======
B=$TMP/b
open_session "$B" sess-b
between "B after round 1" "$pid" "$B/snap"
sleep 0.3
"$MIGRATE" --pre-dump --session "$SOCK" >"$B/r2.out" 2>"$B/r2.err" ||
	e2e_fail "second --pre-dump (B) failed: $(tail -n 1 "$B/r2.err")"
round_ok "$B/r2.out" 2
between "B after round 2" "$pid" "$B/snap"

"$MIGRATE" --abort --session "$SOCK" >"$B/abort.out" 2>"$B/abort.err"
rc=$?
cat "$B/abort.out" "$B/abort.err" >&2
[ $rc -eq 0 ] || e2e_fail "--abort exited $rc: $(tail -n 1 "$B/abort.err")"
e2e_wait_pid_gone "$daemon" 10 || e2e_fail "session daemon $daemon still there after --abort"
[ ! -e "$SOCK" ] || e2e_fail "session socket left behind after --abort"
between "B after --abort" "$pid" "$B/snap"
[ ! -e "$B/images/sess-b/3" ] || e2e_fail "--abort wrote a round 3"
n=$(grep '^step ' "$B/out" | tail -n 1 | awk '{ print $2 }')
kill -USR1 "$pid"
e2e_wait_for_line "$B/out" '^usr1 1$' 5 || e2e_fail "after --abort: no 'usr1 1'"
kill -USR2 "$pid"
e2e_wait_for_line "$B/out" '^usr2 1 altstack ok$' 5 || e2e_fail "after --abort: no 'usr2 1 altstack ok'"
e2e_wait_for_line "$B/out" "^step $((n + 5 * CHECK_EVERY)) pid $pid " 20 ||
	e2e_fail "after --abort: target stalled"
[ "$(_e2e_state "$pid")" != Z ] || e2e_fail "target died after --abort"
e2e_assert_no_fail "$B/out"
e2e_assert_steps_continuous "$B/out" $((n + 5 * CHECK_EVERY))
"$MIGRATE" --final --session "$SOCK" >"$B/late.out" 2>"$B/late.err" &&
	e2e_fail "--final on an aborted session succeeded"
[ -e "/proc/$pid" ] || e2e_fail "target gone after a --final on an aborted session"
kill -KILL "$pid"

# === 3. the target exits between rounds: the daemon ends the session itself ==
C=$TMP/c
open_session "$C" sess-c
kill -KILL "$pid"
e2e_wait_pid_gone "$daemon" 10 || e2e_fail "session daemon $daemon outlived its target"
[ ! -e "$SOCK" ] || e2e_fail "session socket left behind after the target exited"
"$MIGRATE" --pre-dump --session "$SOCK" >"$C/late.out" 2>"$C/late.err" &&
	e2e_fail "--pre-dump on a session whose target exited succeeded"
echo "session ok: pre-dump x3 + final + restore; pre-dump x2 + abort; target exit ends the session"
