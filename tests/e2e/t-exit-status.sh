#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 120
#
# Exit statuses (common/exitcode.h, README "Exit status"): bad usage 2, a
# target problem 4 (unknown pid, a refused object: a FIFO held outside the tree too), a peer problem 5
# (nothing listens at --to), a local problem 6 (pageserver without its TLS
# files); `check --json` is one JSON object that says ferry can migrate here
# (this machine can), with exit status 0. After each failure the target
# still runs.
. "$(dirname "$0")/lib.sh"

e2e_need migrate pageserver restore
TMP=$(e2e_tmpdir)
CHECK=$FERRY_BUILD/check

# rc WANT WHAT CMD...: run CMD, its exit status must be WANT and stderr one line or more
rc()
{
	local want=$1 what=$2 got

	shift 2
	"$@" >"$TMP/out" 2>"$TMP/err"
	got=$?
	e2e_log "$what: exit $got: $(head -c 300 "$TMP/err")"
	[ "$got" -eq "$want" ] || e2e_fail "$what: exit status $got, want $want ($(cat "$TMP/err"))"
	[ "$want" -eq 0 ] || [ -s "$TMP/err" ] || e2e_fail "$what: no reason on stderr"
}

# --- check --json -------------------------------------------------------------
rc 0 "check --json" "$CHECK" --json
python3 - "$TMP/out" <<'PY' || e2e_fail "check --json: $(cat "$TMP/out")"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["event"] == "check" and c["can_migrate"] is True and c["missing"] == [], c
for k in ("uffd_wp_async", "pagemap_scan", "clone3_set_tid", "cap_sys_ptrace"):
    assert c["features"][k] in (True, False), k
assert c["dirty_tracking"], c
PY
rc 0 "migrate check --json" "$MIGRATE" check --json
python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$TMP/out" || e2e_fail "migrate check --json: not JSON"
rc 2 "check with a bad option" "$CHECK" --bogus

# --- bad usage: 2 ---------------------------------------------------------------
rc 2 "migrate without a destination" "$MIGRATE" 1
rc 2 "migrate with an unknown option" "$MIGRATE" --bogus 1
rc 2 "restore without images" "$RESTORE"
rc 2 "pageserver without --listen" "$PAGESERVER" --images-dir "$TMP"

# --- the target: 4 ---------------------------------------------------------------
sleep 1000 &
gone=$!
kill -KILL $gone
wait $gone 2>/dev/null
rc 4 "migrate of an unknown pid" "$MIGRATE" --images-dir "$TMP/img" "$gone"
grep -q "no process $gone" "$TMP/err" || e2e_fail "unknown pid: $(cat "$TMP/err")"
rc 4 "restore of missing images" "$RESTORE" --images-dir "$TMP/none/1"

mkfifo "$TMP/fifo"
e2e_start_bg fifo python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
print("ready", flush=True)
time.sleep(600)' "$TMP/fifo"
pid=$E2E_LAST_PID
e2e_wait_for_line "$TMP/fifo.log" '^ready' 20 || e2e_fail "the FIFO holder did not start"
# this shell holds the FIFO too (outside the tree): refused (a FIFO only the tree holds moves)
exec 9<>"$TMP/fifo"
rc 4 "migrate of a process holding a FIFO" "$MIGRATE" --images-dir "$TMP/img" "$pid"
exec 9>&-
grep -qi fifo "$TMP/err" || e2e_fail "the refusal does not name the FIFO: $(cat "$TMP/err")"
kill -0 "$pid" || e2e_fail "the refused process does not run on"

# --- the peer: 5 -------------------------------------------------------------------
e2e_start_bg quiet sleep 600
pid=$E2E_LAST_PID
port=$(e2e_port)
rc 5 "migrate to a port nobody listens on" "$MIGRATE" --to "127.0.0.1:$port" --insecure "$pid"
kill -0 "$pid" || e2e_fail "the source does not run on after an unreachable peer"

# --- this host: 6 -------------------------------------------------------------------
rc 6 "pageserver without its TLS files" "$PAGESERVER" --listen "127.0.0.1:$port" \
	--images-dir "$TMP" --tls-ca "$TMP/no-ca.pem" --tls-cert "$TMP/no.pem" --tls-key "$TMP/no.key"
rc 6 "pageserver on an images dir it cannot use" "$PAGESERVER" --listen "127.0.0.1:$port" \
	--images-dir "$TMP/none" --insecure
echo "exit statuses ok: usage 2, target 4, peer 5, local 6, check --json"
