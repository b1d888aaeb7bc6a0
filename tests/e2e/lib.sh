# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# tests/e2e/lib.sh: sourced by every end-to-end test (bash). See docs/testing.md.
#
#   . "$(dirname "$0")/lib.sh"
#   TMP=$(e2e_tmpdir)
#   e2e_start_bg work "$E2E_MEMWORK" --out "$TMP/out" --pidfile "$TMP/pid"
#   e2e_wait_for_line "$TMP/out" '^ready$' 10 || e2e_fail "memwork not ready"
#
# Everything a test starts or creates through these helpers (background
# processes and their descendants, network namespaces, temporary directories)
# is removed when the test exits, however it exits. A test that needs its own
# EXIT work registers it with e2e_on_exit instead of replacing the trap.
#
# Functions that produce a value (e2e_tmpdir, e2e_port, e2e_start_bg) print it
# when called inside $(...) and also set a variable (TMP, E2E_LAST_PID).
# Waiting functions return 1 on timeout (with a message on stderr); the
# e2e_assert_* functions and e2e_fail end the test.

if [ -n "${_E2E_LIB_LOADED:-}" ]; then
	return 0
fi
_E2E_LIB_LOADED=1

FERRY_ROOT=${FERRY_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
FERRY_BUILD=${FERRY_BUILD:-$FERRY_ROOT/build}
export FERRY_ROOT FERRY_BUILD
export PATH=$PATH:/usr/sbin:/sbin

E2E_MEMWORK=$FERRY_BUILD/tests/workloads/memwork
E2E_PYLOOP=$FERRY_ROOT/tests/workloads/pyloop.py

# Per-test state: one directory holding every temporary directory, and a
# registry of what to clean up. run.sh passes E2E_REGISTRY so it can finish
# the cleanup of a test that was killed before its EXIT trap ran.
_E2E_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/ferry-e2e.XXXXXX") || {
	echo "FAIL: cannot create a temporary directory" >&2
	exit 1
}
_E2E_REG=${E2E_REGISTRY:-$_E2E_ROOT/registry}
_E2E_HOOKS=()
_E2E_LOGS=()
echo "dir $_E2E_ROOT" >>"$_E2E_REG"

e2e_fail()
{
	echo "FAIL: $*" >&2
	exit 1
}

# e2e_skip REASON: end the test as skipped, neither passed nor failed (for
# something this machine lacks). run.sh prints "SKIP name (REASON)".
E2E_SKIP_RC=77
e2e_skip()
{
	echo "SKIP: $*" >&2
	exit $E2E_SKIP_RC
}

e2e_log()
{
	echo "e2e: $*" >&2
}

# --- time ----------------------------------------------------------------

