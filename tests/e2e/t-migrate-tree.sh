#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 150
#
# A process tree (treework: parent, child, grandchild sharing one out fd and
# a pipe) migrated over mutual TLS to a page server in its own PID
# namespace (streaming restore), and a multi-threaded process (mtwork)
# checkpointed and restored locally. Checked: the same PIDs and parents at
# the destination, the shared file offset (no line overwritten), the pipe
# still carrying every step, nothing lost or repeated, no FAIL, the source
# tree gone; for mtwork every thread back and a clean pthread_join; shmwork
# (a parent and a child sharing anonymous memory and a memfd) checkpointed
# and restored with the memory still shared and its counters going on.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"

e2e_need migrate pageserver restore treework mtwork
TMP=$(e2e_tmpdir)
e2e_tls_certs
port=$(e2e_port)
mig_start_dest 127.0.0.1

# --- a tree over TLS -----------------------------------------------------------
e2e_start_bg tree "$TREEWORK" --out "$TMP/tree.out" --pidfile "$TMP/tree.pid" --tick-ms 10
e2e_wait_file "$TMP/tree.pid" 20 || e2e_fail "treework never wrote its pidfile"
root=$(cat "$TMP/tree.pid")
e2e_wait_for_line "$TMP/tree.out" '^grandchild 2 ' 10 || e2e_fail "treework makes no progress"
child=$(pgrep -P "$root" | head -n 1)
grand=$(pgrep -P "$child" | head -n 1)
[ -n "$child" ] && [ -n "$grand" ] || e2e_fail "treework has no child/grandchild"
e2e_track_pid "$child"
e2e_track_pid "$grand"

"$MIGRATE" --small-dirty 0 --max-rounds 4 --to "127.0.0.1:$port" "${CLI_TLS[@]}" "$root" \
	>"$TMP/m.out" 2>"$TMP/m.err"
rc=$?
cat "$TMP/m.out" "$TMP/m.err" >&2
[ $rc -eq 0 ] || e2e_fail "migrate of the tree exited $rc: $(tail -n 1 "$TMP/m.err")"
for p in "$root" "$child" "$grand"; do
	e2e_wait_pid_gone "$p" 10 || e2e_fail "source process $p still there"
done
for p in "$root" "$child" "$grand"; do
	in_dest test -e "/proc/$p" || e2e_fail "no pid $p at the destination"
done
ppid_of() { in_dest awk '/^PPid:/ { print $2 }' "/proc/$1/status"; }
[ "$(ppid_of "$child")" = "$root" ] || e2e_fail "child's parent is $(ppid_of "$child"), not $root"
[ "$(ppid_of "$grand")" = "$child" ] || e2e_fail "grandchild's parent is $(ppid_of "$grand")"
last=$(grep -c '^step ' "$TMP/tree.out")
e2e_wait_for_line "$TMP/tree.out" "^step $((last + 100)) " 20 ||
	e2e_fail "restored tree stalled: $(tail -n 2 "$TMP/tree.out")"
e2e_wait_for_line "$TMP/tree.out" "^child $((last + 100))\$" 5 || e2e_fail "the child stopped reading"
e2e_assert_no_fail "$TMP/tree.out"
# one shared offset: every line whole, every counter consecutive
awk '
	/^step [0-9]+ pid [0-9]+$/ { if (s && $2 != s + 1) bad = bad " step " s "->" $2; s = $2; next }
	/^child [0-9]+$/ { if (c && $2 != c + 1) bad = bad " child " c "->" $2; c = $2; next }
	/^grandchild [0-9]+ ppid [0-9]+$/ { if (g && $2 != g + 1) bad = bad " grandchild " g "->" $2; g = $2; next }
	/^ready$/ { next }
	{ bad = bad " line " NR ": " $0 }
	END { if (bad) { print bad; exit 1 } }' "$TMP/tree.out" >&2 ||
	e2e_fail "the tree's shared output is broken (see above)"
