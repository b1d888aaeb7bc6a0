#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/bench/run.sh ("make bench"): first this machine's ceilings
# (build/tests/bench/ceilings), then every other tests/bench/*.sh in name
# order; each prints its own result lines. Exits non-zero if any failed.
#
# Environment:
#   FERRY_BUILD=DIR     build directory (default <repo>/build)
#   BENCH_JSON=1        JSON lines instead of text (passed on as --json)
#   BENCH_SIZE=MIB      size for the ceilings (default: theirs, 1024)
#   BENCH_DISK=DIR      also measure disk writes into DIR
#   BENCH_ONLY=REGEX    run only the scripts whose name matches (ceilings included)
#   BENCH_QUICK=1       a smoke run (small sizes, one run each): checks that
#                       every benchmark works; its figures mean nothing

if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
FERRY_ROOT=$(cd "$here/../.." && pwd)
FERRY_BUILD=${FERRY_BUILD:-$FERRY_ROOT/build}
export FERRY_ROOT FERRY_BUILD
export PATH=$PATH:/usr/sbin:/sbin

failed=0
only()
{
	[ -z "${BENCH_ONLY:-}" ] || [[ $1 =~ $BENCH_ONLY ]]
}

# Say what else is running: on 2 cores a busy neighbour halves a figure
# (docs/kernel-notes.md, trap 12 'two cores'). Busy = over 5% of a CPU during half a second.
busy=$(top -b -n 2 -d 0.5 -w 200 2>/dev/null | awk '
	/^top -/ { frame++ }
	frame == 2 && /^ *[0-9]+ / && $9 + 0 >= 5 && $12 != "top" {
		printf "%s%s %s%%", (n++ ? ", " : ""), $12, $9
	}')
load=$(cut -d' ' -f1-3 /proc/loadavg)
if [ -n "${BENCH_JSON:-}" ]; then
	printf '{"bench":"run","date":"%s","cpus":%d,"load":"%s","busy":"%s"}\n' \
		"$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(nproc)" "$load" "${busy:-none}"
else
	echo "# bench: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, load $load," \
		"other busy processes: ${busy:-none}"
fi

# The ceilings go to a file as well: migrate.sh compares round 1 with the
# slowest of them (BENCH_CEILINGS).
BENCH_CEILINGS=$(mktemp /tmp/ferry-ceilings.XXXXXX)
export BENCH_CEILINGS
trap 'rm -f "$BENCH_CEILINGS"' EXIT
if [ -n "${BENCH_QUICK:-}" ]; then
	BENCH_SIZE=${BENCH_SIZE:-64}
	export BENCH_MB=${BENCH_MB:-64}
fi
if only ceilings; then
	args=(--json)
	[ -n "${BENCH_QUICK:-}" ] && args+=(--runs 1)
	[ -n "${BENCH_SIZE:-}" ] && args+=(--size "$BENCH_SIZE")
	[ -n "${BENCH_DISK:-}" ] && args+=(--disk "$BENCH_DISK")
	if ! "$FERRY_BUILD/tests/bench/ceilings" "${args[@]}" >"$BENCH_CEILINGS"; then
		echo "FAIL ceilings" >&2
		failed=$((failed + 1))
	fi
	if [ -n "${BENCH_JSON:-}" ]; then
		cat "$BENCH_CEILINGS"
	else
		echo "# ceilings: $(grep '"name":"env"' "$BENCH_CEILINGS")"
		sed -n 's/.*"name":"\([a-z0-9_]*\)","mib_s":\([0-9.]*\).*"detail":"\([^"]*\)".*/\1 \2 \3/p' \
			"$BENCH_CEILINGS" | awk '{ n = $1; v = $2; $1 = $2 = ""; printf "%-26s %9.0f MiB/s  %s\n", n, v, $0 }'
	fi
fi

for b in $(printf '%s\n' "$here"/*.sh | LC_ALL=C sort); do
	name=$(basename "$b" .sh)
	[ "$name" = run ] && continue
	[ -f "$b" ] || continue
	only "$name" || continue
	if ! (cd "$FERRY_ROOT" && bash "$b"); then
		echo "FAIL $name" >&2
		failed=$((failed + 1))
	fi
done

[ $failed -eq 0 ]
