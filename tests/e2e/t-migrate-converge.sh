#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 300
#
# The downtime limit and auto-converge (correctness, not timing). One
# memwork source, a hot writer (64 MiB rewritten every tick, plus scattered
# pages), migrated over TLS to page servers in their own PID namespaces
# with --downtime-limit 1: a limit no migration can meet (the final state
# alone is predicted at more), so the pre-copy never freezes early and the
# throttle engages once the dirty set outruns the link.
#   a. --over-limit fail: migrate exits 1 naming the limit; the source runs
#      on untouched (not traced, same fds and mappings, self-checks pass).
#   b. SIGTERM to migrate once a round ran throttled (JSON throttle_pct > 0):
#      the migration is abandoned, and the throttle is gone from the source
#      (the duty cycle is a ptrace stop: not traced means not throttled; it
#      steps on at its own pace). b2: the same when the page server is
#      SIGKILLed instead (a failing round, rollback; exit status 5, the peer's).
#   c. the default (--over-limit freeze): some round runs with a throttle,
#      every round line reports a prediction and the throttle, the final one
#      says it froze over the limit, and the process runs at the destination
#      with its memory intact (the whole heap checked against its table).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"

e2e_need migrate pageserver restore memwork
TMP=$(e2e_tmpdir)
CHECK_EVERY=20
e2e_tls_certs
export C

# dest NAME PORT [OPTION...]: a page server in a PID namespace of its own.
dest()
{
	local name=$1 port=$2

	shift 2
	mkdir -p "$TMP/$name.images"
	e2e_start_bg "$name" unshare --pid --fork --mount-proc --kill-child -- \
		bash -c 'e2e_pidns_pageserver "$@"' _ "127.0.0.1:$port" "$TMP/$name.images" "$@"
	e2e_wait_port "$port" 10 || e2e_fail "$name: pageserver does not listen"
}

fds()
{
	local f

	for f in /proc/$1/fd/*; do
		printf '%s %s\n' "${f##*/}" "$(readlink "$f")"
	done | sort
}

# untouched WHAT: the source runs on, untraced, with its own fds and
# mappings only, and passes two more whole-heap checks.
untouched()
{
	local s n

	[ -e "/proc/$pid" ] || e2e_fail "$1: the source is gone"
	s=$(_e2e_state "$pid")
	[ "$s" = S ] || [ "$s" = R ] || e2e_fail "$1: source in state $s"
	grep -q '^TracerPid:[[:space:]]*0$' "/proc/$pid/status" ||
		e2e_fail "$1: source still traced: $(grep TracerPid "/proc/$pid/status")"
	diff "$TMP/fds.src" <(fds "$pid") >&2 || e2e_fail "$1: the source's fds changed"
	diff "$TMP/maps.src" "/proc/$pid/maps" >&2 || e2e_fail "$1: the source's mappings changed"
	n=$(grep '^step ' "$TMP/out" | tail -n 1 | awk '{ print $2 }')
	e2e_wait_for_line "$TMP/out" "^step $((n + 2 * CHECK_EVERY + 1)) pid $pid " 30 ||
		e2e_fail "$1: the source stalled: $(tail -n 1 "$TMP/out")"
	e2e_assert_no_fail "$TMP/out"
	e2e_assert_steps_continuous "$TMP/out" "$n"
	e2e_log "$1: source untouched"
}

# jnum LINE NAME: a numeric field of a JSON line.
jnum() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" <<<"$1"; }

e2e_start_workload memwork '^step 50 ' "$E2E_MEMWORK" --mem 256 --hot 16384 --dirty 64 --scatter \
	--tick-ms 5 --check-every $CHECK_EVERY --out "$TMP/out" --pidfile "$TMP/pid"
fds "$pid" >"$TMP/fds.src"
cat "/proc/$pid/maps" >"$TMP/maps.src"

# --- a. --over-limit fail ---------------------------------------------------------
P1=$(e2e_port)
dest d1 "$P1"
timeout -k 5 120 "$MIGRATE" --json --to "127.0.0.1:$P1" "${CLI_TLS[@]}" --downtime-limit 1 \
	--max-rounds 3 --over-limit fail "$pid" >"$TMP/a.json" 2>"$TMP/a.err"
