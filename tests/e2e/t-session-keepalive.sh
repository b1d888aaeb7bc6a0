#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 90
#
# A scripted session to a real page server may wait between rounds longer
# than the page server's 30 s idle deadline: the session daemon pings it
# every 5 s, so after 34 s of nothing a round still goes through on the
# same connection, and the page server dropped nothing.
. "$(dirname "$0")/lib.sh"

M=$FERRY_BUILD/migrate
TMP=$(e2e_tmpdir)
e2e_tls_certs
port=$(e2e_port)
e2e_start_pageserver ps "$port" "$TMP/dst" --no-restore -v

e2e_start_bg mw "$E2E_MEMWORK" --mem 32 --dirty 8 --tick-ms 5 --check-every 50 \
	--out "$TMP/out" --pidfile "$TMP/pid"
e2e_wait_file "$TMP/pid" 30 || e2e_fail "memwork never wrote its pidfile"
pid=$(cat "$TMP/pid")
S=$TMP/session.sock
e2e_on_exit "[ -S $S ] && $M --abort --session $S >/dev/null 2>&1"
"$M" --pre-dump --session "$S" --to "127.0.0.1:$port" "${CLI_TLS[@]}" "$pid" \
	>"$TMP/r1" || e2e_fail "round 1 failed"
sleep 34
grep -q "dropped" "$TMP/ps.log" && e2e_fail "the page server dropped the idle session: $(grep dropped "$TMP/ps.log")"
"$M" --pre-dump --session "$S" >"$TMP/r2" 2>&1 || e2e_fail "round 2 after 34 s failed: $(cat "$TMP/r2")"
[ "$(grep -c ' connected$' "$TMP/ps.log")" -eq 1 ] || e2e_fail "the session reconnected"
grep -q "round 2 of .* committed" "$TMP/ps.log" || e2e_fail "round 2 not committed"
"$M" --abort --session "$S" >/dev/null 2>&1 || e2e_fail "abort failed"
e2e_wait_for_line "$TMP/out" "^step " 5 || e2e_fail "memwork stalled"
echo "PASS"
