#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 180
#
# Dedup through the page server: with --auto-dedup, pages that a newer
# round replaced are punched out of older rounds (st_blocks drops, size
# stays); without it they stay until `pageserver dedup DIR/<id>` punches
# them offline. Either way the top of the stack still reads back exactly.
. "$(dirname "$0")/lib.sh"

e2e_pageserver_setup
pa=$(e2e_port)
pb=$(e2e_port)
e2e_start_pageserver auto "$pa" "$TMP/auto" --auto-dedup -v
e2e_start_pageserver plain "$pb" "$TMP/plain" -v

# Random pages (no zero pages): every byte of a pages file is data.
send()
{
	local port=$1

	shift
	"$PSC" send --to "127.0.0.1:$port" "${CLI_TLS[@]}" --kind random --pids 1 --pages 4096 "$@"
}

# blocks FILE: allocated 512-byte blocks; full FILE: blocks if nothing is punched.
blocks() { stat -c %b "$1"; }
full() { echo $(($(stat -c %s "$1") / 512)); }

# wait_blocks FILE MAX: auto-dedup punches in the background, give it a moment.
wait_blocks()
{
	local i

	for ((i = 0; i < 100; i++)); do
		[ "$(blocks "$1")" -le "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# 1. Everything rewritten in round 2: round 1 is punched away entirely.
send "$pa" --dirty 100 --seed 5 --rounds 2 --id-file "$TMP/ida" >/dev/null || e2e_fail "send (auto)"
send "$pb" --dirty 100 --seed 5 --rounds 2 --id-file "$TMP/idb" >/dev/null || e2e_fail "send (plain)"
a1=$TMP/auto/$(cat "$TMP/ida")/1/pages-1000.img
b1=$TMP/plain/$(cat "$TMP/idb")/1/pages-1000.img
[ "$(full "$a1")" -eq 32768 ] || e2e_fail "round 1 holds $(stat -c %s "$a1") bytes, want 16 MiB"
wait_blocks "$a1" 64 || e2e_fail "auto-dedup left $(blocks "$a1") blocks in round 1"
[ "$(stat -c %s "$a1")" -eq $((32768 * 512)) ] || e2e_fail "punching changed the file size"
[ "$(blocks "$b1")" -ge "$(full "$b1")" ] || e2e_fail "round 1 punched without --auto-dedup"
"$PSC" verify --stack "$TMP/auto/$(cat "$TMP/ida")" --kind random --pids 1 --pages 4096 \
	--dirty 100 --seed 5 || e2e_fail "auto-dedup broke the stack"

# 2. Offline dedup does the same to the plain stack.
"$PAGESERVER" dedup "$TMP/plain/$(cat "$TMP/idb")" >"$TMP/dedup.out" || e2e_fail "pageserver dedup failed"
e2e_log "$(cat "$TMP/dedup.out")"
[ "$(blocks "$b1")" -le 64 ] || e2e_fail "offline dedup left $(blocks "$b1") blocks"
"$PSC" verify --stack "$TMP/plain/$(cat "$TMP/idb")" --kind random --pids 1 --pages 4096 \
	--dirty 100 --seed 5 || e2e_fail "offline dedup broke the stack"

# 3. Partial rewrites over three rounds: about 0.6^2 = 36% of round 1 survives.
send "$pa" --dirty 40 --seed 9 --rounds 3 --id-file "$TMP/idc" >/dev/null || e2e_fail "send (partial)"
c1=$TMP/auto/$(cat "$TMP/idc")/1/pages-1000.img
wait_blocks "$c1" $(($(full "$c1") * 50 / 100)) || e2e_fail "round 1 not punched: $(blocks "$c1")"
[ "$(blocks "$c1")" -ge $(($(full "$c1") * 20 / 100)) ] || e2e_fail "too much punched: $(blocks "$c1")"
"$PSC" verify --stack "$TMP/auto/$(cat "$TMP/idc")" --kind random --pids 1 --pages 4096 \
	--dirty 40 --seed 9 || e2e_fail "partial auto-dedup broke the stack"
echo "PASS"
