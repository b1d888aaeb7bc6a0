#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 150
#
# A tmux server (it holds the masters of its panes' ptys; the shell of its
# pane leads a session with the slave as its controlling terminal) migrated
# over mutual TLS to a page server in its own PID namespace, with a devpts
# instance of its own (as another host: the source's ptys keep their
# numbers until it is gone). Checked, driven through the tmux socket (a unix
# socket bound in the tree) after the restore: the pane has the same
# /dev/pts/N, the shell answers typed commands (send-keys, capture-pane),
# its terminal keeps its window size (stty size), it is the shell's
# controlling terminal with the shell's group in the foreground, and a
# resize of the window reaches it (SIGWINCH: bash's $COLUMNS follows).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"

e2e_need migrate pageserver restore
command -v tmux >/dev/null || e2e_skip "no tmux"
TMP=$(e2e_tmpdir)
e2e_tls_certs
port=$(e2e_port)
MIG_DEST_DEVPTS=1 mig_start_dest 127.0.0.1

SOCK=$TMP/tmux.sock
T() { tmux -S "$SOCK" "$@"; }
# type @1 into the pane and wait (up to 20 s) until the pane shows a line matching @2
ask() {
	local i

	T send-keys -t w "$1" Enter || e2e_fail "tmux send-keys failed"
	for ((i = 0; i < 100; i++)); do
		T capture-pane -p -t w -S -50 | grep -Eq "$2" && return 0
		sleep 0.2
	done
	e2e_fail "the pane never showed /$2/ after '$1': $(T capture-pane -p -t w | grep -v '^$' | tail -n 5)"
}

env -i PATH="$PATH" HOME="$TMP" TERM=xterm setsid tmux -S "$SOCK" -f /dev/null \
	new-session -d -s w -x 100 -y 30 'exec bash --norc --noprofile -i' ||
	e2e_fail "tmux did not start"
pid=$(T display -p -t w '#{pid}')
shell=$(T display -p -t w '#{pane_pid}')
pts=$(T display -p -t w '#{pane_tty}')
[ -n "$pid" ] && [ -n "$shell" ] && [ -n "$pts" ] || e2e_fail "no tmux server, pane or pane tty"
e2e_track_pid "$pid"
e2e_track_pid "$shell"
ask 'PS1="$ "; echo "before $(tty) $(stty size) $$"' "^before $pts 30 100 $shell\$"
ask 'echo "fg $(ps -o tpgid= -p $$ | tr -d " ") sid $(ps -o sid= -p $$ | tr -d " ")"' \
	"^fg $shell sid $shell\$"
T send-keys -t w 'clear' Enter
sleep 0.5

mig_run "$MIGRATE" --small-dirty 0 --max-rounds 3 --to "127.0.0.1:$port" "${CLI_TLS[@]}" "$pid"
for p in "$pid" "$shell"; do
	e2e_wait_pid_gone "$p" 10 || e2e_fail "source process $p still there"
	in_dest test -e "/proc/$p" || e2e_fail "no pid $p at the destination"
done
[ "$(T display -p -t w '#{pane_tty}')" = "$pts" ] || e2e_fail "the pane's tty is no longer $pts"
ask 'echo "after $(tty) $(stty size) $((6 * 7))"' "^after $pts 30 100 42\$"
ask 'echo "fg $(ps -o tpgid= -p $$ | tr -d " ") sid $(ps -o sid= -p $$ | tr -d " ") tty $(ps -o tty= -p $$)"' \
	"^fg $shell sid $shell tty ${pts#/dev/}\$"
# a new size: the pane's terminal gets it and bash its SIGWINCH ($COLUMNS follows)
T resize-window -t w -x 90 -y 25 || e2e_fail "tmux resize-window failed"
ask 'echo "size $(stty size) cols $COLUMNS"' "^size 25 90 cols 90\$"
echo "tmux (server $pid, pane shell $shell on $pts) migrated; the pane answers on the same $pts"
T kill-server 2>/dev/null
