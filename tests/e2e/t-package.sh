#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 1200
#
# The Debian package: `make deb` builds it from the tree (dpkg-buildpackage
# on a copy); unpacked into a temporary root (never installed on this
# machine) it holds the commands, the man pages (which render), the
# defaults file (a conffile) and the pageserver unit, which
# systemd-analyze verify accepts. Then the unit's own command line
# (ExecStart with its EnvironmentFile's variables, paths moved into the
# temporary root) runs the packaged page server in a PID namespace of its
# own, and the packaged migrate moves a live treework to it: it must run
# there with its pid, and its source be gone.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"

command -v dpkg-buildpackage >/dev/null || e2e_skip "no dpkg-buildpackage here"
command -v git >/dev/null || e2e_skip "no git: make deb copies the tracked tree"
TMP=$(e2e_tmpdir)
e2e_need treework

# --- build ---------------------------------------------------------------------
make -C "$FERRY_ROOT" deb DEB_DIR="$TMP/deb" >"$TMP/deb.log" 2>&1 ||
	e2e_fail "make deb failed: $(tail -n 20 "$TMP/deb.log")"
deb=$(ls "$TMP"/deb/ferry_*_amd64.deb 2>/dev/null | head -n 1)
[ -f "$deb" ] || e2e_fail "no ferry_*_amd64.deb in $TMP/deb"
e2e_log "built $(basename "$deb") ($(stat -c %s "$deb") bytes)"

# --- contents --------------------------------------------------------------------
R=$TMP/root
dpkg-deb -x "$deb" "$R" || e2e_fail "dpkg-deb -x failed"
for f in usr/bin/migrate usr/bin/pageserver usr/bin/restore usr/bin/ferry-show \
	lib/systemd/system/ferry-pageserver.service etc/default/ferry-pageserver \
	usr/share/man/man8/migrate.8.gz usr/share/man/man8/check.8.gz \
	usr/share/man/man8/restore.8.gz usr/share/man/man8/pageserver.8.gz \
	usr/share/man/man1/ferry-show.1.gz; do
	[ -f "$R/$f" ] || e2e_fail "the package has no /$f"
done
[ "$(readlink "$R/usr/bin/check")" = migrate ] || e2e_fail "/usr/bin/check is not a link to migrate"
dpkg-deb -f "$deb" Depends | grep -q libprotobuf-c || e2e_fail "no library dependencies computed"
dpkg-deb --ctrl-tarfile "$deb" | tar xOf - ./conffiles | grep -qx /etc/default/ferry-pageserver ||
	e2e_fail "/etc/default/ferry-pageserver is not a conffile"
"$R/usr/bin/check" --json >"$TMP/check.json" || e2e_fail "packaged check --json failed"
python3 -c 'import json, sys; assert json.load(open(sys.argv[1]))["can_migrate"]' "$TMP/check.json" ||
	e2e_fail "packaged check: $(cat "$TMP/check.json")"
for m in "$R"/usr/share/man/man*/*.gz; do
	MANWIDTH=80 man -l "$m" >/dev/null 2>"$TMP/warn" && [ ! -s "$TMP/warn" ] ||
		e2e_fail "${m##*/} does not render cleanly: $(cat "$TMP/warn")"
done

# --- the unit --------------------------------------------------------------------
unit=$R/lib/systemd/system/ferry-pageserver.service
grep -q '^ExecStart=/usr/bin/pageserver ' "$unit" || e2e_fail "ExecStart does not run /usr/bin/pageserver"
if command -v systemd-analyze >/dev/null; then
	mkdir -p "$TMP/unit"
	sed -e "s|/usr/bin/|$R/usr/bin/|" -e "s|=/etc/default/|=$R/etc/default/|" "$unit" \
		>"$TMP/unit/ferry-pageserver.service"
	systemd-analyze verify --man=no "$TMP/unit/ferry-pageserver.service" >"$TMP/verify" 2>&1 ||
		e2e_fail "systemd-analyze verify: $(cat "$TMP/verify")"
	[ ! -s "$TMP/verify" ] || e2e_fail "systemd-analyze verify warns: $(cat "$TMP/verify")"
