#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 120
#
# A destination that stops answering must not hold the source forever:
#   iii. the page server is SIGSTOPped in the middle of a migration (its
#        kernel still acknowledges, so TCP alone never notices): migrate
#        fails within ~25 s naming the silence, and the source runs on;
#   iv.  the restore at the destination never reports (a --restore-cmd
#        that sleeps) and the page server has --restore-timeout 5: it
#        kills the restore and reports; migrate fails within ~15 s and the
#        source, frozen for the final round, thaws and runs on.
. "$(dirname "$0")/lib.sh"

MIGRATE=$FERRY_BUILD/migrate
for b in "$MIGRATE" "$FERRY_BUILD/pageserver" "$E2E_MEMWORK"; do
	[ -x "$b" ] || e2e_fail "no $b (build it first)"
done
TMP=$(e2e_tmpdir)
e2e_tls_certs

e2e_start_bg memwork "$E2E_MEMWORK" --mem 256 --dirty 64 --tick-ms 5 \
	--check-every 20 --out "$TMP/out" --pidfile "$TMP/pid"
e2e_wait_file "$TMP/pid" 30 || e2e_fail "memwork never got ready"
SRC=$(cat "$TMP/pid")
e2e_wait_for_line "$TMP/out" '^step 50 ' 10 || e2e_fail "memwork makes no progress"

# source_ok WHAT: not traced, not stopped, and it steps on.
source_ok()
{
	local s n

	[ -e "/proc/$SRC" ] || e2e_fail "$1: the source is gone"
	grep -q '^TracerPid:[[:space:]]*0$' "/proc/$SRC/status" || e2e_fail "$1: source still traced"
	s=$(_e2e_state "$SRC")
	[ "$s" = S ] || [ "$s" = R ] || e2e_fail "$1: source in state $s"
	n=$(grep '^step ' "$TMP/out" | tail -n 1 | awk '{ print $2 }')
	e2e_wait_for_line "$TMP/out" "^step $((n + 20)) pid $SRC " 10 ||
		e2e_fail "$1: the source does not step on: $(tail -n 1 "$TMP/out")"
	e2e_assert_no_fail "$TMP/out"
}

# migrate_start NAME PORT: migrate --to the port in the background (MPID).
migrate_start()
{
	timeout -k 5 60 "$MIGRATE" --to "127.0.0.1:$2" "${CLI_TLS[@]}" "$SRC" \
		>"$TMP/$1.out" 2>"$TMP/$1.err" &
	MPID=$!
	e2e_track_pid $MPID
}

# migrate_failed NAME LIMIT: it failed, at most LIMIT s after $t0.
migrate_failed()
{
	local name=$1 limit=$2 rc t

	wait "$MPID"
	rc=$?
	t=$(($(date +%s) - t0))
	e2e_log "$name: migrate exited $rc after $t s: $(cat "$TMP/$name.err")"
	[ "$rc" -ne 0 ] || e2e_fail "$name: migrate succeeded"
	[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || e2e_fail "$name: migrate hung"
	[ "$t" -le "$limit" ] || e2e_fail "$name: migrate took $t s (limit $limit)"
}

# --- iii. page server stopped mid-migration ---------------------------------------
port=$(e2e_port)
e2e_start_pageserver ps3 "$port" "$TMP/images3" --no-restore -v
ps3=$E2E_LAST_PID
migrate_start stopped "$port"
e2e_wait_for_line "$TMP/ps3.log" 'pre-copy round 1 begins' 10 || e2e_fail "iii. round 1 never began"
kill -STOP "$ps3"
t0=$(date +%s)
migrate_failed stopped 26
grep -q "no word from 127.0.0.1:$port for 20 s" "$TMP/stopped.err" ||
	e2e_fail "iii. no timeout reason: $(cat "$TMP/stopped.err")"
source_ok "iii. page server stopped"
kill -CONT "$ps3"

# --- iv. restore that never reports -------------------------------------------------
printf '#!/bin/sh\nexec sleep 1000\n' >"$TMP/hang-restore"
chmod +x "$TMP/hang-restore"
port=$(e2e_port)
e2e_start_pageserver ps4 "$port" "$TMP/images4" --restore-cmd "$TMP/hang-restore" \
	--no-stream --restore-timeout 5 -v
migrate_start restore "$port"
e2e_wait_for_line "$TMP/ps4.log" 'final round [0-9]+ begins' 30 || e2e_fail "iv. no final round"
t0=$(date +%s)
migrate_failed restore 15
grep -q "restore took longer than 5 s" "$TMP/restore.err" ||
	e2e_fail "iv. no restore timeout reason: $(cat "$TMP/restore.err")"
grep -q "restore took longer than 5 s: killing it" "$TMP/ps4.log" || e2e_fail "iv. not logged"
source_ok "iv. restore stalled"
echo "PASS"
