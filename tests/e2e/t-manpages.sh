#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 60
#
# The manual pages in man/: one per command, each renders with groff and
# man -l without a warning, and each names every long option its command's
# --help lists (so the page cannot fall behind the code), and its exit
# statuses.
. "$(dirname "$0")/lib.sh"

command -v groff >/dev/null || e2e_skip "no groff on this machine"
TMP=$(e2e_tmpdir)
M=$FERRY_ROOT/man
pages=(migrate.8 check.8 restore.8 pageserver.8 ferry-show.1)
for p in "${pages[@]}"; do
	[ -f "$M/$p" ] || e2e_fail "no manual page man/$p"
	groff -man -Tutf8 -ww -z "$M/$p" 2>"$TMP/warn" || e2e_fail "$p: groff failed: $(cat "$TMP/warn")"
	[ ! -s "$TMP/warn" ] || e2e_fail "$p: groff warns: $(cat "$TMP/warn")"
	if command -v man >/dev/null; then
		MANWIDTH=80 man -l "$M/$p" >"$TMP/out" 2>"$TMP/warn" || e2e_fail "$p: man -l failed"
		[ ! -s "$TMP/warn" ] || e2e_fail "$p: man -l warns: $(cat "$TMP/warn")"
		grep -q 'EXIT STATUS' "$TMP/out" || e2e_fail "$p: no EXIT STATUS section"
	fi
done
# every page in man/ is one of these (a new command gets its page listed here)
for f in "$M"/*; do
	[[ " ${pages[*]} " == *" ${f##*/} "* ]] || e2e_fail "man/${f##*/} is not checked here"
done

# options: what --help lists, the page must name (groff's \- is a plain -)
opts()
{
	grep -o -- '--[a-z][a-z-]*' | sort -u
}
check_opts()
{
	local page=$1 o

	shift
	"$@" --help | opts >"$TMP/opts" || e2e_fail "$* --help failed"
	sed 's/\\-/-/g' "$M/$page" >"$TMP/page"
	while read -r o; do
		grep -q -- "$o\b" "$TMP/page" || e2e_fail "$page does not name $o (from $* --help)"
	done <"$TMP/opts"
	e2e_log "$page names all $(wc -l <"$TMP/opts") options of $*"
}
check_opts migrate.8 "$FERRY_BUILD/migrate"
check_opts check.8 "$FERRY_BUILD/check"
check_opts restore.8 "$FERRY_BUILD/restore"
check_opts pageserver.8 "$FERRY_BUILD/pageserver"
check_opts ferry-show.1 "$FERRY_BUILD/ferry-show"
echo "manual pages ok: ${#pages[@]} pages render cleanly and name every option"
