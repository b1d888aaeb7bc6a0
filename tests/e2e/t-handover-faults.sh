#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 240
#
# The hand-over never leaves two running copies (docs/handover.md). The
# destination holds the restored tree stopped until the source's COMMIT; the
# source stops its own copy for good before sending it. Each case uses a
# fresh memwork source and a fresh destination (pageserver --hold-timeout 5
# in its own PID namespace), and asserts who runs afterwards:
#   a. migrate SIGKILLed while the destination holds (FERRY_TEST_PAUSE_AT=held,
#      before COMMIT): the destination discards; the source runs on.
#   b. page server SIGKILLed after COMMIT came in, before the restore was told
#      (pageserver FERRY_TEST_PAUSE_AT=commit): migrate says IN DOUBT, exits 3;
#      the source is stopped; the destination discards (end of input): none
#      runs. `kill -CONT` (what the message says) resumes the source.
#   c. the link goes silent after COMMIT (page server SIGSTOPped there):
#      migrate gives up after its read deadline, IN DOUBT, exit 3; the restore
#      discards at its hold deadline; none runs; kill -CONT resumes the source.
#   d. page server SIGKILLed while held, before COMMIT: migrate fails (exit 5)
#      and thaws the source; the destination discards.
#   e. a normal migration: the restored copy runs, the source is gone.
#   f. the restore SIGKILLed while it holds: the held tree dies with it
#      (PTRACE_O_EXITKILL), migrate fails (exit 5) and thaws the source.
#   g. the source SIGKILLed during the final freeze: migrate commits nothing
#      and fails naming it; the destination discards: none runs (the user's kill).
#   h. case b for a scripted session (two `--pre-dump --session` rounds, then
#      `--final --session`): `migrate --final` says "session: IN DOUBT",
#      exits 3; the source is stopped, none runs, the session is over (a
#      further call finds none); kill -CONT resumes the source.
#   i. page server SIGKILLed after it told the restore to resume, before the
#      verdict reached migrate (pageserver FERRY_TEST_PAUSE_AT=resume; crash
#      point 7): migrate says IN DOUBT, exits 3, the source is stopped; the
#      destination's copy runs: one copy runs.
# Nothing may wait without limit: every wait below has a deadline.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"

MIGRATE=$FERRY_BUILD/migrate
for b in "$MIGRATE" "$FERRY_BUILD/pageserver" "$FERRY_BUILD/restore" "$E2E_MEMWORK"; do
	[ -x "$b" ] || e2e_fail "no $b (build it first)"
done
TMP=$(e2e_tmpdir)
e2e_tls_certs
export C

# src_start NAME: a fresh memwork source (SRC, output $TMP/NAME.out).
src_start()
{
	e2e_start_bg "src-$1" "$E2E_MEMWORK" --mem 32 --dirty 8 --tick-ms 5 \
		--check-every 20 --out "$TMP/$1.out" --pidfile "$TMP/$1.pidf"
	e2e_wait_file "$TMP/$1.pidf" 30 || e2e_fail "$1: memwork never got ready"
	SRC=$(cat "$TMP/$1.pidf")
	OUT=$TMP/$1.out
	e2e_wait_for_line "$OUT" '^step 30 ' 10 || e2e_fail "$1: memwork makes no progress"
}

# dest_start NAME [HOLD_S]: pageserver --hold-timeout HOLD_S (5) in a PID namespace on a fresh
# port (PORT); sets nsinit (its init, for outer_pid) and DEST_PS.
dest_start()
{
	local name=$1 hold=${2:-5} u i

	PORT=$(e2e_port)
	mkdir -p "$TMP/$name.images"
	e2e_start_bg "dest-$name" unshare --pid --fork --mount-proc --kill-child -- \
		bash -c 'e2e_pidns_pageserver "$@"' _ "127.0.0.1:$PORT" "$TMP/$name.images" \
		--hold-timeout "$hold"
	u=$E2E_LAST_PID
	DLOG=$TMP/dest-$name.log
	e2e_wait_port "$PORT" 10 || e2e_fail "$name: pageserver does not listen"
	nsinit=
	for ((i = 0; i < 50; i++)); do
		nsinit=$(pgrep -P "$u" | head -n 1)
		[ -n "$nsinit" ] && break
		sleep 0.1
	done
	[ -n "$nsinit" ] || e2e_fail "$name: no namespace init"
	DEST_PS=$(pgrep -P "$nsinit" -x pageserver | head -n 1)
	[ -n "$DEST_PS" ] || e2e_fail "$name: no pageserver process"
}

