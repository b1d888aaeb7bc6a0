#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 240
#
# The parasite (infect-test): seize, infect, read sigactions, itimers,
# sigaltstack and brk, make a userfaultfd in the target and prove it
# write-protects the target's memory, cure, detach. Targets sleep in
# nanosleep, sleep in ppoll, or spin in user space; some run under a
# seccomp filter that kills them on the parasite's syscalls, one has a
# blocked SIGTRAP pending, one is PID 1 of its own PID namespace, one is a
# threaded python. After many rounds each must run on as before: maps and
# fds unchanged (infect-test checks), no syscall returning a restart errno
# (516...), its counter advancing, every SIGUSR1 handled, a signal sent
# while the parasite is in delivered later with its siginfo. A target
# killed mid-way gives a clean error; a tracer dying mid-way ends the target.
. "$(dirname "$0")/lib.sh"

e2e_need infect-test
TMP=$(e2e_tmpdir)

cat >"$TMP/target.c" <<'EOF'
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t usr1, traps, trap_code, trap_value;
static char alt[65536];

static void on_usr1(int sig)
{
	(void)sig;
	usr1++;
}

static void on_alrm(int sig)
{
	(void)sig;
}

static void on_trap(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	traps++;
	trap_code = si->si_code;
	trap_value = si->si_value.sival_int;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Kill the process if it ever calls userfaultfd or getitimer itself. */
static int seccomp_trap(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_userfaultfd, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getitimer, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

static void wait_a_bit(const char *mode)
{
	struct timespec ts = { 0, 50000000 };
	sigset_t empty;
	double end;

	if (!strcmp(mode, "sleep")) {
		if (nanosleep(&ts, NULL) && errno != EINTR)
			printf("FAIL nanosleep errno %d\n", errno);
	} else if (!strcmp(mode, "ppoll")) {
		sigemptyset(&empty);
		if (ppoll(NULL, 0, &ts, &empty) < 0 && errno != EINTR)
			printf("FAIL ppoll errno %d\n", errno);
	} else {
		for (end = now() + 0.05; now() < end;)
			;
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "sleep";
	stack_t ss = { .ss_sp = alt, .ss_size = sizeof(alt) };
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_ONSTACK };
	struct itimerval it = { { 1000, 0 }, { 1000, 0 } };
	unsigned long tick = 0;
	sigset_t trap;
	int i;

	if (sigaltstack(&ss, NULL))
		return 1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_alrm;
	sa.sa_flags = 0;
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_sigaction = on_trap;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGTRAP, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "seccomp") && seccomp_trap())
			return 1;
		if (!strcmp(argv[i], "trap-pending")) {
			sigemptyset(&trap);
			sigaddset(&trap, SIGTRAP);
			sigprocmask(SIG_BLOCK, &trap, NULL);
			raise(SIGTRAP);
		}
	}
	printf("handler %p altstack %p\nready\n", (void *)on_usr1, (void *)alt);
	fflush(stdout);
	for (;;) {
		wait_a_bit(mode);
		tick++;
		printf("tick %lu usr1 %d traps %d code %d value %d\n", tick, (int)usr1,
		       (int)traps, (int)trap_code, (int)trap_value);
		fflush(stdout);
	}
}
EOF
cc -O2 -Wall -Werror -o "$TMP/target" "$TMP/target.c" || e2e_fail "cannot build the target"

cat >"$TMP/target.py" <<'EOF'
import signal, sys, threading, time
usr1 = 0
def on_usr1(sig, frame):
    global usr1
    usr1 += 1
signal.signal(signal.SIGUSR1, on_usr1)
signal.signal(signal.SIGTRAP, signal.SIG_IGN)
def worker():
    while True:
        time.sleep(0.01)
threading.Thread(target=worker, daemon=True).start()
print("ready", flush=True)
tick = 0
while True:
    time.sleep(0.05)
    tick += 1
    print("tick %d usr1 %d" % (tick, usr1), flush=True)
