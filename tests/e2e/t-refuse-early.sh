#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 120
#
# Refusals come before anything is frozen (issue 12). A page server waits
# over TLS; then, against it:
#   a. a process holding a FIFO that a process outside the tree holds too
#      (objwork fifo_outside): migrate --to is refused with one line naming
#      the FIFO;
#   b. a tree whose grandchild holds a CPU-time POSIX timer (root and child hold nothing
#      ferry refuses): refused naming the timer and the grandchild's pid;
#   c. a scripted session (--pre-dump --session) on the FIFO process:
#      refused before its first round, no daemon, no images directory.
# After each: nothing reached the page server (no round directory, it still
# listens), and the process runs on, the same one, neither stopped nor
# traced, its object intact ("ok MODE" when asked).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"

MIGRATE=$FERRY_BUILD/migrate
PAGESERVER=$FERRY_BUILD/pageserver
OBJWORK=$FERRY_BUILD/tests/workloads/objwork
for b in "$MIGRATE" "$PAGESERVER" "$OBJWORK"; do
	[ -x "$b" ] || e2e_fail "no $b (build it first)"
done
TMP=$(e2e_tmpdir)
C=$TMP/certs
e2e_make_certs "$C"
port=$(e2e_port)
mig_start_dest 127.0.0.1
TLS=(--tls-ca "$C/ca.pem" --tls-cert "$C/client.pem" --tls-key "$C/client.key")

# obj_start MODE: objwork MODE in $TMP/MODE, ready; sets OPID.
obj_start()
{
	e2e_objwork_start "$1" "$TMP/$1"
}

# obj_ok MODE: the process answers "ok MODE" (its object intact).
obj_ok()
{
	local d=$TMP/$1 n i

	n=$(grep -c '^ok ' "$d/out")
	touch "$d/check"
	for ((i = 0; i < 60; i++)); do
		[ "$(grep -c '^ok ' "$d/out")" -gt "$n" ] && return 0
		grep -q '^bad ' "$d/out" && break
		sleep 0.05
	done
	e2e_fail "$1: the process does not say ok: $(tail -n 1 "$d/out")"
}

# try NAME ARGS...: migrate ARGS, output in $TMP/NAME.out/.err, status in RC.
try()
{
	local name=$1

	shift
	timeout -k 5 30 "$MIGRATE" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
	RC=$?
}

# refused NAME REGEX PID STARTTIME: migrate (output in $TMP/NAME.err) failed
# with one line matching REGEX; nothing reached the page server; PID runs on.
refused()
{
	local name=$1 re=$2 pid=$3 st=$4 s

	[ "$RC" -ne 0 ] || e2e_fail "$name: migrate succeeded"
	[ "$RC" -lt 124 ] || e2e_fail "$name: migrate hung or died (exit $RC)"
	e2e_log "$name: migrate exited $RC: $(cat "$TMP/$name.err")"
	[ "$(wc -l <"$TMP/$name.err")" -eq 1 ] || e2e_fail "$name: not one line: $(cat "$TMP/$name.err")"
	grep -Eqi -- "$re" "$TMP/$name.err" || e2e_fail "$name: refusal does not match '$re'"
	grep -q 'round' "$TMP/$name.out" && e2e_fail "$name: a round ran: $(cat "$TMP/$name.out")"
	[ -z "$(find "$TMP/dst" -mindepth 1 | head -n 1)" ] ||
		e2e_fail "$name: the page server got something: $(find "$TMP/dst" -mindepth 1 | head -n 3)"
	e2e_wait_port "$port" 2 || e2e_fail "$name: the page server no longer listens"
	[ "$(_e2e_starttime "$pid")" = "$st" ] || e2e_fail "$name: pid $pid is gone"
	s=$(_e2e_state "$pid")
	[ "$s" = S ] || [ "$s" = R ] || e2e_fail "$name: pid $pid in state $s"
	grep -q '^TracerPid:[[:space:]]*0$' "/proc/$pid/status" || e2e_fail "$name: pid $pid traced"
}

# --- a. a FIFO ----------------------------------------------------------------
obj_start fifo_outside
fifo=$OPID
fifo_st=$(_e2e_starttime "$fifo")
obj_ok fifo_outside
try a --to "127.0.0.1:$port" "${TLS[@]}" "$fifo"
refused a "pid $fifo: fd [0-9]+ is the FIFO \(named pipe\) .*out\.fifo, which pid [0-9]+ outside" \
	"$fifo" "$fifo_st"
obj_ok fifo_outside
e2e_log "a: FIFO refused before round 1"

# --- b. a CPU-time POSIX timer two generations down ----------------------------
mkdir -p "$TMP/posix_timer_cputime"
tree_root()
{
	bash -c '"$@" & wait' _ "$OBJWORK" posix_timer_cputime --out "$TMP/posix_timer_cputime/out" \
		--pidfile "$TMP/posix_timer_cputime/pid" --check "$TMP/posix_timer_cputime/check" &
	wait
}
export -f tree_root
export OBJWORK TMP
e2e_start_bg tree bash -c tree_root
root=$E2E_LAST_PID
e2e_wait_file "$TMP/posix_timer_cputime/pid" 5 || e2e_fail "b: no objwork pidfile"
e2e_wait_for_line "$TMP/posix_timer_cputime/out" '^ready' 5 || e2e_fail "b: objwork not ready"
grand=$(cat "$TMP/posix_timer_cputime/pid")
e2e_track_pid "$grand"
grand_st=$(_e2e_starttime "$grand")
root_st=$(_e2e_starttime "$root")
obj_ok posix_timer_cputime
try b --to "127.0.0.1:$port" "${TLS[@]}" "$root"
refused b "pid $grand: POSIX timer [0-9]+ runs on a CPU-time clock" "$grand" "$grand_st"
[ "$(_e2e_starttime "$root")" = "$root_st" ] || e2e_fail "b: the root is gone"
grep -q '^TracerPid:[[:space:]]*0$' "/proc/$root/status" || e2e_fail "b: the root is traced"
obj_ok posix_timer_cputime
e2e_log "b: CPU-time timer of the grandchild refused before round 1"

# --- c. a scripted session ------------------------------------------------------
try c --pre-dump --session "$TMP/c.sock" --images-dir "$TMP/c.images" "$fifo"
refused c "FIFO \(named pipe\)" "$fifo" "$fifo_st"
[ ! -e "$TMP/c.sock" ] || e2e_fail "c: a session socket was left"
[ ! -e "$TMP/c.images" ] || e2e_fail "c: an images directory was made"
obj_ok fifo_outside
e2e_log "c: session refused before its first round"

e2e_log "PASS"
