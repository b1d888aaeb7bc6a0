#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/bench/pageserver.sh: page streaming speed on loopback, end to end
# (psclient's remote sink -> pageserver -> image stack on disk), next to
# plain loopback TCP with no framing, no crypto and no disk. Two page mixes:
#   random   incompressible: lz4 gives up, pages go raw
#   typical  half zero pages, half text-like pages (lz4 ~3x)
# Each page server line also gives the CPU time the page server used (user +
# system, its disk writes included: on 2 cores it competes with the sender).
# A benchmark, not a test: it prints figures and fails only if a run fails.
#
# Environment: FERRY_BUILD (default <repo>/build), BENCH_MB (default 512),
# BENCH_JSON=1 for JSON lines.
. "$(dirname "$0")/../e2e/lib.sh"

PS=$FERRY_BUILD/pageserver
PSC=$FERRY_BUILD/tests/tools/psclient
[ -x "$PS" ] && [ -x "$PSC" ] || e2e_fail "build pageserver and tests/tools/psclient first"
MB=${BENCH_MB:-512}
TMP=$(e2e_tmpdir)
e2e_make_certs "$TMP/certs" >/dev/null
C=$TMP/certs
SRV_TLS=(--tls-ca "$C/ca.pem" --tls-cert "$C/server.pem" --tls-key "$C/server.key")
CLI_TLS=(--tls-ca "$C/ca.pem" --tls-cert "$C/client.pem" --tls-key "$C/client.key")

# cpu_ms PID: user + system CPU of a live process so far, in ms.
cpu_ms()
{
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%d\n", ($12 + $13) * 1000 / hz }' \
		"/proc/$1/stat" 2>/dev/null
}

# report WHAT KIND LINE [SERVER-CPU-MS]
report()
{
	local what=$1 kind=$2 line=$3 cpu=${4:-} mibs

	mibs=${line%% MiB/s*}
	if [ -n "${BENCH_JSON:-}" ]; then
		printf '{"bench":"pageserver","path":"%s","pages":"%s","mib":%d,"mib_s":%s,"server_cpu_ms":%s}\n' \
			"$what" "$kind" "$MB" "$mibs" "${cpu:-null}"
	else
		printf 'pageserver %-14s %-8s %8s MiB/s   %s%s\n' "$what" "$kind" "$mibs" "${line#* MiB/s }" \
			"${cpu:+, page server CPU $cpu ms}"
	fi
}

# server_run NAME KIND SERVER-TLS... -- CLIENT-TLS...
server_run()
{
	local name=$1 kind=$2 port out
	local -a stls=() ctls=()

	shift 2
	while [ "$1" != -- ]; do stls+=("$1"); shift; done
	shift
	ctls=("$@")
	port=$(e2e_port)
	mkdir -p "$TMP/img-$name-$kind"
	e2e_start_bg "ps-$name-$kind" "$PS" --listen "127.0.0.1:$port" \
		--images-dir "$TMP/img-$name-$kind" "${stls[@]}"
	e2e_wait_port "$port" 10 || e2e_fail "pageserver does not listen"
	out=$("$PSC" bench --to "127.0.0.1:$port" "${ctls[@]}" --mb "$MB" --kind "$kind" \
		2>"$TMP/err") || e2e_fail "bench $name $kind: $(cat "$TMP/err")"
	report "$name" "$kind" "$out" "$(cpu_ms "$E2E_LAST_PID")"
	kill "$E2E_LAST_PID"
	wait "$E2E_LAST_PID" 2>/dev/null
	rm -rf "${TMP:?}/img-$name-$kind"
}

raw_run()
{
	local kind=$1 port out

	port=$(e2e_port)
	e2e_start_bg "raw-$kind" "$PSC" raw-recv --listen "$port"
	e2e_wait_port "$port" 10 || e2e_fail "raw receiver does not listen"
	out=$("$PSC" bench-raw --to "127.0.0.1:$port" --mb "$MB" --kind "$kind" 2>"$TMP/err") ||
		e2e_fail "raw $kind: $(cat "$TMP/err")"
	report "raw-tcp" "$kind" "$out"
	wait "$E2E_LAST_PID" 2>/dev/null
}

for kind in random typical; do
	raw_run "$kind"
	server_run "tls+lz4" "$kind" "${SRV_TLS[@]}" -- "${CLI_TLS[@]}"
	server_run "plain+lz4" "$kind" --insecure -- --insecure
done
