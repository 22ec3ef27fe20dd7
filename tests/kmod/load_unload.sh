#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Load/unload cycles of kvaccel.ko with clients in between; a busy module
# (open file, mapping or exported dma-buf alive) refuses to unload.
# Runs in the guest; the module is at /lib/modules/kvaccel.ko.
ko=/lib/modules/kvaccel.ko
cycles=${1:-20}
echo "TAP version 13"
echo "1..3"

fail=
i=1
while [ $i -le "$cycles" ]; do
	rmmod kvaccel || { fail="rmmod, cycle $i"; break; }
	insmod $ko || { fail="insmod, cycle $i"; break; }
	kvt-client || { fail="client, cycle $i"; break; }
	i=$((i + 1))
done
if [ -z "$fail" ]; then
	echo "ok 1 load_unload.cycles_$cycles"
else
	echo "not ok 1 load_unload.cycles_$cycles # $fail"
fi

# Busy: a client holding regions, mappings and dma-bufs.
mkfifo /tmp/kvt-hold
kvt-client -w < /tmp/kvt-hold > /tmp/kvt-hold.out &
pid=$!
exec 3> /tmp/kvt-hold
n=0
while ! grep -q holding /tmp/kvt-hold.out 2>/dev/null && [ $n -lt 100 ]; do
	sleep 0.1
	n=$((n + 1))
done
if rmmod kvaccel 2>/dev/null; then
	echo "not ok 2 load_unload.busy_refused # unloaded while in use"
	insmod $ko
else
	echo "ok 2 load_unload.busy_refused"
fi
exec 3>&-
wait $pid
rm -f /tmp/kvt-hold /tmp/kvt-hold.out

if rmmod kvaccel && insmod $ko && [ -e /sys/kernel/debug/kvaccel/status ]; then
	echo "ok 3 load_unload.after_busy"
else
	echo "not ok 3 load_unload.after_busy"
fi
