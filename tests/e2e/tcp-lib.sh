# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# tests/e2e/tcp-lib.sh: what the t-tcp-* tests share, sourced after lib.sh
# (and migrate-lib.sh). The topology (docs/tcp.md, "Test topology"):
#
#   client netns ferry-cli-$$ --veth-- src netns (e2e_netns_pair) --veth-- dst netns
#        \______________________veth_________________________________/
#
# The service address SVC (a /32 or /128 on lo) is the source's; the client
# reaches it through a route via the source. tcp_move_service hands it over
# (deleted at the source, added at the destination, the client's route
# switched), as a migration's address hand-over would.
#
#   tcp_topology 4|6          the namespaces; sets SVC, CLI_NS, TCP_FAM
#   tcp_in_cli CMD...         run CMD in the client namespace
#   tcp_start_server [OPT...] tcpwork server (TCP_ROLE) on SVC in the source; sets pid, sport
#   tcp_start_client [OPT...] tcpwork client in the client namespace; sets cport
#   tcp_move_service          the address hand-over to the destination
#   tcp_wait_progress FILE BYTES TIMEOUT [K]  connection K (0) received BYTES more
#   tcp_check_streams SRVPID TIMEOUT       both stop sending; totals must match
#   tcp_no_lock NETNS         no ferry_lock_* table left there
#   tcp_start_qclient K [OPT...]  tcpwork qclient K in the client namespace; sets cport
#   tcp_wait_state STATE NETNS PORT  the connection of client port PORT is in STATE there
#   tcp_migrate_moving        migrate, the address handed over by a freeze hook
#                             (at the restore already); sets outer
#   tcp_migrated              after a migration: no locks, source gone; sets outer

TCPWORK=$FERRY_ROOT/tests/workloads/tcpwork.py

tcp_in_cli()
{
	ip netns exec "$CLI_NS" "$@"
}

# tcp_topology 4|6
tcp_topology()
{
	local n=$(($$ % 250 + 1))

	TCP_FAM=$1
	e2e_netns_pair
	CLI_NS=ferry-cli-$$
	echo "netns $CLI_NS" >>"$_E2E_REG"
	ip netns add "$CLI_NS" || e2e_fail "ip netns add $CLI_NS"
	ip link add cs netns "$CLI_NS" type veth peer name cli netns "$E2E_SRC_NS" &&
	ip link add cd netns "$CLI_NS" type veth peer name cli netns "$E2E_DST_NS" ||
		e2e_fail "cannot create the client's veths"
	if [ "$1" = 6 ]; then
		SVC=fd00:81:$n::10
		TCP_CS=fd00:79:$n::2	# the source's end of the client link
		TCP_CD=fd00:80:$n::2	# the destination's
		ip -n "$CLI_NS" addr add fd00:79:$n::1/64 dev cs nodad &&
		ip -n "$E2E_SRC_NS" addr add $TCP_CS/64 dev cli nodad &&
		ip -n "$CLI_NS" addr add fd00:80:$n::1/64 dev cd nodad &&
		ip -n "$E2E_DST_NS" addr add $TCP_CD/64 dev cli nodad &&
		ip -n "$E2E_SRC_NS" addr add $SVC/128 dev lo nodad ||
			e2e_fail "cannot give the client links their IPv6 addresses"
	else
		SVC=10.81.$n.10
		TCP_CS=10.79.$n.2
		TCP_CD=10.80.$n.2
		ip -n "$CLI_NS" addr add 10.79.$n.1/24 dev cs &&
		ip -n "$E2E_SRC_NS" addr add $TCP_CS/24 dev cli &&
		ip -n "$CLI_NS" addr add 10.80.$n.1/24 dev cd &&
		ip -n "$E2E_DST_NS" addr add $TCP_CD/24 dev cli &&
		ip -n "$E2E_SRC_NS" addr add $SVC/32 dev lo ||
			e2e_fail "cannot give the client links their addresses"
	fi
	ip -n "$CLI_NS" link set lo up && ip -n "$CLI_NS" link set cs up &&
	ip -n "$CLI_NS" link set cd up && ip -n "$E2E_SRC_NS" link set cli up &&
	ip -n "$E2E_DST_NS" link set cli up || e2e_fail "cannot bring the client links up"
	# the client's address (on cs) answered from the destination too, once it serves
	if [ "$1" = 6 ]; then
		ip -n "$CLI_NS" route add $SVC/128 via $TCP_CS &&
		ip -n "$E2E_DST_NS" route add fd00:79:$n::/64 via fd00:80:$n::1 ||
			e2e_fail "cannot set the client's routes"
	else
		ip -n "$CLI_NS" route add $SVC/32 via $TCP_CS &&
		ip -n "$E2E_DST_NS" route add 10.79.$n.0/24 via 10.80.$n.1 ||
			e2e_fail "cannot set the client's routes"
	fi
}

