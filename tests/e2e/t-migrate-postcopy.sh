#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 240
#
# Post-copy (migrate --postcopy, docs/handover.md): memwork rewrites
# scattered pages of a 64 MiB heap as fast as it can, so the final round
# finds thousands of dirty pages. With --postcopy they stay at the source
# (REMOTE: their addresses only); the destination runs the process at once
# and gets them afterwards: a fault asks the source for its page first, the
# rest is pushed (slowed by the test hook FERRY_TEST_PC_PUSH_DELAY_MS, so
# that memwork's own whole-heap checks, every 10 ticks, touch pages not
# pushed yet). Checked: pages were left at the source, some were pulled on
# demand and the rest pushed, faults waited for them, the report (JSON) says
# so, the source is gone at the end, and inside the destination memwork's
# checks of every page (index, generation, pattern) pass again and again.
#
# --postcopy=auto with a limit no freeze fits chooses post-copy too.
# Then the fault cases: the page server, then the restore, killed during
# post-copy (migrate paused there by FERRY_TEST_PAUSE_AT=postcopy). migrate
# must exit 3 (in doubt) and say so, the source stays stopped (never
# resumed: the copy at the destination has run), and the destination's copy
# is killed by the restore's guard (no process runs with pages missing).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"

e2e_need migrate pageserver restore memwork
CHECK_EVERY=10
e2e_tls_certs
e2e_netns_pair

# start: a fresh TMP, port and destination; memwork at the source
start()
{
	TMP=$(e2e_tmpdir)
	port=$(e2e_port)
	mig_start_dest "$E2E_DST_IP" netns
	e2e_start_workload memwork '^step 50 ' "$E2E_MEMWORK" --mem 64 --dirty 512 --scatter \
		--tick-ms 2 --check-every $CHECK_EVERY --out "$TMP/out" --pidfile "$TMP/pid"
}

# jnum FIELD: a number from migrate's post-copy JSON line
jnum()
{
	sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" <<<"$pcline"
}

# --- post-copy to the end ---
start
mig_run e2e_in_src env FERRY_TEST_PC_PUSH_DELAY_MS=10 "$MIGRATE" --json --postcopy \
	--max-rounds 2 --to "$E2E_DST_IP:$port" "${CLI_TLS[@]}" "$pid"
mig_check_report $((32 * 1024 * 1024))
pcline=$(grep '"event":"postcopy"' "$TMP/migrate.json")
[ -n "$pcline" ] || e2e_fail "no post-copy report: $(cat "$TMP/migrate.json")"
remote=$(jnum pages_remote)
pulled=$(jnum pages_pulled)
pushed=$(jnum pages_pushed)
requests=$(jnum requests)
faults=$(jnum faults)
dest=$(jnum dest_pages)
e2e_log "post-copy: $pcline"
[ "${remote:-0}" -gt 1000 ] || e2e_fail "only '$remote' pages left at the source: $pcline"
[ "${pulled:-0}" -gt 0 ] && [ "${requests:-0}" -gt 0 ] ||
	e2e_fail "no page was pulled on demand: $pcline"
[ "${pushed:-0}" -gt 0 ] || e2e_fail "no page was pushed: $pcline"
[ "${faults:-0}" -gt 0 ] || e2e_fail "no fault waited for the source: $pcline"
[ $((pulled + pushed)) -ge "$remote" ] ||
	e2e_fail "$remote pages were left, only $((pulled + pushed)) went: $pcline"
[ "${dest:-0}" -gt 0 ] && [ "$dest" -le "$remote" ] || e2e_fail "copied in there: '$dest': $pcline"
grep -q '^post-copy: [0-9]* pages left at the source at the freeze' "$TMP/migrate.json" &&
	e2e_fail "--json printed the text report too"
grep -q "migrate: post-copy: pid $pid runs at .*SIGINT, SIGTERM and SIGHUP are ignored" \
	"$TMP/migrate.err" || e2e_fail "migrate did not say it ignores stop signals during post-copy"
grep -q "post-copy: $remote pages still at the source when it ran" "$TMP/dest.log" ||
	e2e_fail "restore did not see the $remote REMOTE pages: $(grep -a post-copy "$TMP/dest.log")"
grep -q "^post-copy: [0-9]* pages came from the source, [0-9]* faults waited for them" \
	"$TMP/dest.log" || e2e_fail "restore did not report the post-copy's end"
