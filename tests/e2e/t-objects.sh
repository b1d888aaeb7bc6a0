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
#   OBJ_VIA=pageserver  migrate through a page server instead (what
#                    t-objects-migrate.sh runs), see below
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
# A System V semaphore set, message queue or shared memory segment the tree
# takes ("ipc sem|msg|shm ID"
# lines) must be gone from here once migrate is done: the restore must bring
# it back itself (for "ipc sem_taken|shm_taken ID" the test makes one with that id
# first: the restore must fail, naming it). The
# cgroups a mode made ("cgroup DIR" lines) are removed once it is gone.
# One line per mode: "PASS|FAIL|SKIP MODE expected=E got: WHAT"; the test
# fails if any mode does not have its expected outcome.
#
# OBJ_VIA=pageserver: objwork and migrate run in one network namespace,
# `migrate --to` a page server (mutual TLS, started once for every mode) in
# another, itself in its own PID and IPC namespaces (e2e_netns_pair,
# mig_start_dest), which restores each migration there. Run are the rows
# whose expected outcome is exact and the refused ones matching
# OBJ_NET_REFUSED (default all; restore_error rows need a step between the
# checkpoint and the restore, so are left out):
#   exact    migrate succeeds, the source is gone, the destination runs the
#            process under its old pid, untraced, and it says "ok MODE";
#   refused  as above, and besides nothing was sent: no round in migrate's
#            JSON, the page server's directory unchanged, the page server
#            still there.
#   same_host_lock  (rows holding file locks: the destination shares this
#            host's files, where the frozen source still holds them) migrate
#            fails after its rounds, the restore naming the lock it cannot
#            take, and the source runs on untouched.
. "$(dirname "$0")/lib.sh"

e2e_need objwork migrate restore
TMP=$(e2e_tmpdir)
STEP_TIMEOUT=20		# any one migrate or restore
VIA=${OBJ_VIA:-local}
# the refused rows run through the page server (all: 1 s or less each)
SAME_HOST_LOCKS='^(flock|posix_lock|ofd_lock|lock_wait)$'
OBJ_NET_REFUSED=${OBJ_NET_REFUSED:-.}
SRC=()			# runs objwork and migrate in the source's network namespace
case $VIA in
local) ;;
pageserver)
	. "$(dirname "$0")/migrate-lib.sh"
	e2e_need pageserver
	e2e_tls_certs
	e2e_netns_pair
	port=$(e2e_port)
	DEST=$E2E_DST_IP:$port
	MIG_DEST_MANY=1 MIG_DEST_HOST_MOUNTS=1 MIG_DEST_IPC=1 MIG_DEST_DEVPTS=1 \
		mig_start_dest "$E2E_DST_IP" netns
	SRC=(nsenter "--net=/run/netns/$E2E_SRC_NS" --)
	;;
*) e2e_fail "OBJ_VIA=$VIA: local or pageserver" ;;
esac

