#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 150
#
# Migration of memwork (256 MiB, dirtying pages) over mutual TLS to a real
# page server. The two "hosts" are the network namespaces of lib.sh
# (e2e_netns_pair, a veth pair); the destination also has its own PID
# namespace, so the restored process gets its old pid there while the
# source still exists. pageserver --once receives several rounds, restores
# the final one, and reports; migrate then kills the source. Checked: the
# stack at the destination (rounds, parent links), migrate's JSON
# (restore_ms in the last line), the source gone, and inside the
# destination namespace a memwork with the same pid whose steps continue
# the source's without gap or repeat, answering signals, self-checks passing.
. "$(dirname "$0")/lib.sh"

MIGRATE=$FERRY_BUILD/migrate
PAGESERVER=$FERRY_BUILD/pageserver
for b in "$MIGRATE" "$PAGESERVER" "$FERRY_BUILD/restore" "$E2E_MEMWORK"; do
	[ -x "$b" ] || e2e_fail "no $b (build it first)"
done
TMP=$(e2e_tmpdir)
CHECK_EVERY=40
C=$TMP/certs
e2e_make_certs "$C"
e2e_netns_pair
mkdir -p "$TMP/dst"
port=$(e2e_port)

# The destination: a PID namespace whose init (bash) outlives pageserver
# --once, so the restored process survives the page server's exit (a
# namespace dies with its init).
dest()
{
	"$PAGESERVER" -v --listen "$E2E_DST_IP:$port" --images-dir "$TMP/dst" --once \
		--tls-ca "$C/ca.pem" --tls-cert "$C/server.pem" --tls-key "$C/server.key"
	echo "pageserver exited $?"
	while :; do sleep 0.5; done	# as init: reaps what restore left
}
export -f dest
export PAGESERVER TMP C port E2E_DST_IP
e2e_start_bg dest e2e_in_dst unshare --pid --fork --mount-proc --kill-child -- bash -c dest
e2e_wait_port "$port" 10 "$E2E_DST_NS" || e2e_fail "pageserver does not listen"
nsinit=$(pgrep -P "$(cat "$TMP/dest.pid")" -x bash | head -n 1)
[ -n "$nsinit" ] || nsinit=$(pgrep -P "$(pgrep -P "$(cat "$TMP/dest.pid")" | head -n 1)" | head -n 1)
[ -n "$nsinit" ] || e2e_fail "cannot find the destination namespace's init"
in_dest() { nsenter -t "$nsinit" -p -m -- "$@"; }
# outer_pid PID: the pid, seen from here, of the process that is PID in the
# destination namespace (NSpid: OUTER PID).
outer_pid()
{
	local s ns

	ns=$(readlink "/proc/$nsinit/ns/pid")
	for s in /proc/[0-9]*/status; do
		s=${s%/status}
		[ "$(readlink "$s/ns/pid" 2>/dev/null)" = "$ns" ] || continue
		grep -Eq "^NSpid:[[:space:]]+[0-9]+[[:space:]]+$1\$" "$s/status" 2>/dev/null &&
			echo "${s#/proc/}" && return 0
	done
	return 1
}
[ "$(in_dest cat /proc/1/comm)" = bash ] || e2e_fail "cannot enter the destination namespace"

e2e_start_bg memwork "$E2E_MEMWORK" --mem 256 --dirty 16 --tick-ms 5 \
	--check-every $CHECK_EVERY --out "$TMP/out" --pidfile "$TMP/pid"
e2e_wait_file "$TMP/pid" 30 || e2e_fail "memwork never got ready"
pid=$(cat "$TMP/pid")
e2e_wait_for_line "$TMP/out" '^step 100 ' 10 || e2e_fail "memwork makes no progress"
in_dest test -e "/proc/$pid" && e2e_fail "pid $pid already exists in the destination namespace"

e2e_in_src "$MIGRATE" --json --to "$E2E_DST_IP:$port" --tls-ca "$C/ca.pem" \
	--tls-cert "$C/client.pem" --tls-key "$C/client.key" "$pid" \
	>"$TMP/migrate.json" 2>"$TMP/migrate.err"
rc=$?
cat "$TMP/migrate.json" "$TMP/migrate.err" >&2
[ $rc -eq 0 ] || e2e_fail "migrate --to exited $rc: $(tail -n 1 "$TMP/migrate.err")"
e2e_wait_for_line "$TMP/dest.log" '^pageserver exited' 10 || e2e_fail "pageserver --once did not exit"
grep -qx 'pageserver exited 0' "$TMP/dest.log" || e2e_fail "$(grep '^pageserver exited' "$TMP/dest.log")"