# migrate_bg NAME [ENV...]: migrate --to the destination in the background (MPID).
migrate_bg()
{
	local name=$1

	shift
	env "$@" timeout -k 5 90 "$MIGRATE" --to "127.0.0.1:$PORT" "${CLI_TLS[@]}" "$SRC" \
		>"$TMP/$name.mout" 2>"$TMP/$name.merr" &
	MPID=$!
	e2e_track_pid $MPID
}

# migrate_rc NAME LIMIT: wait for migrate (at most LIMIT s); sets RC.
migrate_rc()
{
	local i

	for ((i = 0; i < $2 * 10; i++)); do
		[ -e "/proc/$MPID" ] && [ "$(_e2e_state "$MPID")" != Z ] || break
		sleep 0.1
	done
	[ "$(_e2e_state "$MPID" 2>/dev/null)" = Z ] || [ ! -e "/proc/$MPID" ] ||
		e2e_fail "$1: migrate still runs after $2 s"
	wait "$MPID"
	RC=$?
	e2e_log "$1: migrate exited $RC: $(cat "$TMP/$1.merr")"
}

# dest_copy: the restored copy's pid here, if there is one. Only the
# destination namespace's processes are looked at (pgrep --ns): a walk over
# all of /proc takes seconds on a loaded machine, longer than the 3 s pause
# of FERRY_TEST_PAUSE_AT=held.
dest_copy()
{
	local p

	for p in $(pgrep --ns "$nsinit" --nslist pid); do
		grep -Eq "^NSpid:[[:space:]]+[0-9]+[[:space:]]+$SRC\$" "/proc/$p/status" 2>/dev/null &&
			echo "$p" && return 0
	done
	return 1
}

# dest_gone NAME LIMIT: no copy at the destination within LIMIT s.
dest_gone()
{
	local i

	for ((i = 0; i < $2 * 10; i++)); do
		dest_copy >/dev/null || return 0
		sleep 0.1
	done
	e2e_fail "$1: the destination still has a copy after $2 s (state $(_e2e_state "$(dest_copy)"))"
}

# steps_on NAME PID: PID is not traced and its output grows.
steps_on()
{
	local n

	grep -q '^TracerPid:[[:space:]]*0$' "/proc/$2/status" || e2e_fail "$1: pid $2 still traced"
	n=$(grep -c '^step ' "$OUT")
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -c '^step ' "$OUT")" -gt $((n + 10)) ] && break
		sleep 0.1
	done
	[ "$(grep -c '^step ' "$OUT")" -gt $((n + 10)) ] || e2e_fail "$1: pid $2 does not step on"
	e2e_assert_no_fail "$OUT"
}

# stopped NAME PID: PID is in a group stop (T), not traced, and stays still.
stopped()
{
	local n

	[ "$(_e2e_state "$2")" = T ] || e2e_fail "$1: pid $2 in state $(_e2e_state "$2"), not stopped"
	grep -q '^TracerPid:[[:space:]]*0$' "/proc/$2/status" || e2e_fail "$1: pid $2 still traced"
	n=$(grep -c '^step ' "$OUT")
	sleep 0.5
	[ "$(grep -c '^step ' "$OUT")" -eq "$n" ] || e2e_fail "$1: a stopped copy still steps"
}

# --- a. migrate killed while held --------------------------------------------
# a loaded machine takes seconds to find the held copy: a longer pause and hold
src_start a
dest_start a 30
migrate_bg a FERRY_TEST_PAUSE_AT=held FERRY_TEST_PAUSE_S=15
e2e_wait_for_line "$TMP/a.merr" 'paused at held' 60 || e2e_fail "a: migrate never paused at held"
d=$(dest_copy) || e2e_fail "a: nothing restored at the destination"
s=$(_e2e_state "$d")
[ "$s" = t ] || [ "$s" = T ] || e2e_fail "a: the held copy is in state $s, not stopped"
m=$(pgrep -P "$MPID" -x migrate) || e2e_fail "a: no migrate process under timeout"
kill -KILL "$m"
wait "$MPID" 2>/dev/null
dest_gone a 10
e2e_wait_for_line "$DLOG" 'discarded' 5 || e2e_fail "a: the restore did not say it discarded"
steps_on a "$SRC"
e2e_log "a: ok: the destination discarded, the source runs on"

