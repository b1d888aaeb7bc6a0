#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/bench/migrate.sh: migration benchmark (run by tests/bench/run.sh).
#
# Scenarios PATH-MIB-WRITE[-busy]: a memwork target of MIB MiB that writes
#   low       the next pages in order (one cursor), ~1% of its pages per 100 ms
#   high      the same at ~10%
#   scatter1  random pages (a hash table, an allocator), ~1% per 100 ms
#   scatter10 random pages, ~10% per 100 ms
#   hot       a hot writer: the same 1024 pages (4 MiB) rewritten every tick
# with "-busy": beside a CPU hog and a disk writer (the machine is busy),
# migrated
#   tls:   over mutual TLS (+ lz4) on loopback to a pageserver --once running
#          in its own PID namespace, which restores it (restore --stream: the
#          process is prepared and filled round by round during pre-copy);
#   tls-nostream (not run by default): the same with pageserver --no-stream
#          (one plain restore --images-dir after the final round);
#   local: with `migrate --images-dir` to a local stack, then `restore`;
# with migrate's defaults (--downtime-limit 300, auto-converge on), and prints
# per run: every round (time, frozen time, dirty/sent pages, bytes on the
# wire, predicted downtime, throttle) from `migrate --json`, total migration
# time, downtime from the tool (tls: the source's frozen time, which ends
# only when the destination reports the restore done; local: frozen time +
# the "restored pid N in X ms" of restore) and from inside the workload (the
# largest gap between two of memwork's ticks around the migration, less one
# tick's sleep: memwork --gap-ms), bytes on the wire, peak RSS and CPU time
# (user + system) of migrate and pageserver, the dirty rate memwork really
# reached, round 1's speed (page data / round time) and its fraction of the
# slowest ceiling of the same run (BENCH_CEILINGS, written by run.sh), and
# which other processes were busy. After the runs, gnuplot draws pages per
# round and the downtimes per scenario (BENCH_PLOT_DIR).
#
# Environment:
#   FERRY_BUILD=DIR          build directory (default <repo>/build)
#   BENCH_JSON=1             one JSON line per run instead of text
#   BENCH_QUICK=1            a smoke run: 64 MiB, one scenario of each kind
#                            (figures meaningless; checks that it all works)
#   BENCH_MIGRATE_SCENARIOS  the scenario list (default: below)
#   BENCH_MIGRATE_ARGS  more options for every migrate (e.g. --postcopy=auto)
#   BENCH_MIGRATE_SIZES      MiB list for the low/high runs (default "256 1024")
#   BENCH_MIGRATE_RATES      "low high" (default both)
#   BENCH_MIGRATE_PATHS      any of "tls local tls-nostream" (default "tls local")
#   BENCH_MIGRATE_4G=0       leave out the 4 GiB scenario (it needs ~13 GiB of
#                            free memory and ~1 minute)
#   BENCH_CEILINGS=FILE      ceilings JSON lines of this run (run.sh sets it)
#   BENCH_PLOT_DIR=DIR       where the plots go (default docs/, BENCH_QUICK:
#                            the build directory; none without gnuplot)
#   BENCH_DISK=DIR           where the image stacks go (default a temporary
#                            directory under /var/tmp)

if [ -z "${BASH_VERSION:-}" ]; then
	exec bash "$0" "$@"
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# lib.sh: background processes, certificates, ports and cleanup at exit.
. "$here/../e2e/lib.sh"

MIGRATE=$FERRY_BUILD/migrate
PAGESERVER=$FERRY_BUILD/pageserver
RESTORE=$FERRY_BUILD/restore
for b in "$MIGRATE" "$PAGESERVER" "$RESTORE" "$E2E_MEMWORK"; do
	[ -x "$b" ] || e2e_fail "bench migrate: no $b (build it first)"
