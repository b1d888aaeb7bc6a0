#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 120
#
# A round the page server cannot store (images on a full 8 MiB tmpfs):
# round_ack carries ok=false and the reason, the client's round_end fails
# with that message, the stack stays as after the last whole round, and the
# daemon serves the next session.
. "$(dirname "$0")/lib.sh"

e2e_pageserver_setup
mkdir -p "$IMG"
mount -t tmpfs -o size=8m ferry-e2e "$IMG" || e2e_fail "cannot mount a tmpfs"
e2e_on_exit "umount -l '$IMG'"
port=$(e2e_port)

e2e_start_pageserver ps "$port" "$IMG" -v
ps_pid=$E2E_LAST_PID

SMALL=(--kind random --pids 1 --pages 256 --dirty 50 --seed 4)
send()
{
	"$PSC" send --to "127.0.0.1:$port" "${CLI_TLS[@]}" "$@"
}

# A 1 MiB round fits; then a 16 MiB round (same migration) does not.
send "${SMALL[@]}" --rounds 1 --id-file "$TMP/id" >/dev/null || e2e_fail "small round failed"
id=$(cat "$TMP/id")
if send --id "$id" --kind random --pids 1 --pages 4096 --dirty 100 --seed 4 --rounds 1 \
	>"$TMP/big.out" 2>"$TMP/big.err"; then
	e2e_fail "a 16 MiB round fitted in 8 MiB"
fi
grep -q 'page server: round 2 failed: .*No space left on device' "$TMP/big.err" ||
	e2e_fail "client did not get the reason: $(cat "$TMP/big.err")"
e2e_wait_for_line "$TMP/ps.log" 'round 2 failed: .*No space left on device' 5 ||
	e2e_fail "server did not log the reason"
[ -z "$(ls -A "$IMG/$id" | grep -v '^1$')" ] || e2e_fail "leftovers: $(ls -A "$IMG/$id")"
"$PSC" verify --stack "$IMG/$id" "${SMALL[@]}" || e2e_fail "stack damaged by the failed round"

# Room again: the same migration goes on at round 2.
kill -0 "$ps_pid" || e2e_fail "pageserver died"
send "${SMALL[@]}" --id "$id" --rounds 1 >"$TMP/again.out" || e2e_fail "next round failed"
grep -q "^id=$id next_round=2$" "$TMP/again.out" || e2e_fail "did not resume at round 2"
"$PSC" verify --stack "$IMG/$id" "${SMALL[@]}" || e2e_fail "round 2 differs"
echo "PASS"
