#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 300
#
# --move-address and --hook when the migration fails, and hooks when it
# works, between the "hosts" of e2e_net_bridge. A netsvc.py service bound to
# the service address runs on the source; one page server (several
# migrations) in the destination namespace. Every hook records its
# environment and where the service address is at that moment. Then:
#   a. bad --hook arguments: exit 2, a reason, nothing touched
#   b. a failing freeze hook (exit 3): migrate fails naming the hook; the
#      rollback hook runs; the address is back on the source only; the same
#      process answers there, its counter going on
#   c. a freeze hook past --hook-timeout: killed, the same rollback
#   d. a failing restored hook: the destination had added the address (seen
#      by the hook) and takes it off again; the address is back on the
#      source only; the source answers
#   e. the restore fails at the destination (the pid is taken there): the
#      address is back on the source only; the source answers
#   g. the restore is killed (SIGKILL) while it holds the tree: the page
#      server takes the address off for it; back on the source only
#   h. the destination does not answer ARP for the address (arp_ignore=8:
#      as if it were on another link): migrate's probe after "held" finds
#      no one, says so and rolls back before the restored hooks
#   i. migrate SIGKILLed while the destination holds: the source runs on (the
#      kernel detaches it), the keeper migrate forked puts the address back,
#      the destination discards and takes it off
#   f. the real migration with freeze, restored, rollback and done hooks:
#      freeze saw the address gone from the source, restored saw it at the
#      destination, done ran, rollback did not; FERRY_PID, FERRY_MIGRATION_ID
#      (the done line's), FERRY_DEST, FERRY_MOVE_ADDRESS right in each; the
#      client reaches the same pid at the destination
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"

e2e_need migrate pageserver restore
TMP=$(e2e_tmpdir)
MIG_DEST_MANY=1 mig_net_start 4 7002
count=0

# A hook that records: phase pid id dest address src=0|1 dst=0|1, then exits $1.
cat >"$TMP/hook.sh" <<HOOK
#!/bin/sh
s=0; d=0
ip -n $E2E_SRC_NS -o addr show dev eth0 | grep -qw "inet $SVC" && s=1
ip -n $E2E_DST_NS -o addr show dev eth0 | grep -qw "inet $SVC" && d=1
echo "\$FERRY_PHASE \$FERRY_PID \$FERRY_MIGRATION_ID \$FERRY_DEST \$FERRY_MOVE_ADDRESS src=\$s dst=\$d" >>$TMP/hooks.log
exit \$1
HOOK
chmod +x "$TMP/hook.sh"
H=$TMP/hook.sh

# answered WHAT: the service answers at its address with the next count, from $pid
answered()
{
	local got

	count=$((count + 1))
	got=$(mig_ask udp) || e2e_fail "$1: no answer from the service"
	[ "$got" = "pid $pid count $count" ] || e2e_fail "$1: answer '$got', expected 'pid $pid count $count'"
}

# only_at_source WHAT: the address is on the source (at once) and, within 10 s,
# not on the destination; the source runs untraced and answers.
only_at_source()
{
	local i

	mig_has_addr "$E2E_SRC_NS" || e2e_fail "$1: the address is not back on the source"
	for ((i = 0; i < 100; i++)); do
		mig_has_addr "$E2E_DST_NS" || break
		sleep 0.1
	done
	mig_has_addr "$E2E_DST_NS" && e2e_fail "$1: the address is still on the destination"
	mig_has_addr "$E2E_SRC_NS" || e2e_fail "$1: the address left the source again"
	[ -e "/proc/$pid" ] || e2e_fail "$1: the source is gone"
	grep -q '^TracerPid:[[:space:]]*0$' "/proc/$pid/status" || e2e_fail "$1: the source is traced"
	answered "$1"
}

# [WANT=N] fails NAME [OPTION...]: migrate --move-address OPTION... must exit
# with status N (default 1; 5 when the destination failed: README, Exit status)
fails()
{
	local name=$1 rc

	shift
	: >"$TMP/hooks.log"
	e2e_in_src "$MIGRATE" --to "$DEST" "${CLI_TLS[@]}" --move-address "$SVC" "$@" "$pid" \
		>"$TMP/$name.out" 2>"$TMP/$name.err"
	rc=$?
	e2e_log "$name: exit $rc: $(tail -n 3 "$TMP/$name.err")"
	[ $rc -eq "${WANT:-1}" ] || e2e_fail "$name: migrate exited $rc, expected ${WANT:-1}"
}

answered "start"

# --- a. bad --hook arguments ----------------------------------------------------------
for arg in "freeze" "thaw=true" "freeze=" "=true" "freeze=  "; do
	e2e_in_src "$MIGRATE" --to "$DEST" "${CLI_TLS[@]}" --hook "$arg" "$pid" 2>"$TMP/bad.err"
	rc=$?
	[ $rc -eq 2 ] || e2e_fail "a. --hook '$arg' exited $rc, expected 2"
	e2e_log "--hook '$arg': $(cat "$TMP/bad.err")"
