#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 300
#
# A migration of a server with an established TCP connection that fails
# after the final freeze leaves the connection working at the source
# (issue 10). The topology and workload of t-tcp-migrate.sh; the server
# goes through:
#   a. the restore refused at the destination (a --restore-cmd that fails):
#      the source's connection was locked (nft) and in repair mode;
#   b. the page server killed while the destination holds the restored copy
#      (FERRY_TEST_PAUSE_AT=held): there, the connection existed in repair
#      mode and locked too, and is discarded silently, the lock there removed;
#      A client connecting while it holds gets no answer (its SYNs are
#      dropped: the listener is locked too), and is connected after the
#      rollback;
# and after each: migrate exits 1 with a reason, the server runs on at the
# source with its pid, untraced, no lock table is left, the client (same
# port, never reconnected) gets several MB more both ways. Finally both
# stop sending and what each end sent is what the other received.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tcp-lib.sh"

e2e_need migrate pageserver restore
command -v nft >/dev/null || e2e_skip "no nft (Debian package nftables)"
TMP=$(e2e_tmpdir)
e2e_tls_certs
tcp_topology 4
tcp_start_server
tcp_start_client
tcp_wait_progress "$TMP/cli.out" $((2 * 1024 * 1024)) 30

# source_ok CASE: the server runs at the source as before.
source_ok()
{
	[ -e "/proc/$pid" ] || e2e_fail "$1: the source $pid is gone"
	grep -q '^TracerPid:[[:space:]]*0$' "/proc/$pid/status" || e2e_fail "$1: source still traced"
	tcp_no_lock "$E2E_SRC_NS"
	tcp_wait_progress "$TMP/cli.out" $((2 * 1024 * 1024)) 60
	tcp_wait_progress "$TMP/srv.out" $((2 * 1024 * 1024)) 60
	[ "$(grep -c '^conn ' "$TMP/cli.out")" = 1 ] || e2e_fail "$1: the client connected again"
	e2e_in_src ss -tn state established | grep -q ":$cport\b" ||
		e2e_fail "$1: the source has no connection from client port $cport"
	e2e_log "$1: the source's connection works on"
}

# descendant PID NAME: the first descendant of PID whose name is NAME.
descendant()
{
	local p c

	for c in $(pgrep -P "$1"); do
		[ "$(cat "/proc/$c/comm" 2>/dev/null)" = "$2" ] && echo "$c" && return 0
		p=$(descendant "$c" "$2") && [ -n "$p" ] && echo "$p" && return 0
	done
	return 1
}

# --- a. restore refused at the destination ----------------------------------
printf '#!/bin/sh\necho "restore: refused by the test" >&2\nexit 1\n' >"$TMP/fail-restore"
chmod +x "$TMP/fail-restore"
port=$(e2e_port)
mkdir -p "$TMP/dsta"
e2e_start_bg desta e2e_in_dst "$PAGESERVER" -v --listen "$E2E_DST_IP:$port" --images-dir "$TMP/dsta" \
	--once --no-stream --restore-cmd "$TMP/fail-restore" "${SRV_TLS[@]}"
e2e_wait_port "$port" 10 "$E2E_DST_NS" || e2e_fail "a. pageserver does not listen"
e2e_in_src "$MIGRATE" --to "$E2E_DST_IP:$port" "${CLI_TLS[@]}" "$pid" >"$TMP/a.out" 2>"$TMP/a.err"
rc=$?
cat "$TMP/a.err" >&2
[ $rc = 5 ] || e2e_fail "a. migrate exited $rc (5: the destination failed)"
grep -q 'restore at the destination failed' "$TMP/a.err" || e2e_fail "a. no reason: $(cat "$TMP/a.err")"
source_ok "a. restore refused"

# --- b. page server killed while the destination holds -----------------------
port=$(e2e_port)
mkdir -p "$TMP/dstb"
export C
e2e_start_bg destb e2e_in_dst unshare --pid --fork --mount-proc --kill-child -- \
	bash -c 'e2e_pidns_pageserver "$@"' _ "$E2E_DST_IP:$port" "$TMP/dstb" --once
destb=$E2E_LAST_PID
e2e_wait_port "$port" 10 "$E2E_DST_NS" || e2e_fail "b. pageserver does not listen"
e2e_in_src env FERRY_TEST_PAUSE_AT=held "$MIGRATE" --to "$E2E_DST_IP:$port" "${CLI_TLS[@]}" \
	"$pid" >"$TMP/b.out" 2>"$TMP/b.err" &
mpid=$!
e2e_wait_for_line "$TMP/b.err" 'paused at held' 90 || e2e_fail "b. migrate never held: $(cat "$TMP/b.err")"
# the pause is 3 s: stopped, migrate holds (and the source stays frozen) until SIGCONT
mig=$(descendant "$mpid" migrate)
[ -n "$mig" ] || e2e_fail "b. no migrate process"
kill -STOP "$mig"
e2e_in_dst ss -tn state established | grep -q ":$cport\b" ||
	e2e_fail "b. the held copy at the destination has no connection"
# a new client meanwhile: its SYNs are dropped at the source (not queued, not reset)
e2e_start_bg late tcp_in_cli python3 -c "
import socket, sys
s = socket.create_connection(('$SVC', $sport), timeout=40)
open('$TMP/late.ok', 'w').write('connected\n')" 
sleep 2
[ ! -e "$TMP/late.ok" ] || e2e_fail "b. a new connection was accepted by the frozen source"
ps_pid=$(descendant "$destb" pageserver)
[ -n "$ps_pid" ] || e2e_fail "b. no page server to kill"
kill -KILL "$ps_pid"
e2e_wait_pid_gone "$ps_pid" 10
sleep 1		# its connection's end reached migrate: no COMMIT goes out (handover.md)
kill -CONT "$mig"
wait $mpid
rc=$?
cat "$TMP/b.err" >&2
[ $rc = 5 ] || e2e_fail "b. migrate exited $rc (5: the destination went away)"
source_ok "b. page server killed while held"
e2e_wait_file "$TMP/late.ok" 30 ||
	e2e_fail "b. the new connection made during the freeze never completed: $(cat "$TMP/late.log")"
for ((i = 0; i < 100; i++)); do
	e2e_in_dst ss -tn state established | grep -q ":$cport\b" || break
	sleep 0.1
done
[ $i -lt 100 ] || e2e_fail "b. the discarded copy's connection is still at the destination"
for ((i = 0; i < 100; i++)); do
	e2e_in_dst nft list tables | grep -q ferry_lock_ || break
	sleep 0.1
done
tcp_no_lock "$E2E_DST_NS"

tcp_check_streams "$pid" 60
echo "PASS: the source's TCP connection (client port $cport) survived two failed migrations"
