#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Runs after the whole suite on kernels with kmemleak: waits until every
# object the tests allocated is old enough to be reported (kmemleak skips
# objects younger than 5 s), scans twice and fails on any report. run.sh
# cleared the boot-time reports before the tests. kmemleak does not see
# page allocations: the tests compare the module's own page count instead.
kl=/sys/kernel/debug/kmemleak
echo "TAP version 13"
echo "1..1"
if [ ! -e $kl ]; then
	echo "ok 1 kmemleak.no_leaks # SKIP kernel without kmemleak"
	exit 0
fi
sleep 6
echo scan > $kl
sleep 1
echo scan > $kl
cat $kl > /tmp/kmemleak.txt
if [ -s /tmp/kmemleak.txt ]; then
	echo "not ok 1 kmemleak.no_leaks"
	sed 's/^/# /' /tmp/kmemleak.txt | head -n 200
else
	echo "ok 1 kmemleak.no_leaks"
fi