done
e2e_in_src "$MIGRATE" --to "$DEST" "${CLI_TLS[@]}" --hook-timeout 0 "$pid" 2>/dev/null
[ $? -eq 2 ] || e2e_fail "a. --hook-timeout 0 accepted"
e2e_in_src "$MIGRATE" --to "$DEST" "${CLI_TLS[@]}" --move-address "$SVC" --leave-running "$pid" 2>/dev/null
[ $? -eq 2 ] || e2e_fail "a. --move-address with --leave-running accepted"

# --- b. failing freeze hook -----------------------------------------------------------
fails freeze --hook "freeze=$H 3" --hook "rollback=$H 0" --hook "done=$H 0"
grep -q "hook freeze '$H 3' failed: exit status 3" "$TMP/freeze.err" ||
	e2e_fail "b. migrate does not name the failed hook"
grep -q "^freeze $pid [^ ]* $DEST $SVC src=0 dst=0$" "$TMP/hooks.log" ||
	e2e_fail "b. freeze hook: $(cat "$TMP/hooks.log")"
grep -q "^rollback $pid [^ ]* $DEST $SVC src=1 dst=0$" "$TMP/hooks.log" ||
	e2e_fail "b. rollback hook: $(cat "$TMP/hooks.log")"
grep -q '^done' "$TMP/hooks.log" && e2e_fail "b. the done hook ran"
only_at_source "b. failing freeze hook"

# --- c. freeze hook past its deadline ---------------------------------------------------
t0=$SECONDS
# a sleep of its own (other tests may sleep 60 too): 60.PID seconds
nap="sleep 60.$$"
fails timeout --hook-timeout 2 --hook "freeze=$nap" --hook "rollback=$H 0"
[ $((SECONDS - t0)) -lt 30 ] || e2e_fail "c. the hook was not stopped at its deadline"
grep -q "hook freeze '$nap' did not finish within 2 s: killed" "$TMP/timeout.err" ||
	e2e_fail "c. no word of the deadline"
grep -q "^rollback $pid " "$TMP/hooks.log" || e2e_fail "c. no rollback hook"
pgrep -fx "$nap" >/dev/null && e2e_fail "c. the hook's sleep outlived it"
only_at_source "c. freeze hook past its deadline"

# --- d. failing restored hook: the destination had the address ---------------------------
fails restored --hook "restored=$H 1" --hook "rollback=$H 0"
grep -q "^restored $pid [^ ]* $DEST $SVC src=0 dst=1$" "$TMP/hooks.log" ||
	e2e_fail "d. restored hook did not see the address at the destination only: $(cat "$TMP/hooks.log")"
grep -q "^rollback $pid " "$TMP/hooks.log" || e2e_fail "d. no rollback hook"
only_at_source "d. failing restored hook"
grep -q "service address $SVC taken off eth0 again" "$TMP/dest.log" ||
	e2e_fail "d. the restore did not say it took the address off again"

# --- e. the restore fails at the destination: the pid is taken there ---------------------
e2e_hold_pid "$pid" in_dest || e2e_fail "e. could not occupy pid $pid in the destination namespace"
blocker=$E2E_HOLDER
WANT=5 fails pidtaken --hook "rollback=$H 0"
grep -qi 'restore' "$TMP/pidtaken.err" || e2e_fail "e. the reason does not mention the restore"
grep -q "^rollback $pid " "$TMP/hooks.log" || e2e_fail "e. no rollback hook"
only_at_source "e. restore failed at the destination"
in_dest kill -KILL "$pid"
kill -KILL "$blocker" 2>/dev/null
wait "$blocker" 2>/dev/null
for ((i = 0; i < 50; i++)); do
	in_dest test -e "/proc/$pid" || break
	sleep 0.1
done

# --- g. the restore is killed while it holds the tree --------------------------------------
: >"$TMP/hooks.log"
e2e_in_src env FERRY_TEST_PAUSE_AT=held "$MIGRATE" --to "$DEST" "${CLI_TLS[@]}" --move-address "$SVC" \
	--hook "rollback=$H 0" "$pid" >"$TMP/killed.out" 2>"$TMP/killed.err" &
