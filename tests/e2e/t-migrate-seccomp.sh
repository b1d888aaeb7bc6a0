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
# Then the restored tree is checkpointed again there (--leave-running): the
# seccomp part of each core image (every program, its flags, SECCOMP_FILTER_FLAG_LOG
# on the parent's, each thread's mode and chain) is the one the first
# migration sent.
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

# seccomp of core-PID.img in a round directory, as JSON
SHOW=$FERRY_BUILD/ferry-show
sc_of() {
	"$SHOW" decode "$1/core-$2.img" | python3 -c '
import json, sys
core = json.load(sys.stdin)["entries"][0]["proc_core"]
print(json.dumps({"filters": core.get("seccomp_filters"),
                  "threads": [(t.get("seccomp_mode"), t.get("seccomp_chain"))
                              for t in core["threads"]]}, sort_keys=True))'
}
first=$(ls -d "$TMP"/dst/*/* | sort -V | tail -n 1)
in_dest "$MIGRATE" --images-dir "$TMP/again" --leave-running "$pid" >&2 ||
	e2e_fail "checkpoint of the restored tree failed"
again=$(ls -d "$TMP"/again/*/* | sort -V | tail -n 1)
for p in "$pid" "$child"; do
	a=$(sc_of "$first" "$p") && b=$(sc_of "$again" "$p") || e2e_fail "cannot decode core-$p.img"
	[ "$a" = "$b" ] || e2e_fail "pid $p: seccomp differs after the restore: $a -> $b"
	echo "pid $p: $b" | cut -c1-200 >&2
done
grep -q '"flags": 2' <<<"$(sc_of "$first" "$pid")" ||
	e2e_fail "the parent's filter was not sent with SECCOMP_FILTER_FLAG_LOG"
e2e_wait_for_line "$TMP/out" "^step $((last + 100))\$" 20 || e2e_fail "stalled after the checkpoint"
e2e_assert_no_fail "$TMP/out"
echo "seccompwork (filters in parent and child) migrated over TLS; filters in force at step $last, the same chains dumped again"