# mode			expected	a refusal must match (grep -Ei)
TABLE='
prot_none		exact		prot|mapping
pipe_nonblock		exact		pipe|nonblock
pipe_both_ends		exact		pipe
pipe_noreader_async	refused		nobody reads
seccomp_filter		exact		seccomp
seccomp_stacked		exact		seccomp
seccomp_tsync		exact		seccomp
seccomp_strict		exact		seccomp
seccomp_notif		refused		listener|USER_NOTIF
seccomp_subset		refused		share seccomp
caps			exact		capab|caps
flock			exact		flock|lock
posix_lock		exact		posix|lock
ofd_lock		exact		ofd|lock
lock_taken		restore_error	POSIX write lock on bytes 100-149 here: another process holds
lease			refused		lease
lock_wait		exact		lock
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
posix_timer		exact		timer
posix_timer_pending	exact		timer
posix_timer_thread	exact		timer
posix_timer_sigev_thread exact		timer
posix_timer_cputime	refused		CPU-time clock
timerfd			exact		timerfd
inotify			exact		inotify
inotify_queued		refused		inotify.*not read
memfd_seals		exact		memfd|seal
memfd_fd		exact		memfd
memfd_fd_outside	refused		memfd.*outside
file_mtime		exact		mtime|time
mprotect_filemap	exact		map|prot
guard			exact		guard
sock_opts		exact		sock|option
sock_filter		exact		filter
sock_ebpf		refused		eBPF
shutdown		exact		shut
scm_rights		refused		in flight
dgram_queue		refused		dgram|datagram|queue
pty			exact		pty|tty|terminal
pty_ctty		exact		pty|tty|terminal
pty_outside		refused		pts.*master is outside the tree
pty_queued		refused		pts.*data queued
pty_ctty_nofd		restore_error	no process of its session can make group
fifo			exact		fifo
fifo_outside		refused		fifo.*outside
sysv_shm		exact		shm|ipc|sysv|system v
sysv_shm_tree		exact		shm|ipc|sysv|system v
sysv_shm_rmid		exact		shm|ipc|sysv|system v
sysv_shm_outside	refused		shared memory segment.*outside the tree
sysv_shm_tail		refused		shared memory segment.*past its size
sysv_shm_ipcns		refused		IPC namespace holds SysV shared memory segments
sysv_shm_taken		restore_error	SysV shared memory segment.*id or key is taken here
sysv_sem		exact		sem|ipc|sysv|system v
sysv_sem_tree		exact		sem|ipc|sysv|system v
sysv_sem_outside	refused		semaphore set.*outside the tree
sysv_sem_undo		refused		SEM_UNDO
sysv_sem_undo_threads	refused		SEM_UNDO
sysv_sem_taken		restore_error	SysV semaphore set.*id or key is taken here
sysv_msg		exact		msg|message|ipc|sysv|system v
sysv_msg_outside	refused		message queue.*outside the tree
sysv_sem_held		refused		semaphore
sysv_msg_held		refused		message queue
pidfd			exact		pidfd
pidfd_outside		refused		pidfd.*outside
deleted_map		exact		deleted|unlinked
deleted_map_fd		exact		deleted|unlinked
deleted_map_outside	refused		deleted file.*outside
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
fpu_regs		exact		fpu regs
fpu_ctl			exact		fpu ctl
pkey			exact		pkey
sigaltstack		exact		sigaltstack
sigpending		exact		sigpending
sigaction		exact		sigaction
itimers			exact		itimers
rlimits			exact		rlimits
personality		exact		personality
umask			exact		umask
cwd_rel			exact		cwd rel
file_pos		exact		file pos
file_times		exact		file times
unlinked_dir		refused		removed directory
dir_pos			exact		dir pos
vma_split		exact		vma split
mremap_grow		exact		mremap grow
vmflags			exact		vmflags
mm_fields		exact		mm fields
blocked			exact		blocked
tls			exact		tls
prctl			exact		prctl
tsc			exact		tsc
affinity		exact		affinity
ioprio			exact		ioprio
unix_opts		exact		unix opts
seqpacket		refused		seqpacket socket has messages queued
unix_dgram_pair		exact		unix dgram pair
unbound_unix		refused		unbound unix
unbound_udp		refused		sock_diag.*UDP
udp_connected		refused		connected UDP
udp_kinds		exact		udp kinds
netlink			refused		family 16|netlink
packet			refused		family 17|packet
clone_files		refused		share one fd table
clone_fs		refused		share one cwd
clone_vm		refused		share one memory
child_exit		exact		child exit
session			exact		session
aio			refused		AIO context
fdinfo			exact		fdinfo
vfork			refused		share one memory
mqueue			refused		message queue
mdwe			refused		PR_SET_MDWE
io_flusher		exact		io flusher
anon_name		exact		anon name
keyring			refused		keyring of its own
secretmem		refused		memfd_secret
bpf_map			refused		bpf-map
unix_abstract		exact		unix abstract
pi_mutex		exact		pi mutex
pipe_packet		refused		packet-mode pipe
epoll_nested		exact		epoll nested
epoll_moved		refused		no longer has open
epoll_renumbered	refused		names another file
unix_named		refused		name or a named peer
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
	e2e_start_bg "$mode" "${SRC[@]}" "$OBJWORK" "$mode" --out "$d/out" --pidfile "$d/pid" --check "$d/check"
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

	if [ "$VIA" = pageserver ]; then
		ls -A "$TMP/dst" >"$d/dst.before"
		timeout -k 2 "$STEP_TIMEOUT" "${SRC[@]}" "$MIGRATE" --json --to "$DEST" "${CLI_TLS[@]}" \
			"$pid" >"$d/migrate.out" 2>"$d/migrate.err"
	else
		timeout -k 2 "$STEP_TIMEOUT" "$MIGRATE" --images-dir "$d/img" "$pid" \
			>"$d/migrate.out" 2>"$d/migrate.err"
	fi
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
		elif [ "$VIA" = pageserver ] && ! sent_nothing "$d"; then
			GOT="refused late ($SENT): $msg"
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
	# a System V object the tree took went with it: migrate removed it here
	# (the page server has its own IPC namespace and has restored there
	# already). sysv_sem_taken: a set of ours takes its id, for the restore
	# to find taken.
	local kind id left= taken= taken_shm=
	while read -r kind id; do
		if awk -v id="$id" 'NR > 1 && $2 == id { f = 1 } END { exit !f }' \
		       "/proc/sysvipc/${kind%_taken}"; then
			left="$left $kind $id"
			case ${kind%_taken} in
			sem) ipcrm -s "$id" ;;
			shm) ipcrm -m "$id" ;;
			*) ipcrm -q "$id" ;;
			esac
		fi
		if [ "$kind" = sem_taken ]; then
			echo "$id" >/proc/sys/kernel/sem_next_id
			taken=$(ipcmk -S 1 | grep -o '[0-9]*$')
		elif [ "$kind" = shm_taken ]; then
			echo "$id" >/proc/sys/kernel/shm_next_id
			taken_shm=$(ipcmk -M 4096 | grep -o '[0-9]*$')
		fi
	done < <(sed -n 's/^ipc \(sem\|msg\|shm\|sem_taken\|shm_taken\) \([0-9]*\)$/\1 \2/p' "$d/out")
	if [ -n "$left" ]; then
		GOT="dump error: the System V objects it took stayed here:$left"
		return
	fi
	if [ "$VIA" = pageserver ]; then
		check_dest "$mode"
		return
	fi
	[ "$mode" = cgroup_gone ] && sed -n 's/^cgroup //p' "$d/out" | tac |
		while read -r dir; do rmdir "$dir"; done
	img=$(ls -d "$d"/img/*/* 2>/dev/null | sort -V | tail -n 1)
	[ -n "$img" ] || { GOT="dump error: no image directory"; return; }
	# lock_taken: another process holds byte 120 of its locked range here
	local holder=
	if [ "$mode" = lock_taken ]; then
		e2e_start_bg "$mode-holder" python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 120)
print("held", flush=True)
time.sleep(60)' "$(sed -n 's/^lockfile //p' "$d/out")"
		holder=$(cat "$TMP/$mode-holder.pid")
		e2e_wait_for_line "$TMP/$mode-holder.log" '^held$' 5 2>/dev/null ||
			{ GOT="setup: the lock holder did not start"; return; }
	fi
	timeout -k 2 "$STEP_TIMEOUT" "$RESTORE" --images-dir "$img" \
		>"$d/restore.out" 2>"$d/restore.err"
	rc=$?
	[ -n "$taken" ] && ipcrm -s "$taken"
	[ -n "$taken_shm" ] && ipcrm -m "$taken_shm"
	[ -n "$holder" ] && kill "$holder" 2>/dev/null
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
	answer "$mode" "$pid"
}

# answer MODE PID: ask the restored process (PID here) and set GOT
answer()
{
	local mode=$1 pid=$2 a

	a=$(ask "$mode")
	case $a in
	"ok $mode") GOT=exact ;;
	bad*) GOT="wrong: ${a#bad "$mode": }" ;;
	*)
		if [ -e "/proc/$pid" ] && [ "$(_e2e_state "$pid")" != Z ]; then
			GOT="hang: restored process (state $(_e2e_state "$pid")) does not answer"
		else
			GOT="wrong: restored process died ($(last_line "$TMP/$mode/out"))"
		fi
		;;
	esac
}

# sent_nothing DIR: a refused migrate sent nothing: no round in its JSON, no
# new entry in the page server's directory, the page server still there.
# Otherwise false with SENT saying what was sent.
sent_nothing()
{
	SENT=
	if grep -q '"event":"round"' "$1/migrate.out"; then
		SENT="rounds sent: $(grep -c '"event":"round"' "$1/migrate.out")"
	elif ! ls -A "$TMP/dst" | cmp -s - "$1/dst.before"; then
		SENT="the page server holds $(ls -A "$TMP/dst" | comm -13 "$1/dst.before" - | tr '\n' ' ')"
	elif grep -q '^pageserver exited' "$TMP/dest.log"; then
		SENT="the page server is gone: $(grep '^pageserver exited' "$TMP/dest.log")"
	fi
	[ -z "$SENT" ]
}

# check_dest MODE: after a migration through the page server, sets GOT (and
# writes $TMP/MODE/outer, the restored process's pid here).
check_dest()
{
	local mode=$1 d=$TMP/$1 pid outer

	pid=$(cat "$d/pid")
	if ! outer=$(outer_pid "$pid"); then
		GOT="restore error: no pid $pid at the destination ($(last_line "$d/migrate.err"))"
		return
	fi
	echo "$outer" >"$d/outer"
	e2e_track_pid "$outer"
	if [ "$(_e2e_state "$outer")" = Z ]; then
		GOT="restore error: restored process gone ($(last_line "$d/out"))"
		return
	fi
	if ! grep -q '^TracerPid:[[:space:]]*0$' "/proc/$outer/status"; then
		GOT="wrong: the restored process is traced"
		return
	fi
	answer "$mode" "$outer"
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
left=0
start=$SECONDS
while read -r mode expected re; do
	[ -n "$mode" ] || continue
	if [ -n "${OBJ_ONLY:-}" ] && ! [[ $mode =~ $OBJ_ONLY ]]; then
		continue
	fi
	if [ "$VIA" = pageserver ] && [ "$expected" != exact ] &&
	   ! { [ "$expected" = refused ] && [[ $mode =~ $OBJ_NET_REFUSED ]]; }; then
		left=$((left + 1))
		continue
	fi
	GOT=
	run_mode "$mode" "$expected" "$re"
	# Through the page server the destination is this host, with the same
	# files: a lock the frozen source holds cannot be taken there, so the
	# migration must fail after its rounds naming the lock, the source
	# running on untouched (t-migrate-sqlite migrates locks to a
	# destination with files of its own).
	if [ "$VIA" = pageserver ] && [[ $mode =~ $SAME_HOST_LOCKS ]]; then
		expected=same_host_lock
		[[ $GOT =~ ^"refused late".*"conflicting lock" ]] && GOT="same_host_lock: ${GOT#refused late }"
	fi
	# stop this mode's process (original or restored) before the next one
	if [ -s "$TMP/$mode/outer" ]; then
		p=$(cat "$TMP/$mode/outer")
		kill -TERM "$p" 2>/dev/null
		e2e_wait_pid_gone "$p" 5 2>/dev/null || kill -KILL "$p" 2>/dev/null
	elif [ -s "$TMP/$mode/pid" ]; then
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

echo "objects matrix ($VIA): $passes as expected, $fails not, $skips skipped, $left not run, $((SECONDS - start)) s"
[ $fails -eq 0 ] || e2e_fail "$fails modes without their expected outcome"