# tcp_start_server [OPTION...]: sets pid and sport. TCP_ROLE: another role
# of tcpwork (aserver, qserver); TCP_OWN_IPC=1: in an IPC namespace of its
# own (SysV sets other tests make in the host's may otherwise be taken for
# its own and refused).
tcp_start_server()
{
	local -a wrap=()

	[ -n "${TCP_OWN_IPC:-}" ] && wrap=(unshare --ipc)
	sport=$(e2e_port)
	e2e_start_bg srv e2e_in_src "${wrap[@]}" python3 "$TCPWORK" "${TCP_ROLE:-server}" --addr "$SVC" --port "$sport" \
		--out "$TMP/srv.out" --pidfile "$TMP/pid" "$@"
	e2e_wait_file "$TMP/pid" 20 || e2e_fail "tcpwork server did not start: $(cat "$TMP/srv.log")"
	pid=$(cat "$TMP/pid")
}

# tcp_start_client [OPTION...]: sets cport (connection 0's local port).
tcp_start_client()
{
	e2e_start_bg cli tcp_in_cli python3 "$TCPWORK" client --addr "$SVC" --port "$sport" \
		--out "$TMP/cli.out" --pidfile "$TMP/cli.pidf" "$@"
	e2e_wait_file "$TMP/cli.pidf" 20 ||
		e2e_fail "tcpwork client did not connect: $(cat "$TMP/cli.log")"
	cport=$(sed -n 's/^conn 0 local .*[:.]\([0-9]*\) peer .*/\1/p' "$TMP/cli.out")
	[ -n "$cport" ] || e2e_fail "no client port in: $(grep '^conn 0' "$TMP/cli.out")"
}

tcp_move_service()
{
	local len=32 via

	[ "$TCP_FAM" = 6 ] && len=128
	via=$TCP_CD
	ip -n "$E2E_SRC_NS" addr del "$SVC/$len" dev lo &&
	ip -n "$E2E_DST_NS" addr add "$SVC/$len" dev lo $([ "$TCP_FAM" = 6 ] && echo nodad) &&
	ip -n "$CLI_NS" route replace "$SVC/$len" via "$via" ||
		e2e_fail "cannot move the service address"
}

# The last "stat K" numbers of FILE: "SENT RECV".
tcp_last_stat()
{
	grep "^stat $2 " "$1" | tail -n 1 | awk '{ print $4, $6 }'
}

# tcp_wait_progress FILE BYTES TIMEOUT [K]: connection K (0) of FILE
# received BYTES more than it had when called.
tcp_wait_progress()
{
	local file=$1 want=$2 t=$3 k=${4:-0} s r r0

	read -r s r0 <<<"$(tcp_last_stat "$file" "$k")"
	r0=${r0:-0}
	for ((i = 0; i < t * 10; i++)); do
		grep -q '^FAIL' "$file" && e2e_fail "$file: $(grep '^FAIL' "$file")"
		read -r s r <<<"$(tcp_last_stat "$file" "$k")"
		[ $((${r:-0} - r0)) -ge "$want" ] && return 0
		sleep 0.1
	done
	e2e_fail "$file: connection $k received only $((${r:-0} - r0)) bytes in $t s (wanted $want)"
}