echo "tree of 3 migrated over TLS: pids $root $child $grand, parents kept"

# --- threads, locally ----------------------------------------------------------
e2e_start_bg mt "$MTWORK" --out "$TMP/mt.out" --pidfile "$TMP/mt.pid" --threads 6 --ticks 60
e2e_wait_file "$TMP/mt.pid" 20 || e2e_fail "mtwork never wrote its pidfile"
mt=$(cat "$TMP/mt.pid")
e2e_wait_for_line "$TMP/mt.out" '^step 5 ' 10 || e2e_fail "mtwork makes no progress"
"$MIGRATE" --images-dir "$TMP/img" "$mt" >&2 || e2e_fail "checkpoint of mtwork failed"
e2e_wait_pid_gone "$mt" 10 || e2e_fail "mtwork $mt still there after the checkpoint"
top=$(ls -d "$TMP"/img/*/* | sort -V | tail -n 1)
"$FERRY_BUILD/restore" --images-dir "$top" >&2 || e2e_fail "restore of mtwork failed"
e2e_track_pid "$mt"
n=$(ls "/proc/$mt/task" | wc -l)
[ "$n" -eq 7 ] || e2e_fail "restored mtwork has $n threads, not 7"
e2e_wait_for_line "$TMP/mt.out" '^done$' 20 || e2e_fail "mtwork did not finish: $(tail -n 2 "$TMP/mt.out")"
e2e_assert_no_fail "$TMP/mt.out"
e2e_assert_steps_continuous "$TMP/mt.out" 60
echo "mtwork with 6 threads checkpointed, restored, joined its threads"

# --- shared memory between a parent and its child, locally ----------------------
e2e_start_bg shm python3 "$FERRY_ROOT/tests/workloads/shmwork.py" "$TMP/shm.out" "$TMP/shm.pid"
e2e_wait_file "$TMP/shm.pid" 20 || e2e_fail "shmwork never wrote its pidfile"
sp=$(cat "$TMP/shm.pid")
e2e_wait_for_line "$TMP/shm.out" '^step 20 ' 10 || e2e_fail "shmwork makes no progress"
sc=$(pgrep -P "$sp" | head -n 1)
[ -n "$sc" ] || e2e_fail "shmwork has no child"
e2e_track_pid "$sc"
"$MIGRATE" --images-dir "$TMP/shmimg" "$sp" >&2 || e2e_fail "checkpoint of shmwork failed"
e2e_wait_pid_gone "$sp" 10 || e2e_fail "shmwork $sp still there"
e2e_wait_pid_gone "$sc" 10 || e2e_fail "shmwork's child $sc still there"
before=$(tail -n 1 "$TMP/shm.out" | awk '{ print $6 }')
top=$(ls -d "$TMP"/shmimg/*/* | sort -V | tail -n 1)
[ -s "$top/shmem.img" ] || e2e_fail "no shmem.img in the final round"
"$FERRY_BUILD/restore" --images-dir "$top" >&2 || e2e_fail "restore of shmwork failed"
e2e_track_pid "$sp"
e2e_track_pid "$sc"
last=$(grep -c '^step ' "$TMP/shm.out")
e2e_wait_for_line "$TMP/shm.out" "^step $((last + 50)) " 20 || e2e_fail "restored shmwork stalled"
e2e_assert_no_fail "$TMP/shm.out"
after=$(tail -n 1 "$TMP/shm.out" | awk '{ print $6 }')
[ "$after" -gt "$before" ] || e2e_fail "shared counter did not go on: $before -> $after"
m1=$(stat -L -c %i "/proc/$sp/fd/4" 2>/dev/null)
grep -q " $m1 .*/memfd:shmwork" "/proc/$sp/maps" || e2e_fail "the memfd fd and its mapping are not one object"
echo "shared anonymous memory and a memfd shared by parent and child: counters went on ($before -> $after)"