# _e2e_deadline SECS: sets _E2E_DL to now + SECS (fractions allowed), in ms.
_e2e_now_ms()
{
	local t=${EPOCHREALTIME//[.,]/}

	_E2E_NOW=$((10#$t / 1000))
}

_e2e_deadline()
{
	local s=${1:-10} int frac

	int=${s%%.*}
	frac=0
	if [[ $s == *.* ]]; then
		frac=${s#*.}000
		frac=$((10#${frac:0:3}))
	fi
	_e2e_now_ms
	_E2E_DL=$((_E2E_NOW + ${int:-0} * 1000 + frac))
}

_e2e_expired()
{
	_e2e_now_ms
	((_E2E_NOW >= $1))
}

# --- processes -----------------------------------------------------------

# Start time of a process (clock ticks since boot), to tell a pid from a reused one.
_e2e_starttime()
{
	local stat rest

	read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
	rest=${stat##*) }
	set -- $rest
	echo "${20}"
}

# e2e_track_pid PID: kill PID (and its descendants) at cleanup.
e2e_track_pid()
{
	local st

	st=$(_e2e_starttime "$1") || return 0
	echo "pid $1 $st" >>"$_E2E_REG"
}

# e2e_start_bg NAME CMD...: run CMD (a program or a shell function) in the
# background in its own process group, stdin from /dev/null, output to
# $TMP/NAME.log. Sets E2E_LAST_PID, writes $TMP/NAME.pid.
e2e_start_bg()
{
	local name=$1 dir pid

	shift
	[ $# -gt 0 ] || e2e_fail "e2e_start_bg: no command"
	dir=${TMP:-$_E2E_ROOT}
	set -m
	if [ "$(type -t "$1")" = function ]; then
		("$@") >"$dir/$name.log" 2>&1 </dev/null &
	else
		(exec "$@") >"$dir/$name.log" 2>&1 </dev/null &
	fi
	pid=$!
	set +m
	echo "pgrp $pid $(_e2e_starttime "$pid")" >>"$_E2E_REG"
	echo "log $dir/$name.log" >>"$_E2E_REG"
	_E2E_LOGS+=("$dir/$name.log")
	echo "$pid" >"$dir/$name.pid"
	E2E_LAST_PID=$pid
	if ((BASH_SUBSHELL > 0)); then
		echo "$pid"
	fi
}

# e2e_start_workload NAME REGEX CMD...: e2e_start_bg NAME CMD..., a workload
# that writes its pid to $TMP/pid and its output to $TMP/out; waits for the
# pidfile (30 s), sets pid, then waits (10 s) for a line of $TMP/out matching
# REGEX (its progress). NAME also names it in the failure messages.
e2e_start_workload()
{
	local name=$1 re=$2

	shift 2
	e2e_start_bg "$name" "$@"
	e2e_wait_file "$TMP/pid" 30 || e2e_fail "$name never wrote its pidfile"
	pid=$(cat "$TMP/pid")
	e2e_wait_for_line "$TMP/out" "$re" 10 || e2e_fail "$name makes no progress"
}

# e2e_nginx_conf DIR LINE...: DIR/nginx.conf for a test nginx (a master and
# two workers in the foreground, its pid file, logs and temporary paths
# under DIR); each LINE goes into its http block.
e2e_nginx_conf()
{
	local n=$1 l

	shift
	mkdir -p "$n/logs"
	{
		cat <<EOF
daemon off;
master_process on;
worker_processes 2;
pid $n/nginx.pid;
error_log $n/logs/error.log info;
events { worker_connections 64; }
http {
	access_log $n/logs/access.log;
	client_body_temp_path $n/cbt;
	proxy_temp_path $n/pt;
	fastcgi_temp_path $n/ft;
	uwsgi_temp_path $n/ut;
	scgi_temp_path $n/st;
EOF
		for l in "$@"; do
			printf '\t%s\n' "$l"
		done
		echo "}"
	} >"$n/nginx.conf"
}

# e2e_hold_pid PID ENTER...: make PID taken in a child PID namespace (the
# next pid it hands out, through ns_last_pid) by a `sleep 1000` started with
# ENTER... (a command that runs its arguments in that namespace, e.g.
# in_dest); sets E2E_HOLDER (kill it and the namespace's sleep when done).
# Watched from out here (NSpid): entering the namespace to look would start
# a process there that could take the pid first. Three tries; 1 if it fails.
e2e_hold_pid()
{
	local pid=$1 try i
	shift
	for ((try = 0; try < 3; try++)); do
		"$@" bash -c 'echo $(($1 - 1)) >/proc/sys/kernel/ns_last_pid && { sleep 1000 & wait; }' \
			_ "$pid" </dev/null >/dev/null 2>&1 &
		E2E_HOLDER=$!
		e2e_track_pid "$E2E_HOLDER"
		for ((i = 0; i < 50; i++)); do
			_e2e_pid_held "$pid" && return 0
			sleep 0.1
		done
		kill "$E2E_HOLDER" 2>/dev/null
		wait "$E2E_HOLDER" 2>/dev/null
	done
	return 1
}

# _e2e_pid_held PID: a sleep is PID in a PID namespace one level down.
_e2e_pid_held()
{
	local p

	for p in $(pgrep -x sleep); do
		grep -Eq "^NSpid:[[:space:]]+[0-9]+[[:space:]]+$1\$" "/proc/$p/status" 2>/dev/null &&
			return 0
	done
	return 1
}

# e2e_wait_pid_gone PID [TIMEOUT]: wait until /proc/PID is gone (reaping it
# if it is our zombie child). PID 1 here reaps orphans late
# (docs/kernel-notes.md, trap 11): do this before expecting PID to be free again.
e2e_wait_pid_gone()
{
	local pid=$1 state

	_e2e_deadline "${2:-10}"
	while [ -e "/proc/$pid" ]; do
		state=$(_e2e_state "$pid") || state=gone
		if [ "$state" = Z ]; then
			wait "$pid" 2>/dev/null
		fi
		[ -e "/proc/$pid" ] || break
		if _e2e_expired "$_E2E_DL"; then
			e2e_log "pid $pid still present after ${2:-10}s (state $state)"
			return 1
		fi
		sleep 0.02
	done
	return 0
}

_e2e_state()
{
	local stat rest

	read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
	rest=${stat##*) }
	echo "${rest%% *}"
}

# All descendants of the given pids (not the pids themselves).
_e2e_descendants()
{
	ps -e -o pid=,ppid= 2>/dev/null | awk -v roots="$*" '
		BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) want[r[i]] = 1 }
		{ parent[$1] = $2; pids[++np] = $1 }
		END {
			do {
				added = 0
				for (i = 1; i <= np; i++) {
					p = pids[i]
					if (!(p in want) && (parent[p] in want)) {
						want[p] = 1; added = 1; print p
					}
				}
			} while (added)
		}'
}

# --- cleanup -------------------------------------------------------------

# e2e_on_exit CMD...: run CMD at exit, before the processes are killed.
e2e_on_exit()
{
	_E2E_HOOKS+=("$*")
}

# _e2e_cleanup_registry FILE: kill, remove and delete everything FILE lists.
# Also used by run.sh for a test that died before its own cleanup.
_e2e_cleanup_registry()
{
	local reg=$1 kind a b st p ns
	local -a procs=() groups=() nets=() dirs=() all=()

	[ -f "$reg" ] || return 0
	while read -r kind a b; do
		case $kind in
		pid)
			st=$(_e2e_starttime "$a") && [ "$st" = "$b" ] && procs+=("$a")
			;;
		pgrp)
			# The leader may be gone while its group lives on; skip the
			# group only if its pid now belongs to someone else.
			st=$(_e2e_starttime "$a")
			if [ -z "$st" ] || [ "$st" = "$b" ]; then
				groups+=("$a")
				[ -n "$st" ] && procs+=("$a")
			fi
			;;
		netns) nets+=("$a") ;;
		dir) dirs+=("$a") ;;
		done) return 0 ;;
		esac
	done <"$reg"

	for p in "${groups[@]}"; do
		procs+=($(pgrep -g "$p" 2>/dev/null))
	done
	for ns in "${nets[@]}"; do
		procs+=($(ip netns pids "$ns" 2>/dev/null))
	done
	if [ ${#procs[@]} -gt 0 ]; then
		all=("${procs[@]}" $(_e2e_descendants "${procs[@]}"))
		for p in "${groups[@]}"; do
			kill -TERM -- "-$p" 2>/dev/null
		done
		kill -TERM "${all[@]}" 2>/dev/null
		_e2e_deadline 3
		for p in "${all[@]}"; do
			while [ -e "/proc/$p" ] && [ "$(_e2e_state "$p")" != Z ] &&
			      ! _e2e_expired "$_E2E_DL"; do
				sleep 0.05
			done
		done
		for p in "${groups[@]}"; do
			kill -KILL -- "-$p" 2>/dev/null
		done
		kill -KILL "${all[@]}" 2>/dev/null
		for p in "${all[@]}"; do
			e2e_wait_pid_gone "$p" 5 2>/dev/null
		done
	fi
	for ns in "${nets[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	if [ -z "${E2E_KEEP:-}" ]; then
		for p in "${dirs[@]}"; do
			case $p in
			*/ferry-e2e.*) rm -rf -- "$p" ;;
			esac
		done
	fi
	[ -f "$reg" ] && echo "done" >>"$reg"
	return 0
}

e2e_cleanup()
{
	local h

	for h in "${_E2E_HOOKS[@]}"; do
		eval "$h" || true
	done
	_E2E_HOOKS=()
	_e2e_cleanup_registry "$_E2E_REG"
}

_e2e_on_exit()
{
	local rc=$? l

	trap - EXIT
	set +e
	if [ "$rc" -ne 0 ] && [ "$rc" -ne $E2E_SKIP_RC ]; then
		for l in "${_E2E_LOGS[@]}"; do
			[ -s "$l" ] || continue
			echo "--- last 20 lines of $(basename "$l") ---" >&2
			tail -n 20 "$l" >&2
		done
		[ -n "${E2E_KEEP:-}" ] && e2e_log "kept $_E2E_ROOT"
	fi
	e2e_cleanup
	exit "$rc"
}

trap _e2e_on_exit EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# --- files and ports -----------------------------------------------------

# e2e_tmpdir: a new directory, removed at exit; also sets TMP.
e2e_tmpdir()
{
	local d

	d=$(mktemp -d "$_E2E_ROOT/tmp.XXXXXX") || e2e_fail "mktemp failed"
	TMP=$d
	if ((BASH_SUBSHELL > 0)); then
		echo "$d"
	fi
}

# e2e_port: a TCP port in 17000-27000 that nothing here uses (and that this
# test has not been given before).
e2e_port()
{
	local i p

	for ((i = 0; i < 500; i++)); do
		p=$((17000 + (RANDOM * 32768 + RANDOM) % 10001))
		grep -qx "$p" "$_E2E_ROOT/ports" 2>/dev/null && continue
		[ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ] || continue
		echo "$p" >>"$_E2E_ROOT/ports"
		echo "$p"
		return 0
	done
	e2e_fail "no free TCP port in 17000-27000"
}

# e2e_wait_port PORT [TIMEOUT [NETNS]]: wait until something listens on PORT.
e2e_wait_port()
{
	local port=$1 t=${2:-10} ns=${3:-}
	local -a pre=()

	if [ -n "$ns" ]; then
		pre=(nsenter "--net=/run/netns/$ns")
	fi
	_e2e_deadline "$t"
	until [ -n "$("${pre[@]}" ss -Htln "( sport = :$port )" 2>/dev/null)" ]; do
		if _e2e_expired "$_E2E_DL"; then
			e2e_log "nothing listens on port $port${ns:+ in $ns} after ${t}s"
			return 1
		fi
		sleep 0.05
	done
	return 0
}

# e2e_wait_for_line FILE PATTERN [TIMEOUT]: wait until FILE has a line
# matching the extended regex PATTERN.
e2e_wait_for_line()
{
	local file=$1 pat=$2 t=${3:-10}

	_e2e_deadline "$t"
	until grep -Eq -- "$pat" "$file" 2>/dev/null; do
		if _e2e_expired "$_E2E_DL"; then
			e2e_log "no line /$pat/ in $file after ${t}s"
			return 1
		fi
		sleep 0.05
	done
	return 0
}

# e2e_wait_file FILE [TIMEOUT]: wait until FILE exists and is not empty
# (a pidfile, say).
e2e_wait_file()
{
	local file=$1 t=${2:-10}

	_e2e_deadline "$t"
	until [ -s "$file" ]; do
		if _e2e_expired "$_E2E_DL"; then
			e2e_log "no file $file after ${t}s"
			return 1
		fi
		sleep 0.05
	done
	return 0
}

# e2e_assert_steps_continuous FILE [MIN]: the "step N ..." lines of a
# workload output go N, N+1, N+2, ... without gap or repeat, and there are
# at least MIN of them (default 1). A last line still being written is ignored.
e2e_assert_steps_continuous()
{
	local file=$1 min=${2:-1} snap res rc=0

	[ -f "$file" ] || e2e_fail "steps: no file $file"
	snap=$(mktemp "$_E2E_ROOT/steps.XXXXXX")
	cat -- "$file" >"$snap"
	if [ -s "$snap" ] && [ -n "$(tail -c 1 "$snap")" ]; then
		sed -i '$d' "$snap"
	fi
	res=$(awk -v min="$min" '
		/^step [0-9]+( |$)/ {
			s = $2 + 0
			if (n && s != prev + 1) {
				printf "line %d: step %d after step %d\n", NR, s, prev
				bad = 1
				exit
			}
			if (!n)
				first = s
			prev = s
			n++
		}
		END {
			if (bad)
				exit 1
			if (n < min) {
				printf "%d step lines, expected at least %d\n", n, min
				exit 1
			}
			printf "%d steps, %d..%d\n", n, first, prev
		}' "$snap") || rc=$?
	rm -f "$snap"
	[ $rc -eq 0 ] || e2e_fail "steps not continuous in $file: $res"
	e2e_log "$(basename "$file"): $res"
}

# e2e_assert_no_fail FILE: the workload wrote no FAIL line.
e2e_assert_no_fail()
{
	local l

	l=$(grep -a -m 1 'FAIL' "$1" 2>/dev/null) || true
	[ -z "$l" ] || e2e_fail "$(basename "$1"): $l"
}

# e2e_assert_same_maps SRC_MAPS PID: /proc/PID/maps (copied to $TMP/maps.dst)
# has exactly the lines of SRC_MAPS, a copy of the source's maps.
e2e_assert_same_maps()
{
	local extra missing

	cat "/proc/$2/maps" >"$TMP/maps.dst"
	extra=$(grep -vxFf "$1" "$TMP/maps.dst")
	missing=$(grep -vxFf "$TMP/maps.dst" "$1")
	[ -z "$extra" ] || e2e_fail "restored process has mappings the source had not: $extra"
	[ -z "$missing" ] || e2e_fail "restored process lacks mappings of the source: $missing"
}

# e2e_stop_pyloop PID MIN_STEPS: a restored pyloop (writing $TMP/out) must exit
# on SIGTERM, and its output have no FAIL line, at least MIN_STEPS continuous
# steps, and pass pyloop --verify.
e2e_stop_pyloop()
{
	kill -TERM "$1"
	e2e_wait_pid_gone "$1" 10 || e2e_fail "restored pyloop does not exit on SIGTERM"
	e2e_assert_no_fail "$TMP/out"
	e2e_assert_steps_continuous "$TMP/out" "$2"
	python3 "$E2E_PYLOOP" --verify "$TMP/out" >&2 || e2e_fail "pyloop --verify rejects the out file"
}

# --- certificates --------------------------------------------------------

# e2e_make_certs DIR [SAN...]: a test PKI in DIR (EC P-256, 30 days):
#   ca.pem                       the CA both sides trust (key: ca.key)
#   server.pem, server.key       serverAuth; SAN IP:127.0.0.1, DNS:localhost, the
#                                two e2e_netns_pair addresses, and any SAN given
#                                (e.g. IP:10.1.2.3 or DNS:host)
#   client.pem, client.key       clientAuth, signed by ca.pem
#   rogue-ca.pem                 another CA nobody trusts (key: rogue-ca.key)
#   rogue.pem, rogue.key         client (and server) cert signed by the rogue CA,
#                                same names as the good ones
e2e_make_certs()
{
	local dir=$1 x sans cnf

	shift
	mkdir -p "$dir" || e2e_fail "mkdir $dir"
	_e2e_pair_net
	sans="IP:127.0.0.1,DNS:localhost,IP:$_E2E_NET.1,IP:$_E2E_NET.2"
	for x in "$@"; do
		sans="$sans,$x"
	done
	cnf=$dir/openssl.cnf
	cat >"$cnf" <<-EOF
		[req]
		distinguished_name = dn
		prompt = no
		[dn]
		CN = unused
		[ca]
		basicConstraints = critical,CA:TRUE
		keyUsage = critical,keyCertSign,cRLSign
		subjectKeyIdentifier = hash
		[server]
		basicConstraints = critical,CA:FALSE
		keyUsage = critical,digitalSignature
		extendedKeyUsage = serverAuth
		subjectAltName = $sans
		subjectKeyIdentifier = hash
		authorityKeyIdentifier = keyid
		[client]
		basicConstraints = critical,CA:FALSE
		keyUsage = critical,digitalSignature
		extendedKeyUsage = clientAuth
		subjectKeyIdentifier = hash
		authorityKeyIdentifier = keyid
		[rogue]
		basicConstraints = critical,CA:FALSE
		keyUsage = critical,digitalSignature
		extendedKeyUsage = clientAuth,serverAuth
		subjectAltName = $sans
		subjectKeyIdentifier = hash
		authorityKeyIdentifier = keyid
	EOF
	(
		set -e
		cd "$dir"
		key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
		# mkca NAME CN; mkcert NAME CA CN SECTION
		mkca()
		{
			key "$1.key"
			openssl req -new -x509 -config openssl.cnf -extensions ca -key "$1.key" \
				-subj "/CN=$2" -days 30 -out "$1.pem"
		}
		mkcert()
		{
			key "$1.key"
			openssl req -new -config openssl.cnf -key "$1.key" -subj "/CN=$3" -out "$1.csr"
			openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" \
				-set_serial "0x$(openssl rand -hex 8)" -days 30 \
				-extfile openssl.cnf -extensions "$4" -out "$1.pem" 2>/dev/null
			rm -f "$1.csr"
		}
		mkca ca "ferry test CA"
		mkcert server ca "localhost" server
		mkcert client ca "ferry-test-client" client
		mkca rogue-ca "ferry test CA"
		mkcert rogue rogue-ca "ferry-test-client" rogue
		openssl verify -CAfile ca.pem server.pem client.pem >/dev/null
		! openssl verify -CAfile ca.pem rogue.pem >/dev/null 2>&1
	) || e2e_fail "e2e_make_certs: openssl failed"
}

# e2e_tls_certs [DIR]: e2e_make_certs in DIR (default $TMP/certs), then sets
# C (the directory) and the option arrays SRV_TLS (the server's certificate),
# CLI_TLS (a good client's) and ROGUE_TLS (a client whose certificate the
# rogue CA signed).
e2e_tls_certs()
{
	C=${1:-$TMP/certs}
	e2e_make_certs "$C"
	SRV_TLS=(--tls-ca "$C/ca.pem" --tls-cert "$C/server.pem" --tls-key "$C/server.key")
	CLI_TLS=(--tls-ca "$C/ca.pem" --tls-cert "$C/client.pem" --tls-key "$C/client.key")
	ROGUE_TLS=(--tls-ca "$C/ca.pem" --tls-cert "$C/rogue.pem" --tls-key "$C/rogue.key")
}

# --- ferry commands ------------------------------------------------------

# e2e_need PROGRAM...: the test runs these built programs; fails the test
# (naming the missing file) unless each is executable, and sets a variable to
# each one's path: migrate MIGRATE, restore RESTORE, pageserver PAGESERVER,
# psclient PSC, stackcmp CMP, infect-test INFECT, memwork E2E_MEMWORK,
# objwork OBJWORK, treework TREEWORK, mtwork MTWORK.
e2e_need()
{
	local p var path

	for p in "$@"; do
		case $p in
		migrate | restore | pageserver) var=${p^^} path=$FERRY_BUILD/$p ;;
		psclient) var=PSC path=$FERRY_BUILD/tests/tools/psclient ;;
		stackcmp) var=CMP path=$FERRY_BUILD/tests/tools/stackcmp ;;
		infect-test) var=INFECT path=$FERRY_BUILD/tests/tools/infect-test ;;
		memwork) var=E2E_MEMWORK path=$E2E_MEMWORK ;;
		objwork | treework | mtwork)
			var=${p^^} path=$FERRY_BUILD/tests/workloads/$p ;;
		*) e2e_fail "e2e_need: unknown program $p" ;;
		esac
		[ -x "$path" ] || e2e_fail "no $path (build it first)"
		printf -v "$var" '%s' "$path"
	done
}