rc=$?
cat "$TMP/a.json" "$TMP/a.err" >&2
[ $rc -eq 1 ] || e2e_fail "a. migrate --over-limit fail exited $rc, not 1"
grep -q 'does not fit --downtime-limit 1 ms' "$TMP/a.err" || e2e_fail "a. no reason naming the limit"
[ "$(grep -c '"event":"round"' "$TMP/a.json")" -eq 3 ] || e2e_fail "a. not 3 pre-copy rounds"
grep -q '"final":true' "$TMP/a.json" && e2e_fail "a. a final round ran"
grep -q '"event":"done"' "$TMP/a.json" && e2e_fail "a. migrate reported done"
untouched "a. over the limit, --over-limit fail"

# throttled NAME PORT: migrate to PORT in the background (no round cap, so
# it goes on throttled) until a round has run throttled; sets mpid.
throttled()
{
	"$MIGRATE" --json --to "127.0.0.1:$2" "${CLI_TLS[@]}" --downtime-limit 1 --max-rounds 1000 \
		"$pid" >"$TMP/$1.json" 2>"$TMP/$1.err" &
	mpid=$!
	e2e_wait_for_line "$TMP/$1.json" '"throttle_pct":[1-9]' 90 ||
		e2e_fail "$1. no throttled round: $(tail -n 2 "$TMP/$1.json")"
}

# failed NAME WHY [RC]: the migrate of throttled NAME ends (30 s), exit
# status RC (default 1; 5 when the page server failed: README, Exit status).
failed()
{
	local rc

	e2e_wait_pid_gone "$mpid" 30 || e2e_fail "$1. migrate did not end after $2"
	wait "$mpid"
	rc=$?
	cat "$TMP/$1.json" "$TMP/$1.err" >&2
	[ $rc -eq "${3:-1}" ] || e2e_fail "$1. migrate exited $rc after $2, not ${3:-1}"
}

# --- b. SIGTERM while throttled -------------------------------------------------------
throttled b "$P1"
kill -TERM "$mpid"
failed b SIGTERM
grep -q 'interrupted by signal' "$TMP/b.err" || e2e_fail "b. no 'interrupted' reason"
untouched "b. SIGTERM in a throttled migration"

# --- b2. the page server killed while throttled ----------------------------------------
P2=$(e2e_port)
dest d2 "$P2"
throttled b2 "$P2"
ps2=$(pgrep -f -- "--listen 127.0.0.1:$P2 " | head -n 1)
[ -n "$ps2" ] || e2e_fail "b2. no page server process"
kill -KILL "$ps2"
failed b2 "its page server died" 5
untouched "b2. page server killed in a throttled migration"

# --- c. throttled to the end, frozen anyway, restored intact ---------------------------
port=$(e2e_port)
mig_start_dest 127.0.0.1
mig_run "$MIGRATE" --json --to "127.0.0.1:$port" "${CLI_TLS[@]}" --downtime-limit 1 \
	--max-rounds 8 "$pid"
mig_check_report $((64 * 1024 * 1024))
mig_check_stack
n=0
while read -r l; do
	case $l in *'"final":true'*) continue ;; esac
	[ "$(jnum "$l" round)" = 1 ] && continue
	[ -n "$(jnum "$l" predicted_downtime_ms)" ] || e2e_fail "c. a round without a prediction: $l"
	t=$(jnum "$l" throttle_pct)
	[ -n "$t" ] || e2e_fail "c. a round without throttle_pct: $l"
	[ "$t" -gt 0 ] && n=$((n + 1))
done < <(grep '"event":"round"' "$TMP/migrate.json")
[ $n -gt 0 ] || e2e_fail "c. auto-converge never engaged"
grep '"final":true' "$TMP/migrate.json" | grep -q '"froze_over_limit":true' ||
	e2e_fail "c. the final round does not say it froze over the limit"
grep '"event":"done"' "$TMP/migrate.json" | grep -q '"downtime_limit_ms":1,' ||
	e2e_fail "c. the done line does not give the limit"
mig_check_restored memwork " pid $pid "
e2e_wait_for_line "$TMP/out" "^step $((last + 3 * CHECK_EVERY)) pid $pid " 30 ||
	e2e_fail "c. restored memwork stalled: $(tail -n 1 "$TMP/out")"
in_dest test -e "/proc/$pid" || e2e_fail "c. restored memwork died: $(grep -a FAIL "$TMP/out")"
e2e_assert_no_fail "$TMP/out"
e2e_assert_steps_continuous "$TMP/out" $((last + 3 * CHECK_EVERY))
echo "downtime limit and auto-converge ok: $n throttled rounds, $rounds rounds, pid $pid restored"
