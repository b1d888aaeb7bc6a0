#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 240
#
# The fds and mappings of issue 12's files work (FIFOs, fd-only memfds,
# inotify, pidfds, mappings of deleted files) carried by a live migration,
# not only a checkpoint: each objwork mode migrated over TLS to one page
# server in its own PID namespace (streaming restore, pre-copy rounds,
# hand-over), then asked from inside: it must say "ok MODE" (the same checks
# as t-objects: FIFO data and a new writer, memfd contents and seals, the
# inotify watch numbers and events, pidfds reaching their processes, the
# deleted files' contents and shared writes, through mappings and an fd).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"

e2e_need migrate pageserver restore objwork
TMP=$(e2e_tmpdir)
e2e_tls_certs
port=$(e2e_port)
MIG_DEST_MANY=1 mig_start_dest 127.0.0.1

# ask MODE: the answer to a new check, or nothing after 10 s.
ask()
{
	local d=$TMP/$1 n i

	n=$(grep -Ec '^(ok|bad) ' "$d/out")
	touch "$d/check"
	for ((i = 0; i < 200; i++)); do
		[ "$(grep -Ec '^(ok|bad) ' "$d/out")" -gt "$n" ] && break
		sleep 0.05
	done
	grep -E '^(ok|bad) ' "$d/out" | tail -n 1
}

for mode in fifo memfd_fd inotify pidfd deleted_map deleted_map_fd; do
	d=$TMP/$mode
	e2e_objwork_start "$mode" "$d"
	pid=$OPID
	[ "$(ask "$mode")" = "ok $mode" ] || e2e_fail "$mode: broken before the migration"
	timeout -k 5 60 "$MIGRATE" --max-rounds 3 --to "127.0.0.1:$port" "${CLI_TLS[@]}" "$pid" \
		>"$d/m.out" 2>"$d/m.err"
	rc=$?
	cat "$d/m.out" "$d/m.err" >&2
	[ $rc -eq 0 ] || e2e_fail "$mode: migrate --to exited $rc: $(tail -n 1 "$d/m.err")"
	e2e_wait_pid_gone "$pid" 10 || e2e_fail "$mode: the source is still there"
	a=$(ask "$mode")
	[ "$a" = "ok $mode" ] || e2e_fail "$mode: after the migration: ${a:-no answer}"
	e2e_log "$mode: ok after a live migration"
	outer=$(outer_pid "$pid") && kill -TERM "$outer" 2>/dev/null
done
echo "fifo, memfd_fd, inotify, pidfd, deleted_map, deleted_map_fd: exact after a live migration"