# e2e_pageserver_setup: the start of a test that drives a page server with
# psclient: e2e_need pageserver psclient, TMP (e2e_tmpdir), the certificates
# (e2e_tls_certs), and IMG=$TMP/images (not created) for its stacks.
e2e_pageserver_setup()
{
	e2e_need pageserver psclient
	e2e_tmpdir
	e2e_tls_certs
	IMG=$TMP/images
}

# e2e_start_pageserver NAME PORT IMAGES_DIR [OPTION...]: pageserver
# --listen 127.0.0.1:PORT --images-dir IMAGES_DIR OPTION... in the background
# (e2e_start_bg NAME: log $TMP/NAME.log, E2E_LAST_PID), with SRV_TLS unless an
# OPTION is --insecure or --tls-*. Creates IMAGES_DIR; returns once the port
# listens (fails the test otherwise).
e2e_start_pageserver()
{
	local name=$1 port=$2 dir=$3 o
	local -a tls=("${SRV_TLS[@]}")

	shift 3
	for o in "$@"; do
		case $o in
		--insecure | --tls-*) tls=() ;;
		esac
	done
	mkdir -p "$dir" || e2e_fail "mkdir $dir"
	e2e_start_bg "$name" "$FERRY_BUILD/pageserver" --listen "127.0.0.1:$port" \
		--images-dir "$dir" "$@" "${tls[@]}"
	e2e_wait_port "$port" 10 || e2e_fail "$name: pageserver does not listen"
}

