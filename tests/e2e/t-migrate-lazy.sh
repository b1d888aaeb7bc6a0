#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 240
#
# The lazy fill (restore --lazy-fill, the page server's default): a
# destination whose prefill is slow (test hook FERRY_TEST_PREFILL_DELAY_MS:
# each 16 MiB of a pre-copy round's pages waits 1 s, so round 1 of 256 MiB
# would take 16 s) gets the final round long before the prefill is done.
# The final must not wait for it: the round being prefilled is cut short,
# the pages still missing are registered with userfaultfd, the process runs
# at once, and the restore serves its faults while it fills the rest in the
# background (slowed too, FERRY_TEST_LAZY_DELAY_MS, so that memwork's own
# checks touch pages before the filler gets there). Checked: the freeze was
# short beside the fill, faults were served, the fill completed, a heap
# moved by mremap and a child forked during the fill check out, and inside
# the destination memwork's check of its whole heap (every page's index,
# generation and pattern; discarded pages zero) passes again and again.
# Then a second migration whose restore is SIGKILLed during the fill: the
# guard must kill the restored process (it would read zeros otherwise). And
# a third where no userfaultfd can be made (FERRY_TEST_NO_UFFD=1: features no
# kernel has): the pages left are filled before the process runs, and its
# heap checks out.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"

e2e_need migrate pageserver restore memwork
CHECK_EVERY=20
e2e_tls_certs
e2e_netns_pair

# start VAR=VALUE... -- MEMWORK_OPTION...: a fresh TMP and port, the
# destination with the test hooks VAR=VALUE in its environment, memwork
# (256 MiB unless the options say otherwise) at the source
start()
{
	local -a env=()

	while [ "$1" != -- ]; do
		env+=("$1")
		shift
	done
	shift
	TMP=$(e2e_tmpdir)
	port=$(e2e_port)
	export "${env[@]}"
	mig_start_dest "$E2E_DST_IP" netns
	unset "${env[@]%%=*}"
	e2e_start_workload memwork '^step 50 ' "$E2E_MEMWORK" --mem 256 --dirty 64 --tick-ms 5 \
		--check-every $CHECK_EVERY --out "$TMP/out" --pidfile "$TMP/pid" "$@"
}

# no periodic whole-heap check (it would pull every page in before the
# fork): each SIGUSR1 has a forked child check the heap, then the heap moves
# and is checked at its new place; every page is also checked before it is
# rewritten
start FERRY_TEST_PREFILL_DELAY_MS=1000 FERRY_TEST_LAZY_DELAY_MS=20 -- --discard 2 --fork-on-usr1 \
	--remap-on-usr1 --check-every 0
# not mig_run: the page server --once exits only once the fill is over
migrate_now()
{
	e2e_in_src "$MIGRATE" --json --max-rounds 6 --to "$E2E_DST_IP:$port" "${CLI_TLS[@]}" "$pid" \
		>"$TMP/migrate.json" 2>"$TMP/migrate.err" || e2e_fail "migrate: $(tail -n 1 "$TMP/migrate.err")"
}
migrate_now
e2e_wait_pid_gone "$pid" 10 || e2e_fail "source $pid still there after the migration"
in_dest kill -USR1 "$pid"
mig_check_report $((64 * 1024 * 1024))

# the final did not wait for the prefill: round 1 was cut short (or later
# rounds skipped), and what was left was filled after the process ran
grep -qE 'round [0-9]+ (cut short|not prefilled)' "$TMP/dest.log" ||
	e2e_fail "no prefill was cut short: the destination was not behind"
grep -q 'restore: running; the lazy fill goes on' "$TMP/dest.log" ||
	e2e_fail "the final restore did not use the lazy fill"
left=$(sed -n 's/^lazy fill: \([0-9]*\) pages left when it ran$/\1/p' "$TMP/dest.log")
[ -n "$left" ] && [ "$left" -gt 16384 ] || e2e_fail "lazy fill: '$left' pages left (want > 64 MiB)"
frozen=$(grep '"event":"done"' "$TMP/migrate.json" | sed -n 's/.*"frozen_ms":\([0-9]*\).*/\1/p')

# --- the destination runs it; during the fill a child it forks checks the
# heap it got, then it moves its heap (mremap) and checks it at the new place ---
mig_check_restored memwork " pid $pid "
e2e_wait_for_line "$TMP/out" '^fork check ok' 60 ||
	e2e_fail "no fork check: $(grep -a -E 'FAIL|usr1' "$TMP/out" | tail -n 2)"
e2e_wait_for_line "$TMP/out" '^remap ok ' 60 ||
	e2e_fail "no remap: $(grep -a -E 'FAIL|usr1' "$TMP/out" | tail -n 2)"
e2e_wait_for_line "$TMP/dest.log" '^lazy fill: [0-9]* pages copied' 60 ||
	e2e_fail "the lazy fill did not complete: $(grep -i lazy "$TMP/dest.log" | tail -n 3)"