EOF

# start_target NAME ARGS...: start the C target, wait until ready.
start_target()
{
	local name=$1

	shift
	e2e_start_bg "$name" "$TMP/target" "$@"
	e2e_wait_for_line "$TMP/$name.log" '^ready$' 10 || e2e_fail "$name never got ready"
}

last_tick()
{
	grep -a '^tick ' "$TMP/$1.log" | tail -n 1 | awk '{ print $2 }'
}

last_field()
{
	grep -a '^tick ' "$TMP/$1.log" | tail -n 1 | awk -v f="$2" '{ for (i = 1; i < NF; i++) if ($i == f) print $(i + 1) }'
}

# assert_running NAME PID: alive, no FAIL line, its counter advancing.
assert_running()
{
	local name=$1 pid=$2 t0 t1

	kill -0 "$pid" 2>/dev/null || e2e_fail "$name died: $(tail -n 3 "$TMP/$name.log")"
	e2e_assert_no_fail "$TMP/$name.log"
	t0=$(last_tick "$name")
	sleep 0.4
	t1=$(last_tick "$name")
	[ -n "$t1" ] && [ "${t1:-0}" -gt "${t0:-0}" ] || e2e_fail "$name stopped counting ($t0 -> $t1)"
	e2e_assert_no_fail "$TMP/$name.log"
}

# infect NAME PID [ARGS...]: one infect-test run that must pass and report
# the target's own handler, altstack and itimer.
infect()
{
	local name=$1 pid=$2 out handler alt

	shift 2
	out=$TMP/$name.infect
	"$INFECT" "$@" "$pid" >"$out" 2>&1 || e2e_fail "infect-test $* on $name: $(tail -n 5 "$out")"
	handler=$(sed -n 's/^handler \(0x[0-9a-f]*\) .*/\1/p' "$TMP/$name.log")
	alt=$(sed -n 's/^handler .* altstack \(0x[0-9a-f]*\)$/\1/p' "$TMP/$name.log")
	grep -q "^sigaction 10 handler=$handler flags=0xc000000 " "$out" ||
		e2e_fail "$name: SIGUSR1 handler $handler not reported: $(grep '^sigaction 10' "$out")"
	grep -q "^altstack sp=$alt size=65536 " "$out" ||
		e2e_fail "$name: altstack $alt not reported: $(grep '^altstack' "$out")"
	grep -q '^itimer 0 interval=1000.000000 value=9[0-9][0-9]\.' "$out" ||
		e2e_fail "$name: ITIMER_REAL not reported: $(grep '^itimer 0' "$out")"
	grep -q '^brk 0x[0-9a-f]*[1-9a-f][0-9a-f]*$' "$out" || e2e_fail "$name: no brk"
	grep -q "^thread $pid altstack sp=$alt size=65536 flags=0x0 clear_tid=0x[0-9a-f]*[1-9a-f]" "$out" ||
		e2e_fail "$name: per-thread altstack/clear_tid wrong: $(grep '^thread' "$out")"
	grep -qx ok "$out" || e2e_fail "$name: infect-test did not say ok"
}

# 1. Three C targets, many rounds, half of them resumed while still traced
#    (as migrate does between rounds) before the detach.
sent=0
for m in sleep ppoll busy; do
	start_target "$m" "$m"
	eval "pid_$m=$E2E_LAST_PID"
done
for i in $(seq 1 12); do
	# Even rounds resume the target traced first; odd ones after the
	# third skip the userfaultfd part.
	args=
	[ $((i % 2)) -eq 0 ] && args="-r 30"
	[ $((i % 2)) -eq 1 ] && [ "$i" -gt 3 ] && args=-U
	for m in sleep ppoll busy; do
		eval "pid=\$pid_$m"
		infect "$m" "$pid" $args
		if [ "$args" != -U ] && ! grep -q '^uffd-wp .* before=0 after=1$' "$TMP/$m.infect"; then
			e2e_fail "$m: userfaultfd write-protect not proven: $(grep uffd "$TMP/$m.infect")"
		fi
		kill -USR1 "$pid"
	done
	sent=$((sent + 1))