mig=$!
e2e_wait_for_line "$TMP/killed.err" '^migrate: paused at held$' 60 || e2e_fail "g. migrate never paused at held"
mig_has_addr "$E2E_DST_NS" || e2e_fail "g. the held restore has not added the address"
rst=$(pgrep -f "^$FERRY_BUILD/restore --stream $TMP/dst/")
[ -n "$rst" ] || e2e_fail "g. no restore process"
kill -KILL $rst
wait "$mig"
rc=$?
e2e_log "killed: exit $rc: $(tail -n 2 "$TMP/killed.err")"
[ $rc -eq 5 ] || e2e_fail "g. migrate exited $rc, expected 5 (the destination failed)"
grep -q "^rollback $pid " "$TMP/hooks.log" || e2e_fail "g. no rollback hook"
only_at_source "g. restore killed while holding"
grep -q "the restore died holding its tree: service address $SVC taken off here" "$TMP/dest.log" ||
	e2e_fail "g. the page server did not take the address off"

# --- h. nothing answers for the address on the link after the destination added it ---------
# (as if the destination were on another link): the ARP probe finds no one
e2e_in_dst sysctl -qw net.ipv4.conf.eth0.arp_ignore=8 || e2e_fail "h. cannot set arp_ignore"
WANT=5 fails noanswer --hook "restored=$H 0" --hook "rollback=$H 0"
e2e_in_dst sysctl -qw net.ipv4.conf.eth0.arp_ignore=0
grep -q "nothing on the link of eth0 answers for the address" "$TMP/noanswer.err" ||
	e2e_fail "h. migrate does not say nobody answers"
grep -q '^restored' "$TMP/hooks.log" && e2e_fail "h. the restored hook ran"
grep -q "^rollback $pid " "$TMP/hooks.log" || e2e_fail "h. no rollback hook"
only_at_source "h. no answer on the link"

# --- i. migrate killed (SIGKILL) while the destination holds -------------------------------
# the kernel lets the source run on, the destination discards: the keeper migrate left
# puts the address back on the source
e2e_in_src env FERRY_TEST_PAUSE_AT=held "$MIGRATE" --to "$DEST" "${CLI_TLS[@]}" --move-address "$SVC" \
	"$pid" >"$TMP/sigkill.out" 2>"$TMP/sigkill.err" &
mig=$!
e2e_wait_for_line "$TMP/sigkill.err" '^migrate: paused at held$' 60 || e2e_fail "i. migrate never paused at held"
mpid=$(pgrep -P "$mig" -x migrate) || mpid=$mig
[ "$(cat "/proc/$mpid/comm")" = migrate ] || e2e_fail "i. no migrate process ($mig: $(cat "/proc/$mig/comm"))"
mig_has_addr "$E2E_SRC_NS" && e2e_fail "i. the address is on the source while held"
kill -KILL "$mpid"
wait "$mig" 2>/dev/null
e2e_wait_for_line "$TMP/sigkill.err" "died before the commit: the service address $SVC is back on eth0" 10 ||
	e2e_fail "i. the keeper did not put the address back: $(tail -n 2 "$TMP/sigkill.err")"
only_at_source "i. migrate killed while held"

# --- f. the migration, every hook ----------------------------------------------------------
: >"$TMP/hooks.log"
e2e_in_src "$MIGRATE" --json --to "$DEST" "${CLI_TLS[@]}" --move-address "$SVC" \
	--hook "freeze=$H 0" --hook "restored=$H 0" --hook "rollback=$H 0" --hook "done=$H 0" \
	"$pid" >"$TMP/f.json" 2>"$TMP/f.err" || e2e_fail "f. migrate failed: $(tail -n 2 "$TMP/f.err")"
id=$(sed -n 's/.*"event":"done".*"migration_id":"\([^"]*\)".*/\1/p' "$TMP/f.json")
[ -n "$id" ] || e2e_fail "f. no done line"
cat "$TMP/hooks.log" >&2
[ "$(cut -d' ' -f1 "$TMP/hooks.log" | tr '\n' ' ')" = "freeze restored done " ] ||
	e2e_fail "f. hooks ran: $(cut -d' ' -f1 "$TMP/hooks.log" | tr '\n' ' ')"
grep -qx "freeze $pid $id $DEST $SVC src=0 dst=0" "$TMP/hooks.log" || e2e_fail "f. freeze hook environment"
grep -qx "restored $pid $id $DEST $SVC src=0 dst=1" "$TMP/hooks.log" || e2e_fail "f. restored hook environment"
grep -qx "done $pid $id $DEST $SVC src=0 dst=1" "$TMP/hooks.log" || e2e_fail "f. done hook environment"
e2e_wait_pid_gone "$pid" 10 || e2e_fail "f. source still there"
outer=$(outer_pid "$pid") || e2e_fail "f. no pid $pid at the destination"
e2e_track_pid "$outer"
mig_has_addr "$E2E_SRC_NS" && e2e_fail "f. the address is still on the source"
mig_has_addr "$E2E_DST_NS" || e2e_fail "f. the address is not on the destination"
answered "f. after the migration"
echo "rollbacks and hooks ok: $count requests answered by pid $pid, last at the destination"
