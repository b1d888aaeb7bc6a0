#!/bin/bash
# SPDX-License-Identifier: MIT
# e2e-timeout: 60
#
# A process holding an unlinked, sparse file open (ghostwork.py) is
# checkpointed and restored: the file's data travels in the images without
# its 10 MiB hole, and the restored process keeps appending to it and
# reading it back (its own checks) at the same offset.
. "$(dirname "$0")/lib.sh"

TMP=$(e2e_tmpdir)
mkdir -p "$TMP/files"
e2e_start_workload ghostwork '^step 10 ' python3 "$FERRY_ROOT/tests/workloads/ghostwork.py" "$TMP/out" "$TMP/pid" "$TMP/files"
ls -l "/proc/$pid/fd" | grep -q 'scratch.bin (deleted)' || e2e_fail "no ghost file open"
e2e_checkpoint "$TMP/img" "$pid"
top=$(e2e_stack_top "$TMP/img")
ghost=$(ls "$top"/ghost-*.img)
[ "$(stat -c %s "$ghost")" -lt 65536 ] || e2e_fail "the hole travelled: $(stat -c %s "$ghost") bytes"
last=$(grep -c '^step ' "$TMP/out")
e2e_restore "$TMP/img" "$pid"
e2e_wait_for_line "$TMP/out" "^step $((last + 50)) " 20 || e2e_fail "restored ghostwork stalled"
ls -l "/proc/$pid/fd" | grep -q '(deleted)' || e2e_fail "the restored fd is not an unlinked file"
e2e_assert_no_fail "$TMP/out"
e2e_assert_steps_continuous "$TMP/out" $((last + 50))
echo "ghost file: $(stat -c %s "$ghost") bytes of image for a 10 MiB sparse file; restored and in use"
