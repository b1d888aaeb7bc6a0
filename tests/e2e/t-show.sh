#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 180
#
# ferry-show on a real stack: treework (three processes, a pipe, a shared
# fd) is migrated over TLS to a page server that keeps the images
# (--no-restore). Every image file of every round is decoded to JSON
# (valid JSON, checked by python) and encoded back: the bytes must be the
# same. The summary must match the stack and migrate's own figures (rounds,
# processes, pages written per round = pages sent, stats.img = migrate's
# JSON lines); `page` must name the round whose pagemap really holds the
# page, at the offset that pagemap gives. After `pageserver dedup` the
# summary shows less allocated and the same read by the top, and no page the
# top reads is a hole. Bad input gets exit statuses 2/4.
. "$(dirname "$0")/lib.sh"

e2e_need migrate pageserver treework
SHOW=$FERRY_BUILD/ferry-show
[ -x "$SHOW" ] || e2e_fail "no $SHOW (build it first)"
TMP=$(e2e_tmpdir)
e2e_tls_certs
port=$(e2e_port)
e2e_start_pageserver ps "$port" "$TMP/dst" --no-restore

e2e_start_bg tree "$TREEWORK" --out "$TMP/tree.out" --pidfile "$TMP/tree.pid" --tick-ms 10
e2e_wait_file "$TMP/tree.pid" 20 || e2e_fail "treework never wrote its pidfile"
pid=$(cat "$TMP/tree.pid")
e2e_wait_for_line "$TMP/tree.out" '^grandchild 2 ' 20 || e2e_fail "treework makes no progress"

"$MIGRATE" --json --max-rounds 3 --small-dirty 0 --to "127.0.0.1:$port" "${CLI_TLS[@]}" "$pid" \
	>"$TMP/migrate.json" 2>"$TMP/migrate.err" ||
	e2e_fail "migrate failed: $(cat "$TMP/migrate.err")"
cat "$TMP/migrate.json" >&2
id=$(sed -n 's/.*"event":"done".*"migration_id":"\([^"]*\)".*/\1/p' "$TMP/migrate.json")
[ -n "$id" ] || e2e_fail "no migration id in migrate's output"
stack=$TMP/dst/$id
[ -d "$stack/1" ] || e2e_fail "no stack at $stack"

# --- every image: JSON and back, byte for byte ------------------------------
n=0
mkdir -p "$TMP/json"
for f in "$stack"/*/*.img; do
	case ${f##*/} in pages-*) continue ;; esac
	n=$((n + 1))
	"$SHOW" decode "$f" >"$TMP/json/$n.json" || e2e_fail "decode $f failed"
	"$SHOW" encode "$TMP/json/$n.json" "$TMP/x.img" || e2e_fail "encode of $f's JSON failed"
	cmp "$f" "$TMP/x.img" >&2 || e2e_fail "$f: not the same bytes after JSON and back"