fill=$(grep -o '^lazy fill: [0-9]* pages copied in [0-9.]* ms.*' "$TMP/dest.log")
faults=$(sed -n 's/.*ms after the process ran, \([0-9]*\) faults served.*/\1/p' <<<"$fill")
child=$(sed -n 's/.*forks during it (\([0-9]*\) pages copied into the children)$/\1/p' <<<"$fill")
fill_ms=$(sed -n 's/.*pages copied in \([0-9]*\)[0-9.]* ms.*/\1/p' <<<"$fill")
e2e_log "frozen ${frozen} ms; $left pages left at the final; $fill"
[ "${faults:-0}" -gt 0 ] || e2e_fail "no fault served during the fill: $fill"
# the child's own faults were served from its own userfaultfd
[ "${child:-0}" -ge 1000 ] || e2e_fail "the child forked during the fill got ${child:-no} pages: $fill"
# the freeze did not wait for the fill (which the hook makes take seconds)
[ "$frozen" -lt "$fill_ms" ] || e2e_fail "frozen $frozen ms, not less than the fill's $fill_ms ms"
e2e_wait_for_line "$TMP/dest.log" '^pageserver exited' 30 || e2e_fail "pageserver --once did not exit"
grep -qx 'pageserver exited 0' "$TMP/dest.log" || e2e_fail "$(grep '^pageserver exited' "$TMP/dest.log")"
grep -q 'uf' <(in_dest grep VmFlags "/proc/$pid/smaps") &&
	e2e_fail "a VMA is still registered with userfaultfd after the fill"
# after the fill: the whole heap again, in a child and moved
in_dest kill -USR1 "$pid"
for ((i = 0; i < 600; i++)); do
	[ "$(grep -c '^remap ok ' "$TMP/out")" = 2 ] && break
	grep -q '^FAIL' "$TMP/out" && break
	sleep 0.1
done
[ "$(grep -c '^fork check ok' "$TMP/out")" = 2 ] && [ "$(grep -c '^remap ok ' "$TMP/out")" = 2 ] ||
	e2e_fail "the second heap checks did not come: $(grep -a -v '^step' "$TMP/out" | tail -n 3)"
last=$(grep -c '^step ' "$TMP/out")
e2e_wait_for_line "$TMP/out" "^step $((last + 200)) pid $pid " 60 ||
	e2e_fail "restored memwork stalled: $(tail -n 1 "$TMP/out")"
in_dest test -e "/proc/$pid" || e2e_fail "restored memwork died: $(grep -a FAIL "$TMP/out")"
e2e_assert_no_fail "$TMP/out"
e2e_assert_steps_continuous "$TMP/out" $((last + 200))
echo "migrate lazy ok: frozen $frozen ms, $left pages left, $faults faults served; a fork and an mremap during the fill, the heap checked 4 times after"


# --- restore killed during the fill: the guard kills the restored process ---
start FERRY_TEST_PREFILL_DELAY_MS=1000 FERRY_TEST_LAZY_DELAY_MS=50 --
migrate_now
grep -q 'restore: running; the lazy fill goes on' "$TMP/dest.log" ||
	e2e_fail "second migration: no lazy fill"
e2e_wait_pid_gone "$pid" 10 || e2e_fail "source $pid still there after the migration"
in_dest test -e "/proc/$pid" || e2e_fail "no pid $pid in the destination namespace"
# the restore (not its guard, a child of it that leads its own session)
victim=
for r in $(in_dest pgrep -x restore); do
	[ "$(in_dest ps -o comm= -p "$(in_dest ps -o ppid= -p "$r" | tr -d ' ')")" = restore ] && continue
	victim=$r
done
[ -n "$victim" ] || e2e_fail "no restore running in the destination namespace"
grep -q '^lazy fill: [0-9]* pages copied' "$TMP/dest.log" &&
	e2e_fail "the fill ended before the kill: nothing tested"
in_dest kill -KILL "$victim"
for ((i = 0; i < 100; i++)); do
	in_dest test -e "/proc/$pid" || break
	sleep 0.1
done
in_dest test -e "/proc/$pid" && e2e_fail "restore was killed during the fill, the process runs on"
grep -q "restore died before the fill was complete: killed pid $pid" "$TMP/dest.log" ||
	e2e_fail "the guard did not say it killed pid $pid: $(grep -i lazy "$TMP/dest.log" | tail -n 3)"
e2e_log "restore killed during the fill: the guard killed pid $pid"
echo "migrate lazy guard ok"

# --- no userfaultfd: the missing pages are filled before it runs ---
start FERRY_TEST_PREFILL_DELAY_MS=1000 FERRY_TEST_NO_UFFD=1 -- --mem 128 --discard 2
mig_run e2e_in_src "$MIGRATE" --json --max-rounds 6 --to "$E2E_DST_IP:$port" "${CLI_TLS[@]}" "$pid"
grep -qE 'round [0-9]+ (cut short|not prefilled)' "$TMP/dest.log" ||
	e2e_fail "no userfaultfd: the destination was not behind"
grep -q "no userfaultfd: the pages left are filled before it runs" "$TMP/dest.log" ||
	e2e_fail "no userfaultfd: no fallback said"
grep -q 'the lazy fill goes on' "$TMP/dest.log" && e2e_fail "no userfaultfd, yet a lazy fill ran"
mig_check_restored memwork " pid $pid "
in_dest ls -l "/proc/$pid/fd" | grep -q userfaultfd && e2e_fail "a userfaultfd fd was left in the process"
e2e_wait_for_line "$TMP/out" "^step $((last + 3 * CHECK_EVERY)) pid $pid " 60 ||
	e2e_fail "restored memwork stalled: $(tail -n 1 "$TMP/out")"
e2e_assert_no_fail "$TMP/out"
echo "migrate lazy without userfaultfd ok"
