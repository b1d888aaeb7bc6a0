#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 150
#
# POSIX timers and timerfds migrated over mutual TLS to a page server in its
# own PID namespace (streaming restore, several pre-copy rounds), not only
# checkpointed: objwork posix_timer_pending (a 100 ms timer whose signal
# is blocked, so one signal is always pending, with overruns) and objwork
# timerfd (a periodic timerfd, an absolute CLOCK_REALTIME one whose unread
# expirations must all be there, a one-shot with its one unread tick). Each
# checks itself from inside at the destination (t-objects.sh says what).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"

e2e_need migrate pageserver objwork
TMP=$(e2e_tmpdir)
e2e_tls_certs
port=$(e2e_port)
MIG_DEST_MANY=1 mig_start_dest 127.0.0.1

# answer MODE: create the check file, print the newest answer after it (3 s at most)
answer()
{
	local d=$TMP/$1 n

	n=$(grep -Ec '^(ok|bad) ' "$d/out")
	touch "$d/check"
	_e2e_deadline 5
	while [ "$(grep -Ec '^(ok|bad) ' "$d/out")" -le "$n" ]; do
		_e2e_expired "$_E2E_DL" && return 0
		sleep 0.05
	done
	grep -E '^(ok|bad) ' "$d/out" | tail -n 1
}

for mode in posix_timer_pending timerfd; do
	d=$TMP/$mode
	mkdir -p "$d"
	e2e_start_bg "$mode" "$OBJWORK" "$mode" --out "$d/out" --pidfile "$d/pid" --check "$d/check"
	e2e_wait_file "$d/pid" 10 || e2e_fail "$mode: no pidfile"
	pid=$(cat "$d/pid")
	a=$(answer "$mode")
	[ "$a" = "ok $mode" ] || e2e_fail "$mode before the migration: ${a:-no answer}"
	sleep 0.5	# unread expirations and a pending signal to carry
	"$MIGRATE" --small-dirty 0 --max-rounds 3 --to "127.0.0.1:$port" "${CLI_TLS[@]}" "$pid" \
		>"$d/m.out" 2>"$d/m.err"
	rc=$?
	cat "$d/m.out" "$d/m.err" >&2
	[ $rc -eq 0 ] || e2e_fail "$mode: migrate exited $rc: $(tail -n 1 "$d/m.err")"
	e2e_wait_pid_gone "$pid" 10 || e2e_fail "$mode: source $pid still there"
	in_dest test -e "/proc/$pid" || e2e_fail "$mode: no pid $pid at the destination"
	outer=$(outer_pid "$pid")
	[ -n "$outer" ] && e2e_track_pid "$outer"
	a=$(answer "$mode")
	[ "$a" = "ok $mode" ] || e2e_fail "$mode after the migration: ${a:-no answer}"
	a=$(answer "$mode")
	[ "$a" = "ok $mode" ] || e2e_fail "$mode, second check after the migration: ${a:-no answer}"
	rounds=$(sed -n 's/^migrated pid .* in \([0-9]*\) rounds.*/\1/p' "$d/m.err" "$d/m.out" | head -n 1)
	[ "${rounds:-0}" -ge 2 ] || e2e_fail "$mode: ${rounds:-no} rounds, expected pre-copy rounds first"
	echo "$mode migrated over TLS in $rounds rounds: checks itself ok, twice"
done