done
sleep 0.3
for m in sleep ppoll busy; do
	eval "pid=\$pid_$m"
	assert_running "$m" "$pid"
	u=$(last_field "$m" usr1)
	[ "$u" = "$sent" ] || e2e_fail "$m: handled $u SIGUSR1, $sent sent"
	e2e_log "$m: ok after 12 infections, $u SIGUSR1 handled"
done

# 1b. Detached while running traced, a SIGUSR1 caught in a stop nobody
#     waited for: tracee_detach stops it and the signal still arrives.
for m in sleep busy; do
	eval "pid=\$pid_$m"
	(sleep 0.05; kill -USR1 "$pid") &
	infect "$m" "$pid" -U -r 150 -D
	wait $!
	e2e_wait_for_line "$TMP/$m.log" "^tick .* usr1 $((sent + 1)) " 5 ||
		e2e_fail "$m: SIGUSR1 lost by a detach while running: $(tail -n 1 "$TMP/$m.log")"
done

# 2. Timings, for the log (the spinning target paused: 2 cores only).
kill -STOP "$pid_busy"
"$INFECT" -v -n 50 -s 500 -U "$pid_sleep" >"$TMP/timing" 2>&1 || e2e_fail "timing run failed"
kill -CONT "$pid_busy"
grep '^timing' "$TMP/timing" >&2

# 3. A signal that meets the parasite (queued SIGTRAP with a value) reaches
#    the target's handler afterwards, siginfo intact.
infect sleep "$pid_sleep" -U -k trap
e2e_wait_for_line "$TMP/sleep.log" '^tick .* traps 1 code -1 value 18004$' 5 ||
	e2e_fail "queued SIGTRAP lost or changed: $(tail -n 1 "$TMP/sleep.log")"
infect busy "$pid_busy" -U -k trap -r 30
e2e_wait_for_line "$TMP/busy.log" '^tick .* traps 1 code -1 value 18004$' 5 ||
	e2e_fail "queued SIGTRAP lost (resumed case): $(tail -n 1 "$TMP/busy.log")"

# 4. A SIGSTOP that meets the parasite stops the target after the detach.
for r in 0 30; do
	infect ppoll "$pid_ppoll" -U -k stop -r $r
	sleep 0.2
	st=$(awk '/^State:/ { print $2 }' "/proc/$pid_ppoll/status")
	[ "$st" = T ] || e2e_fail "SIGSTOP lost (-r $r): state $st"
	# Infecting a stopped process leaves it stopped.
	infect ppoll "$pid_ppoll" -U
	st=$(awk '/^State:/ { print $2 }' "/proc/$pid_ppoll/status")
	[ "$st" = T ] || e2e_fail "stopped target not left stopped: state $st"
	kill -CONT "$pid_ppoll"
done
assert_running ppoll "$pid_ppoll"
assert_running sleep "$pid_sleep"
assert_running busy "$pid_busy"

# 5. Seccomp: the target's filter kills it on userfaultfd or getitimer;
#    the parasite's calls must get past it.
start_target sec sleep seccomp
pid_sec=$E2E_LAST_PID
for i in 1 2 3; do
	infect sec "$pid_sec" -r 20
done
assert_running sec "$pid_sec"

# 6. A blocked SIGTRAP pending in the target stays pending.
start_target pend sleep trap-pending
pid_pend=$E2E_LAST_PID
before=$(grep '^SigPnd' "/proc/$pid_pend/status")
infect pend "$pid_pend" -U
infect pend "$pid_pend" -U -r 20
after=$(grep '^SigPnd' "/proc/$pid_pend/status")
[ "$before" = "$after" ] || e2e_fail "pending signals changed: $before -> $after"
[[ $after == *10 ]] || e2e_fail "SIGTRAP not pending: $after"
assert_running pend "$pid_pend"