done
SIZES=${BENCH_MIGRATE_SIZES:-256 1024}
RATES=${BENCH_MIGRATE_RATES:-low high}
PATHS=${BENCH_MIGRATE_PATHS:-tls local}
TICK_MS=5
HOT_PAGES=1024
GAP_MS=$((4 * TICK_MS))		# memwork reports tick gaps over this
if [ -n "${BENCH_QUICK:-}" ]; then
	SIZES=${BENCH_MIGRATE_SIZES:-64}
	RATES=${BENCH_MIGRATE_RATES:-low}
	PATHS=${BENCH_MIGRATE_PATHS:-tls}
	EXTRA="tls-64-scatter10 tls-64-hot tls-64-scatter1-busy"
	PLOT_DIR=${BENCH_PLOT_DIR:-$FERRY_BUILD/bench}
else
	EXTRA="tls-1024-scatter1 tls-1024-scatter10 tls-1024-hot tls-1024-scatter1-busy tls-1024-scatter10-busy"
	[ "${BENCH_MIGRATE_4G:-1}" = 0 ] || EXTRA+=" tls-4096-scatter1"
	PLOT_DIR=${BENCH_PLOT_DIR:-$FERRY_ROOT/docs}
fi
if [ -z "${BENCH_MIGRATE_SCENARIOS:-}" ]; then
	BENCH_MIGRATE_SCENARIOS=$(for path in $PATHS; do for mib in $SIZES; do for rate in $RATES; do
		echo "$path-$mib-$rate"; done; done; done)
	BENCH_MIGRATE_SCENARIOS+=" $EXTRA"
fi
TMP=$(e2e_tmpdir)
if [ -n "${BENCH_DISK:-}" ]; then
	DISK=$(mktemp -d "$BENCH_DISK/ferry-bench.XXXXXX") || e2e_fail "cannot use BENCH_DISK=$BENCH_DISK"
else
	DISK=$(mktemp -d /var/tmp/ferry-bench.XXXXXX) || e2e_fail "no directory under /var/tmp"
fi
e2e_on_exit "rm -rf -- '$DISK'"
C=$TMP/certs
e2e_make_certs "$C"
TIME=
[ -x /usr/bin/time ] && TIME=/usr/bin/time

# Processes over 5% of a CPU during half a second (not us, not the target).
busy()
{
	top -b -n 2 -d 0.5 -w 200 2>/dev/null | awk -v skip="$1" '
		/^top -/ { frame++ }
		frame == 2 && /^ *[0-9]+ / && $9 + 0 >= 5 && $12 != "top" && $1 != skip {
			printf "%s%s %s%%", (n++ ? ", " : ""), $12, $9
		}'
}

# cpu_s FILE: user + system seconds from a GNU time output file (empty if none).
cpu_s()
{
	sed -n 's/.*cpu_s \([0-9.]*\) \([0-9.]*\)$/\1 \2/p' "$1" 2>/dev/null |
		awk '{ printf "%.2f\n", $1 + $2 }'
}

# round_mib_s LINE: page data a round sent per second of its time (MiB/s).
round_mib_s()
{
	local ms

	ms=$(jfield "$1" round_ms)
	bc -l <<<"$(jfield "$1" pages_sent) * 4096 / 1048576 / ($ms / 1000)" 2>/dev/null
}

# jfield LINE NAME: a number or string field of a flat JSON line.
jfield()
{
	sed -n "s/.*\"$2\":\"\\{0,1\\}\\([^,\"}]*\\).*/\\1/p" <<<"$1"
}

# The destination: pageserver --once in a fresh PID namespace whose init
# (bash) reaps and outlives it, so the restored process runs on after it.
ps_dest()
{
	local port=$1 dir=$2 t=$3
	local -a pre=()

	shift 3
	[ -n "$TIME" ] && pre=("$TIME" -f 'maxrss_kb %M cpu_s %U %S' -o "$t")
	"${pre[@]}" "$PAGESERVER" --listen "127.0.0.1:$port" --images-dir "$dir" --once \
		--tls-ca "$C/ca.pem" --tls-cert "$C/server.pem" --tls-key "$C/server.key" "$@"
	echo "pageserver exited $?"
	while :; do sleep 0.5; done
}
export -f ps_dest
export PAGESERVER C TIME

