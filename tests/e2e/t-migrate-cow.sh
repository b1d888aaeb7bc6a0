#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 300
#
# Memory shared copy-on-write by a parent and its children comes back
# shared. treework --cow 64: a parent fills 64 MiB and forks two children
# that each change a few pages after the fork (zeroed, dropped, one part
# unmapped and mapped again), so nearly all of it is shared three ways.
# Checkpointed and restored locally, then migrated over TLS to a page
# server (streaming restore): every process checks every page of its own
# from inside (SIGUSR1), then each writes one page more and checks again
# (a page wrongly shared between them would show), no FAIL; and the tree's
# total Pss stays near the source's (~64 MiB), not three copies (~192 MiB).
# A third run migrates to a destination whose prefill is slow, so the
# final cuts the first round short and fills the rest itself: the same checks.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"

e2e_need migrate pageserver restore treework
TMP=$(e2e_tmpdir)

# cow_start NAME: a --cow tree writing $TMP/NAME.out; sets root, kids.
cow_start()
{
	e2e_start_bg "$1" "$TREEWORK" --cow 64 --tick-ms 10 --out "$TMP/$1.out" \
		--pidfile "$TMP/$1.pid"
	e2e_wait_file "$TMP/$1.pid" 20 || e2e_fail "$1: treework --cow never wrote its pidfile"
	root=$(cat "$TMP/$1.pid")
	for r in 0 1 2; do
		e2e_wait_for_line "$TMP/$1.out" "^cow $r ready " 20 || e2e_fail "$1: cow $r not ready"
	done
	kids=$(awk '/^cow [12] ready / { print $4 }' "$TMP/$1.out")
	[ "$(echo "$kids" | wc -w)" -eq 2 ] || e2e_fail "$1: not two children: $kids"
	for p in $kids; do
		e2e_track_pid "$p"
	done
}

# cow_check OUT N [RUN...]: SIGUSR1 to the tree (kill through RUN), each of
# the three says "cow R ok N".
cow_check()
{
	local out=$1 n=$2 r

	shift 2
	"$@" kill -USR1 $root $kids || e2e_fail "cannot signal the tree"
	for r in 0 1 2; do
		e2e_wait_for_line "$out" "^cow $r ok $n\$" 20 ||
			e2e_fail "cow $r did not pass check $n: $(tail -n 3 "$out")"
	done
	e2e_assert_no_fail "$out"
}

# pss_sum [RUN...]: pss = the tree's Pss in kB (smaps_rollup read through RUN).
pss_sum()
{
	local p v

	pss=0
	for p in $root $kids; do
		v=$("$@" awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup")
		e2e_log "pid $p: Pss $v kB"
		[ -n "$v" ] || e2e_fail "no Pss for pid $p"
		pss=$((pss + v))
	done
}

# cow_after OUT SRC_PSS [RUN...]: restored: checked, compared, touched,
# checked; dst = the tree's Pss restored.
cow_after()
{
	local out=$1 src=$2

	shift 2
	cow_check "$out" 2 "$@"
	pss_sum "$@"
	dst=$pss
	e2e_log "tree Pss: $src kB at the source, $dst kB restored"
	# three private copies would be over 196608 kB
	[ "$dst" -le $((src + 8192)) ] && [ "$dst" -lt 131072 ] ||
		e2e_fail "the tree's memory is not shared: Pss $dst kB restored, $src kB at the source"
	"$@" kill -USR2 $root $kids || e2e_fail "cannot signal the tree"
	sleep 0.2
	cow_check "$out" 3 "$@"
}

# --- checkpoint and restore ------------------------------------------------------
cow_start local
cow_check "$TMP/local.out" 1
pss_sum
src=$pss
pids="$root $kids"
e2e_checkpoint "$TMP/img" "$root" "the cow tree"
for p in $pids; do
	e2e_wait_pid_gone "$p" 10 || e2e_fail "source process $p still there"
done
e2e_restore "$TMP/img" "$root" "the cow tree"
for p in $pids; do
	[ -e "/proc/$p" ] || e2e_fail "pid $p not restored"
done
cow_after "$TMP/local.out" "$src"
echo "checkpoint/restore: tree Pss $src kB at the source, $dst kB restored, every page right"
kill -KILL $pids 2>/dev/null

# cow_migrate NAME: a --cow tree NAME migrated to the page server listening
# on $port (started by the caller), checked there; sets src, dst, pids.
cow_migrate()
{
	local p

	cow_start "$1"
	cow_check "$TMP/$1.out" 1
	pss_sum
	src=$pss
	pids="$root $kids"
	mig_run "$MIGRATE" --json --small-dirty 0 --max-rounds 4 --to "127.0.0.1:$port" \
		"${CLI_TLS[@]}" "$root"
	for p in $pids; do
		e2e_wait_pid_gone "$p" 10 || e2e_fail "source process $p still there"
		in_dest test -e "/proc/$p" || e2e_fail "no pid $p at the destination"
	done
	cow_after "$TMP/$1.out" "$src" in_dest
}

# --- a migration to a page server (streaming restore) ---------------------------
e2e_tls_certs
port=$(e2e_port)
mig_start_dest 127.0.0.1
cow_migrate live
echo "migration: tree Pss $src kB at the source, $dst kB at the destination, every page right"

# --- the same to a slow destination: the final cuts the first prefill short ---
# (FERRY_TEST_PREFILL_DELAY_MS: 300 ms per 16 MiB prefilled), so the final
# fills a tree whose first round is half in, children forked or not yet:
# what it writes again over memory already shared must stay shared.
in_dest kill -KILL $pids 2>/dev/null
TMP=$(e2e_tmpdir)
port=$(e2e_port)
export FERRY_TEST_PREFILL_DELAY_MS=300
mig_start_dest 127.0.0.1
unset FERRY_TEST_PREFILL_DELAY_MS
cow_migrate slow
grep -q 'cut short' "$TMP/dest.log" || e2e_fail "the slow destination's first prefill was not cut short"
echo "migration, first prefill cut short: tree Pss $src kB at the source, $dst kB at the destination, every page right"