grep -q "post-copy of $id complete" "$TMP/dest.log" || e2e_fail "the page server did not log the end"
grep -q 'session .*post-copy' "$TMP/dest.log" || e2e_fail "the page server did not take post-copy"
# the stack keeps the final round as sent: its REMOTE runs, which no view restores from disk
top=$TMP/dst/$id/$rounds
"$FERRY_BUILD/ferry-show" decode "$top/pagemap-$pid.img" >"$TMP/pagemap.json" ||
	e2e_fail "ferry-show decode fails on the final round's pagemap"
grep -Eq '"flags": *8($|[^0-9])' "$TMP/pagemap.json" ||
	e2e_fail "the final round's pagemap has no REMOTE run"
"$FERRY_BUILD/ferry-show" summary "$TMP/dst/$id" >"$TMP/summary" 2>&1 ||
	e2e_fail "ferry-show summary fails on a post-copied stack: $(tail -n 2 "$TMP/summary")"
grep -q "top final (post-copy: pages left at the source, not restorable from disk)" \
	"$TMP/summary" && grep -q "pid $pid .* $remote REMOTE (post-copy" "$TMP/summary" ||
	e2e_fail "ferry-show summary does not count the $remote REMOTE pages: $(cat "$TMP/summary")"
# a REMOTE page (the first run of flags 8 in the pagemap) is named so, never read from disk
raddr=$(awk '/"vaddr"/ { v = $2; gsub(/[^0-9]/, "", v) } /"flags": 8/ { print v; exit }' \
	"$TMP/pagemap.json")
"$FERRY_BUILD/ferry-show" page "$TMP/dst/$id" "$pid" "$raddr" >"$TMP/page" 2>&1 ||
	e2e_fail "ferry-show page: $(cat "$TMP/page")"
grep -q 'REMOTE in round .*left at the source at the freeze (post-copy), never stored' "$TMP/page" ||
	e2e_fail "ferry-show page of a REMOTE page: $(cat "$TMP/page")"

# the destination runs it; its whole-heap checks pass after every page came
mig_check_restored memwork " pid $pid "
e2e_wait_for_line "$TMP/out" "^step $((last + 5 * CHECK_EVERY)) pid $pid " 60 ||
	e2e_fail "restored memwork stalled: $(tail -n 1 "$TMP/out")"
e2e_assert_no_fail "$TMP/out"
e2e_assert_steps_continuous "$TMP/out" $((last + 5 * CHECK_EVERY))
grep -q 'uf' <(in_dest grep VmFlags "/proc/$pid/smaps") &&
	e2e_fail "a VMA is still registered with userfaultfd after post-copy"
echo "migrate postcopy ok: $remote pages left at the source, $pulled pulled ($requests requests), $pushed pushed, $faults faults waited"

# --- --postcopy=auto: only when the downtime does not fit the limit (1 ms never does) ---
start
# (the text report this time)
mig_run e2e_in_src "$MIGRATE" --postcopy=auto --downtime-limit 1 --max-rounds 2 \
	--to "$E2E_DST_IP:$port" "${CLI_TLS[@]}" "$pid"
grep -q 'freezing with post-copy (--postcopy=auto)' "$TMP/migrate.err" ||
	e2e_fail "--postcopy=auto did not say it chose post-copy: $(tail -n 3 "$TMP/migrate.err")"
pcline=$(grep -E '^post-copy: [0-9]+ pages left at the source at the freeze; in [0-9.]+ ms after the hand-over [0-9]+ pulled on demand \([0-9]+ requests\) and [0-9]+ pushed; [0-9]+ copied in at the destination, [0-9]+ faults waited for them$' "$TMP/migrate.json")
[ -n "$pcline" ] || e2e_fail "no post-copy report line: $(cat "$TMP/migrate.json")"
[ "$(sed 's/^post-copy: \([0-9]*\) .*/\1/' <<<"$pcline")" -gt 0 ] ||
	e2e_fail "--postcopy=auto left no page at the source: $pcline"
mig_check_restored memwork " pid $pid "
e2e_wait_for_line "$TMP/out" "^step $((last + 3 * CHECK_EVERY)) pid $pid " 60 ||
	e2e_fail "restored memwork stalled: $(tail -n 1 "$TMP/out")"
e2e_assert_no_fail "$TMP/out"
echo "migrate postcopy=auto ok: $pcline"

# --- the page server killed during post-copy ---
start
e2e_in_src env FERRY_TEST_PAUSE_AT=postcopy FERRY_TEST_PAUSE_S=8 "$MIGRATE" --json --postcopy \
	--max-rounds 2 --to "$E2E_DST_IP:$port" "${CLI_TLS[@]}" "$pid" \
	>"$TMP/migrate.json" 2>"$TMP/migrate.err" &