# kill_group PID: end a process group started by e2e_start_bg, and wait.
kill_group()
{
	local p

	{
		kill -KILL -- "-$1"
		for p in $(_e2e_descendants "$1") "$1"; do
			kill -KILL "$p"
		done
		wait "$1"	# our child: reaps it, and bash's "Killed" notice goes nowhere
	} 2>/dev/null
}

# slowest_ceiling: the slowest stage of round 1 for incompressible pages in
# this run's ceilings (memory read, TCP, AES-GCM, lz4 on random data, the
# disk if measured), "NAME MIB_S"; empty without BENCH_CEILINGS.
slowest_ceiling()
{
	[ -s "${BENCH_CEILINGS:-}" ] || return 0
	grep -E '"name":"(memread_process_vm_readv|tcp_loopback|aes_256_gcm_encrypt|lz4_compress_random|disk_write_fdatasync)"' \
		"$BENCH_CEILINGS" | while read -r l; do
		echo "$(jfield "$l" name) $(jfield "$l" mib_s)"
	done | sort -k2 -g | head -n 1
}
SLOWEST=$(slowest_ceiling)

# busy_start: a CPU hog and a disk writer (fdatasync'd 64 MiB files, over
# and over) beside the run; BUSY_PIDS to stop them.
busy_start()
{
	e2e_start_bg hog bash -c 'while :; do :; done'
	BUSY_PIDS=$E2E_LAST_PID
	e2e_start_bg diskhog bash -c 'while :; do dd if=/dev/zero of="$1/diskhog" bs=1M count=64 conv=fdatasync status=none; done' _ "$DISK"
	BUSY_PIDS+=" $E2E_LAST_PID"
}

busy_stop()
{
	local p

	for p in $BUSY_PIDS; do
		kill_group "$p"
	done
	BUSY_PIDS=
	rm -f "$DISK/diskhog"
}

# inside_ms FROM TO [AFTER BEFORE]: the largest tick gap memwork reported
# between lines FROM and TO of its output (only those ending between AFTER
# and BEFORE, µs since the epoch, if given), less one tick's sleep (ms);
# "<GAP_MS" if none.
inside_ms()
{
	sed -n "$1,$2p" "$TMP/out" | awk -v tick=$TICK_MS -v thr=$GAP_MS -v a="${3:-0}" -v b="${4:-0}" '
		/^gap / && (!b || ($7 >= a && $7 <= b)) { if ($2 > m) m = $2 }
		END { if (m) printf "%.1f\n", m / 1000 - tick; else printf "<%d\n", thr }'
}

