#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Guest-side runner: runs each test program given, framed by markers that
# tools/tap-summary reads. On kernels with kmemleak, what the kernel had
# leaked before the tests is cleared, so tests/kmod/kmemleak.sh reports
# only what happened during them. Each end marker carries the test's wall
# time in seconds (tools/slowest lists the longest).
kl=/sys/kernel/debug/kmemleak
[ -w $kl ] && echo clear > $kl
for t in "$@"; do
	echo "### kvtest-begin $t"
	t0=$(date +%s)
	timeout 900 "$t"
	rc=$?
	echo "### kvtest-end $t rc=$rc secs=$(( $(date +%s) - t0 ))"
done
