#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# Load/unload cycles of kvaccel.ko with clients in between; a busy module
# (open file, mapping or exported dma-buf alive) refuses to unload.
# Runs in the guest; the module is at /lib/modules/kvaccel.ko.
ko=/lib/modules/kvaccel.ko
cycles=${1:-20}
echo "TAP version 13"
echo "1..4"

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

# Busy: a client holding something of the module's (kvt-client -w: regions,
# mappings, dma-bufs; kvt-client -s: only a copy job's sync_file).
busy_test() { # number name client-flag
	mkfifo /tmp/kvt-hold
	kvt-client "$3" < /tmp/kvt-hold > /tmp/kvt-hold.out &
	pid=$!
	exec 3> /tmp/kvt-hold
	n=0
	while ! grep -q holding /tmp/kvt-hold.out 2>/dev/null && [ $n -lt 100 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	if ! grep -q holding /tmp/kvt-hold.out; then
		echo "not ok $1 load_unload.$2 # client did not start"
	elif rmmod kvaccel 2>/dev/null; then
		echo "not ok $1 load_unload.$2 # unloaded while in use"
		insmod $ko
	else
		echo "ok $1 load_unload.$2"
	fi
	exec 3>&-
	wait $pid
	rm -f /tmp/kvt-hold /tmp/kvt-hold.out
}
busy_test 2 busy_refused -w
busy_test 3 sync_file_pins_module -s

if rmmod kvaccel && insmod $ko &&
   ls /sys/kernel/debug/accel/*/copy_fail_nth /sys/kernel/debug/dri/*/copy_fail_nth 2>/dev/null | grep -q .; then
	echo "ok 4 load_unload.after_busy"
else
	echo "not ok 4 load_unload.after_busy"
fi