# run_one SCENARIO: PATH-MIB-WRITE[-busy] (see the top of this file).
run_one()
{
	local scen=$1 path mib write busy
	local pages dirty tag pid g0 g1 t0 t1 pps others port dstdir rc wargs
	local done_line rounds total frozen restore_ms wire mrss psrss top last downtime fresh
	local mcpu pscpu r1 r1frac line0 line1 inside stall

	IFS=- read -r path mib write busy <<<"$scen"
	[ -n "$path" ] && [ -n "$mib" ] && [ -n "$write" ] || e2e_fail "bad scenario '$scen'"
	[ -z "$busy" ] || [ "$busy" = busy ] || e2e_fail "bad scenario '$scen'"
	tag=$scen
	pages=$((mib * 256))
	# ~1% of the pages per 100 ms: pages/100 per 100/TICK_MS ticks
	dirty=$(((pages * TICK_MS + 5000) / 10000))
	case $write in
	low) wargs=(--dirty "$dirty") ;;
	high) dirty=$((dirty * 10)); wargs=(--dirty "$dirty") ;;
	scatter1) wargs=(--dirty "$dirty" --scatter) ;;
	scatter10) dirty=$((dirty * 10)); wargs=(--dirty "$dirty" --scatter) ;;
	hot) dirty=$HOT_PAGES; wargs=(--dirty 0 --hot $HOT_PAGES) ;;
	*) e2e_fail "bad scenario '$scen': no writer '$write'" ;;
	esac
	rm -f "$TMP/out" "$TMP/pid" "$TMP/psrss" "$TMP/mrss"
	# under a shell that reaps it at once: migrate --images-dir waits (up
	# to 5 s) until the killed source is gone from /proc
	e2e_start_bg "mw-$tag" bash -c '"$@" & wait' _ "$E2E_MEMWORK" --mem "$mib" \
		"${wargs[@]}" --tick-ms $TICK_MS --check-every 0 --gap-ms $GAP_MS \
		--out "$TMP/out" --pidfile "$TMP/pid"
	local mwgrp=$E2E_LAST_PID
	e2e_wait_file "$TMP/pid" 120 || e2e_fail "$tag: memwork never got ready"
	pid=$(cat "$TMP/pid")
	e2e_wait_for_line "$TMP/out" '^step 20 ' 20 || e2e_fail "$tag: memwork makes no progress"
	[ -n "$busy" ] && busy_start
	# the dirty rate memwork really reaches (its 'gen' counts page rewrites)
	g0=$(grep '^step ' "$TMP/out" | tail -n 2 | head -n 1 | awk '{ print $6 }')
	t0=${EPOCHREALTIME/[.,]/}
	others=$(busy "$pid")
	t1=${EPOCHREALTIME/[.,]/}
	g1=$(grep '^step ' "$TMP/out" | tail -n 2 | head -n 1 | awk '{ print $6 }')
	pps=$(((g1 - g0) * 1000000 / (t1 - t0)))

	# This VM hands freed memory back to its host, and the first writes to
	# such memory are several times slower (docs/kernel-notes.md, trap 10). The page
	# cache the images go to and the restored process's memory are fresh
	# memory: a tls restore cannot reuse the source's memory (the source
	# still holds it), a local one mostly does. Say how fast fresh memory
	# was right before the run (256 MiB touched once).
	fresh=$(dd if=/dev/zero of=/dev/null bs=256M count=1 2>&1 |
		sed -n 's/.*copied, \([0-9.]*\) s, .*/\1/p')
	fresh=$(printf '%.2f' "$(bc -l <<<"0.25 / ${fresh:-0}" 2>/dev/null)")

	if [ "$path" != local ]; then
		port=$(e2e_port)
		dstdir=$DISK/dst-$tag
		mkdir -p "$dstdir"
		local -a psopt=()
		[ "$path" = tls-nostream ] && psopt=(--no-stream)
		e2e_start_bg "dst-$tag" unshare --pid --fork --mount-proc --kill-child -- \
			bash -c 'ps_dest "$@"' _ "$port" "$dstdir" "$TMP/psrss" "${psopt[@]}"
		local dgrp=$E2E_LAST_PID
		e2e_wait_port "$port" 10 || e2e_fail "$tag: pageserver does not listen"
		set -- --to "127.0.0.1:$port" --tls-ca "$C/ca.pem" --tls-cert "$C/client.pem" \
			--tls-key "$C/client.key"
	else
		dstdir=$DISK/img-$tag
		set -- --images-dir "$dstdir"
	fi
	line0=$(wc -l <"$TMP/out")
	if [ -n "$TIME" ]; then
		"$TIME" -f 'maxrss_kb %M cpu_s %U %S' -o "$TMP/mrss" "$MIGRATE" --json "${XARGS[@]}" "$@" "$pid" \
			>"$TMP/m.json" 2>"$TMP/m.err" &
	else
		"$MIGRATE" --json "${XARGS[@]}" "$@" "$pid" >"$TMP/m.json" 2>"$TMP/m.err" &
	fi
	local mpid=$! ts=${EPOCHREALTIME/[.,]/}
	wait "$mpid"
	rc=$?
	local tend=${EPOCHREALTIME/[.,]/}
	local wall_us=$((tend - ts)) trun=$tend	# trun: when it runs again
	[ $rc -eq 0 ] || e2e_fail "$tag: migrate exited $rc: $(tail -n 1 "$TMP/m.err")"
	done_line=$(grep '"event":"done"' "$TMP/m.json")
	rounds=$(jfield "$done_line" rounds)
	total=$(jfield "$done_line" total_ms)
	frozen=$(jfield "$done_line" frozen_ms)
	last=$(grep -c '^step ' "$TMP/out")

	if [ "$path" != local ]; then
		restore_ms=$(jfield "$done_line" restore_ms)
		e2e_wait_pid_gone "$pid" 10 >/dev/null 2>&1
	else
		# the PID must be free again before restore (a local restore only)
		e2e_wait_pid_gone "$pid" 10 || e2e_fail "$tag: source $pid not gone"
		top=$dstdir/$(jfield "$done_line" migration_id)/$rounds
		"$RESTORE" --images-dir "$top" >"$TMP/r.out" 2>"$TMP/r.err" ||
			e2e_fail "$tag: restore failed: $(tail -n 1 "$TMP/r.err")"
		restore_ms=$(sed -n 's/^restored pid [0-9]* in \([0-9.]*\) ms$/\1/p' "$TMP/r.out")
		e2e_track_pid "$pid"
		trun=${EPOCHREALTIME/[.,]/}
	fi
	# it runs again, stepping on from where it was frozen
	e2e_wait_for_line "$TMP/out" "^step $((last + 2)) pid $pid " 10 ||
		e2e_fail "$tag: the migrated process does not run: $(tail -n 1 "$TMP/out")"
	line1=$(wc -l <"$TMP/out")
	# the freeze as the workload saw it (the gap that ends while migrate
	# waits for the destination's verdict, at most its frozen time before
	# migrate exits), and its worst stall during the whole migration
	inside=$(inside_ms "$((line0 + 1))" "$line1" \
		"$(bc <<<"$tend - ($frozen + 100) * 1000" | cut -d. -f1)" "$((trun + 200000))")
	stall=$(inside_ms "$((line0 + 1))" "$line1")
	e2e_assert_no_fail "$TMP/out" 2>/dev/null
	[ -n "$busy" ] && busy_stop
	if [ "$path" != local ]; then
		kill_group "$dgrp"
	else
		kill -KILL "$pid"
		e2e_wait_pid_gone "$pid" 10 >/dev/null 2>&1
	fi
	kill_group "$mwgrp"
	mrss=$(sed -n 's/^maxrss_kb \([0-9]*\).*/\1/p' "$TMP/mrss" 2>/dev/null)
	psrss=$(sed -n 's/^maxrss_kb \([0-9]*\).*/\1/p' "$TMP/psrss" 2>/dev/null)
	mcpu=$(cpu_s "$TMP/mrss")
	pscpu=$(cpu_s "$TMP/psrss")
	wire=$(grep '"event":"round"' "$TMP/m.json" | sed -n 's/.*"wire_bytes":\([0-9]*\).*/\1/p' |
		awk '{ s += $1 } END { printf "%.0f\n", s }')
	rm -rf -- "$dstdir"
	# Over the network the source stays frozen until the destination has
	# restored and said so: its frozen time already holds the restore. A
	# local checkpoint is restored afterwards: add the two.
	if [ "$path" != local ]; then
		downtime=$frozen
	else
		downtime=$(bc -l <<<"$frozen + ${restore_ms:-0}")
	fi
	r1=$(round_mib_s "$(grep '"event":"round"' "$TMP/m.json" | head -n 1)")
	r1frac=
	[ -n "$SLOWEST" ] && r1frac=$(bc -l <<<"${r1:-0} / ${SLOWEST#* }")
	# for the plots: pages sent per round, and the two downtimes
	grep '"event":"round"' "$TMP/m.json" | while read -r l; do
		echo "$tag $(jfield "$l" round) $(jfield "$l" pages_sent)"
	done >>"$TMP/plot-rounds"
	echo "$tag $downtime ${inside#<} ${stall#<}" >>"$TMP/plot-downtime"

	if [ -n "${BENCH_JSON:-}" ]; then
		printf '{"bench":"migrate","scenario":"%s","path":"%s","mem_mib":%d,"write":"%s","busy":%s,"dirty_pages_per_tick":%d,"tick_ms":%d,' \
			"$scen" "$path" "$mib" "$write" "$([ -n "$busy" ] && echo true || echo false)" "$dirty" $TICK_MS
		printf '"dirty_pages_per_s_measured":%d,"rounds":%s,"total_ms":%s,"migrate_wall_ms":%.1f,' \
			"$pps" "$rounds" "$total" "$(bc -l <<<"$wall_us / 1000")"
		printf '"frozen_ms":%s,"restore_ms":%s,"downtime_ms":%.3f,"inside_downtime_ms":%s,"inside_worst_stall_ms":%s,"wire_bytes":%d,' \
			"$frozen" "${restore_ms:-null}" "$downtime" \
			"$([ "${inside#<}" = "$inside" ] && echo "$inside" || echo null)" \
			"$([ "${stall#<}" = "$stall" ] && echo "$stall" || echo null)" "$wire"
		printf '"round1_mib_s":%.0f,"round1_of_slowest_ceiling":%s,"slowest_ceiling":"%s",' \
			"${r1:-0}" "${r1frac:-null}" "${SLOWEST:-}"
		printf '"migrate_cpu_s":%s,"pageserver_cpu_s":%s,' "${mcpu:-null}" "${pscpu:-null}"
		printf '"migrate_maxrss_kb":%s,"pageserver_maxrss_kb":%s,"fresh_mem_gib_s":%s,"busy_others":"%s","round_lines":[%s]}\n' \
			"${mrss:-null}" "${psrss:-null}" "${fresh:-null}" "${others:-none}" \
			"$(grep '"event":"round"' "$TMP/m.json" | paste -sd, -)"
		return 0
	fi
	printf '%-26s %s (measured %.2f%%/100ms)%s\n' "$scen" \
		"$([ "$write" = hot ] && echo "$HOT_PAGES hot pages every $TICK_MS ms" ||
			printf '%d pages/%d ms = %.2f%%/100ms' "$dirty" $TICK_MS \
			"$(bc -l <<<"$dirty * 100 / $TICK_MS * 100 / $pages")")" \
		"$(bc -l <<<"$pps / 10 * 100 / $pages")" "$([ -n "$busy" ] && echo ', beside a CPU hog and a disk writer')"
	grep '"event":"round"' "$TMP/m.json" | while read -r l; do
		printf '    round %s%s: %9.1f ms, frozen %7.2f ms, dirty %7d, sent %7d (+%d zero), wire %8.1f MiB, %5.0f MiB/s, predicted %s ms, throttle %s%%\n' \
			"$(jfield "$l" round)" "$([ "$(jfield "$l" final)" = true ] && echo ' (final)' || echo '        ')" \
			"$(jfield "$l" round_ms)" "$(jfield "$l" frozen_ms)" "$(jfield "$l" pages_dirty)" \
			"$(jfield "$l" pages_sent)" "$(jfield "$l" pages_zero)" \
			"$(bc -l <<<"$(jfield "$l" wire_bytes) / 1048576")" "$(round_mib_s "$l")" \
			"$(jfield "$l" predicted_downtime_ms)" "$(jfield "$l" throttle_pct)"
	done
	if [ "$path" != local ]; then
		printf '    total %.1f ms (migrate ran %.1f ms), %s rounds; downtime %.1f ms = frozen at the source, of which restore %.1f at the destination; inside %s ms (worst stall %s ms); wire %.1f MiB\n' \
			"$total" "$(bc -l <<<"$wall_us / 1000")" "$rounds" "$downtime" "${restore_ms:-0}" \
			"$inside" "$stall" "$(bc -l <<<"$wire / 1048576")"
	else
		printf '    total %.1f ms (migrate ran %.1f ms), %s rounds; downtime %.1f ms = frozen %.1f + restore %.1f; inside %s ms (worst stall %s ms)\n' \
			"$total" "$(bc -l <<<"$wall_us / 1000")" "$rounds" "$downtime" "$frozen" "${restore_ms:-0}" "$inside" "$stall"
	fi
	printf '    round 1 %.0f MiB/s = %s of the slowest ceiling (%s MiB/s)\n' "${r1:-0}" \
		"$([ -n "$r1frac" ] && printf '%.2f' "$r1frac" || echo '?')" "${SLOWEST:-?}"
	printf '    peak RSS: migrate %s MiB, pageserver %s; CPU: migrate %s s, pageserver %s; fresh memory %s GiB/s; other busy processes: %s\n' \
		"$([ -n "$mrss" ] && echo $((mrss / 1024)) || echo '?')" \
		"$([ -n "$psrss" ] && echo "$((psrss / 1024)) MiB (with the restore it ran)" || echo '-')" \
		"${mcpu:-?}" "$([ -n "$pscpu" ] && echo "$pscpu s (with its restore)" || echo '-')" \
		"${fresh:-?}" "${others:-none}"
}

