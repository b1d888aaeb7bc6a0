#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 180
#
# Every migration that fails before the destination confirms the restore
# must leave the source running as before. One memwork source (256 MiB,
# dirtying pages) goes through, one after the other:
#   a. page server unreachable (nothing listens on the port)
#   b. client certificate signed by a rogue CA (the server rejects it), and
#      a client that does not trust the server's CA
#   c. page server SIGKILLed in the middle of round 1
#   d. restore failing at the destination: the source's PID is taken in the
#      destination's PID namespace
#   e. migrate SIGTERMed in the middle of round 1
# and after each: migrate exited non-zero with a one-line reason on stderr;
# the source is not traced, has its own fds and mappings only, keeps
# stepping and passes whole-heap self-checks. Then
#   f. targets that exit in the middle of a migration (killed; exiting by
#      themselves): migrate exits non-zero cleanly, the page server lives on;
#      a target that execs a new program: migrate names the exec, the new
#      program runs on untraced, the old one is not restored
#   g. finally the much-tried source migrates for real, intact.
. "$(dirname "$0")/lib.sh"

e2e_need migrate pageserver restore memwork
TMP=$(e2e_tmpdir)
CHECK_EVERY=20
e2e_tls_certs
GOOD=("${CLI_TLS[@]}")

# --- helpers -------------------------------------------------------------------

fds()
{
	local f

	for f in /proc/$1/fd/*; do
		echo "${f##*/} -> $(readlink "$f")"
	done | sort
}

# A destination: pageserver (no --once) in its own PID namespace, whose
# init (bash, e2e_pidns_pageserver) reaps and outlives it. dest_start NAME
# PORT; sets DEST_INIT (the init's pid here) and DEST_PS (the page server's);
# the log is $TMP/NAME.log.
export C

dest_start()
{
	local name=$1 port=$2 u i

	mkdir -p "$TMP/$name.images"
	e2e_start_bg "$name" unshare --pid --fork --mount-proc --kill-child -- \
		bash -c 'e2e_pidns_pageserver "$@"' _ "127.0.0.1:$port" "$TMP/$name.images"
	u=$E2E_LAST_PID
	e2e_wait_port "$port" 10 || e2e_fail "$name: pageserver does not listen"
	for ((i = 0; i < 50; i++)); do
		DEST_INIT=$(pgrep -P "$u" | head -n 1)
		[ -n "$DEST_INIT" ] && break
		sleep 0.1
	done
	[ -n "$DEST_INIT" ] || e2e_fail "$name: no namespace init"
	# the page server's pid here
	DEST_PS=$(pgrep -P "$DEST_INIT" -x pageserver | head -n 1)
	[ -n "$DEST_PS" ] || e2e_fail "$name: no pageserver process"
}

# try NAME ARGS...: run migrate ARGS (with a timeout); it must fail with a
# one-line reason. Output in $TMP/NAME.out/.err, exit status in RC.
try_fail()
{
	local name=$1

	shift
	timeout -k 5 60 "$MIGRATE" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
	RC=$?
	e2e_log "case $name: migrate exited $RC; stderr: $(cat "$TMP/$name.err")"
	check_failed "$name"
}

check_failed()
{
	local name=$1

	[ "$RC" -ne 124 ] && [ "$RC" -ne 137 ] || e2e_fail "$name: migrate hung (timeout)"
	[ "$RC" -ne 0 ] || e2e_fail "$name: migrate succeeded (exit 0)"
	[ "$RC" -lt 128 ] || e2e_fail "$name: migrate died of signal $((RC - 128))"
	[ -s "$TMP/$name.err" ] || e2e_fail "$name: migrate said nothing on stderr"
	grep -q '^migrate: ' "$TMP/$name.err" || e2e_fail "$name: reason not from migrate: $(cat "$TMP/$name.err")"
	# checked at the end, so that one run shows every case
	if [ "$(wc -l <"$TMP/$name.err")" -ne 1 ]; then
		NOT_ONE_LINE+=("$name ($(wc -l <"$TMP/$name.err") lines)")
	fi
}
NOT_ONE_LINE=()

