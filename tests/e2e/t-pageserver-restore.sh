#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 120
#
# Restores driven by the page server, with a stand-in restore command that
# logs what it is asked:
# - streaming: after the first committed round `CMD --stream DIR/<id> --status-fd 3
#   --hold --hold-timeout 30 --lazy-fill` (without it: --no-lazy-fill), "round K" on its stdin per committed round, "final N"
#   for the last one; a session that ends early says "abort";
# - plain: `CMD --images-dir DIR/<id>/<N> --status-fd 3 --hold --hold-timeout 30`
#   (--no-stream, a session whose first round is final, a stream restore that died early);
# - the hold (docs/handover.md): the restore says "held", psclient commits, the
#   restore is told "resume" and says "resumed";
# - restore_result: ok, the "failed REASON" status line on failure (stderr is
#   only logged), a missing command; a child holding its pipes open does not
#   hold the result back;
# - the lazy fill: "filling" after "resumed" sends the result at once (before
#   the exit); the fill's end, or its failure, is only logged;
# - --once exit codes: 0 for a completed migration, 1 otherwise.
. "$(dirname "$0")/lib.sh"

e2e_pageserver_setup
mkdir -p "$IMG"
MODEL=(--seed 2 --pids 1 --pages 512 --files)

# fake-restore: logs its arguments and stdin lines to $TMP/log; the final
# restore fails (exit 3) if $TMP/fail exists; with $TMP/die --stream dies at once;
# with $TMP/lazy it says "filling" after "resumed" and exits 2 s later (1 with $TMP/lazyfail).
# Status lines (docs/restore-protocol.md) go to the fd after --status-fd.
cat >"$TMP/fake-restore" <<EOS
#!/bin/bash
echo "args \$*" >>"$TMP/log"
[ "\$3" = --status-fd ] || { echo "restore: no --status-fd" >&2; exit 2; }
sfd=\$4
[ -e "$TMP/die" ] && [ "\$1" = --stream ] && { echo "restore: cannot start" >&2; exit 5; }
fin()
{
	if [ -e "$TMP/fail" ]; then
		echo "restore: reading images" >&2
		echo "restore: failed: pid 1000 is taken on this host" >&2
		echo "failed pid 1000 is taken on this host" >&\$sfd
		echo "restore: a last line for people only" >&2
		exit 3
	fi
	echo "held" >&\$sfd
	read -r cmd
	echo "\$cmd" >>"$TMP/log"
	[ "\$cmd" = resume ] || exit 1
	echo "resumed" >&\$sfd
	if [ -e "$TMP/lazy" ]; then
		echo "filling" >&\$sfd
		sleep 2
		[ -e "$TMP/lazyfail" ] && { echo "failed lazy fill failed after the process ran" >&\$sfd; exit 1; }
	fi
	echo "restore: done" >&2
	exit 0
}
[ "\$1" = --images-dir ] && fin
while read -r cmd n; do
	echo "\$cmd \$n" >>"$TMP/log"
	case \$cmd in
	round) echo "prefilled \$n" >&\$sfd ;;
	final) fin ;;
	abort) exit 1 ;;
	esac
