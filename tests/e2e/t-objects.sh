#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 600
#
# Restore it right or refuse it (issue 12): for every kernel object objwork
# can set up, ferry either carries it exactly or names it and refuses the
# checkpoint before anything is frozen, leaving the source untouched.
#
# Part of `make test`; alone:  E2E_ONLY=t-objects make e2e, or
# bash tests/e2e/t-objects.sh after a build.
#   OBJ_ONLY=REGEX   only the modes whose name matches REGEX
#
# Per mode: objwork MODE sets up its object and checks it once from inside
# (it must say "ok MODE"); then `migrate --images-dir`:
#   exact    migrate and restore succeed, the restored process (same pid)
#            says "ok MODE" when asked again;
#   refused  migrate exits non-zero, its message matches the row's regex (it
#            names the object), no pages-*.img was written, the process is
#            the same one, not stopped, not traced, and says "ok MODE".
#   restore_error  migrate succeeds, but the restore must fail with a message
#            matching the regex, leaving no process behind (cgroup_gone: its
#            cgroups are removed before the restore).
# A stale SysV semaphore set (ipcmk, older than every workload) exists
# throughout: it must refuse nothing.
# A System V semaphore set or message queue is removed (ipcrm) between the
# checkpoint and the restore: the restore must bring it back itself. The
# cgroups a mode made ("cgroup DIR" lines) are removed once it is gone.
# One line per mode: "PASS|FAIL|SKIP MODE expected=E got: WHAT"; the test
# fails if any mode does not have its expected outcome.
. "$(dirname "$0")/lib.sh"

e2e_need objwork migrate restore
TMP=$(e2e_tmpdir)
STEP_TIMEOUT=20		# any one migrate or restore

# mode			expected	a refusal must match (grep -Ei)
TABLE='
prot_none		exact		prot|mapping
pipe_nonblock		exact		pipe|nonblock
pipe_both_ends		exact		pipe
seccomp_filter		refused		seccomp
caps			exact		capab|caps
flock			refused		flock|lock
posix_lock		refused		posix|lock
ofd_lock		refused		ofd|lock
fasync_owner		exact		async|owner|F_SETSIG
o_path			exact		O_PATH|path
sched			exact		sched|nice|priority
oom_score_adj		exact		oom
pdeathsig		refused		parent-death
pdeathsig_child		exact		parent-death
subreaper		exact		subreaper
thread_creds		refused		credentials of its own
many_groups		refused		supplementary groups
fsuid			exact		fsuid
nondumpable		exact		dumpable
thp_disable		exact		thp
membarrier		exact		membarrier
cgroup			exact		cgroup
cgroup_threads		refused		cgroup
cgroup_gone		restore_error	cgroup.*does not exist
zombie			refused		zombie
traced_child		refused		traced
deleted_cwd		refused		cwd.*deleted
chroot			exact		root
proc_fd			refused		/proc file
ns_fd			refused		namespace file
raw_socket		exact		raw|socket
unix_removed		refused		removed
robust_list		exact		robust
posix_timer		refused		timer
timerfd			refused		timerfd
inotify			refused		inotify
memfd_seals		exact		memfd|seal
memfd_fd		refused		memfd
file_mtime		exact		mtime|time
mprotect_filemap	exact		map|prot
guard			exact		guard
sock_opts		exact		sock|option
sock_filter		exact		filter
sock_ebpf		refused		eBPF
shutdown		exact		shut
scm_rights		refused		in flight
dgram_queue		refused		dgram|datagram|queue
pty			refused		pty|tty|terminal
fifo			refused		fifo
sysv_shm		refused		shm|ipc|sysv|system v
sysv_sem		refused		sem|ipc|sysv|system v
sysv_msg		refused		msg|message|ipc|sysv|system v
sysv_sem_held		refused		semaphore
sysv_msg_held		refused		message queue
pidfd			refused		pidfd
deleted_map		refused		deleted|unlinked
shm_rounds		exact		shm|shared
memfd_private		exact		memfd|private
untracked		exact		track
droppable		exact		droppable
mlock			exact		mlock
mlock_onfault		exact		mlock
mlockall_future		exact		mlock
mlockall_onfault	exact		mlock
dontfork		exact		DONTFORK
wipeonfork		exact		WIPEONFORK
hugepage		exact		HUGEPAGE
nohugepage		exact		HUGEPAGE
dontdump		exact		DONTDUMP
mergeable		exact		MERGEABLE|KSM
no_vdso			exact		vdso|syscall
merge_any		exact		MEMORY_MERGE|KSM
memfd_seal_write	exact		memfd|seal
memfd_future_write	refused		F_SEAL_FUTURE_WRITE
'

