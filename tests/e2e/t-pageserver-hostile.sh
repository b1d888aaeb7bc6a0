#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 300
#
# Hostile and broken peers against a real pageserver (mutual TLS): garbage
# before the handshake, and after a valid hello inside a round: random
# bytes, a truncated frame, a huge length, a bad type, a bad page batch,
# corrupt lz4; a peer that closes mid-round and one killed mid-frame. Each
# must drop only its own session with a logged reason, leave the stack as
# after the last whole round (no temporary round left), and the daemon must
# go on serving: a good client resumes the same migration afterwards.
. "$(dirname "$0")/lib.sh"

e2e_pageserver_setup
port=$(e2e_port)

e2e_start_pageserver ps "$port" "$IMG" --no-restore --auto-dedup -v
ps_pid=$E2E_LAST_PID

MODEL=(--seed 11 --pids 2 --pages 2048 --dirty 30 --files)
send()
{
	"$PSC" send --to "127.0.0.1:$port" "${CLI_TLS[@]}" "${MODEL[@]}" "$@"
}

intact()
{
	kill -0 "$ps_pid" 2>/dev/null || e2e_fail "pageserver died after $1"
	"$PSC" verify --stack "$IMG/$id" "${MODEL[@]}" >/dev/null ||
		e2e_fail "stack damaged after $1"
	[ -z "$(ls -A "$IMG/$id" | grep '^\.tmp')" ] || e2e_fail "temporary round left after $1"
	[ ! -e "$IMG/$id/$((top + 1))" ] || e2e_fail "a partial round was published after $1"
}

# Wait until the server logged a drop for session $1 (the reason matters).
# Then, if it had begun a round, for the abort of that round.
dropped()
{
	e2e_wait_for_line "$TMP/ps.log" "session $1 .*dropped: .*($2)" 10 ||
		e2e_fail "session $1 not dropped for '$2'"
	[ -z "${3:-}" ] && return 0
	e2e_wait_for_line "$TMP/ps.log" "session $1 .*round 3 of $id aborted" 10 ||
		e2e_fail "session $1: round 3 not aborted"
}

send --rounds 2 --id-file "$TMP/id" >"$TMP/good.out" || e2e_fail "baseline: $(cat "$TMP/good.out")"
id=$(cat "$TMP/id")
top=2
sid=1
intact baseline

# Raw garbage where a TLS ClientHello should be.
sid=$((sid + 1))
head -c 20000 /dev/urandom >"/dev/tcp/127.0.0.1/$port" 2>/dev/null
dropped $sid "TLS"
intact "pre-handshake garbage"

# Inside an authenticated session, after round_begin.
for mode in garbage truncate huge badtype badbatch lz4bomb; do
	sid=$((sid + 1))
	"$PSC" hostile --to "127.0.0.1:$port" "${CLI_TLS[@]}" --id "$id" --mode "$mode" \
		>"$TMP/h-$mode.out" 2>&1 || e2e_fail "hostile $mode: $(cat "$TMP/h-$mode.out")"
	case $mode in
	garbage | badtype) why="bad frame" ;;
	huge) why="frame longer than its type allows" ;;
	truncate) why="vanished in the middle of round" ;;
	badbatch) why="bad page batch" ;;
	lz4bomb) why="corrupt lz4 data" ;;
	esac
	dropped $sid "$why" round
	intact "hostile $mode"
done

# A peer that closes in the middle of a round, and one killed mid-frame.
sid=$((sid + 1))
send --id "$id" --rounds 1 --vanish >"$TMP/vanish.out" 2>&1 || e2e_fail "vanish: $(cat "$TMP/vanish.out")"
dropped $sid "vanished in the middle of round 3" round
intact vanish
sid=$((sid + 1))
send --id "$id" --rounds 1 --kill >"$TMP/kill.out" 2>&1
dropped $sid "vanished in the middle of round 3|reset|TLS" round
intact kill

# The daemon still serves, and the same migration resumes at round 3.
sleep 0.2
send --id "$id" --rounds 1 >"$TMP/after.out" || e2e_fail "after: $(cat "$TMP/after.out")"
grep -q "^id=$id next_round=3$" "$TMP/after.out" || e2e_fail "did not resume at round 3"
top=3
intact "the last good round"

# A new migration that never completes a round leaves no directory behind.
before=$(ls "$IMG" | wc -l)
"$PSC" send --to "127.0.0.1:$port" "${CLI_TLS[@]}" "${MODEL[@]}" --rounds 1 --vanish \
	>"$TMP/vanish1.out" 2>&1
sid=$((sid + 2))
e2e_wait_for_line "$TMP/ps.log" "dropped: .*vanished in the middle of round 1" 10 ||
	e2e_fail "the vanishing first round was not dropped"
for ((i = 0; i < 50; i++)); do
	[ "$(ls "$IMG" | wc -l)" -eq "$before" ] && break
	sleep 0.1
done
[ "$(ls "$IMG" | wc -l)" -eq "$before" ] ||
	e2e_fail "a migration without a complete round left $(ls "$IMG")"
echo "PASS"
