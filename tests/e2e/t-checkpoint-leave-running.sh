#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 150
#
# `migrate --leave-running --images-dir`: the source keeps running (not
# traced, steps continuous, its self-checks pass), and the checkpoint is
# restored beside it with `restore --pidns` into a fresh PID namespace where
# the copy keeps the old pid (memwork checks getpid() itself, and writes
# its pid in every step line). Both then run side by side.
#
# Both would write the same out file: restore runs in a private mount
# namespace where a copy of the out file, cut at the offset the checkpoint
# saved for that fd, is bind-mounted over the original path. The copy's
# steps must then continue exactly from where the checkpoint froze it.
. "$(dirname "$0")/lib.sh"

e2e_need migrate restore memwork
TMP=$(e2e_tmpdir)
CHECK_EVERY=20

# fdpos FILES_IMG FD: the saved file position of FD (files-<pid>.img is a
# u32 magic, then u32-length-prefixed files_entry messages; see
# proto/images.proto: files_entry.fds = 1, fd_entry.fd = 1, .pos = 6).
fdpos()
{
	python3 - "$1" "$2" <<-'EOF'
		import struct, sys
		def varint(b, i):
		    r = s = 0
		    while True:
		        c = b[i]; i += 1; r |= (c & 0x7f) << s; s += 7
		        if not c & 0x80:
		            return r, i
		def fields(b):
		    i, out = 0, []
		    while i < len(b):
		        k, i = varint(b, i)
		        f, t = k >> 3, k & 7
		        if t == 0: v, i = varint(b, i)
		        elif t == 2: n, i = varint(b, i); v = b[i:i + n]; i += n
		        elif t == 1: v = b[i:i + 8]; i += 8
		        elif t == 5: v = b[i:i + 4]; i += 4
		        else: sys.exit("bad wire type %d" % t)
		        out.append((f, v))
		    return out
		d = open(sys.argv[1], "rb").read()
		i = 4
		while i + 4 <= len(d):
		    n = struct.unpack_from("<I", d, i)[0]; i += 4
		    for f, v in fields(d[i:i + n]):
		        if f == 1:
		            e = dict(fields(v))
		            if e.get(1) == int(sys.argv[2]):
		                print(e.get(6, 0)); sys.exit(0)
		    i += n
		sys.exit("fd %s not in %s" % (sys.argv[2], sys.argv[1]))
	EOF
}

e2e_start_workload memwork '^step 50 ' "$E2E_MEMWORK" --mem 128 --dirty 32 --tick-ms 5 \
	--check-every $CHECK_EVERY --out "$TMP/out" --pidfile "$TMP/pid"
outfd=$(basename "$(find "/proc/$pid/fd" -lname "$TMP/out")")
[ -n "$outfd" ] || e2e_fail "memwork has no fd on $TMP/out"

e2e_checkpoint_json "$pid" --leave-running
top=$stack/$rounds
[ -f "$top/core-$pid.img" ] || e2e_fail "final round $top has no core-$pid.img"

# --- the source runs on -----------------------------------------------------
[ -e "/proc/$pid" ] || e2e_fail "source $pid gone after --leave-running"
grep -q '^TracerPid:[[:space:]]*0$' "/proc/$pid/status" || e2e_fail "source still traced"
state=$(_e2e_state "$pid")
case $state in
R | S) ;;
*) e2e_fail "source in state $state after --leave-running" ;;
esac
n0=$(grep -c '^step ' "$TMP/out")
e2e_wait_for_line "$TMP/out" "^step $((n0 + 2 * CHECK_EVERY)) pid $pid " 10 ||
	e2e_fail "source stalled after --leave-running: $(tail -n 1 "$TMP/out")"

# --- the copy, in its own PID and mount namespaces ---------------------------
pos=$(fdpos "$top/files-$pid.img" "$outfd") || e2e_fail "cannot read the saved offset of fd $outfd"
[ "$pos" -gt 0 ] || e2e_fail "saved offset of the out file is $pos"
head -c "$pos" "$TMP/out" >"$TMP/copy.out"
[ "$(tail -c 1 "$TMP/copy.out" | od -An -c | tr -d ' ')" = '\n' ] ||
	e2e_fail "saved offset $pos is not at a line end"
clast=$(grep '^step ' "$TMP/copy.out" | tail -n 1 | awk '{ print $2 }')
e2e_log "checkpoint froze memwork after step $clast (out file offset $pos)"

