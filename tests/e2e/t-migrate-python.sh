#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 150
#
# Migration of a CPython process (pyloop.py) over mutual TLS on loopback to
# a real page server that runs in its own PID namespace (so the restored
# process gets its old pid there while the source still exists).
# pageserver --once receives several rounds, restores the final one and
# reports; migrate kills the source. Checked: rounds and parent links in
# the destination stack, restore_ms in migrate's last JSON line, the source
# gone, the same pid in the destination namespace, steps continuing without
# gap or repeat, SIGUSR1 handled, pyloop's self-checks passing, and
# `pyloop.py --verify` accepting the whole out file.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"

e2e_need migrate pageserver restore
TMP=$(e2e_tmpdir)
CHECK_EVERY=5
e2e_tls_certs
port=$(e2e_port)
mig_start_dest 127.0.0.1

e2e_start_workload pyloop '^step 50 ' python3 "$E2E_PYLOOP" --out "$TMP/out" --pidfile "$TMP/pid" \
	--interval-ms 10 --check-every $CHECK_EVERY
in_dest test -e "/proc/$pid" && e2e_fail "pid $pid already exists in the destination namespace"

mig_run "$MIGRATE" --json --small-dirty 0 --to "127.0.0.1:$port" "${CLI_TLS[@]}" "$pid"

mig_check_report $((1024 * 1024))
mig_check_stack

# --- the source is gone, the destination runs it ----------------------------
mig_check_restored pyloop " "
kill -USR1 "$outer"
e2e_wait_for_line "$TMP/out" '^usr1 1$' 5 || e2e_fail "no 'usr1 1' at the destination"
e2e_wait_for_line "$TMP/out" "^step $((last + 20 * CHECK_EVERY)) " 30 ||
	e2e_fail "restored pyloop stalled: $(tail -n 1 "$TMP/out")"
in_dest test -e "/proc/$pid" || e2e_fail "restored pyloop died: $(grep -a FAIL "$TMP/out")"
e2e_stop_pyloop "$outer" $((last + 20 * CHECK_EVERY))
echo "migrate pyloop over TLS ok: $rounds rounds, $wire wire bytes, pid $pid restored in the destination namespace"