# tcp_check_streams SRVPID TIMEOUT [CONNS]: SIGUSR1 stops the sending at both
# ends; once everything in flight arrived, what each end sent is what the
# other received, on every connection (every word was checked on the way).
tcp_check_streams()
{
	local srv=$1 t=$2 conns=${3:-1} k ok cs cr ss sr

	kill -USR1 "$(cat "$TMP/cli.pidf")" || e2e_fail "the client is gone"
	kill -USR1 "$srv" || e2e_fail "server $srv is gone"
	for ((i = 0; i < t * 5; i++)); do
		ok=1
		for ((k = 0; k < conns; k++)); do
			read -r cs cr <<<"$(tcp_last_stat "$TMP/cli.out" $k)"
			read -r ss sr <<<"$(tcp_last_stat "$TMP/srv.out" $k)"
			[ "$cs" = "$sr" ] && [ "$ss" = "$cr" ] || ok=0
		done
		[ $ok = 1 ] && break
		sleep 0.2
	done
	for f in "$TMP/cli.out" "$TMP/srv.out"; do
		grep -q '^FAIL' "$f" && e2e_fail "$f: $(grep '^FAIL' "$f")"
	done
	[ $ok = 1 ] || e2e_fail "streams do not match after $t s: client sent/recv $cs/$cr, server $ss/$sr"
	e2e_log "streams match: client sent $cs received $cr bytes on connection $((conns - 1))"
}

# tcp_no_lock NETNS: no ferry_lock_* nft table left there.
tcp_no_lock()
{
	if ip netns exec "$1" nft list tables | grep -q ferry_lock_; then
		e2e_fail "a network lock is left in $1: $(ip netns exec "$1" nft list tables)"
	fi
}

# tcp_start_qclient K [OPTION...]: tcpwork qclient writing $TMP/cliK.out; sets
# cport (call it directly, not in $(...): e2e_start_bg)
tcp_start_qclient()
{
	local k=$1

	shift
	e2e_start_bg "cli$k" tcp_in_cli python3 "$TCPWORK" qclient --addr "$SVC" --port "$sport" \
		--out "$TMP/cli$k.out" --pidfile "$TMP/cli$k.pidf" "$@"
	e2e_wait_file "$TMP/cli$k.pidf" 20 || e2e_fail "client $k did not connect: $(cat "$TMP/cli$k.log")"
	cport=$(sed -n 's/^conn 0 local .*[:.]\([0-9]*\) peer .*/\1/p' "$TMP/cli$k.out")
	[ -n "$cport" ] || e2e_fail "client $k: no port in $(cat "$TMP/cli$k.out")"
}

# tcp_wait_state STATE NETNS PORT: the connection with port PORT is in STATE
# (an ss state name) in NETNS, within 10 s
tcp_wait_state()
{
	local i

	for ((i = 0; i < 100; i++)); do
		ip netns exec "$2" ss -Htn state "$1" | grep -q "[:.]$3\b" && return 0
		sleep 0.1
	done
	e2e_fail "no $1 connection with port $3 in $2: $(ip netns exec "$2" ss -tan)"
}

# tcp_migrate_moving: migrate $pid to the destination (mig_start_dest), a
# freeze hook handing the address over (so it is there at the restore);
# must succeed, no lock left; sets outer (the restored server, outside).
tcp_migrate_moving()
{
	local len=32 nodad=

	[ "${TCP_FAM:-4}" = 6 ] && len=128 nodad=nodad
	cat >"$TMP/move.sh" <<EOF
ip -n $E2E_SRC_NS addr del $SVC/$len dev lo &&
ip -n $E2E_DST_NS addr add $SVC/$len dev lo $nodad &&
ip -n $CLI_NS route replace $SVC/$len via $TCP_CD
EOF
	e2e_in_src "$MIGRATE" -v --hook "freeze=sh $TMP/move.sh" --to "$E2E_DST_IP:$port" \
		"${CLI_TLS[@]}" "$pid" >"$TMP/migrate.out" 2>"$TMP/migrate.err"
	rc=$?
	cat "$TMP/migrate.out" "$TMP/migrate.err" >&2
	[ $rc -eq 0 ] || e2e_fail "migrate exited $rc: $(tail -n 1 "$TMP/migrate.err")"
	tcp_migrated
}

# tcp_migrated: after a successful migration of $pid: no lock at either end,
# the source gone; sets outer (the restored server, outside)
tcp_migrated()
{
	tcp_no_lock "$E2E_SRC_NS"
	tcp_no_lock "$E2E_DST_NS"
	e2e_wait_pid_gone "$pid" 10 || e2e_fail "source $pid still there after the migration"
	outer=$(outer_pid "$pid")
	[ -n "$outer" ] || e2e_fail "no process outside with NSpid ... $pid"
	e2e_track_pid "$outer"
}