# 7. A threaded python process (every thread seized, the leader infected)
#    that ignores SIGTRAP.
e2e_start_bg py python3 "$TMP/target.py"
pid_py=$E2E_LAST_PID
e2e_wait_for_line "$TMP/py.log" '^ready$' 10 || e2e_fail "python target never got ready"
for i in 1 2 3 4; do
	"$INFECT" $([ $i -gt 2 ] && echo -r 20) "$pid_py" >"$TMP/py.infect" 2>&1 ||
		e2e_fail "infect-test on python: $(tail -n 5 "$TMP/py.infect")"
	grep -q '^sigaction 10 handler=0x' "$TMP/py.infect" || e2e_fail "python: no SIGUSR1 handler"
	[ "$(grep -c '^thread .* clear_tid=0x[0-9a-f]*[1-9a-f]' "$TMP/py.infect")" -ge 2 ] ||
		e2e_fail "python: per-thread info missing: $(grep '^thread' "$TMP/py.infect")"
	# The parasite's SIGTRAP stops must not reset an ignored SIGTRAP.
	grep -q '^sigaction 5 handler=0x1 ' "$TMP/py.infect" ||
		e2e_fail "python: SIGTRAP no longer ignored: $(grep '^sigaction 5 ' "$TMP/py.infect")"
	kill -USR1 "$pid_py"
done
sleep 0.3
assert_running py "$pid_py"
[ "$(last_field py usr1)" = 4 ] || e2e_fail "python: $(last_field py usr1) SIGUSR1 handled, 4 sent"

# 8. A target that is PID 1 of its own PID namespace.
e2e_start_bg nsd unshare --pid --fork --mount-proc --kill-child -- "$TMP/target" sleep
e2e_wait_for_line "$TMP/nsd.log" '^ready$' 10 || e2e_fail "namespaced target never got ready"
pid_nsd=$(pgrep -P "$E2E_LAST_PID")
[ -n "$pid_nsd" ] || e2e_fail "no namespaced target"
infect nsd "$pid_nsd" -r 20
infect nsd "$pid_nsd" -U -k trap
e2e_wait_for_line "$TMP/nsd.log" '^tick .* traps 1 code -1 value 18004$' 5 ||
	e2e_fail "namespaced target: queued SIGTRAP lost: $(tail -n 1 "$TMP/nsd.log")"
assert_running nsd "$pid_nsd"

# 9. The target dies while the parasite is in: a clean error, no hang.
start_target doomed sleep
pid_doomed=$E2E_LAST_PID
if "$INFECT" -U -k kill "$pid_doomed" >"$TMP/doomed.infect" 2>&1; then
	e2e_fail "infect-test passed on a killed target"
fi
grep -q 'No such process' "$TMP/doomed.infect" ||
	e2e_fail "death not reported as such: $(tail -n 3 "$TMP/doomed.infect")"
e2e_wait_pid_gone "$pid_doomed" 5 || e2e_fail "killed target still there"

# 10. The tracer dies with the parasite in: the target's registers are gone
#     with it, so the blob ends the target (SIGKILL) instead of running on.
start_target orphan sleep
pid_orphan=$E2E_LAST_PID
"$INFECT" -U -k die "$pid_orphan" >"$TMP/orphan.infect" 2>&1
[ $? -eq 3 ] || e2e_fail "infect-test -k die: $(tail -n 3 "$TMP/orphan.infect")"
wait "$pid_orphan"
rc=$?
[ $rc -eq 137 ] || e2e_fail "orphaned target: exit status $rc, expected 137 (SIGKILL)"
e2e_assert_no_fail "$TMP/orphan.log"

e2e_log "parasite: all checks passed"
