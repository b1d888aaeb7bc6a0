# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# tests/e2e/migrate-lib.sh: what the migrate-over-TLS tests share, sourced
# after lib.sh. Needs TMP, C (certificates, e2e_tls_certs), port, and pid (the
# target) for the checks after the migration.
#
#   mig_start_dest IP [netns]        pageserver --once in a PID namespace
#   mig_run CMD...                   run migrate, check it and the page server
#   mig_check_report MIN_WIRE        sets id, rounds, rms, wire from the JSON
#   mig_check_stack                  rounds and parent links at the destination
#   mig_check_restored NAME TAIL     source gone, NAME at the destination; sets outer, last
#   mig_net_start 4|6 SVC_PORT       the network tests' start: e2e_net_bridge, destination,
#                                    a netsvc.py service on the source's service address
#   mig_net_setup 4|6                the same without netsvc.py

# mig_start_dest IP [netns]: start the destination listening on IP, with
# "netns" in the destination network namespace of e2e_netns_pair (or
# e2e_net_bridge); sets nsinit. MIG_DEST_MANY=1: without --once (the page
# server takes several migrations; mig_run wants --once). MIG_DEST_HOST_MOUNTS=1:
# enter that network namespace with nsenter, keeping the host's mounts
# (/sys/fs/cgroup; ip netns exec mounts a fresh /sys without it).
# MIG_DEST_IPC=1: the destination in its own IPC namespace too (another
# host's System V objects). MIG_DEST_BIND="FROM TO": the destination sees
# directory FROM at TO (its own copy of files, as on another host).
# MIG_DEST_DEVPTS=1: a devpts instance of its own on /dev/pts (another host's
# pty numbers: the source's ptys still hold theirs while it restores).
# The destination is pageserver --once in a PID namespace whose init (bash,
# e2e_pidns_pageserver) outlives it, so the restored process survives the
# page server's exit.
mig_start_dest()
{
	local -a wrap=() ns=() once=(--once) ipc=()

	[ -n "${MIG_DEST_MANY:-}" ] && once=()
	[ -n "${MIG_DEST_IPC:-}" ] && ipc=(--ipc)
	if [ "${2:-}" = netns ]; then
		wrap=(e2e_in_dst)
		[ -n "${MIG_DEST_HOST_MOUNTS:-}" ] && wrap=(nsenter "--net=/run/netns/$E2E_DST_NS" --)
		ns=("$E2E_DST_NS")
	fi
	mkdir -p "$TMP/dst"
	export C
	export MIG_DEST_BIND=${MIG_DEST_BIND:-} MIG_DEST_DEVPTS=${MIG_DEST_DEVPTS:-}
	e2e_start_bg dest "${wrap[@]}" unshare --pid "${ipc[@]}" --fork --mount-proc --kill-child -- \
		bash -c '[ -z "$MIG_DEST_BIND" ] || mount --bind $MIG_DEST_BIND || exit 1
			[ -z "$MIG_DEST_DEVPTS" ] ||
				mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts || exit 1
			e2e_pidns_pageserver "$@"' _ "$1:$port" "$TMP/dst" "${once[@]}"
	e2e_wait_port "$port" 10 "${ns[@]}" || e2e_fail "pageserver does not listen"
	nsinit=$(pgrep -P "$(cat "$TMP/dest.pid")" -x bash | head -n 1)
	[ -n "$nsinit" ] || nsinit=$(pgrep -P "$(pgrep -P "$(cat "$TMP/dest.pid")" | head -n 1)" | head -n 1)
	[ -n "$nsinit" ] || e2e_fail "cannot find the destination namespace's init"
	[ "$(in_dest cat /proc/1/comm)" = bash ] || e2e_fail "cannot enter the destination namespace"
}

in_dest() { nsenter -t "$nsinit" -p -m -- "$@"; }

# outer_pid PID: the pid, seen from here, of the process that is PID in the
# destination namespace (NSpid: OUTER PID).
outer_pid()
{
	local s ns

	ns=$(readlink "/proc/$nsinit/ns/pid")
	for s in /proc/[0-9]*/status; do
		s=${s%/status}
		[ "$(readlink "$s/ns/pid" 2>/dev/null)" = "$ns" ] || continue
		grep -Eq "^NSpid:[[:space:]]+[0-9]+[[:space:]]+$1\$" "$s/status" 2>/dev/null &&
			echo "${s#/proc/}" && return 0
	done
	return 1
}

# mig_run CMD...: run the migrate command CMD (JSON to $TMP/migrate.json);
# it must succeed and the page server exit 0 after its one migration.
mig_run()
{
	local rc

	"$@" >"$TMP/migrate.json" 2>"$TMP/migrate.err"
	rc=$?
	cat "$TMP/migrate.json" "$TMP/migrate.err" >&2
	[ $rc -eq 0 ] || e2e_fail "migrate --to exited $rc: $(tail -n 1 "$TMP/migrate.err")"
	e2e_wait_for_line "$TMP/dest.log" '^pageserver exited' 10 || e2e_fail "pageserver --once did not exit"
	grep -qx 'pageserver exited 0' "$TMP/dest.log" || e2e_fail "$(grep '^pageserver exited' "$TMP/dest.log")"
}

