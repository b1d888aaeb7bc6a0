#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 180
#
# File locks of a real program (issue 12): python3's sqlite3 holding an open
# write transaction (BEGIN IMMEDIATE, 500 rows inserted, no commit: sqlite's
# SHARED and RESERVED locks are POSIX locks on the database file, its
# rollback journal is open) migrates to a real page server over TLS. The
# destination has its own copy of the database directory, bind-mounted over
# the same path in its mount namespace (as another host would have the
# files): the frozen source keeps its locks until the hand-over.
#   a. a process at the destination holds sqlite's RESERVED byte: migrate
#      fails naming the lock, the source runs on, untraced, still in its
#      transaction (a writer at the source gets "database is locked");
#   b. that process gone, the migration succeeds: at the destination another
#      sqlite3 writer gets "database is locked" and a reader sees only the
#      committed rows; then the migrated process commits and all 1000 rows
#      are there, nothing else.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate-lib.sh"

e2e_need migrate pageserver restore
command -v sqlite3 >/dev/null || e2e_skip "no sqlite3"
python3 -c 'import sqlite3' 2>/dev/null || e2e_skip "no python3 sqlite3"
TMP=$(e2e_tmpdir)
DB=$TMP/db/test.db
RESERVED_BYTE=1073741825	# sqlite's PENDING_BYTE + 1
mkdir -p "$TMP/db" "$TMP/dstdb"
e2e_tls_certs
port=$(e2e_port)
MIG_DEST_MANY=1 MIG_DEST_BIND="$TMP/dstdb $TMP/db" mig_start_dest 127.0.0.1

e2e_start_workload sqlhold '^step 3$' python3 "$FERRY_ROOT/tests/workloads/sqlhold.py" \
	--db "$DB" --out "$TMP/out" --pidfile "$TMP/pid" --commit "$TMP/commit"
[ -e "$DB-journal" ] || e2e_fail "no rollback journal: the transaction is not open"
cp -a "$TMP/db/." "$TMP/dstdb/" || e2e_fail "cannot copy the database for the destination"
[ "$(in_dest sqlite3 "$DB" 'SELECT count(*) FROM t')" = 500 ] ||
	e2e_fail "the destination does not see its copy of the database"

# writer DB [in_dest]: a second writer; prints sqlite3's answer
writer()
{
	"${@:2}" timeout 10 sqlite3 "$1" "BEGIN IMMEDIATE; INSERT INTO t VALUES (100000, 'intruder'); COMMIT;" 2>&1
}

a=$(writer "$DB")
grep -q 'database is locked' <<<"$a" || e2e_fail "before: a second writer at the source got: $a"

# --- a. a conflicting lock at the destination -------------------------------
e2e_start_bg holder in_dest python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, int(sys.argv[2]))
print("held", flush=True)
time.sleep(120)' "$DB" "$RESERVED_BYTE"
holder=$E2E_LAST_PID
e2e_wait_for_line "$TMP/holder.log" '^held$' 10 || e2e_fail "the holder did not take the lock"
"$MIGRATE" --json --small-dirty 0 --to "127.0.0.1:$port" "${CLI_TLS[@]}" "$pid" \
	>"$TMP/migrate1.json" 2>"$TMP/migrate1.err"
rc=$?
cat "$TMP/migrate1.err" >&2
[ $rc -ne 0 ] || e2e_fail "a. migrate succeeded although the destination holds the lock"
grep -Eq "POSIX write lock on bytes $RESERVED_BYTE-$RESERVED_BYTE here: another process holds" \
	"$TMP/migrate1.err" || e2e_fail "a. the failure does not name the lock: $(tail -n 1 "$TMP/migrate1.err")"
[ -e "/proc/$pid" ] || e2e_fail "a. the source is gone"
grep -q '^TracerPid:[[:space:]]*0$' "/proc/$pid/status" || e2e_fail "a. the source is still traced"
n=$(grep -c '^step ' "$TMP/out")
e2e_wait_for_line "$TMP/out" "^step $((n + 5))$" 10 || e2e_fail "a. the source does not run on"
a=$(writer "$DB")
grep -q 'database is locked' <<<"$a" || e2e_fail "a. the source lost its lock: a second writer got: $a"
kill -- -"$holder"	# its process group: nsenter and python3 under it
e2e_wait_pid_gone "$holder" 10 || e2e_fail "the holder does not exit"
for ((i = 0; i < 50; i++)); do
	in_dest python3 -c 'import fcntl, sys
fcntl.lockf(open(sys.argv[1], "r+"), fcntl.LOCK_EX | fcntl.LOCK_NB, 1, int(sys.argv[2]))' \
		"$DB" "$RESERVED_BYTE" 2>/dev/null && break
	sleep 0.1
done
((i < 50)) || e2e_fail "the holder's lock is still there"
e2e_log "a. refused at the destination, the source runs on with its transaction"

# --- b. the migration --------------------------------------------------------
"$MIGRATE" --json --small-dirty 0 --to "127.0.0.1:$port" "${CLI_TLS[@]}" "$pid" \
	>"$TMP/migrate.json" 2>"$TMP/migrate.err"
rc=$?
cat "$TMP/migrate.json" "$TMP/migrate.err" >&2
[ $rc -eq 0 ] || e2e_fail "b. migrate exited $rc: $(tail -n 1 "$TMP/migrate.err")"
mig_check_restored sqlhold '$'
a=$(writer "$DB" in_dest)
grep -q 'database is locked' <<<"$a" || e2e_fail "b. a second writer at the destination got: $a"
[ "$(in_dest sqlite3 "$DB" 'SELECT count(*) FROM t')" = 500 ] ||
	e2e_fail "b. a reader at the destination sees uncommitted rows"
touch "$TMP/commit"
e2e_wait_for_line "$TMP/out" '^(committed|FAIL)' 10 || e2e_fail "b. no commit after the migration"
grep -qx 'committed 1000 499500' "$TMP/out" || e2e_fail "b. $(grep -E '^(committed|FAIL)' "$TMP/out")"
a=$(in_dest sqlite3 "$DB" "SELECT count(*), sum(i), count(DISTINCT v), max(v = 'intruder') FROM t")
[ "$a" = "1000|499500|1000|0" ] || e2e_fail "b. the destination's database holds: $a"
echo "sqlite writer migrated with its locks: a writer at the destination was refused, the commit after the migration kept all 1000 rows"