# e2e_pidns_pageserver LISTEN IMAGES_DIR [OPTION...]: meant to be the init of
# a fresh PID namespace (see e2e_in_pidns): runs pageserver -v with the
# certificates in $C, prints "pageserver pid N" and, when it ends,
# "pageserver exited RC", then stays, reaping what restore leaves behind, so
# that restored processes outlive the page server (a namespace dies with its
# init). Exported: needs C and FERRY_BUILD in the environment.
e2e_pidns_pageserver()
{
	local listen=$1 dir=$2

	shift 2
	"$FERRY_BUILD/pageserver" -v --listen "$listen" --images-dir "$dir" "$@" \
		--tls-ca "$C/ca.pem" --tls-cert "$C/server.pem" --tls-key "$C/server.key" &
	echo "pageserver pid $!"
	wait $!
	echo "pageserver exited $?"
	while :; do sleep 0.5; done
}
export -f e2e_pidns_pageserver

# e2e_objwork_start MODE DIR: objwork MODE (e2e_need objwork) with its files
# in DIR (out, pid, check), ready; sets OPID. A mode that skips fails the test.
e2e_objwork_start()
{
	local d=$2

	mkdir -p "$d"
	e2e_start_bg "$1" "$OBJWORK" "$1" --out "$d/out" --pidfile "$d/pid" --check "$d/check"
	e2e_wait_for_line "$d/out" '^(ready|skip )' 5 || e2e_fail "$1: objwork never got ready"
	grep -q '^skip ' "$d/out" && e2e_fail "$1: $(grep '^skip ' "$d/out")"
	e2e_wait_file "$d/pid" 5 || e2e_fail "$1: no pidfile"
	OPID=$(cat "$d/pid")
}