# migrate_bg NAME PORT PID: migrate --to 127.0.0.1:PORT PID in the
# background, output in $TMP/NAME.out/.err; sets MPID, and N1 to how many
# times round 1 had begun in $TMP/d1.log before it.
migrate_bg()
{
	N1=$(grep -c 'pre-copy round 1 begins' "$TMP/d1.log")
	"$MIGRATE" --to "127.0.0.1:$2" "${GOOD[@]}" "$3" >"$TMP/$1.out" 2>"$TMP/$1.err" &
	MPID=$!
}

# round1_began MSG: wait (10 s) until round 1 begins in $TMP/d1.log once more
# than N1 times; fail with MSG if it does not.
round1_began()
{
	_e2e_deadline 10
	until [ "$(grep -c 'pre-copy round 1 begins' "$TMP/d1.log")" -gt "$N1" ]; do
		_e2e_expired "$_E2E_DL" && e2e_fail "$1"
		sleep 0.02
	done
}

# migrate_ended NAME MSG: the migrate of migrate_bg NAME must end within 30 s
# (else fail with MSG); its exit status goes in RC and to the log.
migrate_ended()
{
	e2e_wait_pid_gone "$MPID" 30 || e2e_fail "$2"
	wait "$MPID"
	RC=$?
	e2e_log "case $1: migrate exited $RC; stderr: $(cat "$TMP/$1.err")"
}

# source_ok WHAT: the source runs on as if nothing happened.
source_ok()
{
	local what=$1 s n

	[ -e "/proc/$SRC" ] || e2e_fail "$what: the source is gone: $(tail -n 2 "$TMP/out")"
	s=$(_e2e_state "$SRC")
	[ "$s" = S ] || [ "$s" = R ] || e2e_fail "$what: source in state $s: $(grep -a FAIL "$TMP/out")"
	grep -q '^TracerPid:[[:space:]]*0$' "/proc/$SRC/status" ||
		e2e_fail "$what: source still traced ($(grep TracerPid "/proc/$SRC/status"))"
	fds "$SRC" >"$TMP/fds.now"
	diff "$TMP/fds.src" "$TMP/fds.now" >&2 || e2e_fail "$what: the source's fds changed"
	cat "/proc/$SRC/maps" >"$TMP/maps.now"
	diff "$TMP/maps.src" "$TMP/maps.now" >&2 || e2e_fail "$what: the source's mappings changed"
	n=$(grep '^step ' "$TMP/out" | tail -n 1 | awk '{ print $2 }')
	# two more whole-heap checks
	e2e_wait_for_line "$TMP/out" "^step $((n + 2 * CHECK_EVERY + 1)) pid $SRC " 20 ||
		e2e_fail "$what: the source stalled: $(tail -n 1 "$TMP/out")"
	e2e_assert_no_fail "$TMP/out"
	e2e_assert_steps_continuous "$TMP/out" "$n"
	e2e_log "$what: source ok"
}

# --- the source -------------------------------------------------------------------
e2e_start_workload memwork '^step 50 ' "$E2E_MEMWORK" --mem 256 --dirty 64 --tick-ms 5 \
	--check-every $CHECK_EVERY --out "$TMP/out" --pidfile "$TMP/pid"
SRC=$pid
fds "$SRC" >"$TMP/fds.src"
cat "/proc/$SRC/maps" >"$TMP/maps.src"

# --- a. nobody listens ----------------------------------------------------------
port=$(e2e_port)
try_fail unreachable --to "127.0.0.1:$port" "${GOOD[@]}" "$SRC"
source_ok "a. unreachable"

# --- b. certificates --------------------------------------------------------------
P1=$(e2e_port)
dest_start d1 "$P1"
D1_INIT=$DEST_INIT
D1_PS=$DEST_PS
try_fail rogue-client --to "127.0.0.1:$P1" --tls-ca "$C/ca.pem" \
	--tls-cert "$C/rogue.pem" --tls-key "$C/rogue.key" "$SRC"
source_ok "b. rogue client certificate"
try_fail rogue-ca --to "127.0.0.1:$P1" --tls-ca "$C/rogue-ca.pem" \
	--tls-cert "$C/client.pem" --tls-key "$C/client.key" "$SRC"
source_ok "b. server certificate not trusted"
[ -e "/proc/$D1_PS" ] || e2e_fail "the page server died of a bad client: $(tail -n 3 "$TMP/d1.log")"
[ -z "$(ls "$TMP/d1.images")" ] || e2e_fail "a rejected client created a stack: $(ls "$TMP/d1.images")"