# --- b. page server killed after COMMIT --------------------------------------
src_start b
FERRY_TEST_PAUSE_AT=commit dest_start b
migrate_bg b
e2e_wait_for_line "$DLOG" 'paused at commit' 60 || e2e_fail "b: the page server never paused at commit"
kill -KILL "$DEST_PS"
migrate_rc b 30
[ "$RC" -eq 3 ] || e2e_fail "b: migrate exited $RC, want 3 (in doubt)"
grep -q "IN DOUBT: pid $SRC is stopped here.*kill -KILL $SRC.*kill -CONT $SRC" "$TMP/b.merr" ||
	e2e_fail "b: no IN DOUBT line: $(cat "$TMP/b.merr")"
stopped b "$SRC"
dest_gone b 10
stopped b "$SRC"
kill -CONT "$SRC"
steps_on b "$SRC"
e2e_log "b: ok: in doubt, none ran; kill -CONT resumed the source"

# --- c. link silent after COMMIT ---------------------------------------------
src_start c
FERRY_TEST_PAUSE_AT=commit dest_start c
migrate_bg c
e2e_wait_for_line "$DLOG" 'paused at commit' 60 || e2e_fail "c: the page server never paused at commit"
kill -STOP "$DEST_PS"
# the restore's hold deadline (5 s) passes first: it discards on its own
dest_gone c 15
migrate_rc c 40
[ "$RC" -eq 3 ] || e2e_fail "c: migrate exited $RC, want 3 (in doubt)"
grep -q "IN DOUBT: pid $SRC is stopped here" "$TMP/c.merr" || e2e_fail "c: no IN DOUBT line"
stopped c "$SRC"
kill -CONT "$SRC"
steps_on c "$SRC"
kill -KILL "$DEST_PS"
e2e_log "c: ok: in doubt, none ran; kill -CONT resumed the source"

# --- d. page server killed while held (before COMMIT) ------------------------
src_start d
dest_start d
migrate_bg d FERRY_TEST_PAUSE_AT=held
e2e_wait_for_line "$TMP/d.merr" 'paused at held' 60 || e2e_fail "d: migrate never paused at held"
kill -KILL "$DEST_PS"
dest_gone d 10
migrate_rc d 20
[ "$RC" -eq 5 ] || e2e_fail "d: migrate exited $RC, want 5 (the destination failed, source thawed)"
steps_on d "$SRC"
e2e_log "d: ok: the destination discarded, the source was thawed"

# --- f. the restore killed while holding -------------------------------------
src_start f
dest_start f
migrate_bg f FERRY_TEST_PAUSE_AT=held
e2e_wait_for_line "$TMP/f.merr" 'paused at held' 60 || e2e_fail "f: migrate never paused at held"
r=$(pgrep -P "$DEST_PS" -x restore | head -n 1) || e2e_fail "f: no restore under the page server"
kill -KILL "$r"
# PTRACE_O_EXITKILL: the held tree dies with its restore, it is never let go
dest_gone f 10
migrate_rc f 30
[ "$RC" -eq 5 ] || e2e_fail "f: migrate exited $RC, want 5 (the destination failed, source thawed)"
steps_on f "$SRC"
e2e_log "f: ok: the held tree died with its restore, the source was thawed"

# --- g. the source killed during the final freeze ----------------------------
src_start g
dest_start g
migrate_bg g FERRY_TEST_PAUSE_AT=held
e2e_wait_for_line "$TMP/g.merr" 'paused at held' 60 || e2e_fail "g: migrate never paused at held"
kill -KILL "$SRC"
migrate_rc g 30
[ "$RC" -ne 0 ] && [ "$RC" -ne 3 ] || e2e_fail "g: migrate exited $RC, want a failure"
grep -Eq "killed during the final freeze|exited during the migration" "$TMP/g.merr" ||
	e2e_fail "g: the kill is not named: $(cat "$TMP/g.merr")"
dest_gone g 10
e2e_log "g: ok: the source was killed, nothing was committed, the destination discarded"

