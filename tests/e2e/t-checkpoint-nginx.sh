#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 120
#
# nginx after a restore (issue 12): a master running as root with two
# workers running as nobody (nginx's default set-up) is checkpointed and
# restored (same pids); it serves; a reload (SIGHUP) then starts new workers
# and the old ones exit within 5 s, as without a migration (they used to
# stay forever: the master's channel sockets lost O_ASYNC, F_SETOWN and
# O_NONBLOCK). The new workers serve too.
. "$(dirname "$0")/lib.sh"

command -v nginx >/dev/null || e2e_skip "no nginx"
e2e_need migrate restore
TMP=$(e2e_tmpdir)
port=$(e2e_port)
N=$TMP/ngx
e2e_nginx_conf "$N" "server { listen 127.0.0.1:$port; location / { return 200 \"hello from \$pid\\n\"; } }"

# workers: the master's children, sorted
workers() { pgrep -P "$1" | sort -n | tr '\n' ' '; }

# get: one request; the answer (names the worker's pid)
get() { curl -s --max-time 5 "http://127.0.0.1:$port/"; }

e2e_start_bg nginx nginx -c "$N/nginx.conf" -p "$N/"
M=$E2E_LAST_PID
_e2e_deadline 10
until [ -s "$N/nginx.pid" ] && [ "$(pgrep -P "$M" | wc -l)" -eq 2 ] && get >/dev/null; do
	_e2e_expired "$_E2E_DL" && e2e_fail "nginx did not start: $(tail -n 3 "$N/logs/error.log")"
	sleep 0.1
done
[ "$(cat "$N/nginx.pid")" = "$M" ] || e2e_fail "the master is not pid $M"
old=$(workers "$M")
for w in $old; do
	[ "$(stat -c %U "/proc/$w")" = nobody ] || e2e_fail "worker $w does not run as nobody"
done
e2e_log "master $M, workers $old"

e2e_checkpoint "$TMP/img" "$M" nginx
for w in $old; do e2e_wait_pid_gone "$w" 10 || e2e_fail "worker $w still there"; done
e2e_restore "$TMP/img" "$M" nginx
[ "$(workers "$M")" = "$old" ] || e2e_fail "restored workers '$(workers "$M")', expected '$old'"
a=$(get) || e2e_fail "the restored nginx does not answer"
e2e_log "restored: $a"

kill -HUP "$M"
_e2e_deadline 5
for w in $old; do
	until ! [ -e "/proc/$w" ] || [ "$(_e2e_state "$w")" = Z ]; do
		_e2e_expired "$_E2E_DL" &&
			e2e_fail "old worker $w did not exit within 5 s of the reload: $(tail -n 5 "$N/logs/error.log")"
		sleep 0.1
	done
done
_e2e_deadline 5
until [ "$(pgrep -P "$M" | wc -l)" -eq 2 ]; do
	_e2e_expired "$_E2E_DL" && e2e_fail "no two new workers: '$(workers "$M")'"
	sleep 0.1
done
new=$(workers "$M")
for w in $new; do
	[[ " $old " == *" $w "* ]] && e2e_fail "worker $w is an old one"
done
a=$(get) || e2e_fail "the reloaded nginx does not answer"
grep -q 'reconfiguring' "$N/logs/error.log" || e2e_fail "nginx did not log the reload"
e2e_log "reloaded: workers $new, $a"
kill -QUIT "$M"
e2e_wait_pid_gone "$M" 10 || e2e_fail "nginx does not quit"
echo "PASS: nginx restored, reloaded, old workers gone"
