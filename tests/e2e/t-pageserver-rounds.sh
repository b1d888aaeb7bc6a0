#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 300
#
# Rounds through a real pageserver over mutual TLS on loopback: three rounds
# on one connection, two more resuming the migration on a second one, the
# final round on a third (--no-restore). The top of the stack must equal,
# byte for byte, what was sent last; the layout must be 1/ .. N/ with parent
# links; the page server must stay under 64 MiB RSS while 128 MiB rounds
# stream through it.
. "$(dirname "$0")/lib.sh"

e2e_pageserver_setup
port=$(e2e_port)

e2e_start_pageserver ps "$port" "$IMG" --no-restore -v
ps_pid=$E2E_LAST_PID

# 2 pids x 16384 pages: 128 MiB in round 1, ~32 MiB per later round.
MODEL=(--seed 7 --pids 2 --pages 16384 --dirty 25 --kind mixed --files)
send()
{
	"$PSC" send --to "127.0.0.1:$port" "${CLI_TLS[@]}" "${MODEL[@]}" "$@"
}

send --rounds 3 --id-file "$TMP/id" >"$TMP/c1.out" || e2e_fail "first session: $(cat "$TMP/c1.out")"
id=$(cat "$TMP/id")
[ -n "$id" ] || e2e_fail "no migration id"
grep -q '^round 3:' "$TMP/c1.out" || e2e_fail "round 3 missing: $(cat "$TMP/c1.out")"
"$PSC" verify --stack "$IMG/$id" "${MODEL[@]}" || e2e_fail "top round 3 differs from what was sent"

# Resume: the server says the next round is 4. Zero pages in-band this time.
send --id "$id" --rounds 2 --inband-zero >"$TMP/c2.out" || e2e_fail "resume: $(cat "$TMP/c2.out")"
grep -q "^id=$id next_round=4$" "$TMP/c2.out" || e2e_fail "resume did not continue at round 4"
"$PSC" verify --stack "$IMG/$id" "${MODEL[@]}" || e2e_fail "top round 5 differs"

# Final round, scripted as its own connection.
send --id "$id" --rounds 1 --final >"$TMP/c3.out" || e2e_fail "final: $(cat "$TMP/c3.out")"
grep -q '^restore ok=1 .*error=not restored (--no-restore)$' "$TMP/c3.out" ||
	e2e_fail "wrong restore_result: $(cat "$TMP/c3.out")"
"$PSC" verify --stack "$IMG/$id" "${MODEL[@]}" || e2e_fail "top round 6 differs"

# Layout: 1..6, parent links, nothing temporary left.
for r in 1 2 3 4 5 6; do
	[ -d "$IMG/$id/$r" ] || e2e_fail "no round directory $r"
	if [ $r -gt 1 ]; then
		[ "$(readlink "$IMG/$id/$r/parent")" = "../$((r - 1))" ] ||
			e2e_fail "round $r: bad parent link"
	fi
done
[ -z "$(ls -A "$IMG/$id" | grep -v '^[0-9]*$')" ] || e2e_fail "stray entries: $(ls -A "$IMG/$id")"

# A migration after the final one is refused a new round (it is a new id instead).
send --rounds 1 --id-file "$TMP/id2" >/dev/null || e2e_fail "second migration failed"
[ "$(cat "$TMP/id2")" != "$id" ] || e2e_fail "two migrations share an id"

# Sessions do not mix: four migrations at once, each its own stack.
par=()
for i in 1 2 3 4; do
	"$PSC" send --to "127.0.0.1:$port" "${CLI_TLS[@]}" --seed $((100 + i)) --pids 1 \
		--pages 8192 --kind random --rounds 2 --id-file "$TMP/par$i" >"$TMP/par$i.out" &
	par+=($!)
done
wait "${par[@]}"
for i in 1 2 3 4; do
	grep -q '^round 2:' "$TMP/par$i.out" || e2e_fail "parallel session $i: $(cat "$TMP/par$i.out")"
	"$PSC" verify --stack "$IMG/$(cat "$TMP/par$i")" --seed $((100 + i)) --pids 1 \
		--pages 8192 --kind random || e2e_fail "parallel session $i: stack differs"
done

# Memory: the page server's peak RSS.
hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$ps_pid/status")
e2e_log "pageserver peak RSS ${hwm} kB"
[ "$hwm" -lt $((64 * 1024)) ] || e2e_fail "pageserver peak RSS ${hwm} kB >= 64 MiB"
kill -0 "$ps_pid" || e2e_fail "pageserver died"
grep -q 'client certificate /CN=ferry-test-client' "$TMP/ps.log" || e2e_fail "no TLS client logged"
echo "PASS"