# --- h. a scripted session into IN DOUBT -------------------------------------
src_start h
FERRY_TEST_PAUSE_AT=commit dest_start h
S=$TMP/h.sock
timeout -k 5 60 "$MIGRATE" --pre-dump --session "$S" --to "127.0.0.1:$PORT" "${CLI_TLS[@]}" \
	"$SRC" >"$TMP/h.r1" 2>&1 || e2e_fail "h: the first --pre-dump failed: $(cat "$TMP/h.r1")"
timeout -k 5 60 "$MIGRATE" --pre-dump --session "$S" >"$TMP/h.r2" 2>&1 ||
	e2e_fail "h: the second --pre-dump failed: $(cat "$TMP/h.r2")"
steps_on h "$SRC"	# between rounds it runs, untraced
timeout -k 5 90 "$MIGRATE" --final --session "$S" >"$TMP/h.mout" 2>"$TMP/h.merr" &
MPID=$!
e2e_track_pid $MPID
e2e_wait_for_line "$DLOG" 'paused at commit' 60 || e2e_fail "h: the page server never paused at commit"
kill -KILL "$DEST_PS"
migrate_rc h 30
[ "$RC" -eq 3 ] || e2e_fail "h: migrate --final --session exited $RC, want 3 (in doubt)"
grep -q "^migrate: session: IN DOUBT: pid $SRC is stopped here.*kill -KILL $SRC.*kill -CONT $SRC" \
	"$TMP/h.merr" || e2e_fail "h: no IN DOUBT line: $(cat "$TMP/h.merr")"
stopped h "$SRC"
dest_gone h 10
stopped h "$SRC"
# the session ended with the final round: nothing holds the target any more
if timeout -k 5 20 "$MIGRATE" --pre-dump --session "$S" >"$TMP/h.r3" 2>&1; then
	e2e_fail "h: the session still answers after the final round: $(cat "$TMP/h.r3")"
fi
grep -q "no session" "$TMP/h.r3" || e2e_fail "h: not 'no session': $(cat "$TMP/h.r3")"
stopped h "$SRC"
kill -CONT "$SRC"
steps_on h "$SRC"
e2e_log "h: ok: the session's final round is in doubt, none ran; kill -CONT resumed the source"

# --- i. page server killed after it wrote resume -----------------------------
src_start i
FERRY_TEST_PAUSE_AT=resume FERRY_TEST_PAUSE_S=15 dest_start i
migrate_bg i
e2e_wait_for_line "$DLOG" 'paused at resume' 60 || e2e_fail "i: the page server never paused at resume"
kill -KILL "$DEST_PS"
migrate_rc i 30
[ "$RC" -eq 3 ] || e2e_fail "i: migrate exited $RC, want 3 (in doubt)"
grep -q "IN DOUBT: pid $SRC is stopped here" "$TMP/i.merr" ||
	e2e_fail "i: no IN DOUBT line: $(cat "$TMP/i.merr")"
# the copies share the output file: the source's stop is read from its state
[ "$(_e2e_state "$SRC")" = T ] || e2e_fail "i: the source is in state $(_e2e_state "$SRC"), not stopped"
d=$(dest_copy) || e2e_fail "i: no copy at the destination (the restore was told to resume)"
steps_on i "$d"
[ "$(_e2e_state "$SRC")" = T ] || e2e_fail "i: the source runs beside the destination's copy"
kill -KILL "$SRC"
e2e_log "i: ok: in doubt, the destination's copy runs, the source stays stopped"

# --- e. a normal migration ---------------------------------------------------
src_start e
dest_start e
migrate_bg e
migrate_rc e 60
[ "$RC" -eq 0 ] || e2e_fail "e: migrate exited $RC: $(cat "$TMP/e.merr")"
e2e_wait_pid_gone "$SRC" 10 || e2e_fail "e: the source still exists"
d=$(dest_copy) || e2e_fail "e: no restored copy"
s=$(_e2e_state "$d")
[ "$s" = S ] || [ "$s" = R ] || e2e_fail "e: the restored copy is in state $s"
steps_on e "$d"
grep -q 'held: waiting for the source' "$DLOG" || e2e_fail "e: the restore was not held"
e2e_log "e: ok: the restored copy runs"
echo "PASS"