unshare --mount --propagation private -- bash -c '
	mount --bind "$1" "$2" || exit 99
	shift 2
	exec "$@"' _ "$TMP/copy.out" "$TMP/out" \
	"$RESTORE" -v --pidns --images-dir "$top" >"$TMP/restore.out" 2>"$TMP/restore.err"
rc=$?
cat "$TMP/restore.out" "$TMP/restore.err" >&2
[ $rc -ne 99 ] || e2e_fail "cannot bind-mount the copy's out file"
[ $rc -eq 0 ] || e2e_fail "restore --pidns exited $rc: $(tail -n 1 "$TMP/restore.err")"
grep -Eq "^restored pid $pid in [0-9.]+ ms$" "$TMP/restore.out" ||
	e2e_fail "restore --pidns printed no 'restored pid $pid in X ms'"

# The copy: a process whose innermost pid is $pid, in another PID namespace.
copy=
for s in /proc/[0-9]*/status; do
	p=${s#/proc/}
	p=${p%/status}
	[ "$p" = "$pid" ] && continue
	if grep -Eq "^NSpid:[[:space:]]+${p}[[:space:]]+(.*[[:space:]])?${pid}\$" "$s" 2>/dev/null; then
		copy=$p
		break
	fi
done
if [ -n "$copy" ]; then
	e2e_track_pid "$copy"
	cns=$(readlink "/proc/$copy/ns/pid")
	# also whatever else lives in that namespace (an init restore made)
	for n in /proc/[0-9]*/ns/pid; do
		p=${n#/proc/}
		p=${p%/ns/pid}
		[ "$(readlink "$n" 2>/dev/null)" = "$cns" ] && e2e_track_pid "$p"
	done
	e2e_log "copy: pid $copy outside, $pid inside $cns ($(grep NSpid "/proc/$copy/status"))"
fi
sleep 1
[ -n "$copy" ] && [ -e "/proc/$copy" ] && [ "$(_e2e_state "$copy")" != Z ] || {
	e2e_log "copy.out after the checkpoint: $(tail -c +$((pos + 1)) "$TMP/copy.out" | head -n 3)"
	e2e_fail "the restored copy is not running 1 s after 'restore --pidns' returned" \
		"(outside pid ${copy:-not found})"
}
[ "$(readlink "/proc/$copy/ns/pid")" != "$(readlink "/proc/$pid/ns/pid")" ] ||
	e2e_fail "the copy is in the source's PID namespace"
e2e_wait_for_line "$TMP/copy.out" "^step $((clast + 1)) pid $pid " 5 ||
	e2e_fail "the copy wrote no step $((clast + 1)) with pid $pid"
# the copy's signals, from outside through its outer pid
kill -USR1 "$copy"
e2e_wait_for_line "$TMP/copy.out" '^usr1 1$' 5 || e2e_fail "copy: no 'usr1 1'"
kill -USR2 "$copy"
e2e_wait_for_line "$TMP/copy.out" '^usr2 1 altstack ok$' 5 || e2e_fail "copy: no 'usr2 1 altstack ok'"
grep -q '^usr1' "$TMP/out" && e2e_fail "the copy's signal reached the source"

# both run side by side for a while, several whole-heap checks each
e2e_wait_for_line "$TMP/copy.out" "^step $((clast + 5 * CHECK_EVERY)) " 30 ||
	e2e_fail "copy stalled: $(tail -n 1 "$TMP/copy.out")"
sl=$(grep '^step ' "$TMP/out" | tail -n 1 | awk '{ print $2 }')
e2e_wait_for_line "$TMP/out" "^step $((sl + 2 * CHECK_EVERY)) " 10 ||
	e2e_fail "source stalled while the copy runs"
for p in "$pid" "$copy"; do
	[ -e "/proc/$p" ] && [ "$(_e2e_state "$p")" != Z ] || e2e_fail "pid $p died"
done
e2e_assert_no_fail "$TMP/out"
e2e_assert_no_fail "$TMP/copy.out"
e2e_assert_steps_continuous "$TMP/out" $((sl + CHECK_EVERY))
e2e_assert_steps_continuous "$TMP/copy.out" $((clast + 5 * CHECK_EVERY))
if grep '^step ' "$TMP/copy.out" | grep -vq " pid $pid "; then
	e2e_fail "the copy wrote a step with another pid: $(grep '^step ' "$TMP/copy.out" | grep -v " pid $pid " | head -n 1)"
fi
echo "leave-running + restore --pidns ok: source $pid and its copy (outside $copy) both run"