# e2e_checkpoint IMAGES_DIR PID [WHAT]: migrate --images-dir IMAGES_DIR PID
# must succeed and the source be gone afterwards. WHAT goes into the messages.
e2e_checkpoint()
{
	local what=${3:+ ($3)}

	"$FERRY_BUILD/migrate" --images-dir "$1" "$2" >&2 || e2e_fail "checkpoint failed$what"
	e2e_wait_pid_gone "$2" 10 || e2e_fail "source still there$what"
}

# e2e_stack_top IMAGES_DIR: the top round directory of the one stack in IMAGES_DIR.
e2e_stack_top()
{
	ls -d "$1"/*/* | sort -V | tail -n 1
}

# e2e_restore IMAGES_DIR PID [WHAT]: restore --images-dir from the top of the
# stack in IMAGES_DIR must succeed; PID (the restored process) is killed at exit.
e2e_restore()
{
	"$FERRY_BUILD/restore" --images-dir "$(e2e_stack_top "$1")" >&2 ||
		e2e_fail "restore failed${3:+ ($3)}"
	e2e_track_pid "$2"
}

# e2e_checkpoint_json PID [OPTION...]: migrate --json OPTION... --images-dir
# $TMP/images PID, output in $TMP/migrate.json and $TMP/migrate.err (copied to
# stderr). It must succeed and its done line name the migration and its
# rounds: sets id, rounds and stack ($TMP/images/$id).
e2e_checkpoint_json()
{
	local pid=$1 rc

	shift
	"$FERRY_BUILD/migrate" --json "$@" --images-dir "$TMP/images" "$pid" \
		>"$TMP/migrate.json" 2>"$TMP/migrate.err"
	rc=$?
	cat "$TMP/migrate.json" "$TMP/migrate.err" >&2
	[ $rc -eq 0 ] || e2e_fail "migrate $* --images-dir exited $rc: $(tail -n 1 "$TMP/migrate.err")"
	id=$(sed -n 's/.*"event":"done".*"migration_id":"\([^"]*\)".*/\1/p' "$TMP/migrate.json")
	rounds=$(sed -n 's/.*"event":"done".*"rounds":\([0-9]*\).*/\1/p' "$TMP/migrate.json")
	[ -n "$id" ] && [ -n "$rounds" ] || e2e_fail "no done line with migration_id and rounds"
	stack=$TMP/images/$id
}