done
echo "eof" >>"$TMP/log"
exit 1
EOS
# Its child keeps stderr and the status pipe open for a long while: the result must not wait for it.
cat >"$TMP/sticky-restore" <<EOS
#!/bin/bash
[ "\$1" = --stream ] && exit 1
sleep 30 &
echo "restore: done, child still running" >&2
exit 0
EOS
chmod +x "$TMP"/*-restore

# serve NAME CMD [ARGS]: a --once pageserver running CMD as its restore command.
serve()
{
	local name=$1 cmd=$2

	shift 2
	rm -f "$TMP/log" "$TMP/fail" "$TMP/die" "$TMP/lazy" "$TMP/lazyfail"
	port=$(e2e_port)
	e2e_start_pageserver "$name" "$port" "$IMG" --once --restore-cmd "$cmd" -v "$@"
	ps_pid=$E2E_LAST_PID
}

send()
{
	"$PSC" send --to "127.0.0.1:$port" "${CLI_TLS[@]}" "${MODEL[@]}" --id-file "$TMP/id" "$@"
}

# once_done: wait for the --once pageserver (a child of this shell); rc = its exit code.
once_done()
{
	wait "$ps_pid"
	rc=$?
}

expect_log()
{
	local want=$1

	[ "$(cat "$TMP/log" 2>/dev/null)" = "$want" ] ||
		e2e_fail "restore was asked:"$'\n'"$(cat "$TMP/log" 2>/dev/null)"$'\n'"expected:"$'\n'"$want"
}

# 1. Streaming: three rounds, the last final.
serve stream "$TMP/fake-restore"
send --rounds 3 --final >"$TMP/c1.out" || e2e_fail "stream restore: $(cat "$TMP/c1.out")"
id=$(cat "$TMP/id")
grep -q '^restore ok=1 ' "$TMP/c1.out" || e2e_fail "no ok result: $(cat "$TMP/c1.out")"
expect_log "args --stream $IMG/$id --status-fd 3 --hold --hold-timeout 30 --lazy-fill"$'\n'"round 1"$'\n'"round 2"$'\n'"final 3"$'\n'"resume"
once_done
[ "$rc" = 0 ] || e2e_fail "--once exit code $rc after a completed migration"

# 2. Streaming, the final restore fails: its "failed" status comes back; exit 1.
serve stream-fail "$TMP/fake-restore"
touch "$TMP/fail"
send --rounds 2 --final >"$TMP/c2.out"
[ $? -eq 4 ] || e2e_fail "psclient did not report a failed restore: $(cat "$TMP/c2.out")"
grep -q '^restore ok=0 .*error=restore: failed: pid 1000 is taken on this host$' "$TMP/c2.out" ||
	e2e_fail "wrong error: $(cat "$TMP/c2.out")"
once_done
[ "$rc" = 1 ] || e2e_fail "--once exit code $rc after a failed restore"

# 3. The session ends after pre-copy rounds: the stream restore is told to abort
# (--no-lazy-fill: the restore is run without --lazy-fill).
serve stream-abort "$TMP/fake-restore" --no-lazy-fill
send --rounds 2 >/dev/null || e2e_fail "pre-copy session failed"
once_done
[ "$rc" = 0 ] || e2e_fail "--once exit code $rc after a clean pre-copy session"
expect_log "args --stream $IMG/$(cat "$TMP/id") --status-fd 3 --hold --hold-timeout 30"$'\n'"round 1"$'\n'"round 2"$'\n'"abort "

# 4. --no-stream: one plain restore of the final round.
serve plain "$TMP/fake-restore" --no-stream
send --rounds 2 --final >"$TMP/c4.out" || e2e_fail "plain restore: $(cat "$TMP/c4.out")"
expect_log "args --images-dir $IMG/$(cat "$TMP/id")/2 --status-fd 3 --hold --hold-timeout 30"$'\n'"resume"
once_done

# 5. A session whose first round is final restores plainly.
serve first-final "$TMP/fake-restore"
send --rounds 1 --final >"$TMP/c5.out" || e2e_fail "final-only: $(cat "$TMP/c5.out")"
expect_log "args --images-dir $IMG/$(cat "$TMP/id")/1 --status-fd 3 --hold --hold-timeout 30"$'\n'"resume"
once_done

# 6. The stream restore dies at once: the final round is restored plainly.
serve stream-dies "$TMP/fake-restore"
touch "$TMP/die"
send --rounds 2 --final --pause 1000 >"$TMP/c6.out" || e2e_fail "after a dead stream: $(cat "$TMP/c6.out")"
grep -q 'stream restore ended early' "$TMP/stream-dies.log" ||
	e2e_fail "early end of the stream restore not noticed"
expect_log "args --stream $IMG/$(cat "$TMP/id") --status-fd 3 --hold --hold-timeout 30 --lazy-fill"$'\n'"args --images-dir $IMG/$(cat "$TMP/id")/2 --status-fd 3 --hold --hold-timeout 30"$'\n'"resume"
once_done
[ "$rc" = 0 ] || e2e_fail "--once exit code $rc after a plain fallback restore"

# 7. No such restore command.
serve missing "$TMP/no-such-restore"
send --rounds 2 --final >"$TMP/c7.out"
grep -q '^restore ok=0 .*error=cannot run .*no-such-restore' "$TMP/c7.out" ||
	e2e_fail "missing restore command: $(cat "$TMP/c7.out")"
once_done
[ "$rc" = 1 ] || e2e_fail "--once exit code $rc after a failed restore"

# 8. stderr held open by a child of the restore: the result comes at once.
# (The child is in the pageserver's process group: cleanup kills it.)
serve sticky "$TMP/sticky-restore"
start=$SECONDS
send --rounds 1 --final >"$TMP/c8.out" || e2e_fail "sticky restore: $(cat "$TMP/c8.out")"
[ $((SECONDS - start)) -lt 10 ] || e2e_fail "restore_result waited for the restore's child"
once_done

# 9. --once and a client that dies mid-round.
serve vanish "$TMP/fake-restore" --no-restore
send --rounds 1 --vanish >/dev/null
once_done
[ "$rc" = 1 ] || e2e_fail "--once exit code $rc after a vanished peer"
echo "PASS"

# 7. The lazy fill: the result goes at "filling", well before the exit 2 s
# later; the fill's end is logged. Then a fill that fails after "filling":
# the source had its verdict already, the failure is logged as such.
for how in ok fail; do
	serve "lazy-$how" "$TMP/fake-restore"
	touch "$TMP/lazy"
	[ "$how" = fail ] && touch "$TMP/lazyfail"
	t0=$(date +%s%N)
	send --rounds 2 --final >"$TMP/c7.out" || e2e_fail "lazy $how: $(cat "$TMP/c7.out")"
	ms=$((($(date +%s%N) - t0) / 1000000))
	grep -q '^restore ok=1 ' "$TMP/c7.out" || e2e_fail "lazy $how: no ok result: $(cat "$TMP/c7.out")"
	[ "$ms" -lt 1900 ] || e2e_fail "lazy $how: the result waited for the restore's exit ($ms ms)"
	once_done
	if [ "$how" = ok ]; then
		grep -q "lazy fill of $(cat "$TMP/id") complete" "$TMP/lazy-ok.log" ||
			e2e_fail "the lazy fill's end is not logged"
	else
		grep -q "lazy fill of $(cat "$TMP/id") FAILED after the process ran (restore: failed: lazy fill failed" \
			"$TMP/lazy-fail.log" || e2e_fail "the lazy fill's failure is not logged"
	fi
done
