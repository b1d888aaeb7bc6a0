#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 150
#
# Local checkpoint and restore of memwork (256 MiB, pages dirtied every
# tick): `migrate --images-dir` writes a stack of rounds 1..N (round k > 1
# with parent -> ../k-1, later pre-copy rounds much smaller than round 1),
# the source is gone afterwards, `restore --images-dir` brings it back with
# the same pid: steps continue without gap or repeat in the same out file
# (so the file offset came along; memwork checks it too), SIGUSR1 and
# SIGUSR2 (on the altstack) work, the whole-heap self-check passes several
# times, no FAIL, and the restored maps are exactly the source's (no
# restorer, no parasite left behind).
. "$(dirname "$0")/lib.sh"

e2e_need migrate restore memwork
TMP=$(e2e_tmpdir)
CHECK_EVERY=40

# 256 MiB, 16 pages (64 KiB) rewritten every 5 ms tick: ~12 MiB/s dirty.
e2e_start_workload memwork '^step 100 ' "$E2E_MEMWORK" --mem 256 --dirty 16 --tick-ms 5 \
	--check-every $CHECK_EVERY --out "$TMP/out" --pidfile "$TMP/pid"

# The maps just before the migration: memwork maps nothing after 'ready'.
cat "/proc/$pid/maps" >"$TMP/maps.src" || e2e_fail "cannot read /proc/$pid/maps"

e2e_checkpoint_json "$pid"

# --- the image stack -----------------------------------------------------
[ -d "$stack" ] || e2e_fail "no stack directory $stack"
[ "$rounds" -ge 3 ] || e2e_fail "only $rounds rounds (expected pre-copy rounds before the final one)"
nlines=$(grep -c '"event":"round"' "$TMP/migrate.json")
[ "$nlines" -eq "$rounds" ] || e2e_fail "$nlines round lines for $rounds rounds"
grep '"event":"round"' "$TMP/migrate.json" | tail -n 1 | grep -q '"final":true' ||
	e2e_fail "the last round line is not the final round"
entries=("$stack"/*)
[ ${#entries[@]} -eq "$rounds" ] ||
	e2e_fail "stack holds ${entries[*]##*/} for $rounds rounds"

pages1=$(stat -c %s "$stack/1/pages-$pid.img") || e2e_fail "no round 1 pages file"
[ "$pages1" -ge $((200 * 1024 * 1024)) ] || e2e_fail "round 1 pages file only $pages1 bytes"
for ((k = 1; k <= rounds; k++)); do
	d=$stack/$k
	[ -d "$d" ] || e2e_fail "no round directory $k"
	[ -f "$d/inventory.img" ] || e2e_fail "round $k has no inventory.img"
	[ -f "$d/pagemap-$pid.img" ] || e2e_fail "round $k has no pagemap-$pid.img"
	if ((k > 1)); then
		[ -L "$d/parent" ] || e2e_fail "round $k has no parent symlink"
		[ "$(readlink "$d/parent")" = "../$((k - 1))" ] ||
			e2e_fail "round $k: parent -> $(readlink "$d/parent"), expected ../$((k - 1))"
		sz=$(stat -c %s "$d/pages-$pid.img" 2>/dev/null || echo 0)
		e2e_log "round $k pages file: $sz bytes (round 1: $pages1)"
		((sz * 8 < pages1)) || e2e_fail "round $k pages file ($sz bytes) not much smaller than round 1's ($pages1)"
	else
		[ ! -e "$d/parent" ] || e2e_fail "round 1 has a parent"
	fi
done
for f in core-$pid.img mm-$pid.img files-$pid.img pstree.img; do
	[ -f "$stack/$rounds/$f" ] || e2e_fail "final round has no $f"
done

# --- the source is gone ----------------------------------------------------
e2e_wait_pid_gone "$pid" 10 || e2e_fail "source pid $pid still there after migrate"
before=$(grep -c '^step ' "$TMP/out")
last=$(grep '^step ' "$TMP/out" | tail -n 1 | awk '{ print $2 }')
sleep 0.3
[ "$(grep -c '^step ' "$TMP/out")" -eq "$before" ] || e2e_fail "someone still writes steps"

# --- restore ---------------------------------------------------------------
e2e_restore_verbose "$stack/$rounds" "$pid"
[ -e "/proc/$pid" ] || e2e_fail "no process $pid after restore"
grep -q "$E2E_MEMWORK" "/proc/$pid/cmdline" 2>/dev/null || e2e_fail "pid $pid is not memwork"
grep -q '^TracerPid:[[:space:]]*0$' "/proc/$pid/status" || e2e_fail "restored process is traced"
e2e_wait_for_line "$TMP/out" "^step $((last + 1)) pid $pid " 5 ||
	e2e_fail "no step $((last + 1)) after restore (last before: $last)"

# maps: the same as the source's, the restorer gone
e2e_assert_same_maps "$TMP/maps.src" "$pid"
raddr=$(sed -n 's/.*restorer at 0x\([0-9a-f]*\).*/\1/p' "$TMP/restore.err" | head -n 1)
# (the exact-maps comparison above already rules out a restorer mapping;
# when restore -v says where it put the restorer, check that address too)
[ -n "$raddr" ] || e2e_log "restore -v does not say where the restorer was"
[ -z "$raddr" ] || while read -r range _; do
	lo=$((16#${range%-*}))
	hi=$((16#${range#*-}))
	if ((lo <= 16#$raddr && 16#$raddr < hi)); then
		e2e_fail "mapping $range still covers the restorer address 0x$raddr"
	fi
done <"$TMP/maps.dst"

# signals after restore
sleep 0.3
kill -USR1 "$pid" || e2e_fail "cannot signal the restored process"
e2e_wait_for_line "$TMP/out" '^usr1 1$' 5 || e2e_fail "no 'usr1 1' after restore"
kill -USR2 "$pid"
e2e_wait_for_line "$TMP/out" '^usr2 1 altstack ok$' 5 || e2e_fail "no 'usr2 1 altstack ok' after restore"

# several whole-heap self-checks after restore (one every $CHECK_EVERY ticks)
e2e_wait_for_line "$TMP/out" "^step $((last + 5 * CHECK_EVERY)) " 30 ||
	e2e_fail "restored memwork stalled: $(tail -n 2 "$TMP/out")"
sleep 1
[ -e "/proc/$pid" ] && [ "$(_e2e_state "$pid")" != Z ] ||
	e2e_fail "restored memwork died: $(grep -a FAIL "$TMP/out")"
e2e_assert_no_fail "$TMP/out"
e2e_assert_steps_continuous "$TMP/out" $((last + 5 * CHECK_EVERY))
if grep '^step ' "$TMP/out" | grep -vq " pid $pid "; then
	e2e_fail "a step line with another pid: $(grep '^step ' "$TMP/out" | grep -v " pid $pid " | head -n 1)"
fi
n_after=$(($(grep '^step ' "$TMP/out" | tail -n 1 | awk '{ print $2 }') - last))
e2e_log "restored memwork ran $n_after ticks ($((n_after / CHECK_EVERY)) whole-heap checks) after restore"

kill -TERM "$pid"
e2e_wait_pid_gone "$pid" 10 || e2e_fail "restored memwork does not exit on SIGTERM"
echo "checkpoint/restore of memwork ok: $rounds rounds, pid $pid, steps 1..$((last + n_after))"