# e2e_restore_verbose ROUND_DIR PID: restore -v --images-dir ROUND_DIR, output in
# $TMP/restore.out and $TMP/restore.err (copied to stderr); it must succeed
# and print "restored pid PID in X ms". PID is killed at exit.
e2e_restore_verbose()
{
	local rc

	"$FERRY_BUILD/restore" -v --images-dir "$1" >"$TMP/restore.out" 2>"$TMP/restore.err"
	rc=$?
	cat "$TMP/restore.out" "$TMP/restore.err" >&2
	[ $rc -eq 0 ] || e2e_fail "restore exited $rc: $(tail -n 1 "$TMP/restore.err")"
	e2e_track_pid "$2"
	grep -Eq "^restored pid $2 in [0-9.]+ ms$" "$TMP/restore.out" ||
		e2e_fail "restore printed no 'restored pid $2 in X ms'"
}

# --- namespaces ----------------------------------------------------------

# e2e_netns_pair: two network namespaces, ferry-src-$$ and ferry-dst-$$,
# joined by a veth pair (veth0 in each), lo up. Sets E2E_SRC_NS, E2E_DST_NS,
# E2E_SRC_IP (10.77.X.1), E2E_DST_IP (10.77.X.2). Deleted at exit.
_e2e_pair_net()
{
	_E2E_NET=10.77.$(($$ % 250 + 1))
}

