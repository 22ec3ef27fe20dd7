#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Guest-side runner: runs each test program given, framed by markers that
# tools/tap-summary reads.
for t in "$@"; do
	echo "### kvtest-begin $t"
	timeout 900 "$t"
	echo "### kvtest-end $t rc=$?"
done
