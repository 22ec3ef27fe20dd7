#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-only
# The guest side of `make demo`: set pressure watermarks, watch the
# module's events with kvaccelctl while kvaccel-demo runs, then show the
# device's status and the events seen; last, libaccel's KV cache swapping
# a sequence out and back in, with its throughput.
set -e
echo "-- kvaccelctl watermarks set 5M 1M (pressure events above 5 MiB, until below 1 MiB)"
kvaccelctl watermarks set 5M 1M
kvaccelctl watch --timeout 120 > /tmp/events 2> /tmp/watch.err &
watch=$!
i=0
while ! grep -q watching /tmp/watch.err 2>/dev/null && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
kvaccel-demo
echo "-- kvaccelctl status"
kvaccelctl status
kill $watch
wait $watch || true
echo "-- kvaccelctl watch: what the demo did, as the module's events group saw it"
cat /tmp/events
echo "-- libaccel's KV cache: a sequence of 64 MiB of KV in 16 KiB blocks, scattered,"
echo "   swapped out to the host tier and back in (kvaccel-bench-kv 64 1)"
kvaccel-bench-kv 64 1