# plot: pages sent per round (one line per scenario, log scale) and the
# downtime per scenario (tool and inside), SVG into PLOT_DIR.
plot()
{
	local dir=$1 n i s

	command -v gnuplot >/dev/null || { echo "# no gnuplot: no plots" >&2; return 0; }
	[ -s "$TMP/plot-rounds" ] || return 0
	mkdir -p "$dir" || return 1
	mapfile -t scens < <(awk '{ print $1 }' "$TMP/plot-rounds" | awk '!seen[$0]++')
	n=${#scens[@]}
	for ((i = 0; i < n; i++)); do
		awk -v s="${scens[i]}" '$1 == s { print $2, $3 }' "$TMP/plot-rounds" >"$TMP/plot-r$i"
	done
	{
		echo "set terminal svg size 900,520 dynamic font 'sans,11'"
		echo "set output '$dir/bench-rounds.svg'"
		echo "set title 'Pages sent per round (last point: the frozen final round)'"
		echo "set xlabel 'round'; set ylabel 'pages sent'; set logscale y; set grid"
		echo "set key outside right"
		printf 'plot '
		for ((i = 0; i < n; i++)); do
			s=${scens[i]}
			printf "%s'%s' using 1:2 with linespoints title '%s'" "$([ $i -gt 0 ] && echo ', ')" \
				"$TMP/plot-r$i" "$s"
		done
		echo
	} >"$TMP/rounds.gp"
	{
		echo "set terminal svg size 900,520 dynamic font 'sans,11'"
		echo "set output '$dir/bench-downtime.svg'"
		echo "set title 'Downtime per scenario (ms): the tool, and tick gaps inside the workload'"
		echo "set style data histograms; set style histogram clustered gap 1"
		echo "set style fill solid 0.8 border -1; set boxwidth 0.9"
		echo "set ylabel 'ms'; set logscale y; set yrange [1:*]; set grid ytics"
		echo "set xtics rotate by -35 scale 0"
		echo "set arrow from graph 0, first 300 to graph 1, first 300 nohead dashtype 2"
		echo "set label 'default --downtime-limit (300 ms)' at graph 0.01, first 340"
		echo "plot '$TMP/plot-downtime' using 2:xtic(1) title 'tool (frozen + restore)', '' using 3 title 'inside (tick gap at the freeze)', '' using 4 title 'inside (worst stall during the migration)'"
	} >"$TMP/downtime.gp"
	gnuplot "$TMP/rounds.gp" && gnuplot "$TMP/downtime.gp" || { echo "gnuplot failed" >&2; return 1; }
	[ -n "${BENCH_JSON:-}" ] || echo "# plots: $dir/bench-rounds.svg, $dir/bench-downtime.svg"
}

command -v bc >/dev/null || e2e_fail "bench migrate needs bc"
read -r -a XARGS <<<"${BENCH_MIGRATE_ARGS:-}"
[ -n "${BENCH_JSON:-}" ] ||
	echo "# migrate: memwork targets, ${TICK_MS} ms ticks; tls = TLS 1.3 + lz4 over loopback to pageserver --once in its own PID namespace; local = --images-dir then restore; images in $DISK; slowest ceiling: ${SLOWEST:-unknown (no BENCH_CEILINGS)}"
: >"$TMP/plot-rounds"
: >"$TMP/plot-downtime"
for scen in $BENCH_MIGRATE_SCENARIOS; do
	run_one "$scen"
done
plot "$PLOT_DIR"