# --- c. page server killed in round 1 ----------------------------------------------
P2=$(e2e_port)
dest_start d2 "$P2"
migrate_bg pskill "$P2" "$SRC"
e2e_wait_for_line "$TMP/d2.log" 'pre-copy round 1 begins' 10 || e2e_fail "c. round 1 never began"
sleep 0.15
grep -q 'round 1 .*committed' "$TMP/d2.log" && e2e_log "c. (round 1 was already over: killed later than meant)"
kill -KILL "$DEST_PS"
migrate_ended pskill "c. migrate hangs after the page server died"
check_failed pskill
source_ok "c. page server killed"

# --- d. restore fails at the destination: the PID is taken there --------------------
in_d1() { nsenter -t "$D1_INIT" -p -m -- "$@"; }
in_d1 test -e "/proc/$SRC" && e2e_fail "pid $SRC already used in the destination namespace"
# The next pid the namespace hands out becomes $SRC: a sleep holds it.
e2e_hold_pid "$SRC" in_d1 || e2e_fail "d. could not occupy pid $SRC in the destination namespace"
blocker=$E2E_HOLDER
t0=$SECONDS
try_fail pidtaken --to "127.0.0.1:$P1" "${GOOD[@]}" "$SRC"
# the stream restore says "unfilled 1" at once: no 15 s of rounds waiting for prefills
[ $((SECONDS - t0)) -le 8 ] || e2e_fail "d. the failed restore took $((SECONDS - t0)) s to be reported"
grep -qi 'restore' "$TMP/pidtaken.err" || e2e_fail "d. the reason does not mention the restore"
grep -q "restored " "$TMP/d1.log" && e2e_fail "d. the page server says it restored"
source_ok "d. restore failed at the destination"
kill -KILL "$blocker" 2>/dev/null
in_d1 bash -c "kill -KILL $SRC" 2>/dev/null
wait "$blocker" 2>/dev/null
[ -e "/proc/$D1_PS" ] || e2e_fail "d. the page server died: $(tail -n 3 "$TMP/d1.log")"

# --- e. migrate SIGTERMed in round 1 --------------------------------------------------
migrate_bg sigterm "$P1" "$SRC"
round1_began "e. round 1 never began"
sleep 0.15
kill -TERM "$MPID"
migrate_ended sigterm "e. migrate does not stop on SIGTERM"
check_failed sigterm
source_ok "e. migrate SIGTERMed"
[ -e "/proc/$D1_PS" ] || e2e_fail "e. the page server died: $(tail -n 3 "$TMP/d1.log")"

# --- f. targets that exit during the migration ------------------------------------------
# killed in round 1
e2e_start_bg victim "$E2E_MEMWORK" --mem 256 --dirty 64 --out "$TMP/victim.out" \
	--pidfile "$TMP/victim.pidf"
e2e_wait_file "$TMP/victim.pidf" 30 || e2e_fail "f. victim never got ready"
victim=$(cat "$TMP/victim.pidf")
migrate_bg victim-kill "$P1" "$victim"
round1_began "f. round 1 never began"
sleep 0.1
kill -KILL "$victim"
migrate_ended victim-kill "f. migrate hangs when its target is killed"
check_failed victim-kill
grep -q 'runs on' "$TMP/victim-kill.err" && NOT_ONE_LINE+=("victim-kill (says the dead target runs on)")
e2e_wait_pid_gone "$victim" 10 || e2e_fail "f. killed target still there"

# exits by itself (exit(0)) in the middle of round 1: a python process with
# 256 MiB of touched memory that ends when told to by a flag file (or, with
# a third argument, executes /bin/sleep then: case execer below)
cat >"$TMP/quitter.py" <<'EOF2'
import os, sys, time
mem = bytearray(256 << 20)
for i in range(0, len(mem), 4096):
    mem[i] = 1
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write("%d\n" % os.getpid())
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while not os.path.exists(sys.argv[2]):
    time.sleep(0.002)
if len(sys.argv) > 3:
    os.execv("/bin/sleep", ["sleep", "300"])
