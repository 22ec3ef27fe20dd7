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

echo
echo "-- kvacceld, the node daemon, with two engines: a hand-off and a pressure round"
echo "   (watermarks 32 MiB / 20 MiB; prefill has priority 1, decode priority 5)"
kvaccelctl watermarks off
export KVACCELD_SOCKET=/tmp/kvacceld.sock
kvacceld --socket $KVACCELD_SOCKET --metrics off --high-watermark 32M \
	--low-watermark 20M 2> /tmp/kvacceld.log &
kvd=$!
i=0
while ! grep -q ready /tmp/kvacceld.log 2>/dev/null && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
kvaccel-engine decode > /tmp/decode.out &
dec=$!
i=0
while ! grep -q registered /tmp/decode.out 2>/dev/null && [ $i -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
kvaccel-engine prefill
sleep 1
cat /tmp/decode.out
echo "-- kvaccelctl engines"
kvaccelctl engines || true
kill $dec
wait $dec || true
kill $kvd
wait $kvd || true
echo "-- the daemon's log"
grep -v 'event \(client\|region\)' /tmp/kvacceld.log
kvaccelctl watermarks off
