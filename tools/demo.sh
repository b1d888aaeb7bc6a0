#!/bin/bash
# ferry demo: migrate a live python3 process over TLS on loopback.
#
# The "destination host" is a PID namespace of its own (so the process can
# keep its PID while the source still exists): a page server runs there and
# restores the process. A throwaway certificate authority is made on the fly.
# Usage: tools/demo.sh [BUILD_DIR]   (as root; default build/)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "${1:-$top/build}" && pwd)
export FERRY_BUILD=$B
# shellcheck source=../tests/e2e/lib.sh
. "$top/tests/e2e/lib.sh"

say() { printf '\n== %s\n' "$*"; }
T=$(e2e_tmpdir)
port=$(e2e_port)
C=$T/certs
say "throwaway CA and certificates in $C"
e2e_make_certs "$C" >/dev/null
mkdir -p "$T/images"

say "destination: pageserver on 127.0.0.1:$port, in its own PID namespace"
# bash is the namespace's init: the restored process outlives the page server.
e2e_start_bg pageserver unshare --pid --fork --mount-proc bash -c \
	'"$@" & while :; do wait; sleep 1; done' _ \
	"$B/pageserver" --listen "127.0.0.1:$port" --images-dir "$T/images" --once \
	--tls-ca "$C/ca.pem" --tls-cert "$C/server.pem" --tls-key "$C/server.key"
e2e_wait_port "$port" 10 || e2e_fail "the page server does not listen"

say "source: python3 keeping state in a dict, printing a step every 50 ms"
e2e_start_bg python python3 "$top/tests/workloads/pyloop.py" --out "$T/out" --pidfile "$T/pid"
e2e_wait_file "$T/pid" 20 || e2e_fail "python did not start"
pid=$(cat "$T/pid")
sleep 1
echo "python is pid $pid; its last lines:"
tail -n 2 "$T/out"

say "migrate --to 127.0.0.1:$port $pid"
"$B/migrate" --to "127.0.0.1:$port" --tls-ca "$C/ca.pem" --tls-cert "$C/client.pem" \
	--tls-key "$C/client.key" "$pid"

say "after the migration"
e2e_wait_pid_gone "$pid" 10 || true
for s in /proc/[0-9]*/status; do
	if grep -q "^NSpid:.*[[:space:]]$pid\$" "$s" 2>/dev/null; then
		echo "running at the destination: $(grep NSpid "$s" | tr -s '\t' ' ')" \
			"(outer pid, pid in its namespace)"
	fi
done
sleep 1
echo "its output goes on, same pid, no step lost or repeated:"
tail -n 3 "$T/out"
python3 "$top/tests/workloads/pyloop.py" --verify "$T/out"