e2e_netns_pair()
{
	_e2e_pair_net
	E2E_SRC_NS=ferry-src-$$
	E2E_DST_NS=ferry-dst-$$
	E2E_SRC_IP=$_E2E_NET.1
	E2E_DST_IP=$_E2E_NET.2
	echo "netns $E2E_SRC_NS" >>"$_E2E_REG"
	echo "netns $E2E_DST_NS" >>"$_E2E_REG"
	ip netns add "$E2E_SRC_NS" || e2e_fail "ip netns add $E2E_SRC_NS"
	ip netns add "$E2E_DST_NS" || e2e_fail "ip netns add $E2E_DST_NS"
	ip link add veth0 netns "$E2E_SRC_NS" type veth peer name veth0 \
		netns "$E2E_DST_NS" || e2e_fail "cannot create the veth pair"
	ip -n "$E2E_SRC_NS" addr add "$E2E_SRC_IP/24" dev veth0 &&
	ip -n "$E2E_DST_NS" addr add "$E2E_DST_IP/24" dev veth0 &&
	ip -n "$E2E_SRC_NS" link set lo up &&
	ip -n "$E2E_DST_NS" link set lo up &&
	ip -n "$E2E_SRC_NS" link set veth0 up &&
	ip -n "$E2E_DST_NS" link set veth0 up || e2e_fail "cannot configure the veth pair"
}