sys.exit(0)
EOF2
e2e_start_bg quitter python3 "$TMP/quitter.py" "$TMP/quitter.pidf" "$TMP/quitter.flag"
e2e_wait_file "$TMP/quitter.pidf" 30 || e2e_fail "f. quitter never got ready"
quitter=$(cat "$TMP/quitter.pidf")
migrate_bg quitter-m "$P1" "$quitter"
round1_began "f. round 1 never began (quitter)"
touch "$TMP/quitter.flag"
migrate_ended quitter-m "f. migrate hangs when its target exits"
if [ "$RC" -eq 0 ] && grep -q 'round 1 .*committed' "$TMP/d1.log" && ! [ -e "/proc/$quitter" ]; then
	e2e_fail "f. migrate says it migrated a process that exited"
fi
check_failed quitter-m
grep -q 'runs on' "$TMP/quitter-m.err" && NOT_ONE_LINE+=("quitter (says the exited target runs on)")
e2e_wait_pid_gone "$quitter" 10 || e2e_fail "f. the quitter did not end"
[ -e "/proc/$D1_PS" ] || e2e_fail "f. the page server died: $(tail -n 3 "$TMP/d1.log")"
source_ok "f. (the source, meanwhile)"

# execs in the middle of round 1 (issue 8): a new program now, which the
# migration must not restore as the old one; migrate names the exec, the
# process runs its new program, untraced, and nothing runs at the destination
e2e_start_bg execer python3 "$TMP/quitter.py" "$TMP/execer.pidf" "$TMP/execer.flag" exec
e2e_wait_file "$TMP/execer.pidf" 30 || e2e_fail "f. execer never got ready"
execer=$(cat "$TMP/execer.pidf")
migrate_bg execer-m "$P1" "$execer"
round1_began "f. round 1 never began (execer)"
touch "$TMP/execer.flag"
migrate_ended execer-m "f. migrate hangs when its target execs"
check_failed execer-m
grep -qi 'exec' "$TMP/execer-m.err" ||
	NOT_ONE_LINE+=("execer (the reason does not name the exec: $(cat "$TMP/execer-m.err"))")
[ -e "/proc/$execer" ] || e2e_fail "f. the execer is gone after its failed migration"
[ "$(cat "/proc/$execer/comm")" = sleep ] || e2e_fail "f. the execer runs $(cat "/proc/$execer/comm"), not its new program"
s=$(_e2e_state "$execer")
[ "$s" = S ] || [ "$s" = R ] || e2e_fail "f. the execer is left in state $s"
grep -q '^TracerPid:[[:space:]]*0$' "/proc/$execer/status" || e2e_fail "f. the execer is left traced"
# the copy prepared at the destination (streaming) is dropped on the abort
for ((i = 0; i < 100; i++)); do
	in_d1 test -e "/proc/$execer" || break
	sleep 0.1
done
in_d1 test -e "/proc/$execer" && e2e_fail "f. the execer's old program runs at the destination"
kill -KILL "$execer"
[ -e "/proc/$D1_PS" ] || e2e_fail "f. the page server died: $(tail -n 3 "$TMP/d1.log")"
source_ok "f. (the source, after the execer)"

# --- g. the source still migrates ---------------------------------------------------------
in_d1 test -e "/proc/$SRC" && e2e_fail "g. pid $SRC still taken at the destination"
last=$(grep -c '^step ' "$TMP/out")
timeout -k 5 60 "$MIGRATE" --to "127.0.0.1:$P1" "${GOOD[@]}" "$SRC" >"$TMP/final.out" 2>"$TMP/final.err"
RC=$?
cat "$TMP/final.out" "$TMP/final.err" >&2
[ $RC -eq 0 ] || e2e_fail "g. the real migration failed ($RC): $(tail -n 1 "$TMP/final.err")"
e2e_wait_pid_gone "$SRC" 10 || e2e_fail "g. source still there after the migration"
in_d1 test -e "/proc/$SRC" || e2e_fail "g. no pid $SRC at the destination"
e2e_wait_for_line "$TMP/out" "^step $((last + 2 * CHECK_EVERY + 1)) pid $SRC " 20 ||
	e2e_fail "g. the migrated source does not step on: $(tail -n 1 "$TMP/out")"
e2e_assert_no_fail "$TMP/out"
e2e_assert_steps_continuous "$TMP/out" "$last"
[ ${#NOT_ONE_LINE[@]} -eq 0 ] ||
	e2e_fail "wrong failure reason (not one line on stderr, or untrue) in: ${NOT_ONE_LINE[*]}"
echo "migration failures ok: the source survived a-f and then migrated"
