#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 90
#
# Strangers must not lock real sources out of a page server (mutual TLS):
#   i.  TCP connections that never begin TLS, kept open and renewed as the
#       server drops them: 10 from 127.0.0.2 (over the per-address bound of
#       4: refused) and 4 from each of 127.0.0.3..12 (over the 32 pending
#       in all: the oldest dropped). A real source from 127.0.0.1 still
#       gets through, every time.
#   ii. 8 authenticated sources that say hello and then nothing: all 8
#       session slots are taken, a ninth hello is refused as busy; once
#       they have been silent for 12 s, a real source evicts one and gets
#       through. Every refusal, drop and eviction is a log line.
. "$(dirname "$0")/lib.sh"

PSC=$FERRY_BUILD/tests/tools/psclient
[ -x "$FERRY_BUILD/pageserver" ] && [ -x "$PSC" ] || e2e_fail "build pageserver and psclient first"
command -v python3 >/dev/null || e2e_skip "no python3"
TMP=$(e2e_tmpdir)
e2e_tls_certs
port=$(e2e_port)
e2e_start_pageserver ps "$port" "$TMP/images" --no-restore -v
ps_pid=$E2E_LAST_PID

MODEL=(--seed 5 --pids 1 --pages 256 --dirty 20)
send()
{
	timeout -k 5 30 "$PSC" send --to "127.0.0.1:$port" "${CLI_TLS[@]}" "${MODEL[@]}" "$@"
}

# --- i. silent TCP connections, renewed ---------------------------------------------
cat >"$TMP/flood.py" <<'EOF'
import select, socket, sys, time
port = int(sys.argv[1])
# (source address, how many): never a byte sent; reconnect when dropped
want = [("127.0.0.2", 10)] + [("127.0.0.%d" % a, 4) for a in range(3, 13)]
socks = {}
def connect(addr):
    s = socket.socket()
    s.bind((addr, 0))
    try:
        s.connect(("127.0.0.1", port))
    except OSError:
        s.close()
        return None
    return s
for addr, n in want:
    for _ in range(n):
        s = connect(addr)
        if s:
            socks[s] = addr
end = time.time() + float(sys.argv[2])
renewed = 0
while time.time() < end:
    time.sleep(0.2)
    r, _, _ = select.select(list(socks), [], [], 0.2)
    for s in r:
        try:
            gone = not s.recv(1)
        except OSError:
            gone = True
        if gone:
            addr = socks.pop(s)
            s.close()
            n = connect(addr)
            if n:
                socks[n] = addr
                renewed += 1
print("renewed", renewed, flush=True)
EOF
e2e_start_bg flood python3 "$TMP/flood.py" "$port" 14
flood=$E2E_LAST_PID
e2e_wait_for_line "$TMP/ps.log" "refused: 4 connections from 127.0.0.2" 10 ||
	e2e_fail "i. no per-address refusal logged"
e2e_wait_for_line "$TMP/ps.log" "oldest of 32 pending connections, dropped" 10 ||
	e2e_fail "i. the oldest pending connection was not dropped"
for k in 1 2 3; do
	send --rounds 1 >"$TMP/i$k.out" 2>&1 ||
		e2e_fail "i. real source $k locked out by silent connections: $(cat "$TMP/i$k.out")"
	sleep 1.5
done
e2e_wait_pid_gone "$flood" 20 || e2e_fail "i. the flood did not end"
grep -q "renewed [1-9]" "$TMP/flood.log" || e2e_fail "i. nothing was renewed: $(cat "$TMP/flood.log")"
e2e_log "i. $(cat "$TMP/flood.log")"
# One silent connection left alone: the handshake deadline ends it.
exec {silent}<>"/dev/tcp/127.0.0.1/$port"
e2e_wait_for_line "$TMP/ps.log" "dropped: no hello within 5 s of connecting" 8 ||
	e2e_fail "i. a silent connection was not dropped at the handshake deadline"
exec {silent}>&-

# --- ii. authenticated sources that stall after hello -------------------------------
# one after the other: at most MAX_PENDING_PER_ADDR (4) handshakes from one
# address at once, and 8 started together overlap on a loaded machine
stall=()
for k in 1 2 3 4 5 6 7 8; do
	"$PSC" stall --to "127.0.0.1:$port" "${CLI_TLS[@]}" --pause 40000 >"$TMP/stall$k.out" 2>&1 &
	stall+=($!)
	e2e_track_pid $!
	e2e_wait_for_line "$TMP/stall$k.out" "^id=" 10 || e2e_fail "ii. staller $k: $(cat "$TMP/stall$k.out")"
done
t0=$(date +%s)
send --rounds 1 >"$TMP/busy.out" 2>&1 && e2e_fail "ii. a ninth session got in while 8 are fresh"
grep -q "busy: 8 sessions active" "$TMP/busy.out" || e2e_fail "ii. no busy refusal: $(cat "$TMP/busy.out")"
grep -q "dropped: busy: 8 sessions active" "$TMP/ps.log" || e2e_fail "ii. busy refusal not logged"
left=$((13 - ($(date +%s) - t0)))
[ "$left" -gt 0 ] && sleep "$left"
send --rounds 1 >"$TMP/evict.out" 2>&1 || e2e_fail "ii. no room after 13 s: $(cat "$TMP/evict.out")"
grep -q "dropped: evicted: silent for" "$TMP/ps.log" || e2e_fail "ii. eviction not logged"
e2e_log "ii. $(grep -c 'dropped: evicted' "$TMP/ps.log") eviction(s)"
kill "${stall[@]}" 2>/dev/null
kill -0 "$ps_pid" 2>/dev/null || e2e_fail "the page server died"
echo "PASS"
