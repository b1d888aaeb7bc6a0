#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 150
#
# A python3 program sandboxed with seccomp filters (seccompwork.py: the
# parent's filter, installed as root without no_new_privs, inherited by its
# child, which sets no_new_privs and stacks a filter of its own) migrated
# over mutual TLS to a page server in its own PID namespace. Checked: both
# processes at the destination with Seccomp: 2 and 1 and 2 filters, the
# parent still without no_new_privs and the child with it, and both go on
# with every filter still answering from inside (their own checks: no FAIL).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"

e2e_need migrate pageserver restore
TMP=$(e2e_tmpdir)
e2e_tls_certs
port=$(e2e_port)
mig_start_dest 127.0.0.1

e2e_start_bg sc python3 "$FERRY_ROOT/tests/workloads/seccompwork.py" "$TMP/out" "$TMP/pid"
e2e_wait_file "$TMP/pid" 20 || e2e_fail "seccompwork never wrote its pidfile"
pid=$(cat "$TMP/pid")
e2e_wait_for_line "$TMP/out" '^child 5$' 10 || e2e_fail "seccompwork makes no progress"
child=$(pgrep -P "$pid" | head -n 1)
[ -n "$child" ] || e2e_fail "seccompwork has no child"
e2e_track_pid "$child"

# FIELD PROC: a field of /proc/PID/status at the destination
field() { in_dest awk -v k="$1:" '$1 == k { print $2 }' "/proc/$2/status"; }
want() {
	local got=$(field "$1" "$2")

	[ "$got" = "$3" ] || e2e_fail "pid $2: $1 $got at the destination, expected $3"
}

mig_run "$MIGRATE" --small-dirty 0 --max-rounds 3 --to "127.0.0.1:$port" "${CLI_TLS[@]}" "$pid"
for p in "$pid" "$child"; do
	e2e_wait_pid_gone "$p" 10 || e2e_fail "source process $p still there"
	in_dest test -e "/proc/$p" || e2e_fail "no pid $p at the destination"
done
want Seccomp "$pid" 2
want Seccomp_filters "$pid" 1
want NoNewPrivs "$pid" 0
want Seccomp "$child" 2
want Seccomp_filters "$child" 2
want NoNewPrivs "$child" 1
last=$(grep -c '^step ' "$TMP/out")
lastc=$(grep -c '^child ' "$TMP/out")
e2e_wait_for_line "$TMP/out" "^step $((last + 50))\$" 20 ||
	e2e_fail "restored seccompwork stalled: $(tail -n 2 "$TMP/out")"
e2e_wait_for_line "$TMP/out" "^child $((lastc + 50))\$" 10 || e2e_fail "the child stalled"
e2e_assert_no_fail "$TMP/out"
echo "seccompwork (filters in parent and child) migrated over TLS; filters in force at step $last"