done
# all valid JSON (one python for all: the machine is slow), and their kinds
kinds=$(python3 -c '
import json, sys
print(" " + " ".join(sorted({json.load(open(f))["image"] for f in sys.argv[1:]})) + " ")' \
	"$TMP"/json/*.json) || e2e_fail "a decoded image is not valid JSON"
e2e_log "$n image files round-tripped, kinds:$kinds"
for k in inventory pagemap pstree core mm files stats; do
	[[ $kinds == *" $k "* ]] || e2e_fail "no $k image in the stack (kinds:$kinds)"
done

# --- the summary matches the stack and migrate's figures --------------------
"$SHOW" summary "$stack" >"$TMP/summary.txt" || e2e_fail "summary failed"
cat "$TMP/summary.txt" >&2
"$SHOW" summary --json "$stack" >"$TMP/summary.json" || e2e_fail "summary --json failed"
python3 - "$TMP/summary.json" "$TMP/migrate.json" "$stack" "$pid" <<'EOF' || e2e_fail "summary does not match"
import glob, json, os, sys
s = json.load(open(sys.argv[1]))
mig = [json.loads(l) for l in open(sys.argv[2])]
stack, pid = sys.argv[3], int(sys.argv[4])
rounds = [e for e in mig if e["event"] == "round"]
done = [e for e in mig if e["event"] == "done"][0]
dirs = [d for d in os.listdir(stack) if d.isdigit()]
def need(ok, what):
    if not ok:
        sys.exit("summary: " + what)
need(s["rounds"] == len(dirs) == done["rounds"] == len(rounds),
     "rounds %d, %d directories, migrate said %d" % (s["rounds"], len(dirs), done["rounds"]))
need(s["final"] and s["root_pid"] == pid and s["migration_id"] == done["migration_id"], "top")
need(s["processes"] == 3, "%d processes, treework has 3" % s["processes"])
procs = [m for m in s["memory"] if not m["shmem"]]
need(len(procs) == 3 and pid in [m["pid"] for m in procs], "memory of %d processes" % len(procs))
need(all(m["threads"] == 1 and m["vmas"] for m in procs), "threads or VMAs missing")
for r, m in zip(s["per_round"], rounds):
    need(r["round"] == m["round"] and r["final"] == m["final"], "round numbering")
    need(r["pages_written"] == m["pages_sent"],
         "round %d: %d pages written, migrate sent %d" % (r["round"], r["pages_written"], m["pages_sent"]))
    for k in ("pages_scanned", "pages_dirty", "pages_sent", "pages_zero"):
        need(r[k] == m[k], "round %d: stats.img %s %d, migrate said %d" % (r["round"], k, r[k], m[k]))
    need(r["pids"] == 3, "round %d: %d pagemaps" % (r["round"], r["pids"]))
    size = sum(os.path.getsize(f) for f in glob.glob("%s/%d/pages-*.img" % (stack, r["round"])))
    need(r["pages_bytes"] == size == 4096 * r["pages_written"], "round %d: pages bytes" % r["round"])
need(s["space"]["top_reads_bytes"] == 4096 * sum(m["pages_data"] for m in s["memory"]),
     "space read by the top")
print("summary ok: %d rounds, %d processes" % (s["rounds"], s["processes"]))
EOF

# --- page: the round whose pagemap holds it, at the offset it says ----------
top=$(ls -d "$stack"/*/ | sed 's|/$||' | sort -V | tail -n 1)
"$SHOW" decode "$top/pagemap-$pid.img" >"$TMP/pm.json" || e2e_fail "decode top pagemap"
checked=0
for flag in 1 2; do
	addr=$(python3 -c '
import json, sys
e = [x["pagemap_entry"] for x in json.load(open(sys.argv[1]))["entries"][1:]]
e = [x for x in e if x["flags"] == int(sys.argv[2])]
print(e[-1]["vaddr"] + 4096 * (e[-1]["nr_pages"] - 1) if e else "")' "$TMP/pm.json" $flag)
	[ -n "$addr" ] || continue
	"$SHOW" page --json "$stack" "$pid" "$addr" >"$TMP/page.json" || e2e_fail "page $addr failed"
	"$SHOW" page "$stack" "$pid" "$addr" >&2 || e2e_fail "page $addr (text) failed"
	python3 - "$TMP/page.json" "$stack" "$pid" "$addr" "$flag" "$SHOW" <<'EOF' || e2e_fail "page $addr is wrong"
import json, subprocess, sys
p = json.load(open(sys.argv[1]))
stack, pid, addr, flag, show = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
if p["round"] == 0 or p["zero"] or p["hole"]:
    sys.exit("page %#x: %s" % (addr, p))
if flag == 1 and p["round"] != p["top_round"]:
    sys.exit("a PRESENT page of the top resolved to round %d" % p["round"])
if flag == 2 and p["round"] >= p["top_round"]:
    sys.exit("a PARENT page of the top resolved to round %d" % p["round"])
pm = json.loads(subprocess.check_output([show, "decode", "%s/%d/pagemap-%d.img" % (stack, p["round"], pid)]))
for x in pm["entries"][1:]:
    e = x["pagemap_entry"]
    if e["vaddr"] <= addr < e["vaddr"] + 4096 * e["nr_pages"]:
        if e["flags"] != 1 or e["off"] + addr - e["vaddr"] != p["offset"]:
            sys.exit("round %d's pagemap says %s, page said offset %d" % (p["round"], e, p["offset"]))
        if not p["file"].endswith("/%d/pages-%d.img" % (p["round"], pid)):
            sys.exit("file %s" % p["file"])
        break
else:
    sys.exit("round %d's pagemap does not hold %#x" % (p["round"], addr))
EOF
	checked=$((checked + 1))
done
[ $checked -ge 1 ] || e2e_fail "no page to look up"

# --- after an offline dedup: less allocated, the same read by the top, no holes read
"$PAGESERVER" dedup "$stack" >"$TMP/dedup.out" || e2e_fail "pageserver dedup failed"
punched=$(sed -n 's/.*: \([0-9]*\) bytes punched$/\1/p' "$TMP/dedup.out")
"$SHOW" summary --json "$stack" >"$TMP/summary2.json" || e2e_fail "summary after dedup failed"
python3 - "$TMP/summary.json" "$TMP/summary2.json" "${punched:-0}" <<'EOF2' || e2e_fail "summary after dedup is wrong"
import json, sys
a, b, punched = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
sa, sb = a["space"], b["space"]
assert sb["pages_bytes"] == sa["pages_bytes"], "file sizes changed"
assert sb["top_reads_bytes"] == sa["top_reads_bytes"], "what the top reads changed"
if punched:
    assert sb["allocated_bytes"] < sa["allocated_bytes"], (sa, sb, punched)
print("dedup: %d bytes punched, allocated %d -> %d" % (punched, sa["allocated_bytes"], sb["allocated_bytes"]))
EOF2
[ "${punched:-0}" -gt 0 ] || e2e_log "dedup punched nothing (no page rewritten across rounds)"
for a in $(python3 -c '
import json, sys
e = [x["pagemap_entry"] for x in json.load(open(sys.argv[1]))["entries"][1:] if x["pagemap_entry"]["flags"] != 4]
print(" ".join(str(x["vaddr"]) for x in e[:20]))' "$TMP/pm.json"); do
	"$SHOW" page --json "$stack" "$pid" "$a" >"$TMP/p.json" || e2e_fail "page $a after dedup failed"
	grep -q '"hole": false' "$TMP/p.json" || e2e_fail "after dedup the top reads a hole: $(cat "$TMP/p.json")"
done

# --- a renamed copy: --kind -------------------------------------------------------
cp "$top/core-$pid.img" "$TMP/renamed"
"$SHOW" decode --kind core "$TMP/renamed" >"$TMP/renamed.json" || e2e_fail "decode --kind core failed"
"$SHOW" decode "$top/core-$pid.img" | cmp -s - "$TMP/renamed.json" ||
	e2e_fail "decode --kind core differs from decoding core-$pid.img"
"$SHOW" decode "$TMP/renamed" >/dev/null 2>&1
[ $? -eq 4 ] || e2e_fail "a renamed copy without --kind: not exit 4"

# --- exit statuses ------------------------------------------------------------
"$SHOW" summary >/dev/null 2>&1
[ $? -eq 2 ] || e2e_fail "summary without DIR: not exit 2"
"$SHOW" --bogus decode x >/dev/null 2>&1
[ $? -eq 2 ] || e2e_fail "unknown option: not exit 2"
"$SHOW" decode "$TMP/none/core-1.img" >/dev/null 2>&1
[ $? -eq 4 ] || e2e_fail "missing file: not exit 4"
"$SHOW" decode "$stack/1/pages-$pid.img" >/dev/null 2>"$TMP/err"
[ $? -eq 4 ] && grep -q 'raw page data' "$TMP/err" || e2e_fail "pages file: $(cat "$TMP/err")"
echo '{"image": "core", "entries": [{"proc_core": {"pid": -1}}]}' >"$TMP/bad.json"
"$SHOW" encode "$TMP/bad.json" "$TMP/bad.img" 2>"$TMP/err"
[ $? -eq 4 ] && grep -q 'negative' "$TMP/err" || e2e_fail "hostile JSON: $(cat "$TMP/err")"
"$SHOW" page "$stack" 999999 0x1000 >/dev/null 2>&1
[ $? -eq 4 ] || e2e_fail "unknown pid: not exit 4"
echo "ferry-show ok: $n images round-tripped, summary and page match the stack"
