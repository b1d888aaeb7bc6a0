#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/e2e/run.sh: run every tests/e2e/t-*.sh (sorted), each under a timeout,
# each logged to its own file. Prints "PASS name (Ns)", "FAIL name (Ns)"
# (then the last 30 lines of its log) or "SKIP name (reason)" (a test that
# called e2e_skip: exit status 77) per test, and last exactly one line
# "N passed, N failed, N skipped". Exits non-zero if any test failed or none ran.
#
# Environment:
#   E2E_ONLY=REGEX     run only the tests whose name (t-foo) matches REGEX
#   E2E_TIMEOUT=SECS   per-test timeout (default 600); a test can declare its
#                      own with a line "# e2e-timeout: SECS" near its top
#   E2E_LOG_DIR=DIR    where the logs go (default $FERRY_BUILD/e2e-logs)
#   FERRY_BUILD=DIR    build directory with the binaries (default <repo>/build)
#   E2E_KEEP=1         keep each test's temporary directories

# "make e2e" runs this with sh: switch to bash first.
if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FERRY_ROOT=$(cd "$here/../.." && pwd)
FERRY_BUILD=${FERRY_BUILD:-$FERRY_ROOT/build}
export FERRY_ROOT FERRY_BUILD
export PATH=$PATH:/usr/sbin:/sbin
timeout_default=${E2E_TIMEOUT:-600}
logdir=${E2E_LOG_DIR:-$FERRY_BUILD/e2e-logs}
mkdir -p "$logdir" || {
	echo "run.sh: cannot create $logdir" >&2
	exit 1
}

# Namespaces left by a test run whose shell is gone (a crash, a kill -9).
sweep_stale_netns()
{
	local ns pid

	for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }'); do
		case $ns in
		ferry-src-* | ferry-dst-* | ferry-cli-* | ferry-br-*) pid=${ns##*-} ;;
		*) continue ;;
		esac
		[[ $pid =~ ^[0-9]+$ ]] || continue
		[ -e "/proc/$pid" ] && continue
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$p" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done
}

test_timeout()
{
	local t

	t=$(head -n 20 "$1" | sed -n 's/^# *e2e-timeout: *\([0-9][0-9]*\).*/\1/p' | head -n 1)
	echo "${t:-$timeout_default}"
}

mapfile -t tests < <(printf '%s\n' "$here"/t-*.sh | LC_ALL=C sort)
pass=0
fail=0
skip=0
sweep_stale_netns

for t in "${tests[@]}"; do
	[ -f "$t" ] || continue
	name=$(basename "$t" .sh)
	if [ -n "${E2E_ONLY:-}" ] && ! [[ $name =~ $E2E_ONLY ]]; then
		continue
	fi
	log=$logdir/$name.log
	reg=$logdir/$name.registry
	rm -f "$reg"
	to=$(test_timeout "$t")
	start=$SECONDS
	# timeout signals the test's whole process group; after the grace time
	# it kills the group, itself included (the braces keep bash's "Killed"
	# notice off our output).
	{
		(cd "$FERRY_ROOT" && E2E_REGISTRY=$reg exec timeout -k 20 "$to" bash "$t") \
			>"$log" 2>&1 </dev/null
		rc=$?
	} 2>/dev/null
	dur=$((SECONDS - start))

	# A test killed before its EXIT trap ran leaves its registry open.
	if [ -f "$reg" ] && ! grep -qx done "$reg"; then
		echo "run.sh: cleaning up after $name" >>"$log"
		bash -c '. "$1" && _e2e_cleanup_registry "$2"' _ "$here/lib.sh" "$reg" \
			>>"$log" 2>&1 </dev/null
	fi
	rm -f "$reg"

	if [ $rc -eq 0 ]; then
		echo "PASS $name (${dur}s)"
		pass=$((pass + 1))
	elif [ $rc -eq 77 ]; then
		why=$(sed -n 's/^SKIP: //p' "$log" | tail -n 1)
		echo "SKIP $name (${why:-no reason given})"
		skip=$((skip + 1))
	else
		echo "FAIL $name (${dur}s)"
		case $rc in
		124 | 137) echo "    timed out after ${to}s" ;;
		*) echo "    exit status $rc" ;;
		esac
		echo "    --- last 30 lines of $log ---"
		tail -n 30 "$log" | sed 's/^/    /'
		fail=$((fail + 1))
	fi
done

sweep_stale_netns
if [ $((pass + fail + skip)) -eq 0 ]; then
	echo "run.sh: no test matched${E2E_ONLY:+ E2E_ONLY=$E2E_ONLY}" >&2
fi
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ] && [ $((pass + fail + skip)) -gt 0 ]