# results MODE: number of ok/bad lines so far
results()
{
	grep -Ec '^(ok|bad) ' "$TMP/$1/out" 2>/dev/null
}

# ask MODE: create the check file, print the answer ("ok MODE", "bad MODE:
# ...") or nothing after 3 s.
ask()
{
	local d=$TMP/$1 n

	n=$(results "$1")
	touch "$d/check"
	_e2e_deadline 3
	while [ "$(results "$1")" -le "$n" ]; do
		_e2e_expired "$_E2E_DL" && return 0
		sleep 0.05
	done
	grep -E '^(ok|bad) ' "$d/out" | tail -n 1
}

# last_line FILE: its last non-empty line, or "(nothing)"
last_line()
{
	local l

	l=$(grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 1)
	echo "${l:-(nothing)}"
}

# run_mode MODE EXPECTED REGEX: sets GOT to "exact", "wrong: ...",
# "refused: ...", "dump error ...", "restore error: ...", "hang ..." or
# "skip: ...".
run_mode()
{
	local mode=$1 re=$3 d=$TMP/$1 pid st rc a img state

	mkdir -p "$d"
	e2e_start_bg "$mode" "$OBJWORK" "$mode" --out "$d/out" --pidfile "$d/pid" --check "$d/check"
	if ! e2e_wait_for_line "$d/out" '^(ready|skip )' 5 2>/dev/null; then
		GOT="setup hang: $(last_line "$TMP/$mode.log")"
		return
	fi
	if grep -q '^skip ' "$d/out"; then
		GOT="skip: $(sed -n 's/^skip [^:]*: //p' "$d/out")"
		return
	fi
	e2e_wait_file "$d/pid" 5 || { GOT="setup: no pidfile"; return; }
	pid=$(cat "$d/pid")
	st=$(_e2e_starttime "$pid")
	a=$(ask "$mode")
	[ "$a" = "ok $mode" ] || { GOT="workload broken before migrate: ${a:-no answer}"; return; }

	timeout -k 2 "$STEP_TIMEOUT" "$MIGRATE" --images-dir "$d/img" "$pid" \
		>"$d/migrate.out" 2>"$d/migrate.err"
	rc=$?
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		GOT="hang (migrate killed after ${STEP_TIMEOUT}s)"
		return
	fi
	if [ $rc -ne 0 ]; then
		local msg

		msg=$(grep -Eim 1 'cannot|refus|unsupported|not supported|error' "$d/migrate.err")
		msg=${msg:-$(last_line "$d/migrate.err")}
		if [ "$(_e2e_starttime "$pid")" != "$st" ]; then
			GOT="dump error, source lost: $msg"
			return
		fi
		state=$(_e2e_state "$pid")
		if [ "$state" = T ] || [ "$state" = t ] ||
		   ! grep -q '^TracerPid:[[:space:]]*0$' "/proc/$pid/status"; then
			GOT="dump error, source left stopped/traced ($state): $msg"
			return
		fi
		a=$(ask "$mode")
		if [ "$a" != "ok $mode" ]; then
			GOT="dump error, source changed (${a:-no answer}): $msg"
		elif [ -n "$(find "$d/img" -name 'pages-*.img' 2>/dev/null | head -n 1)" ]; then
			GOT="refused late (a pre-copy round wrote pages first): $msg"
		elif ! grep -Eqi -- "$re" "$d/migrate.err"; then
			GOT="refused without naming the object: $msg"
		else
			GOT="refused: $msg"
		fi
		return
	fi

	if ! e2e_wait_pid_gone "$pid" 10 2>/dev/null; then
		GOT="dump error: migrate exited 0 but the source runs on"
		return
	fi
	# a System V object lives outside the process: remove it, as the
	# destination host would not have it
	sed -n 's/^ipc \(sem\|msg\) \([0-9]*\)$/\1 \2/p' "$d/out" | while read -r kind id; do
		case $kind in
		sem) ipcrm -s "$id" ;;
		msg) ipcrm -q "$id" ;;
		esac
	done
	[ "$mode" = cgroup_gone ] && sed -n 's/^cgroup //p' "$d/out" | tac |
		while read -r dir; do rmdir "$dir"; done
	img=$(ls -d "$d"/img/*/* 2>/dev/null | sort -V | tail -n 1)
	[ -n "$img" ] || { GOT="dump error: no image directory"; return; }
	timeout -k 2 "$STEP_TIMEOUT" "$RESTORE" --images-dir "$img" \
		>"$d/restore.out" 2>"$d/restore.err"
	rc=$?
	e2e_track_pid "$pid"
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		GOT="hang (restore killed after ${STEP_TIMEOUT}s)"
		return
	fi
	if [ $rc -ne 0 ]; then
		if grep -Eqi -- "$re" "$d/restore.err" && e2e_wait_pid_gone "$pid" 5 2>/dev/null; then
			GOT="restore_error: $(grep -Ei -m 1 -- "$re" "$d/restore.err")"
		else
			GOT="restore error: $(last_line "$d/restore.err")"
		fi
		return
	fi
	if [ ! -e "/proc/$pid" ] || [ "$(_e2e_state "$pid")" = Z ]; then
		GOT="restore error: restored process gone ($(last_line "$d/out"))"
		return
	fi
	a=$(ask "$mode")
	case $a in
	"ok $mode") GOT=exact ;;
	bad*) GOT="wrong: ${a#bad "$mode": }" ;;
	*)
		if [ -e "/proc/$pid" ] && [ "$(_e2e_state "$pid")" != Z ]; then
			GOT="hang: restored process (state $(_e2e_state "$pid")) does not answer"
		else
			GOT="wrong: restored process died ($(last_line "$d/out"))"
		fi
		;;
	esac
}

# A stale semaphore set of the host's, older than every workload and used by
# none: another program's, it must not refuse them (only sets made since a
# process started may be its own).
stale=$(ipcmk -S 1 2>/dev/null | grep -o '[0-9]*$')
[ -n "$stale" ] && e2e_on_exit ipcrm -s "$stale"
sleep 3	# the times compared are rounded down to seconds (up to 2 s early)

fails=0
passes=0
skips=0
while read -r mode expected re; do
	[ -n "$mode" ] || continue
	if [ -n "${OBJ_ONLY:-}" ] && ! [[ $mode =~ $OBJ_ONLY ]]; then
		continue
	fi
	GOT=
	run_mode "$mode" "$expected" "$re"
	# stop this mode's process (original or restored) before the next one
	if [ -s "$TMP/$mode/pid" ]; then
		p=$(cat "$TMP/$mode/pid")
		kill -TERM "$p" 2>/dev/null
		e2e_wait_pid_gone "$p" 5 2>/dev/null || kill -KILL "$p" 2>/dev/null
	fi
	# cgroups the mode made (children after parents): removed once it is gone
	[ -s "$TMP/$mode/out" ] && sed -n 's/^cgroup //p' "$TMP/$mode/out" | tac |
		while read -r dir; do rmdir "$dir" 2>/dev/null; done
	case $GOT in
	skip*)
		echo "SKIP $mode expected=$expected got: $GOT"
		skips=$((skips + 1))
		;;
	"$expected" | "$expected":*)
		echo "PASS $mode expected=$expected got: $GOT"
		passes=$((passes + 1))
		;;
	*)
		echo "FAIL $mode expected=$expected got: $GOT"
		fails=$((fails + 1))
		;;
	esac
done <<<"$TABLE"

echo "objects matrix: $passes as expected, $fails not, $skips skipped"
[ $fails -eq 0 ] || e2e_fail "$fails modes without their expected outcome"