else
	e2e_log "no systemd-analyze: unit syntax not verified"
fi

# The unit's command line, as systemd would run it: ${VAR} one word, $VAR split.
e2e_tls_certs
port=$(e2e_port)
cat >"$TMP/env" <<EOF2
FERRY_LISTEN=127.0.0.1:$port
FERRY_TLS_CA=$C/ca.pem
FERRY_TLS_CERT=$C/server.pem
FERRY_TLS_KEY=$C/server.key
FERRY_OPTS="--once -v"
EOF2
# every variable the unit uses is in the shipped defaults file
for v in $(grep -o '\${\?FERRY_[A-Z_]*' "$unit" | tr -d '${' | sort -u); do
	grep -q "^$v=" "$R/etc/default/ferry-pageserver" || e2e_fail "$v is not in the defaults file"
done
exec_line=$(sed -n '/^ExecStart=/,/[^\\]$/p' "$unit" | sed 's/\\$//' | tr '\n\t' '  ' | sed 's/^ExecStart=//')
exec_line=${exec_line//\/usr\/bin\//$R/usr/bin/}
exec_line=${exec_line//\/var\/lib\/ferry\/images/$TMP/images}
mkdir -p "$TMP/images"
(
	set -a
	. "$TMP/env"
	set +a
	# ${X} stays one word (quoted), $X is split, as systemd does
	line=$(sed -E 's/\$\{([A-Z_]+)\}/"${\1}"/g' <<<"$exec_line")
	eval "printf '%s\n' $line"
) >"$TMP/argv" || e2e_fail "cannot expand ExecStart"
mapfile -t argv <"$TMP/argv"
e2e_log "unit command line: ${argv[*]}"
e2e_start_bg dest unshare --pid --fork --mount-proc --kill-child -- bash -c \
	'"$@" & echo "pageserver pid $!"; wait $!; echo "pageserver exited $?"; while :; do sleep 0.5; done' \
	_ "${argv[@]}"
e2e_wait_port "$port" 20 || e2e_fail "the unit's pageserver does not listen: $(cat "$TMP/dest.log")"
nsinit=$(pgrep -P "$(cat "$TMP/dest.pid")" -x bash | head -n 1)
[ -n "$nsinit" ] || nsinit=$(pgrep -P "$(pgrep -P "$(cat "$TMP/dest.pid")" | head -n 1)" | head -n 1)
[ "$(in_dest cat /proc/1/comm)" = bash ] || e2e_fail "cannot enter the destination namespace"

e2e_start_bg tree "$TREEWORK" --out "$TMP/tree.out" --pidfile "$TMP/tree.pid" --tick-ms 20
e2e_wait_file "$TMP/tree.pid" 20 || e2e_fail "treework never wrote its pidfile"
pid=$(cat "$TMP/tree.pid")
e2e_wait_for_line "$TMP/tree.out" '^grandchild 1 ' 20 || e2e_fail "treework makes no progress"
"$R/usr/bin/migrate" --json --to "127.0.0.1:$port" "${CLI_TLS[@]}" "$pid" >"$TMP/migrate.json" \
	2>"$TMP/migrate.err" || e2e_fail "packaged migrate failed: $(cat "$TMP/migrate.err")"
e2e_wait_for_line "$TMP/dest.log" '^pageserver exited' 20 || e2e_fail "pageserver --once did not exit"
grep -qx 'pageserver exited 0' "$TMP/dest.log" || e2e_fail "$(grep '^pageserver exited' "$TMP/dest.log")"
e2e_wait_pid_gone "$pid" 10 || e2e_fail "the source $pid is still there"
in_dest test -e "/proc/$pid" || e2e_fail "pid $pid does not run at the destination"
outer=$(outer_pid "$pid")
[ -n "$outer" ] && e2e_track_pid "$outer"
n=$(grep -c '^step ' "$TMP/tree.out")
e2e_wait_for_line "$TMP/tree.out" "^step $((n + 2)) " 20 || e2e_fail "the migrated treework does not go on"
echo "package ok: $(basename "$deb") builds, unpacks, its unit's command line serves a migration"