# e2e_net_bridge: three "hosts" on one Ethernet segment, for the network
# tests: namespaces ferry-cli-$$ (a client), ferry-src-$$ (the source host) and
# ferry-dst-$$ (the destination host), each with eth0 (a veth whose other end
# is a port of bridge br0 in a fourth namespace, ferry-br-$$) and lo up.
# Addresses on 10.78.X.0/24: E2E_CLI_IP (.1), E2E_SRC_IP (.2), E2E_DST_IP (.3);
# E2E_SVC_IP (.100) is the service address a test puts on the source's eth0
# (as a secondary address) and moves; E2E_NET_PREFIX is 24. IPv6 too (without
# duplicate address detection, usable at once): E2E_CLI_IP6, E2E_SRC_IP6,
# E2E_DST_IP6 (fd78:X::1, ::2, ::3/64), E2E_SVC_IP6 (::100). Sets E2E_CLI_NS,
# E2E_SRC_NS, E2E_DST_NS, E2E_BR_NS, so e2e_in_src, e2e_in_dst (and
# mig_start_dest IP netns) work as with e2e_netns_pair; e2e_in_cli runs in the
# client's. Everything running in them is killed and they are deleted at exit.
e2e_net_bridge()
{
	local net=10.78.$(($$ % 250 + 1)) net6=fd78:$(($$ % 250 + 1)): ns host name ip ip6 i=0

	E2E_CLI_NS=ferry-cli-$$
	E2E_SRC_NS=ferry-src-$$
	E2E_DST_NS=ferry-dst-$$
	E2E_BR_NS=ferry-br-$$
	E2E_CLI_IP=$net.1
	E2E_SRC_IP=$net.2
	E2E_DST_IP=$net.3
	E2E_SVC_IP=$net.100
	E2E_NET_PREFIX=24
	E2E_CLI_IP6=$net6:1
	E2E_SRC_IP6=$net6:2
	E2E_DST_IP6=$net6:3
	E2E_SVC_IP6=$net6:100
	for ns in "$E2E_BR_NS" "$E2E_CLI_NS" "$E2E_SRC_NS" "$E2E_DST_NS"; do
		echo "netns $ns" >>"$_E2E_REG"
		ip netns add "$ns" || e2e_fail "ip netns add $ns"
		ip -n "$ns" link set lo up || e2e_fail "$ns: lo up"
	done
	ip -n "$E2E_BR_NS" link add br0 type bridge &&
	ip -n "$E2E_BR_NS" link set br0 up || e2e_fail "cannot make the bridge"
	for host in "cli $E2E_CLI_NS $E2E_CLI_IP $E2E_CLI_IP6" "src $E2E_SRC_NS $E2E_SRC_IP $E2E_SRC_IP6" \
		    "dst $E2E_DST_NS $E2E_DST_IP $E2E_DST_IP6"; do
		read -r name ns ip ip6 <<<"$host"
		i=$((i + 1))
		ip -n "$E2E_BR_NS" link add "$name" type veth peer name eth0 netns "$ns" &&
		ip -n "$E2E_BR_NS" link set "$name" master br0 up &&
		ip -n "$ns" link set eth0 address "02:00:00:00:$(printf %02x $(($$ % 256))):0$i" &&
		ip -n "$ns" addr add "$ip/$E2E_NET_PREFIX" dev eth0 &&
		ip -n "$ns" addr add "$ip6/64" dev eth0 nodad &&
		ip -n "$ns" link set eth0 up || e2e_fail "cannot wire $ns to the bridge"
	done
}

e2e_in_cli()
{
	ip netns exec "$E2E_CLI_NS" "$@"
}

# e2e_in_src CMD... / e2e_in_dst CMD...: run CMD in that namespace.
e2e_in_src()
{
	ip netns exec "$E2E_SRC_NS" "$@"
}

e2e_in_dst()
{
	ip netns exec "$E2E_DST_NS" "$@"
}

# e2e_in_pidns CMD...: run CMD as the first process of a fresh PID namespace
# with its own /proc. The namespace dies with it (and with unshare).
e2e_in_pidns()
{
	unshare --pid --fork --mount-proc --kill-child -- "$@"
}
