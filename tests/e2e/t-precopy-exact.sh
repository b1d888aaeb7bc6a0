#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 120
#
# Pre-copy rounds of a 256 MiB memwork (rewriting a known set of pages
# every few ms) to a real page server over TLS, driven one at a time by a
# scripted session: round 1 holds every page, later rounds about what was
# written in between; then memwork is made quiescent and stopped, one more
# round runs, and the top of the stack at the destination must equal its
# memory byte for byte (/proc/PID/mem). A page changed by hand
# afterwards must be seen as different (the check can fail). memwork runs
# on unharmed afterwards.
. "$(dirname "$0")/lib.sh"

M=$FERRY_BUILD/migrate
e2e_need stackcmp
TMP=$(e2e_tmpdir)
e2e_tls_certs
port=$(e2e_port)
e2e_start_pageserver ps "$port" "$TMP/dst" --no-restore

e2e_start_bg mw "$E2E_MEMWORK" --mem 256 --dirty 64 --tick-ms 5 --check-every 50 \
	--out "$TMP/out" --pidfile "$TMP/pid" --pause-file "$TMP/pause"
e2e_wait_file "$TMP/pid" 30 || e2e_fail "memwork never wrote its pidfile"
pid=$(cat "$TMP/pid")
S=$TMP/session.sock
e2e_on_exit "[ -S $S ] && $M --abort --session $S >/dev/null 2>&1"
"$M" --pre-dump --session "$S" --id exact --to "127.0.0.1:$port" "${CLI_TLS[@]}" --json "$pid" \
	>"$TMP/r1" || e2e_fail "round 1 failed"
for r in 2 3; do
	sleep 0.2
	"$M" --pre-dump --session "$S" --json >"$TMP/r$r" || e2e_fail "round $r failed"
done
cat "$TMP"/r[123] >&2
stack=$TMP/dst/exact
p1=$(stat -c %s "$stack/1/pages-$pid.img")
[ "$p1" -ge $((250 << 20)) ] || e2e_fail "round 1 holds only $p1 bytes"
for r in 2 3; do
	dirty=$(sed -n 's/.*"pages_sent":\([0-9]*\).*/\1/p' "$TMP/r$r")
	size=$(stat -c %s "$stack/$r/pages-$pid.img")
	[ "$size" -eq $((dirty * 4096)) ] || e2e_fail "round $r: $size bytes for $dirty pages sent"
	[ "$size" -lt $((p1 / 4)) ] || e2e_fail "round $r resent most of the memory ($size bytes)"
done

touch "$TMP/pause"
e2e_wait_for_line "$TMP/out" '^paused$' 10 || e2e_fail "memwork did not pause"
# Stopped before the last round: even a quiescent process has memory the
# kernel writes (its rseq area's cpu id, when it moves between CPUs).
kill -STOP "$pid"
"$M" --pre-dump --session "$S" >&2 || { kill -CONT "$pid"; e2e_fail "round 4 failed"; }
"$CMP" "$stack/4" "$pid" >&2 || { kill -CONT "$pid"; e2e_fail "the top of the stack differs from the memory"; }
# the check must be able to fail: change one heap byte by hand
heap=$(sed -n 's/^heap \(0x[0-9a-f]*\) .*/\1/p' "$TMP/out")
python3 -c "
import os, sys
fd = os.open('/proc/$pid/mem', os.O_RDWR)
a = $heap + 4096 * 100 + 123
b = os.pread(fd, 1, a)
os.pwrite(fd, bytes([b[0] ^ 0xff]), a)
os.pwrite(fd, b, a) if len(sys.argv) > 1 else None
" || e2e_fail "cannot poke memwork's memory"
if "$CMP" "$stack/4" "$pid" >"$TMP/cmp2"; then
	kill -CONT "$pid"
	e2e_fail "a changed byte went unnoticed"
fi
grep -q '1 differ' "$TMP/cmp2" || e2e_fail "expected exactly one page to differ: $(cat "$TMP/cmp2")"
# put the byte back so memwork's own checks stay meaningful
python3 -c "
import os
fd = os.open('/proc/$pid/mem', os.O_RDWR)
a = $heap + 4096 * 100 + 123
b = os.pread(fd, 1, a)
os.pwrite(fd, bytes([b[0] ^ 0xff]), a)
"
kill -CONT "$pid"
"$M" --abort --session "$S" >&2 || e2e_fail "abort failed"
rm -f "$TMP/pause"
e2e_wait_for_line "$TMP/out" '^resumed$' 10 || e2e_fail "memwork did not resume"
last=$(grep -c '^step ' "$TMP/out")
e2e_wait_for_line "$TMP/out" "^step $((last + 100)) " 20 || e2e_fail "memwork stalled after the session"
grep -q '^TracerPid:[[:space:]]*0$' "/proc/$pid/status" || e2e_fail "memwork still traced"
e2e_assert_no_fail "$TMP/out"
echo "4 rounds, top of stack equal to /proc/$pid/mem byte for byte; a poked byte was caught"