# --- migrate's report ---------------------------------------------------------
done_line=$(grep '"event":"done"' "$TMP/migrate.json")
[ -n "$done_line" ] || e2e_fail "no done line"
id=$(sed -n 's/.*"migration_id":"\([^"]*\)".*/\1/p' <<<"$done_line")
rounds=$(sed -n 's/.*"rounds":\([0-9]*\).*/\1/p' <<<"$done_line")
rms=$(sed -n 's/.*"restore_ms":\([0-9.]*\).*/\1/p' <<<"$done_line")
[ -n "$id" ] && [ -n "$rounds" ] || e2e_fail "done line without migration_id/rounds: $done_line"
[ "$rounds" -ge 3 ] || e2e_fail "only $rounds rounds"
[ -n "$rms" ] && [ "${rms%%.*}${rms#*.}" != 000 ] && [ "$rms" != 0 ] ||
	e2e_fail "no restore time from the destination in: $done_line"
wire=$(grep '"event":"round"' "$TMP/migrate.json" | sed -n 's/.*"wire_bytes":\([0-9]*\).*/\1/p' |
	awk '{ s += $1 } END { print s + 0 }')
[ "$wire" -gt $((64 * 1024 * 1024)) ] || e2e_fail "only $wire bytes on the wire for a 256 MiB heap"
e2e_log "migration $id: $rounds rounds, $wire bytes on the wire, restore ${rms} ms"

# --- the stack at the destination -------------------------------------------
stack=$TMP/dst/$id
[ -d "$stack" ] || e2e_fail "no stack $stack at the destination"
for ((k = 1; k <= rounds; k++)); do
	[ -d "$stack/$k" ] || e2e_fail "destination stack has no round $k"
	((k == 1)) || [ "$(readlink "$stack/$k/parent")" = "../$((k - 1))" ] ||
		e2e_fail "round $k: parent -> '$(readlink "$stack/$k/parent")'"
done
[ ! -e "$stack/$((rounds + 1))" ] || e2e_fail "more round directories than rounds"
for e in "$TMP"/dst/.* "$TMP"/dst/* "$stack"/.* "$stack"/*; do
	case ${e##*/} in
	*.tmp* | tmp*) e2e_fail "temporary directory left: $e" ;;
	esac
done

# --- the source is gone, the destination runs it ----------------------------
e2e_wait_pid_gone "$pid" 10 || e2e_fail "source $pid still there after the migration"
last=$(grep -c '^step ' "$TMP/out")
in_dest test -e "/proc/$pid" || e2e_fail "no pid $pid in the destination namespace"
grep -q memwork <(in_dest cat "/proc/$pid/cmdline") || e2e_fail "pid $pid at the destination is not memwork"
grep -q '^TracerPid:[[:space:]]*0$' <(in_dest cat "/proc/$pid/status") ||
	e2e_fail "restored process is traced"
# its outer pid, for signals from here
outer=$(outer_pid "$pid")
[ -n "$outer" ] || e2e_fail "no process outside with NSpid ... $pid"
e2e_track_pid "$outer"
e2e_log "destination: pid $pid inside, $outer outside ($(grep NSpid "/proc/$outer/status"))"
e2e_wait_for_line "$TMP/out" "^step $((last + 1)) pid $pid " 5 ||
	e2e_fail "no step $((last + 1)) from pid $pid after the migration"
kill -USR1 "$outer"
e2e_wait_for_line "$TMP/out" '^usr1 1$' 5 || e2e_fail "no 'usr1 1' at the destination"
kill -USR2 "$outer"
e2e_wait_for_line "$TMP/out" '^usr2 1 altstack ok$' 5 || e2e_fail "no 'usr2 1 altstack ok' at the destination"
e2e_wait_for_line "$TMP/out" "^step $((last + 4 * CHECK_EVERY)) pid $pid " 30 ||
	e2e_fail "restored memwork stalled: $(tail -n 1 "$TMP/out")"
in_dest test -e "/proc/$pid" || e2e_fail "restored memwork died: $(grep -a FAIL "$TMP/out")"
e2e_assert_no_fail "$TMP/out"
e2e_assert_steps_continuous "$TMP/out" $((last + 4 * CHECK_EVERY))
if grep '^step ' "$TMP/out" | grep -vq " pid $pid "; then
	e2e_fail "a step line with another pid"
fi
echo "migrate memwork over TLS ok: $rounds rounds, $wire wire bytes, pid $pid restored in the destination namespace"