mpid=$!
e2e_wait_for_line "$TMP/migrate.err" '^migrate: paused at postcopy' 60 ||
	e2e_fail "migrate did not reach post-copy: $(tail -n 3 "$TMP/migrate.err")"
ps_pid=$(pgrep -P "$nsinit" -x pageserver | head -n 1)
[ -n "$ps_pid" ] || e2e_fail "no page server to kill"
in_dest test -e "/proc/$pid" || e2e_fail "the destination does not run pid $pid during post-copy"
kill -KILL "$ps_pid"
rc=0
wait "$mpid" || rc=$?
cat "$TMP/migrate.err" >&2
[ "$rc" -eq 3 ] || e2e_fail "migrate exited $rc after the page server died in post-copy (want 3)"
grep -q "IN DOUBT (post-copy): pid $pid ran at .*must not be resumed" "$TMP/migrate.err" ||
	e2e_fail "migrate did not say what happened: $(tail -n 2 "$TMP/migrate.err")"
grep -q '"event":"done"' "$TMP/migrate.json" && e2e_fail "migrate reported the migration done"
# the source: there, stopped, and it stays so
[ -e "/proc/$pid" ] || e2e_fail "the source $pid is gone"
for ((i = 0; i < 10; i++)); do
	state=$(awk '{ print $3 }' "/proc/$pid/stat")
	[ "$state" = T ] || e2e_fail "the source $pid is in state $state, not stopped"
	sleep 0.1
done
steps=$(grep -c '^step ' "$TMP/out")
sleep 1
[ "$(grep -c '^step ' "$TMP/out")" = "$steps" ] || e2e_fail "the source $pid made progress"
# the destination's copy: killed by the guard once the pages could no longer come
for ((i = 0; i < 150; i++)); do
	in_dest test -e "/proc/$pid" || break
	sleep 0.1
done
in_dest test -e "/proc/$pid" && e2e_fail "the destination's copy of $pid runs on with pages missing"
kill -KILL "$pid"
echo "migrate postcopy fault ok: exit 3, the source stopped, the destination's copy killed"

# --- the restore killed during post-copy: the page server says so, the same outcome ---
start
e2e_in_src env FERRY_TEST_PAUSE_AT=postcopy FERRY_TEST_PAUSE_S=8 "$MIGRATE" --postcopy \
	--max-rounds 2 --to "$E2E_DST_IP:$port" "${CLI_TLS[@]}" "$pid" \
	>"$TMP/migrate.out" 2>"$TMP/migrate.err" &
mpid=$!
e2e_wait_for_line "$TMP/migrate.err" '^migrate: paused at postcopy' 60 ||
	e2e_fail "migrate did not reach post-copy: $(tail -n 3 "$TMP/migrate.err")"
# the restore (not its guard, a child of it)
victim=
for r in $(in_dest pgrep -x restore); do
	[ "$(in_dest ps -o comm= -p "$(in_dest ps -o ppid= -p "$r" | tr -d ' ')")" = restore ] && continue
	victim=$r
done
[ -n "$victim" ] || e2e_fail "no restore running in the destination namespace"
in_dest kill -KILL "$victim"
rc=0
wait "$mpid" || rc=$?
cat "$TMP/migrate.err" >&2
[ "$rc" -eq 3 ] || e2e_fail "migrate exited $rc after the restore died in post-copy (want 3)"
grep -q "post-copy failed: post-copy: the destination failed: restore killed by signal 9" \
	"$TMP/migrate.err" || e2e_fail "migrate did not name the restore's death: $(cat "$TMP/migrate.err")"
grep -q "IN DOUBT (post-copy): pid $pid" "$TMP/migrate.err" || e2e_fail "no in-doubt line"
[ "$(awk '{ print $3 }' "/proc/$pid/stat")" = T ] || e2e_fail "the source $pid is not stopped"
for ((i = 0; i < 150; i++)); do
	in_dest test -e "/proc/$pid" || break
	sleep 0.1
done
in_dest test -e "/proc/$pid" && e2e_fail "the destination's copy of $pid runs on after its restore died"
grep -q "post-copy of .* FAILED after the process ran" "$TMP/dest.log" ||
	e2e_fail "the page server did not log the failed post-copy"
kill -KILL "$pid"
echo "migrate postcopy restore-death ok: exit 3, the source stopped, the destination's copy killed"