# mig_check_report MIN_WIRE: migrate's done line names the migration, at
# least 3 rounds and the destination's restore time; more than MIN_WIRE
# bytes went on the wire.
mig_check_report()
{
	local done_line

	done_line=$(grep '"event":"done"' "$TMP/migrate.json")
	[ -n "$done_line" ] || e2e_fail "no done line"
	id=$(sed -n 's/.*"migration_id":"\([^"]*\)".*/\1/p' <<<"$done_line")
	rounds=$(sed -n 's/.*"rounds":\([0-9]*\).*/\1/p' <<<"$done_line")
	rms=$(sed -n 's/.*"restore_ms":\([0-9.]*\).*/\1/p' <<<"$done_line")
	[ -n "$id" ] && [ -n "$rounds" ] || e2e_fail "done line without migration_id/rounds: $done_line"
	[ "$rounds" -ge 3 ] || e2e_fail "only $rounds rounds"
	[ -n "$rms" ] && [ "${rms%%.*}${rms#*.}" != 000 ] && [ "$rms" != 0 ] ||
		e2e_fail "no restore time from the destination in: $done_line"
	wire=$(grep '"event":"round"' "$TMP/migrate.json" | sed -n 's/.*"wire_bytes":\([0-9]*\).*/\1/p' |
		awk '{ s += $1 } END { print s + 0 }')
	[ "$wire" -gt "$1" ] || e2e_fail "only $wire bytes on the wire (expected more than $1)"
	e2e_log "migration $id: $rounds rounds, $wire bytes on the wire, restore ${rms} ms"
}

# mig_check_stack: one directory per round at the destination, each linked to
# the one before, no temporary directory left.
mig_check_stack()
{
	local stack=$TMP/dst/$id k e

	[ -d "$stack" ] || e2e_fail "no stack $stack at the destination"
	for ((k = 1; k <= rounds; k++)); do
		[ -d "$stack/$k" ] || e2e_fail "destination stack has no round $k"
		((k == 1)) || [ "$(readlink "$stack/$k/parent")" = "../$((k - 1))" ] ||
			e2e_fail "round $k: parent -> '$(readlink "$stack/$k/parent")'"
	done
	[ ! -e "$stack/$((rounds + 1))" ] || e2e_fail "more round directories than rounds"
	for e in "$TMP"/dst/.* "$TMP"/dst/* "$stack"/.* "$stack"/*; do
		case ${e##*/} in
		*.tmp* | tmp*) e2e_fail "temporary directory left: $e" ;;
		esac
	done
}

# mig_check_restored NAME STEP_TAIL: the source $pid is gone, the destination
# namespace runs NAME as $pid, untraced, and its next step line ("step N"
# then STEP_TAIL) comes; sets last (steps before) and outer (its pid here).
mig_check_restored()
{
	local name=$1 tail=$2

	e2e_wait_pid_gone "$pid" 10 || e2e_fail "source $pid still there after the migration"
	last=$(grep -c '^step ' "$TMP/out")
	in_dest test -e "/proc/$pid" || e2e_fail "no pid $pid in the destination namespace"
	grep -q "$name" <(in_dest cat "/proc/$pid/cmdline") ||
		e2e_fail "pid $pid at the destination is not $name"
	grep -q '^TracerPid:[[:space:]]*0$' <(in_dest cat "/proc/$pid/status") ||
		e2e_fail "restored process is traced"
	outer=$(outer_pid "$pid")
	[ -n "$outer" ] || e2e_fail "no process outside with NSpid ... $pid"
	e2e_track_pid "$outer"
	e2e_log "destination: pid $pid inside, $outer outside ($(grep NSpid "/proc/$outer/status"))"
	e2e_wait_for_line "$TMP/out" "^step $((last + 1))$tail" 5 ||
		e2e_fail "no step $((last + 1)) after the migration"
}

# mig_net_start 4|6 SVC_PORT: the start of a network test (needs TMP): the
# certificates, e2e_net_bridge, port, the destination in its namespace
# (mig_start_dest, MIG_DEST_MANY respected), the service address (IPv4
# E2E_SVC_IP/24 or IPv6 E2E_SVC_IP6/64) as a secondary address of the
# source's eth0, and netsvc.py serving it on SVC_PORT in the source
# namespace (e2e_start_workload svc: sets pid, writes $TMP/out). Sets SVC_IP,
# SVC (ADDR/PREFIX), svc_port, DEST (the page server's HOST:PORT). Then
# mig_has_addr NS: SVC is on eth0 in NS; mig_ask udp|tcp [TIMEOUT]: netask.py
# from the client namespace (prints "pid P count N").
mig_net_start()
{
	svc_port=$2
	mig_net_setup "$1"
	e2e_start_workload svc '^ready$' e2e_in_src python3 "$FERRY_ROOT/tests/workloads/netsvc.py" \
		--addr "$SVC_IP" --port "$svc_port" --out "$TMP/out" --pidfile "$TMP/pid"
}

# mig_net_setup 4|6: mig_net_start without the service (for a test that runs
# its own program on SVC_IP): the certificates, e2e_net_bridge, port, the
# destination, the service address on the source's eth0; sets SVC_IP, SVC,
# DEST.
mig_net_setup()
{
	local fam=$1

	e2e_tls_certs
	e2e_net_bridge
	port=$(e2e_port)
	DEST=$E2E_DST_IP:$port
	if [ "$fam" = 6 ]; then
		SVC_IP=$E2E_SVC_IP6
		SVC=$SVC_IP/64
	else
		SVC_IP=$E2E_SVC_IP
		SVC=$SVC_IP/$E2E_NET_PREFIX
	fi
	mig_start_dest "$E2E_DST_IP" netns
	ip -n "$E2E_SRC_NS" addr add "$SVC" dev eth0 nodad || e2e_fail "cannot add the service address"
}

mig_has_addr() { ip -n "$1" -o addr show dev eth0 | grep -qE "inet6? $SVC "; }

mig_ask()
{
	e2e_in_cli timeout 40 python3 "$FERRY_ROOT/tests/workloads/netask.py" "$1" "$SVC_IP" \
		"$svc_port" "${2:-10}"
}
